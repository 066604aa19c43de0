//! The SageMaker Runtime API on the endpoint, so that code written for SageMaker
//! (`boto3.client("sagemaker-runtime", endpoint_url=…)`, any AWS SDK) runs against millrace by
//! changing only the endpoint URL. One operation per file: `invoke.rs` (InvokeEndpoint),
//! `stream.rs` (InvokeEndpointWithResponseStream), `async_invoke.rs` (InvokeEndpointAsync,
//! reading and writing `s3://lake/KEY` objects through `lake.rs`).
//!
//! An endpoint name is a served model's name (following promotions, as the model does), or
//! `NAME-vN` / `NAME:vN` (the SDKs percent-encode the colon) for version N of a served model,
//! loaded from the registry. `X-Amzn-SageMaker-Target-Variant: vN` picks a version the same
//! way; every answer names the version that scored in `x-Amzn-Invoked-Production-Variant`
//! (`vN`). The model echoes `X-Amzn-SageMaker-Custom-Attributes` back, as a container that
//! sets them does. Bodies and predictions are those of `/invocations`. Errors are answered in
//! SageMaker's rest-json shape by `crate::error`'s one mapping. Under `[auth]`, `crate::auth`
//! checks each request's signature and policies before these handlers run.

mod async_invoke;
mod invoke;
mod lake;
mod stream;

use millrace_automl::explain::Detail;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;

use crate::endpoint::{self, Endpoint, Invoked};
use crate::error::ServeError;

pub(crate) use async_invoke::AsyncQueue;

const TARGET_VARIANT: &str = "X-Amzn-SageMaker-Target-Variant";
const CUSTOM_ATTRIBUTES: &str = "X-Amzn-SageMaker-Custom-Attributes";
const INVOKED_VARIANT: &str = "x-Amzn-Invoked-Production-Variant";
/// The longest custom attributes SageMaker passes on.
const MAX_CUSTOM_ATTRIBUTES: usize = 1024;

/// The three operations, each answering with an `x-amzn-RequestId`.
pub(crate) fn routes() -> Router<Arc<Endpoint>> {
    Router::new()
        .route(
            "/endpoints/{name}/invocations",
            post(invoke::invoke_endpoint),
        )
        .route(
            "/endpoints/{name}/invocations-response-stream",
            post(stream::invoke_endpoint_with_response_stream),
        )
        .route(
            "/endpoints/{name}/async-invocations",
            post(async_invoke::invoke_endpoint_async),
        )
        .layer(axum::middleware::map_response(with_request_id))
}

async fn with_request_id(mut resp: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(&millrace_common::ids::uuid_v4()) {
        resp.headers_mut().insert("x-amzn-RequestId", v);
    }
    resp
}

/// The served model and the version that an endpoint name and the request's
/// `X-Amzn-SageMaker-Target-Variant` invoke.
pub(crate) async fn target(
    ep: &Arc<Endpoint>,
    name: &str,
    headers: &HeaderMap,
) -> Result<Invoked, ServeError> {
    let Some((slot, pinned)) = parse_endpoint_name(name, |n| ep.slot_named(n)) else {
        return Err(ServeError::EndpointNotFound {
            name: name.to_owned(),
            serving: ep.slot_names(),
        });
    };
    let version = match (pinned, variant(headers)?) {
        (Some(p), Some(v)) if p != v => {
            return Err(ServeError::BadHeader {
                header: TARGET_VARIANT,
                problem: format!("endpoint {name} has one variant, v{p}; v{v} is not it"),
            });
        }
        (p, v) => p.or(v),
    };
    ep.invoked(slot, version).await
}

/// The served model (by `slot_named`) and version an endpoint name stands for: `NAME` itself,
/// or `NAME-vN`, `NAME:vN`, `NAME:N`. A served model named like `a-v2` is itself first.
fn parse_endpoint_name(
    name: &str,
    slot_named: impl Fn(&str) -> Option<usize>,
) -> Option<(usize, Option<u32>)> {
    if let Some(slot) = slot_named(name) {
        return Some((slot, None));
    }
    let (model, version) = match name.rsplit_once(':') {
        Some((model, v)) => (model, v.strip_prefix('v').unwrap_or(v)),
        None => name.rsplit_once("-v")?,
    };
    let version = digits(version)?;
    Some((slot_named(model)?, Some(version)))
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The version `X-Amzn-SageMaker-Target-Variant` names: variants are versions, `vN`.
fn variant(headers: &HeaderMap) -> Result<Option<u32>, ServeError> {
    let Some(v) = header(headers, TARGET_VARIANT)? else {
        return Ok(None);
    };
    match v.strip_prefix('v').and_then(digits) {
        Some(n) => Ok(Some(n)),
        None => Err(ServeError::BadHeader {
            header: TARGET_VARIANT,
            problem: format!(
                "{v:?} is not a variant here: the variants of an endpoint are its model's \
                 versions, v1, v2, …"
            ),
        }),
    }
}

/// A header's value as text; a value that is not visible ASCII is refused, naming the header.
pub(crate) fn header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, ServeError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| ServeError::BadHeader {
            header: name,
            problem: "the value is not visible US-ASCII".into(),
        }),
    }
}

