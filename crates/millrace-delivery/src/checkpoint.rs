//! Per-shard delivery checkpoints: the last sequence number whose record is in the lake, and
//! the range being written right now (the intent), each persisted with fsync before the step
//! it protects. Stored one file per shard by `millrace_io::CheckpointDir`.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every record up to and including this sequence number is in the lake.
    pub delivered: Option<String>,
    /// Objects for records after `delivered` up to and including `pending` may be partly
    /// written: replay exactly that range before anything else.
    pub pending: Option<String>,
    /// The shard was closed by a reshard and everything in it is delivered: its children
    /// are read from now on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ended: bool,
}

/// A delivery's checkpoints: one [`Checkpoint`] per shard.
pub type CheckpointDir = millrace_io::CheckpointDir<Checkpoint>;

/// `STATE/delivery/NAME/`.
pub fn checkpoint_dir(state_dir: &Path, delivery: &str) -> CheckpointDir {
    CheckpointDir::at(state_dir.join("delivery").join(delivery))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let cps = checkpoint_dir(dir.path(), "d");
        assert_eq!(
            cps.load("shardId-000000000000").unwrap(),
            Checkpoint::default()
        );
        let cp = Checkpoint {
            delivered: Some("49".into()),
            pending: Some("51".into()),
            ended: true,
        };
        cps.store("shardId-000000000000", &cp).unwrap();
        assert_eq!(cps.load("shardId-000000000000").unwrap(), cp);
        assert_eq!(cps.all().len(), 1);
        assert!(cps.dir().ends_with("delivery/d"));
    }
}
