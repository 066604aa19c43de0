//! Errors of the serving stage, and the one place they become HTTP answers.
//!
//! Each variant is something a caller can act on: a model or version that is not there (404),
//! a request that is wrong as sent (400, 413, 415), a registry change that is busy (503, retry),
//! or a fault on the server's side (500). [`ServeError::status`] is the only mapping from
//! variants to HTTP statuses, and [`ServeError`]'s `IntoResponse` the only body shape
//! (`{"error": "<message>"}`), as `millrace-gateway`'s `error.rs` is for AWS error types.
//!
//! The SageMaker Runtime API (`crate::sagemaker`) answers the same errors in SageMaker's
//! shape: [`ServeError::sagemaker`] is the only mapping onto its error types
//! ([`SageMakerError`]), [`ServeError::into_sagemaker_response`] the only rest-json error body
//! (`x-amzn-errortype` and `{"Message": …}`), and [`endpoint_refusal`] answers the server's own
//! refusals in that shape to SDK clients.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use millrace_http::{Refusal, RefusalKind};
use serde_json::json;
use thiserror::Error;

use crate::input::InputError;

#[derive(Debug, Error)]
pub enum ServeError {
    /// No model of this name in the registry.
    #[error(
        "no model named {name} under {} (train one with millrace train --name {name})",
        registry.display()
    )]
    ModelNotFound { name: String, registry: PathBuf },

    /// The endpoint serves no model of this name (`POST /models/NAME/invocations`).
    #[error("no model named {name} is served here (serving: {})", serving.join(", "))]
    NotServed { name: String, serving: Vec<String> },

    /// A SageMaker endpoint name that names no served model (nor a version of one), in
    /// SageMaker's words for an unknown endpoint.
    #[error(
        "Endpoint {name} of account {ACCOUNT} not found. Endpoints here: {} (NAME-vN for a \
         version)",
        serving.join(", ")
    )]
    EndpointNotFound { name: String, serving: Vec<String> },

    /// A SageMaker request header that cannot apply as sent; names the header.
    #[error("{header}: {problem}")]
    BadHeader {
        header: &'static str,
        problem: String,
    },

    /// As many asynchronous invocations wait as the endpoint queues: try again later.
    #[error(
        "{pending} asynchronous invocations are waiting, the most this endpoint queues; retry \
         with backoff"
    )]
    AsyncQueueFull { pending: usize },

    /// An asynchronous invocation that waited or ran longer than its request allowed.
    #[error("{limit} of {secs} s passed before the inference finished")]
    Expired { limit: &'static str, secs: u64 },

    /// The model exists; this version does not (it has no model.json).
    #[error(
        "model {name} has no version v{version} (versions: {})",
        list_versions(versions)
    )]
    VersionNotFound {
        name: String,
        version: u32,
        /// The versions there are, ascending.
        versions: Vec<u32>,
    },

    /// The registry names a production version whose model.json is gone: someone must promote
    /// another one.
    #[error(
        "model {name}: production version v{version} has no model.json under {} (versions: {}); \
         promote another one",
        dir.display(),
        list_versions(versions)
    )]
    ProductionMissing {
        name: String,
        version: u32,
        dir: PathBuf,
        versions: Vec<u32>,
    },

    /// A model name that cannot be a folder name.
    #[error(
        "model name {name:?}: use 1 to 128 letters, digits, '-', '_' or '.' (not starting with \
         '.')"
    )]
    InvalidName { name: String },

    /// `NAME:something` where something is not a version.
    #[error("model {spec:?}: after ':' comes a version such as v3 (NAME:v3)")]
    InvalidSpec { spec: String },

    /// A rollback with no earlier production version to go back to (`production` is the one
    /// in production, if any).
    #[error("{}", no_rollback(name, *production))]
    NoRollback {
        name: String,
        production: Option<u32>,
    },

    /// A request or setting that cannot apply as asked: a model named twice, nothing to serve,
    /// an invalid scoring configuration.
    #[error("{0}")]
    Invalid(String),

    /// A request body that cannot be scored; names the record and the field where it applies.
    #[error(transparent)]
    BadInput(#[from] InputError),

    /// A request body over the endpoint's limit.
    #[error("the body is over the {limit}-byte limit (--max-payload-mb)")]
    PayloadTooLarge { limit: usize },

    /// A `Content-Type` the endpoint does not read.
    #[error(
        "content type `{content_type}` is not supported; send application/json, \
         application/jsonlines or text/csv"
    )]
    UnsupportedMediaType { content_type: String },

    /// A body without a `Content-Type`: the endpoint does not guess.
    #[error(
        "the request has no Content-Type header; send application/json, application/jsonlines \
         or text/csv"
    )]
    MissingContentType,

    /// Another change holds the model's registry lock (and it is not stale yet): try again.
    #[error(
        "{} is held by another change ({holder}); try again (a lock older than {stale_secs} s is \
         taken over)",
        lock.display()
    )]
    RegistryBusy {
        lock: PathBuf,
        holder: String,
        stale_secs: u64,
    },

    /// Other machines changed a model's registry state (S3) every time this change tried to
    /// apply: try again.
    #[error(
        "{location}: the registry state changed under this change {attempts} times in a row \
         (other machines are changing it); retry"
    )]
    RegistryContended { location: String, attempts: u32 },

    /// The object store under a registry on S3 failed (unreachable, denied, …).
    #[error("registry {location}: {source}")]
    RegistryStore {
        location: String,
        #[source]
        source: millrace_lake::LakeError,
    },

    /// A file that is there but cannot be read as what it should be (a registry state file, a
    /// model.json, a drift report); the message says what to do.
    #[error("{path}: {problem}")]
    Corrupt { path: String, problem: String },

    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },

    /// A fault of ours: a panic while scoring, a state that cannot be serialised.
    #[error("{0}")]
    Internal(String),

    /// Reading or writing a stream (the scorer).
    #[error("{0}")]
    Stream(String),

    /// A scoring checkpoint that cannot be read or written (its path is in the message).
    #[error(transparent)]
    Checkpoint(millrace_io::IoError),

    /// A model that cannot be read, or that failed to score.
    #[error(transparent)]
    Model(#[from] millrace_automl::AutoMlError),

    /// Reading or writing a stream (the scorer): [`millrace_io::IoError::is_transient`] says
    /// whether a retry helps.
    #[error(transparent)]
    StreamIo(#[from] millrace_io::IoError),
}

impl ServeError {
    /// True when a consumer group gave a scorer's shard to another member (not a failure).
    pub fn is_not_owned(&self) -> bool {
        matches!(self, ServeError::StreamIo(e) | ServeError::Checkpoint(e) if e.is_not_owned())
    }

    /// The HTTP status of this error: the one mapping, used by every endpoint answer.
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::ModelNotFound { .. }
            | ServeError::NotServed { .. }
            | ServeError::EndpointNotFound { .. }
            | ServeError::VersionNotFound { .. } => StatusCode::NOT_FOUND,
            ServeError::InvalidName { .. }
            | ServeError::InvalidSpec { .. }
            | ServeError::Invalid(_)
            | ServeError::BadHeader { .. }
            | ServeError::BadInput(_) => StatusCode::BAD_REQUEST,
            ServeError::NoRollback { .. } => StatusCode::CONFLICT,
            ServeError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::UnsupportedMediaType { .. } | ServeError::MissingContentType => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ServeError::RegistryBusy { .. }
            | ServeError::RegistryContended { .. }
            | ServeError::AsyncQueueFull { .. }
            | ServeError::Expired { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ServeError::ProductionMissing { .. }
            | ServeError::RegistryStore { .. }
            | ServeError::Corrupt { .. }
            | ServeError::Io { .. }
            | ServeError::Internal(_)
            | ServeError::Stream(_)
            | ServeError::Checkpoint(_)
            | ServeError::Model(_)
            | ServeError::StreamIo(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request can succeed later without changes (the lock is released, the
    /// queue has room).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ServeError::RegistryBusy { .. }
                | ServeError::RegistryContended { .. }
                | ServeError::AsyncQueueFull { .. }
                | ServeError::Expired { .. }
        )
    }

    /// SageMaker's error type for this error: the one mapping for the SageMaker Runtime API.
    /// What the model judges (the body, its media type, the scoring) is a `ModelError`, as a
    /// container's own 4xx or 5xx is on SageMaker; what the service judges (the endpoint
    /// name, headers, limits) a `ValidationError`.
    pub fn sagemaker(&self) -> SageMakerError {
        match self {
            ServeError::BadInput(_)
            | ServeError::UnsupportedMediaType { .. }
            | ServeError::MissingContentType
            | ServeError::Model(_) => SageMakerError::ModelError,
            ServeError::ModelNotFound { .. }
            | ServeError::NotServed { .. }
            | ServeError::EndpointNotFound { .. }
            | ServeError::VersionNotFound { .. }
            | ServeError::InvalidName { .. }
            | ServeError::InvalidSpec { .. }
            | ServeError::Invalid(_)
            | ServeError::BadHeader { .. }
            | ServeError::NoRollback { .. }
            | ServeError::PayloadTooLarge { .. } => SageMakerError::ValidationError,
            ServeError::RegistryBusy { .. }
            | ServeError::RegistryContended { .. }
            | ServeError::AsyncQueueFull { .. }
            | ServeError::Expired { .. } => SageMakerError::ServiceUnavailable,
            ServeError::ProductionMissing { .. }
            | ServeError::RegistryStore { .. }
            | ServeError::Corrupt { .. }
            | ServeError::Io { .. }
            | ServeError::Internal(_)
            | ServeError::Stream(_)
            | ServeError::Checkpoint(_)
            | ServeError::StreamIo(_) => SageMakerError::InternalFailure,
        }
    }

    /// The rest-json error structure: `Message`, and for a `ModelError` what the model
    /// answered (`OriginalStatusCode`, `OriginalMessage`), as SageMaker relays a container's
    /// error.
    pub fn sagemaker_body(&self) -> serde_json::Value {
        match self.sagemaker() {
            SageMakerError::ModelError => {
                let status = self.status().as_u16();
                let side = if status < 500 { "client" } else { "server" };
                json!({
                    "Message": format!(
                        "Received {side} error ({status}) from model with message \"{self}\"."
                    ),
                    "OriginalStatusCode": status,
                    "OriginalMessage": self.to_string(),
                })
            }
            _ => json!({ "Message": self.to_string() }),
        }
    }

    /// The event that ends a SageMaker response stream with this error: the
    /// [`SageMakerError::stream_exception`] of its type, with `{"Message": …}`.
    pub fn sagemaker_stream_exception(&self) -> bytes::Bytes {
        millrace_http::eventstream::exception(
            self.sagemaker().stream_exception(),
            "application/json",
            json!({ "Message": self.to_string() })
                .to_string()
                .into_bytes(),
        )
    }

    /// The SageMaker Runtime API's answer for this error: [`SageMakerError::status`], the type
    /// in `x-amzn-errortype` (where botocore and the AWS SDKs read it) and
    /// [`ServeError::sagemaker_body`].
    pub fn into_sagemaker_response(self) -> Response {
        let kind = self.sagemaker();
        let mut resp = (
            kind.status(),
            [(header::CONTENT_TYPE, "application/json")],
            self.sagemaker_body().to_string(),
        )
            .into_response();
        resp.headers_mut()
            .insert(ERROR_TYPE, HeaderValue::from_static(kind.as_str()));
        resp
    }

    /// The scorer's configuration errors, until it names them with [`ServeError::Invalid`].
    #[doc(hidden)]
    #[allow(non_snake_case)]
    pub fn Registry(message: String) -> ServeError {
        ServeError::Invalid(message)
    }
}

/// `{"error": "<message>"}` with [`ServeError::status`].
impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        (
            self.status(),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// The account SageMaker's messages name (millrace has none; the gateway's ARNs use the same).
pub const ACCOUNT: &str = "000000000000";

/// The header of a rest-json error that names its type.
const ERROR_TYPE: &str = "x-amzn-errortype";

/// The error types of the SageMaker Runtime API this endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SageMakerError {
    /// 400: the request is wrong as sent (an unknown endpoint, a bad header, over a limit).
    ValidationError,
    /// 424: the model refused the input or failed on it; its status and message are relayed.
    ModelError,
    /// 500: a fault of ours.
    InternalFailure,
    /// 503: busy for now; the same request succeeds later.
    ServiceUnavailable,
}

impl SageMakerError {
    pub fn as_str(self) -> &'static str {
        match self {
            SageMakerError::ValidationError => "ValidationError",
            SageMakerError::ModelError => "ModelError",
            SageMakerError::InternalFailure => "InternalFailure",
            SageMakerError::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The HTTP status the service model gives this error type.
    pub fn status(self) -> StatusCode {
        match self {
            SageMakerError::ValidationError => StatusCode::BAD_REQUEST,
            SageMakerError::ModelError => StatusCode::FAILED_DEPENDENCY,
            SageMakerError::InternalFailure => StatusCode::INTERNAL_SERVER_ERROR,
            SageMakerError::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The exception event that ends a response stream already under way: the model's
    /// failure is a `ModelStreamError`, anything else an `InternalStreamFailure`.
    pub fn stream_exception(self) -> &'static str {
        match self {
            SageMakerError::ModelError => "ModelStreamError",
            _ => "InternalStreamFailure",
        }
    }
}

/// The endpoint's refusals (busy, unknown Host, slow body): `{"error": …}` as its own errors
/// are, or SageMaker's shape to a request signed for AWS (the SDKs' requests), so that
/// botocore reads `ServiceUnavailable` and retries.
pub fn endpoint_refusal(refusal: &Refusal, request: &HeaderMap) -> Response<Body> {
    let signed = request
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-"));
    if !signed {
        return millrace_http::json_refusal(refusal, request);
    }
    let kind = match refusal.kind() {
        RefusalKind::Unavailable => SageMakerError::ServiceUnavailable,
        RefusalKind::Host | RefusalKind::Timeout => SageMakerError::ValidationError,
    };
    let body = json!({ "Message": refusal.to_string() }).to_string();
    let mut resp = Response::new(Body::from(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(ERROR_TYPE, HeaderValue::from_static(kind.as_str()));
    resp
}

/// `v1, v2` (or `none`), for messages that list a model's versions.
pub(crate) fn list_versions(all: &[u32]) -> String {
    if all.is_empty() {
        "none".to_owned()
    } else {
        all.iter()
            .map(|v| format!("v{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn no_rollback(name: &str, production: Option<u32>) -> String {
    match production {
        None => format!(
            "model {name} has no production version to roll back from (promote one with millrace \
             models promote {name}:vN)"
        ),
        Some(v) => format!(
            "model {name} has no earlier production version to roll back to (v{v} is in \
             production)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_whose_fault_it_is() {
        let not_found = ServeError::VersionNotFound {
            name: "m".into(),
            version: 9,
            versions: vec![1, 2],
        };
        assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            not_found.to_string(),
            "model m has no version v9 (versions: v1, v2)"
        );
        let bad = ServeError::from(InputError {
            record: Some(1),
            field: Some("a".into()),
            message: "record 1: field `a` is an object".into(),
        });
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert_eq!(bad.to_string(), "record 1: field `a` is an object");
        assert_eq!(
            ServeError::PayloadTooLarge { limit: 10 }.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let busy = ServeError::RegistryBusy {
            lock: "m/_registry.lock".into(),
            holder: "pid 1".into(),
            stale_secs: 30,
        };
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(busy.retryable());
        assert_eq!(
            ServeError::Internal("scoring failed: boom".into()).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn sagemaker_types_say_whose_fault_it_is() {
        let unknown = ServeError::EndpointNotFound {
            name: "nope".into(),
            serving: vec!["churn".into()],
        };
        assert_eq!(unknown.sagemaker(), SageMakerError::ValidationError);
        assert!(
            unknown
                .to_string()
                .starts_with("Endpoint nope of account 000000000000 not found.")
        );
        let bad = ServeError::from(InputError {
            record: Some(0),
            field: None,
            message: "record 0: not an object".into(),
        });
        assert_eq!(bad.sagemaker(), SageMakerError::ModelError);
        assert_eq!(
            bad.sagemaker_body(),
            json!({
                "Message": "Received client error (400) from model with message \"record 0: not an object\".",
                "OriginalStatusCode": 400,
                "OriginalMessage": "record 0: not an object",
            })
        );
        assert_eq!(
            ServeError::MissingContentType.sagemaker_body()["OriginalStatusCode"],
            415
        );
        let panicked = ServeError::Internal("scoring failed: boom".into());
        assert_eq!(panicked.sagemaker(), SageMakerError::InternalFailure);
        assert_eq!(
            panicked.sagemaker_body(),
            json!({"Message": "scoring failed: boom"})
        );
        assert_eq!(
            ServeError::AsyncQueueFull { pending: 64 }.sagemaker(),
            SageMakerError::ServiceUnavailable
        );
        let resp = ServeError::PayloadTooLarge { limit: 1 }.into_sagemaker_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.headers()[ERROR_TYPE], "ValidationError");
        for (kind, status) in [
            (SageMakerError::ValidationError, 400),
            (SageMakerError::ModelError, 424),
            (SageMakerError::InternalFailure, 500),
            (SageMakerError::ServiceUnavailable, 503),
        ] {
            assert_eq!(kind.status().as_u16(), status);
        }
        assert_eq!(bad.sagemaker().stream_exception(), "ModelStreamError");
        assert_eq!(
            panicked.sagemaker().stream_exception(),
            "InternalStreamFailure"
        );
    }

    #[test]
    fn refusals_answer_sdk_requests_in_sagemaker_shape() {
        let busy = Refusal::TooManyConnections { max: 2 };
        let plain = endpoint_refusal(&busy, &HeaderMap::new());
        assert!(!plain.headers().contains_key(ERROR_TYPE));
        let mut signed = HeaderMap::new();
        signed.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/sagemaker"),
        );
        let sdk = endpoint_refusal(&busy, &signed);
        assert_eq!(sdk.headers()[ERROR_TYPE], "ServiceUnavailable");
        let host = endpoint_refusal(
            &Refusal::HostNotAllowed {
                host: "evil.example".into(),
            },
            &signed,
        );
        assert_eq!(host.headers()[ERROR_TYPE], "ValidationError");
    }
}
