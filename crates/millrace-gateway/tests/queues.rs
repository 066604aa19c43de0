//! Kinesis queues through the real HTTP API (JSON 1.1; aws-sdk-kinesis has no queue
//! operations yet, boto3's are exercised in tests/compat/queue_flows.py): competing consumers,
//! visibility timeouts, dead letters, restarts and each operation's errors.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::TestServer;
use serde_json::{Value, json};

fn stream_arn(name: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}")
}

/// An ON_DEMAND stream with `shards` shards (created provisioned, then switched).
async fn on_demand_stream(s: &TestServer, name: &str, shards: i64) {
    s.ok(
        "CreateStream",
        json!({"StreamName": name, "ShardCount": shards}),
    )
    .await;
    s.ok(
        "UpdateStreamMode",
        json!({"StreamARN": stream_arn(name), "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
    )
    .await;
}

async fn create_queue(s: &TestServer, name: &str, stream: &str, attrs: Value) -> String {
    let b = s
        .ok(
            "CreateQueue",
            json!({
                "QueueName": name,
                "StreamConfigurationList": [{"StreamARN": stream_arn(stream), "StartingPosition": {"Type": "TRIM_HORIZON"}}],
                "QueueAttributes": attrs,
            }),
        )
        .await;
    assert_eq!(b["QueueDescription"]["QueueStatus"], "CREATING");
    b["QueueDescription"]["QueueARN"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn put(s: &TestServer, stream: &str, n: usize, tag: &str) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let records: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"Data": STANDARD.encode(format!("{tag}-{i}")), "PartitionKey": format!("k{i}")}))
            .collect();
        let b = s
            .ok(
                "PutRecords",
                json!({"StreamName": stream, "Records": records}),
            )
            .await;
        assert_eq!(b["FailedRecordCount"], 0);
    }
}

async fn receive(s: &TestServer, arn: &str, extra: Value) -> Vec<Value> {
    let mut body = json!({"QueueARN": arn, "WaitTimeSeconds": 1});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let b = s.ok("ReceiveQueueRecords", body).await;
    b["QueueRecords"].as_array().unwrap().clone()
}

async fn batch(s: &TestServer, op: &str, arn: &str, entries: Vec<Value>) -> Value {
    s.ok(op, json!({"QueueARN": arn, "Entries": entries})).await
}

fn handles(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .map(|r| json!({"ReceiptHandle": r["ReceiptHandle"]}))
        .collect()
}

fn data(r: &Value) -> String {
    String::from_utf8(STANDARD.decode(r["Data"].as_str().unwrap()).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_competing_consumers_acknowledge_every_record_exactly_once() {
    let s = TestServer::start().await;
    on_demand_stream(&s, "orders", 4).await;
    let arn = create_queue(
        &s,
        "work",
        "orders",
        json!({"VisibilityTimeoutSeconds": 120}),
    )
    .await;
    put(&s, "orders", 600, "r").await;
    let url = s.url.clone();
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (s, arn) = (s.clone(), arn.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let got = receive(&s, &arn, json!({"Limit": 10})).await;
                if got.is_empty() {
                    // Long polling answered empty after a second: the queue is drained.
                    break;
                }
                let b = batch(&s, "AcknowledgeQueueRecords", &arn, handles(&got)).await;
                assert_eq!(b["Failed"].as_array().unwrap().len(), 0, "{b}");
                assert_eq!(b["Successful"].as_array().unwrap().len(), got.len());
                acked.extend(
                    got.iter()
                        .map(|r| (r["RecordId"].as_str().unwrap().to_owned(), data(r))),
                );
                assert!(Instant::now() < deadline, "draining took over a minute");
            }
            acked
        }));
    }
    let mut all = Vec::new();
    let mut per_consumer = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        per_consumer.push(got.len());
        all.extend(got);
    }
    let ids: HashSet<_> = all.iter().map(|(id, _)| id.clone()).collect();
    let payloads: HashSet<_> = all.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(
        all.len(),
        600,
        "every record acknowledged once: {per_consumer:?} at {url}"
    );
    assert_eq!(ids.len(), 600, "no record acknowledged twice");
    assert_eq!(payloads.len(), 600);
    assert!(
        per_consumer.iter().all(|n| *n > 0),
        "all three consumers got work: {per_consumer:?}"
    );
    let (_, d) = s.json("DescribeQueue", json!({"QueueARN": arn})).await;
    assert_eq!(d["QueueDescription"]["QueueStatus"], "ACTIVE");
}

