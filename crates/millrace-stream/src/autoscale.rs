//! Capacity of ON_DEMAND streams: the shard count follows the write rate by the same splits
//! a client would ask for. Each pass compares every open shard's tip with the last pass; a
//! shard that took more than a provisioned shard's write limit (1,000 records/s) on average
//! is split at the middle of its hash-key range. Shards are not merged back (Kinesis keeps an
//! on-demand stream's capacity at its recent peak).

use std::collections::HashMap;
use std::time::Instant;

use crate::error::Result;
use crate::meta::StreamMode;
use crate::store::Store;

/// Records per second per shard above which an on-demand shard is split.
pub const SPLIT_ABOVE_RECORDS_PER_SEC: f64 = 1000.0;

/// Tips seen at the last pass, per (stream, incarnation, shard).
#[derive(Debug, Default)]
pub struct OnDemandScaler {
    last: HashMap<(String, i64, u32), (u64, Instant)>,
}

impl OnDemandScaler {
    pub fn new() -> Self {
        Self::default()
    }

    /// One pass at time `now`; returns the shards split as (stream, shard index). Blocking
    /// (a split fsyncs). A split the account's shard quota refuses is skipped with a warning.
    pub fn pass(&mut self, store: &Store, now: Instant) -> Result<Vec<(String, u32)>> {
        let mut split = Vec::new();
        let mut seen = HashMap::new();
        for summary in store.list() {
            if summary.mode != StreamMode::OnDemand {
                continue;
            }
            let Ok(stream) = store.stream(&summary.name) else {
                continue;
            };
            for (range, index) in stream.open_ranges() {
                let Some(shard) = stream.shard(index) else {
                    continue;
                };
                let key = (summary.name.clone(), summary.created_ms, index);
                let tip = shard.tip();
                if let Some(&(before, at)) = self.last.get(&key) {
                    let secs = now.saturating_duration_since(at).as_secs_f64();
                    let rate = tip.saturating_sub(before) as f64 / secs.max(1e-3);
                    if secs > 0.0
                        && rate > SPLIT_ABOVE_RECORDS_PER_SEC
                        && range.end - range.start > 2
                    {
                        let middle = range.start + (range.end - range.start) / 2 + 1;
                        match store.split_shard(&summary.name, &shard.id(), middle) {
                            Ok(()) => {
                                tracing::info!(stream = %summary.name, shard = index, rate, "on-demand stream split a busy shard");
                                split.push((summary.name.clone(), index));
                            }
                            Err(e) => {
                                tracing::warn!(stream = %summary.name, shard = index, error = %e, "on-demand split refused")
                            }
                        }
                        continue;
                    }
                }
                seen.insert(key, (tip, now));
            }
        }
        self.last = seen;
        Ok(split)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::options::StoreOptions;
    use crate::store::PutInput;

    #[test]
    fn a_busy_on_demand_shard_is_split_and_a_quiet_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            on_demand_shards: 2,
            ..StoreOptions::default()
        };
        let store = Store::open(dir.path(), opts).unwrap();
        store
            .create("od", StreamMode::OnDemand, None, 24, BTreeMap::new())
            .unwrap();
        store
            .create(
                "prov",
                StreamMode::Provisioned,
                Some(1),
                24,
                BTreeMap::new(),
            )
            .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut scaler = OnDemandScaler::new();
        let t0 = Instant::now();
        assert!(scaler.pass(&store, t0).unwrap().is_empty());
        // 3,000 records in "one second", all to the hash keys of shard 0.
        for name in ["od", "prov"] {
            let inputs = (0..3000)
                .map(|i| PutInput {
                    partition_key: format!("k{i}"),
                    explicit_hash_key: Some(i as u128),
                    data: Bytes::from_static(b"x"),
                })
                .collect();
            for r in rt.block_on(store.stream(name).unwrap().put(inputs)) {
                r.unwrap();
            }
        }
        let split = scaler.pass(&store, t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(split, [("od".to_owned(), 0)]);
        assert_eq!(store.stream("od").unwrap().open_shard_count(), 3);
        assert_eq!(store.stream("prov").unwrap().open_shard_count(), 1);
        // Quiet now: nothing more.
        assert!(
            scaler
                .pass(&store, t0 + Duration::from_secs(2))
                .unwrap()
                .is_empty()
        );
        assert!(
            scaler
                .pass(&store, t0 + Duration::from_secs(3))
                .unwrap()
                .is_empty()
        );
        store.shutdown();
    }
}
