//! Shard leases in an object store (S3), so that several readers of one stream, on one machine
//! or many, share its shards as the members of a Kafka consumer group share a topic's
//! partitions. [`Leases`] wraps a [`RecordSource`]: its `lineage` lists only the shards this
//! reader holds, its reads refuse the others ([`IoError::NotOwned`]), and it keeps the readers'
//! checkpoints in the leases ([`SharedCheckpoints`]), so the reader that takes a shard over
//! continues from the last one stored.
//!
//! Under the location, per group (`scoring-NAME`):
//!
//! ```text
//! GROUP/shards/SHARD.json     {"owner": "HOST-PID-ID", "counter": 7, "done": "…", "checkpoint": "{…}"}
//! GROUP/workers/WORKER.json   {"counter": 3}   (a heartbeat)
//! ```
//!
//! - **One owner.** Every write of a lease is conditional on the ETag its writer last saw
//!   (`If-Match`; `If-None-Match: *` for a new one), so of two readers taking a shard one wins,
//!   and a checkpoint stored by a reader that lost its lease is refused (`NotOwned`).
//! - **Liveness without clocks.** Each reader rewrites its heartbeat and its leases every
//!   third of the lease time; another reader deems a lease (or a heartbeat) expired once its
//!   ETag has not changed for the lease time as it watched it, on its own clock, as the Kinesis
//!   Client Library does with its lease counter.
//! - **Balance.** Every reader aims for `ceil(shards it may read / live readers)` shards: one
//!   above lets the extra go, one below takes free and expired leases. A shard let go is
//!   released only when its reader comes back for its next read, so what it read before is
//!   out and checkpointed.
//! - **Order across reshards.** A child shard can be leased only once each parent still listed
//!   has a checkpoint that says it ended; an ended shard's lease is released.
//! - **No stale reader.** A reader whose lease was not rewritten for two thirds of the lease
//!   time is refused its next read (before anyone can deem the lease expired), and a shard
//!   lost to another reader is not taken back until its reader here has noticed.
//! - A reader that stops releases its leases and deletes its heartbeat; its heartbeat is only
//!   written after a round that worked, so a reader that cannot list or take lowers nobody's
//!   share.
//!
//! The limit is the one of Kafka groups: a reader cut off from the store keeps its shards until
//! it next writes there (at most a third of the lease time), and can put outputs its successor
//! also puts in that window.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use millrace_lake::{Condition, Lake};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::checkpoint::SharedCheckpoints;
use crate::error::IoError;
use crate::source::{RecordSource, ShardInfo, SourceBatch};

/// The default lease time: a reader killed with -9 has its shards taken over after this.
pub const DEFAULT_LEASE_TIME: Duration = Duration::from_secs(10);

/// The lease time a `lease_seconds` setting asks for.
pub fn lease_time(secs: Option<u64>) -> Duration {
    secs.map_or(DEFAULT_LEASE_TIME, Duration::from_secs)
}

/// One lease object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Lease {
    /// Empty: free.
    #[serde(default)]
    owner: String,
    /// Changes with every write, so that the ETag does.
    #[serde(default)]
    counter: u64,
    /// The position every record up to which is done.
    #[serde(default)]
    done: Option<String>,
    /// The reader's checkpoint (JSON).
    #[serde(default)]
    checkpoint: Option<String>,
}

#[derive(Debug)]
struct Held {
    tag: String,
    lease: Lease,
    /// Let go: released at the reader's next read.
    releasing: bool,
    /// When the lease was last written by this reader (taken, renewed or checkpointed).
    written: Instant,
    /// A read came for the shard since it was taken: a reader may have outputs under way.
    read: bool,
}

#[derive(Debug, Default)]
struct State {
    held: BTreeMap<String, Held>,
    /// Object key → (the ETag last seen, since when it has not changed).
    seen: HashMap<String, (String, Instant)>,
    /// The first round of taking leases is done.
    ready: bool,
    heartbeat: u64,
    /// Shards lost to another reader (and since when), until their reader here has noticed:
    /// not taken back before then, so a reader never goes on with a stale position.
    lost: HashMap<String, Instant>,
    /// Released for good: no more rounds.
    closed: bool,
}

