//! Verifying AWS Signature Version 4: the request's canonical form is rebuilt from what the
//! client says it signed (its `SignedHeaders`, the path and query as sent, the body's hash),
//! and the signature recomputed with aws-sigv4's key derivation and HMAC (the same code the
//! Rust SDK signs with), then compared in constant time.
//!
//! Both forms are read: the `Authorization` header and the presigned query
//! (`X-Amz-Algorithm`, `X-Amz-Credential`, … `X-Amz-Signature`). The payload hash is the
//! `X-Amz-Content-Sha256` header when sent — `UNSIGNED-PAYLOAD` and the `STREAMING-…` forms
//! verbatim, a hex digest only if it matches the body — and the body's SHA-256 otherwise.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{AuthError, MISMATCH};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's signing time may be from the server's clock, either way.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// The longest a presigned URL may live (seven days, as on AWS).
const MAX_EXPIRES_SECS: u64 = 7 * 24 * 3600;
const AMZ_DATE: &str = "%Y%m%dT%H%M%SZ";

/// The parts of an HTTP request a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    /// The query string as sent, without `?`.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    /// The authority for a `host` the headers lack (HTTP/2's `:authority`).
    pub authority: Option<&'a str>,
    pub body: &'a [u8],
}

impl<'a> HttpRequest<'a> {
    /// A request as a server received it: method, path and query as sent, its headers, the
    /// authority of its URI (HTTP/2), and the body read whole.
    pub fn from_parts(parts: &'a http::request::Parts, body: &'a [u8]) -> Self {
        Self {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            authority: parts.uri.authority().map(|a| a.as_str()),
            body,
        }
    }
}

/// What a request claims: who signed it, when, for which scope, over which headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub access_key_id: String,
    /// The scope's date, `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// `X-Amz-Date` (or `Date`) as signed.
    pub amz_date: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// Presigned: the query's `X-Amz-Expires`.
    pub expires: Option<u64>,
}

impl Claim {
    fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Reads the signature a request carries, without checking it.
pub fn parse(req: &HttpRequest) -> Result<Claim, AuthError> {
    if let Some(auth) = req.headers.get(http::header::AUTHORIZATION) {
        let auth = auth
            .to_str()
            .map_err(|_| AuthError::Incomplete("the Authorization header is not text".into()))?;
        return parse_header(auth, req.headers);
    }
    let query = query_pairs(req.query);
    if query.iter().any(|(k, _)| k == "X-Amz-Algorithm") {
        return parse_query(&query);
    }
    Err(AuthError::MissingToken)
}

fn parse_header(auth: &str, headers: &HeaderMap) -> Result<Claim, AuthError> {
    let Some(params) = auth.strip_prefix(ALGORITHM) else {
        return Err(AuthError::Incomplete(format!(
            "Authorization header must start with '{ALGORITHM}' (Signature Version 4). \
             Authorization={auth}"
        )));
    };
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in params.split(',') {
        let (k, v) = part.trim().split_once('=').unwrap_or((part.trim(), ""));
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let mut missing = Vec::new();
    for (name, v) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ] {
        if v.is_none_or(str::is_empty) {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    let amz_date = header_str(headers, "x-amz-date").or_else(|| http_date(headers));
    if amz_date.is_none() {
        missing.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header."
                .into(),
        );
    }
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(format!(
            "{} Authorization={auth}",
            missing.join(" ")
        )));
    }
    claim(
        credential.unwrap_or_default(),
        signed_headers.unwrap_or_default(),
        signature.unwrap_or_default(),
        amz_date.unwrap_or_default(),
        None,
    )
}

fn parse_query(query: &[(String, String)]) -> Result<Claim, AuthError> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if get("X-Amz-Algorithm") != Some(ALGORITHM) {
        return Err(AuthError::Incomplete(format!(
            "X-Amz-Algorithm must be '{ALGORITHM}'"
        )));
    }
    let mut missing = Vec::new();
    for name in [
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
        "X-Amz-Expires",
    ] {
        if get(name).is_none_or(str::is_empty) {
            missing.push(name);
        }
    }
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(format!(
            "a presigned request requires the query parameters {}",
            missing.join(", ")
        )));
    }
    let expires = get("X-Amz-Expires")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&s| s <= MAX_EXPIRES_SECS)
        .ok_or_else(|| {
            AuthError::Incomplete(format!(
                "X-Amz-Expires must be a number of seconds from 0 to {MAX_EXPIRES_SECS}"
            ))
        })?;
    claim(
        get("X-Amz-Credential").unwrap_or_default(),
        get("X-Amz-SignedHeaders").unwrap_or_default(),
        get("X-Amz-Signature").unwrap_or_default(),
        get("X-Amz-Date").unwrap_or_default().to_owned(),
        Some(expires),
    )
}

