//! A shard: an ordered, durable log of records split into segment files, with one writer
//! thread that batches appends (group commit) and any number of concurrent readers.
//!
//! Readers never block the writer: they copy the segment list under a short read lock and
//! `pread` the files. A record becomes visible to readers only after it is durable under the
//! configured [`FsyncPolicy`], the same moment it is acknowledged.
//!
//! A shard holds no file open between uses: the writer and the readers take a segment's file
//! from the store's bounded set of open files (`files`) when they touch it, so a store of many
//! shards stays within the process's open-file limit.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{IoContext, Result, StreamError};
use crate::files::{OpenFiles, SegmentFile, SegmentId};
use crate::options::{FsyncPolicy, StoreOptions};
use crate::seal::ShardSeal;
use crate::segment::{self, INDEX_EVERY, IndexPoint};

/// A record as stored: its position, arrival time, key and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub counter: u64,
    pub arrival_ms: i64,
    pub partition_key: String,
    pub data: Bytes,
}

/// The result of a read: records in order, where the next read starts, and how far behind
/// the tip the reader still is.
#[derive(Debug, Clone)]
pub struct ReadBatch {
    pub records: Vec<Record>,
    pub next: u64,
    /// One past the newest durable record when the read happened.
    pub tip: u64,
    /// Arrival time of the first record not returned, if the read stopped before the tip.
    pub next_arrival_ms: Option<i64>,
}

#[derive(Debug, Clone)]
struct SegmentInfo {
    base: u64,
    path: PathBuf,
    /// The segment's key in the store's open files.
    id: SegmentId,
    /// Bytes that are durable and visible.
    len: u64,
    /// One past the last counter in the segment (== base when empty).
    next: u64,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    index: Arc<Vec<IndexPoint>>,
}

/// Durable, visible state shared by the writer and readers.
#[derive(Debug)]
struct Visible {
    segments: Vec<SegmentInfo>,
}

pub(crate) struct Append {
    pub records: Vec<(String, Bytes)>,
    pub reply: oneshot::Sender<std::result::Result<Vec<(u64, i64)>, Refusal>>,
}

/// Why a shard did not append a batch.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A reshard closed the shard: the records come back, untouched, to be routed again.
    Closed(Vec<(String, Bytes)>),
    Failed(StreamError),
}

pub(crate) enum Command {
    Append(Append),
    /// Close the active segment so retention can delete it.
    Roll,
    /// Sync, stop, and say so.
    Shutdown(std::sync::mpsc::Sender<()>),
    /// Refuse every later append (a reshard closed the shard) and answer the tip at closing.
    Close(oneshot::Sender<Result<u64>>),
}

/// One shard of a stream.
pub struct Shard {
    index: u32,
    name: String,
    files: Arc<OpenFiles>,
    visible: Arc<RwLock<Visible>>,
    tip: watch::Receiver<u64>,
    tx: mpsc::Sender<Command>,
    /// Set once a reshard closed the shard; appends are refused from then on.
    closed: Arc<std::sync::atomic::AtomicBool>,
    /// Opens sealed entries (encryption at rest).
    seal: Arc<ShardSeal>,
    /// Records answered by reads since this process opened the shard (the rate out).
    served: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard").field("name", &self.name).finish()
    }
}

pub(crate) fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