struct Inner {
    lake: Lake,
    group: String,
    stream: String,
    me: String,
    ttl: Duration,
    source: Arc<dyn RecordSource>,
    /// Whether a stored checkpoint says its shard ended.
    ended: fn(&[u8]) -> bool,
    state: parking_lot::Mutex<State>,
    /// Held by every write of a lease, so that each starts from the ETag of the last.
    writes: tokio::sync::Mutex<()>,
}

/// A stream's shards shared through leases (see the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Leases(Arc<Inner>);

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("at", &self.lake.url())
            .field("group", &self.group)
            .field("me", &self.me)
            .finish()
    }
}

impl Leases {
    /// Shares `source` (the stream `stream`) with the other readers of `group` through leases
    /// in `lake`; `ended` reads a stored checkpoint's end mark. Starts taking and renewing
    /// leases at once, on the lake's I/O runtime, until the last clone is dropped.
    pub fn start(
        source: Arc<dyn RecordSource>,
        stream: &str,
        lake: Lake,
        group: &str,
        ttl: Duration,
        ended: fn(&[u8]) -> bool,
    ) -> Leases {
        let inner = Arc::new(Inner {
            lake,
            group: group.to_owned(),
            stream: stream.to_owned(),
            me: {
                // Several readers of one process (tests, two scorers) are distinct readers.
                static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!("{}-{n}", millrace_common::ids::worker_id())
            },
            ttl,
            source,
            ended,
            state: parking_lot::Mutex::new(State::default()),
            writes: tokio::sync::Mutex::new(()),
        });
        let weak = Arc::downgrade(&inner);
        millrace_lake::spawn(async move { renew_loop(weak).await });
        Leases(inner)
    }

    /// `source` shared with the other readers of `group` through leases at `at`
    /// (`s3://bucket[/prefix]`), or as it is when `at` is `None`. Refused for a source that
    /// shares itself (a Kafka topic's consumer group). Errors name `key` (the setting).
    pub fn share(
        source: Arc<dyn RecordSource>,
        stream: &str,
        at: Option<&str>,
        s3: &millrace_lake::S3Options,
        group: &str,
        ttl: Duration,
        ended: fn(&[u8]) -> bool,
    ) -> std::result::Result<(Arc<dyn RecordSource>, Option<Leases>), String> {
        let Some(at) = at else {
            return Ok((source, None));
        };
        if source.shared_checkpoints().is_some() {
            return Err(format!(
                "leases = {at:?}: {stream} is a Kafka topic, whose consumer group already \
                 shares its partitions; leave leases out"
            ));
        }
        let lake = Lake::open(at, s3).map_err(|e| format!("leases = {at:?}: {e}"))?;
        let leases = Leases::start(source, stream, lake, group, ttl, ended);
        Ok((Arc::new(leases.clone()), Some(leases)))
    }

    /// Checks the `leases` and `lease_seconds` settings of the table at `key`: an object
    /// store with conditional writes, and 3 to 600 seconds.
    pub fn check_settings(
        key: &str,
        at: Option<&str>,
        secs: Option<u64>,
    ) -> std::result::Result<(), String> {
        if let Some(at) = at
            && !(at.starts_with("s3://") || at.starts_with("memory://"))
        {
            return Err(format!(
                "{key}.leases = {at:?}: expected s3://bucket[/prefix] (leases need conditional \
                 writes)"
            ));
        }
        match secs {
            Some(secs) if !(3..=600).contains(&secs) => {
                Err(format!("{key}.lease_seconds = {secs}: expected 3 to 600"))
            }
            _ => Ok(()),
        }
    }

    /// This reader's id in the leases.
    pub fn worker(&self) -> &str {
        &self.0.me
    }

    /// The shards held now, sorted.
    pub fn held(&self) -> Vec<String> {
        self.0.state.lock().held.keys().cloned().collect()
    }

