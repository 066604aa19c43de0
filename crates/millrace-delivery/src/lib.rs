//! `millrace-delivery` owns the Firehose part of the pipeline: it reads a stream's shards,
//! buffers records (by size and time), renders key prefixes (timestamps, dynamic partitions,
//! Hive layout), encodes objects (NDJSON, raw concatenation, Parquet; gzip/zstd), writes them to
//! the lake, and records checkpoints, so the lake ends with every record exactly once.
//!
//! Effectively once: before an object is written the shard's checkpoint records the sequence
//! range it will hold (the intent); object names derive from shard and sequence range; after
//! the objects are committed the checkpoint advances. A crash at any point replays exactly the
//! intended range and rewrites the same objects.
//!
//! Sources: the embedded store (read directly, woken on append) or any Kinesis API through
//! aws-sdk-kinesis ([`source`]). Bad records never stop a delivery: they go to the error prefix
//! with their reason.

pub mod checkpoint;
pub mod config;
mod encode;
pub mod metrics;
pub mod prefix;
pub mod source;
mod worker;

pub use config::{Compression, DeliveryConfig, Format};
pub use metrics::DeliveryMetrics;
pub use worker::{Delivery, RunMode};

/// Everything that can stop a delivery (bad records never do: they go to the error prefix).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("delivery config: {0}")]
    Config(String),
    #[error("reading the source stream: {0}")]
    Source(String),
    #[error(transparent)]
    Lake(#[from] millrace_lake::LakeError),
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: String, message: String },
    #[error("encoding an object: {0}")]
    Encode(String),
}

pub type Result<T, E = DeliveryError> = std::result::Result<T, E>;
