//! `millrace-lake` owns the lake: turning a lake URL into an `object_store` store (a local
//! directory by default, any S3-compatible service, or memory for tests) and committing objects
//! atomically, so readers never see a half-written object.
//!
//! Local commits go through a temporary file, `fsync`, `rename` and a directory `fsync`, so an
//! object that exists is complete and durable. S3 PUTs are atomic by nature.
//! It knows nothing about streams or formats: delivery decides what to write, prep what to read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("invalid lake URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("object store error at {location}: {source}")]
    Store {
        location: String,
        #[source]
        source: object_store::Error,
    },
    /// A key that would leave its folder or that no file system can hold (`..`, a leading
    /// `/`, NUL, a segment over 255 bytes): refused before anything is written.
    #[error("object key {key:?} refused: {reason}")]
    BadKey { key: String, reason: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = LakeError> = std::result::Result<T, E>;

/// How to reach an S3-compatible service. Credentials and region come from the standard AWS
/// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct S3Options {
    /// Any S3 API, e.g. `http://127.0.0.1:9000` (MinIO, moto, LocalStack).
    pub endpoint_url: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most local S3 servers need.
    pub path_style: bool,
}

/// Runs `f` on a small runtime of the lake's own and waits for it, from any thread, inside
/// another runtime or not (it blocks the calling thread, as file I/O does): for synchronous
/// callers of the lake (the model registry, checkpoint stores). `None` if `f` panicked.
pub fn block_on<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    let rt = io_runtime();
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv().ok()
}

/// Runs `f` in the background on the runtime of [`block_on`] (work that must outlive the
/// runtime that started it, such as renewing leases).
pub fn spawn(f: impl std::future::Future<Output = ()> + Send + 'static) {
    io_runtime().spawn(f);
}

fn io_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("millrace-lake-io")
            .enable_all()
            .build()
            .expect("cannot start the lake's I/O runtime")
    })
}

/// What [`Lake::put_if`] requires of the object already there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// No object with the key exists.
    Absent,
    /// The object's entity tag is this one (from [`Lake::get_tagged`]).
    Matches(String),
}

#[derive(Debug, Clone)]
enum Backend {
    Local(PathBuf),
    S3,
    Memory,
}

/// One object as a listing sees it: enough to say later exactly which bytes a job read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Key relative to the lake root.
    pub key: String,
    pub size: u64,
    /// The store's entity tag (S3 ETag; for local files a tag from inode, size and mtime).
    pub etag: Option<String>,
    /// Last modification, milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
}

/// A lake rooted at a URL. Object keys are relative to that root.
#[derive(Debug, Clone)]
pub struct Lake {
    url: String,
    store: Arc<dyn ObjectStore>,
    /// Prefix of every key inside the store (the path part of an `s3://bucket/prefix` URL).
    root: String,
    backend: Backend,
    /// The same store as `store` for a local lake, for the file paths `get` maps.
    local: Option<Arc<LocalFileSystem>>,
    /// How an S3 lake was reached, so another process can open the same lake.
    s3: S3Options,
}

