//! `millrace-stream` owns the embedded, durable, sharded record log with Amazon Kinesis Data
//! Streams semantics: streams of shards, MD5 hash-key routing, per-shard sequence numbers that
//! only grow, positions by sequence number or arrival time, retention by whole segments, and
//! crash recovery that checks CRCs and truncates a torn tail.
//!
//! It does not speak HTTP or any wire protocol: `millrace-gateway` serves the Kinesis API on top
//! of [`Store`], and later stages (delivery) read shards directly through the same handles.
//!
//! On disk, under the store root:
//! ```text
//! streams/<stream>/meta.json                 # shard count, mode, retention, tags, creation time
//! streams/<stream>/shard-<index>/<base>.log  # segments; <base> is the first counter they hold
//! ```
//!
//! A stream whose encryption was started seals each new record with AES-256-GCM under a key
//! of the [`Keyring`] (`seal`, `keyring`); its segment files hold no plaintext record.
//!
//! Shards hold no file open between uses: segments are opened through one bounded set per
//! store (`files`), so the number of descriptors does not grow with the number of shards. Every
//! append, whoever makes it, is checked against the API's per-record limits ([`limits`]).

mod account;
mod autoscale;
mod error;
mod files;
mod hash;
pub mod keyring;
pub mod limits;
mod meta;
mod options;
mod reshard;
mod seal;
mod segment;
mod sequence;
mod shard;
mod store;

pub use account::{AccountSettings, BillingCommitment, CommitmentStatus};
pub use autoscale::{OnDemandScaler, SPLIT_ABOVE_RECORDS_PER_SEC};
pub use error::{Result, StreamError};
pub use hash::{HashKeyRange, hash_key_for_partition_key, shard_ranges};
pub use keyring::{Keyring, KeyringError, MasterKey};
pub use meta::{
    ConsumerMeta, Encryption, RecordDistribution, ShardEnd, ShardMeta, StreamMeta, StreamMode,
};
pub use options::{FsyncPolicy, StoreOptions};
pub use reshard::MAX_TARGET_SHARDS;
pub use segment::MAX_RECORD_BYTES;
pub use sequence::SequenceNumber;
pub use shard::{ReadBatch, Record, Shard};
pub use store::{PutInput, PutOutput, Store, StreamHandle, StreamSummary, parse_shard_id};

/// Milliseconds since the Unix epoch, the unit of every timestamp in this crate.
pub use millrace_common::time::now_ms;
