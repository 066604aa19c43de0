//! One queue: receiving (live and dead-letter, with long polling), acknowledging, changing
//! visibility and restoring, over its [`State`] and [`Journal`].
//!
//! The queue's lock is held only to choose records and write their events; record data is
//! read from the shard logs after it is released. Waiting receivers are woken by a shard's
//! new records (`watch_tip`), by a record made visible (a visibility of 0, a restore), or when
//! the earliest in-flight record's timeout passes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use millrace_stream::{Shard, StreamHandle, now_ms};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::config::QueueConfig;
use crate::error::{EntryError, QueueError, Result};
use crate::handle::{HandleCodec, Receipt, Side};
use crate::journal::{JOURNAL_FILE, Journal, Syncer};
use crate::state::{Event, Key, State};

/// Receives wake at least this often to look for shards added by a reshard.
const MAX_NAP: Duration = Duration::from_secs(1);

/// A record handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub receipt_handle: String,
    /// The record's sequence number: the same in every delivery and every queue.
    pub record_id: String,
    pub partition_key: String,
    pub data: Bytes,
    pub arrival_ms: i64,
    pub first_receive_ms: i64,
    pub receive_count: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct ReceiveOptions {
    pub side: Side,
    pub limit: usize,
    pub wait: Duration,
    /// This receive's visibility timeout instead of the queue's.
    pub visibility_timeout_s: Option<u32>,
}

/// One entry of a batch call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Acknowledge,
    /// Visible again this many seconds from now (0: at once).
    Visibility(u32),
    /// Dead-letter side only: back to the live side, receive count reset.
    Restore,
}

/// A queue's records by state, for DescribeQueue's callers, `status` and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Records a receive would hand out now: not yet handed out, or back after a timeout.
    pub visible: u64,
    pub in_flight: u64,
    pub dead_letter: u64,
}

struct Claim {
    key: Key,
    receive_count: u32,
    generation: u32,
    first_receive_ms: i64,
}

struct Inner {
    state: State,
    journal: Journal,
}

pub struct Queue {
    dir: PathBuf,
    config: RwLock<QueueConfig>,
    stream: Arc<StreamHandle>,
    inner: Mutex<Inner>,
    syncer: Syncer,
    /// The store's `fsync = "never"`: acknowledgements survive a killed process (the page
    /// cache has them), not a power loss.
    skip_sync: bool,
    notify: Notify,
    deleted: AtomicBool,
    /// The shard fresh records are taken from first, rotated on every receive.
    rotate: AtomicUsize,
    codec: HandleCodec,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("dir", &self.dir).finish()
    }
}

fn shard_at(shards: &[Arc<Shard>], index: u32) -> Option<&Arc<Shard>> {
    shards
        .get(index as usize)
        .filter(|s| s.index() == index)
        .or_else(|| shards.iter().find(|s| s.index() == index))
}

/// Whether the record is gone from the stream with its retention.
fn trimmed(shards: &[Arc<Shard>], key: Key) -> bool {
    shard_at(shards, key.0).is_none_or(|s| key.1 < s.trim_horizon())
}

impl Queue {
    pub(crate) fn open(
        dir: PathBuf,
        config: QueueConfig,
        stream: Arc<StreamHandle>,
        codec: HandleCodec,
        skip_sync: bool,
    ) -> Result<Self> {
        let (journal, state) = Journal::open(&dir)?;
        Ok(Self {
            dir,
            config: RwLock::new(config),
            stream,
            inner: Mutex::new(Inner { state, journal }),
            syncer: Syncer::default(),
            skip_sync,
            notify: Notify::new(),
            deleted: AtomicBool::new(false),
            rotate: AtomicUsize::new(0),
            codec,
        })
    }

    pub fn config(&self) -> QueueConfig {
        self.config.read().clone()
    }

