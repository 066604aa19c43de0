//! The model registry: `<data-dir>/lake/models/NAME/vN/` folders (created by
//! [`Registry::new_version`]; a version exists once its `model.json` does) plus, per model,
//! `NAME/_registry.json`:
//!
//! ```json
//! { "production": 2, "history": [ {"version": 1, "promoted_at_ms": 1, "rollback": false},
//!                                  {"version": 2, "promoted_at_ms": 2, "rollback": false} ] }
//! ```
//!
//! Stages follow from it: `production` is the version named there, `archived` the versions
//! that were production once (they appear in `history`) but are not now, `candidate` the rest.
//!
//! Rollback is "back", as in a browser: replaying `history`, a promotion pushes its version on
//! a stack and a rollback pops back down to the version it names; a rollback puts back the
//! entry below the top. So after promoting v1, v2, v3, two rollbacks give v2 then v1 (no
//! ping-pong), and a third fails: there is no earlier production version.
//!
//! Where it lives: a local folder ([`local`], the default `<data-dir>/lake/models`, changes
//! under a lock file) or S3 ([`remote`], `s3://bucket/prefix`, changes by conditional writes),
//! with the same layout and the same answers. Every change is atomic: readers see the old
//! state or the new one. [`Registry::new_version`] reserves a number no other creator (thread,
//! process or machine) gets, and [`NewVersion::commit`] writes the version's files with
//! model.json last: a version exists, whole, once its model.json does.

mod local;
mod remote;

use std::fs;
use std::path::{Path, PathBuf};

use millrace_automl::model::ModelArtifact;
use millrace_automl::report::Report;
use millrace_common::layout::DataDir;
use millrace_common::time::now_ms;
use millrace_lake::S3Options;
use serde::{Deserialize, Serialize};

use crate::error::ServeError;
use local::Local;
pub use local::STALE_LOCK;
use remote::Remote;

/// Per-model state file.
pub const STATE_FILE: &str = "_registry.json";
/// A version's artifact, written last: the version exists once it does.
pub const MODEL_FILE: &str = "model.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Trained, never in production.
    Candidate,
    /// What endpoints and scoring serve for a bare `NAME`.
    Production,
    /// Was in production, replaced since.
    Archived,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Candidate => "candidate",
            Stage::Production => "production",
            Stage::Archived => "archived",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One entry of `history`: a promotion, or a rollback to `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub version: u32,
    pub promoted_at_ms: i64,
    #[serde(default)]
    pub rollback: bool,
}

/// The contents of `NAME/_registry.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    production: Option<u32>,
    #[serde(default)]
    history: Vec<Promotion>,
}

