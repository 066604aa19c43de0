//! What can go wrong with a queue, as variants a caller (the Kinesis API) maps onto its wire
//! errors without reading messages.

use std::path::{Path, PathBuf};

use millrace_stream::StreamError;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// No queue with this id (never created, or deleted).
    #[error("Queue {0} not found.")]
    NotFound(String),
    /// A queue of this name exists already.
    #[error("Queue {name} already exists as {id}.")]
    NameInUse { name: String, id: String },
    /// The request conflicts with the queue's or the stream's state.
    #[error("{0}")]
    InUse(String),
    /// A value the operation cannot take (a stream not in on-demand mode, a bad position).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A queue's files that cannot be read back (a `queue.json` that does not parse).
    #[error("queue state in {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// Attaches the path to an I/O error.
pub(crate) trait IoAt<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoAt<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| QueueError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// Why one entry of a batch (acknowledge, visibility, restore) failed: the AWS error code of
/// the entry and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub code: EntryErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryErrorCode {
    /// The receipt handle is not this queue's, is stale, or names a record in another state.
    InvalidArgument,
    /// The record is no longer in the queue (acknowledged, or gone with the stream's
    /// retention).
    ResourceNotFound,
    InternalFailure,
}

impl EntryErrorCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidArgument => "InvalidArgumentException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::InternalFailure => "InternalFailureException",
        }
    }
}

impl EntryError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: EntryErrorCode::InvalidArgument,
            message: message.into(),
        }
    }

    pub(crate) fn gone(message: impl Into<String>) -> Self {
        Self {
            code: EntryErrorCode::ResourceNotFound,
            message: message.into(),
        }
    }
}
