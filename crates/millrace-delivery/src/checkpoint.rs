//! Per-shard delivery checkpoints: the last sequence number whose record is in the lake, and
//! the range being written right now (the intent), each persisted with fsync before the step
//! it protects.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{DeliveryError, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every record up to and including this sequence number is in the lake.
    pub delivered: Option<String>,
    /// Objects for records after `delivered` up to and including `pending` may be partly
    /// written: replay exactly that range before anything else.
    pub pending: Option<String>,
}

/// Orders Kinesis sequence numbers: decimal strings without leading zeros, so a longer one is
/// larger and equal lengths compare as text.
pub fn seq_cmp(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// One JSON checkpoint per shard in a folder, replaced durably. `T` is what a shard's
/// checkpoint holds: [`Checkpoint`] for deliveries; the scorer keeps its own type here too.
#[derive(Debug, Clone)]
pub struct CheckpointDir<T = Checkpoint> {
    dir: PathBuf,
    kind: std::marker::PhantomData<fn() -> T>,
}

impl CheckpointDir<Checkpoint> {
    /// `STATE/delivery/NAME/`.
    pub fn new(state_dir: &Path, delivery: &str) -> Self {
        Self::at(state_dir.join("delivery").join(delivery))
    }
}

impl<T> CheckpointDir<T>
where
    T: Serialize + serde::de::DeserializeOwned + Default,
{
    /// Checkpoints in `dir` (created on the first store).
    pub fn at(dir: PathBuf) -> Self {
        Self {
            dir,
            kind: std::marker::PhantomData,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, shard: &str) -> PathBuf {
        self.dir.join(format!("{shard}.json"))
    }

    fn err(&self, shard: &str, e: impl std::fmt::Display) -> DeliveryError {
        DeliveryError::Checkpoint {
            path: self.path(shard).display().to_string(),
            message: e.to_string(),
        }
    }

    /// The shard's checkpoint; the default when it has none yet.
    pub fn load(&self, shard: &str) -> Result<T> {
        match std::fs::read(self.path(shard)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.err(shard, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(self.err(shard, e)),
        }
    }

    /// Replaces the checkpoint atomically and durably.
    pub fn store(&self, shard: &str, cp: &T) -> Result<()> {
        let bytes = serde_json::to_vec(cp).expect("checkpoint serialises");
        millrace_lake::write_durably(&self.path(shard), &bytes).map_err(|e| self.err(shard, e))
    }

    /// Every shard's checkpoint, for status.
    pub fn all(&self) -> Vec<(String, T)> {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(shard) = name.strip_suffix(".json").filter(|s| !s.starts_with('.'))
                    && let Ok(cp) = self.load(shard)
                {
                    out.push((shard.to_owned(), cp));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let cps = CheckpointDir::new(dir.path(), "d");
        assert_eq!(
            cps.load("shardId-000000000000").unwrap(),
            Checkpoint::default()
        );
        let cp = Checkpoint {
            delivered: Some("49".into()),
            pending: Some("51".into()),
        };
        cps.store("shardId-000000000000", &cp).unwrap();
        assert_eq!(cps.load("shardId-000000000000").unwrap(), cp);
        assert_eq!(cps.all().len(), 1);
        assert_eq!(seq_cmp("9", "10"), Ordering::Less);
        assert_eq!(seq_cmp("12", "11"), Ordering::Greater);
    }
}
