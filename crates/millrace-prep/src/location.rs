//! Where a table's objects live: a local file or folder, an `s3://` URL, or a prefix of the
//! lake. Listing follows the conventions of Hive and Spark: names starting with `_` or `.` are
//! not data, `key=value` folders are partition columns, and a folder written by `millrace prep`
//! is read through its manifest so a reader never sees files of an uncommitted run.

use std::path::Path;

use millrace_lake::{Lake, ObjectInfo, S3Options};

use crate::error::{PrepError, Result};
use crate::manifest::{MANIFEST, Manifest};

/// A resolved input location: a lake and a prefix (folder) or a single object in it.
#[derive(Debug, Clone)]
pub struct Location {
    pub lake: Lake,
    /// Folder prefix (no trailing slash), or the key of a single object.
    pub prefix: String,
    pub single_object: bool,
}

impl Location {
    /// A folder of `lake` named by someone not trusted with the machine (the console's SQL
    /// box): never a local path or URL of its own, never `..`, so it cannot leave the lake.
    /// `""` or `/` is the whole lake.
    pub fn in_lake(lake: &Lake, folder: &str) -> Result<Self> {
        let prefix = folder.trim_matches('/');
        let problem = if folder.contains("://") {
            Some("a folder of the lake, not a URL".to_owned())
        } else if folder.starts_with('/') && !prefix.is_empty() {
            Some("a folder of the lake, not an absolute path".to_owned())
        } else if prefix.is_empty() {
            None
        } else {
            millrace_common::keys::key_problem(prefix)
        };
        if let Some(message) = problem {
            return Err(PrepError::Input {
                table: folder.to_owned(),
                message,
            });
        }
        Ok(Self {
            lake: lake.clone(),
            prefix: prefix.to_owned(),
            single_object: false,
        })
    }

    /// Resolves `spec`: `s3://bucket/prefix`, an absolute or relative local path, or — when a
    /// `lake` is given and `spec` is neither — a prefix inside that lake.
    pub fn resolve(spec: &str, lake: Option<&Lake>, s3: &S3Options) -> Result<Self> {
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let lake = Lake::open(&format!("s3://{bucket}"), s3)?;
            let single = !prefix.is_empty() && !prefix.ends_with('/');
            return Ok(Self {
                lake,
                prefix: prefix.trim_matches('/').to_owned(),
                // Decided on listing: an S3 key that is also a "folder" is rare; we try both.
                single_object: single,
            });
        }
        if spec.starts_with("memory://") {
            return Err(PrepError::Input {
                table: spec.into(),
                message: "memory:// lakes are only reachable through a lake handle".into(),
            });
        }
        let local = spec.strip_prefix("file://").unwrap_or(spec);
        let path = Path::new(local);
        let relative_to_lake = lake.filter(|_| !path.is_absolute() && !path.exists());
        if let Some(lake) = relative_to_lake {
            return Ok(Self {
                lake: lake.clone(),
                prefix: spec.trim_matches('/').to_owned(),
                single_object: false,
            });
        }
        let meta = std::fs::metadata(path).map_err(|e| PrepError::Io {
            path: spec.to_owned(),
            source: e,
        })?;
        if meta.is_dir() {
            let lake = Lake::open(local, s3)?;
            Ok(Self {
                lake,
                prefix: String::new(),
                single_object: false,
            })
        } else {
            let abs = path.canonicalize().map_err(|e| PrepError::Io {
                path: spec.to_owned(),
                source: e,
            })?;
            let parent = abs.parent().unwrap_or(Path::new("/"));
            let name = abs
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            Ok(Self {
                lake: Lake::open(&parent.display().to_string(), s3)?,
                prefix: name,
                single_object: true,
            })
        }
    }

    /// A human-readable name for messages and manifests.
    pub fn display(&self) -> String {
        if self.prefix.is_empty() {
            self.lake.url().to_owned()
        } else {
            format!("{}/{}", self.lake.url(), self.prefix)
        }
    }

    /// The data objects of this location, sorted by key. A folder holding a prep manifest
    /// yields exactly the files that manifest commits.
    pub async fn list(&self) -> Result<Vec<ObjectInfo>> {
        if self.single_object
            && let Some(info) = self.lake.head(&self.prefix).await?
        {
            return Ok(vec![info]);
        }
        let base = self.folder();
        let all = self.lake.list_objects(&self.prefix).await?;
        let manifest_key = format!("{base}{MANIFEST}");
        if all.iter().any(|o| o.key == manifest_key) {
            let m = Manifest::read(&self.lake, &manifest_key).await?;
            let committed: std::collections::HashSet<&str> =
                m.files.iter().map(|f| f.key.as_str()).collect();
            return Ok(all
                .into_iter()
                .filter(|o| committed.contains(o.key.strip_prefix(&base).unwrap_or(&o.key)))
                .collect());
        }
        Ok(all
            .into_iter()
            .filter(|o| !hidden(o.key.strip_prefix(&base).unwrap_or(&o.key)))
            .collect())
    }

    /// The folder prefix with a trailing slash ("" for the lake root).
    pub fn folder(&self) -> String {
        if self.prefix.is_empty() || self.single_object {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }
}

