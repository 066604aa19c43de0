//! Per-shard scoring checkpoints: the last input record whose prediction (or error) is on the
//! output streams, and how far each output shard had been written at that moment (the marks a
//! restart scans from to find predictions put after the checkpoint). Replaced with fsync.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ServeError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreCheckpoint {
    /// Every input record up to and including this sequence number has its output.
    pub scored: Option<String>,
    /// `STREAM/SHARD` → the last sequence number this scorer's shard put there.
    #[serde(default)]
    pub marks: BTreeMap<String, String>,
    /// Records scored and sent to the error stream, for status.
    #[serde(default)]
    pub records: u64,
    #[serde(default)]
    pub errors: u64,
}

#[derive(Debug, Clone)]
pub struct CheckpointDir {
    dir: PathBuf,
}

impl CheckpointDir {
    /// `STATE/scoring/NAME/`.
    pub fn new(state_dir: &Path, scorer: &str) -> Self {
        Self {
            dir: state_dir.join("scoring").join(scorer),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, shard: &str) -> PathBuf {
        self.dir.join(format!("{shard}.json"))
    }

    fn err(&self, shard: &str, e: impl std::fmt::Display) -> ServeError {
        ServeError::Checkpoint {
            path: self.path(shard).display().to_string(),
            message: e.to_string(),
        }
    }

    pub fn load(&self, shard: &str) -> Result<ScoreCheckpoint, ServeError> {
        match std::fs::read(self.path(shard)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.err(shard, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ScoreCheckpoint::default()),
            Err(e) => Err(self.err(shard, e)),
        }
    }

    /// Replaces the checkpoint atomically and durably (temporary file, fsync, rename, fsync
    /// of the folder).
    pub fn store(&self, shard: &str, cp: &ScoreCheckpoint) -> Result<(), ServeError> {
        let bytes = serde_json::to_vec(cp).expect("checkpoint serialises");
        millrace_lake::write_durably(&self.path(shard), &bytes).map_err(|e| self.err(shard, e))
    }

    /// Every shard's checkpoint, for status.
    pub fn all(&self) -> Vec<(String, ScoreCheckpoint)> {
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
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cps = CheckpointDir::new(dir.path(), "s");
        assert_eq!(cps.load("shardId-0").unwrap(), ScoreCheckpoint::default());
        let mut cp = ScoreCheckpoint {
            scored: Some("42".into()),
            ..Default::default()
        };
        cp.marks.insert("out/shardId-0".into(), "7".into());
        cps.store("shardId-0", &cp).unwrap();
        assert_eq!(cps.load("shardId-0").unwrap(), cp);
        assert_eq!(cps.all().len(), 1);
    }
}
