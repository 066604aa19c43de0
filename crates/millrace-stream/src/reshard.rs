//! Resharding with Kinesis's semantics: SplitShard, MergeShards and UpdateShardCount (uniform
//! scaling, done as splits and merges the way Kinesis does it, so every shard has at most two
//! parents).
//!
//! A change closes its parents in their writers first (appends queued before are written,
//! later ones are refused and routed again), then creates the children, then writes the new
//! shard map to `meta.json` (the commit point), then publishes it to `put`. A crash before the
//! commit leaves the old map, whose parents reopen on start; a failure before it reopens them
//! at once. Closed shards stay readable until retention removes their records.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::{Result, StreamError};
use crate::hash::{HashKeyRange, shard_ranges};
use crate::meta::{ShardEnd, ShardMeta};
use crate::shard::{Shard, shard_id};
use crate::store::{Store, StreamHandle, Topology, shard_dir};

/// Most shards one stream may have open (Kinesis: 10,000 per UpdateShardCount target).
pub const MAX_TARGET_SHARDS: u32 = 10_000;

/// One step of a reshard.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// Close `shard`; children own `[start, at - 1]` and `[at, end]`.
    Split { shard: u32, at: u128 },
    /// Close two adjacent shards; one child owns both ranges.
    Merge { shard: u32, adjacent: u32 },
}

impl Store {
    /// SplitShard: `new_starting_hash_key` must lie strictly inside the open shard's range,
    /// more than one above its start. Blocking.
    pub fn split_shard(
        &self,
        stream: &str,
        shard: &str,
        new_starting_hash_key: u128,
    ) -> Result<()> {
        let s = self.stream(stream)?;
        let _busy = s.begin_update()?;
        let m = s.open_shard_meta(shard, "splitting")?;
        if new_starting_hash_key <= m.range.start.saturating_add(1)
            || new_starting_hash_key >= m.range.end
        {
            return Err(StreamError::InvalidArgument(format!(
                "NewStartingHashKey {new_starting_hash_key} used in SplitShard() on shard {} in \
                 stream {} under account {} is not both greater than one plus the shard's \
                 StartingHashKey {} and less than the shard's EndingHashKey {}.",
                shard_id(m.index),
                s.name(),
                self.options().account_id,
                m.range.start,
                m.range.end
            )));
        }
        self.check_shard_quota(1)?;
        s.apply(Change::Split {
            shard: m.index,
            at: new_starting_hash_key,
        })
    }

    /// MergeShards: two open shards whose ranges touch. Blocking.
    pub fn merge_shards(&self, stream: &str, shard: &str, adjacent: &str) -> Result<()> {
        let s = self.stream(stream)?;
        let _busy = s.begin_update()?;
        let a = s.open_shard_meta(shard, "merging")?;
        let b = s.open_shard_meta(adjacent, "merging")?;
        let touching = a.range.end.checked_add(1) == Some(b.range.start)
            || b.range.end.checked_add(1) == Some(a.range.start);
        if !touching {
            return Err(StreamError::InvalidArgument(format!(
                "Shards {} and {} in stream {} under account {} are not an adjacent pair of \
                 shards eligible for merging",
                shard_id(a.index),
                shard_id(b.index),
                s.name(),
                self.options().account_id
            )));
        }
        s.apply(Change::Merge {
            shard: a.index,
            adjacent: b.index,
        })
    }

    /// UpdateShardCount with UNIFORM_SCALING: splits the open shards at the boundaries of
    /// `target` equal ranges, then merges what lies inside each. Kinesis allows at most double
    /// and at least half the open shards. Returns the open shard count before. Blocking.
    pub fn update_shard_count(&self, stream: &str, target: u32) -> Result<u32> {
        let s = self.stream(stream)?;
        let _busy = s.begin_update()?;
        let current = s.open_shard_count();
        let account = &self.options().account_id;
        if target == 0 || target > MAX_TARGET_SHARDS {
            return Err(StreamError::InvalidArgument(format!(
                "TargetShardCount {target} must be between 1 and {MAX_TARGET_SHARDS}"
            )));
        }
        if target > current.saturating_mul(2) {
            return Err(StreamError::InvalidArgument(format!(
                "UpdateShardCount cannot scale up over double your current open shard count. \
                 Current open shard count: {current} Target shard count: {target} for stream {} \
                 under account {account}",
                s.name()
            )));
        }
        if target < current.div_ceil(2) {
            return Err(StreamError::InvalidArgument(format!(
                "UpdateShardCount cannot scale down below half your current open shard count. \
                 Current open shard count: {current} Target shard count: {target} for stream {} \
                 under account {account}",
                s.name()
            )));
        }
        if target > current {
            self.check_shard_quota(target - current)?;
        }
        let targets = shard_ranges(target);
        for t in targets.iter().skip(1) {
            let owner = s
                .open_ranges()
                .into_iter()
                .find(|(r, _)| r.start < t.start && t.start <= r.end);
            if let Some((_, index)) = owner {
                s.apply(Change::Split {
                    shard: index,
                    at: t.start,
                })?;
            }
        }
        for t in &targets {
            loop {
                let inside: Vec<(HashKeyRange, u32)> = s
                    .open_ranges()
                    .into_iter()
                    .filter(|(r, _)| t.start <= r.start && r.end <= t.end)
                    .collect();
                if inside.len() < 2 {
                    break;
                }
                s.apply(Change::Merge {
                    shard: inside[0].1,
                    adjacent: inside[1].1,
                })?;
            }
        }
        Ok(current)
    }
}