impl Lake {
    /// Opens a lake. `location` is a local path (absolute or relative), `file:///dir`,
    /// `s3://bucket[/prefix]` or `memory://`.
    pub fn open(location: &str, s3: &S3Options) -> Result<Self> {
        let bad = |reason: &str| LakeError::BadUrl {
            url: location.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name after s3://"));
            }
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Some(ep) = &s3.endpoint_url {
                b = b
                    .with_endpoint(ep)
                    .with_allow_http(ep.starts_with("http://"));
            }
            if s3.path_style || s3.endpoint_url.is_some() {
                b = b.with_virtual_hosted_style_request(false);
            }
            if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                b = b.with_region("us-east-1");
            }
            let store = b.build().map_err(|e| bad(&e.to_string()))?;
            return Ok(Self {
                url: location.trim_end_matches('/').to_owned(),
                store: Arc::new(store),
                root: prefix.trim_matches('/').to_owned(),
                backend: Backend::S3,
                local: None,
                s3: s3.clone(),
            });
        }
        if location == "memory://" || location == "memory:" {
            return Ok(Self {
                url: "memory://".into(),
                store: Arc::new(InMemory::new()),
                root: String::new(),
                backend: Backend::Memory,
                local: None,
                s3: S3Options::default(),
            });
        }
        if location.contains("://") && !location.starts_with("file://") {
            return Err(bad("expected a local path, file://, s3:// or memory://"));
        }
        let path = PathBuf::from(location.strip_prefix("file://").unwrap_or(location));
        std::fs::create_dir_all(&path).map_err(|source| LakeError::Io {
            path: path.clone(),
            source,
        })?;
        let path = path.canonicalize().map_err(|source| LakeError::Io {
            path: path.clone(),
            source,
        })?;
        let store =
            Arc::new(LocalFileSystem::new_with_prefix(&path).map_err(|e| bad(&e.to_string()))?);
        Ok(Self {
            url: path.display().to_string(),
            store: store.clone(),
            root: String::new(),
            backend: Backend::Local(path),
            local: Some(store),
            s3: S3Options::default(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The options this lake was opened with: `Lake::open(lake.url(), lake.s3_options())`
    /// opens the same lake in another process (credentials come from that process's
    /// environment).
    pub fn s3_options(&self) -> &S3Options {
        &self.s3
    }

    /// Whether the lake lives only in this process (`memory://`).
    pub fn is_in_memory(&self) -> bool {
        matches!(self.backend, Backend::Memory)
    }

    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The local directory of a local lake.
    pub fn local_dir(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Local(p) => Some(p),
            _ => None,
        }
    }

    /// The store path of a key, for readers that talk to the store directly (Parquet ranges).
    pub fn path(&self, key: &str) -> ObjectPath {
        self.key(key)
    }

    fn key(&self, key: &str) -> ObjectPath {
        let full = if self.root.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.root)
        };
        // Keys as listed are already in the store's form (`kind=b%2Fc` stays that); `from`
        // would encode the `%` again and miss the object.
        ObjectPath::parse(&full).unwrap_or_else(|_| ObjectPath::from(full))
    }

    /// Writes an object so that it appears whole or not at all, replacing any object of the
    /// same key. Durable when it returns.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        if let Some(reason) = millrace_common::keys::key_problem(key) {
            return Err(LakeError::BadKey {
                key: key.chars().take(300).collect(),
                reason,
            });
        }
        match &self.backend {
            Backend::Local(dir) => {
                let path = dir.join(key);
                tokio::task::spawn_blocking(move || write_atomic(&path, &bytes))
                    .await
                    .map_err(|e| LakeError::Io {
                        path: dir.join(key),
                        source: std::io::Error::other(e),
                    })?
            }
            _ => {
                let location = self.key(key);
                self.store
                    .put(&location, PutPayload::from_bytes(bytes))
                    .await
                    .map(|_| ())
                    .map_err(|source| LakeError::Store {
                        location: location.to_string(),
                        source,
                    })
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let location = self.key(key);
        // Small, missing, a folder, unreadable: the store's own read below, as it always was.
        if let Some(fs) = &self.local
            && let Ok(path) = fs.path_to_filesystem(&location)
            && let Ok(Ok(Some(bytes))) = tokio::task::spawn_blocking(move || map_file(&path)).await
        {
            return Ok(bytes);
        }
        let r = self
            .store
            .get(&location)
            .await
            .map_err(|source| LakeError::Store {
                location: location.to_string(),
                source,
            })?;
        r.bytes().await.map_err(|source| LakeError::Store {
            location: location.to_string(),
            source,
        })
    }

    /// Every object key (relative to the lake root) under `prefix` with its size, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        Ok(self
            .list_objects(prefix)
            .await?
            .into_iter()
            .map(|o| (o.key, o.size))
            .collect())
    }
}

/// A local object's bytes, mapped rather than read: no copy out of the page cache and no
/// fresh pages to zero, which was a fifth of a lake scan's time (prep reads every byte of the
/// lake, often twice). `None` for small files and anything not a plain file: the store reads
/// those as it always has.
fn map_file(path: &Path) -> std::io::Result<Option<Bytes>> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() < MAP_AT_LEAST {
        return Ok(None);
    }
    // SAFETY: a mapping is undefined behaviour if the file changes under it (a shrink is a
    // SIGBUS). Lake objects never change once written: delivery and prep write a temporary
    // file and rename it into place, and a replaced object is a new file (the old mapping
    // keeps the old bytes).
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file)? };
    Ok(Some(Bytes::from_owner(map)))
}

/// Files smaller than this are read by the store rather than mapped.
const MAP_AT_LEAST: u64 = 256 * 1024;

