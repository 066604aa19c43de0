//! The registry on S3 (`--registry s3://bucket/prefix`, `[registry] location`): the same
//! layout as a local registry, as objects, so that endpoints, scorers and trainers on several
//! machines share models, versions, stages and the promotion log.
//!
//! S3 has no lock file, so changes are conditional writes:
//! - **State** (`NAME/_registry.json`) is read with its ETag and written back with `If-Match`
//!   (`If-None-Match: *` for the first one). A write that loses to another machine's is
//!   refused by S3 and the change runs again on the state that won, for up to [`CONTENDED_FOR`].
//!   No change is ever lost and none applies twice.
//! - **Version numbers** are reserved by creating `NAME/vN/.reserved` with `If-None-Match: *`:
//!   one creator gets each number; the others move to the next.
//! - **A version** exists once its `model.json` does: its other files are uploaded first and
//!   model.json last, itself with `If-None-Match: *`.
//!
//! Versions never change once written, so the files of the versions this machine uses are
//! copied under `<data-dir>/cache/registry/` (checked against model.json's ETag) and callers
//! read them from there as they would a local registry's.
//!
//! The registry's calls are synchronous (they run off the async threads, as file I/O does);
//! S3 requests run on the lake's small runtime of its own ([`millrace_lake::block_on`]).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use millrace_lake::{Condition, Lake, S3Options};
use sha2::{Digest, Sha256};

use super::{MODEL_FILE, STATE_FILE, State, io};
use crate::error::ServeError;

/// How long a state change keeps trying against other machines' changes.
const CONTENDED_FOR: Duration = Duration::from_secs(10);
/// The object that reserves a version number.
const RESERVED: &str = ".reserved";
/// Beside a cached version: the ETag of the model.json it was copied from.
const CACHED_TAG: &str = ".etag";

#[derive(Debug, Clone)]
pub(super) struct Remote {
    lake: Lake,
    cache: PathBuf,
}

/// Runs `f` on the lake's I/O runtime and waits for it (see [`millrace_lake::block_on`]).
fn run<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Result<T, ServeError> {
    millrace_lake::block_on(f)
        .ok_or_else(|| ServeError::Internal("a registry request panicked".into()))
}

