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
    /// A record over the limits the Kinesis API keeps (`limits`): the store refuses it from
    /// any writer, so no internal writer can store what a reader of the API cannot take.
    #[error("a record of {bytes} bytes of data is over the limit of {limit} bytes per record")]
    RecordTooLarge { bytes: usize, limit: usize },
    #[error("a partition key of {chars} characters is outside the allowed length of 1 to {max}")]
    PartitionKeyLength { chars: usize, max: usize },
    /// The OS refused a file descriptor (EMFILE: this process's limit; ENFILE: the system's).
    /// A limit, not a failure: the same call succeeds once descriptors are free again.
    #[error(
        "no file descriptor left to open {path}: {source}; raise the open-file limit \
         (ulimit -n) or use fewer shards"
    )]
    OutOfDescriptors {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    /// Another change to the stream (a reshard, a mode change) is under way.
    #[error("{0}")]
    ResourceInUse(String),
    /// Encryption at rest: a key the keyring does not hold (Kinesis's KMSNotFoundException).
    #[error("{0}")]
    KeyNotFound(String),
    /// Encryption at rest: the keyring cannot be used, or a sealed record does not open
    /// (KMSInvalidStateException). Never answered with data in its place.
    #[error("{0}")]
    KeyUnavailable(String),
}

impl From<crate::keyring::KeyringError> for StreamError {
    fn from(e: crate::keyring::KeyringError) -> Self {
        use crate::keyring::KeyringError as K;
        match e {
            K::KeyNotFound { .. } | K::FingerprintNotFound { .. } => {
                Self::KeyNotFound(e.to_string())
            }
            _ => Self::KeyUnavailable(e.to_string()),
        }
    }
}

pub type Result<T, E = StreamError> = std::result::Result<T, E>;

impl StreamError {
    /// An I/O error on `path`: [`StreamError::OutOfDescriptors`] when the OS refused a
    /// descriptor, [`StreamError::Io`] otherwise.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if millrace_common::fd::is_out_of_descriptors(&source) {
            Self::OutOfDescriptors { path, source }
        } else {
            Self::Io { path, source }
        }
    }

    /// The same error again, for each of several callers one failure answers (a shard writer's
    /// batch): the variant, the path and the OS error code are kept.
    pub(crate) fn duplicate(&self) -> Self {
        let copy = |e: &std::io::Error| match e.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::new(e.kind(), e.to_string()),
        };
        match self {
            Self::StreamNotFound(s) => Self::StreamNotFound(s.clone()),
            Self::StreamExists(s) => Self::StreamExists(s.clone()),
            Self::ShardNotFound { stream, shard } => Self::ShardNotFound {
                stream: stream.clone(),
                shard: shard.clone(),
            },
            Self::InvalidArgument(s) => Self::InvalidArgument(s.clone()),
            Self::LimitExceeded(s) => Self::LimitExceeded(s.clone()),
            Self::Deleting(s) => Self::Deleting(s.clone()),
            Self::ResourceInUse(s) => Self::ResourceInUse(s.clone()),
            Self::RecordTooLarge { bytes, limit } => Self::RecordTooLarge {
                bytes: *bytes,
                limit: *limit,
            },
            Self::PartitionKeyLength { chars, max } => Self::PartitionKeyLength {
                chars: *chars,
                max: *max,
            },
            Self::OutOfDescriptors { path, source } => Self::OutOfDescriptors {
                path: path.clone(),
                source: copy(source),
            },
            Self::Io { path, source } => Self::Io {
                path: path.clone(),
                source: copy(source),
            },
            Self::CorruptMeta { path, message } => Self::CorruptMeta {
                path: path.clone(),
                message: message.clone(),
            },
            Self::WriterGone(s) => Self::WriterGone(s.clone()),
            Self::KeyNotFound(s) => Self::KeyNotFound(s.clone()),
            Self::KeyUnavailable(s) => Self::KeyUnavailable(s.clone()),
        }
    }
}

/// Attaches the path to an `io::Error`, so every I/O failure says which file it was.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| StreamError::io(path, source))
    }
}
