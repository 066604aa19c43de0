//! The console's view of a running `up`: the admin API's status document and the stream
//! store, behind [`millrace_console::Source`].

use std::sync::Arc;

use millrace_console::{Record, ShardInfo, SourceError, StreamInfo};

use crate::admin::Admin;

/// Bytes one record-browser read may return at most.
const TAIL_BYTES: usize = 16 << 20;

pub struct ConsoleSource {
    pub admin: Arc<Admin>,
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