#[tokio::test]
async fn unacknowledged_records_come_back_after_their_timeout_with_a_new_handle() {
    let s = TestServer::start().await;
    on_demand_stream(&s, "s", 1).await;
    let arn = create_queue(&s, "q", "s", json!({"VisibilityTimeoutSeconds": 2})).await;
    put(&s, "s", 5, "v").await;
    let first = receive(&s, &arn, json!({})).await;
    assert_eq!(first.len(), 5);
    assert!(first.iter().all(|r| r["ReceiveCount"] == 1));
    assert!(
        receive(&s, &arn, json!({})).await.is_empty(),
        "in flight: invisible"
    );
    let t = Instant::now();
    let again = receive(&s, &arn, json!({"WaitTimeSeconds": 5})).await;
    assert_eq!(again.len(), 5, "redelivered after the timeout");
    assert!(t.elapsed() < Duration::from_secs(4));
    let ids = |rs: &[Value]| {
        rs.iter()
            .map(|r| r["RecordId"].clone())
            .collect::<HashSet<_>>()
    };
    assert_eq!(ids(&first), ids(&again), "the same records");
    assert!(again.iter().all(|r| r["ReceiveCount"] == 2));
    assert_eq!(
        first[0]["FirstReceiveTimestamp"],
        again
            .iter()
            .find(|r| r["RecordId"] == first[0]["RecordId"])
            .unwrap()["FirstReceiveTimestamp"]
    );
    // The first handles are stale now; the new ones acknowledge.
    let stale = batch(&s, "AcknowledgeQueueRecords", &arn, handles(&first)).await;
    assert_eq!(stale["Failed"].as_array().unwrap().len(), 5, "{stale}");
    assert_eq!(stale["Failed"][0]["ErrorCode"], "InvalidArgumentException");
    let ok = batch(&s, "AcknowledgeQueueRecords", &arn, handles(&again)).await;
    assert_eq!(ok["Successful"].as_array().unwrap().len(), 5, "{ok}");
    // Acknowledging again is idempotent.
    let twice = batch(&s, "AcknowledgeQueueRecords", &arn, handles(&again[..1])).await;
    assert_eq!(twice["Successful"].as_array().unwrap().len(), 1, "{twice}");
    // Visibility 0 makes a record visible at once; a longer one keeps it away.
    put(&s, "s", 2, "w").await;
    let two = receive(&s, &arn, json!({"VisibilityTimeoutSeconds": 60})).await;
    assert_eq!(two.len(), 2);
    let entries = vec![
        json!({"ReceiptHandle": two[0]["ReceiptHandle"], "VisibilityTimeoutSeconds": 0}),
        json!({"ReceiptHandle": two[1]["ReceiptHandle"], "VisibilityTimeoutSeconds": 600}),
    ];
    let b = batch(&s, "UpdateQueueRecordsVisibility", &arn, entries).await;
    assert_eq!(b["Successful"].as_array().unwrap().len(), 2, "{b}");
    let back = receive(&s, &arn, json!({})).await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0]["RecordId"], two[0]["RecordId"]);
}

