//! Errors of recipes: where in the recipe (step number, operation, key) and what is wrong.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum WrangleError {
    /// The recipe file itself is wrong (found at load, before any data is read).
    #[error("{origin}: {message}")]
    Recipe { origin: String, message: String },

    /// A step cannot be fitted or applied to this data (a missing column, a string column where
    /// numbers are needed …).
    #[error("step {step} ({op}): {message}")]
    Step {
        step: usize,
        op: &'static str,
        message: String,
    },

    /// An expression in `filter` or `derive` does not parse or refers to something unknown.
    #[error("expression `{expr}`: {message}")]
    Expr { expr: String, message: String },

    #[error("{message}")]
    Data { message: String },

    #[error("fitted recipe {origin}: {message}")]
    State { origin: String, message: String },

    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),

    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = WrangleError> = std::result::Result<T, E>;
