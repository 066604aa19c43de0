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

/// An engine's error meaning that the query's rows so far are void and running it again from
/// the start may succeed: a cluster lost part of a finished job's result while it was read.
/// Prep runs such an output's query again (up to [`crate::run::QUERY_RUNS`] runs in all) before
/// it fails; the parts the broken run wrote are deleted first.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RunAgain(pub Box<dyn std::error::Error + Send + Sync>);

/// Whether `e` is, or wraps, a [`RunAgain`].
pub fn asks_to_run_again(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::External(b) => {
            b.is::<RunAgain>()
                || b.downcast_ref::<DataFusionError>()
                    .is_some_and(asks_to_run_again)
        }
        DataFusionError::Context(_, inner) => asks_to_run_again(inner),
        DataFusionError::Shared(inner) => asks_to_run_again(inner),
        _ => false,
    }
}

pub type Result<T, E = PrepError> = std::result::Result<T, E>;
