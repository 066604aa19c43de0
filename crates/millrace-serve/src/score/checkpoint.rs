//! Per-shard scoring checkpoints: the last input record whose prediction (or error) is on the
//! output streams, and how far each output shard had been written at that moment (the marks a
//! restart scans from to find predictions put after the checkpoint). Replaced with fsync.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

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
    /// The shard was closed by a reshard and every record in it is scored: its children
    /// are read from now on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ended: bool,
}

/// The scorer's checkpoints: one [`ScoreCheckpoint`] per input shard.
pub type CheckpointDir = millrace_io::CheckpointDir<ScoreCheckpoint>;

/// `STATE/scoring/NAME/`.
pub fn checkpoint_dir(state_dir: &Path, scorer: &str) -> CheckpointDir {
    CheckpointDir::at(state_dir.join("scoring").join(scorer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cps = checkpoint_dir(dir.path(), "s");
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
