//! Errors of the trainer, each saying what in the data is wrong.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AutoMlError {
    /// The target cannot be learnt as it is (constant, missing, one row per class …).
    #[error("target `{column}`: {message}")]
    Target { column: String, message: String },

    /// More columns than the trainer takes ([`crate::train::Options::max_columns`]): refused
    /// before any work, so a very wide file fails in a second instead of running for hours.
    #[error(
        "the data has {columns} columns; train takes at most {limit} (--max-columns). Keep the \
         useful ones first (`millrace prep` with a SELECT, or a recipe's `select` step) or raise \
         the limit"
    )]
    TooWide { columns: usize, limit: usize },

    #[error("{0}")]
    Data(String),
}
