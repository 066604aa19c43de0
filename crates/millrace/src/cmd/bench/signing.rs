//! How the benchmarks' raw HTTP clients authenticate. A target URL with credentials in its
//! userinfo (`http://AKIA…:SECRET@127.0.0.1:4567`) is called with real SigV4 signatures made
//! by aws-sigv4, the signer the Rust SDK uses (a server under `[auth] mode = "enforce"`);
//! any other URL gets a placeholder signature header, which emulators check for and nobody
//! verifies.

use std::time::SystemTime;

use anyhow::Context;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

/// A target URL without its credentials, and the credentials.
pub(crate) struct Target {
    pub url: String,
    credentials: Option<(String, String)>,
}

impl Target {
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let mut parsed = url::Url::parse(url).with_context(|| format!("URL {url:?}"))?;
        if parsed.username().is_empty() {
            return Ok(Self {
                url: url.to_owned(),
                credentials: None,
            });
        }
        let key = parsed.username().to_owned();
        let secret = percent_encoding::percent_decode_str(parsed.password().unwrap_or(""))
            .decode_utf8_lossy()
            .into_owned();
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        Ok(Self {
            url: parsed.to_string(),
            credentials: Some((key, secret)),
        })
    }

    /// The authentication headers for a POST of `body` with `headers` to the service whose
    /// signing name is `service`.
    pub fn auth_headers(
        &self,
        service: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Vec<(String, String)>> {
        let Some((key, secret)) = &self.credentials else {
            return Ok(vec![
                ("x-amz-date".into(), "20261125T120000Z".into()),
                (
                    "authorization".into(),
                    format!(
                        "AWS4-HMAC-SHA256 Credential=bench/20261125/us-east-1/{service}/\
                         aws4_request, SignedHeaders=content-type;host;x-amz-date;\
                         x-amz-target, Signature=00"
                    ),
                ),
            ]);
        };
        let identity =
            aws_credential_types::Credentials::new(key, secret, None, None, "bench").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let request = SignableRequest::new(
            "POST",
            &self.url,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )?;
        let (instructions, _) = sign(request, &params)?.into_parts();
        let (out, _) = instructions.into_parts();
        Ok(out
            .into_iter()
            .map(|h| (h.name().to_owned(), h.value().to_owned()))
            .collect())
    }
}