#[tokio::test]
async fn a_poison_record_becomes_a_dead_letter_and_is_restored() {
    let s = TestServer::start().await;
    on_demand_stream(&s, "s", 1).await;
    let arn = create_queue(
        &s,
        "q",
        "s",
        json!({"VisibilityTimeoutSeconds": 1, "DeadLetterConfiguration": {"TargetType": "BUILT_IN", "MaxReceiveCount": 2}}),
    )
    .await;
    put(&s, "s", 1, "poison").await;
    for n in 1..=2 {
        let got = receive(&s, &arn, json!({"WaitTimeSeconds": 3})).await;
        assert_eq!(got.len(), 1, "receive {n}");
        assert_eq!(got[0]["ReceiveCount"], n);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, d) = s.json("DescribeQueue", json!({"QueueARN": arn})).await;
    assert_eq!(
        d["QueueDescription"]["QueueRecordCounts"],
        json!({"Visible": 0, "InFlight": 0, "DeadLetter": 1}),
        "a dead letter as soon as its timeout passed"
    );
    assert!(
        receive(&s, &arn, json!({})).await.is_empty(),
        "a dead letter is not received"
    );
    let b = s
        .ok(
            "ReceiveDeadLetterQueueRecords",
            json!({"QueueARN": arn, "WaitTimeSeconds": 1, "VisibilityTimeoutSeconds": 30}),
        )
        .await;
    let dead = b["QueueRecords"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert_eq!(data(&dead[0]), "poison-0");
    assert_eq!(dead[0]["PartitionKey"], "k0");
    // Dead-letter handles work only with the dead-letter operations.
    let wrong = batch(&s, "AcknowledgeQueueRecords", &arn, handles(&dead)).await;
    assert_eq!(
        wrong["Failed"][0]["ErrorCode"], "InvalidArgumentException",
        "{wrong}"
    );
    let vis =
        vec![json!({"ReceiptHandle": dead[0]["ReceiptHandle"], "VisibilityTimeoutSeconds": 0})];
    let b = batch(&s, "UpdateDeadLetterQueueRecordsVisibility", &arn, vis).await;
    assert_eq!(b["Successful"].as_array().unwrap().len(), 1, "{b}");
    let (_, b) = s
        .json(
            "ReceiveDeadLetterQueueRecords",
            json!({"QueueARN": arn, "WaitTimeSeconds": 1}),
        )
        .await;
    let dead = b["QueueRecords"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 1, "visible again on the dead-letter side");
    let b = batch(&s, "RestoreDeadLetterQueueRecords", &arn, handles(&dead)).await;
    assert_eq!(b["Successful"].as_array().unwrap().len(), 1, "{b}");
    let back = receive(&s, &arn, json!({})).await;
    assert_eq!(back.len(), 1, "restored to the queue");
    assert_eq!(back[0]["ReceiveCount"], 1, "its receive count reset");
    // A second poison record, acknowledged on the dead-letter side, is gone for good.
    let b = batch(&s, "AcknowledgeQueueRecords", &arn, handles(&back)).await;
    assert_eq!(b["Successful"].as_array().unwrap().len(), 1);
    put(&s, "s", 1, "second").await;
    for _ in 0..2 {
        assert_eq!(
            receive(&s, &arn, json!({"WaitTimeSeconds": 3})).await.len(),
            1
        );
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(receive(&s, &arn, json!({})).await.is_empty());
    let (_, b) = s
        .json(
            "ReceiveDeadLetterQueueRecords",
            json!({"QueueARN": arn, "WaitTimeSeconds": 1}),
        )
        .await;
    let dead = b["QueueRecords"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 1);
    let b = batch(
        &s,
        "AcknowledgeDeadLetterQueueRecords",
        &arn,
        handles(&dead),
    )
    .await;
    assert_eq!(b["Successful"].as_array().unwrap().len(), 1, "{b}");
    let (_, b) = s
        .json(
            "ReceiveDeadLetterQueueRecords",
            json!({"QueueARN": arn, "WaitTimeSeconds": 1, "VisibilityTimeoutSeconds": 0}),
        )
        .await;
    assert!(b["QueueRecords"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn acknowledgements_survive_a_restart_and_the_rest_is_redelivered() {
    let s = TestServer::start().await;
    on_demand_stream(&s, "s", 2).await;
    let arn = create_queue(&s, "q", "s", json!({"VisibilityTimeoutSeconds": 1})).await;
    put(&s, "s", 40, "x").await;
    let mut got = Vec::new();
    while got.len() < 40 {
        let r = receive(&s, &arn, json!({})).await;
        assert!(!r.is_empty());
        got.extend(r);
    }
    let b = batch(&s, "AcknowledgeQueueRecords", &arn, handles(&got[..10])).await;
    assert_eq!(b["Successful"].as_array().unwrap().len(), 10);
    let b = batch(&s, "AcknowledgeQueueRecords", &arn, handles(&got[10..20])).await;
    assert_eq!(b["Successful"].as_array().unwrap().len(), 10);
    let acked: HashSet<_> = got[..20].iter().map(|r| r["RecordId"].clone()).collect();
    let s = s.restart().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut again = HashMap::new();
    loop {
        let r = receive(&s, &arn, json!({"VisibilityTimeoutSeconds": 60})).await;
        if r.is_empty() {
            break;
        }
        for rec in r {
            assert!(
                again.insert(rec["RecordId"].clone(), rec).is_none(),
                "no record twice"
            );
        }
    }
    assert_eq!(
        again.len(),
        20,
        "exactly the unacknowledged records come back"
    );
    assert!(again.keys().all(|k| !acked.contains(k)));
}

#[tokio::test]
async fn a_long_poll_answers_as_soon_as_a_record_arrives() {
    let s = std::sync::Arc::new(TestServer::start().await);
    on_demand_stream(&s, "s", 2).await;
    let arn = create_queue(&s, "q", "s", json!({})).await;
    let (s2, arn2) = (s.clone(), arn.clone());
    let t = Instant::now();
    let waiting =
        tokio::spawn(async move { receive(&s2, &arn2, json!({"WaitTimeSeconds": 10})).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    put(&s, "s", 1, "late").await;
    let got = waiting.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "answered at {:?}",
        t.elapsed()
    );
}

fn error_type(b: &Value) -> &str {
    b["__type"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn each_operation_refuses_bad_input_with_kinesis_errors() {
    let s = TestServer::start().await;
    s.json(
        "CreateStream",
        json!({"StreamName": "prov", "ShardCount": 1}),
    )
    .await;
    on_demand_stream(&s, "od", 1).await;
    let cfg = |name: &str| json!([{"StreamARN": stream_arn(name)}]);
    // Provisioned streams have no queues.
    let (st, b) = s
        .json(
            "CreateQueue",
            json!({"QueueName": "a", "StreamConfigurationList": cfg("prov")}),
        )
        .await;
    assert_eq!(
        (st, error_type(&b)),
        (400, "InvalidArgumentException"),
        "{b}"
    );
    // Every model constraint in one ValidationException.
    let (st, b) = s
        .json("CreateQueue", json!({"QueueName": "bad name!", "StreamConfigurationList": [], "QueueAttributes": {"VisibilityTimeoutSeconds": 50000}}))
        .await;
    assert_eq!((st, error_type(&b)), (400, "ValidationException"), "{b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .starts_with("3 validation errors detected"),
        "{b}"
    );
    let (_, b) = s
        .json("CreateQueue", json!({"StreamConfigurationList": cfg("od")}))
        .await;
    assert_eq!(error_type(&b), "ValidationException");
    let (_, b) = s
        .json("CreateQueue", json!({"QueueName": "a", "StreamConfigurationList": [{"StreamARN": stream_arn("od"), "StartingPosition": {"Type": "LATEST", "Timestamp": 1.0}}]}))
        .await;
    assert_eq!(
        error_type(&b),
        "ValidationException",
        "Timestamp only with AT_TIMESTAMP: {b}"
    );
    let (_, b) = s
        .json("CreateQueue", json!({"QueueName": "a", "StreamConfigurationList": [{"StreamARN": stream_arn("od")}, {"StreamARN": stream_arn("od")}]}))
        .await;
    assert_eq!(error_type(&b), "InvalidArgumentException", "{b}");
    let (_, b) = s
        .json("CreateQueue", json!({"QueueName": "a", "StreamConfigurationList": cfg("od"), "QueueAttributes": {"DeadLetterConfiguration": {"TargetType": "BUILT_IN"}}}))
        .await;
    assert_eq!(error_type(&b), "InvalidArgumentException", "{b}");
    let (_, b) = s
        .json(
            "CreateQueue",
            json!({"QueueName": "a", "StreamConfigurationList": cfg("missing")}),
        )
        .await;
    assert_eq!(error_type(&b), "ResourceNotFoundException", "{b}");
    let (_, b) = s
        .json(
            "CreateQueue",
            json!({"QueueName": 7, "StreamConfigurationList": cfg("od")}),
        )
        .await;
    assert_eq!(error_type(&b), "SerializationException", "{b}");

    let arn = create_queue(&s, "a", "od", json!({})).await;
    let (_, b) = s
        .json(
            "CreateQueue",
            json!({"QueueName": "a", "StreamConfigurationList": cfg("od")}),
        )
        .await;
    assert_eq!(error_type(&b), "ResourceInUseException", "{b}");
    let (_, d) = s.json("DescribeQueue", json!({"QueueARN": arn})).await;
    let desc = &d["QueueDescription"];
    assert_eq!(desc["QueueName"], "a");
    assert_eq!(desc["QueueAttributes"]["VisibilityTimeoutSeconds"], 30);
    assert_eq!(
        desc["QueueAttributes"]["DeadLetterConfiguration"]["MaxReceiveCount"],
        6
    );
    assert_eq!(
        desc["StreamConfigurationList"][0]["StreamARN"],
        stream_arn("od")
    );
    for (op, body) in [
        ("DescribeQueue", json!({"QueueARN": "nope"})),
        ("ReceiveQueueRecords", json!({"QueueARN": arn, "Limit": 11})),
        (
            "ReceiveQueueRecords",
            json!({"QueueARN": arn, "WaitTimeSeconds": 0}),
        ),
        (
            "AcknowledgeQueueRecords",
            json!({"QueueARN": arn, "Entries": []}),
        ),
        (
            "UpdateQueueRecordsVisibility",
            json!({"QueueARN": arn, "Entries": [{"ReceiptHandle": "h"}]}),
        ),
        ("UpdateQueue", json!({"QueueARN": arn})),
        ("ListQueues", json!({"MaxResults": 0})),
    ] {
        let (st, b) = s.json(op, body).await;
        assert_eq!(
            (st, error_type(&b)),
            (400, "ValidationException"),
            "{op}: {b}"
        );
    }
    let other = arn.replace(":queue/", ":queue/x");
    for op in [
        "DescribeQueue",
        "DeleteQueue",
        "ReceiveQueueRecords",
        "ReceiveDeadLetterQueueRecords",
    ] {
        let (_, b) = s.json(op, json!({"QueueARN": other})).await;
        assert_eq!(error_type(&b), "ResourceNotFoundException", "{op}: {b}");
    }
    let b = batch(
        &s,
        "RestoreDeadLetterQueueRecords",
        &arn,
        vec![json!({"ReceiptHandle": "forged"})],
    )
    .await;
    assert_eq!(
        b["Failed"][0]["ErrorCode"], "InvalidArgumentException",
        "{b}"
    );

    let b = s
        .ok(
            "UpdateQueue",
            json!({"QueueARN": arn, "QueueAttributes": {"VisibilityTimeoutSeconds": 5}}),
        )
        .await;
    assert_eq!(b["QueueDescription"]["QueueStatus"], "UPDATING");
    assert_eq!(
        b["QueueDescription"]["QueueAttributes"]["VisibilityTimeoutSeconds"],
        5
    );
    assert_eq!(
        b["QueueDescription"]["QueueAttributes"]["DeadLetterConfiguration"]["MaxReceiveCount"], 6,
        "unchanged"
    );

    // A stream with a queue is neither deleted nor made provisioned.
    let (_, b) = s
        .json(
            "DeleteStream",
            json!({"StreamName": "od", "EnforceConsumerDeletion": true}),
        )
        .await;
    assert_eq!(error_type(&b), "ResourceInUseException", "{b}");
    let (_, b) = s
        .json("UpdateStreamMode", json!({"StreamARN": stream_arn("od"), "StreamModeDetails": {"StreamMode": "PROVISIONED"}}))
        .await;
    assert_eq!(error_type(&b), "ResourceInUseException", "{b}");
    let (_, b) = s
        .json("DescribeStreamSummary", json!({"StreamName": "od"}))
        .await;
    assert_eq!(b["StreamDescriptionSummary"]["QueueCount"], 1);

    // Listing: a page of one, then the rest; the stream filter.
    create_queue(&s, "b", "od", json!({})).await;
    let (_, p1) = s.json("ListQueues", json!({"MaxResults": 1})).await;
    assert_eq!(p1["QueueSummaries"].as_array().unwrap().len(), 1);
    assert_eq!(p1["QueueSummaries"][0]["QueueName"], "a");
    let (_, p2) = s
        .json("ListQueues", json!({"NextToken": p1["NextToken"]}))
        .await;
    assert_eq!(p2["QueueSummaries"][0]["QueueName"], "b");
    assert!(p2.get("NextToken").is_none_or(Value::is_null));
    let (_, f) = s
        .json(
            "ListQueues",
            json!({"StreamFilter": [{"StreamARN": stream_arn("prov")}]}),
        )
        .await;
    assert!(f["QueueSummaries"].as_array().unwrap().is_empty());
    let (_, b) = s.json("ListQueues", json!({"NextToken": "garbage"})).await;
    assert_eq!(error_type(&b), "InvalidArgumentException", "{b}");

    let (st, _) = s.json("DeleteQueue", json!({"QueueARN": arn})).await;
    assert_eq!(st, 200);
    let (_, b) = s.json("DescribeQueue", json!({"QueueARN": arn})).await;
    assert_eq!(error_type(&b), "ResourceNotFoundException");
    // Queues survive a restart; the deleted one stays deleted.
    let s = s.restart().await;
    let (_, l) = s.json("ListQueues", json!({})).await;
    let names: Vec<_> = l["QueueSummaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["QueueName"].clone())
        .collect();
    assert_eq!(names, vec![json!("b")]);
}

#[tokio::test]
async fn queues_take_tags_at_creation_and_through_the_resource_operations() {
    let s = TestServer::start().await;
    on_demand_stream(&s, "s", 1).await;
    let b = s
        .ok(
            "CreateQueue",
            json!({"QueueName": "t", "StreamConfigurationList": [{"StreamARN": stream_arn("s")}], "Tags": {"team": "risk"}}),
        )
        .await;
    let arn = b["QueueDescription"]["QueueARN"]
        .as_str()
        .unwrap()
        .to_owned();
    s.ok(
        "TagResource",
        json!({"ResourceARN": arn, "Tags": {"env": "prod"}}),
    )
    .await;
    let (_, b) = s
        .json(
            "UntagResource",
            json!({"ResourceARN": arn, "TagKeys": ["team"]}),
        )
        .await;
    assert_eq!(b, json!({}));
    let s = s.restart().await;
    let (_, b) = s
        .json("ListTagsForResource", json!({"ResourceARN": arn}))
        .await;
    assert_eq!(b["Tags"], json!([{"Key": "env", "Value": "prod"}]));
    let gone = arn.replace(":queue/", ":queue/zz");
    let (_, b) = s
        .json("ListTagsForResource", json!({"ResourceARN": gone}))
        .await;
    assert_eq!(b["__type"], "ResourceNotFoundException", "{b}");
}

#[tokio::test]
async fn records_leaving_the_streams_retention_are_no_longer_delivered() {
    let s = TestServer::start().await;
    on_demand_stream(&s, "s", 1).await;
    let arn = create_queue(&s, "q", "s", json!({"VisibilityTimeoutSeconds": 1})).await;
    put(&s, "s", 10, "old").await;
    assert_eq!(receive(&s, &arn, json!({"Limit": 5})).await.len(), 5);
    // A day and an hour later, as the retention task sees it: every segment so far expires
    // (the first pass rolls the active segment, the next one deletes it).
    let later = millrace_stream::now_ms() + 25 * 3_600_000;
    let mut removed = 0;
    for _ in 0..50 {
        let store = s.store.clone();
        removed += tokio::task::spawn_blocking(move || store.enforce_retention(later))
            .await
            .unwrap()
            .unwrap();
        if removed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(removed > 0, "the old records left the stream");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        receive(&s, &arn, json!({})).await.is_empty(),
        "neither the five in flight nor the five never received come back"
    );
    let (_, d) = s.json("DescribeQueue", json!({"QueueARN": arn})).await;
    assert_eq!(
        d["QueueDescription"]["QueueRecordCounts"],
        json!({"Visible": 0, "InFlight": 0, "DeadLetter": 0})
    );
    put(&s, "s", 3, "new").await;
    let fresh = receive(&s, &arn, json!({})).await;
    assert_eq!(fresh.len(), 3);
    assert!(fresh.iter().all(|r| data(r).starts_with("new-")));
}

/// CBOR (what the Java SDK and the KPL speak): the data comes back as a byte string and the
/// timestamps as tag 1 epoch milliseconds, and CBOR acknowledgements work.
#[tokio::test]
async fn queue_records_travel_in_cbor_too() {
    use ciborium::Value as Cbor;
    let s = TestServer::start().await;
    on_demand_stream(&s, "s", 1).await;
    let arn = create_queue(&s, "q", "s", json!({})).await;
    put(&s, "s", 1, "cbor").await;
    let map = |pairs: Vec<(&str, Cbor)>| {
        let mut out = Vec::new();
        let v = Cbor::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Cbor::Text(k.into()), v))
                .collect(),
        );
        ciborium::into_writer(&v, &mut out).unwrap();
        out
    };
    let get = |v: &Cbor, key: &str| -> Cbor {
        v.as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some(key)))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {key} in {v:?}"))
    };
    const CBOR: &str = "application/x-amz-cbor-1.1";
    let (st, body) = s
        .raw(
            Some("ReceiveQueueRecords"),
            CBOR,
            map(vec![
                ("QueueARN", Cbor::Text(arn.clone())),
                ("WaitTimeSeconds", Cbor::Integer(1.into())),
            ]),
        )
        .await;
    assert_eq!(st, 200);
    let v: Cbor = ciborium::from_reader(body.as_slice()).unwrap();
    let records = get(&v, "QueueRecords");
    let rec = &records.as_array().unwrap()[0];
    assert_eq!(get(rec, "Data"), Cbor::Bytes(b"cbor-0".to_vec()));
    assert!(matches!(
        get(rec, "ApproximateArrivalTimestamp"),
        Cbor::Tag(1, _)
    ));
    let handle = get(rec, "ReceiptHandle");
    let (st, body) = s
        .raw(
            Some("AcknowledgeQueueRecords"),
            CBOR,
            map(vec![
                ("QueueARN", Cbor::Text(arn)),
                (
                    "Entries",
                    Cbor::Array(vec![Cbor::Map(vec![(
                        Cbor::Text("ReceiptHandle".into()),
                        handle,
                    )])]),
                ),
            ]),
        )
        .await;
    assert_eq!(st, 200);
    let v: Cbor = ciborium::from_reader(body.as_slice()).unwrap();
    assert_eq!(get(&v, "Successful").as_array().unwrap().len(), 1);
}
