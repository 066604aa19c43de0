//! Behaviour of the embedded store through its public API: routing, ordering, durability
//! across reopen, positions by sequence and time, segment rolling and retention.

use std::collections::BTreeMap;

use bytes::Bytes;
use millrace_stream::{
    FsyncPolicy, PutInput, Store, StoreOptions, StreamMode, hash_key_for_partition_key,
};

fn opts(segment_bytes: u64) -> StoreOptions {
    StoreOptions {
        segment_bytes,
        ..StoreOptions::default()
    }
}

fn input(key: &str, data: &str) -> PutInput {
    PutInput {
        partition_key: key.into(),
        explicit_hash_key: None,
        data: Bytes::from(data.to_owned()),
    }
}

#[tokio::test]
async fn records_route_by_md5_and_read_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(1024)).unwrap();
    let s = store
        .create(
            "orders",
            StreamMode::Provisioned,
            Some(3),
            24,
            BTreeMap::new(),
        )
        .unwrap();
    let inputs: Vec<_> = (0..500)
        .map(|i| {
            input(
                &format!("key-{}", i % 37),
                &format!("record {i} {}", "x".repeat(i % 50)),
            )
        })
        .collect();
    let results = s.put(inputs.clone()).await;
    let mut per_shard: Vec<Vec<(u64, Bytes)>> = vec![Vec::new(); 3];
    for (inp, res) in inputs.iter().zip(&results) {
        let out = res.as_ref().unwrap();
        let h = hash_key_for_partition_key(&inp.partition_key);
        assert!(s.meta().shards[out.shard as usize].range.contains(h));
        per_shard[out.shard as usize].push((out.sequence.counter, inp.data.clone()));
    }
    for (i, expected) in per_shard.iter().enumerate() {
        let shard = s.shard(i as u32).unwrap();
        let batch = shard.read(0, 10_000, usize::MAX).unwrap();
        let got: Vec<_> = batch
            .records
            .iter()
            .map(|r| (r.counter, r.data.clone()))
            .collect();
        assert_eq!(&got, expected, "shard {i}");
        assert_eq!(batch.next, shard.tip());
        // Small segments: the log rolled many times and reads cross segment boundaries.
        let files = std::fs::read_dir(dir.path().join(format!("streams/orders/shard-{i:06}")))
            .unwrap()
            .count();
        assert!(files > 2, "expected several segments, got {files}");
    }
}

#[tokio::test]
async fn reads_resume_from_any_counter_and_respect_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(2048)).unwrap();
    let s = store
        .create("one", StreamMode::Provisioned, Some(1), 24, BTreeMap::new())
        .unwrap();
    let inputs: Vec<_> = (0..300).map(|i| input("k", &format!("{i:04}"))).collect();
    s.put(inputs).await;
    let shard = s.shard(0).unwrap();
    for from in [0u64, 1, 57, 150, 299] {
        let b = shard.read(from, 10, usize::MAX).unwrap();
        let want: Vec<_> = (from..(from + 10).min(300)).collect();
        assert_eq!(
            b.records.iter().map(|r| r.counter).collect::<Vec<_>>(),
            want
        );
        assert_eq!(b.records[0].data, Bytes::from(format!("{from:04}")));
    }
    let b = shard.read(0, 10_000, 20).unwrap();
    assert_eq!(
        b.records.len(),
        5,
        "byte limit stops after the record that crosses it"
    );
    assert_eq!(shard.read(300, 10, usize::MAX).unwrap().records.len(), 0);
}

#[tokio::test]
async fn reopen_keeps_everything_and_continues_counters() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), opts(1 << 20)).unwrap();
        let s = store
            .create("s", StreamMode::OnDemand, None, 48, BTreeMap::new())
            .unwrap();
        assert_eq!(s.shards().len(), 4);
        s.put((0..100).map(|i| input(&i.to_string(), "a")).collect())
            .await;
        store.shutdown();
    }
    let store = Store::open(dir.path(), opts(1 << 20)).unwrap();
    let s = store.stream("s").unwrap();
    assert_eq!(s.meta().retention_hours, 48);
    let before: u64 = s.shards().iter().map(|sh| sh.tip()).sum();
    assert_eq!(before, 100);
    let out = s.put(vec![input("0", "b")]).await;
    let out = out[0].as_ref().unwrap();
    let shard = s.shard(out.shard).unwrap();
    let all = shard.read(0, 10_000, usize::MAX).unwrap().records;
    assert_eq!(all.last().unwrap().data, Bytes::from("b"));
    let counters: Vec<_> = all.iter().map(|r| r.counter).collect();
    assert!(
        counters.windows(2).all(|w| w[1] == w[0] + 1),
        "{counters:?}"
    );
}

#[tokio::test]
async fn torn_tail_is_cut_and_writes_continue() {
    let dir = tempfile::tempdir().unwrap();
    let seg_dir = dir.path().join("streams/t/shard-000000");
    {
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let s = store
            .create("t", StreamMode::Provisioned, Some(1), 24, BTreeMap::new())
            .unwrap();
        s.put((0..10).map(|i| input("k", &format!("r{i}"))).collect())
            .await;
        store.shutdown();
    }
    // Simulate a crash mid-write: half an entry at the end of the newest segment.
    let seg = std::fs::read_dir(&seg_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let good = bytes.len();
    bytes.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&seg, &bytes).unwrap();

    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(std::fs::metadata(&seg).unwrap().len() as usize, good);
    let s = store.stream("t").unwrap();
    s.put(vec![input("k", "after")]).await[0].as_ref().unwrap();
    let recs = s
        .shard(0)
        .unwrap()
        .read(0, 100, usize::MAX)
        .unwrap()
        .records;
    let data: Vec<_> = recs
        .iter()
        .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
        .collect();
    let mut want: Vec<_> = (0..10).map(|i| format!("r{i}")).collect();
    want.push("after".into());
    assert_eq!(data, want);
}

