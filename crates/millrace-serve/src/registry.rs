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
//! Writes are atomic and serialised. A change takes `NAME/_registry.lock` (created with
//! `create_new`, so only one process or thread gets it; it holds a unique token and is removed
//! by its owner), reads the state, writes `_registry.json.tmp`, fsyncs it, renames it over
//! `_registry.json` and fsyncs the folder. Readers take no lock: they see the old file or the
//! new one, never a torn one. A lock older than [`STALE_LOCK`] is left by a process that died
//! mid-change (a change takes milliseconds) and is taken over: renamed aside (atomic), and put
//! back if it turns out another process had just taken it over. Even if two changes ever did
//! overlap, the state file could not be torn; at worst one of the two changes would be lost.
//!
//! New versions are numbered under the same lock: [`Registry::new_version`] takes it, picks one
//! more than the highest `vN` folder (with or without a model.json, so a version being written
//! counts), creates that folder and releases the lock. The folder is the reservation: the next
//! creator, in this process or another (`millrace up` retraining while `millrace train` runs),
//! sees it and takes the next number. [`NewVersion::commit`] then writes the files durably,
//! model.json last; a reservation dropped before that removes its folder.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use millrace_automl::model::ModelArtifact;
use millrace_automl::report::Report;
use millrace_common::layout::DataDir;
use millrace_common::time::now_ms;
use serde::{Deserialize, Serialize};

use crate::error::ServeError;

/// Per-model state file.
pub const STATE_FILE: &str = "_registry.json";
/// A version's artifact, written last: the version exists once it does.
pub const MODEL_FILE: &str = "model.json";
const LOCK_FILE: &str = "_registry.lock";
/// A lock this old belongs to a process that died mid-change.
pub const STALE_LOCK: Duration = Duration::from_secs(30);
/// How long a change waits for another one to finish before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(10);

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
struct State {
    production: Option<u32>,
    #[serde(default)]
    history: Vec<Promotion>,
}

impl State {
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

/// The registry under `<data-dir>/lake/models`.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
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
    pub fn new(data_dir: &Path) -> Registry {
        Registry {
            root: DataDir::new(data_dir).models(),
        }
    }

    /// `<data-dir>/lake/models`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The lake the registry lives in, `<data-dir>/lake`: where the SageMaker API's
    /// asynchronous invocations read `s3://lake/…` inputs and write their results.
    pub fn lake(&self) -> &Path {
        self.root.parent().unwrap_or(&self.root)
    }

    /// Model names become folder names: the one rule of `millrace_common::keys::check_name`
    /// (1 to 128 letters, digits, `-`, `_` and `.`, not starting with `.`), so `.`, `..`,
    /// `a/b` and `/etc` are refused.
    pub fn check_name(name: &str) -> Result<(), ServeError> {
        millrace_common::keys::check_name(name).map_err(|_| ServeError::InvalidName {
            name: name.to_owned(),
        })
    }

    /// The folder of version `version` of `name` (it may not exist).
    pub fn version_dir(&self, name: &str, version: u32) -> PathBuf {
        self.root.join(name).join(format!("v{version}"))
    }

