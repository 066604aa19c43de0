//! Kinesis resource ARNs (`ResourceARN` of the tag and resource-policy operations): a stream,
//! `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`, or one of its enhanced fan-out consumers,
//! `arn:aws:kinesis:REGION:ACCOUNT:stream/NAME/consumer/CONSUMER:CREATED_EPOCH_SECONDS`.

use millrace_stream::StoreOptions;

use crate::error::{ApiError, ErrorCode};
use crate::request::{Checks, member};

/// The model's pattern of `ResourceARN`.
pub(crate) const RESOURCE_ARN_PATTERN: &str =
    "arn:aws.*:kinesis:.*:\\d{12}:.*(stream|channel|queue)/\\S+";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResourceArn {
    Stream(String),
    Consumer {
        stream: String,
        consumer: String,
        created_s: i64,
    },
}

/// Whether `arn` matches [`RESOURCE_ARN_PATTERN`] (the regex is anchored, as AWS's are).
fn matches_model_pattern(arn: &str) -> bool {
    let Some(rest) = arn.strip_prefix("arn:aws") else {
        return false;
    };
    // `.*:kinesis:` then `.*:\d{12}:` then `.*(stream|channel|queue)/\S+`: try every split.
    rest.match_indices(":kinesis:").any(|(i, m)| {
        let after = &rest[i + m.len()..];
        after.match_indices(':').any(|(j, _)| {
            let tail = &after[j + 1..];
            let Some(account) = tail.get(..12) else {
                return false;
            };
            account.bytes().all(|b| b.is_ascii_digit())
                && tail[12..].starts_with(':')
                && ["stream/", "channel/", "queue/"].iter().any(|kind| {
                    tail[13..].match_indices(kind).any(|(k, _)| {
                        let last = &tail[13 + k + kind.len()..];
                        !last.is_empty() && !last.chars().any(char::is_whitespace)
                    })
                })
        })
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Feeds `ResourceARN`'s model constraints (length 1-2048, [`RESOURCE_ARN_PATTERN`]) to `c`.
pub(crate) fn check_resource_arn(c: &mut Checks, field: &str, arn: &str) {
    if c.len(field, arn, 1, 2048) {
        c.pattern(field, arn, matches_model_pattern(arn), RESOURCE_ARN_PATTERN);
    }
}

/// Parses a resource ARN into the stream or consumer it names. An ARN off the model's pattern
/// is a `ValidationException`; one of another account, region or partition, or of a kind this
/// server does not have (queues, channels), names nothing here: `ResourceNotFoundException`.
/// A well-formed ARN of a stream whose names break Kinesis's naming rules is an
/// `InvalidArgumentException`.
pub(crate) fn parse_resource_arn(opts: &StoreOptions, arn: &str) -> Result<ResourceArn, ApiError> {
    let mut c = Checks::new();
    check_resource_arn(&mut c, "ResourceARN", arn);
    c.finish()?;
    let not_found = || {
        ApiError::new(
            ErrorCode::ResourceNotFound,
            format!(
                "Resource {arn} not found under account {}.",
                opts.account_id
            ),
        )
    };
    let prefix = format!("arn:aws:kinesis:{}:{}:", opts.region, opts.account_id);
    let Some(resource) = arn.strip_prefix(&prefix) else {
        return Err(not_found());
    };
    let Some(path) = resource.strip_prefix("stream/") else {
        return Err(not_found());
    };
    let invalid = || {
        ApiError::invalid(format!(
            "{} '{arn}' is not a valid stream or consumer ARN.",
            member("ResourceARN")
        ))
    };
    match path.split_once("/consumer/") {
        None => {
            if !is_name(path) {
                return Err(invalid());
            }
            Ok(ResourceArn::Stream(path.to_owned()))
        }
        Some((stream, rest)) => {
            let (consumer, created) = rest.rsplit_once(':').ok_or_else(invalid)?;
            let created_s = (!created.is_empty() && created.bytes().all(|b| b.is_ascii_digit()))
                .then(|| created.parse::<i64>().ok())
                .flatten()
                .ok_or_else(invalid)?;
            if !is_name(stream) || !is_name(consumer) {
                return Err(invalid());
            }
            Ok(ResourceArn::Consumer {
                stream: stream.to_owned(),
                consumer: consumer.to_owned(),
                created_s,
            })
        }
    }
}

/// The ARN of consumer `name` of `stream_arn`, created at `created_ms`.
pub(crate) fn consumer_arn(stream_arn: &str, name: &str, created_ms: i64) -> String {
    format!(
        "{stream_arn}/consumer/{name}:{}",
        created_ms.div_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_pattern() {
        for ok in [
            "arn:aws:kinesis:us-east-1:123456789012:stream/s1",
            "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s1/consumer/c:17",
            "arn:aws:kinesis:us-east-1:123456789012:queue/q",
        ] {
            assert!(matches_model_pattern(ok), "{ok}");
        }
        for bad in [
            "arn:aws:s3:::bucket",
            "arn:aws:kinesis:us-east-1:1234:stream/s1",
            "arn:aws:kinesis:us-east-1:123456789012:stream/",
            "arn:aws:kinesis:us-east-1:123456789012:table/t",
            "arn:aws:kinesis:us-east-1:123456789012:stream/a b",
            "",
        ] {
            assert!(!matches_model_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn parses_streams_and_consumers() {
        let o = StoreOptions::default();
        let base = format!("arn:aws:kinesis:{}:{}:stream/", o.region, o.account_id);
        assert_eq!(
            parse_resource_arn(&o, &format!("{base}s1")).unwrap(),
            ResourceArn::Stream("s1".into())
        );
        assert_eq!(
            parse_resource_arn(&o, &format!("{base}s1/consumer/c-1:1700000000")).unwrap(),
            ResourceArn::Consumer {
                stream: "s1".into(),
                consumer: "c-1".into(),
                created_s: 1_700_000_000
            }
        );
        let code = |arn: &str| parse_resource_arn(&o, arn).unwrap_err().code;
        assert_eq!(code("nope"), ErrorCode::Validation);
        assert_eq!(
            code("arn:aws:kinesis:eu-west-1:123456789012:stream/s1"),
            ErrorCode::ResourceNotFound
        );
        assert_eq!(
            code(&format!("{base}s1/consumer/c:x")),
            ErrorCode::InvalidArgument
        );
        assert_eq!(code(&format!("{base}a*b")), ErrorCode::InvalidArgument);
        assert_eq!(
            consumer_arn(&format!("{base}s1"), "c", 1_700_000_000_999),
            format!("{base}s1/consumer/c:1700000000")
        );
    }
}