/// `X-Amzn-SageMaker-Custom-Attributes`, checked (at most 1024 ASCII characters), to echo.
fn custom_attributes(headers: &HeaderMap) -> Result<Option<HeaderValue>, ServeError> {
    let Some(v) = header(headers, CUSTOM_ATTRIBUTES)? else {
        return Ok(None);
    };
    if v.len() > MAX_CUSTOM_ATTRIBUTES {
        return Err(ServeError::BadHeader {
            header: CUSTOM_ATTRIBUTES,
            problem: format!(
                "{} characters, over the {MAX_CUSTOM_ATTRIBUTES} SageMaker passes on",
                v.len()
            ),
        });
    }
    Ok(headers.get(CUSTOM_ATTRIBUTES).cloned())
}

/// Names the version that scored (`x-Amzn-Invoked-Production-Variant: vN`, and
/// `x-millrace-model: NAME:vN` as `/invocations` does) and echoes the custom attributes.
fn describe(resp: &mut Response, target: &Invoked, attributes: Option<HeaderValue>) {
    let h = resp.headers_mut();
    let loaded = &target.loaded;
    if let Ok(v) = HeaderValue::from_str(&format!("v{}", loaded.version)) {
        h.insert(INVOKED_VARIANT, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{}:v{}", loaded.name, loaded.version)) {
        h.insert("x-millrace-model", v);
    }
    if let Some(v) = attributes {
        h.insert(CUSTOM_ATTRIBUTES, v);
    }
}

/// Reads a request body within the endpoint's limit; a refusal counts against the model.
async fn read_counted(
    ep: &Endpoint,
    target: &Invoked,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<Bytes, ServeError> {
    endpoint::read_body(ep, headers, body)
        .await
        .inspect_err(|e| ep.observe(target.slot, e.status().as_u16(), 0, started))
}

/// Scores a body with the invoked version, as `/invocations` does, counting the request in
/// its model's metrics.
async fn score_counted(
    ep: &Endpoint,
    target: &Invoked,
    content_type: Option<&str>,
    body: &[u8],
    explain: Option<Detail>,
    started: Instant,
) -> Result<Vec<Value>, ServeError> {
    let result = endpoint::score_body(&target.loaded, content_type, body, explain).await;
    let (status, n) = match &result {
        Ok((_, n)) => (200, *n),
        Err((e, n)) => (e.status().as_u16(), *n),
    };
    ep.observe(target.slot, status, n, started);
    result.map(|(p, _)| p).map_err(|(e, _)| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(n: &str) -> Option<usize> {
        ["churn", "fraud-v2", "a_b.c"].iter().position(|s| *s == n)
    }

    #[test]
    fn endpoint_names_are_models_or_their_versions() {
        assert_eq!(parse_endpoint_name("churn", served), Some((0, None)));
        assert_eq!(parse_endpoint_name("churn-v3", served), Some((0, Some(3))));
        assert_eq!(parse_endpoint_name("churn:v3", served), Some((0, Some(3))));
        assert_eq!(parse_endpoint_name("churn:3", served), Some((0, Some(3))));
        assert_eq!(parse_endpoint_name("a_b.c-v1", served), Some((2, Some(1))));
        // A model named like a version is itself; its own versions follow the same rule.
        assert_eq!(parse_endpoint_name("fraud-v2", served), Some((1, None)));
        assert_eq!(
            parse_endpoint_name("fraud-v2-v7", served),
            Some((1, Some(7)))
        );
        for unknown in [
            "nope",
            "churn-v",
            "churn-v3x",
            "churn-3",
            "churn:",
            "churn:vv3",
            "churn-v+3",
            "nope-v3",
            "churn-v99999999999",
            "",
        ] {
            assert_eq!(parse_endpoint_name(unknown, served), None, "{unknown}");
        }
    }

    #[test]
    fn variants_are_versions() {
        let mut h = HeaderMap::new();
        assert_eq!(variant(&h).unwrap(), None);
        h.insert(TARGET_VARIANT, HeaderValue::from_static("v12"));
        assert_eq!(variant(&h).unwrap(), Some(12));
        h.insert(TARGET_VARIANT, HeaderValue::from_static("AllTraffic"));
        let e = variant(&h).unwrap_err();
        assert!(e.to_string().contains(TARGET_VARIANT), "{e}");
        assert_eq!(e.sagemaker(), crate::error::SageMakerError::ValidationError);
    }

    #[test]
    fn custom_attributes_are_echoed_within_the_limit() {
        let mut h = HeaderMap::new();
        assert!(custom_attributes(&h).unwrap().is_none());
        h.insert(CUSTOM_ATTRIBUTES, HeaderValue::from_static("trace=abc"));
        assert_eq!(custom_attributes(&h).unwrap().unwrap(), "trace=abc");
        let long = "x".repeat(MAX_CUSTOM_ATTRIBUTES + 1);
        h.insert(CUSTOM_ATTRIBUTES, HeaderValue::from_str(&long).unwrap());
        assert!(custom_attributes(&h).is_err());
    }
}
