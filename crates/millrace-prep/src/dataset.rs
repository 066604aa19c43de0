//! The one writer of datasets in the lake: prep jobs' outputs and `millrace predict`'s scored
//! folders both commit through [`DatasetWriter`], so a dataset changes the same way whoever
//! wrote it.
//!
//! A new version of a dataset is written in three steps, and only the second is seen:
//!
//! 1. parts are put under new, final names, `[k=v/…]part-<run>-<seq>.<ext>`, so nothing a
//!    reader of the committed version uses changes;
//! 2. [`DatasetWriter::commit`] puts the manifest's history copy (`_manifests/<run>.json`), then
//!    `_manifest.json` itself: one atomic object write, the switch readers see;
//! 3. it deletes every `part-*` file under the folder that the new manifest does not list (the
//!    previous version after an overwrite, parts of runs that died before their commit). Files
//!    not named `part-*`, and anything under a `_` or `.` folder, are never deleted.
//!
//! [`DatasetWriter::abort`] deletes the parts this run put; the committed version stays as it
//! was (and a crashed run's parts go at the next commit, by step 3).

use std::collections::HashSet;

use bytes::Bytes;
use millrace_lake::Lake;
use serde::Serialize;

use crate::error::Result;
use crate::manifest::{DataFile, HISTORY, MANIFEST, Manifest};

/// The parts of one run into one dataset folder, and their commit.
#[derive(Debug)]
pub struct DatasetWriter {
    lake: Lake,
    /// `prefix/` of the dataset ("" for the lake's root).
    folder: String,
    run_id: String,
    /// Parts put so far, in order.
    files: Vec<DataFile>,
    /// Set once `_manifest.json` is put: from then on `abort` deletes nothing.
    committed: bool,
}

/// A manifest with more fields beside prep's (a batch transform's model and timing): readers
/// that know only prep's fields read it as a prep manifest.
#[derive(Serialize)]
struct Extended<'a, E: Serialize> {
    #[serde(flatten)]
    manifest: &'a Manifest,
    #[serde(flatten)]
    extension: &'a E,
}

