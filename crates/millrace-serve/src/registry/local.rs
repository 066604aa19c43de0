//! The registry in a local folder (the default, `<data-dir>/lake/models`).
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
//! New versions are numbered under the same lock: [`Local::reserve`] picks one more than the
//! highest `vN` folder (with or without a model.json, so a version being written counts),
//! creates that folder and releases the lock. The folder is the reservation: the next creator,
//! in this process or another (`millrace up` retraining while `millrace train` runs), sees it
//! and takes the next number.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use millrace_common::time::now_ms;

use super::{MODEL_FILE, STATE_FILE, State, io};
use crate::error::ServeError;

const LOCK_FILE: &str = "_registry.lock";
/// A lock this old belongs to a process that died mid-change.
pub const STALE_LOCK: Duration = Duration::from_secs(30);
/// How long a change waits for another one to finish before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// A registry folder: `NAME/vN/` per version and `NAME/_registry.json` per model.
#[derive(Debug, Clone)]
pub(super) struct Local {
    pub(super) root: PathBuf,
}

impl Local {
    pub(super) fn version_dir(&self, name: &str, version: u32) -> PathBuf {
        self.root.join(name).join(format!("v{version}"))
    }

    /// Model folders under the root, sorted (none when the root does not exist).
    pub(super) fn model_names(&self) -> Result<Vec<String>, ServeError> {
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
            if e.path().is_dir() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    pub(super) fn has_model(&self, name: &str) -> bool {
        self.root.join(name).is_dir()
    }

    /// Versions with a model.json and when it was written (its mtime, ms; 0 if unknown).
    pub(super) fn saved_versions(&self, name: &str) -> Vec<(u32, i64)> {
        fs::read_dir(self.root.join(name))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v: u32 = e.file_name().to_str()?.strip_prefix('v')?.parse().ok()?;
                let meta = fs::metadata(e.path().join(MODEL_FILE)).ok()?;
                let created = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as i64);
                meta.is_file().then_some((v, created))
            })
            .collect()
    }

    pub(super) fn read_state(&self, name: &str) -> Result<State, ServeError> {
        let path = self.root.join(name).join(STATE_FILE);
        match fs::read(&path) {
            Ok(bytes) => State::parse(&bytes, &path.display().to_string()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Runs `change` on the state under the model's lock; writes the state back when it says
    /// it changed it.
    pub(super) fn change_state<R>(
        &self,
        name: &str,
        mut change: impl FnMut(&mut State) -> Result<(R, bool), ServeError>,
    ) -> Result<R, ServeError> {
        let dir = self.root.join(name);
        let _lock = Lock::take(&dir)?;
        let mut state = self.read_state(name)?;
        let (out, changed) = change(&mut state)?;
        if changed {
            let path = dir.join(STATE_FILE);
            millrace_common::durable::write_file(&path, &state.to_bytes())
                .map_err(|e| io(&path, e))?;
        }
        Ok(out)
    }

    /// Reserves the next version number of `name`: its folder, created under the lock.
    pub(super) fn reserve(&self, name: &str) -> Result<(u32, PathBuf), ServeError> {
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
        Ok((version, self.version_dir(name, version)))
    }
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
