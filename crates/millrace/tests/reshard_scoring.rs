//! Streaming inference across reshards, end to end through the real binary: `up` scores a
//! stream while it is split and merged through the Kinesis API and killed with -9 in between;
//! every input gets exactly one prediction, and each partition key's predictions keep the
//! order of its inputs (the scorer reads children only after their parents ended, and its
//! checkpoints remember which shards ended).

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use common::kinesis::{client, iterator, read_from, wait_active};
use common::{Server, ServerLogs, train_tiny};

const PATIENCE: Duration = Duration::from_secs(90);

fn start(data: &Path, config: &str, logs: &mut ServerLogs) -> Server {
    Server::start(
        data,
        [
            "--kinesis-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "-c",
            config,
        ],
        None,
        &["kinesis"],
        PATIENCE,
        logs.next(),
    )
}

/// Puts inputs `ids` one request each (keys k0..k6), in order.
async fn put(kinesis: &Client, ids: std::ops::Range<usize>) {
    for i in ids {
        let x = (i * 37 % 100) as f64 / 100.0;
        kinesis
            .put_record()
            .stream_name("in")
            .partition_key(format!("k{}", i % 7))
            .data(Blob::new(format!(r#"{{"id":"r{i}","x":{x},"z":0.5}}"#)))
            .send()
            .await
            .unwrap();
    }
}

/// Every record of every shard of `stream` (all shards: the output stream is not resharded).
async fn read_stream(kinesis: &Client, stream: &str) -> Vec<serde_json::Value> {
    let Ok(listed) = kinesis.list_shards().stream_name(stream).send().await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in listed.shards() {
        let it = iterator(
            kinesis,
            stream,
            s.shard_id(),
            ShardIteratorType::TrimHorizon,
            None,
        )
        .await;
        for r in read_from(kinesis, s.shard_id(), it, PATIENCE).await {
            out.push(serde_json::from_slice(&r.data).unwrap());
        }
    }
    out
}

async fn wait_for(kinesis: &Client, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let preds = read_stream(kinesis, "preds").await;
        if preds.len() >= n {
            return preds;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} predictions",
            preds.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_input_is_scored_once_in_key_order_across_splits_merges_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut logs = ServerLogs::new(dir.path().join("logs"));
    train_tiny(&data, dir.path());
    let config = dir.path().join("millrace.toml");
    std::fs::write(
        &config,
        "[[stream]]\nname = \"in\"\nshards = 2\n\n\
         [[scoring]]\nstream = \"in\"\nmodel = \"m\"\nto_stream = \"preds\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let mut server = start(&data, config, &mut logs);
    let kinesis = client(server.url("kinesis")).await;
    wait_active(&kinesis, "in", 2, PATIENCE).await;
    put(&kinesis, 0..150).await;
    kinesis
        .split_shard()
        .stream_name("in")
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 126).to_string())
        .send()
        .await
        .unwrap();
    put(&kinesis, 150..300).await;
    wait_for(&kinesis, 300).await;
    // kill -9 once the parent ended: the restarted scorer must not read it again, nor skip
    // its children.
    server.kill9();
    let server = start(&data, config, &mut logs);
    let kinesis = client(server.url("kinesis")).await;
    put(&kinesis, 300..400).await;
    kinesis
        .merge_shards()
        .stream_name("in")
        .shard_to_merge("shardId-000000000003")
        .adjacent_shard_to_merge("shardId-000000000001")
        .send()
        .await
        .unwrap();
    put(&kinesis, 400..550).await;
    let preds = wait_for(&kinesis, 550).await;
    // Give a duplicate time to show up, then check again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let preds = if read_stream(&kinesis, "preds").await.len() > preds.len() {
        read_stream(&kinesis, "preds").await
    } else {
        preds
    };
    let ids: Vec<&str> = preds.iter().map(|p| p["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), 550, "every input scored");
    assert_eq!(ids.len(), 550, "and only once");
    // Per key (the output's partition key is the input's), predictions in input order.
    let mut per_key: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for id in &ids {
        let n: usize = id[1..].parse().unwrap();
        per_key.entry(n % 7).or_default().push(n);
    }
    for (k, ns) in per_key {
        assert!(
            ns.windows(2).all(|w| w[0] < w[1]),
            "key k{k} out of order: {ns:?}"
        );
    }
    drop(server);
}