impl State {
    /// Reads a state file; `place` names it in the error.
    fn parse(bytes: &[u8], place: &str) -> Result<State, ServeError> {
        serde_json::from_slice(bytes).map_err(|e| ServeError::Corrupt {
            path: place.to_owned(),
            problem: format!(
                "not a registry state file ({e}); fix or delete it (that forgets which \
                 version is in production)"
            ),
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("the state serialises");
        bytes.push(b'\n');
        bytes
    }

    /// The production stack that `history` replays to (see the module docs); its top is the
    /// production version.
    fn stack(&self) -> Vec<u32> {
        let mut stack: Vec<u32> = Vec::new();
        for p in &self.history {
            if p.rollback {
                while stack.last().is_some_and(|v| *v != p.version) {
                    stack.pop();
                }
                // A hand-edited history may roll back to a version never promoted.
                if stack.is_empty() {
                    stack.push(p.version);
                }
            } else if stack.last() != Some(&p.version) {
                stack.push(p.version);
            }
        }
        // `production` is what serves; keep the stack consistent with it.
        match self.production {
            Some(v) if stack.last() != Some(&v) => stack.push(v),
            None => stack.clear(),
            _ => {}
        }
        stack
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VersionInfo {
    pub version: u32,
    pub stage: Stage,
    /// When model.json was written (its mtime), in ms since the Unix epoch; 0 if unknown.
    pub created_ms: i64,
    /// Headline test metrics from metrics.json; empty when it cannot be read.
    pub headline: Vec<(String, f64)>,
    pub objective: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    /// Ascending.
    pub versions: Vec<VersionInfo>,
    pub production: Option<u32>,
    /// Every promotion and rollback, oldest first.
    pub history: Vec<Promotion>,
}

/// Where the registry's files are.
#[derive(Debug, Clone)]
enum Store {
    Local(Local),
    Remote(Remote),
}

/// The model registry: `<data-dir>/lake/models` by default ([`Registry::new`]), or any
/// folder or S3 location ([`Registry::open`]).
#[derive(Debug, Clone)]
pub struct Registry {
    store: Store,
    data_dir: PathBuf,
    /// `<data-dir>/lake`.
    lake: PathBuf,
}

fn io(path: &Path, source: std::io::Error) -> ServeError {
    ServeError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Just what `resolve` needs from a model.json given as a path.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: u32,
}

impl Registry {
    /// The data dir's own registry, `<data-dir>/lake/models`.
    pub fn new(data_dir: &Path) -> Registry {
        Registry {
            store: Store::Local(Local {
                root: DataDir::new(data_dir).models(),
            }),
            data_dir: data_dir.to_path_buf(),
            lake: DataDir::new(data_dir).lake(),
        }
    }

    /// The registry at `location`: `None` for the data dir's own; a folder (or `file://…`);
    /// `s3://bucket[/prefix]` to share it between machines (`memory://` for tests). Versions
    /// of a registry on S3 that this machine uses are copied under
    /// `<data-dir>/cache/registry/`.
    pub fn open(
        data_dir: &Path,
        location: Option<&str>,
        s3: &S3Options,
    ) -> Result<Registry, ServeError> {
        let Some(location) = location.filter(|l| !l.is_empty()) else {
            return Ok(Registry::new(data_dir));
        };
        let store = if location.starts_with("s3://") || location.starts_with("memory:") {
            let cache = DataDir::new(data_dir).registry_cache();
            Store::Remote(Remote::open(location, s3, &cache)?)
        } else if location.contains("://") && !location.starts_with("file://") {
            return Err(ServeError::Invalid(format!(
                "registry location {location:?}: expected a folder, file://… or \
                 s3://bucket[/prefix]"
            )));
        } else {
            Store::Local(Local {
                root: PathBuf::from(location.strip_prefix("file://").unwrap_or(location)),
            })
        };
        Ok(Registry {
            store,
            data_dir: data_dir.to_path_buf(),
            lake: DataDir::new(data_dir).lake(),
        })
    }

    /// Where the registry is, for messages: its folder or its `s3://` URL.
    pub fn location(&self) -> String {
        match &self.store {
            Store::Local(l) => l.root.display().to_string(),
            Store::Remote(r) => r.url().to_owned(),
        }
    }

    /// The local folder the versions' folders are in, `root/NAME/vN/` (for a registry on S3,
    /// this machine's copies of the versions it used).
    pub fn root(&self) -> &Path {
        match &self.store {
            Store::Local(l) => &l.root,
            Store::Remote(r) => r.cache_root(),
        }
    }

    /// The data dir this registry was opened for (drift reports, caches).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The data dir's lake, `<data-dir>/lake`: where the SageMaker API's asynchronous
    /// invocations read `s3://lake/…` inputs and write their results.
    pub fn lake(&self) -> &Path {
        &self.lake
    }

    /// Model names become folder names: the one rule of `millrace_common::keys::check_name`
    /// (1 to 128 letters, digits, `-`, `_` and `.`, not starting with `.`), so `.`, `..`,
    /// `a/b` and `/etc` are refused.
    pub fn check_name(name: &str) -> Result<(), ServeError> {
        millrace_common::keys::check_name(name).map_err(|_| ServeError::InvalidName {
            name: name.to_owned(),
        })
    }

    /// The local folder of version `version` of `name` (it may not exist; for a registry on
    /// S3, this machine's copy: see [`Registry::local_version`]).
    pub fn version_dir(&self, name: &str, version: u32) -> PathBuf {
        match &self.store {
            Store::Local(l) => l.version_dir(name, version),
            Store::Remote(r) => r.version_dir(name, version),
        }
    }

    /// A local folder holding the files of a saved version (for a registry on S3, copied
    /// here first). `VersionNotFound` when it has no model.json.
    pub fn local_version(&self, name: &str, version: u32) -> Result<PathBuf, ServeError> {
        Self::check_name(name)?;
        let dir = match &self.store {
            Store::Local(l) => {
                Some(l.version_dir(name, version)).filter(|d| d.join(MODEL_FILE).is_file())
            }
            Store::Remote(r) => r.local_version(name, version)?,
        };
        dir.ok_or_else(|| ServeError::VersionNotFound {
            name: name.to_owned(),
            version,
            versions: self.versions(name),
        })
    }

    /// Versions saved so far with when their model.json was written, ascending.
    fn saved(&self, name: &str) -> Result<Vec<(u32, i64)>, ServeError> {
        let mut out = match &self.store {
            Store::Local(l) => l.saved_versions(name),
            Store::Remote(r) => r.saved_versions(name)?,
        };
        out.sort_unstable();
        Ok(out)
    }

    /// Versions saved so far (those with a model.json), ascending; none when they cannot be
    /// listed (logged).
    pub fn versions(&self, name: &str) -> Vec<u32> {
        match self.saved(name) {
            Ok(v) => v.into_iter().map(|(v, _)| v).collect(),
            Err(e) => {
                tracing::warn!(model = name, error = %e, "cannot list the versions");
                Vec::new()
            }
        }
    }

    /// Every model under the registry, sorted by name.
    pub fn list(&self) -> Result<Vec<ModelInfo>, ServeError> {
        let names = match &self.store {
            Store::Local(l) => l.model_names()?,
            Store::Remote(r) => r.model_names()?,
        };
        names
            .iter()
            .filter(|n| Self::check_name(n).is_ok())
            .map(|n| self.info(n))
            .collect()
    }

    fn missing(&self, name: &str) -> ServeError {
        ServeError::ModelNotFound {
            name: name.to_owned(),
            registry: PathBuf::from(self.location()),
        }
    }

    fn has_model(&self, name: &str) -> Result<bool, ServeError> {
        match &self.store {
            Store::Local(l) => Ok(l.has_model(name)),
            Store::Remote(r) => r.has_model(name),
        }
    }

    /// Reserves the next version of `name`: one more than the highest version there is (being
    /// written or not), a number that no other creator, here or on another machine, can take.
    /// Write the version with [`NewVersion::commit`].
    pub fn new_version(&self, name: &str) -> Result<NewVersion, ServeError> {
        Self::check_name(name)?;
        let (version, dir) = match &self.store {
            Store::Local(l) => l.reserve(name)?,
            Store::Remote(r) => r.reserve(name)?,
        };
        Ok(NewVersion {
            name: name.to_owned(),
            version,
            dir,
            store: self.store.clone(),
            committed: false,
        })
    }

    fn check_model(&self, name: &str) -> Result<(), ServeError> {
        Self::check_name(name)?;
        if self.has_model(name)? {
            Ok(())
        } else {
            Err(self.missing(name))
        }
    }

    fn read_state(&self, name: &str) -> Result<State, ServeError> {
        match &self.store {
            Store::Local(l) => l.read_state(name),
            Store::Remote(r) => r.read_state(name),
        }
    }

    /// Runs `change` on the model's state atomically (see the module docs of `local` and
    /// `remote`); it returns its answer and whether it changed the state.
    fn change_state<R>(
        &self,
        name: &str,
        change: impl FnMut(&mut State) -> Result<(R, bool), ServeError>,
    ) -> Result<R, ServeError> {
        match &self.store {
            Store::Local(l) => l.change_state(name, change),
            Store::Remote(r) => r.change_state(name, change),
        }
    }

    /// A file of a version (`metrics.json`, …); `None` when it has none.
    pub fn version_file(
        &self,
        name: &str,
        version: u32,
        file: &str,
    ) -> Result<Option<Vec<u8>>, ServeError> {
        Self::check_name(name)?;
        match &self.store {
            Store::Local(l) => {
                let path = l.version_dir(name, version).join(file);
                match fs::read(&path) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io(&path, e)),
                }
            }
            Store::Remote(r) => Ok(r.read_version_file(name, version, file)?.map(Vec::from)),
        }
    }

    fn version_info(
        &self,
        name: &str,
        (version, created_ms): (u32, i64),
        state: &State,
    ) -> VersionInfo {
        let report: Option<Report> = self
            .version_file(name, version, "metrics.json")
            .ok()
            .flatten()
            .and_then(|t| serde_json::from_slice(&t).ok());
        let stage = if state.production == Some(version) {
            Stage::Production
        } else if state.history.iter().any(|p| p.version == version) {
            Stage::Archived
        } else {
            Stage::Candidate
        };
        VersionInfo {
            version,
            stage,
            created_ms,
            headline: report.as_ref().map_or_else(Vec::new, |r| {
                r.headline()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect()
            }),
            objective: report.map(|r| r.objective.name().to_owned()),
        }
    }

    /// One model: its versions with stage and headline metrics, and its promotion history.
    pub fn info(&self, name: &str) -> Result<ModelInfo, ServeError> {
        self.check_model(name)?;
        let state = self.read_state(name)?;
        let versions = self
            .saved(name)?
            .into_iter()
            .map(|v| self.version_info(name, v, &state))
            .collect();
        Ok(ModelInfo {
            name: name.to_owned(),
            versions,
            production: state.production,
            history: state.history,
        })
    }

    /// Makes `version` the production version. Returns the one it replaced. Promoting the
    /// version already in production changes nothing.
    pub fn promote(&self, name: &str, version: u32) -> Result<Option<u32>, ServeError> {
        self.check_model(name)?;
        let all = self.versions(name);
        if !all.contains(&version) {
            return Err(ServeError::VersionNotFound {
                name: name.to_owned(),
                version,
                versions: all,
            });
        }
        self.change_state(name, |state| {
            let previous = state.production;
            if previous == Some(version) {
                return Ok((previous, false));
            }
            state.production = Some(version);
            state.history.push(Promotion {
                version,
                promoted_at_ms: now_ms(),
                rollback: false,
            });
            Ok((previous, true))
        })
    }

    /// Puts back the production version before the current one (see the module docs for how
    /// repeated rollbacks walk back). Versions whose folder is gone are skipped. Returns the
    /// version now in production.
    pub fn rollback(&self, name: &str) -> Result<u32, ServeError> {
        self.check_model(name)?;
        let all = self.versions(name);
        self.change_state(name, |state| {
            let Some(current) = state.production else {
                return Err(ServeError::NoRollback {
                    name: name.to_owned(),
                    production: None,
                });
            };
            let mut stack = state.stack();
            stack.pop();
            let target = stack
                .into_iter()
                .rev()
                .find(|v| *v != current && all.contains(v))
                .ok_or_else(|| ServeError::NoRollback {
                    name: name.to_owned(),
                    production: Some(current),
                })?;
            state.production = Some(target);
            state.history.push(Promotion {
                version: target,
                promoted_at_ms: now_ms(),
                rollback: true,
            });
            Ok((target, true))
        })
    }

    /// Parses `NAME`, `NAME:vN` or `NAME:N` into the name and the version asked for.
    fn parse_spec(spec: &str) -> Result<(&str, Option<u32>), ServeError> {
        match spec.rsplit_once(':') {
            Some((name, v)) => {
                let version = v.strip_prefix('v').unwrap_or(v).parse().map_err(|_| {
                    ServeError::InvalidSpec {
                        spec: spec.to_owned(),
                    }
                })?;
                Self::check_name(name)?;
                Ok((name, Some(version)))
            }
            None => {
                Self::check_name(spec)?;
                Ok((spec, None))
            }
        }
    }

    /// The version a bare `NAME` means: production, else the latest.
    fn pick(&self, name: &str, all: &[u32]) -> Result<u32, ServeError> {
        let state = self.read_state(name)?;
        match state.production {
            Some(v) if all.contains(&v) => Ok(v),
            Some(v) => Err(ServeError::ProductionMissing {
                name: name.to_owned(),
                version: v,
                dir: self.version_dir(name, v),
                versions: all.to_vec(),
            }),
            None => all.last().copied().ok_or_else(|| self.missing(name)),
        }
    }

    /// A model.json given as a path (a file, or a folder holding one): the file, the model's
    /// name and its version, read from the artifact.
    fn resolve_path(spec: &str) -> Result<Option<(PathBuf, String, u32)>, ServeError> {
        let as_path = Path::new(spec);
        let file = if as_path.is_file() {
            as_path.to_path_buf()
        } else if as_path.join(MODEL_FILE).is_file() {
            as_path.join(MODEL_FILE)
        } else {
            return Ok(None);
        };
        let text = fs::read_to_string(&file).map_err(|e| io(&file, e))?;
        let h: Header = serde_json::from_str(&text).map_err(|e| ServeError::Corrupt {
            path: file.display().to_string(),
            problem: format!("not a millrace model: {e}"),
        })?;
        let name = if h.name.is_empty() {
            // Fall back to the folder layout NAME/vN/model.json.
            file.parent()
                .and_then(Path::parent)
                .and_then(Path::file_name)
                .and_then(|n| n.to_str())
                .unwrap_or("model")
                .to_owned()
        } else {
            h.name
        };
        Ok(Some((file, name, h.version)))
    }

    /// `NAME` → the production version, or the latest when none is promoted; `NAME:vN` (or
    /// `NAME:N`) → that version. Also accepts a path to a model folder or model.json (version
    /// read from the artifact). A name with a model here wins over a same-named path. The
    /// file returned is local (for a registry on S3, this machine's copy).
    pub fn resolve(&self, spec: &str) -> Result<(PathBuf, String, u32), ServeError> {
        let registered = Self::parse_spec(spec)
            .ok()
            .is_some_and(|(name, _)| self.has_model(name).unwrap_or(false));
        if !registered && let Some(found) = Self::resolve_path(spec)? {
            return Ok(found);
        }
        let (name, version) = Self::parse_spec(spec)?;
        self.check_model(name)?;
        let all = self.versions(name);
        let v = match version {
            Some(v) if all.contains(&v) => v,
            Some(v) => {
                return Err(ServeError::VersionNotFound {
                    name: name.to_owned(),
                    version: v,
                    versions: all,
                });
            }
            None => self.pick(name, &all)?,
        };
        let dir = self.local_version(name, v)?;
        Ok((dir.join(MODEL_FILE), name.to_owned(), v))
    }

    /// The artifact `spec` resolves to and its version.
    pub fn load(&self, spec: &str) -> Result<(ModelArtifact, u32), ServeError> {
        let (file, _, version) = self.resolve(spec)?;
        let text = fs::read_to_string(&file).map_err(|e| io(&file, e))?;
        let model = ModelArtifact::from_json(&text, &file.display().to_string())?;
        Ok((model, version))
    }

    /// The version `NAME` resolves to now: reads one small file and lists one folder (on S3,
    /// two requests), for the endpoint's hot-swap poll.
    pub fn current(&self, name: &str) -> Result<u32, ServeError> {
        self.check_model(name)?;
        let all = self.versions(name);
        self.pick(name, &all)
    }
}

/// A version number reserved by [`Registry::new_version`]: it becomes a version when
/// [`NewVersion::commit`] has written its model.json. Dropped before that, the reservation
/// and whatever was written for it are removed.
#[derive(Debug)]
pub struct NewVersion {
    name: String,
    version: u32,
    dir: PathBuf,
    store: Store,
    committed: bool,
}

impl NewVersion {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// The local folder the version is written into (`NAME/vN/`, or this machine's copy of
    /// one on S3).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `files` (name, bytes) in order and then `model_json` as model.json, each through
    /// a temporary file, fsync and rename (and on S3 uploaded, model.json last): once this
    /// returns the version exists, whole. Returns the version's local folder.
    pub fn commit(
        mut self,
        files: &[(&str, &[u8])],
        model_json: &[u8],
    ) -> Result<PathBuf, ServeError> {
        match &self.store {
            Store::Local(_) => {
                for (file, bytes) in files.iter().chain([&(MODEL_FILE, model_json)]) {
                    let path = self.dir.join(file);
                    millrace_common::durable::write_file(&path, bytes).map_err(|e| io(&path, e))?;
                }
            }
            Store::Remote(r) => r.commit(&self.name, self.version, &self.dir, files, model_json)?,
        }
        self.committed = true;
        Ok(self.dir.clone())
    }
}

impl Drop for NewVersion {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        match &self.store {
            Store::Local(_) => {
                let _ = fs::remove_dir_all(&self.dir);
            }
            Store::Remote(r) => r.abort(&self.name, self.version, &self.dir),
        }
    }
}
