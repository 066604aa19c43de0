//! What can go wrong reading or writing a stream, as variants a caller can act on, and the one
//! answer to "does a retry help?" ([`IoError::is_transient`]).
//!
//! Each backend classifies its own failures here (`embedded::store_error`,
//! `kinesis::sdk_error`); messages keep the backend's own text (the AWS error type and message,
//! or the store's), prefixed by the operation (`GetRecords on shardId-… of churn`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The stream or shard is not there (never created, deleted, another region or endpoint).
    #[error("{op}: {message}")]
    StreamNotFound { op: String, message: String },
    /// Another member of the reader's consumer group reads this shard now (a rebalance gave
    /// it away): the reader stops it, and starts it again if the group hands it back.
    #[error("shard {shard} of stream {stream} was handed to another member of group {group}")]
    NotOwned {
        stream: String,
        shard: String,
        group: String,
    },

    /// The service refused for now (throughput exceeded, KMS throttling, too many calls):
    /// the same request succeeds later, after a backoff.
    #[error("{op}: {message}")]
    Throttled { op: String, message: String },

    /// The stream API did not answer (connection refused, timeout, DNS): retry once it is back.
    #[error("{op}: {message}")]
    Unreachable { op: String, message: String },

    /// A position the stream cannot read from: not a sequence number of this stream (a
    /// checkpoint from another stream), or an iterator the service no longer accepts.
    #[error("{op}: {message}")]
    BadPosition { op: String, message: String },

    /// The shard was closed (resharded): it has no records after its last one.
    #[error("shard {shard} of stream {stream} is closed")]
    ShardClosed { stream: String, shard: String },

    /// The request is wrong as sent (a validation error, a record over the limit, access
    /// denied): sending it again changes nothing.
    #[error("{op}: {message}")]
    Rejected { op: String, message: String },

    /// The stream failed on its side (an internal failure, a storage I/O error, a garbled
    /// answer); `transient` when the service says a retry may succeed.
    #[error("{op}: {message}")]
    Failed {
        op: String,
        message: String,
        transient: bool,
    },

    /// Records the stream still refused when the retries ran out (or at once, when their
    /// failure was not one a retry helps). `first` is the index of the first of them in what
    /// was put; `transient` when the last failure was one a later retry may get past.
    #[error(
        "PutRecords to {stream}: {failed} records (first: record {first}) not acknowledged \
         after {attempts} tries; last error {last_error}"
    )]
    Unacknowledged {
        stream: String,
        failed: usize,
        first: usize,
        attempts: u32,
        last_error: String,
        transient: bool,
    },

    /// A checkpoint file that cannot be read, parsed or replaced.
    #[error("checkpoint {}: {source}", path.display())]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A task reading or writing the stream panicked or was cancelled.
    #[error("{op}: {message}")]
    Task { op: String, message: String },
}

impl IoError {
    /// Whether the same call can succeed later without changes: throttling, an unreachable
    /// API, a failure the service calls temporary, or records refused only for now.
    pub fn is_transient(&self) -> bool {
        match self {
            IoError::Throttled { .. } | IoError::Unreachable { .. } => true,
            IoError::Failed { transient, .. } | IoError::Unacknowledged { transient, .. } => {
                *transient
            }
            IoError::StreamNotFound { .. }
            | IoError::BadPosition { .. }
            | IoError::ShardClosed { .. }
            | IoError::Rejected { .. }
            | IoError::Checkpoint { .. }
            | IoError::NotOwned { .. }
            | IoError::Task { .. } => false,
        }
    }

    /// True for [`IoError::Throttled`]: the only whole-call failure a put retries by itself.
    pub fn is_throttled(&self) -> bool {
        matches!(self, IoError::Throttled { .. })
    }

    /// True when a consumer group gave the shard to another member: stop reading it, quietly.
    pub fn is_not_owned(&self) -> bool {
        matches!(self, IoError::NotOwned { .. })
    }

    /// True when the stream (or shard) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, IoError::StreamNotFound { .. })
    }

    /// A failed `spawn_blocking` or task join.
    pub(crate) fn task(op: impl Into<String>, e: impl std::fmt::Display) -> Self {
        IoError::Task {
            op: op.into(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_says_whether_a_retry_helps() {
        let op = || "PutRecords to s".to_owned();
        let m = || "m".to_owned();
        assert!(
            IoError::Throttled {
                op: op(),
                message: m()
            }
            .is_transient()
        );
        assert!(
            IoError::Unreachable {
                op: op(),
                message: m()
            }
            .is_transient()
        );
        assert!(
            !IoError::StreamNotFound {
                op: op(),
                message: m()
            }
            .is_transient()
        );
        assert!(
            !IoError::Rejected {
                op: op(),
                message: m()
            }
            .is_transient()
        );
        let e = IoError::Checkpoint {
            path: "/state/x.json".into(),
            source: std::io::Error::other("disk full"),
        };
        assert!(!e.is_transient());
        assert_eq!(e.to_string(), "checkpoint /state/x.json: disk full");
    }
}