    /// Lets every lease go (a reader that stops): the others take them at once instead of
    /// after the lease time.
    pub async fn release_all(&self) {
        self.0.state.lock().closed = true;
        let shards = self.held();
        for shard in shards {
            self.0.release(&shard).await;
        }
        let _writes = self.0.writes.lock().await;
        let _ = self.0.lake.delete(&self.0.worker_key()).await;
    }
}

fn not_owned(inner: &Inner, shard: &str) -> IoError {
    IoError::NotOwned {
        stream: inner.stream.clone(),
        shard: shard.to_owned(),
        group: format!("{} (leases at {})", inner.group, inner.lake.url()),
    }
}

fn store_error(inner: &Inner, e: millrace_lake::LakeError) -> IoError {
    IoError::Failed {
        op: format!("shard leases at {}/{}", inner.lake.url(), inner.group),
        message: e.to_string(),
        transient: true,
    }
}

fn panicked(what: &str) -> IoError {
    IoError::task(what, "panicked")
}

async fn renew_loop(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if inner.state.lock().closed {
            return;
        }
        let pause = inner.ttl / 3;
        if let Err(e) = inner.round().await {
            tracing::warn!(group = %inner.group, error = %e, "shard leases: a round failed; trying again");
        }
        drop(inner);
        tokio::time::sleep(pause).await;
    }
}

impl Inner {
    fn shard_key(&self, shard: &str) -> String {
        format!("{}/shards/{shard}.json", self.group)
    }

    fn worker_key(&self) -> String {
        format!("{}/workers/{}.json", self.group, self.me)
    }

    /// Notes the ETag of `key` as seen now; true when it has not changed for the lease time.
    fn expired(&self, key: &str, tag: &str) -> bool {
        let mut st = self.state.lock();
        let now = Instant::now();
        let entry = st
            .seen
            .entry(key.to_owned())
            .or_insert_with(|| (tag.to_owned(), now));
        if entry.0 != tag {
            *entry = (tag.to_owned(), now);
        }
        now.duration_since(entry.1) >= self.ttl
    }

    async fn read_lease(&self, shard: &str) -> Result<Option<(Lease, String)>> {
        let got = self
            .lake
            .get_tagged(&self.shard_key(shard))
            .await
            .map_err(|e| store_error(self, e))?;
        let Some((bytes, tag)) = got else {
            return Ok(None);
        };
        let place = format!("{}/{}", self.lake.url(), self.shard_key(shard));
        let lease = serde_json::from_slice(&bytes).map_err(|e| IoError::Failed {
            op: format!("reading the lease {place}"),
            message: format!("not a millrace lease ({e}); delete it to start the shard over"),
            transient: false,
        })?;
        Ok(Some((lease, Self::tag(tag, &place)?)))
    }

    /// An object's ETag, which every conditional write and the expiry rule need.
    fn tag(tag: Option<String>, place: &str) -> Result<String> {
        tag.filter(|t| !t.is_empty())
            .ok_or_else(|| IoError::Failed {
                op: format!("shard leases at {place}"),
                message: "the object store gives no ETag; leases need one".into(),
                transient: false,
            })
    }

    /// Writes `lease` for `shard` on condition; the new ETag, or `None` when another writer
    /// got there first.
    async fn write_lease(
        &self,
        shard: &str,
        lease: &Lease,
        condition: Condition,
    ) -> Result<Option<String>> {
        let bytes = Bytes::from(serde_json::to_vec(lease).expect("a lease serialises"));
        let key = self.shard_key(shard);
        match self
            .lake
            .put_if(&key, bytes, condition)
            .await
            .map_err(|e| store_error(self, e))?
        {
            Some(tag) => Ok(Some(Self::tag(Some(tag), &key)?)),
            None => Ok(None),
        }
    }

