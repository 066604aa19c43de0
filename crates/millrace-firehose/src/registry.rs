//! The delivery streams of one data dir: one `ds-<name>.json` per stream under
//! `state/firehose/`, replaced durably; a counter raised by every change (`up`'s supervisor
//! waits on it); and each stream's state as its runner reports it, from which the status is
//! derived (CREATING until the runner reports the current version, then ACTIVE; a runner that
//! cannot start shows as CREATING_FAILED with its reason in `FailureDescription`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};

use tokio::sync::watch;

use crate::error::FirehoseError;
use crate::spec::DeliveryStreamSpec;

/// The bucket that is the data dir's own lake without a `[buckets]` entry.
pub const DATA_DIR_BUCKET: &str = "lake";

/// What the runner of a delivery stream reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Active,
    /// It could not start, or it is stalled: the reason.
    Failed(String),
}

/// `DeliveryStreamStatus` (and the reason of a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Creating,
    Active,
    CreatingFailed(String),
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Creating => "CREATING",
            Self::Active => "ACTIVE",
            Self::CreatingFailed(_) => "CREATING_FAILED",
        }
    }
}

#[derive(Debug)]
struct Reported {
    id: String,
    version: u64,
    state: RunState,
}

#[derive(Debug)]
pub struct Registry {
    dir: PathBuf,
    account: String,
    region: String,
    specs: Mutex<BTreeMap<String, DeliveryStreamSpec>>,
    reported: Mutex<BTreeMap<String, Reported>>,
    buckets: RwLock<BTreeSet<String>>,
    changes: watch::Sender<u64>,
}

