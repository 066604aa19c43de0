//! The data directory's layout, in one place (`--data-dir`, default `./millrace-data`):
//!
//! ```text
//! streams/<stream>/…          the durable log (millrace-stream)
//! lake/                       the local lake: raw/, errors/, curated/ …
//! lake/models/<name>/v<N>/    the model registry
//! state/iterator.key          the key that signs shard iterators
//! state/keyring.toml          the keys encrypted streams are sealed under (unless configured)
//! state/delivery/<name>/      delivery checkpoints, one file per shard
//! state/channels/<name>.json  the Kinesis API's channels, one file per channel
//! state/channels/<id>/        a channel's delivery checkpoints (by channel id)
//! state/scoring/<name>/       scorer checkpoints
//! state/pipeline/             prep and train loop state of `millrace up`
//! state/monitor/<model>.json  the latest drift report per model
//! cache/registry/<url-hash>/  this machine's copies of versions of a registry on S3
//! ```
//!
//! Components take the folder they own from a [`DataDir`] instead of joining strings, so the
//! layout changes here or nowhere.

use std::path::{Path, PathBuf};

/// A millrace data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `streams/`: the stream store's root is the data dir itself; this is where its
    /// streams live.
    pub fn streams(&self) -> PathBuf {
        self.root.join("streams")
    }

    /// `lake/`: the local lake.
    pub fn lake(&self) -> PathBuf {
        self.root.join("lake")
    }

    /// `lake/models/`: the model registry.
    pub fn models(&self) -> PathBuf {
        self.lake().join("models")
    }

    /// `cache/registry/`: local copies of the versions of registries on S3 that this machine
    /// uses (versions never change once written; safe to delete).
    pub fn registry_cache(&self) -> PathBuf {
        self.root.join("cache").join("registry")
    }

    /// `state/`: checkpoints and other process state.
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    /// `state/console/profiles/`: data-quality reports made from the console, one folder each.
    pub fn console_profiles(&self) -> PathBuf {
        self.state().join("console").join("profiles")
    }

    /// `state/console/trainings/`: trainings started from the console, one folder each.
    pub fn console_trainings(&self) -> PathBuf {
        self.state().join("console").join("trainings")
    }

    /// `state/iterator.key`.
    pub fn iterator_key(&self) -> PathBuf {
        self.state().join("iterator.key")
    }

    /// `state/keyring.toml`: the default keyring of encryption at rest.
    pub fn keyring(&self) -> PathBuf {
        self.state().join("keyring.toml")
    }

    /// `state/audit/`: the audit log (`[auth]`).
    pub fn audit(&self) -> PathBuf {
        self.state().join("audit")
    }

    /// `state/tls/`: the self-signed certificate `[server] tls` generates.
    pub fn tls(&self) -> PathBuf {
        self.state().join("tls")
    }

    /// `state/delivery/<name>/`.
    pub fn delivery_state(&self, name: &str) -> PathBuf {
        self.state().join("delivery").join(name)
    }

    /// `state/channels/`: one `<name>.json` per channel of the Kinesis API (CreateChannel).
    pub fn channels(&self) -> PathBuf {
        self.state().join("channels")
    }

    /// `state/channels/<id>/`: the delivery checkpoints of the channel with this id (an id, not
    /// the name: a channel deleted and created again under its name starts afresh).
    pub fn channel_state(&self, id: &str) -> PathBuf {
        self.channels().join(id)
    }

    /// `firehose/`: the root of the store that keeps DirectPut delivery streams' records
    /// until they are delivered (its streams are not Kinesis streams).
    pub fn firehose_buffers(&self) -> PathBuf {
        self.root.join("firehose")
    }

    /// `state/firehose/`: one `ds-<name>.json` per delivery stream of the Firehose API, and
    /// `<id>/` with each one's delivery checkpoints.
    pub fn firehose(&self) -> PathBuf {
        self.state().join("firehose")
    }

    /// `state/scoring/<name>/`.
    pub fn scoring_state(&self, name: &str) -> PathBuf {
        self.state().join("scoring").join(name)
    }

    /// `state/pipeline/`.
    pub fn pipeline_state(&self) -> PathBuf {
        self.state().join("pipeline")
    }

    /// `state/monitor/`.
    pub fn monitor_state(&self) -> PathBuf {
        self.state().join("monitor")
    }
}

impl AsRef<Path> for DataDir {
    fn as_ref(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_sit_where_the_docs_say() {
        let d = DataDir::new("/d");
        assert_eq!(d.lake(), Path::new("/d/lake"));
        assert_eq!(d.models(), Path::new("/d/lake/models"));
        assert_eq!(d.delivery_state("x"), Path::new("/d/state/delivery/x"));
        assert_eq!(d.scoring_state("y"), Path::new("/d/state/scoring/y"));
        assert_eq!(d.iterator_key(), Path::new("/d/state/iterator.key"));
        assert_eq!(d.monitor_state(), Path::new("/d/state/monitor"));
        assert_eq!(d.channels(), Path::new("/d/state/channels"));
        assert_eq!(d.channel_state("c1"), Path::new("/d/state/channels/c1"));
    }
}
