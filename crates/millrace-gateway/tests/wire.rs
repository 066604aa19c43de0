//! Wire fidelity with what AWS sends and its SDKs expect: every failed model constraint in one
//! ValidationException, type errors before any other check, `x-amzn-ErrorType` and
//! `x-amzn-RequestId` headers, the `SequenceNumberForOrdering` pattern, timestamps in the
//! future, tag characters, and timestamps in both protocols.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ciborium::Value as Cbor;
use serde_json::{Value, json};

use common::TestServer;

const JSON: &str = "application/x-amz-json-1.1";
const CBOR: &str = "application/x-amz-cbor-1.1";

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// `(__type, message)` of a JSON error reply.
    fn error(&self) -> (String, String) {
        let v = self.json();
        (
            v["__type"].as_str().unwrap_or_default().to_owned(),
            v["message"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

async fn post(s: &TestServer, op: &str, content_type: &str, body: Vec<u8>) -> Reply {
    let resp = reqwest::Client::new()
        .post(&s.url)
        .header("x-amz-target", format!("Kinesis_20131202.{op}"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    Reply {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.unwrap().to_vec(),
    }
}

async fn call(s: &TestServer, op: &str, body: Value) -> Reply {
    post(s, op, JSON, serde_json::to_vec(&body).unwrap()).await
}

async fn ok(s: &TestServer, op: &str, body: Value) -> Value {
    let r = call(s, op, body).await;
    assert_eq!(r.status, 200, "{op}: {}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// A JSON call that must fail with status 400, type `ty`, and return the message.
async fn fails(s: &TestServer, what: &str, op: &str, body: Value, ty: &str) -> String {
    let r = call(s, op, body).await;
    let (got, message) = r.error();
    assert_eq!(r.status, 400, "{what}: {message}");
    assert_eq!(got, ty, "{what}: {message}");
    message
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn server_with_stream(name: &str) -> TestServer {
    let s = TestServer::start().await;
    ok(
        &s,
        "CreateStream",
        json!({"StreamName": name, "ShardCount": 1}),
    )
    .await;
    s
}

fn cbor(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

fn cbor_map(pairs: Vec<(&str, Cbor)>) -> Vec<u8> {
    cbor(&Cbor::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Cbor::Text(k.into()), v))
            .collect(),
    ))
}

fn cbor_get<'a>(v: &'a Cbor, key: &str) -> &'a Cbor {
    v.as_map()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| k.as_text() == Some(key))
                .map(|(_, v)| v)
        })
        .unwrap_or_else(|| panic!("no {key} in {v:?}"))
}

/// Sequence numbers compare as decimal integers.
fn seq_gt(a: &str, b: &str) -> bool {
    (a.len(), a) > (b.len(), b)
}

#[tokio::test]
async fn validation_reports_every_failed_constraint_in_one_message() {
    let s = server_with_stream("v").await;

    let m = fails(
        &s,
        "bad name and shard count",
        "CreateStream",
        json!({"StreamName": "a b", "ShardCount": 0}),
        "ValidationException",
    )
    .await;
    assert_eq!(
        m,
        "2 validation errors detected: Value 'a b' at 'streamName' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '0' \
         at 'shardCount' failed to satisfy constraint: Member must have value greater than or \
         equal to 1"
    );

    // Three failures in one CreateStream, nested members named by their path.
    let m = fails(
        &s,
        "three bad members",
        "CreateStream",
        json!({"ShardCount": -1, "StreamModeDetails": {"StreamMode": "FAST"}}),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("3 validation errors detected: "), "{m}");
    for part in [
        "Value null at 'streamName' failed to satisfy constraint: Member must not be null",
        "Value '-1' at 'shardCount'",
        "Value 'FAST' at 'streamModeDetails.streamMode' failed to satisfy constraint: Member \
         must satisfy enum value set: [PROVISIONED, ON_DEMAND]",
    ] {
        assert!(m.contains(part), "{m:?} should contain {part:?}");
    }
    assert_eq!(m.matches("; ").count(), 2, "{m}");

    // Every bad record of a PutRecords, by its path.
    let m = fails(
        &s,
        "two bad records",
        "PutRecords",
        json!({"StreamName": "v", "Records": [
            {"PartitionKey": "", "Data": "aGk="},
            {"PartitionKey": "k", "Data": "aGk="},
            {"Data": "aGk=", "ExplicitHashKey": "x"},
        ]}),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("3 validation errors detected: "), "{m}");
    for part in [
        "Value '' at 'records.1.member.partitionKey' failed to satisfy constraint: Member must \
         have length greater than or equal to 1",
        "Value null at 'records.3.member.partitionKey'",
        "Value 'x' at 'records.3.member.explicitHashKey' failed to satisfy constraint: Member \
         must satisfy regular expression pattern",
    ] {
        assert!(m.contains(part), "{m:?} should contain {part:?}");
    }

    // GetShardIterator: missing ShardId and an unknown iterator type together.
    let m = fails(
        &s,
        "no shard, bad type",
        "GetShardIterator",
        json!({"StreamName": "v", "ShardIteratorType": "OLDEST"}),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("2 validation errors detected: "), "{m}");
    assert!(
        m.contains("at 'shardId'") && m.contains("at 'shardIteratorType'"),
        "{m}"
    );

    // ListShards and GetRecords limits with other members.
    let m = fails(
        &s,
        "ListShards",
        "ListShards",
        json!({"StreamName": "v!", "MaxResults": 0, "ShardFilter": {"Type": "SOME"}}),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("3 validation errors detected: "), "{m}");
    assert!(m.contains("at 'shardFilter.type'"), "{m}");

    // A semantic conflict is reported only once the model's constraints hold.
    let m = fails(
        &s,
        "hash key past 2^128 with an empty key",
        "PutRecord",
        json!({"StreamName": "v", "PartitionKey": "", "Data": "aGk=",
               "ExplicitHashKey": "340282366920938463463374607431768211456"}),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("1 validation error detected: "), "{m}");
    fails(
        &s,
        "hash key past 2^128",
        "PutRecord",
        json!({"StreamName": "v", "PartitionKey": "k", "Data": "aGk=",
               "ExplicitHashKey": "340282366920938463463374607431768211456"}),
        "InvalidArgumentException",
    )
    .await;
    let m = fails(
        &s,
        "hash key past 2^128 in the second record",
        "PutRecords",
        json!({"StreamName": "v", "Records": [
            {"PartitionKey": "k", "Data": "aGk="},
            {"PartitionKey": "k", "Data": "aGk=",
             "ExplicitHashKey": "340282366920938463463374607431768211456"},
        ]}),
        "InvalidArgumentException",
    )
    .await;
    assert!(m.starts_with("Records[1]: Invalid ExplicitHashKey."), "{m}");
    // Neither StreamName nor StreamARN stays an InvalidArgumentException.
    fails(
        &s,
        "no stream",
        "DescribeStreamSummary",
        json!({}),
        "InvalidArgumentException",
    )
    .await;
}

#[tokio::test]
async fn type_errors_come_before_every_other_check() {
    let s = server_with_stream("t").await;
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "bad name and ShardCount as a string",
            "CreateStream",
            json!({"StreamName": "a b", "ShardCount": "1"}),
            "ShardCount must be an integer, found a string",
        ),
        (
            "a fractional ShardCount",
            "CreateStream",
            json!({"StreamName": "x", "ShardCount": 1.5}),
            "ShardCount must be an integer, found a number",
        ),
        (
            "a tag value that is a number",
            "CreateStream",
            json!({"StreamName": "x", "Tags": {"k": 1}}),
            "Tags[\"k\"] must be a string, found a number",
        ),
        (
            "StreamModeDetails as a string",
            "CreateStream",
            json!({"StreamName": "", "StreamModeDetails": "ON_DEMAND"}),
            "StreamModeDetails must be a structure, found a string",
        ),
        (
            "a bad record before a record of the wrong type",
            "PutRecords",
            json!({"StreamName": "t", "Records": [
                {"PartitionKey": "", "Data": "aGk="}, {"PartitionKey": 5, "Data": "aGk="}]}),
            "Records[1].PartitionKey must be a string, found a number",
        ),
        (
            "Data that is not base64 with a missing stream name",
            "PutRecord",
            json!({"StreamName": "", "PartitionKey": "k", "Data": "***"}),
            "Data is not valid base64",
        ),
        (
            "EnforceConsumerDeletion as a string",
            "DeleteStream",
            json!({"StreamName": "t", "EnforceConsumerDeletion": "yes"}),
            "EnforceConsumerDeletion must be a boolean, found a string",
        ),
        (
            "ShardFilter.Type as a number",
            "ListShards",
            json!({"StreamName": "t", "MaxResults": 0, "ShardFilter": {"Type": 3}}),
            "ShardFilter.Type must be a string, found a number",
        ),
        (
            "a timestamp that is a boolean",
            "GetShardIterator",
            json!({"StreamName": "t", "ShardId": "shardId-000000000000",
                   "ShardIteratorType": "NOPE", "Timestamp": true}),
            "Timestamp must be a timestamp, found a boolean",
        ),
        (
            "TagKeys of numbers",
            "RemoveTagsFromStream",
            json!({"StreamName": "t", "TagKeys": ["a", 2]}),
            "TagKeys[1] must be a string, found a number",
        ),
    ];
    for (what, op, body, phrase) in cases {
        let m = fails(&s, what, op, body, "SerializationException").await;
        assert!(
            m.contains(phrase),
            "{what}: {m:?} should contain {phrase:?}"
        );
    }
    // The same in CBOR: a text ShardCount beside an invalid name.
    let r = post(
        &s,
        "CreateStream",
        CBOR,
        cbor_map(vec![
            ("StreamName", Cbor::Text("a b".into())),
            ("ShardCount", Cbor::Text("2".into())),
        ]),
    )
    .await;
    assert_eq!(r.status, 400);
    let v: Cbor = ciborium::from_reader(r.body.as_slice()).unwrap();
    assert_eq!(
        cbor_get(&v, "__type").as_text(),
        Some("SerializationException")
    );
    // Unknown members are ignored, as AWS does.
    ok(
        &s,
        "DescribeStreamSummary",
        json!({"StreamName": "t", "SomethingNew": [1, 2]}),
    )
    .await;
    // Nothing was created by the rejected calls.
    let v = ok(&s, "ListStreams", json!({})).await;
    assert_eq!(v["StreamNames"], json!(["t"]));
}

