//! Opt-in per-shard throughput limits (`StoreOptions::enforce_limits`, a stream's own
//! `enforce_limits`) and fault injection (`StoreOptions::fault_probability`), over the wire.

use crate::common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::TestServer;
use millrace_stream::StoreOptions;
use serde_json::{Value, json};

const EXCEEDED: &str = "ProvisionedThroughputExceededException";

async fn server(enforce_limits: bool, fault_probability: f64) -> TestServer {
    let s = TestServer::start_with(StoreOptions {
        enforce_limits,
        fault_probability,
        fault_seed: Some(11),
        ..StoreOptions::default()
    })
    .await;
    let (status, body) = s
        .json("CreateStream", json!({"StreamName": "s", "ShardCount": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    s
}

fn records(from: usize, n: usize) -> Value {
    Value::Array(
        (from..from + n)
            .map(|i| json!({"PartitionKey": format!("k{i}"), "Data": B64.encode(format!("r{i}"))}))
            .collect(),
    )
}

/// 2,000 records in four concurrent PutRecords; the sequence numbers stored and the number
/// refused as over the shard's throughput.
async fn put_2000(s: &TestServer) -> (Vec<String>, usize) {
    let calls = (0..4).map(|c| {
        s.json(
            "PutRecords",
            json!({"StreamName": "s", "Records": records(c * 500, 500)}),
        )
    });
    let mut stored = Vec::new();
    let mut refused = 0;
    for (status, body) in futures::future::join_all(calls).await {
        assert_eq!(status, 200, "{body}");
        let mut failed = 0;
        for r in body["Records"].as_array().unwrap() {
            match r["SequenceNumber"].as_str() {
                Some(seq) => stored.push(seq.to_owned()),
                None => {
                    failed += 1;
                    assert_eq!(r["ErrorCode"], EXCEEDED, "{r}");
                    assert_eq!(
                        r["ErrorMessage"],
                        "Rate exceeded for shard shardId-000000000000 in stream s under \
                         account 000000000000.",
                    );
                }
            }
        }
        assert_eq!(body["FailedRecordCount"], failed);
        refused += failed as usize;
    }
    (stored, refused)
}

async fn iterator(s: &TestServer) -> String {
    let (status, body) = s
        .json(
            "GetShardIterator",
            json!({"StreamName": "s", "ShardId": "shardId-000000000000",
                   "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["ShardIterator"].as_str().unwrap().to_owned()
}

async fn get_records(s: &TestServer, it: &str) -> (u16, Value) {
    s.json("GetRecords", json!({"ShardIterator": it, "Limit": 10000}))
        .await
}

/// Six GetRecords calls in a row: whether each was accepted.
async fn six_reads(s: &TestServer, it: &str) -> Vec<bool> {
    let mut accepted = Vec::new();
    for _ in 0..6 {
        let (status, body) = get_records(s, it).await;
        if status == 200 {
            accepted.push(true);
        } else {
            assert_eq!(status, 400, "{body}");
            assert_eq!(body["__type"], EXCEEDED, "{body}");
            accepted.push(false);
        }
    }
    accepted
}

#[tokio::test]
async fn enforced_writes_store_what_fits_and_refuse_the_rest_per_record() {
    let s = server(true, 0.0).await;
    let (stored, refused) = put_2000(&s).await;
    assert_eq!(stored.len() + refused, 2000);
    // A burst of one second's worth (1,000 records) and whatever refilled meanwhile.
    assert!(refused > 0, "nothing refused");
    assert!(stored.len() >= 1000, "only {} stored", stored.len());
    // Exactly the acknowledged records are in the shard.
    let (status, body) = get_records(&s, &iterator(&s).await).await;
    assert_eq!(status, 200, "{body}");
    let mut read: Vec<String> = body["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["SequenceNumber"].as_str().unwrap().to_owned())
        .collect();
    let mut stored = stored;
    stored.sort();
    read.sort();
    assert_eq!(read, stored);
}

#[tokio::test]
async fn enforced_put_record_refuses_the_call_over_the_byte_limit() {
    let s = server(true, 0.0).await;
    // 900 KiB twice: the second is over 1 MiB/s.
    let data = B64.encode(vec![7u8; 900 * 1024]);
    let put = || {
        s.json(
            "PutRecord",
            json!({"StreamName": "s", "PartitionKey": "k", "Data": data}),
        )
    };
    // The second put is over the limit unless ~0.8 s passed between them: a loaded machine
    // gets a few tries (each after a second's refill) instead of a timing assumption.
    let mut refused = None;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (status, body) = put().await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = put().await;
        if status != 200 {
            assert_eq!(status, 400, "{body}");
            refused = Some(body);
            break;
        }
        assert!(
            started.elapsed() >= Duration::from_millis(700),
            "two 900 KiB puts within {:?} were both accepted",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let body = refused.expect("the second put was never refused");
    assert_eq!(body["__type"], EXCEEDED);
    assert_eq!(
        body["message"],
        "Rate exceeded for shard shardId-000000000000 in stream s under account 000000000000."
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, body) = put().await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn enforced_reads_allow_five_calls_a_second() {
    let s = server(true, 0.0).await;
    let (status, body) = s
        .json(
            "PutRecords",
            json!({"StreamName": "s", "Records": records(0, 10)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let it = iterator(&s).await;
    // Twenty reads as fast as they go: at most the burst (5) plus what refilled meanwhile
    // (5 a second) are accepted, and some are refused while the rate is over 5 a second.
    let started = std::time::Instant::now();
    let mut accepted = 0;
    for _ in 0..20 {
        let (status, body) = get_records(&s, &it).await;
        if status == 200 {
            accepted += 1;
        } else {
            assert_eq!(
                (status, body["__type"].as_str()),
                (400, Some(EXCEEDED)),
                "{body}"
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(
        f64::from(accepted) <= 5.0 + secs * 5.0 + 1.0,
        "{accepted} reads accepted in {secs:.2} s"
    );
    if secs < 3.0 {
        assert!(accepted < 20, "20 reads in {secs:.2} s were all accepted");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (status, body) = get_records(&s, &it).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Records"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn without_enforcement_nothing_is_throttled() {
    let s = server(false, 0.0).await;
    let (stored, refused) = put_2000(&s).await;
    assert_eq!((stored.len(), refused), (2000, 0));
    let it = iterator(&s).await;
    assert_eq!(six_reads(&s, &it).await, [true; 6]);
}

#[tokio::test]
async fn a_stream_can_turn_enforcement_on_alone() {
    let s = server(false, 0.0).await;
    s.store
        .stream("s")
        .unwrap()
        .update_meta(|m| {
            m.enforce_limits = Some(true);
            Ok(())
        })
        .unwrap();
    let (stored, refused) = put_2000(&s).await;
    assert!(refused > 0 && stored.len() >= 1000, "{refused} refused");
    let it = iterator(&s).await;
    // Twenty reads as fast as they go: at most the burst (5) plus what refilled meanwhile
    // (5 a second) are accepted, and some are refused while the rate is over 5 a second.
    let started = std::time::Instant::now();
    let mut accepted = 0;
    for _ in 0..20 {
        let (status, body) = get_records(&s, &it).await;
        if status == 200 {
            accepted += 1;
        } else {
            assert_eq!(
                (status, body["__type"].as_str()),
                (400, Some(EXCEEDED)),
                "{body}"
            );
        }
    }
    let secs = started.elapsed().as_secs_f64();
    assert!(
        f64::from(accepted) <= 5.0 + secs * 5.0 + 1.0,
        "{accepted} reads accepted in {secs:.2} s"
    );
    if secs < 3.0 {
        assert!(accepted < 20, "20 reads in {secs:.2} s were all accepted");
    }
}

#[tokio::test]
async fn fault_probability_one_fails_everything() {
    let s = server(false, 1.0).await;
    let (status, body) = s
        .json(
            "PutRecords",
            json!({"StreamName": "s", "Records": records(0, 20)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["FailedRecordCount"], 20);
    assert!(
        body["Records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["ErrorCode"] == EXCEEDED)
    );
    let (status, body) = s
        .json(
            "PutRecord",
            json!({"StreamName": "s", "PartitionKey": "k", "Data": B64.encode("x")}),
        )
        .await;
    assert_eq!((status, body["__type"].as_str()), (400, Some(EXCEEDED)));
    let (status, body) = get_records(&s, &iterator(&s).await).await;
    assert_eq!((status, body["__type"].as_str()), (400, Some(EXCEEDED)));
    // Nothing was stored.
    assert_eq!(s.store.stream("s").unwrap().shard(0).unwrap().tip(), 0);
}

#[tokio::test]
async fn fault_probability_zero_fails_nothing() {
    let s = server(false, 0.0).await;
    for _ in 0..3 {
        let (status, body) = s
            .json(
                "PutRecords",
                json!({"StreamName": "s", "Records": records(0, 100)}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["FailedRecordCount"], 0);
    }
    let (status, body) = get_records(&s, &iterator(&s).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Records"].as_array().unwrap().len(), 300);
}

#[tokio::test]
async fn fault_probability_half_fails_some_records() {
    let s = server(false, 0.5).await;
    let (status, body) = s
        .json(
            "PutRecords",
            json!({"StreamName": "s", "Records": records(0, 500)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let failed = body["FailedRecordCount"].as_u64().unwrap();
    assert!((150..350).contains(&failed), "{failed} of 500 failed");
    assert_eq!(
        s.store.stream("s").unwrap().shard(0).unwrap().tip(),
        500 - failed
    );
}
