//! The queue's journal: `state.log` beside its `queue.json`, a sequence of fixed-size
//! [`Event`]s, each with a CRC32C.
//!
//! Every change is written (one `write` per call, under the queue's lock) before the call
//! answers, so a killed process keeps it in the page cache; acknowledgements, dead-letter
//! acknowledgements and restores are also made durable (`fdatasync`) before they answer,
//! shared by every call waiting at the same time (group commit). A receive that a power loss
//! forgets is only delivered again, which is what an unacknowledged record does anyway.
//! Replay stops at the first torn or corrupt entry and cuts the file there. When the file
//! grows well past what the state needs, it is replaced by the state's snapshot (the fewest
//! events that rebuild it), written beside it, fsynced and renamed over it.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{IoAt, QueueError};
use crate::state::{Event, State};

pub const JOURNAL_FILE: &str = "state.log";
const ENTRY_LEN: usize = 41;
/// The journal is compacted once it is over this size and over [`SLACK`] times its snapshot.
const COMPACT_ABOVE: u64 = 4 << 20;
const SLACK: u64 = 8;

fn encode(ev: &Event, out: &mut Vec<u8>) {
    let (kind, shard, counter, a, b, t1, t2): (u8, u32, u64, u32, u32, i64, i64) = match *ev {
        Event::Cursor { shard, next } => (1, shard, next, 0, 0, 0, 0),
        Event::Receive {
            key,
            receive_count,
            generation,
            first_receive_ms,
            visible_at_ms,
        } => (
            2,
            key.0,
            key.1,
            receive_count,
            generation,
            first_receive_ms,
            visible_at_ms,
        ),
        Event::DeadReceive {
            key,
            generation,
            visible_at_ms,
        } => (3, key.0, key.1, 0, generation, 0, visible_at_ms),
        Event::Remove { key } => (4, key.0, key.1, 0, 0, 0, 0),
        Event::Visibility { key, visible_at_ms } => (5, key.0, key.1, 0, 0, 0, visible_at_ms),
        Event::Dead { key, visible_at_ms } => (6, key.0, key.1, 0, 0, 0, visible_at_ms),
        Event::Restore { key, visible_at_ms } => (7, key.0, key.1, 0, 0, 0, visible_at_ms),
    };
    let start = out.len();
    out.push(kind);
    out.extend_from_slice(&shard.to_le_bytes());
    out.extend_from_slice(&counter.to_le_bytes());
    out.extend_from_slice(&a.to_le_bytes());
    out.extend_from_slice(&b.to_le_bytes());
    out.extend_from_slice(&t1.to_le_bytes());
    out.extend_from_slice(&t2.to_le_bytes());
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

fn decode(b: &[u8]) -> Option<Event> {
    let body = &b[..ENTRY_LEN - 4];
    let crc = u32::from_le_bytes(b[ENTRY_LEN - 4..ENTRY_LEN].try_into().ok()?);
    if crc32c::crc32c(body) != crc {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes(body[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().expect("8 bytes"));
    let (shard, counter) = (u32_at(1), u64_at(5));
    let (a, g) = (u32_at(13), u32_at(17));
    let (t1, t2) = (u64_at(21) as i64, u64_at(29) as i64);
    let key = (shard, counter);
    Some(match body[0] {
        1 => Event::Cursor {
            shard,
            next: counter,
        },
        2 => Event::Receive {
            key,
            receive_count: a,
            generation: g,
            first_receive_ms: t1,
            visible_at_ms: t2,
        },
        3 => Event::DeadReceive {
            key,
            generation: g,
            visible_at_ms: t2,
        },
        4 => Event::Remove { key },
        5 => Event::Visibility {
            key,
            visible_at_ms: t2,
        },
        6 => Event::Dead {
            key,
            visible_at_ms: t2,
        },
        7 => Event::Restore {
            key,
            visible_at_ms: t2,
        },
        _ => return None,
    })
}

/// The open journal file and how much of it has been written.
#[derive(Debug)]
struct Segment {
    file: File,
    /// Distinguishes the file before and after a compaction, for the durable mark.
    generation: u64,
    written: AtomicU64,
}

/// What a caller waits on to know its changes are durable.
#[derive(Debug, Clone)]
pub struct Mark {
    segment: Arc<Segment>,
    upto: u64,
}

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    segment: Arc<Segment>,
    buf: Vec<u8>,
}

impl Journal {
    /// Writes a new journal holding `events`, durably (a new queue's starting cursors).
    pub fn create(dir: &Path, events: &[Event]) -> Result<(), QueueError> {
        let path = dir.join(JOURNAL_FILE);
        let mut buf = Vec::with_capacity(events.len() * ENTRY_LEN);
        for ev in events {
            encode(ev, &mut buf);
        }
        millrace_common::durable::write_file(&path, &buf).at(&path)
    }

    /// Opens the journal in `dir`, replaying it into a state; a torn or corrupt tail is cut.
    pub fn open(dir: &Path) -> Result<(Self, State), QueueError> {
        let path = dir.join(JOURNAL_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .at(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).at(&path)?;
        let mut state = State::default();
        let mut good = 0usize;
        while good + ENTRY_LEN <= bytes.len() {
            let Some(ev) = decode(&bytes[good..good + ENTRY_LEN]) else {
                break;
            };
            state.apply(ev);
            good += ENTRY_LEN;
        }
        if good < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                kept = good,
                cut = bytes.len() - good,
                "queue journal ends in a torn or corrupt entry; cutting it there"
            );
            file.set_len(good as u64).at(&path)?;
            file.sync_data().at(&path)?;
        }
        let journal = Self {
            path,
            segment: Arc::new(Segment {
                file,
                generation: 0,
                written: AtomicU64::new(good as u64),
            }),
            buf: Vec::new(),
        };
        Ok((journal, state))
    }

    /// Appends `events` with one write. Returns the mark to wait on for durability.
    pub fn append(&mut self, events: &[Event]) -> Result<Mark, QueueError> {
        let seg = &self.segment;
        let at = seg.written.load(Ordering::Acquire);
        if !events.is_empty() {
            self.buf.clear();
            for ev in events {
                encode(ev, &mut self.buf);
            }
            seg.file.write_all_at(&self.buf, at).at(&self.path)?;
            seg.written
                .store(at + self.buf.len() as u64, Ordering::Release);
        }
        Ok(Mark {
            segment: seg.clone(),
            upto: at + (events.len() * ENTRY_LEN) as u64,
        })
    }

    /// Replaces the journal by `state`'s snapshot when it has grown well past it.
    pub fn maybe_compact(&mut self, state: &State) -> Result<(), QueueError> {
        let written = self.segment.written.load(Ordering::Acquire);
        let needed = (state.len() as u64 + 1) * ENTRY_LEN as u64;
        if written < COMPACT_ABOVE || written < needed * SLACK {
            return Ok(());
        }
        self.compact(state)
    }

    pub fn compact(&mut self, state: &State) -> Result<(), QueueError> {
        let events = state.snapshot();
        let mut buf = Vec::with_capacity(events.len() * ENTRY_LEN);
        for ev in &events {
            encode(ev, &mut buf);
        }
        millrace_common::durable::write_file(&self.path, &buf).at(&self.path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .at(&self.path)?;
        self.segment = Arc::new(Segment {
            file,
            generation: self.segment.generation + 1,
            written: AtomicU64::new(buf.len() as u64),
        });
        Ok(())
    }
}

/// Serialises the journal's fsyncs so that one covers every caller that appended before it.
#[derive(Debug, Default)]
pub struct Syncer {
    /// (segment generation, bytes known durable).
    durable: parking_lot::Mutex<(u64, u64)>,
}

impl Syncer {
    /// Returns once everything up to `mark` is on disk (blocking).
    pub fn sync(&self, mark: &Mark, path: &Path) -> Result<(), QueueError> {
        let mut durable = self.durable.lock();
        let seg = &mark.segment;
        if durable.0 > seg.generation || (durable.0 == seg.generation && durable.1 >= mark.upto) {
            return Ok(());
        }
        let upto = seg.written.load(Ordering::Acquire);
        seg.file.sync_data().at(path)?;
        *durable = (seg.generation, upto);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn events() -> Vec<Event> {
        vec![
            Event::Cursor { shard: 3, next: 9 },
            Event::Receive {
                key: (0, 7),
                receive_count: 2,
                generation: 5,
                first_receive_ms: 1_700_000_000_000,
                visible_at_ms: 1_700_000_030_000,
            },
            Event::DeadReceive {
                key: (0, 7),
                generation: 6,
                visible_at_ms: -1,
            },
            Event::Remove { key: (1, u64::MAX) },
            Event::Visibility {
                key: (2, 2),
                visible_at_ms: 3,
            },
            Event::Dead {
                key: (2, 2),
                visible_at_ms: 4,
            },
            Event::Restore {
                key: (2, 2),
                visible_at_ms: 5,
            },
        ]
    }

    #[test]
    fn every_event_round_trips() {
        for ev in events() {
            let mut b = Vec::new();
            encode(&ev, &mut b);
            assert_eq!(b.len(), ENTRY_LEN);
            assert_eq!(decode(&b), Some(ev));
            b[10] ^= 1;
            assert_eq!(decode(&b), None, "a flipped bit is caught");
        }
    }

    #[test]
    fn a_torn_tail_is_cut_and_appends_continue_after_it() {
        let dir = tempfile::tempdir().unwrap();
        Journal::create(dir.path(), &[Event::Cursor { shard: 0, next: 5 }]).unwrap();
        let (mut j, _) = Journal::open(dir.path()).unwrap();
        j.append(&events()[1..2]).unwrap();
        drop(j);
        // Half an entry, as a crash in the middle of a write leaves it.
        let path = dir.path().join(JOURNAL_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[2, 0, 0]).unwrap();
        drop(f);
        let (mut j, s) = Journal::open(dir.path()).unwrap();
        assert_eq!(s.cursor(0), 8);
        assert!(s.entry((0, 7)).is_some());
        j.append(&[Event::Remove { key: (0, 7) }]).unwrap();
        let (_, s) = Journal::open(dir.path()).unwrap();
        assert!(s.is_done((0, 7)));
    }

    fn arb_event() -> impl proptest::strategy::Strategy<Value = Event> {
        use proptest::prelude::*;
        let key = (0u32..3, 0u64..20);
        prop_oneof![
            (0u32..3, 0u64..30).prop_map(|(shard, next)| Event::Cursor { shard, next }),
            (key.clone(), 0u32..5, 0i64..100).prop_map(|(key, rc, t)| Event::Receive {
                key,
                receive_count: rc,
                generation: rc,
                first_receive_ms: t,
                visible_at_ms: t + 10,
            }),
            key.clone().prop_map(|key| Event::Remove { key }),
            (key.clone(), 0i64..100).prop_map(|(key, t)| Event::Visibility {
                key,
                visible_at_ms: t
            }),
            (key.clone(), 0i64..100).prop_map(|(key, t)| Event::Dead {
                key,
                visible_at_ms: t
            }),
            (key, 0i64..100).prop_map(|(key, t)| Event::Restore {
                key,
                visible_at_ms: t
            }),
        ]
    }

    fn same(a: &State, b: &State) -> bool {
        let mut x: Vec<_> = a.entries().map(|(k, e)| (k, *e)).collect();
        let mut y: Vec<_> = b.entries().map(|(k, e)| (k, *e)).collect();
        x.sort_by_key(|e| e.0);
        y.sort_by_key(|e| e.0);
        x == y && (0..3).all(|s| a.cursor(s) == b.cursor(s))
    }

    proptest::proptest! {
        /// Whatever was appended, cut at any byte, reopens as the state of the whole events
        /// before the cut; compaction at any point changes nothing.
        #[test]
        fn a_journal_cut_anywhere_replays_to_a_prefix_of_its_events(
            events in proptest::collection::vec(arb_event(), 0..60),
            cut in 0usize..3000,
            compact_at in 0usize..60,
        ) {
            let dir = tempfile::tempdir().unwrap();
            Journal::create(dir.path(), &[]).unwrap();
            let (mut j, mut live) = Journal::open(dir.path()).unwrap();
            for (i, ev) in events.iter().enumerate() {
                live.apply(*ev);
                j.append(&[*ev]).unwrap();
                if i == compact_at {
                    j.compact(&live).unwrap();
                }
            }
            drop(j);
            let (_, replayed) = Journal::open(dir.path()).unwrap();
            proptest::prop_assert!(same(&live, &replayed));
            let path = dir.path().join(JOURNAL_FILE);
            let len = std::fs::metadata(&path).unwrap().len() as usize;
            let keep = cut.min(len);
            OpenOptions::new().write(true).open(&path).unwrap().set_len(keep as u64).unwrap();
            let whole = keep / ENTRY_LEN;
            let (_, cut_state) = Journal::open(dir.path()).unwrap();
            // The file after a compaction is the snapshot then the later events: rebuild the
            // expected state from the same bytes, whole entries only.
            let bytes = std::fs::read(&path).unwrap();
            proptest::prop_assert_eq!(bytes.len(), whole * ENTRY_LEN, "the torn tail is cut");
            let mut expected = State::default();
            for chunk in bytes.chunks(ENTRY_LEN) {
                expected.apply(decode(chunk).unwrap());
            }
            proptest::prop_assert!(same(&expected, &cut_state));
        }
    }

    #[test]
    fn compaction_keeps_the_state() {
        let dir = tempfile::tempdir().unwrap();
        Journal::create(dir.path(), &[]).unwrap();
        let (mut j, mut s) = Journal::open(dir.path()).unwrap();
        for c in 0..1000u64 {
            let ev = Event::Receive {
                key: (0, c),
                receive_count: 1,
                generation: 1,
                first_receive_ms: 0,
                visible_at_ms: c as i64,
            };
            s.apply(ev);
            j.append(&[ev]).unwrap();
            if c % 3 != 0 {
                s.apply(Event::Remove { key: (0, c) });
                j.append(&[Event::Remove { key: (0, c) }]).unwrap();
            }
        }
        j.compact(&s).unwrap();
        let len = std::fs::metadata(dir.path().join(JOURNAL_FILE))
            .unwrap()
            .len();
        assert_eq!(len, (s.snapshot().len() * ENTRY_LEN) as u64);
        let mark = j.append(&[Event::Remove { key: (0, 0) }]).unwrap();
        Syncer::default().sync(&mark, dir.path()).unwrap();
        s.apply(Event::Remove { key: (0, 0) });
        let (_, t) = Journal::open(dir.path()).unwrap();
        assert_eq!(t.counts(10_000), s.counts(10_000));
        assert_eq!(t.cursor(0), 1000);
    }
}
