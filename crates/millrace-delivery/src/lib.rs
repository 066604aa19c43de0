//! `millrace-delivery` owns the Firehose part of the pipeline: it reads a stream's shards,
//! buffers records (by size and time), renders key prefixes (timestamps, dynamic partitions,
//! Hive layout), encodes objects (NDJSON, raw concatenation, Parquet; gzip/zstd), writes them to
//! the lake, and records checkpoints, so the lake ends with every record exactly once.
//!
//! Effectively once: before an object is written the shard's checkpoint records the sequence
//! range it will hold (the intent); object names derive from shard and sequence range; after
//! the objects are committed the checkpoint advances (stored with the next intent, or alone
//! when the shard idles or stops). A crash at any point replays exactly the range the stored
//! checkpoint names and rewrites the same objects.
//!
//! Sources: any `millrace_io::RecordSource` — the embedded store (read directly, woken on
//! append) or any Kinesis API. Bad records never stop a delivery: they go to the error prefix
//! with their reason.
//!
//! Before partitioning and encoding, each record may expand into several: KPL aggregated
//! records into their user records (`deaggregate_kpl`, [`kpl`]), then records holding several
//! into their sub-records (`split_records`, Firehose's RecordDeAggregation). Sub-records keep
//! their source record's sequence number and arrival time and stay in its flush, so object
//! names still come from source sequence numbers and a replay writes the same objects.

pub mod checkpoint;
mod cloudwatch;
pub mod config;
mod encode;
pub mod kpl;
pub mod metrics;
pub mod prefix;
pub mod query;
mod split;
mod worker;

pub use config::{Compression, Decompress, DeliveryConfig, Format, Split, is_file_extension};
pub use metrics::DeliveryMetrics;
pub use query::PartitionQuery;
pub use worker::{Delivery, RunMode};

/// Everything that can stop a delivery (bad records never do: they go to the error prefix).
/// [`DeliveryError::retryable`] says whether running the delivery again may get past it.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A setting that cannot work (the message names the key).
    #[error("delivery config: {0}")]
    Config(String),
    /// Reading the source stream failed: not found, throttled, unreachable, a bad position…
    #[error("reading the source stream: {0}")]
    Source(#[source] millrace_io::IoError),
    /// Writing an object to the lake failed.
    #[error(transparent)]
    Lake(#[from] millrace_lake::LakeError),
    /// A shard's checkpoint file cannot be read or replaced (the message names it).
    #[error(transparent)]
    Checkpoint(millrace_io::IoError),
    /// An object cannot be encoded (compression, Parquet).
    #[error("encoding an object: {0}")]
    Encode(String),
    /// A shard's task, or the blocking work it handed off, panicked or was cancelled.
    #[error("{what} failed: {source}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl DeliveryError {
    /// Whether running the delivery again, unchanged, may succeed: the source was throttled or
    /// unreachable, or the object store failed in a way its own retries did not get past (an
    /// outage). Replaying is always safe: the checkpoint's intent rewrites the same objects.
    pub fn retryable(&self) -> bool {
        match self {
            DeliveryError::Source(e) => e.is_transient(),
            DeliveryError::Lake(millrace_lake::LakeError::Store { source, .. }) => {
                matches!(source, object_store::Error::Generic { .. })
            }
            DeliveryError::Lake(_)
            | DeliveryError::Config(_)
            | DeliveryError::Checkpoint(_)
            | DeliveryError::Encode(_)
            | DeliveryError::Task { .. } => false,
        }
    }

    /// True when a consumer group gave the shard to another member: not a failure, the shard
    /// stops here and continues there.
    pub fn is_not_owned(&self) -> bool {
        matches!(self, DeliveryError::Source(e) | DeliveryError::Checkpoint(e) if e.is_not_owned())
    }
}

/// A checkpoint file's failure is a checkpoint error; anything else is the source's.
impl From<millrace_io::IoError> for DeliveryError {
    fn from(e: millrace_io::IoError) -> Self {
        match e {
            e @ millrace_io::IoError::Checkpoint { .. } => DeliveryError::Checkpoint(e),
            e => DeliveryError::Source(e),
        }
    }
}

pub type Result<T, E = DeliveryError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use millrace_io::IoError;

    #[test]
    fn errors_say_whether_a_retry_helps() {
        let throttled = DeliveryError::from(IoError::Throttled {
            op: "GetRecords on shardId-000000000000".into(),
            message: "ProvisionedThroughputExceededException: Rate exceeded".into(),
        });
        assert!(matches!(throttled, DeliveryError::Source(_)));
        assert!(throttled.retryable());
        assert_eq!(
            throttled.to_string(),
            "reading the source stream: GetRecords on shardId-000000000000: \
             ProvisionedThroughputExceededException: Rate exceeded"
        );
        let gone = DeliveryError::from(IoError::StreamNotFound {
            op: "ListShards of churn".into(),
            message: "ResourceNotFoundException".into(),
        });
        assert!(!gone.retryable());
        let cp = DeliveryError::from(IoError::Checkpoint {
            path: "/state/delivery/d/shardId-000000000000.json".into(),
            source: std::io::Error::other("disk full"),
        });
        assert!(matches!(cp, DeliveryError::Checkpoint(_)));
        assert!(!cp.retryable());
        assert_eq!(
            cp.to_string(),
            "checkpoint /state/delivery/d/shardId-000000000000.json: disk full"
        );
        assert!(!DeliveryError::Config("buffer_size_mib".into()).retryable());
    }
}
