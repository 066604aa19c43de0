//! A queue's delivery state in memory, and the events that change it.
//!
//! Every change is an [`Event`]; [`State::apply`] is the only way state changes, both while
//! serving and when the journal is replayed, so what a restart rebuilds is exactly what was
//! served. The state holds one cursor per shard (every record below it has been handed out at
//! least once) and an entry per record handed out and not yet acknowledged: in flight,
//! visible again after its timeout, or a dead letter. Its size follows the records in flight,
//! not the stream.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A record's place in the stream: shard index and counter.
pub type Key = (u32, u64);

/// A record handed out and not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Receives without an acknowledgement (reset by a restore).
    pub receive_count: u32,
    /// Incremented on every receive, live or dead-letter: the receipt handle's generation.
    pub generation: u32,
    pub first_receive_ms: i64,
    /// When the record may be received again.
    pub visible_at_ms: i64,
    pub dead: bool,
}

/// One change to the state; also the journal's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The shard's records below `next` have all been handed out (or trimmed).
    Cursor {
        shard: u32,
        next: u64,
    },
    /// A live receive: the entry is (re)placed in flight until `visible_at_ms`.
    Receive {
        key: Key,
        receive_count: u32,
        generation: u32,
        first_receive_ms: i64,
        visible_at_ms: i64,
    },
    /// A dead-letter receive.
    DeadReceive {
        key: Key,
        generation: u32,
        visible_at_ms: i64,
    },
    /// Acknowledged, or gone from the stream with its retention.
    Remove {
        key: Key,
    },
    Visibility {
        key: Key,
        visible_at_ms: i64,
    },
    /// Received MaxReceiveCount times without an acknowledgement.
    Dead {
        key: Key,
        visible_at_ms: i64,
    },
    /// Back to the live side with its receive count reset.
    Restore {
        key: Key,
        visible_at_ms: i64,
    },
}

/// Counts for `DescribeQueue`-style reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryCounts {
    /// Live entries whose timeout has passed (received before, waiting to be received again).
    pub redeliverable: u64,
    pub in_flight: u64,
    pub dead_letter: u64,
}

#[derive(Debug, Default)]
pub struct State {
    cursors: BTreeMap<u32, u64>,
    entries: HashMap<Key, Entry>,
    /// Live entries by the time they become visible.
    live: BTreeSet<(i64, u32, u64)>,
    /// Dead-letter entries by the time they become visible.
    dead: BTreeSet<(i64, u32, u64)>,
}

impl State {
    pub fn cursor(&self, shard: u32) -> u64 {
        self.cursors.get(&shard).copied().unwrap_or(0)
    }

    pub fn entry(&self, key: Key) -> Option<&Entry> {
        self.entries.get(&key)
    }

    /// Whether the record was handed out once and is no longer pending: acknowledged (or
    /// trimmed).
    pub fn is_done(&self, key: Key) -> bool {
        key.1 < self.cursor(key.0) && !self.entries.contains_key(&key)
    }

    /// The next live entry visible at `now_ms`, if any.
    pub fn next_visible(&self, now_ms: i64, dead: bool) -> Option<Key> {
        let index = if dead { &self.dead } else { &self.live };
        index
            .first()
            .filter(|(t, ..)| *t <= now_ms)
            .map(|&(_, s, c)| (s, c))
    }

    /// Live entries whose timeout has passed after `max_receives` receives: the ones that are
    /// dead letters now (each needs an [`Event::Dead`]).
    pub fn due_dead_letters(&self, now_ms: i64, max_receives: u32) -> Vec<Key> {
        self.live
            .range(..(now_ms + 1, 0, 0))
            .map(|&(_, s, c)| (s, c))
            .filter(|k| self.entries[k].receive_count >= max_receives)
            .collect()
    }

    /// When the earliest in-flight entry (of either side) becomes visible.
    pub fn next_deadline(&self, dead: bool) -> Option<i64> {
        let index = if dead { &self.dead } else { &self.live };
        index.first().map(|(t, ..)| *t)
    }