fn claim(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: String,
    expires: Option<u64>,
) -> Result<Claim, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, terminator] = parts[..] else {
        return Err(AuthError::Incomplete(format!(
            "Credential must have the form <AccessKeyId>/<YYYYMMDD>/<region>/<service>/\
             aws4_request, not '{credential}'"
        )));
    };
    if terminator != "aws4_request" {
        return Err(AuthError::BadSignature(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not \
             '{terminator}'."
        )));
    }
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::BadSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    Ok(Claim {
        access_key_id: key.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        amz_date,
        signed_headers,
        signature: signature.to_owned(),
        expires,
    })
}

/// Checks `claim` against `req` for a service that signs as `service` in `region`, with the
/// caller's `secret`, at `now`.
pub fn verify(
    req: &HttpRequest,
    claim: &Claim,
    secret: &str,
    service: &str,
    region: &str,
    now: SystemTime,
) -> Result<(), AuthError> {
    let signed_at = check_times(claim, now)?;
    if claim.service != service {
        return Err(AuthError::BadSignature(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    if claim.region != region {
        return Err(AuthError::BadSignature(format!(
            "Credential should be scoped to a valid region, not '{}'. This server's region \
             is '{region}'.",
            claim.region
        )));
    }
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, signed_at, region, service);
    // A presigned URL's payload: botocore signs UNSIGNED-PAYLOAD, aws-sdk-rust the body's hash.
    for payload in payload_hashes(req, claim.expires.is_some())? {
        let canonical = canonical_request(req, claim, &payload);
        let to_sign = format!(
            "{ALGORITHM}\n{}\n{}\n{}",
            claim.amz_date,
            claim.scope(),
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let expected = aws_sigv4::sign::v4::calculate_signature(&key, to_sign.as_bytes());
        if bool::from(expected.as_bytes().ct_eq(claim.signature.as_bytes())) {
            return Ok(());
        }
    }
    Err(AuthError::BadSignature(MISMATCH.into()))
}

/// The signing time, checked: it parses, agrees with the scope's date, and is within
/// [`MAX_SKEW`] of `now` (or, presigned, not past its expiry).
fn check_times(claim: &Claim, now: SystemTime) -> Result<SystemTime, AuthError> {
    let t = NaiveDateTime::parse_from_str(&claim.amz_date, AMZ_DATE)
        .map_err(|_| {
            AuthError::Incomplete(format!(
                "X-Amz-Date must have the form YYYYMMDD'T'HHMMSS'Z', not '{}'",
                claim.amz_date
            ))
        })?
        .and_utc();
    if claim.date.len() != 8 || !claim.amz_date.starts_with(&claim.date) {
        return Err(AuthError::BadSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{}', from '{}'.",
            claim.date,
            claim.amz_date.get(..8).unwrap_or(""),
            claim.amz_date
        )));
    }
    let now_utc: DateTime<Utc> = now.into();
    let skew = chrono::Duration::from_std(MAX_SKEW).unwrap_or_default();
    let fmt = |d: DateTime<Utc>| d.format(AMZ_DATE).to_string();
    match claim.expires {
        Some(secs) => {
            let end = t + chrono::Duration::seconds(secs as i64);
            if now_utc > end {
                return Err(AuthError::Expired(format!(
                    "Request has expired: signed at {}, valid for {secs} seconds, now {}",
                    claim.amz_date,
                    fmt(now_utc)
                )));
            }
        }
        None if t < now_utc - skew => {
            return Err(AuthError::Expired(format!(
                "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                claim.amz_date,
                fmt(now_utc - skew),
                fmt(now_utc)
            )));
        }
        None => {}
    }
    if t > now_utc + skew {
        return Err(AuthError::Expired(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            claim.amz_date,
            fmt(now_utc + skew),
            fmt(now_utc)
        )));
    }
    // The signing key derives from the scope's date.
    let day = NaiveDate::parse_from_str(&claim.date, "%Y%m%d")
        .map_err(|_| AuthError::Incomplete(format!("bad credential date '{}'", claim.date)))?;
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    Ok(midnight.into())
}

/// The canonical request: method, URI, query, the signed headers, their names, the payload
/// hash.
fn canonical_request(req: &HttpRequest, claim: &Claim, payload_hash: &str) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    out.push_str(&canonical_query(req.query, claim.expires.is_some()));
    out.push('\n');
    for name in &claim.signed_headers {
        out.push_str(name);
        out.push(':');
        out.push_str(&header_value(req, name));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&claim.signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// Characters SigV4 leaves as they are: the unreserved ones.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

/// The path as sent, encoded once more (every AWS service but S3 signs the path
/// double-encoded).
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    utf8_percent_encode(path, UNRESERVED_AND_SLASH).to_string()
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            (dec(k), dec(v))
        })
        .collect()
}

