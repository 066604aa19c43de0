//! AWS error types of the Kinesis API and the one place that maps store errors onto them.

use millrace_stream::StreamError;

/// The `__type` values a Kinesis client understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ResourceNotFound,
    ResourceInUse,
    InvalidArgument,
    ExpiredIterator,
    ExpiredNextToken,
    LimitExceeded,
    /// Over a shard's throughput (opt-in, `throttle.rs`) or an injected fault; HTTP 400.
    ProvisionedThroughputExceeded,
    Validation,
    Serialization,
    UnknownOperation,
    RequestTooLarge,
    InternalFailure,
    /// Firehose: UpdateDestination with a stale version id.
    ConcurrentModification,
    /// Firehose: the delivery stream cannot take the records now; try again.
    ServiceUnavailable,
    /// Encryption at rest: the KeyId names no key of the keyring.
    KmsNotFound,
    /// Encryption at rest: the keyring cannot be used, or sealed records do not open.
    KmsInvalidState,
    /// Firehose: the delivery stream's key is not in the keyring or cannot be used.
    InvalidKmsResource,
    /// A request that did not authenticate, or whose caller may not do what it asked
    /// (`millrace-auth`): the AWS type and status are the auth error's own.
    Auth {
        code: &'static str,
        status: u16,
    },
}

impl ErrorCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::ResourceInUse => "ResourceInUseException",
            Self::InvalidArgument => "InvalidArgumentException",
            Self::ExpiredIterator => "ExpiredIteratorException",
            Self::ExpiredNextToken => "ExpiredNextTokenException",
            Self::LimitExceeded => "LimitExceededException",
            Self::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            Self::Validation => "ValidationException",
            Self::Serialization => "SerializationException",
            Self::UnknownOperation => "UnknownOperationException",
            Self::RequestTooLarge => "RequestEntityTooLargeException",
            Self::InternalFailure => "InternalFailure",
            Self::ConcurrentModification => "ConcurrentModificationException",
            Self::ServiceUnavailable => "ServiceUnavailableException",
            Self::KmsNotFound => "KMSNotFoundException",
            Self::KmsInvalidState => "KMSInvalidStateException",
            Self::InvalidKmsResource => "InvalidKMSResourceException",
            Self::Auth { code, .. } => code,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::InternalFailure => 500,
            Self::RequestTooLarge => 413,
            Self::ServiceUnavailable => 503,
            Self::Auth { status, .. } => *status,
            _ => 400,
        }
    }
}

/// An error answered to the client: an AWS type and a message saying what was wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Serialization, message)
    }

    /// AWS's wording for a violated model constraint on one member.
    pub fn validation(member: &str, value: &str, constraint: &str) -> Self {
        Self::new(
            ErrorCode::Validation,
            format!(
                "1 validation error detected: Value {value} at '{member}' failed to satisfy \
                 constraint: {constraint}"
            ),
        )
    }
}

impl From<StreamError> for ApiError {
    fn from(e: StreamError) -> Self {
        let code = match &e {
            StreamError::StreamNotFound(_) | StreamError::ShardNotFound { .. } => {
                ErrorCode::ResourceNotFound
            }
            StreamError::StreamExists(_)
            | StreamError::Deleting(_)
            | StreamError::ResourceInUse(_) => ErrorCode::ResourceInUse,
            StreamError::InvalidArgument(_)
            | StreamError::RecordTooLarge { .. }
            | StreamError::PartitionKeyLength { .. } => ErrorCode::InvalidArgument,
            StreamError::LimitExceeded(_) => ErrorCode::LimitExceeded,
            // Out of file descriptors is a limit reached, not a failure: a 400 the client
            // can act on (fewer shards, or a retry once descriptors are free).
            StreamError::OutOfDescriptors { .. } => {
                tracing::warn!(error = %e, "out of file descriptors");
                ErrorCode::LimitExceeded
            }
            StreamError::KeyNotFound(_) => ErrorCode::KmsNotFound,
            StreamError::KeyUnavailable(_) => {
                tracing::error!(error = %e, "encryption at rest");
                ErrorCode::KmsInvalidState
            }
            StreamError::Io { .. }
            | StreamError::CorruptMeta { .. }
            | StreamError::WriterGone(_) => {
                tracing::error!(error = %e, "internal failure");
                ErrorCode::InternalFailure
            }
        };
        Self::new(code, e.to_string())
    }
}

impl From<millrace_auth::AuthError> for ApiError {
    fn from(e: millrace_auth::AuthError) -> Self {
        let code = ErrorCode::Auth {
            code: e.aws_code(),
            status: e.status(),
        };
        Self::new(code, e.to_string())
    }
}

impl From<millrace_queue::QueueError> for ApiError {
    fn from(e: millrace_queue::QueueError) -> Self {
        use millrace_queue::QueueError;
        let code = match &e {
            QueueError::NotFound(_) => ErrorCode::ResourceNotFound,
            QueueError::NameInUse { .. } | QueueError::InUse(_) => ErrorCode::ResourceInUse,
            QueueError::Invalid(_) => ErrorCode::InvalidArgument,
            QueueError::LimitExceeded(_) => ErrorCode::LimitExceeded,
            QueueError::Stream(_) => {
                let QueueError::Stream(s) = e else {
                    unreachable!()
                };
                return s.into();
            }
            QueueError::Io { .. } | QueueError::Corrupt { .. } => {
                tracing::error!(error = %e, "internal failure");
                ErrorCode::InternalFailure
            }
        };
        Self::new(code, e.to_string())
    }
}