    /// One round: heartbeat, renew what is held, count the live readers, let go of extras
    /// and take what is free up to the aim.
    async fn round(&self) -> Result<()> {
        let _writes = self.writes.lock().await;
        if self.state.lock().closed {
            return Ok(());
        }
        self.renew().await;
        let workers = self.live_workers().await?;
        let lineage = self.source.lineage().await?;
        let listed: HashSet<&str> = lineage.iter().map(|s| s.id.as_str()).collect();
        let mut leases: HashMap<String, Option<(Lease, String)>> = HashMap::new();
        for s in &lineage {
            leases.insert(s.id.clone(), self.read_lease(&s.id).await?);
        }
        let ended = |id: &str| {
            leases
                .get(id)
                .and_then(|l| l.as_ref())
                .and_then(|(l, _)| l.checkpoint.as_deref())
                .is_some_and(|c| (self.ended)(c.as_bytes()))
        };
        let leasable: Vec<&ShardInfo> = lineage
            .iter()
            .filter(|s| !ended(&s.id))
            .filter(|s| {
                s.parents
                    .iter()
                    .all(|p| !listed.contains(p.as_str()) || ended(p))
            })
            .collect();
        let aim = leasable.len().div_ceil(workers.max(1));
        self.let_go_extras(aim, &leasable);
        let leasable_ids: HashSet<String> = leasable.iter().map(|s| s.id.clone()).collect();
        self.release_idle(&leasable_ids).await;
        {
            // A lost shard's reader has had a lease time to notice.
            let ttl = self.ttl;
            self.state
                .lock()
                .lost
                .retain(|_, since| since.elapsed() < ttl);
        }
        let mut have = self.active();
        for s in leasable {
            if have >= aim {
                break;
            }
            {
                let st = self.state.lock();
                if st.held.contains_key(&s.id) || st.lost.contains_key(&s.id) {
                    continue;
                }
            }
            let (condition, mut lease) = match leases.get(&s.id).cloned().flatten() {
                None => (Condition::Absent, Lease::default()),
                Some((lease, tag)) => {
                    let free = lease.owner.is_empty() || lease.owner == self.me;
                    if !free && !self.expired(&self.shard_key(&s.id), &tag) {
                        continue;
                    }
                    (Condition::Matches(tag), lease)
                }
            };
            let previous = std::mem::replace(&mut lease.owner, self.me.clone());
            lease.counter += 1;
            let written = Instant::now();
            if let Some(tag) = self.write_lease(&s.id, &lease, condition).await? {
                tracing::info!(group = %self.group, shard = %s.id, from = %previous, "took the shard's lease");
                self.state.lock().held.insert(
                    s.id.clone(),
                    Held {
                        tag,
                        lease,
                        releasing: false,
                        written,
                        read: false,
                    },
                );
                have += 1;
            }
        }
        // The heartbeat says this reader takes part: written only after a round that worked,
        // so a reader that cannot list or take does not lower the others' share.
        let counter = {
            let mut st = self.state.lock();
            st.heartbeat += 1;
            st.ready = true;
            st.heartbeat
        };
        let beat = Bytes::from(format!("{{\"counter\": {counter}}}"));
        self.lake
            .put(&self.worker_key(), beat)
            .await
            .map_err(|e| store_error(self, e))?;
        Ok(())
    }

    /// Releases now the shards let go that no reader has read since they were taken (so none
    /// has outputs under way; a reader that starts later is refused at its first read), and
    /// those no longer leasable: ended (their reader is done) or gone from the stream.
    async fn release_idle(&self, leasable: &HashSet<String>) {
        let idle: Vec<String> = self
            .state
            .lock()
            .held
            .iter()
            .filter(|(s, h)| h.releasing && (!h.read || !leasable.contains(s.as_str())))
            .map(|(s, _)| s.clone())
            .collect();
        for shard in idle {
            self.release_locked(&shard).await;
        }
    }

    /// Shards held and not being let go.
    fn active(&self) -> usize {
        self.state
            .lock()
            .held
            .values()
            .filter(|h| !h.releasing)
            .count()
    }

