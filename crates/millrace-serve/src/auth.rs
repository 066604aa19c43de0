//! Identities on the endpoint: under `[auth]` every request but `/ping` must be SigV4-signed
//! for `sagemaker` and allowed by its principal's policies, as SageMaker Runtime checks
//! `sagemaker:InvokeEndpoint` (and the response-stream and async forms) on the endpoint's ARN.
//! The container-contract paths (`/invocations`, `/models/NAME/invocations`) are checked as
//! InvokeEndpoint on their model's endpoint; `/metrics` as `millrace:GetMetrics`. The rules
//! live in `millrace-auth`; refusals are answered in SageMaker's rest-json shape on its paths
//! and as `{"error": …}` on the others.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use millrace_auth::{AuthError, HttpRequest};

use crate::endpoint::Endpoint;

/// The action and resource a request path asks for.
fn action_and_resource(auth: &millrace_auth::Auth, path: &str, default: &str) -> (String, String) {
    let endpoint_arn = |name: &str| {
        let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
        // SageMaker's ARNs carry endpoint names in lower case.
        format!(
            "arn:aws:sagemaker:{}:{}:endpoint/{}",
            auth.region(),
            auth.account(),
            name.to_lowercase()
        )
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts[..] {
        ["endpoints", name, op] => {
            let action = match op {
                "invocations-response-stream" => "InvokeEndpointWithResponseStream",
                "async-invocations" => "InvokeEndpointAsync",
                _ => "InvokeEndpoint",
            };
            (format!("sagemaker:{action}"), endpoint_arn(name))
        }
        ["models", name, _] => ("sagemaker:InvokeEndpoint".into(), endpoint_arn(name)),
        ["invocations"] => ("sagemaker:InvokeEndpoint".into(), endpoint_arn(default)),
        ["metrics"] => ("millrace:GetMetrics".into(), "*".into()),
        _ => ("sagemaker:InvokeEndpoint".into(), "*".into()),
    }
}

/// The middleware: passes requests through when the endpoint has no identities.
pub(crate) async fn check(State(ep): State<Arc<Endpoint>>, req: Request, next: Next) -> Response {
    let Some(auth) = ep.auth() else {
        return next.run(req).await;
    };
    if req.uri().path() == "/ping" {
        return next.run(req).await;
    }
    let sagemaker = req.uri().path().starts_with("/endpoints/");
    let (parts, body) = req.into_parts();
    let bytes = match crate::endpoint::read_body(&ep, &parts.headers, body).await {
        Ok(bytes) => bytes,
        Err(e) if sagemaker => return e.into_sagemaker_response(),
        Err(e) => return e.into_response(),
    };
    let client = parts.extensions.get::<millrace_http::Client>();
    let signed = HttpRequest::from_parts(&parts, &bytes);
    let default = ep
        .serving()
        .first()
        .map(|(n, _)| n.clone())
        .unwrap_or_default();
    let (action, resource) = action_and_resource(auth, parts.uri.path(), &default);
    let checked = auth.check(
        &signed,
        "sagemaker",
        client.map(|c| c.addr.ip()),
        client.is_some_and(|c| c.tls),
        &action,
        &resource,
    );
    match checked {
        Ok(()) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => refusal(&e, sagemaker),
    }
}

/// AWS's error type in `x-amzn-errortype` and `{"Message": …}` (SageMaker's paths), or
/// `{"error": …}`, with the error's status.
fn refusal(e: &AuthError, sagemaker: bool) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN);
    let body = if sagemaker {
        serde_json::json!({ "Message": e.to_string() })
    } else {
        serde_json::json!({ "error": format!("{}: {e}", e.aws_code()) })
    };
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    resp.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(e.aws_code()));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_sagemaker_actions_on_endpoint_arns() {
        let dir = tempfile::tempdir().unwrap();
        let ids = dir.path().join("ids.toml");
        millrace_auth::identities::add(&ids, "a", &[]).unwrap();
        let audit =
            millrace_auth::Audit::open(millrace_auth::AuditConfig::new(dir.path())).unwrap();
        let auth = millrace_auth::Auth::new(
            millrace_auth::Mode::Enforce,
            &ids,
            "123456789012",
            "eu-west-1",
            audit,
        )
        .unwrap();
        let arn = "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/churn";
        for (path, action, resource) in [
            (
                "/endpoints/Churn/invocations",
                "sagemaker:InvokeEndpoint",
                arn,
            ),
            (
                "/endpoints/churn/invocations-response-stream",
                "sagemaker:InvokeEndpointWithResponseStream",
                arn,
            ),
            (
                "/endpoints/churn/async-invocations",
                "sagemaker:InvokeEndpointAsync",
                arn,
            ),
            ("/models/churn/invocations", "sagemaker:InvokeEndpoint", arn),
            ("/invocations", "sagemaker:InvokeEndpoint", arn),
            ("/metrics", "millrace:GetMetrics", "*"),
        ] {
            let (a, r) = action_and_resource(&auth, path, "churn");
            assert_eq!((a.as_str(), r.as_str()), (action, resource), "{path}");
        }
        let (_, r) = action_and_resource(&auth, "/endpoints/churn%3Av2/invocations", "x");
        assert!(r.ends_with("endpoint/churn:v2"), "{r}");
    }
}