impl Shard {
    /// Opens (recovering) or creates the shard log in `dir` and starts its writer thread. No
    /// file stays open: segments are opened through `files` when used. A shard closed at
    /// `closed_at` (one past its last counter) gets no writer: it is read-only.
    pub(crate) fn open(
        dir: PathBuf,
        index: u32,
        closed_at: Option<u64>,
        opts: &StoreOptions,
        files: Arc<OpenFiles>,
        seal: Arc<ShardSeal>,
    ) -> Result<Self> {
        std::fs::create_dir_all(&dir).at(&dir)?;
        let mut bases: Vec<u64> = std::fs::read_dir(&dir)
            .at(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| segment::parse_segment_name(&e.file_name().to_string_lossy()))
            .collect();
        bases.sort_unstable();

        let mut segments = Vec::with_capacity(bases.len() + 1);
        let mut next = 0u64;
        for base in bases {
            let path = segment::segment_path(&dir, base);
            let scanned = segment::recover(&path, base.max(next))?;
            if scanned.truncated_bytes > 0 {
                tracing::warn!(
                    path = %path.display(),
                    bytes = scanned.truncated_bytes,
                    "recovery cut a torn or corrupt tail off a segment"
                );
            }
            let seg_next = scanned.next_counter.unwrap_or(base.max(next));
            next = seg_next;
            segments.push(SegmentInfo {
                base,
                path,
                id: files.new_id(),
                len: scanned.len,
                next: seg_next,
                first_ms: scanned.first_ms,
                last_ms: scanned.last_ms,
                index: Arc::new(scanned.index),
            });
        }
        // Always append to a fresh segment after a restart: older segments stay immutable,
        // which keeps recovery and retention simple. A closed shard takes no appends, but it
        // keeps one (empty) active segment like every shard.
        let path = segment::segment_path(&dir, next);
        let reused = segments
            .last()
            .is_some_and(|last| last.base == next && last.len == segment::HEADER_LEN);
        if !reused {
            segment::create(&path)?;
            segments.push(SegmentInfo {
                base: next,
                path: path.clone(),
                id: files.new_id(),
                len: segment::HEADER_LEN,
                next,
                first_ms: None,
                last_ms: None,
                index: Arc::new(Vec::new()),
            });
        }
        let last_ms = segments.iter().filter_map(|s| s.last_ms).max().unwrap_or(0);
        let active = segments.last().expect("a shard always has a segment").id;
        let visible = Arc::new(RwLock::new(Visible { segments }));
        let (tip_tx, tip) = watch::channel(next);
        let (tx, rx) = mpsc::channel(1024);
        let name = format!("{}/{}", dir.display(), shard_id(index));
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(closed_at.is_some()));
        if let Some(end) = closed_at
            && end != next
        {
            tracing::warn!(shard = %name, end, next, "a closed shard's log does not end where its metadata says");
        }
        let writer = Writer {
            closed: closed.clone(),
            dir: dir.clone(),
            visible: visible.clone(),
            tip: tip_tx,
            files: files.clone(),
            id: active,
            path,
            len: segment::HEADER_LEN,
            written: segment::HEADER_LEN,
            unsynced: false,
            next,
            last_ms,
            last_indexed: None,
            index: Vec::new(),
            first_ms: None,
            policy: opts.fsync,
            segment_bytes: opts.segment_bytes,
            seal: seal.clone(),
        };
        if closed_at.is_some() {
            // No writer: the receiver drops, so only `Roll`/`Shutdown` (ignored) could be sent.
            drop(rx);
            drop(writer);
            return Ok(Self {
                index,
                name,
                files,
                visible,
                tip,
                tx,
                closed,
                seal,
                served: Default::default(),
            });
        }
        // A thread the OS refuses (EAGAIN: a process or memory limit) is a limit reached.
        std::thread::Builder::new()
            .name(format!("shard-writer-{index}"))
            .spawn(move || writer.run(rx))
            .map_err(|e| {
                StreamError::LimitExceeded(format!(
                    "cannot start the writer thread of {}: {e}",
                    dir.display()
                ))
            })?;
        Ok(Self {
            index,
            name,
            files,
            visible,
            tip,
            tx,
            closed,
            seal,
            served: Default::default(),
        })
    }

    /// Whether a reshard closed this shard.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Closes the shard: appends queued before this are written, later ones are refused with
    /// [`StreamError::ShardClosed`]. Returns one past the last counter the shard holds.
    /// Blocking: call it off the async threads.
    pub(crate) fn close_blocking(&self) -> Result<u64> {
        if self.is_closed() {
            return Ok(self.tip());
        }
        let (reply, rx) = oneshot::channel();
        if self.tx.blocking_send(Command::Close(reply)).is_err() {
            return Err(StreamError::WriterGone(self.name.clone()));
        }
        rx.blocking_recv()
            .map_err(|_| StreamError::WriterGone(self.name.clone()))?
    }

    /// Undoes [`Shard::close_blocking`] when the reshard that closed it failed to commit.
    pub(crate) fn reopen(&self) {
        self.closed
            .store(false, std::sync::atomic::Ordering::Release);
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn id(&self) -> String {
        shard_id(self.index)
    }

    /// Queues records for appending, in order. The returned future resolves with each
    /// record's (counter, arrival ms) once they are durable. Queueing first and awaiting later
    /// lets a caller write to several shards at once.
    pub(crate) async fn submit(
        &self,
        records: Vec<(String, Bytes)>,
    ) -> impl std::future::Future<Output = std::result::Result<Vec<(u64, i64)>, Refusal>> + use<>
    {
        let (reply, rx) = oneshot::channel();
        let name = self.name.clone();
        let early = if self.is_closed() {
            Some(Refusal::Closed(records))
        } else {
            let append = Command::Append(Append { records, reply });
            match self.tx.send(append).await {
                Ok(()) => None,
                Err(_) => Some(Refusal::Failed(StreamError::WriterGone(name.clone()))),
            }
        };
        async move {
            if let Some(refusal) = early {
                return Err(refusal);
            }
            rx.await
                .map_err(|_| Refusal::Failed(StreamError::WriterGone(name)))?
        }
    }

    /// Asks the writer to make everything durable and stop, and waits for it.
    pub(crate) fn shutdown(&self) {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        if self.tx.try_send(Command::Shutdown(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(std::time::Duration::from_secs(30));
        }
    }

    /// One past the newest durable record.
    pub fn tip(&self) -> u64 {
        *self.tip.borrow()
    }

    /// Records answered by reads (GetRecords, subscriptions, deliveries, scorers) since this
    /// process opened the shard.
    pub fn served(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A receiver that changes whenever new records become visible (for consumers that want
    /// to be woken on append instead of polling).
    pub fn watch_tip(&self) -> watch::Receiver<u64> {
        self.tip.clone()
    }

    /// The oldest counter still stored (the trim horizon).
    pub fn trim_horizon(&self) -> u64 {
        let v = self.visible.read();
        v.segments
            .iter()
            .find(|s| s.next > s.base)
            .map(|s| s.base)
            .unwrap_or_else(|| v.segments.last().map(|s| s.next).unwrap_or(0))
    }

    /// First counter whose arrival time is at or after `ms` (the tip if none).
    pub fn counter_at_time(&self, ms: i64) -> Result<u64> {
        let segs = self.visible.read().segments.clone();
        for seg in &segs {
            if seg.next == seg.base || seg.last_ms.is_some_and(|l| l < ms) {
                continue;
            }
            // Arrival times never decrease within a shard, so the sparse index is sorted.
            let start = match seg.index.partition_point(|p| p.arrival_ms < ms) {
                0 => 0,
                i => i - 1,
            };
            let mut found = None;
            let Some(file) = self.segment_file(seg)? else {
                continue;
            };
            scan(seg, &file, seg.index[start].offset, |e| {
                if e.arrival_ms >= ms {
                    found = Some(e.counter);
                    return false;
                }
                true
            })?;
            if let Some(c) = found {
                return Ok(c);
            }
        }
        Ok(self.tip())
    }

    /// Reads up to `max_records` records (and about `max_bytes` of data) from `from` on.
    /// Positions older than the trim horizon start at the horizon.
    pub fn read(&self, from: u64, max_records: usize, max_bytes: usize) -> Result<ReadBatch> {
        let (segs, tip) = {
            let v = self.visible.read();
            let tip = v.segments.last().map(|s| s.next).unwrap_or(0);
            (v.segments.clone(), tip)
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut pos = from;
        let mut next_arrival_ms = None;
        for seg in &segs {
            if seg.next <= pos.max(seg.base) {
                continue;
            }
            pos = pos.max(seg.base);
            let start = seg
                .index
                .partition_point(|p| p.counter <= pos)
                .saturating_sub(1);
            let offset = seg
                .index
                .get(start)
                .map(|p| p.offset)
                .unwrap_or(segment::HEADER_LEN);
            let mut full = false;
            let mut failed = None;
            let Some(file) = self.segment_file(seg)? else {
                continue;
            };
            scan(seg, &file, offset, |e| {
                if e.counter < pos {
                    return true;
                }
                let len = e.data_len();
                if out.len() >= max_records || (bytes > 0 && bytes + len > max_bytes) {
                    next_arrival_ms = Some(e.arrival_ms);
                    full = true;
                    return false;
                }
                let (partition_key, data) = match &e.sealed {
                    None => (e.key.to_owned(), Bytes::copy_from_slice(e.data)),
                    Some(sealed) => match self.seal.open(e.counter, sealed) {
                        Ok(opened) => opened,
                        Err(err) => {
                            failed = Some(err);
                            return false;
                        }
                    },
                };
                bytes += len;
                pos = e.counter + 1;
                out.push(Record {
                    counter: e.counter,
                    arrival_ms: e.arrival_ms,
                    partition_key,
                    data,
                });
                true
            })?;
            if let Some(err) = failed {
                // Never a record in the clear that was not there, nor a silent gap: the
                // records before the one that does not open are answered, and the next read
                // (which starts at it) says why it cannot go on.
                if out.is_empty() {
                    return Err(err);
                }
                break;
            }
            if full {
                break;
            }
        }
        self.served
            .fetch_add(out.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(ReadBatch {
            records: out,
            next: pos.max(from),
            tip,
            next_arrival_ms,
        })
    }

    /// Deletes closed segments whose newest record arrived before `cutoff_ms`; asks the
    /// writer to close the active segment when it is entirely expired too.
    pub(crate) fn enforce_retention(&self, cutoff_ms: i64) -> Result<usize> {
        let doomed: Vec<SegmentInfo> = {
            let mut v = self.visible.write();
            let active = v.segments.len().saturating_sub(1);
            let mut doomed = Vec::new();
            let mut keep = Vec::new();
            for (i, seg) in v.segments.drain(..).enumerate() {
                let expired = seg.last_ms.is_some_and(|l| l < cutoff_ms);
                if i < active && (expired || seg.next == seg.base) {
                    doomed.push(seg);
                } else {
                    keep.push(seg);
                }
            }
            v.segments = keep;
            if v.segments
                .last()
                .is_some_and(|s| s.last_ms.is_some_and(|l| l < cutoff_ms))
            {
                let _ = self.tx.try_send(Command::Roll);
            }
            doomed
        };
        for seg in &doomed {
            self.files.forget(seg.id);
            std::fs::remove_file(&seg.path).at(&seg.path)?;
        }
        Ok(doomed.len())
    }

    /// The open file of `seg`, or `None` when retention deleted it after the caller copied the
    /// segment list (its records are past the trim horizon now).
    fn segment_file(&self, seg: &SegmentInfo) -> Result<Option<SegmentFile<'_>>> {
        match self.files.get(seg.id, &seg.path) {
            Ok(f) => Ok(Some(f)),
            Err(StreamError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound
                    && !self.visible.read().segments.iter().any(|s| s.id == seg.id) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Closes this shard's files (the stream is being deleted).
    pub(crate) fn close_files(&self) {
        for seg in &self.visible.read().segments {
            self.files.forget(seg.id);
        }
    }
}

/// Decodes entries from `offset` to the segment's visible end, calling `f` until it returns
/// false. Reads in chunks so a lookup touches only what it needs.
fn scan(
    seg: &SegmentInfo,
    file: &File,
    mut offset: u64,
    mut f: impl FnMut(&segment::Entry) -> bool,
) -> Result<()> {
    let mut chunk = 256 * 1024usize;
    while offset < seg.len {
        let remaining = (seg.len - offset) as usize;
        let want = chunk.min(remaining);
        let buf = segment::read_at(file, &seg.path, offset, want)?;
        if buf.is_empty() {
            break;
        }
        let mut at = 0usize;
        while at < buf.len() {
            match segment::decode(&buf[at..]) {
                Ok(e) => {
                    if !f(&e) {
                        return Ok(());
                    }
                    at += e.size;
                }
                Err(segment::Stop::Short { need }) => {
                    if at == 0 {
                        if want == remaining {
                            // The visible end never cuts an entry; stop rather than spin.
                            return Ok(());
                        }
                        // One entry bigger than the chunk: grow and read again.
                        chunk = need.max(chunk * 2);
                    }
                    break;
                }
                Err(segment::Stop::Corrupt(why)) => {
                    return Err(StreamError::Io {
                        path: seg.path.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("{why} at byte {}", offset + at as u64),
                        ),
                    });
                }
            }
        }
        offset += at as u64;
    }
    Ok(())
}

/// The single writer of a shard. Runs on its own OS thread because every step (write,
/// fdatasync) blocks.
struct Writer {
    /// Shared with the shard: set when a `Close` command is taken.
    closed: Arc<std::sync::atomic::AtomicBool>,
    dir: PathBuf,
    visible: Arc<RwLock<Visible>>,
    tip: watch::Sender<u64>,
    files: Arc<OpenFiles>,
    /// The active segment: its key in `files` and its path.
    id: SegmentId,
    path: PathBuf,
    /// Bytes of the active segment, counting those encoded but not yet written.
    len: u64,
    /// Bytes of the active segment written to the file (where the next write goes).
    written: u64,
    /// Written since the last fdatasync (only with `FsyncPolicy::Never`).
    unsynced: bool,
    next: u64,
    last_ms: i64,
    last_indexed: Option<u64>,
    index: Vec<IndexPoint>,
    /// Arrival of the active segment's first record.
    first_ms: Option<i64>,
    policy: FsyncPolicy,
    segment_bytes: u64,
    /// Whether (and under which key) new entries are sealed.
    seal: Arc<ShardSeal>,
}

/// Commands taken off the queue for one commit.
#[derive(Default)]
struct Gathered {
    batch: Vec<Append>,
    bytes: usize,
    roll: bool,
    stop: Option<std::sync::mpsc::Sender<()>>,
    close: Option<oneshot::Sender<Result<u64>>>,
    /// Appends taken after a `Close` (or after the shard closed): refused.
    refused: Vec<Append>,
}

impl Gathered {
    fn push(&mut self, cmd: Command, closed: bool) {
        match cmd {
            Command::Append(a) if closed || self.close.is_some() => self.refused.push(a),
            Command::Close(reply) => self.close = Some(reply),
            Command::Append(a) => {
                self.bytes += a
                    .records
                    .iter()
                    .map(|(k, d)| k.len() + d.len())
                    .sum::<usize>();
                self.batch.push(a);
            }
            Command::Roll => self.roll = true,
            Command::Shutdown(done) => self.stop = Some(done),
        }
    }
}

/// Most bytes gathered into one write.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut buf = Vec::with_capacity(1024 * 1024);
        while let Some(first) = rx.blocking_recv() {
            let mut gathered = Gathered::default();
            let closed = self.closed.load(std::sync::atomic::Ordering::Acquire);
            gathered.push(first, closed);
            let deadline = self.policy.gather_window().map(|w| Instant::now() + w);
            while gathered.bytes < MAX_BATCH_BYTES && gathered.stop.is_none() {
                match rx.try_recv() {
                    Ok(cmd) => gathered.push(cmd, closed),
                    Err(mpsc::error::TryRecvError::Empty) => match deadline {
                        Some(d) if Instant::now() < d => {
                            std::thread::sleep(std::time::Duration::from_micros(200))
                        }
                        _ => break,
                    },
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                }
            }
            let Gathered {
                batch,
                roll,
                stop,
                close,
                refused,
                ..
            } = gathered;
            if roll
                && self.len > segment::HEADER_LEN
                && let Err(e) = self.roll()
            {
                tracing::error!(error = %e, "could not roll segment");
            }
            if !batch.is_empty() {
                self.commit(batch, &mut buf);
            }
            if let Some(reply) = close {
                let _ = reply.send(self.close());
            }
            for append in refused {
                let _ = append.reply.send(Err(Refusal::Closed(append.records)));
            }
            if let Some(done) = stop {
                self.sync_on_exit();
                let _ = done.send(());
                return;
            }
        }
        // Channel closed: the stream is shutting down. Make everything durable.
        self.sync_on_exit();
    }

    /// Makes everything durable and refuses appends from now on; answers the tip.
    fn close(&mut self) -> Result<u64> {
        if self.unsynced {
            self.sync()?;
        }
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(self.next)
    }

    /// The active segment's file, opened if the store's open files closed it.
    fn file(&self) -> Result<SegmentFile<'_>> {
        self.files.get(self.id, &self.path)
    }

    fn sync(&mut self) -> Result<()> {
        self.file()?.sync_data().at(&self.path)?;
        self.unsynced = false;
        Ok(())
    }

    fn sync_on_exit(&mut self) {
        if self.unsynced
            && let Err(e) = self.sync()
        {
            tracing::error!(error = %e, "could not sync the active segment on shutdown");
        }
    }

    /// Writes a batch of appends, makes them durable, publishes them, then acknowledges.
    fn commit(&mut self, batch: Vec<Append>, buf: &mut Vec<u8>) {
        let sealer = match self.seal.for_writing() {
            Ok(s) => s,
            Err(e) => {
                // Encryption is on and its key is missing: refuse rather than write in the clear.
                for append in batch {
                    let _ = append.reply.send(Err(Refusal::Failed(e.duplicate())));
                }
                return;
            }
        };
        let mut results: Vec<Vec<(u64, i64)>> = Vec::with_capacity(batch.len());
        let outcome = (|| -> Result<()> {
            buf.clear();
            let mut buf_start = self.len;
            for append in &batch {
                let mut assigned = Vec::with_capacity(append.records.len());
                for (key, data) in &append.records {
                    let size = segment::encoded_len(key, data, sealer.is_some()) as u64;
                    if self.len > segment::HEADER_LEN && self.len + size > self.segment_bytes {
                        self.write_buf(buf)?;
                        self.roll()?;
                        buf_start = self.len;
                    }
                    // Arrival times never go backwards within a shard, even if the clock does.
                    let now = crate::now_ms().max(self.last_ms);
                    self.last_ms = now;
                    let offset = buf_start + buf.len() as u64;
                    if self
                        .last_indexed
                        .is_none_or(|at| offset - at >= INDEX_EVERY)
                    {
                        self.index.push(IndexPoint {
                            counter: self.next,
                            offset,
                            arrival_ms: now,
                        });
                        self.last_indexed = Some(offset);
                    }
                    self.first_ms.get_or_insert(now);
                    segment::encode(buf, self.next, now, key, data, sealer.as_ref());
                    assigned.push((self.next, now));
                    self.next += 1;
                    self.len += size;
                }
                results.push(assigned);
            }
            self.write_buf(buf)?;
            if self.policy != FsyncPolicy::Never {
                self.sync()?;
            }
            Ok(())
        })();
        match outcome {
            Ok(()) => {
                self.publish();
                for (append, assigned) in batch.into_iter().zip(results) {
                    let _ = append.reply.send(Ok(assigned));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, path = %self.path.display(), "append failed");
                // Nothing of this batch is acknowledged. Cut the active segment back to what
                // readers can already see, so counters stay dense and an unacknowledged
                // record does not appear after a restart.
                let (len, next) = {
                    let v = self.visible.read();
                    let last = v.segments.last().expect("a shard always has a segment");
                    (last.len, last.next)
                };
                if let Ok(file) = self.file() {
                    let _ = file.set_len(len);
                }
                self.len = len;
                self.written = len;
                self.next = next;
                self.index.retain(|p| p.counter < next);
                self.last_indexed = self.index.last().map(|p| p.offset);
                if self.index.is_empty() {
                    self.first_ms = None;
                }
                for append in batch {
                    let _ = append.reply.send(Err(Refusal::Failed(e.duplicate())));
                }
            }
        }
    }

    fn write_buf(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        if !buf.is_empty() {
            self.file()?
                .write_all_at(buf, self.written)
                .at(&self.path)?;
            self.written += buf.len() as u64;
            self.unsynced = true;
            buf.clear();
        }
        Ok(())
    }

    /// Makes the written bytes visible to readers and wakes waiting consumers.
    fn publish(&mut self) {
        let mut v = self.visible.write();
        if let Some(seg) = v.segments.last_mut() {
            seg.len = self.len;
            seg.next = self.next;
            if seg.next > seg.base {
                seg.first_ms = self.first_ms;
                seg.last_ms = Some(self.last_ms);
            }
            if seg.index.len() != self.index.len() {
                seg.index = Arc::new(self.index.clone());
            }
        }
        drop(v);
        self.tip.send_replace(self.next);
    }

    /// Closes the active segment (durably) and starts a new one at the current counter.
    fn roll(&mut self) -> Result<()> {
        // The new segment first: if it cannot be made (no descriptor left), nothing of the
        // batch has been published and the caller cuts it off.
        let path = segment::segment_path(&self.dir, self.next);
        segment::create(&path)?;
        if let Err(e) = self.sync() {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        self.publish();
        self.id = self.files.new_id();
        self.path = path.clone();
        self.len = segment::HEADER_LEN;
        self.written = segment::HEADER_LEN;
        self.index.clear();
        self.last_indexed = None;
        self.first_ms = None;
        self.visible.write().segments.push(SegmentInfo {
            base: self.next,
            path,
            id: self.id,
            len: segment::HEADER_LEN,
            next: self.next,
            first_ms: None,
            last_ms: None,
            index: Arc::new(Vec::new()),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Appends `sizes` records (one request each) to a fresh shard, returns their data.
    fn write(
        dir: &std::path::Path,
        opts: &StoreOptions,
        seal: &Arc<ShardSeal>,
        sizes: &[usize],
    ) -> Vec<Bytes> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let shard = Shard::open(
            dir.to_owned(),
            0,
            None,
            opts,
            Arc::new(OpenFiles::new(4)),
            seal.clone(),
        )
        .unwrap();
        let data: Vec<Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Bytes::from((0..n).map(|j| (i * 31 + j) as u8).collect::<Vec<u8>>()))
            .collect();
        rt.block_on(async {
            for (i, d) in data.iter().enumerate() {
                let done = shard.submit(vec![(format!("k{i}"), d.clone())]).await;
                assert_eq!(done.await.unwrap()[0].0, i as u64);
            }
        });
        shard.shutdown();
        data
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// Entries of any size, 1 MiB and larger too, survive write, reopen (recovery) and read.
        #[test]
        fn entries_of_any_size_survive_recovery(
            sizes in proptest::collection::vec(
                prop_oneof![0usize..2048, 900_000usize..1_600_000],
                1..6,
            ),
            small_segments in any::<bool>(),
            sealed in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let opts = StoreOptions {
                fsync: FsyncPolicy::Never,
                segment_bytes: if small_segments { 1_000_000 } else { 64 << 20 },
                ..StoreOptions::default()
            };
            let seal = if sealed {
                ShardSeal::sealed_for_test(&dir.path().join("keyring.toml"))
            } else {
                ShardSeal::plain()
            };
            let data = write(dir.path(), &opts, &seal, &sizes);
            let shard = Shard::open(
                dir.path().to_owned(),
                0,
                None,
                &opts,
                Arc::new(OpenFiles::new(4)),
                seal,
            )
            .unwrap();
            prop_assert_eq!(shard.tip(), data.len() as u64);
            let got = shard.read(0, 10_000, usize::MAX).unwrap();
            let got: Vec<Bytes> = got.records.into_iter().map(|r| r.data).collect();
            prop_assert_eq!(got.len(), data.len());
            prop_assert!(got == data, "records differ after recovery");
            shard.shutdown();
        }
    }
}
