//! The Firehose API's errors and the one place they become wire errors.

use std::path::PathBuf;

use millrace_gateway::{ApiError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InUse(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    ConcurrentModification(String),
    /// The buffer could not take the records (its store failed): try again.
    #[error("{0}")]
    Unavailable(String),
    /// The key of encryption at rest is not in the keyring, or cannot be used
    /// (InvalidKMSResourceException).
    #[error("{0}")]
    Kms(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a delivery stream: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

impl From<FirehoseError> for ApiError {
    fn from(e: FirehoseError) -> Self {
        let code = match &e {
            FirehoseError::NotFound(_) => ErrorCode::ResourceNotFound,
            FirehoseError::InUse(_) => ErrorCode::ResourceInUse,
            FirehoseError::Invalid(_) => ErrorCode::InvalidArgument,
            FirehoseError::LimitExceeded(_) => ErrorCode::LimitExceeded,
            FirehoseError::ConcurrentModification(_) => ErrorCode::ConcurrentModification,
            FirehoseError::Unavailable(_) => ErrorCode::ServiceUnavailable,
            FirehoseError::Kms(_) => ErrorCode::InvalidKmsResource,
            FirehoseError::Io { .. } | FirehoseError::Corrupt { .. } => {
                tracing::error!(error = %e, "firehose registry failure");
                ErrorCode::InternalFailure
            }
        };
        ApiError::new(code, e.to_string())
    }
}
