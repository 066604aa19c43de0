//! A dataset's manifest: the commit point of a prep output and its lineage.
//!
//! Data files are written first under their final names; the dataset changes only when
//! `_manifest.json` is replaced (an atomic object write), so readers that go through the
//! manifest see the old version or the new one, never a mix. Each run's manifest is also kept
//! under `_manifests/<run>.json` as history. [`crate::dataset::DatasetWriter`] does the writing.

use std::collections::BTreeMap;

use millrace_lake::{Lake, ObjectInfo};
use serde::{Deserialize, Serialize};

use crate::error::{PrepError, Result};
use crate::json::BadRecord;

pub const MANIFEST: &str = "_manifest.json";
pub const HISTORY: &str = "_manifests";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    /// Lake location of the dataset.
    pub dataset: String,
    pub run_id: String,
    pub previous_run_id: Option<String>,
    /// The job file that produced it.
    pub job: Option<String>,
    /// `overwrite` (the dataset is this run's output) or `append` (earlier files kept).
    pub mode: String,
    pub created_at: String,
    pub created_at_ms: i64,
    /// The job's statements, in order, and the query whose result this dataset is.
    pub statements: Vec<String>,
    pub query: String,
    /// Every input object the dataset's rows come from, by table: for append-mode datasets
    /// the union over all runs, which is how an incremental run knows what it has read.
    pub inputs: BTreeMap<String, Vec<InputObject>>,
    /// Objects read by this run alone.
    pub run_inputs: BTreeMap<String, usize>,
    pub files: Vec<DataFile>,
    /// Rows in the dataset (all files).
    pub rows: u64,
    /// Rows written by this run.
    pub run_rows: u64,
    pub partition_by: Vec<String>,
    /// Input values this run could not read (first 1,000), and how many there were.
    pub bad_records: Vec<BadRecord>,
    pub bad_record_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputObject {
    /// Location of the object (lake URL and key).
    pub object: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified_ms: i64,
}

impl InputObject {
    pub fn new(lake: &Lake, o: &ObjectInfo) -> Self {
        Self {
            object: format!("{}/{}", lake.url(), o.key),
            size: o.size,
            etag: o.etag.clone(),
            last_modified_ms: o.last_modified_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    /// Path relative to the dataset folder, so a dataset can be read (or moved) on its own.
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub run_id: String,
}

impl Manifest {
    pub async fn read(lake: &Lake, key: &str) -> Result<Self> {
        let bytes = lake.get(key).await?;
        serde_json::from_slice(&bytes).map_err(|e| PrepError::Output {
            path: format!("{}/{key}", lake.url()),
            message: format!("unreadable manifest: {e}"),
        })
    }

    /// The committed manifest of the dataset at `folder` (`prefix/`), if there is one.
    pub async fn latest(lake: &Lake, folder: &str) -> Result<Option<Self>> {
        let key = format!("{folder}{MANIFEST}");
        match lake.head(&key).await? {
            Some(_) => Ok(Some(Self::read(lake, &key).await?)),
            None => Ok(None),
        }
    }
}
