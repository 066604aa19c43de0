//! UpdateStreamRecordDistributionStrategy: AUTO spreads records over the shards whatever
//! their keys, USER_PARTITION_KEY routes by key again, PROVISIONED streams refuse it.

use crate::common;

use std::collections::BTreeMap;

use common::TestServer;
use serde_json::{Value, json};

fn arn(name: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}")
}

/// Puts `n` records all keyed "same" (and one explicit hash key); returns records per shard.
async fn put_same_key(s: &TestServer, stream: &str, n: usize) -> BTreeMap<String, usize> {
    let records: Vec<Value> = (0..n)
        .map(|i| json!({"Data": "eA==", "PartitionKey": "same", "ExplicitHashKey": if i % 2 == 0 { "0" } else { "1" }}))
        .collect();
    let b = s
        .ok(
            "PutRecords",
            json!({"StreamName": stream, "Records": records}),
        )
        .await;
    let mut per = BTreeMap::new();
    for r in b["Records"].as_array().unwrap() {
        *per.entry(r["ShardId"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    per
}

async fn set(s: &TestServer, stream: &str, strategy: &str) -> (u16, Value) {
    s.json(
        "UpdateStreamRecordDistributionStrategy",
        json!({"StreamARN": arn(stream), "RecordDistributionStrategy": strategy}),
    )
    .await
}

#[tokio::test]
async fn auto_spreads_records_evenly_and_user_partition_key_routes_by_key_again() {
    let s = TestServer::start().await;
    s.json("CreateStream", json!({"StreamName": "s", "ShardCount": 4}))
        .await;
    s.ok(
        "UpdateStreamMode",
        json!({"StreamARN": arn("s"), "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
    )
    .await;
    let (_, d) = s
        .json("DescribeStreamSummary", json!({"StreamName": "s"}))
        .await;
    assert_eq!(
        d["StreamDescriptionSummary"]["RecordDistributionStrategy"],
        "USER_PARTITION_KEY"
    );
    assert_eq!(
        put_same_key(&s, "s", 400).await.len(),
        1,
        "one key, one shard"
    );

    let (st, b) = set(&s, "s", "AUTO").await;
    assert_eq!(st, 200, "{b}");
    let per = put_same_key(&s, "s", 400).await;
    assert_eq!(per.len(), 4, "{per:?}");
    assert!(
        per.values().all(|n| (90..=110).contains(n)),
        "even: {per:?}"
    );
    // The setting is durable.
    let s = s.restart().await;
    let (_, d) = s
        .json("DescribeStreamSummary", json!({"StreamName": "s"}))
        .await;
    assert_eq!(
        d["StreamDescriptionSummary"]["RecordDistributionStrategy"],
        "AUTO"
    );
    assert_eq!(put_same_key(&s, "s", 40).await.len(), 4);

    let (st, _) = set(&s, "s", "USER_PARTITION_KEY").await;
    assert_eq!(st, 200);
    assert_eq!(put_same_key(&s, "s", 40).await.len(), 1);
}

#[tokio::test]
async fn provisioned_streams_and_bad_values_are_refused() {
    let s = TestServer::start().await;
    s.json("CreateStream", json!({"StreamName": "p", "ShardCount": 2}))
        .await;
    let (st, b) = set(&s, "p", "AUTO").await;
    assert_eq!(
        (st, b["__type"].as_str().unwrap()),
        (400, "InvalidArgumentException"),
        "{b}"
    );
    let (_, b) = set(&s, "p", "RANDOM").await;
    assert_eq!(b["__type"], "ValidationException", "{b}");
    let (_, b) = s
        .json(
            "UpdateStreamRecordDistributionStrategy",
            json!({"StreamARN": arn("p")}),
        )
        .await;
    assert_eq!(b["__type"], "ValidationException", "{b}");
    let (_, b) = set(&s, "missing", "AUTO").await;
    assert_eq!(b["__type"], "ResourceNotFoundException", "{b}");
    let (_, d) = s
        .json("DescribeStreamSummary", json!({"StreamName": "p"}))
        .await;
    assert!(
        d["StreamDescriptionSummary"]
            .get("RecordDistributionStrategy")
            .is_none()
    );
}