fn is_uuid_v4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
        && parts[2].starts_with('4')
        && matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b')
}

#[tokio::test]
async fn every_reply_has_a_request_id_and_errors_an_error_type_header() {
    let s = server_with_stream("h").await;
    let a = call(&s, "DescribeStreamSummary", json!({"StreamName": "h"})).await;
    let b = call(&s, "DescribeStreamSummary", json!({"StreamName": "h"})).await;
    assert_eq!(a.status, 200);
    let (ida, idb) = (
        a.header("x-amzn-requestid")
            .expect("request id on a success"),
        b.header("x-amzn-requestid").unwrap(),
    );
    assert!(is_uuid_v4(&ida), "{ida}");
    assert_ne!(ida, idb);
    assert_eq!(
        a.header("x-amzn-errortype"),
        None,
        "no error type on a success"
    );

    let errors: Vec<(&str, Reply)> = vec![
        (
            "missing stream",
            call(&s, "DescribeStreamSummary", json!({"StreamName": "nosuch"})).await,
        ),
        (
            "validation",
            call(&s, "CreateStream", json!({"StreamName": ""})).await,
        ),
        (
            "serialization",
            post(&s, "PutRecord", JSON, b"{not json".to_vec()).await,
        ),
        ("unknown operation", call(&s, "Frobnicate", json!({})).await),
        (
            "body too large",
            post(
                &s,
                "PutRecord",
                JSON,
                vec![b' '; millrace_gateway::MAX_BODY_BYTES + 1],
            )
            .await,
        ),
    ];
    for (what, r) in &errors {
        assert!(r.status >= 400, "{what}");
        let (ty, _) = r.error();
        let header = r
            .header("x-amzn-errortype")
            .unwrap_or_else(|| panic!("{what}: no x-amzn-ErrorType header"));
        // botocore and aws-sdk-rust keep what comes before the first ':'.
        assert_eq!(header.split(':').next(), Some(ty.as_str()), "{what}");
        assert!(header.contains(':'), "{what}: {header}");
        let id = r.header("x-amzn-requestid").unwrap_or_default();
        assert!(is_uuid_v4(&id), "{what}: request id {id:?}");
    }
    // CBOR errors carry them too.
    let r = post(
        &s,
        "DescribeStreamSummary",
        CBOR,
        cbor_map(vec![("StreamName", Cbor::Text("nosuch".into()))]),
    )
    .await;
    assert_eq!(
        r.header("x-amzn-errortype")
            .as_deref()
            .and_then(|h| h.split(':').next()),
        Some("ResourceNotFoundException")
    );
    assert!(is_uuid_v4(&r.header("x-amzn-requestid").unwrap()));

    // The Rust SDK reads the type the server sent.
    let sdk = s.sdk().await;
    let err = sdk
        .describe_stream_summary()
        .stream_name("nosuch")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_resource_not_found_exception(), "{err:?}");
    use aws_sdk_kinesis::operation::RequestId;
    let id = err.request_id().expect("the SDK reads x-amzn-RequestId");
    assert!(is_uuid_v4(id), "{id}");
}

