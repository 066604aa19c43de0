use std::path::PathBuf;

/// Everything that can go wrong in the log. Variants map one-to-one onto what a caller (the
/// Kinesis API) must tell its client, so the gateway can pick the AWS error type without
/// parsing messages.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("Stream {0} under account 000000000000 not found.")]
    StreamNotFound(String),
    #[error("Stream {0} under account 000000000000 already exists.")]
    StreamExists(String),
    #[error("Shard {shard} in stream {stream} under account 000000000000 does not exist")]
    ShardNotFound { stream: String, shard: String },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("stream {0} is being deleted")]
    Deleting(String),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt metadata in {path}: {message}")]
    CorruptMeta { path: PathBuf, message: String },
    #[error("the shard writer for {0} has stopped")]
    WriterGone(String),
}

pub type Result<T, E = StreamError> = std::result::Result<T, E>;

/// Attaches the path to an `io::Error`, so every I/O failure says which file it was.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| StreamError::Io {
            path: path.into(),
            source,
        })
    }
}