impl Registry {
    /// Reads every `ds-<name>.json` under `dir` (missing: none yet).
    pub fn open(dir: &Path, account: &str, region: &str) -> Result<Self, FirehoseError> {
        let mut specs = BTreeMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => Some(e),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(io(dir, source)),
        };
        for entry in entries.into_iter().flatten() {
            let path = entry.map_err(|e| io(dir, e))?.path();
            let Some(name) = spec_name(&path) else {
                continue; // checkpoint folders, staging files
            };
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let spec: DeliveryStreamSpec =
                serde_json::from_slice(&bytes).map_err(|e| FirehoseError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if spec.name != name {
                return Err(FirehoseError::Corrupt {
                    path,
                    reason: format!("holds delivery stream {:?}, not {name:?}", spec.name),
                });
            }
            specs.insert(spec.name.clone(), spec);
        }
        Ok(Self {
            dir: dir.to_owned(),
            account: account.to_owned(),
            region: region.to_owned(),
            specs: Mutex::new(specs),
            reported: Mutex::default(),
            buckets: RwLock::default(),
            changes: watch::channel(0).0,
        })
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn arn(&self, spec: &DeliveryStreamSpec) -> String {
        spec.arn(&self.region, &self.account)
    }

    /// The buckets `up`'s `[buckets]` maps; [`DATA_DIR_BUCKET`] is known without an entry.
    pub fn set_buckets(&self, names: impl IntoIterator<Item = String>) {
        *self.buckets.write().unwrap_or_else(|p| p.into_inner()) = names.into_iter().collect();
    }

    pub fn bucket_known(&self, name: &str) -> bool {
        name == DATA_DIR_BUCKET
            || self
                .buckets
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(name)
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn list(&self) -> Vec<DeliveryStreamSpec> {
        self.specs().values().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Result<DeliveryStreamSpec, FirehoseError> {
        self.specs()
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_found(name))
    }

    /// Names of the delivery streams that read Kinesis stream `stream`.
    pub fn on_stream(&self, stream: &str) -> Vec<String> {
        self.specs()
            .values()
            .filter(|s| s.kinesis.as_ref().is_some_and(|k| k.stream == stream))
            .map(|s| s.name.clone())
            .collect()
    }

    /// Adds `spec` (blocking file I/O); `ready` runs under the registry's lock first (it
    /// creates a DirectPut stream's buffer).
    pub fn create(
        &self,
        spec: DeliveryStreamSpec,
        ready: impl FnOnce() -> Result<(), FirehoseError>,
    ) -> Result<(), FirehoseError> {
        let mut specs = self.specs();
        if specs.contains_key(&spec.name) {
            return Err(FirehoseError::InUse(format!(
                "Firehose {} under accountId {} already exists",
                spec.name, self.account
            )));
        }
        ready()?;
        self.write(&spec)?;
        specs.insert(spec.name.clone(), spec);
        drop(specs);
        self.changed();
        Ok(())
    }

    /// Changes delivery stream `name` by `f` (blocking file I/O); returns it as stored.
    /// `bump` raises the version (a destination change: the runner restarts).
    pub fn update(
        &self,
        name: &str,
        bump: bool,
        f: impl FnOnce(&mut DeliveryStreamSpec) -> Result<(), FirehoseError>,
    ) -> Result<DeliveryStreamSpec, FirehoseError> {
        let mut specs = self.specs();
        let spec = specs.get_mut(name).ok_or_else(|| self.not_found(name))?;
        let mut next = spec.clone();
        f(&mut next)?;
        if bump {
            next.version += 1;
        }
        next.updated_ms = millrace_common::time::now_ms();
        self.write(&next)?;
        *spec = next.clone();
        drop(specs);
        if bump {
            self.changed();
        }
        Ok(next)
    }

    /// Removes delivery stream `name` (blocking file I/O); the runner stops its delivery and
    /// removes its buffer and checkpoints.
    pub fn delete(&self, name: &str) -> Result<DeliveryStreamSpec, FirehoseError> {
        let mut specs = self.specs();
        if !specs.contains_key(name) {
            return Err(self.not_found(name));
        }
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path, e)),
        }
        millrace_common::durable::sync_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
        let spec = specs.remove(name).expect("checked");
        drop(specs);
        self.reported().remove(name);
        self.changed();
        Ok(spec)
    }

    /// The runner's state of `name`'s version `version`.
    pub fn report(&self, name: &str, id: &str, version: u64, state: RunState) {
        self.reported().insert(
            name.to_owned(),
            Reported {
                id: id.to_owned(),
                version,
                state,
            },
        );
    }

    pub fn status(&self, spec: &DeliveryStreamSpec) -> Status {
        let reported = self.reported();
        let current = reported
            .get(&spec.name)
            .filter(|r| r.id == spec.id && r.version == spec.version);
        match current.map(|r| &r.state) {
            Some(RunState::Active) => Status::Active,
            Some(RunState::Failed(reason)) => Status::CreatingFailed(reason.clone()),
            // An update restarts the runner: the stream stays ACTIVE meanwhile, as on AWS.
            None if reported.get(&spec.name).is_some_and(|r| r.id == spec.id) => Status::Active,
            None => Status::Creating,
        }
    }

    pub fn not_found(&self, name: &str) -> FirehoseError {
        FirehoseError::NotFound(format!(
            "Firehose {name} under account {} not found.",
            self.account
        ))
    }

    fn write(&self, spec: &DeliveryStreamSpec) -> Result<(), FirehoseError> {
        let path = self.path(&spec.name);
        let bytes = serde_json::to_vec_pretty(spec).expect("a spec serialises");
        millrace_common::durable::write_file(&path, &bytes).map_err(|e| io(&path, e))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("ds-{name}.json"))
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    fn specs(&self) -> MutexGuard<'_, BTreeMap<String, DeliveryStreamSpec>> {
        self.specs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reported(&self) -> MutexGuard<'_, BTreeMap<String, Reported>> {
        self.reported.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn io(path: &Path, source: std::io::Error) -> FirehoseError {
    FirehoseError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The delivery stream name of a spec file (`ds-<name>.json`).
fn spec_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let name = file.strip_prefix("ds-")?.strip_suffix(".json")?;
    (!name.is_empty() && path.is_file()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_files_are_told_from_staging_files_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ds-a.b.json"), "{}").unwrap();
        std::fs::write(dir.path().join(".ds-x.json.1.tmp"), "{}").unwrap();
        std::fs::create_dir(dir.path().join("ds-y.json")).unwrap();
        assert_eq!(
            spec_name(&dir.path().join("ds-a.b.json")).as_deref(),
            Some("a.b")
        );
        assert_eq!(spec_name(&dir.path().join(".ds-x.json.1.tmp")), None);
        assert_eq!(spec_name(&dir.path().join("ds-y.json")), None);
    }
}
