//! Members AWS validates, validated the same way by `millrace up`'s Kinesis API: raw AWS JSON
//! requests (what any SDK sends) with impossible timestamps and malformed ARNs get AWS's error
//! types, and well-formed ones still work.

use crate::common;

use std::time::Duration;

use common::{Server, ServerLogs};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(60);

/// POSTs one Kinesis operation; returns the status, the `__type` of an error and the body.
async fn call(url: &str, op: &str, body: Value) -> (u16, String, Value) {
    let answer = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/x-amz-json-1.1")
        .header("X-Amz-Target", format!("Kinesis_20131202.{op}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let kind = body["__type"].as_str().unwrap_or("").to_owned();
    (status, kind, body)
}

fn start(dir: &std::path::Path) -> Server {
    let mut logs = ServerLogs::new(dir.join("logs"));
    Server::start(
        &dir.join("data"),
        [
            "--kinesis-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ],
        None,
        &["kinesis"],
        PATIENCE,
        logs.next(),
    )
}

async fn stream_with_shard(url: &str) -> String {
    let (status, _, body) = call(
        url,
        "CreateStream",
        json!({"StreamName": "s1", "ShardCount": 1}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..100 {
        let (_, _, body) = call(url, "ListShards", json!({"StreamName": "s1"})).await;
        if let Some(id) = body["Shards"][0]["ShardId"].as_str() {
            return id.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no shard for s1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_at_timestamp_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let url = server.url("kinesis").to_owned();
    let shard = stream_with_shard(&url).await;
    let iterator = |ts: Value| json!({"StreamName": "s1", "ShardId": shard, "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": ts});
    for bad in [
        "9999-99-99T99:99:99Z",
        "2026-02-30T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "yesterday",
    ] {
        let (status, kind, body) = call(&url, "GetShardIterator", iterator(json!(bad))).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(kind, "SerializationException", "{bad}: {body}");
    }
    for good in [
        json!("2026-02-28T23:59:59.5Z"),
        json!("2026-02-28T23:59:59+02:00"),
        json!(1_700_000_000.5),
    ] {
        let (status, _, body) = call(&url, "GetShardIterator", iterator(good.clone())).await;
        assert_eq!(status, 200, "{good}: {body}");
        assert!(body["ShardIterator"].is_string(), "{good}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_stream_arn_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let url = server.url("kinesis").to_owned();
    stream_with_shard(&url).await;
    for bad in [
        "arn:x:stream/s1",
        "arn:aws:s3:us-east-1:000000000000:stream/s1",
        "arn:aws:kinesis:us-east-1:0000:stream/s1",
        "arn:aws:kinesis:us-east-1:000000000000:table/s1",
    ] {
        let (status, kind, body) =
            call(&url, "DescribeStreamSummary", json!({"StreamARN": bad})).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(kind, "ValidationException", "{bad}: {body}");
    }
    let good = "arn:aws:kinesis:us-east-1:000000000000:stream/s1";
    let (status, _, body) = call(&url, "DescribeStreamSummary", json!({"StreamARN": good})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["StreamDescriptionSummary"]["StreamName"], "s1");
}