impl Lake {
    /// Every object under `prefix` with size, entity tag and modification time, sorted by key.
    /// `prefix` is a folder (matched on whole path segments); staging files are left out.
    pub async fn list_objects(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let p = self.key(prefix.trim_end_matches('/'));
        let prefix_path = if prefix.trim_matches('/').is_empty() && self.root.is_empty() {
            None
        } else {
            Some(&p)
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(prefix_path)
            .try_collect()
            .await
            .map_err(|source| LakeError::Store {
                location: p.to_string(),
                source,
            })?;
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .map(|m| self.info(m))
            .filter(|o| !o.key.rsplit('/').next().unwrap_or("").starts_with(".tmp-"))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Metadata of one object; `Ok(None)` when it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let location = self.key(key);
        match self.store.head(&location).await {
            Ok(m) => Ok(Some(self.info(m))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(LakeError::Store {
                location: location.to_string(),
                source,
            }),
        }
    }

    /// Removes an object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let location = self.key(key);
        match self.store.delete(&location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(LakeError::Store {
                location: location.to_string(),
                source,
            }),
        }
    }

    /// Writes an object only if `condition` holds when the store applies the write (S3
    /// `If-None-Match: *` / `If-Match: ETAG`), so that several machines can change shared
    /// state without a lock: `Ok(Some(etag))` with the new object's entity tag (empty when the
    /// store gives none), `Ok(None)` when the condition did not hold. Local lakes take
    /// [`Condition::Absent`] only.
    pub async fn put_if(
        &self,
        key: &str,
        bytes: Bytes,
        condition: Condition,
    ) -> Result<Option<String>> {
        if let Some(reason) = millrace_common::keys::key_problem(key) {
            return Err(LakeError::BadKey {
                key: key.chars().take(300).collect(),
                reason,
            });
        }
        let location = self.key(key);
        let mode = match condition {
            Condition::Absent => PutMode::Create,
            Condition::Matches(e_tag) => PutMode::Update(UpdateVersion {
                e_tag: Some(e_tag),
                version: None,
            }),
        };
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&location, PutPayload::from_bytes(bytes), opts)
            .await
        {
            Ok(put) => Ok(Some(put.e_tag.unwrap_or_default())),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(None),
            Err(source) => Err(LakeError::Store {
                location: location.to_string(),
                source,
            }),
        }
    }