#[tokio::test]
async fn sequence_number_for_ordering_is_validated() {
    let s = server_with_stream("o").await;
    let put = |ordering: Value| {
        json!({"StreamName": "o", "PartitionKey": "k", "Data": "aGk=",
               "SequenceNumberForOrdering": ordering})
    };
    for bad in [
        "01".to_owned(),
        "abc".to_owned(),
        "-1".to_owned(),
        "".to_owned(),
        format!("1{}", "0".repeat(129)),
    ] {
        let m = fails(
            &s,
            &format!("ordering {bad:?}"),
            "PutRecord",
            put(json!(bad)),
            "ValidationException",
        )
        .await;
        assert!(
            m.contains(
                "at 'sequenceNumberForOrdering' failed to satisfy constraint: Member must \
                 satisfy regular expression pattern: 0|([1-9]\\d{0,128})"
            ),
            "{bad:?}: {m}"
        );
    }
    // Chained puts get strictly increasing sequence numbers.
    let mut last = ok(&s, "PutRecord", put(json!("0"))).await["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..5 {
        let v = ok(&s, "PutRecord", put(json!(last.clone()))).await;
        let seq = v["SequenceNumber"].as_str().unwrap().to_owned();
        assert!(seq_gt(&seq, &last), "{seq} after {last}");
        last = seq;
    }
    // The largest value the pattern allows is accepted.
    ok(&s, "PutRecord", put(json!(format!("1{}", "0".repeat(128))))).await;
}