impl DatasetWriter {
    /// A writer of run `run_id` (see [`run_id`]) into `folder` (`prefix/`, or "") of `lake`.
    pub fn new(lake: Lake, folder: impl Into<String>, run_id: impl Into<String>) -> Self {
        Self {
            lake,
            folder: folder.into(),
            run_id: run_id.into(),
            files: Vec::new(),
            committed: false,
        }
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    pub fn folder(&self) -> &str {
        &self.folder
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The parts put so far, in order (what this run adds to the dataset).
    pub fn files(&self) -> &[DataFile] {
        &self.files
    }

    /// The name (relative to the folder) the next part under `dir` gets.
    pub fn next_key(&self, dir: &str, extension: &str) -> String {
        format!(
            "{dir}part-{}-{:05}.{extension}",
            self.run_id,
            self.files.len()
        )
    }

    /// Puts one part of `rows` rows under `dir` (a partition path `k=v/…/`, or "") with the
    /// next part name of this run ([`DatasetWriter::next_key`]). Not part of the dataset until
    /// the commit.
    pub async fn put_part(
        &mut self,
        dir: &str,
        extension: &str,
        bytes: Vec<u8>,
        rows: u64,
    ) -> Result<&DataFile> {
        let key = self.next_key(dir, extension);
        let size = bytes.len() as u64;
        self.lake
            .put(&format!("{}{key}", self.folder), Bytes::from(bytes))
            .await?;
        self.files.push(DataFile {
            key,
            rows,
            bytes: size,
            run_id: self.run_id.clone(),
        });
        Ok(self.files.last().expect("a part was just put"))
    }

    /// Commits `manifest` (which lists the dataset's files: this run's parts, and for an append
    /// the earlier ones) and deletes the parts it no longer lists (see the module docs).
    pub async fn commit(&mut self, manifest: &Manifest) -> Result<()> {
        self.commit_body(manifest, serde_json::to_vec_pretty(manifest))
            .await
    }

    /// [`DatasetWriter::commit`] with `extension`'s fields written beside the manifest's.
    pub async fn commit_with<E: Serialize>(
        &mut self,
        manifest: &Manifest,
        extension: &E,
    ) -> Result<()> {
        let body = serde_json::to_vec_pretty(&Extended {
            manifest,
            extension,
        });
        self.commit_body(manifest, body).await
    }

    async fn commit_body(
        &mut self,
        manifest: &Manifest,
        body: serde_json::Result<Vec<u8>>,
    ) -> Result<()> {
        let body = Bytes::from(body.map_err(|e| crate::error::PrepError::Output {
            path: format!("{}/{}", self.lake.url(), self.folder),
            message: format!("cannot encode the manifest: {e}"),
        })?);
        let folder = &self.folder;
        self.lake
            .put(
                &format!("{folder}{HISTORY}/{}.json", manifest.run_id),
                body.clone(),
            )
            .await?;
        self.lake.put(&format!("{folder}{MANIFEST}"), body).await?;
        self.committed = true;
        sweep(&self.lake, folder, manifest).await
    }

    /// Deletes the parts this run put (after a failure), unless its manifest is committed;
    /// best effort.
    pub async fn abort(self) {
        if self.committed {
            return;
        }
        for f in &self.files {
            let key = format!("{}{}", self.folder, f.key);
            let _ = self.lake.delete(&key).await;
        }
    }
}

/// Deletes data files in the dataset folder that the committed manifest does not list: the
/// previous version after an overwrite, and files of runs that died before their commit.
async fn sweep(lake: &Lake, folder: &str, m: &Manifest) -> Result<()> {
    let keep: HashSet<&str> = m.files.iter().map(|f| f.key.as_str()).collect();
    for o in lake.list_objects(folder).await? {
        let rel = o.key.strip_prefix(folder).unwrap_or(&o.key);
        let hidden = rel
            .split('/')
            .any(|s| s.starts_with('_') || s.starts_with('.'));
        if !hidden && !keep.contains(rel) && is_data_file(rel) {
            lake.delete(&o.key).await?;
        }
    }
    Ok(())
}

/// Only files this writer names (`part-…`) are ever deleted; anything else a user put there
/// stays.
fn is_data_file(rel: &str) -> bool {
    rel.rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with("part-"))
}

/// A run's id: sortable and unique enough for one writer (UTC time plus a random suffix).
pub fn run_id() -> String {
    let ms = millrace_common::time::now_ms();
    let t = millrace_common::time::rfc3339(ms)
        .replace(['-', ':'], "")
        .replace('.', "");
    format!("{}-{:04x}", t.trim_end_matches('Z'), rand::random::<u16>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use millrace_lake::S3Options;

    fn manifest(w: &DatasetWriter) -> Manifest {
        Manifest {
            format_version: 1,
            dataset: format!("{}/{}", w.lake().url(), w.folder()),
            run_id: w.run_id().to_owned(),
            previous_run_id: None,
            job: None,
            mode: "overwrite".into(),
            created_at: String::new(),
            created_at_ms: 0,
            statements: Vec::new(),
            query: String::new(),
            inputs: Default::default(),
            run_inputs: Default::default(),
            files: w.files().to_vec(),
            rows: w.files().iter().map(|f| f.rows).sum(),
            run_rows: 0,
            partition_by: Vec::new(),
            bad_records: Vec::new(),
            bad_record_count: 0,
        }
    }

    async fn keys(lake: &Lake) -> Vec<String> {
        let mut k: Vec<String> = lake
            .list_objects("")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        k.sort();
        k
    }

    #[tokio::test]
    async fn commit_switches_versions_and_sweeps_only_unlisted_parts() {
        let lake = Lake::open("memory://", &S3Options::default()).unwrap();
        // Beside the dataset: a user's file, a hidden folder's part, a crashed run's part in a
        // partition folder.
        for key in [
            "d/README.md",
            "d/_scratch/part-x.csv",
            "d/k=1/part-crashed-00000.csv",
        ] {
            lake.put(key, Bytes::from_static(b"x")).await.unwrap();
        }
        let mut one = DatasetWriter::new(lake.clone(), "d/", "run1");
        one.put_part("", "csv", b"a\n1\n".to_vec(), 1)
            .await
            .unwrap();
        let key = one
            .put_part("k=2/", "csv", b"a\n2\n".to_vec(), 1)
            .await
            .unwrap()
            .key
            .clone();
        assert_eq!(key, "k=2/part-run1-00001.csv");
        assert!(
            lake.head("d/_manifest.json").await.unwrap().is_none(),
            "manifest comes last"
        );
        one.commit_with(
            &manifest(&one),
            &serde_json::json!({"transform": {"model": "m"}}),
        )
        .await
        .unwrap();
        let m: serde_json::Value =
            serde_json::from_slice(&lake.get("d/_manifest.json").await.unwrap()).unwrap();
        assert_eq!(m["transform"]["model"], "m");
        assert_eq!(m["rows"], 2);
        assert!(lake.head("d/_manifests/run1.json").await.unwrap().is_some());
        assert_eq!(
            keys(&lake).await,
            [
                "d/README.md",
                "d/_manifest.json",
                "d/_manifests/run1.json",
                "d/_scratch/part-x.csv",
                "d/k=2/part-run1-00001.csv",
                "d/part-run1-00000.csv",
            ]
        );
        // A failed run leaves the committed version; the next one replaces it.
        let mut failed = DatasetWriter::new(lake.clone(), "d/", "run2");
        failed.put_part("", "csv", b"z".to_vec(), 1).await.unwrap();
        failed.abort().await;
        assert!(lake.head("d/part-run2-00000.csv").await.unwrap().is_none());
        let mut three = DatasetWriter::new(lake.clone(), "d/", "run3");
        three
            .put_part("", "csv", b"a\n3\n".to_vec(), 1)
            .await
            .unwrap();
        three.commit(&manifest(&three)).await.unwrap();
        let parts: Vec<String> = keys(&lake)
            .await
            .into_iter()
            .filter(|k| k.contains("part-") && !k.contains("_scratch"))
            .collect();
        assert_eq!(parts, ["d/part-run3-00000.csv"]);
    }
}
