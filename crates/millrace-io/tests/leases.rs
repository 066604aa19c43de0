//! Shard leases on an object store (`memory://`, one store shared by clones; S3 through moto
//! in tests/compat/serve_flows.py): readers split a stream's shards, a reader that joins gets
//! its share once the others' readers come back, a checkpoint follows its shard to the next
//! holder, and a reader that stopped renewing loses its shards and cannot store for them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use millrace_io::{EmbeddedSource, IoError, Leases, RecordSource, SharedCheckpoints};
use millrace_lake::{Lake, S3Options};
use millrace_stream::{Store, StoreOptions, StreamMode};

const TTL: Duration = Duration::from_millis(600);

fn ended(checkpoint: &[u8]) -> bool {
    checkpoint.starts_with(b"ended")
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "waited too long for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a reader does between reads: it comes back for each shard it holds, which lets a
/// shard being handed over go.
async fn read_each(leases: &Leases) {
    for shard in leases.held() {
        match leases.read(&shard, None, Duration::ZERO).await {
            Ok(_) | Err(IoError::NotOwned { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_share_the_shards_and_checkpoints_follow_them() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(tmp.path(), StoreOptions::default()).unwrap());
    let stream = store
        .create(
            "s",
            StreamMode::Provisioned,
            Some(4),
            24,
            Default::default(),
        )
        .unwrap();
    let source: Arc<dyn RecordSource> = Arc::new(EmbeddedSource::new(stream));
    let lake = Lake::open("memory://", &S3Options::default()).unwrap();
    let start = || Leases::start(source.clone(), "s", lake.clone(), "scoring-x", TTL, ended);

    let a = start();
    assert_eq!(
        a.lineage().await.unwrap().len(),
        4,
        "alone, a reader takes every shard"
    );
    let shard = a.held()[0].clone();
    SharedCheckpoints::store(&a, &shard, Some("7"), b"{\"at\": 7}").unwrap();

    let b = start();
    // The handover waits for A's reader to come back: drive it meanwhile.
    let started = Instant::now();
    while !(a.held().len() == 2 && b.held().len() == 2) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "A {:?}, B {:?}",
            a.held(),
            b.held()
        );
        read_each(&a).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all: BTreeSet<String> = a.held().into_iter().chain(b.held()).collect();
    assert_eq!(all.len(), 4, "the two readers hold different shards");

    // Whoever holds `shard` now sees the checkpoint stored for it.
    let holder = if a.held().contains(&shard) { &a } else { &b };
    assert_eq!(
        SharedCheckpoints::load(holder, &shard).unwrap().as_deref(),
        Some(&b"{\"at\": 7}"[..])
    );
    // A reader refuses shards it does not hold.
    let other = if std::ptr::eq(holder, &a) { &b } else { &a };
    let e = other.read(&shard, None, Duration::ZERO).await.unwrap_err();
    assert!(matches!(e, IoError::NotOwned { .. }), "{e}");
    let e = SharedCheckpoints::store(other, &shard, None, b"{}").unwrap_err();
    assert!(matches!(e, IoError::NotOwned { .. }), "{e}");

    // A stops renewing (killed): after the lease time B takes its shards, checkpoints and all.
    let a_shards = a.held();
    drop(a);
    wait_for("the survivor holding every shard", || b.held().len() == 4).await;
    for s in &a_shards {
        assert!(b.held().contains(s));
    }
    assert_eq!(
        SharedCheckpoints::load(&b, &shard).unwrap().as_deref(),
        Some(&b"{\"at\": 7}"[..])
    );
    assert_eq!(SharedCheckpoints::all(&b).unwrap().len(), 1);

    // A shard whose checkpoint says it ended is let go and never taken again.
    SharedCheckpoints::store(&b, &shard, Some("9"), b"ended").unwrap();
    let started = Instant::now();
    while b.held().contains(&shard) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the ended shard is still held"
        );
        // Let-go shards are released at the reader's next read.
        read_each(&b).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A reader that stops lets its leases go for the next one.
    b.release_all().await;
    assert!(b.held().is_empty());
    drop(b);
    let c = start();
    wait_for("a new reader taking the three live shards", || {
        c.held().len() == 3
    })
    .await;
    assert!(!c.held().contains(&shard));
}