/// `_SUCCESS`, `_manifest.json`, `.crc` files and anything under `_`/`.` folders are not data;
/// Hive's default partition (an empty value in a bare `!{partitionKeyFromQuery:…}/` folder) is.
fn hidden(relative: &str) -> bool {
    relative
        .split('/')
        .any(|seg| seg != NULL_PARTITION && (seg.starts_with('_') || seg.starts_with('.')))
}

/// `key=value` folder segments between the table root and an object, in order; Hive's default
/// partition name stands for NULL.
pub fn hive_partitions(relative: &str) -> Vec<(String, Option<String>)> {
    let mut segs: Vec<&str> = relative.split('/').collect();
    segs.pop(); // the object name
    segs.into_iter()
        .filter_map(|s| s.split_once('='))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| {
            let value = (v != NULL_PARTITION).then(|| unescape(v));
            (k.to_owned(), value)
        })
        .collect()
}

/// Hive's folder name for a NULL or empty partition value.
pub const NULL_PARTITION: &str = millrace_common::keys::NULL_SEGMENT;

/// Partition folders are written and read with the one escaping of `millrace_common::keys`.
pub use millrace_common::keys::{escape_segment as escape, unescape_segment as unescape};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_segments() {
        assert_eq!(
            hive_partitions("year=2026/month=11/x/part-0.parquet"),
            vec![
                ("year".to_owned(), Some("2026".to_owned())),
                ("month".to_owned(), Some("11".to_owned()))
            ]
        );
        assert!(hive_partitions("2026/11/25/obj").is_empty());
        assert_eq!(
            hive_partitions("c=One%20year/p")[0].1.as_deref(),
            Some("One year")
        );
        assert_eq!(hive_partitions("c=__HIVE_DEFAULT_PARTITION__/p")[0].1, None);
        assert_eq!(hive_partitions("c=%é/p")[0].1.as_deref(), Some("%é"));
        for v in ["Month-to-month", "a/b=c", "50%", "_x", ".y", "ü", "%é"] {
            let e = escape(v);
            assert!(!e.contains('/'));
            assert_eq!(unescape(&e), v, "{e}");
        }
    }

    #[test]
    fn a_folder_named_from_outside_stays_in_the_lake() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(&dir.path().display().to_string(), &S3Options::default()).unwrap();
        let at = |f: &str| Location::in_lake(&lake, f).map(|l| l.prefix);
        assert_eq!(at("raw/churn/").unwrap(), "raw/churn");
        assert_eq!(at("").unwrap(), "");
        assert_eq!(at("/").unwrap(), "");
        for bad in [
            "../x",
            "raw/../../etc",
            "/etc",
            "s3://other/x",
            "file:///etc",
            "a//b",
        ] {
            let e = at(bad).err().unwrap_or_else(|| panic!("{bad} was taken"));
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn hidden_names() {
        assert!(hidden("_manifest.json"));
        assert!(hidden("a/_tmp/x"));
        assert!(hidden(".x.crc"));
        assert!(!hidden("a/b_c/x.json"));
        assert!(!hidden("raw/__HIVE_DEFAULT_PARTITION__/x.json"));
        assert!(hidden("raw/__HIVE_DEFAULT_PARTITION__/_SUCCESS"));
    }
}
