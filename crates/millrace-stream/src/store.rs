//! The embedded backend: a directory of streams, each a set of shards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use millrace_common::layout::DataDir;
use parking_lot::{Mutex, RwLock};

use crate::error::{IoContext, Result, StreamError};
use crate::files::OpenFiles;
use crate::hash::{HashKeyRange, hash_key_for_partition_key, shard_for_key, shard_ranges};
use crate::meta::{META_FILE, StreamMeta, StreamMode};
use crate::options::StoreOptions;
use crate::sequence::SequenceNumber;
use crate::shard::Shard;

type ShardGroup = (Vec<usize>, Vec<(String, Bytes)>);

/// One record to append.
#[derive(Debug, Clone)]
pub struct PutInput {
    pub partition_key: String,
    /// Overrides the MD5 of the partition key for routing.
    pub explicit_hash_key: Option<u128>,
    pub data: Bytes,
}

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOutput {
    pub shard: u32,
    pub sequence: SequenceNumber,
    pub arrival_ms: i64,
}

#[derive(Debug, Clone)]
pub struct StreamSummary {
    pub name: String,
    pub created_ms: i64,
    pub mode: StreamMode,
}

/// An open stream: its metadata and shards.
#[derive(Debug)]
pub struct StreamHandle {
    dir: PathBuf,
    meta: RwLock<StreamMeta>,
    shards: Vec<Arc<Shard>>,
    ranges: Vec<HashKeyRange>,
}

impl StreamHandle {
    pub fn meta(&self) -> StreamMeta {
        self.meta.read().clone()
    }

    pub fn name(&self) -> String {
        self.meta.read().name.clone()
    }

    pub fn created_ms(&self) -> i64 {
        self.meta.read().created_ms
    }

    pub fn shards(&self) -> &[Arc<Shard>] {
        &self.shards
    }

    pub fn ranges(&self) -> &[HashKeyRange] {
        &self.ranges
    }

    pub fn shard(&self, index: u32) -> Option<&Arc<Shard>> {
        self.shards.get(index as usize)
    }

    /// Finds a shard by its Kinesis id (`shardId-000000000003`).
    pub fn shard_by_id(&self, id: &str) -> Result<&Arc<Shard>> {
        id.strip_prefix("shardId-")
            .filter(|n| n.len() == 12)
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(|i| self.shard(i))
            .ok_or_else(|| StreamError::ShardNotFound {
                stream: self.name(),
                shard: id.to_owned(),
            })
    }

    pub fn sequence(&self, shard: u32, counter: u64) -> SequenceNumber {
        SequenceNumber {
            stream_created_ms: self.created_ms(),
            shard,
            counter,
        }
    }

