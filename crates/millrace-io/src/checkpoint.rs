//! Per-shard checkpoints of a stream reader: one JSON file per shard in a folder, each replaced
//! atomically and durably (temporary file, fsync, rename, fsync of the folder) before the step
//! it protects. What a checkpoint holds is the reader's own type (delivery keeps the range in
//! the lake, the scorer the last input answered and its output marks).
//!
//! A source whose readers share their positions (a Kafka consumer group, whose members may run
//! on other machines) keeps the checkpoints itself: [`SharedCheckpoints`], where the same JSON
//! is stored with the position it stands for, so whichever member reads a shard next
//! continues from it.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{IoError, Result};

/// Orders Kinesis sequence numbers: decimal strings without leading zeros, so a longer one is
/// larger and equal lengths compare as text.
pub fn seq_cmp(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Checkpoints kept by the source's side (a consumer group's committed offsets): blocking
/// calls, made off the async threads as the file ones are.
pub trait SharedCheckpoints: Send + Sync + std::fmt::Debug {
    /// The checkpoint stored for `shard` (`None` when there is none yet).
    fn load(&self, shard: &str) -> Result<Option<Vec<u8>>>;
    /// Stores `json` for `shard`; `done` is the position every record up to which is done
    /// (what other tools show as the reader's position). Fails with
    /// [`IoError::NotOwned`] once the shard belongs to another reader.
    fn store(&self, shard: &str, done: Option<&str>, json: &[u8]) -> Result<()>;
    /// Every shard's stored checkpoint, for status.
    fn all(&self) -> Result<Vec<(String, Vec<u8>)>>;
    /// Where the checkpoints are, for messages.
    fn describe(&self) -> String;
}

/// One JSON checkpoint of type `T` per shard in a folder, replaced durably; or, with
/// [`CheckpointDir::shared`], wherever the source keeps them.
#[derive(Debug, Clone)]
pub struct CheckpointDir<T> {
    dir: PathBuf,
    shared: Option<Arc<dyn SharedCheckpoints>>,
    /// The position a checkpoint stands for (see [`SharedCheckpoints::store`]).
    done: fn(&T) -> Option<&str>,
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
            shared: None,
            done: |_| None,
            kind: std::marker::PhantomData,
        }
    }

    /// The same checkpoints kept in `store` instead of the folder; `done` says which position
    /// a checkpoint stands for.
    pub fn shared(self, store: Arc<dyn SharedCheckpoints>, done: fn(&T) -> Option<&str>) -> Self {
        Self {
            shared: Some(store),
            done,
            ..self
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the checkpoints are, for messages: the folder, or the source's store.
    pub fn describe(&self) -> String {
        match &self.shared {
            Some(store) => store.describe(),
            None => self.dir.display().to_string(),
        }
    }

    fn parse(&self, shard: &str, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| match &self.shared {
            Some(store) => IoError::Failed {
                op: format!(
                    "reading the checkpoint of {shard} from {}",
                    store.describe()
                ),
                message: format!("not a checkpoint of this reader: {e}"),
                transient: false,
            },
            None => self.err(shard, e.into()),
        })
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
        if let Some(store) = &self.shared {
            return match store.load(shard)? {
                Some(bytes) => self.parse(shard, &bytes),
                None => Ok(T::default()),
            };
        }
        match std::fs::read(self.path(shard)) {
            Ok(bytes) => self.parse(shard, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
            Err(e) => Err(self.err(shard, e)),
        }
    }

    /// Replaces the checkpoint atomically and durably.
    pub fn store(&self, shard: &str, cp: &T) -> Result<()> {
        let bytes = serde_json::to_vec(cp).expect("checkpoint serialises");
        if let Some(store) = &self.shared {
            return store.store(shard, (self.done)(cp), &bytes);
        }
        millrace_common::durable::write_file(&self.path(shard), &bytes)
            .map_err(|e| self.err(shard, e))
    }

    /// Every shard's checkpoint, for status.
    pub fn all(&self) -> Vec<(String, T)> {
        let mut out = Vec::new();
        if let Some(store) = &self.shared {
            for (shard, bytes) in store.all().unwrap_or_default() {
                if let Ok(cp) = self.parse(&shard, &bytes) {
                    out.push((shard, cp));
                }
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            return out;
        }
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
