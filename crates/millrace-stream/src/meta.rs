//! Per-stream metadata, persisted as `meta.json` and replaced atomically on every change:
//! the shard map (every shard the stream has had, with its hash-key range, parents and, once
//! closed, its ending counter), mode, retention, tags and the stream's settings (encryption,
//! enhanced monitoring, record size, warm throughput, resource policies, consumers).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result, StreamError};
use crate::hash::{HashKeyRange, shard_ranges};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Provisioned => "PROVISIONED",
            Self::OnDemand => "ON_DEMAND",
        }
    }
}

/// How an ON_DEMAND stream places records on shards (UpdateStreamRecordDistributionStrategy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordDistribution {
    /// By the MD5 of the partition key, or the explicit hash key: same key, same shard.
    #[default]
    UserPartitionKey,
    /// Evenly over the open shards, whatever the key says.
    Auto,
}

impl RecordDistribution {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::UserPartitionKey => "USER_PARTITION_KEY",
            Self::Auto => "AUTO",
        }
    }

    pub fn is_default(&self) -> bool {
        *self == Self::UserPartitionKey
    }
}

/// One shard of the stream's history. Shards are never renumbered: a split or merge closes
/// its parents and adds children with the next indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardMeta {
    pub index: u32,
    pub range: HashKeyRange,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjacent_parent: Option<u32>,
    /// When the shard was opened (the stream's creation for the first shards).
    pub opened_ms: i64,
    /// Set when a reshard closed the shard: no record is appended after this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<ShardEnd>,
}

/// Where a closed shard ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEnd {
    /// One past the last counter the shard holds (its tip when it closed).
    pub next_counter: u64,
    pub closed_ms: i64,
}

impl ShardMeta {
    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }

    pub fn parents(&self) -> impl Iterator<Item = u32> {
        self.parent.into_iter().chain(self.adjacent_parent)
    }
}

/// Server-side encryption as the API reports it (`EncryptionType`, `KeyId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// `KMS` (the only type the API accepts).
    pub kind: String,
    pub key_id: String,
}

/// A registered enhanced fan-out consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerMeta {
    pub name: String,
    /// Creation time; the ARN's suffix is this in epoch seconds.
    pub created_ms: i64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamMeta {
    pub name: String,
    /// Creation time; also part of every sequence number and iterator of this incarnation.
    pub created_ms: i64,
    pub mode: StreamMode,
    /// Open shards (kept for readers of older metadata; `shards` is the truth).
    pub shard_count: u32,
    pub retention_hours: u32,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Every shard the stream has had, by index. Empty in metadata written before resharding
    /// existed: [`StreamMeta::load`] fills it from `shard_count`.
    #[serde(default)]
    pub shards: Vec<ShardMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Shard-level metrics enabled by EnableEnhancedMonitoring.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_level_metrics: Vec<String>,
    /// Largest record accepted, in KiB (UpdateMaxRecordSize; 1,024 to 10,240).
    #[serde(default = "default_max_record_kib")]
    pub max_record_size_kib: u32,
    /// UpdateStreamWarmThroughput's target, in MiB/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_throughput_mibps: Option<u32>,
    /// Resource policies by ARN (the stream's or one of its consumers').
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<ConsumerMeta>,
    /// Per-stream throughput enforcement; `None` follows the store's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_limits: Option<bool>,
    /// Record placement of an ON_DEMAND stream; a PROVISIONED stream always places by key.
    #[serde(default, skip_serializing_if = "RecordDistribution::is_default")]
    pub record_distribution: RecordDistribution,
}

pub const DEFAULT_MAX_RECORD_KIB: u32 = 1024;

fn default_max_record_kib() -> u32 {
    DEFAULT_MAX_RECORD_KIB
}

pub(crate) const META_FILE: &str = "meta.json";

impl StreamMeta {
    /// A new stream's metadata with `shard_count` shards splitting the key space evenly.
    pub(crate) fn new(
        name: &str,
        created_ms: i64,
        mode: StreamMode,
        shard_count: u32,
        retention_hours: u32,
        tags: BTreeMap<String, String>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            created_ms,
            mode,
            shard_count,
            retention_hours,
            tags,
            shards: initial_shards(shard_count, created_ms),
            encryption: None,
            shard_level_metrics: Vec::new(),
            max_record_size_kib: DEFAULT_MAX_RECORD_KIB,
            warm_throughput_mibps: None,
            policies: BTreeMap::new(),
            consumers: Vec::new(),
            enforce_limits: None,
            record_distribution: RecordDistribution::default(),
        }
    }

    pub(crate) fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILE);
        let bytes = std::fs::read(&path).at(&path)?;
        let mut meta: Self =
            serde_json::from_slice(&bytes).map_err(|e| StreamError::CorruptMeta {
                path: path.clone(),
                message: e.to_string(),
            })?;
        if meta.shards.is_empty() {
            meta.shards = initial_shards(meta.shard_count, meta.created_ms);
        }
        let dense = meta
            .shards
            .iter()
            .enumerate()
            .all(|(i, s)| s.index as usize == i);
        if !dense {
            return Err(StreamError::CorruptMeta {
                path,
                message: "shard indexes are not 0, 1, 2, …".into(),
            });
        }
        Ok(meta)
    }

    /// Writes `meta.json` via a temporary file, fsync and rename, so a crash leaves either the
    /// old or the new version, never a mix.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join("meta.json.tmp");
        let path = dir.join(META_FILE);
        let bytes = serde_json::to_vec_pretty(self).expect("meta serialises");
        millrace_common::durable::write_file_staged(&path, &tmp, &bytes, None).at(&path)
    }

    pub fn open_shards(&self) -> impl Iterator<Item = &ShardMeta> {
        self.shards.iter().filter(|s| s.is_open())
    }

    /// Shards whose parent or adjacent parent is `index`.
    pub fn children(&self, index: u32) -> impl Iterator<Item = &ShardMeta> {
        self.shards
            .iter()
            .filter(move |s| s.parents().any(|p| p == index))
    }

    pub fn consumer(&self, name: &str) -> Option<&ConsumerMeta> {
        self.consumers.iter().find(|c| c.name == name)
    }
}

fn initial_shards(n: u32, created_ms: i64) -> Vec<ShardMeta> {
    shard_ranges(n)
        .into_iter()
        .enumerate()
        .map(|(i, range)| ShardMeta {
            index: i as u32,
            range,
            parent: None,
            adjacent_parent: None,
            opened_ms: created_ms,
            closed: None,
        })
        .collect()
}