impl Remote {
    /// A registry at `location` (`s3://bucket[/prefix]` or `memory://`), caching versions
    /// under `cache_root`.
    pub(super) fn open(
        location: &str,
        s3: &S3Options,
        cache_root: &Path,
    ) -> Result<Remote, ServeError> {
        let lake = Lake::open(location, s3).map_err(|e| ServeError::Invalid(e.to_string()))?;
        let digest = Sha256::digest(lake.url().as_bytes());
        let folder: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Remote {
            cache: cache_root.join(folder),
            lake,
        })
    }

    pub(super) fn url(&self) -> &str {
        self.lake.url()
    }

    fn store_error(&self, source: millrace_lake::LakeError) -> ServeError {
        ServeError::RegistryStore {
            location: self.lake.url().to_owned(),
            source,
        }
    }

    /// Runs one lake call on the registry's runtime.
    fn call<T: Send + 'static, F: Future<Output = millrace_lake::Result<T>> + Send + 'static>(
        &self,
        f: impl FnOnce(Lake) -> F,
    ) -> Result<T, ServeError> {
        run(f(self.lake.clone()))?.map_err(|e| self.store_error(e))
    }

    pub(super) fn cache_root(&self) -> &Path {
        &self.cache
    }

    /// Where this machine keeps its copy of a version.
    pub(super) fn version_dir(&self, name: &str, version: u32) -> PathBuf {
        self.cache.join(name).join(format!("v{version}"))
    }

    pub(super) fn model_names(&self) -> Result<Vec<String>, ServeError> {
        self.call(|lake| async move { lake.folders("").await })
    }

    pub(super) fn has_model(&self, name: &str) -> Result<bool, ServeError> {
        let prefix = name.to_owned();
        Ok(!self
            .call(|lake| async move { lake.folders(&prefix).await })?
            .is_empty()
            || self.read_state_tagged(name)?.1.is_some())
    }

    /// Every object key under `NAME/` with its modification time.
    fn objects(&self, name: &str) -> Result<Vec<(String, i64)>, ServeError> {
        let prefix = name.to_owned();
        let listed = self.call(|lake| async move { lake.list_objects(&prefix).await })?;
        Ok(listed
            .into_iter()
            .map(|o| (o.key, o.last_modified_ms))
            .collect())
    }

    /// `NAME/vN/REST` → (N, REST).
    fn parse_key<'k>(name: &str, key: &'k str) -> Option<(u32, &'k str)> {
        let rest = key.strip_prefix(name)?.strip_prefix("/v")?;
        let (n, file) = rest.split_once('/')?;
        Some((n.parse().ok()?, file))
    }

    /// Versions with a model.json, and when it was written.
    pub(super) fn saved_versions(&self, name: &str) -> Result<Vec<(u32, i64)>, ServeError> {
        Ok(self
            .objects(name)?
            .iter()
            .filter_map(|(key, modified)| {
                let (v, file) = Self::parse_key(name, key)?;
                (file == MODEL_FILE).then_some((v, *modified))
            })
            .collect())
    }

    /// One file of a version, read from the store; `None` when it is not there.
    pub(super) fn read_version_file(
        &self,
        name: &str,
        version: u32,
        file: &str,
    ) -> Result<Option<Bytes>, ServeError> {
        let key = format!("{name}/v{version}/{file}");
        Ok(self
            .call(|lake| async move { lake.get_tagged(&key).await })?
            .map(|(b, _)| b))
    }

    fn state_key(name: &str) -> String {
        format!("{name}/{STATE_FILE}")
    }

    /// The state and the ETag it was read at (`None`: there is no state object yet).
    fn read_state_tagged(&self, name: &str) -> Result<(State, Option<String>), ServeError> {
        let key = Self::state_key(name);
        let got = self.call(|lake| async move { lake.get_tagged(&key).await })?;
        let Some((bytes, tag)) = got else {
            return Ok((State::default(), None));
        };
        let place = format!("{}/{}", self.url(), Self::state_key(name));
        let tag = tag.ok_or_else(|| ServeError::Corrupt {
            path: place.clone(),
            problem: "the store gave no ETag, which conditional writes need".into(),
        })?;
        Ok((State::parse(&bytes, &place)?, Some(tag)))
    }

    pub(super) fn read_state(&self, name: &str) -> Result<State, ServeError> {
        Ok(self.read_state_tagged(name)?.0)
    }

    /// Runs `change` on the state and writes it back on condition that nobody wrote it in
    /// between; runs it again on the newer state when somebody did.
    pub(super) fn change_state<R>(
        &self,
        name: &str,
        mut change: impl FnMut(&mut State) -> Result<(R, bool), ServeError>,
    ) -> Result<R, ServeError> {
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (mut state, tag) = self.read_state_tagged(name)?;
            let (out, changed) = change(&mut state)?;
            if !changed {
                return Ok(out);
            }
            let condition = tag.map_or(Condition::Absent, Condition::Matches);
            let key = Self::state_key(name);
            let bytes = Bytes::from(state.to_bytes());
            let written =
                self.call(|lake| async move { lake.put_if(&key, bytes, condition).await })?;
            if written.is_some() {
                return Ok(out);
            }
            if started.elapsed() >= CONTENDED_FOR {
                return Err(ServeError::RegistryContended {
                    location: format!("{}/{}", self.url(), Self::state_key(name)),
                    attempts,
                });
            }
            tracing::debug!(model = name, "registry state changed under a change; again");
            // A pause of 1 to 32 ms, different for each writer, so that they stop colliding.
            let jitter = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
                % 32;
            std::thread::sleep(Duration::from_millis(1 + u64::from(jitter)));
        }
    }

    /// Reserves the next version number of `name` with a conditional create; returns it and an
    /// empty local folder to write the version into.
    pub(super) fn reserve(&self, name: &str) -> Result<(u32, PathBuf), ServeError> {
        let highest = self
            .objects(name)?
            .iter()
            .filter_map(|(key, _)| Self::parse_key(name, key).map(|(v, _)| v))
            .max()
            .unwrap_or(0);
        let token = format!(
            "{} at {}\n",
            millrace_common::ids::worker_id(),
            millrace_common::time::now_ms()
        );
        let mut version = highest + 1;
        loop {
            let key = format!("{name}/v{version}/{RESERVED}");
            let bytes = Bytes::from(token.clone());
            let reserved =
                self.call(|lake| async move { lake.put_if(&key, bytes, Condition::Absent).await })?;
            if reserved.is_some() {
                break;
            }
            version += 1;
        }
        let dir = self.version_dir(name, version);
        // A copy left by an earlier use of this cache (another bucket of the same URL).
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        Ok((version, dir))
    }

    /// Writes the version: `files` into the local folder and the store, then model.json (the
    /// version exists from then on). The reservation object stays: it keeps the number taken
    /// for good, so no later creator can reserve it again.
    pub(super) fn commit(
        &self,
        name: &str,
        version: u32,
        dir: &Path,
        files: &[(&str, &[u8])],
        model_json: &[u8],
    ) -> Result<(), ServeError> {
        for (file, bytes) in files {
            let path = dir.join(file);
            millrace_common::durable::write_file(&path, bytes).map_err(|e| io(&path, e))?;
            let key = format!("{name}/v{version}/{file}");
            let bytes = Bytes::copy_from_slice(bytes);
            self.call(|lake| async move { lake.put(&key, bytes).await })?;
        }
        let key = format!("{name}/v{version}/{MODEL_FILE}");
        let bytes = Bytes::copy_from_slice(model_json);
        let created =
            self.call(|lake| async move { lake.put_if(&key, bytes, Condition::Absent).await })?;
        let Some(tag) = created else {
            return Err(ServeError::Internal(format!(
                "{}/{name}/v{version}/{MODEL_FILE} was written by another process, though \
                 this one had reserved v{version}",
                self.url()
            )));
        };
        // Published: from here on nothing may fail the commit (and so remove the version).
        if let Err(e) = write_model_json(dir, model_json, &tag) {
            tracing::warn!(error = %e, "{name}:v{version} is saved; its local copy is not (it is fetched again when used)");
        }
        Ok(())
    }

    /// Removes the files an abandoned reservation uploaded (never a model.json: a version is
    /// never removed once it exists) and its local folder. The reservation object stays, so
    /// the number is not reserved again.
    pub(super) fn abort(&self, name: &str, version: u32, dir: &Path) {
        let _ = std::fs::remove_dir_all(dir);
        let prefix = format!("{name}/v{version}");
        let cleared = self.call(|lake| async move {
            let objects = lake.list_objects(&prefix).await?;
            if objects
                .iter()
                .any(|o| o.key.ends_with(&format!("/{MODEL_FILE}")))
            {
                return Ok(());
            }
            for o in objects {
                if !o.key.ends_with(&format!("/{RESERVED}")) {
                    lake.delete(&o.key).await?;
                }
            }
            Ok(())
        });
        if let Err(e) = cleared {
            tracing::warn!(error = %e, "cannot remove the abandoned reservation {name}:v{version}");
        }
    }

    /// This machine's copy of a saved version, fetched when it has none (or one of another
    /// object); `None` when the version has no model.json in the store. A copy is fetched into
    /// a folder of its own and then renamed into place, so it never mixes two objects' files.
    pub(super) fn local_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<PathBuf>, ServeError> {
        let key = format!("{name}/v{version}/{MODEL_FILE}");
        let head_key = key.clone();
        let Some(head) = self.call(|lake| async move { lake.head(&head_key).await })? else {
            return Ok(None);
        };
        let dir = self.version_dir(name, version);
        let cached = std::fs::read_to_string(dir.join(CACHED_TAG)).ok();
        if let Some(tag) = head.etag.as_deref().filter(|t| !t.is_empty())
            && cached.as_deref() == Some(tag)
            && dir.join(MODEL_FILE).is_file()
        {
            return Ok(Some(dir));
        }
        let staging = dir.with_file_name(format!(
            ".fetch-v{version}-{}",
            millrace_common::ids::uuid_v4()
        ));
        let fetched = self.fetch_into(name, version, &key, &staging);
        if let Err(e) = fetched {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        // Another thread may have put a copy in place meanwhile: the same files, replaced.
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::rename(&staging, &dir) {
            let _ = std::fs::remove_dir_all(&staging);
            if !dir.join(MODEL_FILE).is_file() {
                return Err(io(&dir, e));
            }
        }
        Ok(Some(dir))
    }

    /// Downloads the files of a version into `dir`, model.json (with its ETag) last.
    fn fetch_into(
        &self,
        name: &str,
        version: u32,
        model_key: &str,
        dir: &Path,
    ) -> Result<(), ServeError> {
        let prefix = format!("{name}/v{version}");
        let objects = self.call(|lake| async move { lake.list_objects(&prefix).await })?;
        for o in &objects {
            let Some((_, file)) = Self::parse_key(name, &o.key) else {
                continue;
            };
            if file == MODEL_FILE || file == RESERVED || file == CACHED_TAG {
                continue;
            }
            if let Some(problem) = millrace_common::keys::key_problem(file) {
                tracing::warn!(key = %o.key, problem, "skipped a registry object");
                continue;
            }
            let key = o.key.clone();
            let bytes = self.call(|lake| async move { lake.get(&key).await })?;
            let path = dir.join(file);
            millrace_common::durable::write_file(&path, &bytes).map_err(|e| io(&path, e))?;
        }
        let key = model_key.to_owned();
        let got = self.call(|lake| async move { lake.get_tagged(&key).await })?;
        let Some((bytes, tag)) = got else {
            return Err(ServeError::VersionNotFound {
                name: name.to_owned(),
                version,
                versions: Vec::new(),
            });
        };
        write_model_json(dir, &bytes, &tag.unwrap_or_default())
    }
}

/// Writes model.json into a local copy of a version, and beside it the ETag of the object it
/// is a copy of.
fn write_model_json(dir: &Path, model_json: &[u8], tag: &str) -> Result<(), ServeError> {
    let path = dir.join(MODEL_FILE);
    millrace_common::durable::write_file(&path, model_json).map_err(|e| io(&path, e))?;
    let path = dir.join(CACHED_TAG);
    millrace_common::durable::write_file(&path, tag.as_bytes()).map_err(|e| io(&path, e))
}