    pub fn counts(&self, now_ms: i64) -> EntryCounts {
        let redeliverable = self.live.range(..(now_ms + 1, 0, 0)).count() as u64;
        EntryCounts {
            redeliverable,
            in_flight: self.live.len() as u64 - redeliverable,
            dead_letter: self.dead.len() as u64,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len() + self.cursors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.cursors.is_empty()
    }

    fn unindex(&mut self, key: Key) -> Option<Entry> {
        let e = self.entries.remove(&key)?;
        let index = if e.dead {
            &mut self.dead
        } else {
            &mut self.live
        };
        index.remove(&(e.visible_at_ms, key.0, key.1));
        Some(e)
    }

    fn index(&mut self, key: Key, e: Entry) {
        let index = if e.dead {
            &mut self.dead
        } else {
            &mut self.live
        };
        index.insert((e.visible_at_ms, key.0, key.1));
        self.entries.insert(key, e);
        let cursor = self.cursors.entry(key.0).or_insert(0);
        *cursor = (*cursor).max(key.1 + 1);
    }

    /// Applies one event. Events about an entry that is not there change nothing (a replayed
    /// journal may hold a change to a record removed just before).
    pub fn apply(&mut self, ev: Event) {
        match ev {
            Event::Cursor { shard, next } => {
                let c = self.cursors.entry(shard).or_insert(0);
                *c = (*c).max(next);
            }
            Event::Receive {
                key,
                receive_count,
                generation,
                first_receive_ms,
                visible_at_ms,
            } => {
                self.unindex(key);
                let e = Entry {
                    receive_count,
                    generation,
                    first_receive_ms,
                    visible_at_ms,
                    dead: false,
                };
                self.index(key, e);
            }
            Event::DeadReceive {
                key,
                generation,
                visible_at_ms,
            } => self.change(key, |e| {
                e.generation = generation;
                e.visible_at_ms = visible_at_ms;
            }),
            Event::Remove { key } => {
                self.unindex(key);
                let c = self.cursors.entry(key.0).or_insert(0);
                *c = (*c).max(key.1 + 1);
            }
            Event::Visibility { key, visible_at_ms } => {
                self.change(key, |e| e.visible_at_ms = visible_at_ms)
            }
            Event::Dead { key, visible_at_ms } => self.change(key, |e| {
                e.dead = true;
                e.visible_at_ms = visible_at_ms;
            }),
            Event::Restore { key, visible_at_ms } => self.change(key, |e| {
                e.dead = false;
                e.receive_count = 0;
                e.visible_at_ms = visible_at_ms;
            }),
        }
    }

    fn change(&mut self, key: Key, f: impl FnOnce(&mut Entry)) {
        if let Some(mut e) = self.unindex(key) {
            f(&mut e);
            self.index(key, e);
        }
    }

    /// The fewest events that rebuild this state (the journal's compacted form).
    pub fn snapshot(&self) -> Vec<Event> {
        let mut out: Vec<Event> = self
            .cursors
            .iter()
            .map(|(&shard, &next)| Event::Cursor { shard, next })
            .collect();
        let mut keys: Vec<_> = self.entries.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            let e = self.entries[&key];
            out.push(Event::Receive {
                key,
                receive_count: e.receive_count,
                generation: e.generation,
                first_receive_ms: e.first_receive_ms,
                visible_at_ms: e.visible_at_ms,
            });
            if e.dead {
                out.push(Event::Dead {
                    key,
                    visible_at_ms: e.visible_at_ms,
                });
            }
        }
        out
    }

    /// Every entry, for tests and checks.
    pub fn entries(&self) -> impl Iterator<Item = (Key, &Entry)> {
        self.entries.iter().map(|(k, e)| (*k, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(key: Key, rc: u32, at: i64) -> Event {
        Event::Receive {
            key,
            receive_count: rc,
            generation: rc,
            first_receive_ms: 0,
            visible_at_ms: at,
        }
    }

    #[test]
    fn a_receive_moves_the_cursor_and_an_ack_leaves_it_done() {
        let mut s = State::default();
        s.apply(receive((0, 4), 1, 100));
        assert_eq!(s.cursor(0), 5);
        assert!(!s.is_done((0, 4)));
        assert_eq!(s.next_visible(99, false), None);
        assert_eq!(s.next_visible(100, false), Some((0, 4)));
        s.apply(Event::Remove { key: (0, 4) });
        assert!(s.is_done((0, 4)));
        assert!(s.is_empty() || s.len() == 1);
    }

    #[test]
    fn dead_letters_leave_the_live_side_and_restore_resets_the_count() {
        let mut s = State::default();
        s.apply(receive((1, 0), 3, 50));
        s.apply(Event::Dead {
            key: (1, 0),
            visible_at_ms: 60,
        });
        assert_eq!(s.next_visible(1000, false), None);
        assert_eq!(s.next_visible(1000, true), Some((1, 0)));
        assert_eq!(s.counts(1000).dead_letter, 1);
        s.apply(Event::Restore {
            key: (1, 0),
            visible_at_ms: 70,
        });
        let e = s.entry((1, 0)).unwrap();
        assert!(!e.dead);
        assert_eq!(e.receive_count, 0);
        assert_eq!(s.next_visible(70, false), Some((1, 0)));
    }

    #[test]
    fn a_snapshot_rebuilds_the_same_state() {
        let mut s = State::default();
        s.apply(Event::Cursor { shard: 2, next: 40 });
        s.apply(receive((0, 1), 1, 10));
        s.apply(receive((0, 2), 2, 20));
        s.apply(Event::Dead {
            key: (0, 2),
            visible_at_ms: 30,
        });
        s.apply(receive((0, 3), 1, 5));
        s.apply(Event::Remove { key: (0, 3) });
        let mut t = State::default();
        for ev in s.snapshot() {
            t.apply(ev);
        }
        let mut a: Vec<_> = s.entries().map(|(k, e)| (k, *e)).collect();
        let mut b: Vec<_> = t.entries().map(|(k, e)| (k, *e)).collect();
        a.sort_by_key(|x| x.0);
        b.sort_by_key(|x| x.0);
        assert_eq!(a, b);
        for shard in 0..3 {
            assert_eq!(s.cursor(shard), t.cursor(shard));
        }
        assert_eq!(s.counts(15), t.counts(15));
    }
}