#[tokio::test]
async fn timestamps_in_the_future_are_invalid_arguments() {
    let s = server_with_stream("f").await;
    let future_s = (now_ms() + 3_600_000) as f64 / 1000.0;
    let m = fails(
        &s,
        "AT_TIMESTAMP an hour ahead",
        "GetShardIterator",
        json!({"StreamName": "f", "ShardId": "shardId-000000000000",
               "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": future_s}),
        "InvalidArgumentException",
    )
    .await;
    assert!(
        m.starts_with(
            "The timestampInMillis parameter cannot be greater than the \
             currentTimestampInMillis. timestampInMillis: "
        ),
        "{m}"
    );
    let m = fails(
        &s,
        "ListShards AT_TIMESTAMP an hour ahead",
        "ListShards",
        json!({"StreamName": "f", "ShardFilter": {"Type": "AT_TIMESTAMP", "Timestamp": future_s}}),
        "InvalidArgumentException",
    )
    .await;
    assert!(
        m.contains("cannot be greater than the currentTimestampInMillis"),
        "{m}"
    );
    // The past (after the shard opened) is fine.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let past = (now_ms() - 10) as f64 / 1000.0;
    ok(
        &s,
        "GetShardIterator",
        json!({"StreamName": "f", "ShardId": "shardId-000000000000",
               "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": past}),
    )
    .await;
    let v = ok(
        &s,
        "ListShards",
        json!({"StreamName": "f", "ShardFilter": {"Type": "AT_TIMESTAMP", "Timestamp": past}}),
    )
    .await;
    assert_eq!(v["Shards"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn tags_are_checked_for_the_characters_aws_allows() {
    let s = server_with_stream("g").await;
    let add = |tags: Value| json!({"StreamName": "g", "Tags": tags});
    for (what, tags, phrase) in [
        ("'!' in a key", json!({"k!": "v"}), "invalid characters"),
        ("'#' in a value", json!({"k": "v#"}), "invalid characters"),
        ("a ':' in a key", json!({"a:b": "v"}), "invalid characters"),
        (
            "a control character",
            json!({"k": "a\u{1}b"}),
            "invalid characters",
        ),
        (
            "the aws: prefix",
            json!({"aws:team": "x"}),
            "reserved prefix",
        ),
        (
            "the AWS: prefix",
            json!({"AWS:team": "x"}),
            "reserved prefix",
        ),
    ] {
        let m = fails(
            &s,
            what,
            "AddTagsToStream",
            add(tags),
            "InvalidArgumentException",
        )
        .await;
        assert!(m.contains(phrase), "{what}: {m}");
    }
    let m = fails(
        &s,
        "long key and value",
        "AddTagsToStream",
        add(json!({"k".repeat(129): "v".repeat(257)})),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("2 validation errors detected: "), "{m}");
    assert!(
        m.contains("Member must have length less than or equal to 128"),
        "{m}"
    );
    assert!(
        m.contains("Member must have length less than or equal to 256"),
        "{m}"
    );

    // Every allowed class: Unicode letters and digits, white space, _ . / = + - % @.
    let key = format!("Ünï cödé_./=+-%@1{}", "k".repeat(128 - 17));
    assert_eq!(key.chars().count(), 128);
    let value = format!("välue ٣ @%\t{}", "v".repeat(245));
    assert_eq!(value.chars().count(), 256);
    ok(
        &s,
        "AddTagsToStream",
        add(json!({key.clone(): value.clone(), "empty": ""})),
    )
    .await;
    let v = ok(&s, "ListTagsForStream", json!({"StreamName": "g"})).await;
    let tags = v["Tags"].as_array().unwrap();
    assert!(
        tags.iter()
            .any(|t| t["Key"] == key.as_str() && t["Value"] == value.as_str()),
        "{v}"
    );
    assert!(
        tags.iter()
            .all(|t| !t["Key"].as_str().unwrap().contains('!')),
        "no rejected tag was stored: {v}"
    );

    // CreateStream checks its Tags the same way, and creates nothing when they are refused.
    let m = fails(
        &s,
        "CreateStream with an aws: tag",
        "CreateStream",
        json!({"StreamName": "g2", "ShardCount": 1, "Tags": {"aws:x": "y"}}),
        "InvalidArgumentException",
    )
    .await;
    assert!(m.contains("reserved prefix"), "{m}");
    let m = fails(
        &s,
        "CreateStream with a long tag key and no shards",
        "CreateStream",
        json!({"StreamName": "g2", "ShardCount": 0, "Tags": {"k".repeat(129): "v"}}),
        "ValidationException",
    )
    .await;
    assert!(m.starts_with("2 validation errors detected: "), "{m}");
    let v = ok(&s, "ListStreams", json!({})).await;
    assert_eq!(v["StreamNames"], json!(["g"]));
}

/// The text of member `key`'s value in a raw JSON reply (numbers as sent, not as parsed).
fn raw_number<'a>(body: &'a str, key: &str) -> &'a str {
    let at = body
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("no {key} in {body}"))
        + key.len()
        + 3;
    let rest = &body[at..];
    let end = rest
        .find(|c: char| c != '.' && !c.is_ascii_digit())
        .unwrap_or(rest.len());
    &rest[..end]
}