    /// Marks shards beyond `aim` (and shards no longer leasable: ended) to be let go.
    fn let_go_extras(&self, aim: usize, leasable: &[&ShardInfo]) {
        let leasable: HashSet<&str> = leasable.iter().map(|s| s.id.as_str()).collect();
        let mut st = self.state.lock();
        let mut keep = 0;
        for (shard, held) in st.held.iter_mut().rev() {
            if held.releasing {
                continue;
            }
            if !leasable.contains(shard.as_str()) || keep >= aim {
                tracing::info!(group = %self.group, shard = %shard, "letting the shard's lease go");
                held.releasing = true;
            } else {
                keep += 1;
            }
        }
    }

    /// Rewrites every lease held (a new counter), dropping those another reader took. A lease
    /// that cannot be written now is tried again next round (and refused to its reader once
    /// too old: [`Inner::check_held`]).
    async fn renew(&self) {
        let held: Vec<(String, String, Lease)> = self
            .state
            .lock()
            .held
            .iter()
            .map(|(s, h)| (s.clone(), h.tag.clone(), h.lease.clone()))
            .collect();
        for (shard, tag, mut lease) in held {
            lease.counter += 1;
            let written = Instant::now();
            match self
                .write_lease(&shard, &lease, Condition::Matches(tag))
                .await
            {
                Ok(Some(tag)) => {
                    if let Some(h) = self.state.lock().held.get_mut(&shard) {
                        h.tag = tag;
                        h.lease.counter = lease.counter;
                        h.written = written;
                    }
                }
                Ok(None) => {
                    tracing::warn!(group = %self.group, shard, "lost the shard's lease to another reader");
                    self.lose(&shard);
                }
                Err(e) => {
                    tracing::warn!(group = %self.group, shard, error = %e, "cannot renew the shard's lease; trying again")
                }
            }
        }
    }

    /// Forgets a shard another reader has taken; its reader here is refused from now on.
    fn lose(&self, shard: &str) {
        let mut st = self.state.lock();
        if st.held.remove(shard).is_some() {
            st.lost.insert(shard.to_owned(), Instant::now());
        }
    }

    /// Whether this reader may still read `shard`: it holds the lease, and wrote it recently
    /// enough that no other reader can deem it expired yet (two thirds of the lease time).
    /// Otherwise the shard is forgotten and `NotOwned` returned.
    fn check_held(&self, shard: &str) -> Result<bool> {
        let mut st = self.state.lock();
        let Some(h) = st.held.get_mut(shard) else {
            st.lost.remove(shard);
            return Err(not_owned(self, shard));
        };
        if h.written.elapsed() > self.ttl * 2 / 3 {
            tracing::warn!(group = %self.group, shard, "the shard's lease was not renewed in time; letting it go");
            st.held.remove(shard);
            st.lost.insert(shard.to_owned(), Instant::now());
            return Err(not_owned(self, shard));
        }
        h.read = true;
        Ok(h.releasing)
    }

    /// How many readers' heartbeats are live (this one included).
    async fn live_workers(&self) -> Result<usize> {
        let prefix = format!("{}/workers", self.group);
        let listed = self
            .lake
            .list_objects(&prefix)
            .await
            .map_err(|e| store_error(self, e))?;
        let mine = self.worker_key();
        let others = listed
            .iter()
            .filter(|o| o.key != mine)
            .filter(|o| !self.expired(&o.key, o.etag.as_deref().unwrap_or("")))
            .count();
        Ok(others + 1)
    }

    /// Writes the lease of `shard` as free (keeping its checkpoint) and forgets it.
    async fn release(&self, shard: &str) {
        let _writes = self.writes.lock().await;
        self.release_locked(shard).await;
    }

