//! `millrace-io` is stream I/O: reading and writing streams, wherever they live. Delivery,
//! the scorer, `millrace produce` and `millrace demo` all read and write through it.
//!
//! - [`RecordSource`] reads a stream shard by shard, from a position (a sequence number
//!   string) on; [`RecordSink`] puts records and says where each landed or why it did not.
//! - [`sink::batches`] splits a put by the Kinesis limits ([`limits`]) and
//!   [`sink::put_with_retry`] re-sends only the records that failed, with backoff, so every
//!   writer batches and retries the same way.
//! - [`CheckpointDir`] keeps one small JSON checkpoint per shard, replaced durably;
//!   [`seq_cmp`] orders sequence numbers.
//! - [`IoError`] says what went wrong in terms a caller can act on (throttled, not found,
//!   unreachable, a bad position, a checkpoint file) and [`IoError::is_transient`] whether a
//!   retry helps.
//!
//! Backends: the embedded log of this process ([`embedded`]: direct reads woken on append, no
//! HTTP) and any Kinesis API through aws-sdk-kinesis ([`kinesis`]: millrace's own server,
//! kinesalite, Amazon Kinesis); Firehose delivery streams are written through aws-sdk-firehose
//! ([`firehose`]: PutRecordBatch); a stream named `kafka://BROKERS/TOPIC` is a Kafka topic
//! through librdkafka ([`kafka`]: partitions as shards, offsets as sequence numbers). A stream is opened through one place, [`Streams`] (where streams
//! live) and [`StreamTarget`] (one stream), which hand out `Arc<dyn RecordSource>` and
//! `Arc<dyn RecordSink>`: callers never name a backend's types, so delivery and serving read
//! and write Kafka topics without knowing it.
//!
//! Not here: what a record means (delivery's encoding, the scorer's predictions), what a
//! checkpoint holds (each caller defines its own type), and the stream's storage itself
//! (`millrace-stream`) or its HTTP API (`millrace-gateway`).

pub mod checkpoint;
pub mod embedded;
pub mod error;
pub mod firehose;
pub mod kafka;
pub mod kafka_group;
pub mod kinesis;
pub mod leases;
pub mod lineage;
pub mod sink;
pub mod source;
pub mod streams;

pub use checkpoint::{CheckpointDir, SharedCheckpoints, seq_cmp};
pub use embedded::{EmbeddedSink, EmbeddedSource};
pub use error::IoError;
pub use firehose::FirehoseSink;
pub use kafka::{KafkaSink, KafkaSource, KafkaUrl};
pub use kafka_group::KafkaGroup;
pub use kinesis::{KinesisSink, KinesisSource};
pub use leases::Leases;
pub use lineage::{ShardExit, for_each_shard};
/// The Kinesis service limits (PutRecords 500 records / 5 MiB, 1 MiB per record, GetRecords
/// 10,000 records / 10 MiB), defined once in `millrace-stream` so the gateway enforces the same.
pub use millrace_stream::limits;
pub use sink::{Placed, PutFailure, RecordSink, Retry, SinkRecord};
pub use source::{RecordSource, ShardInfo, SourceBatch, SourceRecord};
pub use streams::{StreamTarget, Streams, check_stream_name};

pub type Result<T, E = IoError> = std::result::Result<T, E>;
