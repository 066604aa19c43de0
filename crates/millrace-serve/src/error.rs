//! Errors of the serving stage.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ServeError {
    /// A model or version that does not exist, or a registry action that cannot apply.
    #[error("{0}")]
    Registry(String),

    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },

    /// Reading or writing a stream (the scorer).
    #[error("{0}")]
    Stream(String),

    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: String, message: String },

    #[error(transparent)]
    Model(#[from] millrace_automl::AutoMlError),
}
