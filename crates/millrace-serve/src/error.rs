//! Errors of the serving stage, and the one place they become HTTP answers.
//!
//! Each variant is something a caller can act on: a model or version that is not there (404),
//! a request that is wrong as sent (400, 413, 415), a registry change that is busy (503, retry),
//! or a fault on the server's side (500). [`ServeError::status`] is the only mapping from
//! variants to HTTP statuses, and [`ServeError`]'s `IntoResponse` the only body shape
//! (`{"error": "<message>"}`), as `millrace-gateway`'s `error.rs` is for AWS error types.

use std::path::PathBuf;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
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
    /// The HTTP status of this error: the one mapping, used by every endpoint answer.
    pub fn status(&self) -> StatusCode {
        match self {
            ServeError::ModelNotFound { .. }
            | ServeError::NotServed { .. }
            | ServeError::VersionNotFound { .. } => StatusCode::NOT_FOUND,
            ServeError::InvalidName { .. }
            | ServeError::InvalidSpec { .. }
            | ServeError::Invalid(_)
            | ServeError::BadInput(_) => StatusCode::BAD_REQUEST,
            ServeError::NoRollback { .. } => StatusCode::CONFLICT,
            ServeError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ServeError::UnsupportedMediaType { .. } | ServeError::MissingContentType => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ServeError::RegistryBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ServeError::ProductionMissing { .. }
            | ServeError::Corrupt { .. }
            | ServeError::Io { .. }
            | ServeError::Internal(_)
            | ServeError::Stream(_)
            | ServeError::Checkpoint(_)
            | ServeError::Model(_)
            | ServeError::StreamIo(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request can succeed later without changes (the lock is released).
    pub fn retryable(&self) -> bool {
        matches!(self, ServeError::RegistryBusy { .. })
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
}