    /// An object's bytes and entity tag (for a later [`Lake::put_if`]); `Ok(None)` when it
    /// does not exist.
    pub async fn get_tagged(&self, key: &str) -> Result<Option<(Bytes, Option<String>)>> {
        let location = self.key(key);
        let store_error = |source| LakeError::Store {
            location: location.to_string(),
            source,
        };
        match self.store.get(&location).await {
            Ok(r) => {
                let e_tag = r.meta.e_tag.clone();
                Ok(Some((r.bytes().await.map_err(store_error)?, e_tag)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(source) => Err(store_error(source)),
        }
    }

    /// The names of the folders directly under `prefix` (`""`: the lake's top), sorted.
    pub async fn folders(&self, prefix: &str) -> Result<Vec<String>> {
        let p = self.key(prefix.trim_end_matches('/'));
        let prefix_path =
            (!(prefix.trim_matches('/').is_empty() && self.root.is_empty())).then_some(&p);
        let listed = self
            .store
            .list_with_delimiter(prefix_path)
            .await
            .map_err(|source| LakeError::Store {
                location: p.to_string(),
                source,
            })?;
        let mut out: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|f| f.filename().map(str::to_owned))
            .collect();
        out.sort();
        Ok(out)
    }

    fn info(&self, m: object_store::ObjectMeta) -> ObjectInfo {
        let full = m.location.to_string();
        let key = if self.root.is_empty() {
            full
        } else {
            full.strip_prefix(&format!("{}/", self.root))
                .map(str::to_owned)
                .unwrap_or(full)
        };
        ObjectInfo {
            key,
            size: m.size,
            etag: m.e_tag,
            last_modified_ms: m.last_modified.timestamp_millis(),
        }
    }
}

/// temp file → write → fsync → rename → fsync(dir), staged under the `.tmp-` name `list` hides.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| LakeError::Io { path, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    // A fixed staging name per key: a writer that replays the same key after a crash reuses
    // (truncates) the file a killed process left, instead of orphaning it.
    let tmp = dir.join(format!(".tmp-{name}"));
    millrace_common::durable::write_file_staged(path, &tmp, bytes, None).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_local_objects_are_mapped_with_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), &S3Options::default()).unwrap();
        let big: Vec<u8> = (0..MAP_AT_LEAST as usize * 3 + 17)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        lake.put("raw/big", Bytes::from(big.clone())).await.unwrap();
        assert_eq!(lake.get("raw/big").await.unwrap(), big);
        // That read was a mapping (not the store's fallback); small files and folders are
        // left to the store.
        let file = dir.path().join("raw/big");
        assert_eq!(map_file(&file).unwrap().unwrap(), big);
        std::fs::write(dir.path().join("small"), b"tiny").unwrap();
        assert!(map_file(&dir.path().join("small")).unwrap().is_none());
        assert!(map_file(&dir.path().join("raw")).unwrap().is_none());
        // Replacing an object leaves an earlier mapping with the bytes it had.
        let before = lake.get("raw/big").await.unwrap();
        lake.put("raw/big", Bytes::from_static(b"small now"))
            .await
            .unwrap();
        assert_eq!(before, big);
        assert_eq!(&lake.get("raw/big").await.unwrap()[..], b"small now");
        // A missing object is the store's NotFound, as before.
        let e = lake.get("raw/none").await.unwrap_err();
        assert!(
            matches!(
                e,
                LakeError::Store {
                    source: object_store::Error::NotFound { .. },
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn local_put_list_get() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), &S3Options::default()).unwrap();
        lake.put("raw/a/1.json", Bytes::from_static(b"{}\n"))
            .await
            .unwrap();
        lake.put("raw/b/2.json", Bytes::from_static(b"[]"))
            .await
            .unwrap();
        lake.put("raw/a/1.json", Bytes::from_static(b"{\"x\":1}\n"))
            .await
            .unwrap();
        let keys = lake.list("raw/").await.unwrap();
        assert_eq!(
            keys,
            vec![
                ("raw/a/1.json".to_owned(), 8),
                ("raw/b/2.json".to_owned(), 2)
            ]
        );
        assert_eq!(&lake.get("raw/a/1.json").await.unwrap()[..], b"{\"x\":1}\n");
        // No staging files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("raw/a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[tokio::test]
    async fn memory_lake_and_bad_urls() {
        let lake = Lake::open("memory://", &S3Options::default()).unwrap();
        lake.put("k", Bytes::from_static(b"v")).await.unwrap();
        assert_eq!(lake.list("").await.unwrap().len(), 1);
        let e = Lake::open("gs://bucket", &S3Options::default()).unwrap_err();
        assert!(e.to_string().contains("gs://bucket"));
        assert!(Lake::open("s3://", &S3Options::default()).is_err());
    }

    #[tokio::test]
    async fn conditional_writes_and_folders() {
        let lake = Lake::open("memory://", &S3Options::default()).unwrap();
        let put = |k: &'static str, v: &'static [u8], c: Condition| {
            let lake = lake.clone();
            async move {
                lake.put_if(k, Bytes::from_static(v), c)
                    .await
                    .unwrap()
                    .is_some()
            }
        };
        assert!(put("m/state", b"1", Condition::Absent).await);
        assert!(!put("m/state", b"2", Condition::Absent).await);
        let (bytes, tag) = lake.get_tagged("m/state").await.unwrap().unwrap();
        assert_eq!(&bytes[..], b"1");
        let tag = tag.expect("memory stores tag objects");
        assert!(put("m/state", b"3", Condition::Matches(tag.clone())).await);
        // The tag read before the last write no longer matches: that writer lost.
        assert!(!put("m/state", b"4", Condition::Matches(tag)).await);
        assert_eq!(&lake.get("m/state").await.unwrap()[..], b"3");
        assert!(lake.get_tagged("m/none").await.unwrap().is_none());
        assert!(put("m/v2/a", b"", Condition::Absent).await);
        assert!(put("n/v1/a", b"", Condition::Absent).await);
        assert_eq!(lake.folders("").await.unwrap(), ["m", "n"]);
        assert_eq!(lake.folders("m").await.unwrap(), ["v2"]);
        let e = lake
            .put_if("../x", Bytes::new(), Condition::Absent)
            .await
            .unwrap_err();
        assert!(matches!(e, LakeError::BadKey { .. }), "{e}");
    }
}