    /// [`Inner::release`] for a caller that holds `writes`.
    async fn release_locked(&self, shard: &str) {
        let Some(held) = self.state.lock().held.remove(shard) else {
            return;
        };
        let mut lease = held.lease;
        lease.owner.clear();
        lease.counter += 1;
        match self
            .write_lease(shard, &lease, Condition::Matches(held.tag))
            .await
        {
            Ok(Some(_)) => tracing::info!(group = %self.group, shard, "released the shard's lease"),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(group = %self.group, shard, error = %e, "cannot release the shard's lease")
            }
        }
    }

    /// Stores a checkpoint in the lease of `shard`, if this reader still holds it.
    async fn store(&self, shard: &str, done: Option<String>, json: String) -> Result<()> {
        let _writes = self.writes.lock().await;
        let (tag, mut lease) = match self.state.lock().held.get(shard) {
            Some(h) => (h.tag.clone(), h.lease.clone()),
            None => return Err(not_owned(self, shard)),
        };
        lease.done = done;
        lease.checkpoint = Some(json);
        lease.counter += 1;
        let written = Instant::now();
        match self
            .write_lease(shard, &lease, Condition::Matches(tag))
            .await?
        {
            Some(tag) => {
                if let Some(h) = self.state.lock().held.get_mut(shard) {
                    h.tag = tag;
                    h.lease = lease;
                    h.written = written;
                }
                Ok(())
            }
            None => {
                self.lose(shard);
                Err(not_owned(self, shard))
            }
        }
    }
}

#[async_trait]
impl RecordSource for Leases {
    /// The shards this reader holds (waiting for the first round of taking leases).
    async fn lineage(&self) -> Result<Vec<ShardInfo>> {
        let started = Instant::now();
        while !self.0.state.lock().ready && started.elapsed() < self.0.ttl * 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let all = self.0.source.lineage().await?;
        let st = self.0.state.lock();
        Ok(all
            .into_iter()
            .filter(|s| st.held.get(&s.id).is_some_and(|h| !h.releasing))
            .collect())
    }

    async fn read(&self, shard: &str, after: Option<&str>, wait: Duration) -> Result<SourceBatch> {
        if self.0.check_held(shard)? {
            self.0.release(shard).await;
            return Err(not_owned(&self.0, shard));
        }
        self.0.source.read(shard, after, wait).await
    }

    async fn newest(&self, shard: &str) -> Result<Option<String>> {
        self.0.source.newest(shard).await
    }

    fn shared_checkpoints(&self) -> Option<Arc<dyn SharedCheckpoints>> {
        Some(Arc::new(self.clone()))
    }
}

impl SharedCheckpoints for Leases {
    fn load(&self, shard: &str) -> Result<Option<Vec<u8>>> {
        if let Some(h) = self.0.state.lock().held.get(shard) {
            return Ok(h.lease.checkpoint.clone().map(String::into_bytes));
        }
        let inner = self.0.clone();
        let shard = shard.to_owned();
        let lease = millrace_lake::block_on(async move { inner.read_lease(&shard).await })
            .ok_or_else(|| panicked("reading a lease"))??;
        Ok(lease.and_then(|(l, _)| l.checkpoint.map(String::into_bytes)))
    }

    fn store(&self, shard: &str, done: Option<&str>, json: &[u8]) -> Result<()> {
        let inner = self.0.clone();
        let shard = shard.to_owned();
        let done = done.map(str::to_owned);
        let json = String::from_utf8_lossy(json).into_owned();
        millrace_lake::block_on(async move { inner.store(&shard, done, json).await })
            .ok_or_else(|| panicked("storing a checkpoint in a lease"))?
    }

    fn all(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let inner = self.0.clone();
        millrace_lake::block_on(async move {
            let prefix = format!("{}/shards", inner.group);
            let listed = inner
                .lake
                .list_objects(&prefix)
                .await
                .map_err(|e| store_error(&inner, e))?;
            let mut out = Vec::new();
            for o in listed {
                let Some(shard) = o
                    .key
                    .strip_prefix(&format!("{prefix}/"))
                    .and_then(|k| k.strip_suffix(".json"))
                else {
                    continue;
                };
                if let Some((lease, _)) = inner.read_lease(shard).await?
                    && let Some(cp) = lease.checkpoint
                {
                    out.push((shard.to_owned(), cp.into_bytes()));
                }
            }
            Ok(out)
        })
        .ok_or_else(|| panicked("reading the leases"))?
    }

    fn describe(&self) -> String {
        format!("shard leases at {}/{}", self.0.lake.url(), self.0.group)
    }
}
