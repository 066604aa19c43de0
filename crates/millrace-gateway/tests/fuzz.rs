//! Fuzzing the Kinesis API's input side with proptest (bounded: `PROPTEST_CASES`, 256 by
//! default, so it runs in every `cargo test`):
//! - arbitrary bytes through both request decoders (AWS JSON 1.1 and CBOR 1.1) never panic;
//! - arbitrary well-formed requests (members Kinesis knows, with values of every type, nested,
//!   in both protocols) sent to every operation of a real server on a port never get a 5xx or
//!   a dropped connection, and errors carry an AWS `__type`.
//!
//! A case that fails is kept by proptest in `proptest-regressions/` and replayed first from
//! then on: that file is committed as the regression test.

use crate::common;

use std::sync::OnceLock;

use millrace_gateway::protocol::Protocol;
use proptest::prelude::*;
use serde_json::{Map, Value};

use common::TestServer;

/// Every operation with a valid request for it, which the fuzzer then mutates: members
/// replaced by arbitrary values, removed or added, so cases reach deep into each operation
/// instead of stopping at the first missing member. `ITERATOR` stands for a live iterator,
/// `QUEUE` for a live queue's ARN.
fn templates() -> Vec<(&'static str, Value)> {
    use serde_json::json;
    vec![
        ("CreateStream", json!({"StreamName": "s2", "ShardCount": 1})),
        ("DeleteStream", json!({"StreamName": "s2"})),
        ("ListStreams", json!({})),
        ("DescribeStream", json!({"StreamName": "s1"})),
        ("DescribeStreamSummary", json!({"StreamName": "s1"})),
        ("ListShards", json!({"StreamName": "s1"})),
        (
            "PutRecord",
            json!({"StreamName": "s1", "Data": "aGVsbG8=", "PartitionKey": "k"}),
        ),
        (
            "PutRecords",
            json!({"StreamName": "s1", "Records": [{"Data": "aGVsbG8=", "PartitionKey": "k"}]}),
        ),
        (
            "GetShardIterator",
            json!({"StreamName": "s1", "ShardId": "shardId-000000000000",
                   "ShardIteratorType": "TRIM_HORIZON"}),
        ),
        (
            "GetRecords",
            json!({"ShardIterator": "ITERATOR", "Limit": 10}),
        ),
        (
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": "s1", "RetentionPeriodHours": 48}),
        ),
        (
            "DecreaseStreamRetentionPeriod",
            json!({"StreamName": "s1", "RetentionPeriodHours": 24}),
        ),
        (
            "AddTagsToStream",
            json!({"StreamName": "s1", "Tags": {"a": "b"}}),
        ),
        ("ListTagsForStream", json!({"StreamName": "s1"})),
        (
            "RemoveTagsFromStream",
            json!({"StreamName": "s1", "TagKeys": ["a"]}),
        ),
        (
            "UpdateStreamRecordDistributionStrategy",
            json!({"StreamARN": arn("od"), "RecordDistributionStrategy": "AUTO"}),
        ),
        (
            "CreateQueue",
            json!({"QueueName": "q2", "StreamConfigurationList": [{"StreamARN": arn("od"),
                   "StartingPosition": {"Type": "AT_TIMESTAMP", "Timestamp": 1.7e9}}],
                   "QueueAttributes": {"VisibilityTimeoutSeconds": 0,
                   "DeadLetterConfiguration": {"TargetType": "NONE"}}}),
        ),
        ("DescribeQueue", json!({"QueueARN": "QUEUE"})),
        (
            "ListQueues",
            json!({"StreamFilter": [{"StreamARN": arn("od")}], "MaxResults": 1}),
        ),
        (
            "UpdateQueue",
            json!({"QueueARN": "QUEUE", "QueueAttributes": {"VisibilityTimeoutSeconds": 0}}),
        ),
        (
            "DeleteQueue",
            json!({"QueueARN": "arn:aws:kinesis:us-east-1:000000000000:queue/none"}),
        ),
        (
            "ReceiveQueueRecords",
            json!({"QueueARN": "QUEUE", "Limit": 2, "WaitTimeSeconds": 1}),
        ),
        (
            "AcknowledgeQueueRecords",
            json!({"QueueARN": "QUEUE", "Entries": [{"ReceiptHandle": "aGVsbG8="}]}),
        ),
        (
            "UpdateQueueRecordsVisibility",
            json!({"QueueARN": "QUEUE", "Entries": [{"ReceiptHandle": "h",
                   "VisibilityTimeoutSeconds": 0}]}),
        ),
        (
            "ReceiveDeadLetterQueueRecords",
            json!({"QueueARN": "QUEUE", "WaitTimeSeconds": 1}),
        ),
        (
            "RestoreDeadLetterQueueRecords",
            json!({"QueueARN": "QUEUE", "Entries": [{"ReceiptHandle": "h"}]}),
        ),
        (
            "CreateChannel",
            json!({"ChannelName": "c1", "ServiceExecutionRoleARN":
                   "arn:aws:iam::000000000000:role/r",
                   "StreamConfigurationList": [{"StreamARN": arn("od"),
                   "RecordConfiguration": {"RecordFormatType": "JSON"}}],
                   "S3DestinationConfiguration": {"StorageConfiguration": {
                   "BucketARN": "arn:aws:s3:::lake", "ExpectedBucketOwner": "000000000000",
                   "CompressionType": "GZIP"}}}),
        ),
        (
            "CreateChannel",
            json!({"ChannelName": "t1", "ServiceExecutionRoleARN":
                   "arn:aws:iam::000000000000:role/r",
                   "StreamConfigurationList": [{"StreamARN": arn("od"),
                   "RecordConfiguration": {"RecordFormatType": "GSR_JSON",
                   "GSRSchemaARN": "arn:aws:glue:us-east-1:000000000000:schema/r/s"}}],
                   "S3TablesDestinationConfiguration": {
                   "DeadLetterQueueS3Configuration": {"BucketARN": "arn:aws:s3:::lake",
                   "ExpectedBucketOwner": "000000000000"},
                   "S3TablesConfigurationList": [{"TableBucketARN":
                   "arn:aws:s3tables:us-east-1:000000000000:bucket/tbl", "Namespace": "n",
                   "TableName": "t", "CompressionType": "ZSTD", "PartitionSpec": {
                   "PartitionFields": [{"Transform": "TIME_HOUR", "SourceName": "ts"}]}}]}}),
        ),
        ("ListChannels", json!({"MaxResults": 1})),
        ("NoSuchOperation", json!({})),
    ]
}