    pub fn id(&self) -> String {
        self.config.read().id.clone()
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn set_config(&self, config: QueueConfig) {
        *self.config.write() = config;
    }

    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    fn check_live(&self) -> Result<()> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(QueueError::NotFound(self.id()));
        }
        Ok(())
    }

    pub fn counts(&self) -> QueueCounts {
        let shards = self.stream.shards();
        let now = now_ms();
        let inner = self.inner.lock();
        let c = inner.state.counts(now);
        let backlog: u64 = shards
            .iter()
            .map(|s| {
                let from = inner.state.cursor(s.index()).max(s.trim_horizon());
                s.tip().saturating_sub(from)
            })
            .sum();
        // Entries past their last receive are dead letters once their timeout passes, even
        // before a receive records it.
        let due = self
            .config
            .read()
            .attributes
            .dead_letter
            .max_receive_count()
            .map_or(0, |m| inner.state.due_dead_letters(now, m).len() as u64);
        QueueCounts {
            visible: backlog + c.redeliverable - due,
            in_flight: c.in_flight,
            dead_letter: c.dead_letter + due,
        }
    }

    /// Receives up to `opts.limit` records, waiting up to `opts.wait` for one to be visible.
    pub async fn receive(self: &Arc<Self>, opts: ReceiveOptions) -> Result<Vec<Delivered>> {
        let deadline = tokio::time::Instant::now() + opts.wait;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut tips: Vec<_> = match opts.side {
                Side::Live => self
                    .stream
                    .shards()
                    .iter()
                    .filter(|s| !s.is_closed())
                    .map(|s| s.watch_tip())
                    .collect(),
                Side::DeadLetter => Vec::new(),
            };
            for t in &mut tips {
                t.borrow_and_update();
            }
            let me = self.clone();
            let (got, next_visible_ms) = tokio::task::spawn_blocking(move || me.try_receive(&opts))
                .await
                .map_err(|e| QueueError::Invalid(format!("receive task failed: {e}")))??;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let mut wake = deadline.min(now + MAX_NAP);
            if let Some(ms) = next_visible_ms {
                let wait = (ms - now_ms()).max(0) as u64 + 1;
                wake = wake.min(now + Duration::from_millis(wait));
            }
            let new_records = async {
                if tips.is_empty() {
                    return std::future::pending().await;
                }
                let changes = tips.iter_mut().map(|t| {
                    Box::pin(async move {
                        if t.changed().await.is_err() {
                            // The shard's writer is gone (closed or shutting down).
                            std::future::pending::<()>().await;
                        }
                    })
                });
                futures::future::select_all(changes).await;
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake) => {}
                _ = new_records => {}
            }
            self.check_live()?;
        }
    }

    /// One pass of a receive: claims records under the lock, then reads their data. Also
    /// returns when the earliest in-flight record of that side becomes visible.
    fn try_receive(&self, opts: &ReceiveOptions) -> Result<(Vec<Delivered>, Option<i64>)> {
        self.check_live()?;
        let attrs = self.config.read().attributes;
        let vis_ms = i64::from(
            opts.visibility_timeout_s
                .unwrap_or(attrs.visibility_timeout_s),
        ) * 1000;
        let max_receives = attrs.dead_letter.max_receive_count();
        let now = now_ms();
        let shards = self.stream.shards();
        let mut claims = Vec::new();
        let mut events = Vec::new();
        let next_deadline = {
            let mut inner = self.inner.lock();
            let state = &mut inner.state;
            let mut emit = |state: &mut State, ev: Event| {
                state.apply(ev);
                events.push(ev);
            };
            match opts.side {
                Side::Live => {
                    while claims.len() < opts.limit {
                        let Some(key) = state.next_visible(now, false) else {
                            break;
                        };
                        let e = *state.entry(key).expect("indexed entries exist");
                        if trimmed(&shards, key) {
                            emit(state, Event::Remove { key });
                        } else if max_receives.is_some_and(|m| e.receive_count >= m) {
                            emit(
                                state,
                                Event::Dead {
                                    key,
                                    visible_at_ms: now,
                                },
                            );
                        } else {
                            let claim = Claim {
                                key,
                                receive_count: e.receive_count + 1,
                                generation: e.generation + 1,
                                first_receive_ms: e.first_receive_ms,
                            };
                            emit(state, receive_event(&claim, now + vis_ms));
                            claims.push(claim);
                        }
                    }
                    if claims.len() < opts.limit && !shards.is_empty() {
                        let n = shards.len();
                        let start = self.rotate.fetch_add(1, Ordering::Relaxed) % n;
                        for i in 0..n {
                            let shard = &shards[(start + i) % n];
                            let s = shard.index();
                            let tip = shard.tip();
                            let mut next = state.cursor(s);
                            let horizon = shard.trim_horizon();
                            if next < horizon {
                                emit(
                                    state,
                                    Event::Cursor {
                                        shard: s,
                                        next: horizon,
                                    },
                                );
                                next = horizon;
                            }
                            while next < tip && claims.len() < opts.limit {
                                let claim = Claim {
                                    key: (s, next),
                                    receive_count: 1,
                                    generation: 1,
                                    first_receive_ms: now,
                                };
                                emit(state, receive_event(&claim, now + vis_ms));
                                claims.push(claim);
                                next += 1;
                            }
                            if claims.len() >= opts.limit {
                                break;
                            }
                        }
                    }
                }
                Side::DeadLetter => {
                    // Records past their last allowed receive turn dead when their timeout
                    // passes, whether or not a live receive came by since.
                    if let Some(max) = max_receives {
                        for key in state.due_dead_letters(now, max) {
                            emit(
                                state,
                                Event::Dead {
                                    key,
                                    visible_at_ms: now,
                                },
                            );
                        }
                    }
                    while claims.len() < opts.limit {
                        let Some(key) = state.next_visible(now, true) else {
                            break;
                        };
                        let e = *state.entry(key).expect("indexed entries exist");
                        if trimmed(&shards, key) {
                            emit(state, Event::Remove { key });
                            continue;
                        }
                        let claim = Claim {
                            key,
                            receive_count: e.receive_count,
                            generation: e.generation + 1,
                            first_receive_ms: e.first_receive_ms,
                        };
                        emit(
                            state,
                            Event::DeadReceive {
                                key,
                                generation: claim.generation,
                                visible_at_ms: now + vis_ms,
                            },
                        );
                        claims.push(claim);
                    }
                }
            }
            let deadline = inner
                .state
                .next_deadline(matches!(opts.side, Side::DeadLetter));
            inner.journal.append(&events)?;
            let Inner { state, journal } = &mut *inner;
            journal.maybe_compact(state)?;
            deadline
        };
        let delivered = self.read_claims(&shards, claims, opts.side)?;
        Ok((delivered, next_deadline))
    }

    /// Reads the claimed records' data (runs of counters in one read). A record the stream
    /// no longer holds (trimmed since it was claimed) is removed from the queue.
    fn read_claims(
        &self,
        shards: &[Arc<Shard>],
        mut claims: Vec<Claim>,
        side: Side,
    ) -> Result<Vec<Delivered>> {
        claims.sort_by_key(|c| c.key);
        let mut out = Vec::with_capacity(claims.len());
        let mut gone = Vec::new();
        let id = self.id();
        let issued_ms = now_ms();
        let mut i = 0;
        while i < claims.len() {
            let (s, first) = claims[i].key;
            let mut j = i + 1;
            while j < claims.len() && claims[j].key == (s, first + (j - i) as u64) {
                j += 1;
            }
            let records = match shard_at(shards, s) {
                Some(shard) => shard.read(first, j - i, usize::MAX)?.records,
                None => Vec::new(),
            };
            let mut records = records.into_iter().peekable();
            for claim in &claims[i..j] {
                while records.peek().is_some_and(|r| r.counter < claim.key.1) {
                    records.next();
                }
                match records.next_if(|r| r.counter == claim.key.1) {
                    Some(r) => out.push(Delivered {
                        receipt_handle: self.codec.encode(
                            &id,
                            &Receipt {
                                side,
                                key: claim.key,
                                generation: claim.generation,
                                issued_ms,
                            },
                        ),
                        record_id: self.stream.sequence(s, r.counter).to_string(),
                        partition_key: r.partition_key,
                        data: r.data,
                        arrival_ms: r.arrival_ms,
                        first_receive_ms: claim.first_receive_ms,
                        receive_count: claim.receive_count,
                    }),
                    None => gone.push(Event::Remove { key: claim.key }),
                }
            }
            i = j;
        }
        if !gone.is_empty() {
            let mut inner = self.inner.lock();
            for ev in &gone {
                inner.state.apply(*ev);
            }
            inner.journal.append(&gone)?;
        }
        Ok(out)
    }

    /// Applies a batch of changes named by receipt handles of `side`; each entry succeeds or
    /// fails on its own. Acknowledgements and restores are durable when this returns.
    pub async fn change(
        self: &Arc<Self>,
        side: Side,
        entries: Vec<(String, Change)>,
    ) -> Result<Vec<std::result::Result<(), EntryError>>> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.change_blocking(side, &entries))
            .await
            .map_err(|e| QueueError::Invalid(format!("change task failed: {e}")))?
    }

    fn change_blocking(
        &self,
        side: Side,
        entries: &[(String, Change)],
    ) -> Result<Vec<std::result::Result<(), EntryError>>> {
        self.check_live()?;
        let id = self.id();
        let now = now_ms();
        let mut results = Vec::with_capacity(entries.len());
        let mut events = Vec::new();
        let mut durable = false;
        let mut wake = false;
        let mark = {
            let mut inner = self.inner.lock();
            for (handle, change) in entries {
                let r = self.check_entry(&inner.state, &id, side, handle, *change);
                let ev = match r {
                    Ok(Some(key)) => Some(match *change {
                        Change::Acknowledge => Event::Remove { key },
                        Change::Visibility(s) => Event::Visibility {
                            key,
                            visible_at_ms: now + i64::from(s) * 1000,
                        },
                        Change::Restore => Event::Restore {
                            key,
                            visible_at_ms: now,
                        },
                    }),
                    _ => None,
                };
                if let Some(ev) = ev {
                    inner.state.apply(ev);
                    events.push(ev);
                    durable |= matches!(change, Change::Acknowledge | Change::Restore);
                    wake |= matches!(change, Change::Restore | Change::Visibility(0));
                }
                results.push(r.map(|_| ()));
            }
            inner.journal.append(&events)?
        };
        if durable && !self.skip_sync {
            self.syncer.sync(&mark, &self.dir.join(JOURNAL_FILE))?;
        }
        if wake {
            self.notify.notify_waiters();
        }
        Ok(results)
    }

    /// The record a handle names if the change applies to it; `None` when an acknowledgement
    /// repeats one already made (which succeeds again).
    fn check_entry(
        &self,
        state: &State,
        id: &str,
        side: Side,
        handle: &str,
        change: Change,
    ) -> std::result::Result<Option<Key>, EntryError> {
        let Some(r) = self.codec.decode(id, handle) else {
            return Err(EntryError::invalid(format!(
                "ReceiptHandle {handle} is not a receipt handle of queue {id}."
            )));
        };
        if r.side != side {
            return Err(EntryError::invalid(match r.side {
                Side::DeadLetter => {
                    "The receipt handle is a dead-letter receipt handle; use the dead-letter operations."
                }
                Side::Live => {
                    "The receipt handle is not a dead-letter receipt handle; use AcknowledgeQueueRecords or UpdateQueueRecordsVisibility."
                }
            }));
        }
        let Some(e) = state.entry(r.key) else {
            if state.is_done(r.key) {
                return match change {
                    Change::Acknowledge => Ok(None),
                    _ => Err(EntryError::gone(
                        "The record was already acknowledged or has left the stream's retention period.",
                    )),
                };
            }
            return Err(EntryError::invalid(
                "The receipt handle names a record this queue has not delivered.",
            ));
        };
        if e.dead != matches!(side, Side::DeadLetter) {
            return Err(EntryError::invalid(if e.dead {
                "The record has become a dead-letter record; use the dead-letter operations."
            } else {
                "The record was restored to the queue; receive it again for a new receipt handle."
            }));
        }
        if e.generation != r.generation {
            return Err(EntryError::invalid(
                "The receipt handle has expired: the record was received again since it was issued.",
            ));
        }
        Ok(Some(r.key))
    }
}

fn receive_event(c: &Claim, visible_at_ms: i64) -> Event {
    Event::Receive {
        key: c.key,
        receive_count: c.receive_count,
        generation: c.generation,
        first_receive_ms: c.first_receive_ms,
        visible_at_ms,
    }
}