    /// Versions saved so far (those with a model.json), ascending.
    pub fn versions(&self, name: &str) -> Vec<u32> {
        let mut out: Vec<u32> = fs::read_dir(self.root.join(name))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v: u32 = e.file_name().to_str()?.strip_prefix('v')?.parse().ok()?;
                e.path().join(MODEL_FILE).is_file().then_some(v)
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Every model folder under the root, sorted by name (none when the root does not exist).
    pub fn list(&self) -> Result<Vec<ModelInfo>, ServeError> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.root, e)),
        };
        let mut names: Vec<String> = Vec::new();
        for e in entries {
            let e = e.map_err(|err| io(&self.root, err))?;
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if e.path().is_dir() && Self::check_name(&name).is_ok() {
                names.push(name);
            }
        }
        names.sort();
        names.iter().map(|n| self.info(n)).collect()
    }

    fn missing(&self, name: &str) -> ServeError {
        ServeError::ModelNotFound {
            name: name.to_owned(),
            registry: self.root.clone(),
        }
    }

    /// Reserves the next version of `name` (creating the model's folder if needed): under the
    /// registry lock, one more than the highest `vN` folder there is, whose folder is created
    /// before the lock is released so that no other creator can take the same number. Write
    /// the version with [`NewVersion::commit`].
    pub fn new_version(&self, name: &str) -> Result<NewVersion, ServeError> {
        Self::check_name(name)?;
        let dir = self.root.join(name);
        fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let _lock = Lock::take(&dir)?;
        let entries = fs::read_dir(&dir).map_err(|e| io(&dir, e))?;
        let highest = entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_prefix('v')?
                    .parse::<u32>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
        let mut version = highest + 1;
        loop {
            let folder = dir.join(format!("v{version}"));
            match fs::create_dir(&folder) {
                Ok(()) => break,
                // Made by a writer that does not take the lock: skip past it.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => version += 1,
                Err(e) => return Err(io(&folder, e)),
            }
        }
        millrace_common::durable::sync_dir(&dir).map_err(|e| io(&dir, e))?;
        Ok(NewVersion {
            name: name.to_owned(),
            version,
            dir: dir.join(format!("v{version}")),
            committed: false,
        })
    }

    fn model_dir(&self, name: &str) -> Result<PathBuf, ServeError> {
        Self::check_name(name)?;
        let dir = self.root.join(name);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(self.missing(name))
        }
    }

    fn read_state(&self, name: &str) -> Result<State, ServeError> {
        let path = self.root.join(name).join(STATE_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| ServeError::Corrupt {
                path: path.display().to_string(),
                problem: format!(
                    "not a registry state file ({e}); fix or delete it (that forgets which \
                     version is in production)"
                ),
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(io(&path, e)),
        }
    }

    fn version_info(&self, name: &str, version: u32, state: &State) -> VersionInfo {
        let dir = self.version_dir(name, version);
        let created_ms = fs::metadata(dir.join(MODEL_FILE))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let report: Option<Report> = fs::read_to_string(dir.join("metrics.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
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
        self.model_dir(name)?;
        let state = self.read_state(name)?;
        let versions = self
            .versions(name)
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
        let dir = self.model_dir(name)?;
        let all = self.versions(name);
        if !all.contains(&version) {
            return Err(ServeError::VersionNotFound {
                name: name.to_owned(),
                version,
                versions: all,
            });
        }
        let _lock = Lock::take(&dir)?;
        let mut state = self.read_state(name)?;
        let previous = state.production;
        if previous == Some(version) {
            return Ok(previous);
        }
        state.production = Some(version);
        state.history.push(Promotion {
            version,
            promoted_at_ms: now_ms(),
            rollback: false,
        });
        write_state(&dir, &state)?;
        Ok(previous)
    }

    /// Puts back the production version before the current one (see the module docs for how
    /// repeated rollbacks walk back). Versions whose folder is gone are skipped. Returns the
    /// version now in production.
    pub fn rollback(&self, name: &str) -> Result<u32, ServeError> {
        let dir = self.model_dir(name)?;
        let _lock = Lock::take(&dir)?;
        let mut state = self.read_state(name)?;
        let Some(current) = state.production else {
            return Err(ServeError::NoRollback {
                name: name.to_owned(),
                production: None,
            });
        };
        let all = self.versions(name);
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
        write_state(&dir, &state)?;
        Ok(target)
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

    /// `NAME` → the production version, or the latest when none is promoted; `NAME:vN` (or
    /// `NAME:N`) → that version. Also accepts a path to a model folder or model.json (version
    /// read from the artifact). A name with a model folder here wins over a same-named path.
    pub fn resolve(&self, spec: &str) -> Result<(PathBuf, String, u32), ServeError> {
        let registered = Self::parse_spec(spec)
            .ok()
            .filter(|(name, _)| self.root.join(name).is_dir());
        if registered.is_none() {
            let as_path = Path::new(spec);
            let file = if as_path.is_file() {
                Some(as_path.to_path_buf())
            } else if as_path.join(MODEL_FILE).is_file() {
                Some(as_path.join(MODEL_FILE))
            } else {
                None
            };
            if let Some(file) = file {
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
                return Ok((file, name, h.version));
            }
        }
        let (name, version) = Self::parse_spec(spec)?;
        self.model_dir(name)?;
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
        Ok((
            self.version_dir(name, v).join(MODEL_FILE),
            name.to_owned(),
            v,
        ))
    }

    /// The artifact `spec` resolves to and its version.
    pub fn load(&self, spec: &str) -> Result<(ModelArtifact, u32), ServeError> {
        let (file, _, version) = self.resolve(spec)?;
        let text = fs::read_to_string(&file).map_err(|e| io(&file, e))?;
        let model = ModelArtifact::from_json(&text, &file.display().to_string())?;
        Ok((model, version))
    }

    /// The version `NAME` resolves to now: reads one small file and lists one folder, for the
    /// endpoint's hot-swap poll.
    pub fn current(&self, name: &str) -> Result<u32, ServeError> {
        self.model_dir(name)?;
        let all = self.versions(name);
        self.pick(name, &all)
    }
}

/// A version number reserved by [`Registry::new_version`]: its folder exists, and it becomes a
/// version when [`NewVersion::commit`] has written its model.json. Dropped before that, the
/// folder (and whatever was written into it) is removed.
#[derive(Debug)]
pub struct NewVersion {
    name: String,
    version: u32,
    dir: PathBuf,
    committed: bool,
}

impl NewVersion {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// `NAME/vN/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `files` (name, bytes) in order and then `model_json` as model.json, each through
    /// a temporary file, fsync and rename: once this returns the version exists, whole. Returns
    /// the version's folder.
    pub fn commit(
        mut self,
        files: &[(&str, &[u8])],
        model_json: &[u8],
    ) -> Result<PathBuf, ServeError> {
        for (file, bytes) in files.iter().chain([&(MODEL_FILE, model_json)]) {
            let path = self.dir.join(file);
            millrace_common::durable::write_file(&path, bytes).map_err(|e| io(&path, e))?;
        }
        self.committed = true;
        Ok(self.dir.clone())
    }
}

impl Drop for NewVersion {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Replaces `dir/_registry.json` atomically and durably (the caller holds the lock).
fn write_state(dir: &Path, state: &State) -> Result<(), ServeError> {
    let path = dir.join(STATE_FILE);
    let mut bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| ServeError::Internal(format!("{}: {e}", path.display())))?;
    bytes.push(b'\n');
    millrace_common::durable::write_file(&path, &bytes).map_err(|e| io(&path, e))
}

/// The per-model change lock: the file exists while one change runs. Removed on drop, but only
/// while it still holds this holder's token.
struct Lock {
    path: PathBuf,
    token: String,
}

impl Lock {
    fn take(dir: &Path) -> Result<Lock, ServeError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let path = dir.join(LOCK_FILE);
        let token = format!(
            "pid {} seq {} at {}\n",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed),
            now_ms()
        );
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    // The token is written before anyone can judge the lock (it is fresh).
                    if let Err(e) = f.write_all(token.as_bytes()) {
                        let _ = fs::remove_file(&path);
                        return Err(io(&path, e));
                    }
                    return Ok(Lock { path, token });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(&path, e)),
            }
            if Self::take_over_stale(&path) {
                continue;
            }
            if started.elapsed() >= LOCK_WAIT {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                return Err(ServeError::RegistryBusy {
                    lock: path,
                    holder: holder.trim().to_owned(),
                    stale_secs: STALE_LOCK.as_secs(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Removes the lock at `path` if it is older than [`STALE_LOCK`]; true if it did.
    ///
    /// The stale file is first renamed to a name of our own (atomic), then its token checked:
    /// if another process took the lock over in between, ours is its fresh lock, and it is put
    /// back with `hard_link` (which never replaces a file).
    fn take_over_stale(path: &Path) -> bool {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let old = fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_LOCK);
        if !old {
            return false;
        }
        let Ok(seen) = fs::read_to_string(path) else {
            return false;
        };
        let aside = path.with_extension(format!(
            "lock.stale-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        if fs::rename(path, &aside).is_err() {
            return false;
        }
        let got = fs::read_to_string(&aside).unwrap_or_default();
        let taken = got == seen;
        if taken {
            tracing::warn!(lock = %path.display(), holder = %seen.trim(), "took over a stale registry lock");
        } else {
            let _ = fs::hard_link(&aside, path);
        }
        let _ = fs::remove_file(&aside);
        taken
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if fs::read_to_string(&self.path).is_ok_and(|t| t == self.token) {
            let _ = fs::remove_file(&self.path);
        }
    }
}