fn arn(stream: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:000000000000:stream/{stream}")
}

const MEMBERS: [&str; 40] = [
    "StreamName",
    "StreamARN",
    "ShardCount",
    "Records",
    "Data",
    "PartitionKey",
    "ExplicitHashKey",
    "SequenceNumberForOrdering",
    "ShardId",
    "ShardIteratorType",
    "StartingSequenceNumber",
    "Timestamp",
    "ShardIterator",
    "Limit",
    "NextToken",
    "ExclusiveStartShardId",
    "ExclusiveStartStreamName",
    "MaxResults",
    "ShardFilter",
    "Type",
    "Tags",
    "TagKeys",
    "RetentionPeriodHours",
    "StreamModeDetails",
    "QueueARN",
    "QueueName",
    "StreamConfigurationList",
    "QueueAttributes",
    "StartingPosition",
    "Entries",
    "ReceiptHandle",
    "VisibilityTimeoutSeconds",
    "WaitTimeSeconds",
    "StreamFilter",
    "RecordDistributionStrategy",
    "S3DestinationConfiguration",
    "S3TablesDestinationConfiguration",
    "S3TablesConfigurationList",
    "GSRSchemaARN",
    "PartitionSpec",
];

/// Strings that reach deep into operations (a stream that exists, shard ids, iterator types,
/// base64, ARNs, timestamps) and arbitrary ones.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "s1",
            "shardId-000000000000",
            "shardId-000000000001",
            "TRIM_HORIZON",
            "LATEST",
            "AT_TIMESTAMP",
            "AT_SEQUENCE_NUMBER",
            "AFTER_SEQUENCE_NUMBER",
            "AT_LATEST",
            "aGVsbG8=",
            "",
            "arn:aws:kinesis:us-east-1:000000000000:stream/s1",
            "2026-01-01T00:00:00Z",
            "9999-99-99T99:99:99Z",
            "340282366920938463463374607431768211456",
            "49590338271490256608559692538361571095921575989136588898",
            "arn:aws:kinesis:us-east-1:000000000000:stream/od",
            "arn:aws:kinesis:us-east-1:000000000000:queue/x",
            "ON_DEMAND",
            "BUILT_IN",
        ])
        .prop_map(String::from),
        "\\PC{0,40}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..6).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(MEMBERS.to_vec()), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.into(), v)).collect())),
        ]
    })
}

fn request() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(prop::sample::select(MEMBERS.to_vec()), value(), 0..6)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// A member set to an arbitrary value (`Some`) or removed (`None`).
fn mutations() -> impl Strategy<Value = Vec<(&'static str, Option<Value>)>> {
    prop::collection::vec(
        (
            prop::sample::select(MEMBERS.to_vec()),
            prop::option::of(value()),
        ),
        0..3,
    )
}

