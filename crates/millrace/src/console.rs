//! The console's view of a running `up`: the admin API's status document and the stream
//! store, behind [`millrace_console::Source`].

use std::sync::Arc;

use std::path::{Component, Path, PathBuf};

use millrace_console::{
    LakeEntry, ModelSummary, Preview, Record, ShardInfo, SourceError, StreamInfo, VersionSummary,
};
use millrace_serve::registry::Registry;

use crate::admin::Admin;

/// Bytes one record-browser read may return at most.
const TAIL_BYTES: usize = 16 << 20;

pub struct ConsoleSource {
    pub admin: Arc<Admin>,
    /// The data dir's lake folder.
    pub lake: PathBuf,
    pub registry: Registry,
}

impl millrace_console::Source for ConsoleSource {
    fn status(&self) -> serde_json::Value {
        crate::admin::status_json(&self.admin)
    }

    fn streams(&self) -> Vec<StreamInfo> {
        let store = &self.admin.store;
        store
            .list()
            .iter()
            .filter_map(|s| store.stream(&s.name).ok())
            .map(|h| info(&h))
            .collect()
    }

    fn tail(&self, stream: &str, shard: &str, limit: usize) -> Result<Vec<Record>, SourceError> {
        let h = self
            .admin
            .store
            .stream(stream)
            .map_err(|_| SourceError::NotFound(format!("no stream named {stream:?}")))?;
        let sh = h.shard_by_id(shard).map_err(|_| {
            SourceError::NotFound(format!("stream {stream:?} has no shard {shard:?}"))
        })?;
        let from = sh.tip().saturating_sub(limit as u64).max(sh.trim_horizon());
        let batch = sh
            .read(from, limit, TAIL_BYTES)
            .map_err(|e| SourceError::Failed(format!("reading {shard}: {e}")))?;
        Ok(batch
            .records
            .into_iter()
            .map(|r| Record {
                sequence: h.sequence(sh.index(), r.counter).to_string(),
                arrival_ms: r.arrival_ms,
                partition_key: r.partition_key,
                data: r.data.to_vec(),
            })
            .collect())
    }

    fn lake_list(&self, prefix: &str) -> Result<Vec<LakeEntry>, SourceError> {
        let dir = inside(&self.lake, prefix)?;
        if !dir.is_dir() {
            return if prefix.is_empty() {
                Ok(Vec::new()) // no lake yet
            } else {
                Err(SourceError::NotFound(format!(
                    "no folder {prefix:?} in the lake"
                )))
            };
        }
        let read = std::fs::read_dir(&dir)
            .map_err(|e| SourceError::Failed(format!("listing {prefix:?}: {e}")))?;
        let base = prefix.trim_matches('/');
        let mut out: Vec<LakeEntry> = read
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let meta = e.metadata().ok()?;
                let folder = meta.is_dir();
                let key = match (base.is_empty(), folder) {
                    (true, true) => format!("{name}/"),
                    (true, false) => name.clone(),
                    (false, true) => format!("{base}/{name}/"),
                    (false, false) => format!("{base}/{name}"),
                };
                let modified_ms = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as i64);
                Some(LakeEntry {
                    name,
                    key,
                    folder,
                    bytes: if folder { 0 } else { meta.len() },
                    modified_ms,
                })
            })
            .collect();
        out.sort_by(|a, b| b.folder.cmp(&a.folder).then(a.name.cmp(&b.name)));
        Ok(out)
    }

    fn lake_preview(&self, key: &str, rows: usize) -> Result<Preview, SourceError> {
        let path = inside(&self.lake, key)?;
        if !path.is_file() {
            return Err(SourceError::NotFound(format!(
                "no object {key:?} in the lake"
            )));
        }
        crate::console_preview::preview(&path, rows)
            .map_err(|e| SourceError::Failed(format!("reading {key:?}: {e:#}")))
    }

    fn models(&self) -> Result<Vec<ModelSummary>, SourceError> {
        let models = self
            .registry
            .list()
            .map_err(|e| SourceError::Failed(format!("reading the model registry: {e}")))?;
        Ok(models
            .into_iter()
            .map(|m| ModelSummary {
                name: m.name,
                production: m.production,
                versions: m
                    .versions
                    .into_iter()
                    .map(|v| VersionSummary {
                        version: v.version,
                        stage: v.stage.name().to_owned(),
                        created_ms: v.created_ms,
                        headline: v.headline,
                    })
                    .collect(),
            })
            .collect())
    }

    fn model_metrics(&self, name: &str, version: u32) -> Result<serde_json::Value, SourceError> {
        Registry::check_name(name).map_err(|e| SourceError::NotFound(e.to_string()))?;
        let path = self
            .registry
            .version_dir(name, version)
            .join("metrics.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            SourceError::NotFound(format!(
                "{name}:v{version} has no readable metrics.json: {e}"
            ))
        })?;
        serde_json::from_str(&text)
            .map_err(|e| SourceError::Failed(format!("{name}:v{version} metrics.json: {e}")))
    }
}

/// `rel` (a lake key or prefix from a client) under `root`, refused unless every part is a
/// plain name and the result, symbolic links followed, stays inside `root`.
fn inside(root: &Path, rel: &str) -> Result<PathBuf, SourceError> {
    let outside = || SourceError::NotFound(format!("{rel:?} is not a key in the lake"));
    let rel = rel.trim_end_matches('/');
    let mut path = root.to_path_buf();
    for part in Path::new(rel).components() {
        match part {
            Component::Normal(p) => path.push(p),
            _ => return Err(outside()),
        }
    }
    if path.exists() {
        let (Ok(real), Ok(real_root)) = (path.canonicalize(), root.canonicalize()) else {
            return Err(outside());
        };
        if !real.starts_with(real_root) {
            return Err(outside());
        }
    }
    Ok(path)
}

fn info(h: &millrace_stream::StreamHandle) -> StreamInfo {
    let meta = h.meta();
    let id = |index: u32| h.shard(index).map(|s| s.id()).unwrap_or_default();
    let shards = h
        .shards()
        .iter()
        .map(|sh| {
            let m = meta.shards.iter().find(|m| m.index == sh.index());
            let parents = m
                .map(|m| {
                    [m.parent, m.adjacent_parent]
                        .into_iter()
                        .flatten()
                        .map(id)
                        .collect()
                })
                .unwrap_or_default();
            ShardInfo {
                id: sh.id(),
                open: !sh.is_closed(),
                parents,
                records: sh.tip(),
                retained: sh.tip().saturating_sub(sh.trim_horizon()),
            }
        })
        .collect();
    StreamInfo {
        name: meta.name.clone(),
        mode: meta.mode.as_str().to_owned(),
        retention_hours: meta.retention_hours,
        created_ms: meta.created_ms,
        shards,
    }
}