/// Parameters decoded, re-encoded strictly and sorted; a presigned request's own signature
/// left out.
fn canonical_query(query: &str, presigned: bool) -> String {
    let enc = |s: &str| utf8_percent_encode(s, UNRESERVED).to_string();
    let mut pairs: Vec<(String, String)> = query_pairs(query)
        .into_iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (enc(&k), enc(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header's values, trimmed, inner runs of spaces collapsed, joined by commas.
fn header_value(req: &HttpRequest, name: &str) -> String {
    let values: Vec<String> = req
        .headers
        .get_all(name)
        .iter()
        .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
        .collect();
    if values.is_empty() && name == "host" {
        return req.authority.unwrap_or_default().to_owned();
    }
    values.join(",")
}

fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The payload hashes the signature may cover: `X-Amz-Content-Sha256` when sent (a digest
/// must match the body), else the body's digest (presigned: `UNSIGNED-PAYLOAD` first).
fn payload_hashes(req: &HttpRequest, presigned: bool) -> Result<Vec<String>, AuthError> {
    let computed = || hex::encode(Sha256::digest(req.body));
    let Some(claimed) = header_str(req.headers, "x-amz-content-sha256") else {
        return Ok(if presigned {
            vec!["UNSIGNED-PAYLOAD".into(), computed()]
        } else {
            vec![computed()]
        });
    };
    if claimed == "UNSIGNED-PAYLOAD" || claimed.starts_with("STREAMING-") {
        return Ok(vec![claimed]);
    }
    if claimed.len() == 64 && claimed.eq_ignore_ascii_case(&computed()) {
        return Ok(vec![claimed]);
    }
    Err(AuthError::BadSignature(
        "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
    ))
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
}

/// A `Date` header (RFC 1123) in the `X-Amz-Date` form.
fn http_date(headers: &HeaderMap) -> Option<String> {
    let d = header_str(headers, "date")?;
    DateTime::parse_from_rfc2822(&d)
        .ok()
        .map(|t| t.with_timezone(&Utc).format(AMZ_DATE).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sigv4::http_request::{
        PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
        sign,
    };
    use aws_sigv4::sign::v4;
    use http::HeaderValue;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    struct Signed {
        method: String,
        path: String,
        query: String,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    impl Signed {
        fn req(&self) -> HttpRequest<'_> {
            HttpRequest {
                method: &self.method,
                path: &self.path,
                query: &self.query,
                headers: &self.headers,
                authority: None,
                body: &self.body,
            }
        }
    }

    /// Signs a request the way aws-sdk-rust does.
    fn signed(
        uri: &str,
        body: &[u8],
        at: SystemTime,
        settings: SigningSettings,
        extra: &[(&str, &str)],
    ) -> Signed {
        let identity = aws_credential_types_identity();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("kinesis")
            .time(at)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let mut headers = vec![
            ("host", "127.0.0.1:4567"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Kinesis_20131202.ListStreams"),
        ];
        headers.extend_from_slice(extra);
        let signable = SignableRequest::new(
            "POST",
            uri,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut req = http::Request::builder().method("POST").uri(uri);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut req);
        let (parts, _) = req.into_parts();
        Signed {
            method: "POST".into(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or("").to_owned(),
            headers: parts.headers,
            body: body.to_vec(),
        }
    }

    fn aws_credential_types_identity() -> aws_smithy_runtime_api::client::identity::Identity {
        aws_credential_types::Credentials::new("AKIDEXAMPLE", SECRET, None, None, "test").into()
    }

    fn check(s: &Signed, now: SystemTime) -> Result<(), AuthError> {
        let claim = parse(&s.req())?;
        verify(&s.req(), &claim, SECRET, "kinesis", "us-east-1", now)
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn a_request_signed_by_the_sdk_verifies() {
        let s = signed(
            "http://127.0.0.1:4567/",
            b"{}",
            now(),
            SigningSettings::default(),
            &[],
        );
        check(&s, now()).unwrap();
        assert_eq!(parse(&s.req()).unwrap().access_key_id, "AKIDEXAMPLE");
    }

    #[test]
    fn a_path_and_query_needing_encoding_verify() {
        let s = signed(
            "http://127.0.0.1:4567/endpoints/my%20model/invocations?b=2&a=x%2Fy&a=1",
            b"1,2,3",
            now(),
            SigningSettings::default(),
            &[("x-amz-custom", "  a   b  ")],
        );
        check(&s, now()).unwrap();
    }

    #[test]
    fn a_tampered_body_or_header_is_refused() {
        let mut s = signed(
            "http://127.0.0.1:4567/",
            b"{\"StreamName\":\"a\"}",
            now(),
            SigningSettings::default(),
            &[],
        );
        s.body = b"{\"StreamName\":\"b\"}".to_vec();
        assert_eq!(
            check(&s, now()),
            Err(AuthError::BadSignature(MISMATCH.into()))
        );
        let mut s = signed(
            "http://127.0.0.1:4567/",
            b"{}",
            now(),
            SigningSettings::default(),
            &[],
        );
        s.headers.insert(
            "x-amz-target",
            HeaderValue::from_static("Kinesis_20131202.DeleteStream"),
        );
        assert!(matches!(check(&s, now()), Err(AuthError::BadSignature(_))));
    }

    #[test]
    fn a_wrong_secret_is_refused() {
        let s = signed(
            "http://127.0.0.1:4567/",
            b"{}",
            now(),
            SigningSettings::default(),
            &[],
        );
        let claim = parse(&s.req()).unwrap();
        let r = verify(&s.req(), &claim, "other", "kinesis", "us-east-1", now());
        assert_eq!(r, Err(AuthError::BadSignature(MISMATCH.into())));
    }

    #[test]
    fn skew_beyond_fifteen_minutes_either_way_is_refused() {
        let at = now();
        let s = signed(
            "http://127.0.0.1:4567/",
            b"{}",
            at,
            SigningSettings::default(),
            &[],
        );
        check(&s, at + Duration::from_secs(14 * 60)).unwrap();
        let late = check(&s, at + Duration::from_secs(16 * 60)).unwrap_err();
        assert!(
            matches!(&late, AuthError::Expired(m) if m.starts_with("Signature expired")),
            "{late:?}"
        );
        let early = check(&s, at - Duration::from_secs(16 * 60)).unwrap_err();
        assert!(matches!(early, AuthError::Expired(_)), "{early:?}");
    }

    #[test]
    fn unsigned_payload_and_a_matching_digest_header_verify_a_wrong_digest_does_not() {
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let s = signed(
            "http://127.0.0.1:4567/",
            b"{}",
            now(),
            settings.clone(),
            &[],
        );
        check(&s, now()).unwrap();
        let mut bad = signed("http://127.0.0.1:4567/", b"{}", now(), settings, &[]);
        bad.body = b"{ }".to_vec();
        assert!(
            matches!(check(&bad, now()), Err(AuthError::BadSignature(m)) if m.contains("x-amz-content-sha256"))
        );
        let identity = aws_credential_types_identity();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("kinesis")
            .time(now())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = [("host", "h"), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")];
        let signable = SignableRequest::new(
            "POST",
            "http://h/",
            headers.iter().copied(),
            SignableBody::UnsignedPayload,
        )
        .unwrap();
        let (ins, _) = sign(signable, &params).unwrap().into_parts();
        let mut req = http::Request::builder()
            .method("POST")
            .uri("http://h/")
            .header("host", "h")
            .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            .body(())
            .unwrap();
        ins.apply_to_request_http1x(&mut req);
        let s = Signed {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: req.headers().clone(),
            body: b"anything".to_vec(),
        };
        check(&s, now()).unwrap();
    }

    #[test]
    fn presigned_queries_verify_until_they_expire() {
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(60));
        let at = now();
        let s = signed("http://127.0.0.1:4567/status", b"", at, settings, &[]);
        assert!(s.query.contains("X-Amz-Signature"), "{}", s.query);
        // The SDK signs presigned requests over UNSIGNED-PAYLOAD.
        check(&s, at).unwrap();
        assert!(matches!(
            check(&s, at + Duration::from_secs(61)),
            Err(AuthError::Expired(_))
        ));
    }

    #[test]
    fn missing_and_incomplete_signatures_say_what_is_missing() {
        let headers = HeaderMap::new();
        let req = HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            authority: None,
            body: b"",
        };
        assert_eq!(parse(&req), Err(AuthError::MissingToken));
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AK/20261206/us-east-1/kinesis/aws4_request",
            ),
        );
        let req = HttpRequest {
            headers: &headers,
            ..req
        };
        let err = parse(&req).unwrap_err();
        let AuthError::Incomplete(m) = &err else {
            panic!("{err:?}")
        };
        assert!(
            m.contains("'Signature'") && m.contains("'SignedHeaders'") && m.contains("X-Amz-Date"),
            "{m}"
        );
    }

    #[test]
    fn a_scope_for_another_service_or_region_is_refused() {
        let s = signed(
            "http://127.0.0.1:4567/",
            b"{}",
            now(),
            SigningSettings::default(),
            &[],
        );
        let claim = parse(&s.req()).unwrap();
        let r = verify(&s.req(), &claim, SECRET, "firehose", "us-east-1", now());
        assert!(matches!(r, Err(AuthError::BadSignature(m)) if m.contains("'firehose'")));
        let r = verify(&s.req(), &claim, SECRET, "kinesis", "eu-west-1", now());
        assert!(matches!(r, Err(AuthError::BadSignature(m)) if m.contains("region")));
    }
}