/// One server for every case: a stream `s1` of two shards to aim at and an iterator of it, an
/// on-demand stream `od` with records and a queue on it that hands them out again and again.
struct Fixture {
    rt: tokio::runtime::Runtime,
    server: TestServer,
    iterator: String,
    queue: String,
}

fn server() -> &'static Fixture {
    static SERVER: OnceLock<Fixture> = OnceLock::new();
    SERVER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(async {
            let s = TestServer::start().await;
            let (status, body) = s
                .json(
                    "CreateStream",
                    serde_json::json!({"StreamName": "s1", "ShardCount": 2}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let mut iterator = None;
            for _ in 0..100 {
                let (status, body) = s
                    .json(
                        "GetShardIterator",
                        serde_json::json!({"StreamName": "s1", "ShardId": "shardId-000000000000",
                                           "ShardIteratorType": "TRIM_HORIZON"}),
                    )
                    .await;
                if status == 200 {
                    iterator = body["ShardIterator"].as_str().map(str::to_owned);
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let queue = queue_fixture(&s).await;
            (s, iterator.expect("an iterator for s1"), queue)
        });
        Fixture {
            rt,
            server: server.0,
            iterator: server.1,
            queue: server.2,
        }
    })
}

/// Stream `od` (ON_DEMAND, 20 records) and a queue on it whose records are visible again at
/// once and never dead letters, so receives answer without waiting. Returns the queue's ARN.
async fn queue_fixture(s: &TestServer) -> String {
    use serde_json::json;
    let (st, b) = s
        .json("CreateStream", json!({"StreamName": "od", "ShardCount": 1}))
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .json(
            "UpdateStreamMode",
            json!({"StreamARN": arn("od"), "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let records: Vec<Value> = (0..20)
        .map(|i| json!({"Data": "aGVsbG8=", "PartitionKey": format!("k{i}")}))
        .collect();
    let (st, b) = s
        .json(
            "PutRecords",
            json!({"StreamName": "od", "Records": records}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .json(
            "CreateQueue",
            json!({"QueueName": "fq", "StreamConfigurationList": [{"StreamARN": arn("od"),
                   "StartingPosition": {"Type": "TRIM_HORIZON"}}],
                   "QueueAttributes": {"VisibilityTimeoutSeconds": 0,
                   "DeadLetterConfiguration": {"TargetType": "NONE"}}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    b["QueueDescription"]["QueueARN"]
        .as_str()
        .unwrap()
        .to_owned()
}

proptest! {
    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Protocol::Json.decode(&body);
        let _ = Protocol::Cbor.decode(&body);
    }

    #[test]
    fn decoders_never_panic_on_truncated_cbor(req in request(), cut in 0usize..400) {
        let mut bytes = Vec::new();
        ciborium::into_writer(&Value::Object(req), &mut bytes).unwrap();
        let end = cut.min(bytes.len());
        let _ = Protocol::Cbor.decode(&bytes[..end]);
    }

    #[test]
    fn operations_answer_every_request_without_a_server_error(
        which in 0usize..templates().len(),
        changes in mutations(),
        cbor in any::<bool>(),
    ) {
        let Fixture { rt, server, iterator, queue } = server();
        let (op, mut body) = templates().swap_remove(which);
        if body["ShardIterator"] == "ITERATOR" {
            body["ShardIterator"] = Value::from(iterator.as_str());
        }
        if body["QueueARN"] == "QUEUE" {
            body["QueueARN"] = Value::from(queue.as_str());
        }
        let req = body.as_object_mut().unwrap();
        for (member, change) in changes {
            match change {
                Some(v) => req.insert(member.into(), v),
                None => req.remove(member),
            };
        }
        let body = Value::Object(req.clone());
        let (content_type, bytes) = if cbor {
            let mut b = Vec::new();
            ciborium::into_writer(&body, &mut b).unwrap();
            ("application/x-amz-cbor-1.1", b)
        } else {
            ("application/x-amz-json-1.1", body.to_string().into_bytes())
        };
        let (status, reply) = rt.block_on(server.raw(Some(op), content_type, bytes));
        prop_assert!(status < 500, "{op} {body}: {status} {}", String::from_utf8_lossy(&reply));
        if status >= 400 && !cbor {
            let v: Value = serde_json::from_slice(&reply).unwrap_or(Value::Null);
            prop_assert!(v["__type"].is_string(), "{op} {body}: {status} {v}");
        }
    }
}
