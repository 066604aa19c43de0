//! Per-stream metadata, persisted as `meta.json` and replaced atomically on every change.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result, StreamError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Provisioned => "PROVISIONED",
            Self::OnDemand => "ON_DEMAND",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamMeta {
    pub name: String,
    /// Creation time; also part of every sequence number and iterator of this incarnation.
    pub created_ms: i64,
    pub mode: StreamMode,
    pub shard_count: u32,
    pub retention_hours: u32,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

pub(crate) const META_FILE: &str = "meta.json";

impl StreamMeta {
    pub(crate) fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILE);
        let bytes = std::fs::read(&path).at(&path)?;
        serde_json::from_slice(&bytes).map_err(|e| StreamError::CorruptMeta {
            path,
            message: e.to_string(),
        })
    }

    /// Writes `meta.json` via a temporary file, fsync and rename, so a crash leaves either the
    /// old or the new version, never a mix.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join("meta.json.tmp");
        let path = dir.join(META_FILE);
        let bytes = serde_json::to_vec_pretty(self).expect("meta serialises");
        millrace_common::durable::write_file_staged(&path, &tmp, &bytes, None).at(&path)
    }
}
