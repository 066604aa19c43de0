//! The console's view of S3 lakes: the `s3://` locations the configuration delivers into
//! (`[[delivery]] lake`, `[buckets]`), browsed folder by folder (S3's `/` delimiter) with an
//! object's first rows. Only keys under one of those locations are read: a URL the browser
//! makes up for another bucket or prefix is not found, and a key with an empty, `.` or `..`
//! segment is refused before any request.

use millrace_console::{LakeEntry, Preview, SourceError};
use millrace_lake::{Lake, S3Options};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;

/// A Parquet object previewed whole at most (its footer is at the end).
const MOST_PARQUET_BYTES: u64 = 64 << 20;
/// Entries one folder lists at most.
const MOST_ENTRIES: usize = 10_000;

pub struct S3Lakes {
    /// `s3://bucket/prefix/` (always ending in `/`), sorted, each once.
    roots: Vec<String>,
    s3: S3Options,
}

impl S3Lakes {
    /// The lakes among `locations` that are on S3.
    pub fn new<'a>(locations: impl IntoIterator<Item = &'a str>, s3: S3Options) -> S3Lakes {
        let mut roots: Vec<String> = locations
            .into_iter()
            .filter(|l| l.starts_with("s3://"))
            .map(|l| format!("{}/", l.trim_end_matches('/')))
            .collect();
        roots.sort();
        roots.dedup();
        S3Lakes { roots, s3 }
    }

    /// The S3 locations, as folders at the top of the lake page.
    pub fn root_entries(&self) -> Vec<LakeEntry> {
        self.roots
            .iter()
            .map(|r| LakeEntry {
                name: r.trim_end_matches('/').to_owned(),
                key: r.clone(),
                folder: true,
                bytes: 0,
                modified_ms: 0,
            })
            .collect()
    }

    /// `url` split into its bucket and key when it lies under a configured location.
    fn under_root<'u>(&self, url: &'u str) -> Result<(&'u str, &'u str), SourceError> {
        let missing =
            || SourceError::NotFound(format!("{url:?} is not in a lake of this millrace"));
        let with_slash = format!("{}/", url.trim_end_matches('/'));
        if !self
            .roots
            .iter()
            .any(|r| url.starts_with(r.as_str()) || with_slash == *r)
        {
            return Err(missing());
        }
        let rest = url.strip_prefix("s3://").ok_or_else(missing)?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let plain = key
            .trim_end_matches('/')
            .split('/')
            .all(|p| !matches!(p, "." | ".."))
            && !key.trim_end_matches('/').contains("//");
        if !plain {
            return Err(missing());
        }
        Ok((bucket, key))
    }

    fn bucket(&self, bucket: &str) -> Result<Lake, SourceError> {
        Lake::open(&format!("s3://{bucket}"), &self.s3)
            .map_err(|e| SourceError::Failed(format!("opening s3://{bucket}: {e}")))
    }

    /// Above the configured locations (`s3://bucket/` of `s3://bucket/lake/`): the next folder
    /// on the way to each, so a breadcrumb up from a location leads back down to it.
    fn toward_roots(&self, prefix: &str) -> Vec<LakeEntry> {
        let prefix = format!("{}/", prefix.trim_end_matches('/'));
        let mut out: Vec<LakeEntry> = self
            .roots
            .iter()
            .filter_map(|r| r.strip_prefix(prefix.as_str()))
            .filter_map(|rest| rest.split('/').next().filter(|n| !n.is_empty()))
            .map(|name| LakeEntry {
                name: name.to_owned(),
                key: format!("{prefix}{name}/"),
                folder: true,
                bytes: 0,
                modified_ms: 0,
            })
            .collect();
        out.dedup_by(|a, b| a.key == b.key);
        out
    }

    /// The folders and objects directly under `prefix` (`s3://bucket/a/`).
    pub async fn list(&self, prefix: &str) -> Result<Vec<LakeEntry>, SourceError> {
        let toward = self.toward_roots(prefix);
        if !toward.is_empty() {
            return Ok(toward);
        }
        let (bucket, key) = self.under_root(prefix)?;
        let store = self.bucket(bucket)?.store();
        let key = key.trim_end_matches('/');
        let at = (!key.is_empty()).then(|| ObjectPath::from(key));
        let listed = store
            .list_with_delimiter(at.as_ref())
            .await
            .map_err(|e| SourceError::Failed(format!("listing {prefix}: {e}")))?;
        let url = |p: &ObjectPath| format!("s3://{bucket}/{p}");
        let name = |p: &ObjectPath| p.filename().unwrap_or_default().to_owned();
        let mut out: Vec<LakeEntry> = listed
            .common_prefixes
            .iter()
            .map(|p| LakeEntry {
                name: name(p),
                key: format!("{}/", url(p)),
                folder: true,
                bytes: 0,
                modified_ms: 0,
            })
            .chain(listed.objects.iter().map(|o| LakeEntry {
                name: name(&o.location),
                key: url(&o.location),
                folder: false,
                bytes: o.size,
                modified_ms: o.last_modified.timestamp_millis(),
            }))
            .take(MOST_ENTRIES)
            .collect();
        out.sort_by(|a, b| b.folder.cmp(&a.folder).then(a.name.cmp(&b.name)));
        Ok(out)
    }

    /// The first `rows` rows of the object `url`.
    pub async fn preview(&self, url: &str, rows: usize) -> Result<Preview, SourceError> {
        let (bucket, key) = self.under_root(url)?;
        if key.is_empty() || key.ends_with('/') {
            return Err(SourceError::NotFound(format!("{url:?} is a folder")));
        }
        let store = self.bucket(bucket)?.store();
        let path = ObjectPath::from(key);
        let failed = |e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => {
                SourceError::NotFound(format!("no object {url:?}"))
            }
            e => SourceError::Failed(format!("reading {url}: {e}")),
        };
        let size = store.head(&path).await.map_err(failed)?.size;
        let name = path.filename().unwrap_or_default().to_owned();
        let parquet = name.ends_with(".parquet");
        if parquet && size > MOST_PARQUET_BYTES {
            return Ok(Preview {
                note: format!(
                    "Parquet, {size} bytes: larger than the {} MiB previewed here",
                    MOST_PARQUET_BYTES >> 20
                ),
                ..Preview::default()
            });
        }
        let end = if parquet {
            size
        } else {
            size.min(crate::console_preview::PREVIEW_TEXT_BYTES)
        };
        let bytes = store.get_range(&path, 0..end).await.map_err(failed)?;
        tokio::task::spawn_blocking(move || {
            crate::console_preview::preview_bytes(&name, bytes, rows)
        })
        .await
        .map_err(|e| SourceError::Failed(format!("previewing {url}: {e}")))?
        .map_err(|e| SourceError::Failed(format!("reading {url}: {e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keys_under_a_configured_location_are_read() {
        let lakes = S3Lakes::new(
            ["s3://b/lake", "s3://c", "./local", "s3://b/lake/"],
            S3Options::default(),
        );
        assert_eq!(lakes.roots, ["s3://b/lake/", "s3://c/"]);
        assert_eq!(lakes.under_root("s3://b/lake/").unwrap(), ("b", "lake/"));
        assert_eq!(lakes.under_root("s3://b/lake").unwrap(), ("b", "lake"));
        assert_eq!(
            lakes.under_root("s3://b/lake/raw/x.json").unwrap(),
            ("b", "lake/raw/x.json")
        );
        assert_eq!(lakes.under_root("s3://c/any/").unwrap(), ("c", "any/"));
        // Above a location: the way down to it, and nothing else of the bucket.
        let names =
            |p: &str| -> Vec<String> { lakes.toward_roots(p).into_iter().map(|e| e.key).collect() };
        assert_eq!(names("s3://b/"), ["s3://b/lake/"]);
        assert_eq!(names("s3://b"), ["s3://b/lake/"]);
        assert!(names("s3://b/lake/").is_empty(), "a location lists itself");
        assert!(names("s3://b/lak").is_empty());
        for bad in [
            "s3://b/",
            "s3://b/lakehouse/",
            "s3://b/other/x",
            "s3://d/",
            "s3://b/lake/../secret/",
            "s3://b/lake/./x",
            "s3://b/lake//x",
            "local/",
            "",
        ] {
            assert!(
                matches!(lakes.under_root(bad), Err(SourceError::NotFound(_))),
                "{bad}"
            );
        }
    }
}
