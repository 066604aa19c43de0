//! The embedded backend: a directory of streams, each a set of shards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use millrace_common::layout::DataDir;
use parking_lot::{Mutex, RwLock};

use crate::error::{IoContext, Result, StreamError};
use crate::files::OpenFiles;
use crate::hash::{HashKeyRange, hash_key_for_partition_key};
use crate::keyring::Keyring;
use crate::meta::Encryption;
use crate::meta::{META_FILE, RecordDistribution, StreamMeta, StreamMode};
use crate::options::StoreOptions;
use crate::seal::{ShardSeal, StreamSeal};
use crate::sequence::SequenceNumber;
use crate::shard::{Refusal, Shard};

type ShardGroup = (Vec<(usize, u128)>, Vec<(String, Bytes)>);

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

/// The shards of a stream at one moment: every shard it has had (by index) and the open ones
/// that route new records, sorted by the start of their hash-key range.
#[derive(Debug)]
pub(crate) struct Topology {
    pub(crate) shards: Vec<Arc<Shard>>,
    pub(crate) open: Vec<(HashKeyRange, u32)>,
}

impl Topology {
    pub(crate) fn new(meta: &StreamMeta, shards: Vec<Arc<Shard>>) -> Self {
        let mut open: Vec<(HashKeyRange, u32)> =
            meta.open_shards().map(|s| (s.range, s.index)).collect();
        open.sort_by_key(|(r, _)| r.start);
        Self { shards, open }
    }

    /// The open shard owning hash key `key` (open ranges always cover the whole key space).
    fn route(&self, key: u128) -> u32 {
        let i = self.open.partition_point(|(r, _)| r.start <= key);
        self.open[i.saturating_sub(1)].1
    }
}

/// An open stream: its metadata and shards.
#[derive(Debug)]
pub struct StreamHandle {
    pub(crate) dir: PathBuf,
    pub(crate) meta: RwLock<StreamMeta>,
    /// The shard map `put` routes by; a reshard sends the next one.
    pub(crate) topology: tokio::sync::watch::Sender<Arc<Topology>>,
    /// Serialises changes to the shard map (split, merge, scaling).
    pub(crate) reshard: Mutex<()>,
    /// True while a change runs (the API's UPDATING status).
    pub(crate) updating: std::sync::atomic::AtomicBool,
    pub(crate) opts: StoreOptions,
    pub(crate) files: Arc<OpenFiles>,
    /// The next step of the AUTO distribution's sequence over the hash-key space.
    pub(crate) spread: std::sync::atomic::AtomicU64,
    /// Whether new records are sealed, and under which key.
    pub(crate) seal: Arc<StreamSeal>,
}

/// 2^128 over the golden ratio: multiples of it visit the hash-key space evenly (a Weyl
/// sequence), so consecutive AUTO records land on shards in proportion to their ranges.
const SPREAD_STEP: u128 = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835;

impl StreamHandle {
    pub fn meta(&self) -> StreamMeta {
        self.meta.read().clone()
    }

    pub fn name(&self) -> String {
        self.meta.read().name.clone()
    }

    /// The resource policy kept for `arn` (this stream's or one of its consumers'), without
    /// copying the rest of the metadata: read on every authorized request.
    pub fn policy(&self, arn: &str) -> Option<String> {
        self.meta.read().policies.get(arn).cloned()
    }

    pub fn created_ms(&self) -> i64 {
        self.meta.read().created_ms
    }

    /// The stream's folder: `meta.json`, the shard folders, and state other crates keep beside
    /// the shard logs (a queue's delivery state).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every shard the stream has had, open and closed, by index.
    pub fn shards(&self) -> Vec<Arc<Shard>> {
        self.topology.borrow().shards.clone()
    }

    /// One past the last counter of shard `index` once a reshard closed it.
    pub fn shard_end(&self, index: u32) -> Option<u64> {
        self.meta
            .read()
            .shards
            .get(index as usize)
            .and_then(|s| s.closed)
            .map(|e| e.next_counter)
    }

