//! Building aws-sdk-kinesis (and aws-sdk-firehose) clients the way a user expects: the standard AWS configuration
//! chain (env, profile, SSO…), an optional endpoint override, and dummy credentials when
//! talking to a loopback endpoint with none configured (millrace does not check them yet).
//! Reading and writing through the client is `millrace-io`'s ([`streams_for`]).

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_kinesis::config::Credentials;

pub async fn client(endpoint_url: Option<&str>) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&sdk_config(endpoint_url).await)
}

/// An aws-sdk-firehose client configured as [`client`] is.
pub async fn firehose_client(endpoint_url: Option<&str>) -> aws_sdk_firehose::Client {
    aws_sdk_firehose::Client::new(&sdk_config(endpoint_url).await)
}

/// The AWS configuration chain, the endpoint override and, for a loopback endpoint without
/// credentials, dummy ones.
async fn sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    let local = endpoint_url.is_some_and(is_loopback);
    loader = if local {
        // A local endpoint needs no cloud lookups: never ask EC2 metadata for a region.
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".into());
        loader.region(aws_config::Region::new(region))
    } else {
        loader.region(RegionProviderChain::default_provider().or_else("us-east-1"))
    };
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
        let has_creds = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
            || std::env::var_os("AWS_PROFILE").is_some();
        if !has_creds && local {
            loader = loader.credentials_provider(Credentials::new(
                "millrace",
                "millrace",
                None,
                None,
                "millrace-local",
            ));
        }
    }
    loader.load().await
}

fn is_loopback(url: &str) -> bool {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    host == "localhost" || host.starts_with("127.") || url.contains("[::1]")
}

/// [`client`] for a command that uses streams `names`: when every one is a Kafka topic, no
/// AWS configuration is loaded (its region lookup can take seconds off AWS), as none is used.
pub async fn client_for(names: &[&str], endpoint_url: Option<&str>) -> aws_sdk_kinesis::Client {
    if names
        .iter()
        .all(|n| n.starts_with(millrace_io::kafka::SCHEME))
    {
        let unused = aws_sdk_kinesis::Config::builder()
            .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
            .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
            .build();
        return aws_sdk_kinesis::Client::from_conf(unused);
    }
    client(endpoint_url).await
}

/// The streams behind a Kinesis API (`endpoint_url`, or Amazon Kinesis when `None`), read and
/// written through `millrace-io`, for a command that uses streams `names` ([`client_for`]).
pub async fn streams_for(names: &[&str], endpoint_url: Option<&str>) -> millrace_io::Streams {
    millrace_io::Streams::kinesis(client_for(names, endpoint_url).await)
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_detection() {
        assert!(super::is_loopback("http://127.0.0.1:4567"));
        assert!(super::is_loopback("http://localhost:4567/"));
        assert!(!super::is_loopback(
            "https://kinesis.us-east-1.amazonaws.com"
        ));
    }
}
