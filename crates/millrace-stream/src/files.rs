//! The segment files a store holds open, bounded across all its shards.
//!
//! A shard keeps no descriptor of its own: its writer and its readers ask this set for a
//! segment's file when they touch it ([`OpenFiles::get`]) and hold the handle only while they
//! read or write. At most `capacity` files are open at any time, counting those in use: a file
//! no one uses stays open for the next caller until a file that is not open is asked for and the
//! set is full, then the least recently used idle one is closed; when every open file is in use,
//! the caller waits until one is released. So the store's descriptors stay under the capacity,
//! whatever the number of streams, shards and segments. One handle serves the writer (`pwrite`
//! at its offset) and the readers (`pread`).
//!
//! Entries are keyed by a number given to each segment when the shard learns of it, never by
//! path: a stream deleted and created again under the same name has new segments, and a handle
//! to a deleted file is never handed out for its successor.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::error::{IoContext, Result};

/// Most segment files a store keeps open when the open-file limit allows it.
pub(crate) const MAX_OPEN: usize = 256;
/// Fewest, whatever the limit.
const MIN_OPEN: usize = 16;

/// A segment's key in the set, unique in this process.
pub(crate) type SegmentId = u64;

/// Open segment files, at most `capacity` of them.
#[derive(Debug)]
pub(crate) struct OpenFiles {
    capacity: usize,
    next_id: AtomicU64,
    inner: Mutex<Inner>,
    /// Signalled when a handle is released.
    released: Condvar,
}

#[derive(Debug, Default)]
struct Inner {
    /// Segment -> (file, last use). A file is in use while a [`SegmentFile`] holds it.
    open: HashMap<SegmentId, (Arc<File>, u64)>,
    clock: u64,
}

/// A segment's open file, in use until dropped.
pub(crate) struct SegmentFile<'a> {
    file: Option<Arc<File>>,
    set: &'a OpenFiles,
}

impl std::ops::Deref for SegmentFile<'_> {
    type Target = File;

    fn deref(&self) -> &File {
        self.file.as_ref().expect("held until dropped")
    }
}

impl Drop for SegmentFile<'_> {
    fn drop(&mut self) {
        drop(self.file.take());
        // Taking the lock orders this release after a waiter's check: it is woken, not missed.
        drop(self.set.inner.lock());
        self.set.released.notify_one();
    }
}

impl OpenFiles {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            next_id: AtomicU64::new(1),
            inner: Mutex::new(Inner::default()),
            released: Condvar::new(),
        }
    }

    /// A set sized to a quarter of the process's soft open-file limit, between `MIN_OPEN` and
    /// `MAX_OPEN`: the rest is left to sockets, checkpoints and the lake.
    pub(crate) fn for_this_process() -> Self {
        let soft = millrace_common::fd::nofile_limit().map_or(1024, |(soft, _)| soft);
        Self::new(((soft / 4) as usize).clamp(MIN_OPEN, MAX_OPEN))
    }

    /// A new segment's key.
    pub(crate) fn new_id(&self) -> SegmentId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The open file of segment `id` at `path`, opened (read and write) if it is not open. A
    /// caller holds one at a time, and blocks while every open file is in use.
    pub(crate) fn get(&self, id: SegmentId, path: &Path) -> Result<SegmentFile<'_>> {
        let mut inner = self.inner.lock();
        inner.clock += 1;
        let now = inner.clock;
        loop {
            // Again after each wait: another caller may have opened it meanwhile.
            if let Some((file, used)) = inner.open.get_mut(&id) {
                *used = now;
                return Ok(self.handle(file.clone()));
            }
            if inner.open.len() < self.capacity {
                break;
            }
            let idle = inner
                .open
                .iter()
                .filter(|(_, (file, _))| Arc::strong_count(file) == 1)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| *id);
            match idle {
                Some(oldest) => {
                    inner.open.remove(&oldest);
                }
                // The timeout only guards against a wake-up lost to a bug: releases notify.
                None => {
                    self.released
                        .wait_for(&mut inner, Duration::from_millis(50));
                }
            }
        }
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .at(path)?,
        );
        inner.open.insert(id, (file.clone(), now));
        Ok(self.handle(file))
    }

    fn handle(&self, file: Arc<File>) -> SegmentFile<'_> {
        SegmentFile {
            file: Some(file),
            set: self,
        }
    }

    /// Closes segment `id`'s file (once its users drop it): the segment was deleted.
    pub(crate) fn forget(&self, id: SegmentId) {
        self.inner.lock().open.remove(&id);
    }

    /// How many files the set holds open now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().open.len()
    }

    #[cfg(test)]
    fn is_open(&self, id: SegmentId) -> bool {
        self.inner.lock().open.contains_key(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_in(dir: &Path, n: usize, set: &OpenFiles) -> Vec<(SegmentId, std::path::PathBuf)> {
        (0..n)
            .map(|i| {
                let p = dir.join(format!("{i}.log"));
                std::fs::write(&p, [i as u8]).unwrap();
                (set.new_id(), p)
            })
            .collect()
    }

    fn read_byte(f: &File) -> u8 {
        let mut byte = [0u8; 1];
        std::os::unix::fs::FileExt::read_at(f, &mut byte, 0).unwrap();
        byte[0]
    }

    #[test]
    fn keeps_at_most_capacity_open_and_closes_the_least_recent() {
        let dir = tempfile::tempdir().unwrap();
        let set = OpenFiles::new(2);
        let f = files_in(dir.path(), 3, &set);
        assert_eq!(read_byte(&set.get(f[0].0, &f[0].1).unwrap()), 0);
        assert_eq!(read_byte(&set.get(f[1].0, &f[1].1).unwrap()), 1);
        set.get(f[0].0, &f[0].1).unwrap();
        // The third closes the second: the first was used since.
        assert_eq!(read_byte(&set.get(f[2].0, &f[2].1).unwrap()), 2);
        let open: Vec<bool> = f.iter().map(|(id, _)| set.is_open(*id)).collect();
        assert_eq!(open, [true, false, true]);
        set.forget(f[2].0);
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn files_in_use_are_never_closed_and_a_caller_waits_for_one() {
        let dir = tempfile::tempdir().unwrap();
        let set = Arc::new(OpenFiles::new(1));
        let f = files_in(dir.path(), 2, &set);
        let held = set.get(f[0].0, &f[0].1).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let (set, (id, path)) = (set.clone(), f[1].clone());
            std::thread::spawn(move || {
                let file = set.get(id, &path).unwrap();
                tx.send(read_byte(&file)).unwrap();
            })
        };
        // The waiter cannot open the second file while the first is in use (capacity 1).
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        assert_eq!(read_byte(&held), 0);
        drop(held);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        waiter.join().unwrap();
        assert!(set.is_open(f[1].0) && !set.is_open(f[0].0));
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let set = OpenFiles::new(4);
        let e = set
            .get(set.new_id(), &dir.path().join("gone.log"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("gone.log"), "{e}");
    }
}
