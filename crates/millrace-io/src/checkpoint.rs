//! Per-shard checkpoints of a stream reader: one JSON file per shard in a folder, each replaced
//! atomically and durably (temporary file, fsync, rename, fsync of the folder) before the step
//! it protects. What a checkpoint holds is the reader's own type (delivery keeps the range in
//! the lake, the scorer the last input answered and its output marks).

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{IoError, Result};

/// Orders Kinesis sequence numbers: decimal strings without leading zeros, so a longer one is
/// larger and equal lengths compare as text.
pub fn seq_cmp(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// One JSON checkpoint of type `T` per shard in a folder, replaced durably.
#[derive(Debug, Clone)]
pub struct CheckpointDir<T> {
    dir: PathBuf,
    kind: std::marker::PhantomData<fn() -> T>,
}

impl<T> CheckpointDir<T>
where
    T: Serialize + DeserializeOwned + Default,
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

    /// The file of `shard`'s checkpoint.
    pub fn path(&self, shard: &str) -> PathBuf {
        self.dir.join(format!("{shard}.json"))
    }

    fn err(&self, shard: &str, source: std::io::Error) -> IoError {
        IoError::Checkpoint {
            path: self.path(shard),
            source,
        }
    }

    /// The shard's checkpoint; the default when it has none yet.
    pub fn load(&self, shard: &str) -> Result<T> {
        match std::fs::read(self.path(shard)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.err(shard, e.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(self.err(shard, e)),
        }
    }

    /// Replaces the checkpoint atomically and durably.
    pub fn store(&self, shard: &str, cp: &T) -> Result<()> {
        let bytes = serde_json::to_vec(cp).expect("checkpoint serialises");
        millrace_common::durable::write_file(&self.path(shard), &bytes)
            .map_err(|e| self.err(shard, e))
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

    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
    struct Mark {
        last: Option<String>,
    }

    #[test]
    fn round_trip_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let cps = CheckpointDir::<Mark>::at(dir.path().join("d"));
        assert_eq!(cps.load("shardId-000000000000").unwrap(), Mark::default());
        let cp = Mark {
            last: Some("49".into()),
        };
        cps.store("shardId-000000000000", &cp).unwrap();
        assert_eq!(cps.load("shardId-000000000000").unwrap(), cp);
        assert_eq!(cps.all().len(), 1);
        assert_eq!(seq_cmp("9", "10"), Ordering::Less);
        assert_eq!(seq_cmp("12", "11"), Ordering::Greater);
    }

    #[test]
    fn a_damaged_checkpoint_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let cps = CheckpointDir::<Mark>::at(dir.path().to_owned());
        std::fs::write(cps.path("s"), b"{not json").unwrap();
        let e = cps.load("s").unwrap_err();
        assert!(matches!(e, IoError::Checkpoint { .. }), "{e:?}");
        assert!(e.to_string().contains("s.json"), "{e}");
        assert!(!e.is_transient());
    }
}
