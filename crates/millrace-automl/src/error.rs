//! Errors of the trainer, each saying what in the data is wrong.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AutoMlError {
    /// The target cannot be learnt as it is (constant, missing, one row per class …).
    #[error("target `{column}`: {message}")]
    Target { column: String, message: String },

    #[error("{0}")]
    Data(String),
}