#[tokio::test]
async fn timestamps_are_epoch_seconds_in_json_and_tag_1_in_cbor() {
    let s = server_with_stream("ts").await;
    let put =
        |data: &[u8]| json!({"StreamName": "ts", "PartitionKey": "k", "Data": B64.encode(data)});
    // A whole second between two records, so every encoding below can name it exactly.
    ok(&s, "PutRecord", put(b"before")).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let between = (now_ms() / 1000 + 1) * 1000;
    tokio::time::sleep(Duration::from_millis((between - now_ms()) as u64 + 30)).await;
    ok(&s, "PutRecord", put(b"after")).await;

    // JSON replies: epoch seconds with three decimals.
    let r = call(&s, "DescribeStreamSummary", json!({"StreamName": "ts"})).await;
    let body = String::from_utf8(r.body.clone()).unwrap();
    let created = raw_number(&body, "StreamCreationTimestamp");
    let (secs, frac) = created.split_once('.').expect("fractional seconds");
    assert_eq!(frac.len(), 3, "{created}");
    let secs: i64 = secs.parse().unwrap();
    assert!(
        (secs - now_ms() / 1000).abs() < 60,
        "{created} is epoch seconds"
    );

    // CBOR replies: tag 1 around integer epoch milliseconds.
    let r = post(
        &s,
        "DescribeStreamSummary",
        CBOR,
        cbor_map(vec![("StreamName", Cbor::Text("ts".into()))]),
    )
    .await;
    let v: Cbor = ciborium::from_reader(r.body.as_slice()).unwrap();
    match cbor_get(
        cbor_get(&v, "StreamDescriptionSummary"),
        "StreamCreationTimestamp",
    ) {
        Cbor::Tag(1, inner) => {
            let ms = i128::from(inner.as_integer().expect("integer milliseconds"));
            assert!((ms as i64 - now_ms()).abs() < 60_000, "{ms} is epoch ms");
        }
        other => panic!("CBOR timestamp is not tag 1: {other:?}"),
    }

    // CBOR requests: tag 1 with milliseconds (the AWS SDKs) or seconds (RFC 8949, integer or
    // float), or an untagged number, all name the same instant.
    let encodings = [
        (
            "tag 1 ms",
            Cbor::Tag(1, Box::new(Cbor::Integer(between.into()))),
        ),
        (
            "tag 1 float seconds",
            Cbor::Tag(1, Box::new(Cbor::Float(between as f64 / 1000.0))),
        ),
        (
            "tag 1 integer seconds",
            Cbor::Tag(1, Box::new(Cbor::Integer((between / 1000).into()))),
        ),
        ("untagged ms", Cbor::Integer(between.into())),
    ];
    for (what, ts) in encodings {
        let r = post(
            &s,
            "GetShardIterator",
            CBOR,
            cbor_map(vec![
                ("StreamName", Cbor::Text("ts".into())),
                ("ShardId", Cbor::Text("shardId-000000000000".into())),
                ("ShardIteratorType", Cbor::Text("AT_TIMESTAMP".into())),
                ("Timestamp", ts),
            ]),
        )
        .await;
        assert_eq!(r.status, 200, "{what}: {:?}", r.body);
        let v: Cbor = ciborium::from_reader(r.body.as_slice()).unwrap();
        let it = cbor_get(&v, "ShardIterator").as_text().unwrap().to_owned();
        let recs = ok(&s, "GetRecords", json!({"ShardIterator": it})).await;
        let first = recs["Records"]
            .as_array()
            .and_then(|a| a.first())
            .map(|r| B64.decode(r["Data"].as_str().unwrap()).unwrap());
        assert_eq!(first.as_deref(), Some(&b"after"[..]), "{what}");
    }
}