    /// The shards new records go to.
    pub fn open_shard_count(&self) -> u32 {
        self.topology.borrow().open.len() as u32
    }

    pub fn shard(&self, index: u32) -> Option<Arc<Shard>> {
        self.topology.borrow().shards.get(index as usize).cloned()
    }

    /// Finds a shard by its Kinesis id: `shardId-000000000003`, or the short forms Kinesis
    /// also accepts (`shardId-3`, `3`).
    pub fn shard_by_id(&self, id: &str) -> Result<Arc<Shard>> {
        parse_shard_id(id)
            .and_then(|i| self.shard(i))
            .ok_or_else(|| StreamError::ShardNotFound {
                stream: self.name(),
                shard: id.to_owned(),
            })
    }

    /// The open shard that owns `hash_key` now (an explicit hash key, or
    /// [`hash_key_for_partition_key`] of a partition key): where `put` would send the record.
    pub fn route(&self, hash_key: u128) -> u32 {
        self.topology.borrow().route(hash_key)
    }

    /// Whether Kinesis's per-shard throughput limits apply to this stream: its own setting,
    /// else the store's.
    pub fn enforce_limits(&self) -> bool {
        self.meta
            .read()
            .enforce_limits
            .unwrap_or(self.opts.enforce_limits)
    }

    pub fn sequence(&self, shard: u32, counter: u64) -> SequenceNumber {
        SequenceNumber {
            stream_created_ms: self.created_ms(),
            shard,
            counter,
        }
    }

    /// Seals every record appended from now on under the keyring's key `key_id`
    /// (StartStreamEncryption); records already written stay as they are. Blocking.
    pub fn start_encryption(&self, key_id: &str) -> Result<()> {
        let key = self.seal.resolve(key_id)?;
        self.update_meta(|m| {
            m.encryption = Some(Encryption {
                kind: "KMS".into(),
                key_id: key_id.to_owned(),
            });
            Ok(())
        })?;
        self.seal.set(Some(key));
        Ok(())
    }

    /// Writes records appended from now on in the clear (StopStreamEncryption); `key_id` must
    /// be the key the stream is encrypted under. Sealed records stay sealed. Blocking.
    pub fn stop_encryption(&self, key_id: &str) -> Result<()> {
        let account = &self.opts.account_id;
        self.update_meta(|m| match &m.encryption {
            None => Err(StreamError::InvalidArgument(format!(
                "Stream {} under account {account} is not encrypted.",
                m.name
            ))),
            Some(e) if e.key_id != key_id => Err(StreamError::InvalidArgument(format!(
                "Invalid KeyId {key_id} for stream {} under account {account}: the stream is \
                 encrypted with a different key.",
                m.name
            ))),
            Some(_) => {
                m.encryption = None;
                Ok(())
            }
        })?;
        self.seal.set(None);
        Ok(())
    }

    /// The seal of shard `index` of this stream (a shard a reshard opens).
    pub(crate) fn shard_seal(&self, index: u32) -> Arc<ShardSeal> {
        let m = self.meta.read();
        Arc::new(ShardSeal::new(
            self.seal.clone(),
            &m.name,
            m.created_ms,
            index,
        ))
    }

    /// Replaces the metadata with `f`'s change to a copy, written durably before it is seen.
    /// `f` may refuse the change.
    pub fn update_meta(&self, f: impl FnOnce(&mut StreamMeta) -> Result<()>) -> Result<()> {
        let mut meta = self.meta.write();
        let mut next = meta.clone();
        f(&mut next)?;
        if next != *meta {
            next.save(&self.dir)?;
            *meta = next;
        }
        Ok(())
    }

