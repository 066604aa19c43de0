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

    /// A scoring checkpoint that cannot be read or written (its path is in the message).
    #[error(transparent)]
    Checkpoint(#[from] millrace_delivery::DeliveryError),

    #[error(transparent)]
    Model(#[from] millrace_automl::AutoMlError),
}
