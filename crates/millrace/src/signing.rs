//! SigV4 for the binary's own raw HTTP clients (the benchmarks, `millrace status`), made by
//! aws-sigv4, the signer the Rust SDK uses, for a server under `[auth] mode = "enforce"`. The
//! benchmarks put credentials in a target URL's userinfo (`http://AKIA…:SECRET@127.0.0.1:4567`);
//! a URL without them gets a placeholder signature header, which emulators check for and
//! nobody verifies.

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
        body: Payload,
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
        let creds = Credentials {
            key,
            secret,
            region: "us-east-1".into(),
        };
        signed_headers(&creds, "POST", &self.url, service, headers, body)
    }
}

/// What a signature covers of a request's body: its bytes, hashed while signing, or the hex
/// SHA-256 of bytes hashed once beforehand (a benchmark's pre-encoded bodies, sent many
/// times). Either way the request on the wire is the same and the server hashes the body it
/// receives.
#[derive(Clone, Copy)]
pub(crate) enum Payload<'a> {
    Bytes(&'a [u8]),
    Sha256(&'a str),
}

impl<'a> Payload<'a> {
    fn signable(self) -> SignableBody<'a> {
        match self {
            Payload::Bytes(b) => SignableBody::Bytes(b),
            Payload::Sha256(h) => SignableBody::Precomputed(h.to_owned()),
        }
    }
}

/// The hex SHA-256 of `body`, as [`Payload::Sha256`] takes it.
pub(crate) fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(body))
}

/// An access key, its secret, and the region requests are signed for.
pub(crate) struct Credentials<'a> {
    pub key: &'a str,
    pub secret: &'a str,
    pub region: String,
}

/// The headers (`authorization`, `x-amz-date`) that sign a request.
pub(crate) fn signed_headers(
    creds: &Credentials,
    method: &str,
    url: &str,
    service: &str,
    headers: &[(&str, &str)],
    body: Payload,
) -> anyhow::Result<Vec<(String, String)>> {
    let identity =
        aws_credential_types::Credentials::new(creds.key, creds.secret, None, None, "millrace")
            .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&creds.region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let request = SignableRequest::new(method, url, headers.iter().copied(), body.signable())?;
    let (instructions, _) = sign(request, &params)?.into_parts();
    let (out, _) = instructions.into_parts();
    Ok(out
        .into_iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect())
}