    /// Routes each record to its open shard and appends it; all shards write concurrently.
    /// Per-record results keep the input order. Records for one shard keep their order.
    /// A record over the API's per-record limits ([`crate::limits::check_record`]) is refused
    /// in its slot, whoever writes it, and the others are appended. Records that reach a shard
    /// a reshard closed meanwhile are routed again to its children.
    pub async fn put(&self, inputs: Vec<PutInput>) -> Vec<Result<PutOutput>> {
        let total = inputs.len();
        let (max_bytes, auto) = {
            let m = self.meta.read();
            (
                m.max_record_size_kib as usize * 1024,
                m.mode == StreamMode::OnDemand && m.record_distribution == RecordDistribution::Auto,
            )
        };
        let mut out: Vec<Option<Result<PutOutput>>> = (0..total).map(|_| None).collect();
        let mut todo: Vec<(usize, u128, String, Bytes)> = Vec::with_capacity(total);
        for (i, input) in inputs.into_iter().enumerate() {
            if let Err(e) =
                crate::limits::check_record_within(&input.partition_key, &input.data, max_bytes)
            {
                out[i] = Some(Err(e));
                continue;
            }
            let key = if auto {
                let step = self
                    .spread
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                u128::from(step).wrapping_mul(SPREAD_STEP)
            } else {
                input
                    .explicit_hash_key
                    .unwrap_or_else(|| hash_key_for_partition_key(&input.partition_key))
            };
            todo.push((i, key, input.partition_key, input.data));
        }
        let created = self.created_ms();
        // A reshard closes a shard at most once per attempt; a few rounds always settle.
        for round in 0..8 {
            if todo.is_empty() {
                break;
            }
            let topology = self.topology.borrow().clone();
            if round > 0 {
                // Records met a shard that closed: wait for the reshard to publish its children.
                let mut rx = self.topology.subscribe();
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    rx.wait_for(|t| !Arc::ptr_eq(t, &topology)),
                )
                .await;
            }
            let topology = self.topology.borrow().clone();
            let mut groups: BTreeMap<u32, ShardGroup> = BTreeMap::new();
            for (i, key, pk, data) in todo.drain(..) {
                let g = groups.entry(topology.route(key)).or_default();
                g.0.push((i, key));
                g.1.push((pk, data));
            }
            let mut pending = Vec::new();
            for (shard, (positions, records)) in groups {
                let rx = topology.shards[shard as usize].submit(records).await;
                pending.push((shard, positions, rx));
            }
            for (shard, positions, rx) in pending {
                match rx.await {
                    Ok(assigned) => {
                        for ((pos, _), (counter, arrival_ms)) in positions.into_iter().zip(assigned)
                        {
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
                    Err(Refusal::Closed(records)) => {
                        for ((pos, key), (pk, data)) in positions.into_iter().zip(records) {
                            todo.push((pos, key, pk, data));
                        }
                    }
                    Err(Refusal::Failed(e)) => {
                        for (pos, _) in positions {
                            out[pos] = Some(Err(e.duplicate()));
                        }
                    }
                }
            }
            todo.sort_by_key(|t| t.0);
        }
        for (pos, ..) in todo {
            out[pos] = Some(Err(StreamError::LimitExceeded(
                "the stream's shards changed too often during this request; retry".into(),
            )));
        }
        out.into_iter()
            .map(|r| r.expect("every record has a result"))
            .collect()
    }

    /// Largest record data this stream accepts now (UpdateMaxRecordSize).
    pub fn max_record_bytes(&self) -> usize {
        self.meta.read().max_record_size_kib as usize * 1024
    }

    pub fn set_retention_hours(&self, hours: u32) -> Result<()> {
        self.update_meta(|m| {
            m.retention_hours = hours;
            Ok(())
        })
    }

    /// Adds or overwrites tags, keeping at most `max_tags` on the stream.
    pub fn add_tags(&self, tags: BTreeMap<String, String>, max_tags: usize) -> Result<()> {
        let account = self.opts.account_id.clone();
        self.update_meta(|m| {
            m.tags.extend(tags);
            if m.tags.len() > max_tags {
                return Err(StreamError::InvalidArgument(format!(
                    "Failed to add tags to stream {} under account {account} because a given \
                     request would cause the stream to exceed the maximum allowed number of tags \
                     ({max_tags}).",
                    m.name
                )));
            }
            Ok(())
        })
    }

    pub fn remove_tags(&self, keys: &[String]) -> Result<()> {
        self.update_meta(|m| {
            for k in keys {
                m.tags.remove(k);
            }
            Ok(())
        })
    }

    fn shutdown(&self) {
        for shard in self.shards() {
            shard.shutdown();
        }
    }

    fn close_files(&self) {
        for shard in self.shards() {
            shard.close_files();
        }
    }
}

/// The shard index in `shardId-000000000003`, `shardId-3` or `3`.
pub fn parse_shard_id(id: &str) -> Option<u32> {
    let n = id.strip_prefix("shardId-").unwrap_or(id);
    if n.is_empty() || n.len() > 12 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
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
    /// The keys of encrypted streams.
    keyring: Arc<Keyring>,
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
        let mut opts = opts;
        // Resolved here, so that a store opened with these options (the Firehose buffers)
        // shares the keyring.
        let keyring_path = opts
            .keyring
            .get_or_insert_with(|| DataDir::new(&root).keyring())
            .clone();
        let keyring = Arc::new(Keyring::at(keyring_path));
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
            let handle = open_stream(&dir, meta, &opts, &files, &keyring)?;
            streams.insert(handle.name(), Arc::new(handle));
        }
        Ok(Self {
            root,
            opts,
            files,
            streams: RwLock::new(streams),
            admin: Mutex::new(()),
            keyring,
        })
    }

    /// The keyring encrypted streams take their keys from.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
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

    /// Open shards across every stream (the account's shard quota counts these).
    pub fn open_shard_count(&self) -> u32 {
        self.streams
            .read()
            .values()
            .map(|s| s.open_shard_count())
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
        self.check_shard_quota(shard_count)?;
        let dir = DataDir::new(&self.root).streams().join(name);
        if dir.exists() {
            // Left over from a crash between removal from the map and the rename.
            move_to_trash(&self.root, &dir)?;
        }
        std::fs::create_dir_all(&dir).at(&dir)?;
        let meta = StreamMeta::new(
            name,
            crate::now_ms(),
            mode,
            shard_count,
            retention_hours,
            tags,
        );
        let handle = open_stream(&dir, meta.clone(), &self.opts, &self.files, &self.keyring)?;
        meta.save(&dir)?;
        let handle = Arc::new(handle);
        self.streams.write().insert(name.to_owned(), handle.clone());
        Ok(handle)
    }

    /// Refuses a change that would open `more` shards beyond the account's quota.
    pub(crate) fn check_shard_quota(&self, more: u32) -> Result<()> {
        let open = self.open_shard_count();
        if open + more > self.opts.max_shards {
            return Err(StreamError::LimitExceeded(format!(
                "This request would exceed the shard limit for the account {} in {}. Current \
                 shard count for the account: {open}. Limit: {}. Number of additional shards \
                 that would have resulted from this request: {more}.",
                self.opts.account_id, self.opts.region, self.opts.max_shards
            )));
        }
        Ok(())
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
            for shard in s.shards() {
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
    keyring: &Arc<Keyring>,
) -> Result<StreamHandle> {
    let seal = Arc::new(StreamSeal::new(
        Some(keyring.clone()),
        meta.encryption.as_ref(),
    ));
    let shards = meta
        .shards
        .iter()
        .map(|m| {
            Shard::open(
                shard_dir(dir, m.index),
                m.index,
                m.closed.map(|c| c.next_counter),
                opts,
                files.clone(),
                Arc::new(ShardSeal::new(
                    seal.clone(),
                    &meta.name,
                    meta.created_ms,
                    m.index,
                )),
            )
            .map(Arc::new)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(StreamHandle {
        dir: dir.to_owned(),
        topology: tokio::sync::watch::Sender::new(Arc::new(Topology::new(&meta, shards))),
        meta: RwLock::new(meta),
        reshard: Mutex::new(()),
        updating: std::sync::atomic::AtomicBool::new(false),
        opts: opts.clone(),
        files: files.clone(),
        spread: std::sync::atomic::AtomicU64::new(0),
        seal,
    })
}

pub(crate) fn shard_dir(stream_dir: &Path, index: u32) -> PathBuf {
    stream_dir.join(format!("shard-{index:06}"))
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
