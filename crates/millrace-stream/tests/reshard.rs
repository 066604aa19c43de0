//! Resharding through the store's public API: splits, merges and uniform scaling close
//! parents and open children with Kinesis's rules; a reader that finishes parents before
//! children reads every record exactly once, in order per partition key, across any sequence
//! of reshards and restarts (a property test).

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use millrace_stream::{PutInput, Store, StoreOptions, StreamError, StreamMode};
use proptest::prelude::*;

fn input(key: &str, data: String) -> PutInput {
    PutInput {
        partition_key: key.into(),
        explicit_hash_key: None,
        data: Bytes::from(data),
    }
}

/// Reads the whole stream the way a Kinesis consumer that follows lineage does: a shard is
/// read (to its end) only after all its parents were. Returns (key, data) in read order.
fn read_by_lineage(store: &Store, name: &str) -> Vec<(String, String)> {
    let s = store.stream(name).unwrap();
    let meta = s.meta();
    let mut done: HashSet<u32> = HashSet::new();
    let mut out = Vec::new();
    while done.len() < meta.shards.len() {
        let ready: Vec<u32> = meta
            .shards
            .iter()
            .filter(|m| !done.contains(&m.index) && m.parents().all(|p| done.contains(&p)))
            .map(|m| m.index)
            .collect();
        assert!(
            !ready.is_empty(),
            "the shard map has a cycle or a missing parent"
        );
        for i in ready {
            let shard = s.shard(i).unwrap();
            let batch = shard.read(0, usize::MAX, usize::MAX).unwrap();
            if let Some(end) = meta.shards[i as usize].closed {
                assert_eq!(
                    batch.next, end.next_counter,
                    "a closed shard ends where its map says"
                );
            }
            for r in batch.records {
                out.push((r.partition_key, String::from_utf8(r.data.to_vec()).unwrap()));
            }
            done.insert(i);
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Step {
    Put(u8),
    Split(u8, u8),
    Merge(u8),
    Scale(u8),
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (1u8..40).prop_map(Step::Put),
        2 => (any::<u8>(), 1u8..255).prop_map(|(s, f)| Step::Split(s, f)),
        2 => any::<u8>().prop_map(Step::Merge),
        1 => (1u8..8).prop_map(Step::Scale),
        1 => Just(Step::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
    ))]

    #[test]
    fn every_record_once_in_key_order_across_reshards(steps in prop::collection::vec(step(), 1..24)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.create("s", StreamMode::Provisioned, Some(2), 24, BTreeMap::new()).unwrap();
        let mut written: HashMap<String, Vec<String>> = HashMap::new();
        let mut n = 0usize;
        for st in steps {
            let s = store.stream("s").unwrap();
            match st {
                Step::Put(count) => {
                    let inputs: Vec<PutInput> = (0..count as usize)
                        .map(|i| {
                            n += 1;
                            let key = format!("k{}", (n * 7 + i) % 13);
                            written.entry(key.clone()).or_default().push(format!("r{n}"));
                            input(&key, format!("r{n}"))
                        })
                        .collect();
                    for r in rt.block_on(s.put(inputs)) {
                        r.unwrap();
                    }
                }
                Step::Split(pick, frac) => {
                    let open = s.open_ranges();
                    let (range, index) = open[pick as usize % open.len()];
                    let width = range.end - range.start;
                    let at = range.start + width / 255 * u128::from(frac);
                    let res = store.split_shard("s", &format!("shardId-{index:012}"), at);
                    if at > range.start + 1 && at < range.end {
                        res.unwrap();
                    } else {
                        prop_assert!(matches!(res, Err(StreamError::InvalidArgument(_))));
                    }
                }
                Step::Merge(pick) => {
                    let open = s.open_ranges();
                    if open.len() > 1 {
                        let i = pick as usize % (open.len() - 1);
                        store
                            .merge_shards(
                                "s",
                                &format!("shardId-{:012}", open[i + 1].1),
                                &format!("{}", open[i].1),
                            )
                            .unwrap();
                    }
                }
                Step::Scale(target) => {
                    let current = s.open_shard_count();
                    let target = u32::from(target);
                    let res = store.update_shard_count("s", target);
                    if target <= current * 2 && target >= current.div_ceil(2) {
                        res.unwrap();
                        prop_assert_eq!(store.stream("s").unwrap().open_shard_count(), target);
                    } else {
                        prop_assert!(res.is_err());
                    }
                }
                Step::Restart => {
                    drop(s);
                    store.shutdown();
                    store = Store::open(dir.path(), StoreOptions::default()).unwrap();
                }
            }
            // Open ranges always tile the key space.
            let open = store.stream("s").unwrap().open_ranges();
            prop_assert_eq!(open[0].0.start, 0);
            prop_assert_eq!(open.last().unwrap().0.end, u128::MAX);
            for w in open.windows(2) {
                prop_assert_eq!(w[0].0.end + 1, w[1].0.start);
            }
        }
        let read = read_by_lineage(&store, "s");
        prop_assert_eq!(read.len(), n, "every record once");
        let mut per_key: HashMap<String, Vec<String>> = HashMap::new();
        for (k, d) in read {
            per_key.entry(k).or_default().push(d);
        }
        prop_assert_eq!(per_key, written, "in order per partition key");
        store.shutdown();
    }
}

/// Reshards are blocking calls (they fsync), so this test runs them outside any runtime.
#[test]
fn split_and_merge_follow_kinesis_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store
        .create("r", StreamMode::Provisioned, Some(2), 24, BTreeMap::new())
        .unwrap();
    let s = store.stream("r").unwrap();
    let half = s.open_ranges()[1].0.start;
    // Not strictly inside the shard, or not more than one above its start.
    for bad in [0, 1, half - 1] {
        let e = store
            .split_shard("r", "shardId-000000000000", bad)
            .unwrap_err();
        assert!(matches!(e, StreamError::InvalidArgument(_)), "{bad}: {e}");
    }
    store
        .split_shard("r", "shardId-000000000000", half / 2)
        .unwrap();
    let meta = s.meta();
    assert_eq!(meta.shards.len(), 4);
    assert!(meta.shards[0].closed.is_some());
    assert_eq!(meta.shards[2].parent, Some(0));
    assert_eq!(meta.shards[3].range.start, half / 2);
    // A closed shard can be neither split nor merged again.
    let e = store.split_shard("r", "0", half / 4).unwrap_err();
    assert!(matches!(e, StreamError::ResourceInUse(_)), "{e}");
    // Shards 2 and 1 do not touch; 3 and 1 do.
    let e = store
        .merge_shards("r", "shardId-000000000002", "shardId-000000000001")
        .unwrap_err();
    assert!(matches!(e, StreamError::InvalidArgument(_)), "{e}");
    store
        .merge_shards("r", "shardId-000000000003", "shardId-000000000001")
        .unwrap();
    let meta = s.meta();
    assert_eq!(meta.shards[4].parent, Some(3));
    assert_eq!(meta.shards[4].adjacent_parent, Some(1));
    assert_eq!(meta.open_shards().count(), 2);
    // Unknown shard.
    let e = store
        .split_shard("r", "shardId-000000000042", 5)
        .unwrap_err();
    assert!(matches!(e, StreamError::ShardNotFound { .. }), "{e}");
    // The map survives a restart; closed shards take no records.
    drop(s);
    store.shutdown();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let s = store.stream("r").unwrap();
    assert_eq!(s.meta().open_shards().count(), 2);
    assert!(s.shard(0).unwrap().is_closed());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = rt.block_on(s.put(vec![input("any", "x".into())]));
    let placed = out[0].as_ref().unwrap().shard;
    assert!(placed == 2 || placed == 4, "placed in open shard {placed}");
    store.shutdown();
}