/// Marks a stream UPDATING while a change runs; dropped, it is ACTIVE again.
pub(crate) struct Updating<'a> {
    _lock: parking_lot::MutexGuard<'a, ()>,
    stream: &'a StreamHandle,
}

impl Drop for Updating<'_> {
    fn drop(&mut self) {
        self.stream.updating.store(false, Ordering::Release);
    }
}

impl StreamHandle {
    /// Whether a reshard or mode change is under way (the API's `UPDATING` status).
    pub fn is_updating(&self) -> bool {
        self.updating.load(Ordering::Acquire)
    }

    /// Takes the stream for a change, or refuses when another one is under way.
    pub(crate) fn begin_update(&self) -> Result<Updating<'_>> {
        let lock = self.reshard.try_lock().ok_or_else(|| {
            StreamError::ResourceInUse(format!(
                "Stream {} under account {} is in the UPDATING state; wait for it to be ACTIVE.",
                self.name(),
                self.opts.account_id
            ))
        })?;
        self.updating.store(true, Ordering::Release);
        Ok(Updating {
            _lock: lock,
            stream: self,
        })
    }

    /// The open shards' ranges, sorted by start.
    pub fn open_ranges(&self) -> Vec<(HashKeyRange, u32)> {
        self.topology.borrow().open.clone()
    }

    fn open_shard_meta(&self, id: &str, doing: &str) -> Result<ShardMeta> {
        let meta = self.meta.read();
        let m = crate::store::parse_shard_id(id)
            .and_then(|i| meta.shards.get(i as usize))
            .ok_or_else(|| StreamError::ShardNotFound {
                stream: meta.name.clone(),
                shard: id.to_owned(),
            })?;
        if !m.is_open() {
            return Err(StreamError::ResourceInUse(format!(
                "Shard {} in stream {} under account {} has already been merged or split, and \
                 thus is not eligible for {doing}.",
                shard_id(m.index),
                meta.name,
                self.opts.account_id
            )));
        }
        Ok(m.clone())
    }

    /// Runs one change: close parents, open children, commit the map, publish it.
    fn apply(&self, change: Change) -> Result<()> {
        let (parents, children) = {
            let meta = self.meta.read();
            let next = meta.shards.len() as u32;
            let now = crate::now_ms();
            let child = |index, range, parent, adjacent_parent| ShardMeta {
                index,
                range,
                parent: Some(parent),
                adjacent_parent,
                opened_ms: now,
                closed: None,
            };
            match change {
                Change::Split { shard, at } => {
                    let r = meta.shards[shard as usize].range;
                    let low = HashKeyRange {
                        start: r.start,
                        end: at - 1,
                    };
                    let high = HashKeyRange {
                        start: at,
                        end: r.end,
                    };
                    (
                        vec![shard],
                        vec![
                            child(next, low, shard, None),
                            child(next + 1, high, shard, None),
                        ],
                    )
                }
                Change::Merge { shard, adjacent } => {
                    let a = meta.shards[shard as usize].range;
                    let b = meta.shards[adjacent as usize].range;
                    let range = HashKeyRange {
                        start: a.start.min(b.start),
                        end: a.end.max(b.end),
                    };
                    (
                        vec![shard, adjacent],
                        vec![child(next, range, shard, Some(adjacent))],
                    )
                }
            }
        };
        let topology = self.topology.borrow().clone();
        let mut ends = Vec::new();
        for &p in &parents {
            match topology.shards[p as usize].close_blocking() {
                Ok(end) => ends.push((p, end)),
                Err(e) => {
                    self.reopen(&topology, &parents);
                    return Err(e);
                }
            }
        }
        let committed = (|| -> Result<Vec<Arc<Shard>>> {
            let opened = children
                .iter()
                .map(|c| {
                    Shard::open(
                        shard_dir(&self.dir, c.index),
                        c.index,
                        None,
                        &self.opts,
                        self.files.clone(),
                        self.shard_seal(c.index),
                    )
                    .map(Arc::new)
                })
                .collect::<Result<Vec<_>>>()?;
            let closed_ms = crate::now_ms();
            self.update_meta(|m| {
                for &(p, next_counter) in &ends {
                    m.shards[p as usize].closed = Some(ShardEnd {
                        next_counter,
                        closed_ms,
                    });
                }
                m.shards.extend(children.iter().cloned());
                m.shard_count = m.open_shards().count() as u32;
                Ok(())
            })?;
            Ok(opened)
        })();
        match committed {
            Ok(opened) => {
                let mut shards = topology.shards.clone();
                shards.extend(opened);
                let next = Arc::new(Topology::new(&self.meta.read(), shards));
                self.topology.send_replace(next);
                tracing::info!(stream = %self.name(), ?change, "resharded");
                Ok(())
            }
            Err(e) => {
                self.reopen(&topology, &parents);
                Err(e)
            }
        }
    }

    fn reopen(&self, topology: &Topology, parents: &[u32]) {
        for &p in parents {
            topology.shards[p as usize].reopen();
        }
    }
}