#[tokio::test]
async fn time_positions_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(512)).unwrap();
    let s = store
        .create("r", StreamMode::Provisioned, Some(1), 24, BTreeMap::new())
        .unwrap();
    s.put(
        (0..20)
            .map(|i| input("k", &format!("early-{i:03}")))
            .collect(),
    )
    .await;
    std::thread::sleep(std::time::Duration::from_millis(30));
    let mid = millrace_stream::now_ms();
    std::thread::sleep(std::time::Duration::from_millis(5));
    s.put(
        (0..20)
            .map(|i| input("k", &format!("late-{i:03}")))
            .collect(),
    )
    .await;
    let shard = s.shard(0).unwrap();
    assert_eq!(shard.counter_at_time(mid).unwrap(), 20);
    assert_eq!(shard.counter_at_time(0).unwrap(), 0);
    assert_eq!(shard.counter_at_time(i64::MAX).unwrap(), 40);

    // Nothing is old enough yet.
    assert_eq!(
        store.enforce_retention(millrace_stream::now_ms()).unwrap(),
        0
    );
    // Pretend 24 h passed since `mid`: segments holding only early records go.
    let removed = store.enforce_retention(mid + 24 * 3_600_000).unwrap();
    assert!(removed > 0);
    let horizon = shard.trim_horizon();
    assert!(horizon > 0 && horizon <= 20, "horizon {horizon}");
    let recs = shard.read(0, 100, usize::MAX).unwrap().records;
    assert_eq!(recs[0].counter, horizon);
    assert_eq!(recs.last().unwrap().counter, 39);
    assert!(recs.iter().any(|r| r.data.starts_with(b"late")));
}

#[tokio::test]
async fn every_fsync_policy_acknowledges_and_persists() {
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::Group { interval_ms: 2 },
        FsyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let o = StoreOptions {
            fsync: policy,
            ..StoreOptions::default()
        };
        {
            let store = Store::open(dir.path(), o.clone()).unwrap();
            let s = store
                .create("p", StreamMode::Provisioned, Some(2), 24, BTreeMap::new())
                .unwrap();
            let res = s
                .put((0..50).map(|i| input(&i.to_string(), "d")).collect())
                .await;
            assert!(res.iter().all(|r| r.is_ok()));
            store.shutdown();
        }
        let store = Store::open(dir.path(), o).unwrap();
        let s = store.stream("p").unwrap();
        assert_eq!(
            s.shards().iter().map(|sh| sh.tip()).sum::<u64>(),
            50,
            "{policy:?}"
        );
    }
}

#[tokio::test]
async fn create_delete_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            max_shards: 5,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    store
        .create("a", StreamMode::Provisioned, Some(3), 24, BTreeMap::new())
        .unwrap();
    assert!(matches!(
        store.create("a", StreamMode::Provisioned, Some(1), 24, BTreeMap::new()),
        Err(millrace_stream::StreamError::StreamExists(_))
    ));
    assert!(matches!(
        store.create("b", StreamMode::Provisioned, Some(3), 24, BTreeMap::new()),
        Err(millrace_stream::StreamError::LimitExceeded(_))
    ));
    store.delete("a").unwrap();
    assert!(!dir.path().join("streams/a").exists());
    assert!(matches!(
        store.stream("a"),
        Err(millrace_stream::StreamError::StreamNotFound(_))
    ));
    store
        .create("b", StreamMode::Provisioned, Some(5), 24, BTreeMap::new())
        .unwrap();
    assert_eq!(store.list().len(), 1);
}

#[tokio::test]
async fn records_over_the_api_limits_are_refused_from_any_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(64 << 20)).unwrap();
    let s = store
        .create("one", StreamMode::Provisioned, Some(1), 24, BTreeMap::new())
        .unwrap();
    let max = millrace_stream::limits::RECORD_MAX_DATA_BYTES;
    let mut big = input("k", "");
    // The limit counts the partition key's bytes with the data, as Kinesis does.
    big.data = Bytes::from(vec![0x80; max]);
    let mut at_limit = input(&"é".repeat(256), "");
    at_limit.data = Bytes::from(vec![0x80; max - 512]);
    let results = s
        .put(vec![
            input("k", "before"),
            big,
            input(&"k".repeat(257), "long key"),
            at_limit,
            input("k", "after"),
        ])
        .await;
    assert!(matches!(
        &results[1],
        Err(millrace_stream::StreamError::RecordTooLarge { bytes, .. }) if *bytes == max + 1
    ));
    assert!(matches!(
        &results[2],
        Err(millrace_stream::StreamError::PartitionKeyLength { chars: 257, .. })
    ));
    let stored: Vec<u64> = [0, 3, 4]
        .iter()
        .map(|&i| results[i].as_ref().unwrap().sequence.counter)
        .collect();
    assert_eq!(stored, [0, 1, 2]);
    drop(s);
    store.shutdown();
    // The record at the limit (1 MiB and a 512-byte key) reads back after a reopen.
    let store = Store::open(dir.path(), opts(64 << 20)).unwrap();
    let batch = store
        .stream("one")
        .unwrap()
        .shard(0)
        .unwrap()
        .read(0, 10, usize::MAX)
        .unwrap();
    let sizes: Vec<usize> = batch.records.iter().map(|r| r.data.len()).collect();
    assert_eq!(sizes, [6, max - 512, 5]);
}