/// Puts keep going while another thread reshards: nothing is lost or duplicated, and each
/// key's records stay in order (records that meet a closed shard are routed to its child).
#[test]
fn puts_during_reshards_lose_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(dir.path(), StoreOptions::default()).unwrap());
    store
        .create("c", StreamMode::Provisioned, Some(2), 24, BTreeMap::new())
        .unwrap();
    let s = store.stream("c").unwrap();
    let producer = rt.spawn(async move {
        let mut written: HashMap<String, Vec<String>> = HashMap::new();
        for batch in 0..300 {
            let inputs: Vec<PutInput> = (0..10)
                .map(|i| {
                    let key = format!("k{}", (batch + i) % 11);
                    let data = format!("{batch}-{i}");
                    written.entry(key.clone()).or_default().push(data.clone());
                    input(&key, data)
                })
                .collect();
            for r in s.put(inputs).await {
                r.unwrap();
            }
        }
        written
    });
    let resharder = {
        let store = store.clone();
        std::thread::spawn(move || {
            for round in 0..6 {
                let target = if round % 2 == 0 { 4 } else { 2 };
                store.update_shard_count("c", target).unwrap();
            }
        })
    };
    resharder.join().unwrap();
    let written = rt.block_on(producer).unwrap();
    let mut per_key: HashMap<String, Vec<String>> = HashMap::new();
    for (k, d) in read_by_lineage(&store, "c") {
        per_key.entry(k).or_default().push(d);
    }
    assert_eq!(per_key, written);
    assert!(store.stream("c").unwrap().meta().shards.len() > 10);
    store.shutdown();
}
