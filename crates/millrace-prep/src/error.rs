//! Typed errors of prep: each names the object, table, job file or statement it is about.

use datafusion::error::DataFusionError;
use millrace_lake::LakeError;

#[derive(Debug, thiserror::Error)]
pub enum PrepError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    // The cause is part of the message and deliberately not a source (thiserror would take a
    // field named `source` as one): DataFusion's errors repeat their own causes, and a report
    // walking the chain would print them again.
    #[error("{context}: {error}")]
    DataFusion {
        context: String,
        error: DataFusionError,
    },
    #[error("{object}: byte {offset}: {message}")]
    Decode {
        object: String,
        offset: u64,
        message: String,
    },
    #[error("table {table}: {message}")]
    Input { table: String, message: String },
    #[error("job {path}: {message}")]
    Job { path: String, message: String },
    #[error("output {path}: {message}")]
    Output { path: String, message: String },
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl PrepError {
    pub(crate) fn df(context: impl Into<String>) -> impl FnOnce(DataFusionError) -> Self {
        let context = context.into();
        move |error| Self::DataFusion { context, error }
    }
}

impl From<PrepError> for DataFusionError {
    fn from(e: PrepError) -> Self {
        match e {
            PrepError::DataFusion { error, .. } => error,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

pub type Result<T, E = PrepError> = std::result::Result<T, E>;