    /// Routes each record to its shard and appends it; all shards write concurrently.
    /// Per-record results keep the input order. Records for one shard keep their order.
    /// A record over the API's per-record limits ([`crate::limits::check_record`]) is refused
    /// in its slot, whoever writes it, and the others are appended.
    pub async fn put(&self, inputs: Vec<PutInput>) -> Vec<Result<PutOutput>> {
        let n = self.shards.len() as u32;
        let total = inputs.len();
        let mut out: Vec<Option<Result<PutOutput>>> = (0..total).map(|_| None).collect();
        // Per shard: the input positions and the (key, data) to append, in input order.
        let mut groups: Vec<ShardGroup> = (0..n).map(|_| (Vec::new(), Vec::new())).collect();
        for (i, input) in inputs.into_iter().enumerate() {
            if let Err(e) = crate::limits::check_record(&input.partition_key, &input.data) {
                out[i] = Some(Err(e));
                continue;
            }
            let key = input
                .explicit_hash_key
                .unwrap_or_else(|| hash_key_for_partition_key(&input.partition_key));
            let g = &mut groups[shard_for_key(key, n) as usize];
            g.0.push(i);
            g.1.push((input.partition_key, input.data));
        }
        let mut pending = Vec::new();
        for (shard, (positions, records)) in groups.into_iter().enumerate() {
            if positions.is_empty() {
                continue;
            }
            let rx = self.shards[shard].submit(records).await;
            pending.push((shard as u32, positions, rx));
        }
        let created = self.created_ms();
        for (shard, positions, rx) in pending {
            match rx.await {
                Ok(assigned) => {
                    for (pos, (counter, arrival_ms)) in positions.into_iter().zip(assigned) {
                        out[pos] = Some(Ok(PutOutput {
                            shard,
                            sequence: SequenceNumber {
                                stream_created_ms: created,
                                shard,
                                counter,
                            },
                            arrival_ms,
                        }));
                    }
                }
                Err(e) => {
                    for pos in positions {
                        out[pos] = Some(Err(e.duplicate()));
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| r.expect("every record has a result"))
            .collect()
    }

    pub fn set_retention_hours(&self, hours: u32) -> Result<()> {
        let mut meta = self.meta.write();
        let mut next = meta.clone();
        next.retention_hours = hours;
        next.save(&self.dir)?;
        *meta = next;
        Ok(())
    }

    /// Adds or overwrites tags, keeping at most `max_tags` on the stream.
    pub fn add_tags(&self, tags: BTreeMap<String, String>, max_tags: usize) -> Result<()> {
        let mut meta = self.meta.write();
        let mut next = meta.clone();
        next.tags.extend(tags);
        if next.tags.len() > max_tags {
            return Err(StreamError::InvalidArgument(format!(
                "Failed to add tags to stream {} under account 000000000000 because a given \
                 request would cause the stream to exceed the maximum allowed number of tags \
                 ({max_tags}).",
                meta.name
            )));
        }
        next.save(&self.dir)?;
        *meta = next;
        Ok(())
    }

    pub fn remove_tags(&self, keys: &[String]) -> Result<()> {
        let mut meta = self.meta.write();
        let mut next = meta.clone();
        for k in keys {
            next.tags.remove(k);
        }
        next.save(&self.dir)?;
        *meta = next;
        Ok(())
    }

    fn shutdown(&self) {
        for shard in &self.shards {
            shard.shutdown();
        }
    }

    fn close_files(&self) {
        for shard in &self.shards {
            shard.close_files();
        }
    }
}

/// The embedded store: every stream under `<root>/streams/`.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    opts: StoreOptions,
    /// The segment files open now, bounded across every shard.
    files: Arc<OpenFiles>,
    streams: RwLock<BTreeMap<String, Arc<StreamHandle>>>,
    /// Serialises create/delete so shard quotas and directory states stay consistent.
    admin: Mutex<()>,
}

impl Store {
    /// Opens the store at `root`, recovering every stream found there.
    pub fn open(root: impl Into<PathBuf>, opts: StoreOptions) -> Result<Self> {
        let root = root.into();
        let streams_dir = DataDir::new(&root).streams();
        std::fs::create_dir_all(&streams_dir).at(&streams_dir)?;
        let trash = root.join("trash");
        if trash.exists() {
            std::fs::remove_dir_all(&trash).at(&trash)?;
        }
        let files = Arc::new(OpenFiles::for_this_process());
        let mut streams = BTreeMap::new();
        for entry in std::fs::read_dir(&streams_dir).at(&streams_dir)? {
            let entry = entry.at(&streams_dir)?;
            let dir = entry.path();
            if !dir.is_dir() {
                continue;
            }
            if !dir.join(META_FILE).exists() {
                // meta.json is written last on create: without it the stream never existed.
                tracing::warn!(dir = %dir.display(), "removing a stream whose creation did not finish");
                move_to_trash(&root, &dir)?;
                continue;
            }
            let meta = StreamMeta::load(&dir)?;
            let handle = open_stream(&dir, meta, &opts, &files)?;
            streams.insert(handle.name(), Arc::new(handle));
        }
        Ok(Self {
            root,
            opts,
            files,
            streams: RwLock::new(streams),
            admin: Mutex::new(()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    pub fn stream(&self, name: &str) -> Result<Arc<StreamHandle>> {
        self.streams
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| StreamError::StreamNotFound(name.to_owned()))
    }

    pub fn list(&self) -> Vec<StreamSummary> {
        self.streams
            .read()
            .values()
            .map(|s| {
                let m = s.meta.read();
                StreamSummary {
                    name: m.name.clone(),
                    created_ms: m.created_ms,
                    mode: m.mode,
                }
            })
            .collect()
    }

    pub fn open_shard_count(&self) -> u32 {
        self.streams
            .read()
            .values()
            .map(|s| s.shards.len() as u32)
            .sum()
    }

    /// Creates a stream. `shards` is ignored for ON_DEMAND streams, which start with the
    /// configured on-demand shard count. Blocking (creates files and fsyncs).
    pub fn create(
        &self,
        name: &str,
        mode: StreamMode,
        shards: Option<u32>,
        retention_hours: u32,
        tags: BTreeMap<String, String>,
    ) -> Result<Arc<StreamHandle>> {
        let _admin = self.admin.lock();
        if self.streams.read().contains_key(name) {
            return Err(StreamError::StreamExists(name.to_owned()));
        }
        let shard_count = match mode {
            StreamMode::OnDemand => self.opts.on_demand_shards,
            StreamMode::Provisioned => shards.ok_or_else(|| {
                StreamError::InvalidArgument(
                    "ShardCount is required for a PROVISIONED stream".into(),
                )
            })?,
        };
        if shard_count == 0 {
            return Err(StreamError::InvalidArgument(
                "ShardCount must be at least 1".into(),
            ));
        }
        let open = self.open_shard_count();
        if open + shard_count > self.opts.max_shards {
            return Err(StreamError::LimitExceeded(format!(
                "This request would exceed the shard limit for the account 000000000000 in \
                 us-east-1. Current shard count for the account: {open}. Limit: {}. Number of \
                 additional shards that would have resulted from this request: {shard_count}.",
                self.opts.max_shards
            )));
        }
        let dir = DataDir::new(&self.root).streams().join(name);
        if dir.exists() {
            // Left over from a crash between removal from the map and the rename.
            move_to_trash(&self.root, &dir)?;
        }
        std::fs::create_dir_all(&dir).at(&dir)?;
        let meta = StreamMeta {
            name: name.to_owned(),
            created_ms: crate::now_ms(),
            mode,
            shard_count,
            retention_hours,
            tags,
        };
        let handle = open_stream(&dir, meta.clone(), &self.opts, &self.files)?;
        meta.save(&dir)?;
        let handle = Arc::new(handle);
        self.streams.write().insert(name.to_owned(), handle.clone());
        Ok(handle)
    }

    /// Deletes a stream and all its records. Blocking.
    pub fn delete(&self, name: &str) -> Result<()> {
        let _admin = self.admin.lock();
        let handle = self
            .streams
            .write()
            .remove(name)
            .ok_or_else(|| StreamError::StreamNotFound(name.to_owned()))?;
        handle.shutdown();
        handle.close_files();
        move_to_trash(&self.root, &handle.dir)?;
        let trash = self.root.join("trash");
        // Best effort: a failure here only leaves garbage that the next start removes.
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            tracing::warn!(error = %e, "could not empty {}", trash.display());
        }
        Ok(())
    }

    /// Deletes segments older than each stream's retention period, as of `now_ms`.
    /// Returns how many segment files were removed.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize> {
        let streams: Vec<_> = self.streams.read().values().cloned().collect();
        let mut removed = 0;
        for s in streams {
            let cutoff = now_ms - i64::from(s.meta.read().retention_hours) * 3_600_000;
            for shard in &s.shards {
                removed += shard.enforce_retention(cutoff)?;
            }
        }
        Ok(removed)
    }

    /// Stops every shard writer after it has made all acknowledged records durable.
    pub fn shutdown(&self) {
        let streams: Vec<_> = std::mem::take(&mut *self.streams.write())
            .into_values()
            .collect();
        for s in streams {
            s.shutdown();
        }
    }
}

fn open_stream(
    dir: &Path,
    meta: StreamMeta,
    opts: &StoreOptions,
    files: &Arc<OpenFiles>,
) -> Result<StreamHandle> {
    let shards = (0..meta.shard_count)
        .map(|i| {
            Shard::open(dir.join(format!("shard-{i:06}")), i, opts, files.clone()).map(Arc::new)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(StreamHandle {
        dir: dir.to_owned(),
        ranges: shard_ranges(meta.shard_count),
        meta: RwLock::new(meta),
        shards,
    })
}

fn move_to_trash(root: &Path, dir: &Path) -> Result<()> {
    let trash = root.join("trash");
    std::fs::create_dir_all(&trash).at(&trash)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let to = trash.join(format!("{name}-{}", crate::now_ms()));
    std::fs::rename(dir, &to).at(dir)?;
    // Both folders changed: the stream is gone from `streams/` once both are on disk.
    crate::segment::sync_dir(&trash)?;
    match dir.parent() {
        Some(parent) => crate::segment::sync_dir(parent),
        None => Ok(()),
    }
}
