//! Bad input must get the AWS error type (`__type`) and HTTP status a Kinesis client expects,
//! with a message that says what is wrong, and must leave the server up and its data intact.
//!
//! Every test that writes to a stream ends with [`assert_intact`]: the stream holds exactly
//! the records that were acknowledged (no rejected record slipped in, no good one was lost)
//! and a fresh PutRecord + GetRecords round trip still works.

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ciborium::Value as Cbor;
use reqwest::Method;
use serde_json::{Value, json};

use common::TestServer;

const JSON: &str = "application/x-amz-json-1.1";
const CBOR: &str = "application/x-amz-cbor-1.1";
const PREFIX: &str = "Kinesis_20131202.";
const MIB: usize = 1024 * 1024;
/// 2^128 - 1, the largest hash key.
const MAX_HASH_KEY: &str = "340282366920938463463374607431768211455";
/// 2^128, one past the key space.
const TWO_POW_128: &str = "340282366920938463463374607431768211456";

const SERIALIZATION: &str = "SerializationException";
const VALIDATION: &str = "ValidationException";
const INVALID_ARGUMENT: &str = "InvalidArgumentException";
const NOT_FOUND: &str = "ResourceNotFoundException";
const IN_USE: &str = "ResourceInUseException";
const UNKNOWN_OPERATION: &str = "UnknownOperationException";
const TOO_LARGE: &str = "RequestEntityTooLargeException";

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

/// A reply, with what is needed to check its framing.
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    /// Whether the request was CBOR (the reply must then be CBOR too).
    sent_cbor: bool,
}

impl Reply {
    fn text(&self) -> String {
        let end = self.body.len().min(600);
        String::from_utf8_lossy(&self.body[..end]).into_owned()
    }

    fn json(&self) -> Value {
        assert_eq!(self.content_type, JSON, "reply content type");
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {}", self.text()))
    }

    fn cbor(&self) -> Cbor {
        assert_eq!(self.content_type, CBOR, "reply content type");
        ciborium::from_reader(self.body.as_slice())
            .unwrap_or_else(|e| panic!("reply is not CBOR ({e}): {:?}", self.body))
    }

    /// `(__type, message)` of an error reply in either protocol.
    fn error(&self) -> (String, String) {
        if self.sent_cbor {
            let v = self.cbor();
            let text = |k: &str| match cbor_field(&v, k) {
                Some(Cbor::Text(s)) => s.clone(),
                other => panic!("CBOR error body has no text {k}: {other:?} in {v:?}"),
            };
            (text("__type"), text("message"))
        } else {
            let v = self.json();
            let text = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("JSON error body has no string {k}: {v}"))
                    .to_owned()
            };
            (text("__type"), text("message"))
        }
    }
}

/// Sends one request with full control over method, `X-Amz-Target` and `Content-Type`.
async fn send(
    s: &TestServer,
    method: Method,
    target: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut req = reqwest::Client::new().request(method, &s.url).body(body);
    if let Some(t) = target {
        req = req.header("x-amz-target", t);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.expect("the server answers the request");
    let status = resp.status().as_u16();
    let reply_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp.bytes().await.expect("the reply body arrives").to_vec();
    Reply {
        status,
        content_type: reply_type,
        body,
        sent_cbor: content_type.is_some_and(|ct| ct.contains("cbor")),
    }
}

async fn post(s: &TestServer, op: &str, content_type: &str, body: Vec<u8>) -> Reply {
    send(
        s,
        Method::POST,
        Some(&format!("{PREFIX}{op}")),
        Some(content_type),
        body,
    )
    .await
}

/// Posts a JSON request.
async fn call(s: &TestServer, op: &str, body: Value) -> Reply {
    post(s, op, JSON, serde_json::to_vec(&body).unwrap()).await
}

/// Posts a JSON request that must succeed and returns the parsed reply.
async fn ok(s: &TestServer, op: &str, body: Value) -> Value {
    let r = call(s, op, body).await;
    assert_eq!(r.status, 200, "{op} should succeed: {}", r.text());
    r.json()
}

/// Checks an error reply: status, exact `__type`, a key phrase of the message, and that the
/// error is framed in the protocol of the request.
fn assert_error(what: &str, r: &Reply, status: u16, ty: &str, phrase: &str) -> String {
    assert!(
        r.status >= 400,
        "{what}: expected {status} {ty}, but the call succeeded with {}: {}",
        r.status,
        r.text()
    );
    let want_ct = if r.sent_cbor { CBOR } else { JSON };
    assert_eq!(
        r.content_type,
        want_ct,
        "{what}: reply content type (body {})",
        r.text()
    );
    let (got_ty, message) = r.error();
    assert_eq!(got_ty, ty, "{what}: __type (message: {message})");
    assert_eq!(r.status, status, "{what}: HTTP status (message: {message})");
    assert!(
        message.contains(phrase),
        "{what}: message {message:?} should contain {phrase:?}"
    );
    message
}

/// Posts a JSON request that must fail with a 400 of type `ty` whose message has `phrase`.
async fn expect_error(s: &TestServer, what: &str, op: &str, body: Value, ty: &str, phrase: &str) {
    let r = call(s, op, body).await;
    assert_error(&format!("{op}: {what}"), &r, 400, ty, phrase);
}

/// [`expect_error`] for each `(what, operation, body, phrase)` of `cases`, all of type `ty`.
async fn expect_errors(s: &TestServer, ty: &str, cases: Vec<(&str, &str, Value, &str)>) {
    for (what, op, body, phrase) in cases {
        expect_error(s, what, op, body, ty, phrase).await;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ---------------------------------------------------------------------------------------------
// Streams, records and the integrity check
// ---------------------------------------------------------------------------------------------

/// One acknowledged record.
#[derive(Clone)]
struct Rec {
    shard: String,
    seq: String,
    pk: String,
    data: Vec<u8>,
}

/// A stream and every record acknowledged on it, in the order they were acknowledged.
struct Seeded {
    stream: String,
    records: Vec<Rec>,
}

async fn create_stream(s: &TestServer, name: &str, shards: u32) {
    ok(
        s,
        "CreateStream",
        json!({"StreamName": name, "ShardCount": shards}),
    )
    .await;
}

async fn put(s: &TestServer, stream: &str, pk: &str, data: &[u8], ehk: Option<&str>) -> Rec {
    let mut body = json!({"StreamName": stream, "PartitionKey": pk, "Data": B64.encode(data)});
    if let Some(h) = ehk {
        body["ExplicitHashKey"] = json!(h);
    }
    let v = ok(s, "PutRecord", body).await;
    Rec {
        shard: v["ShardId"].as_str().expect("ShardId").to_owned(),
        seq: v["SequenceNumber"]
            .as_str()
            .expect("SequenceNumber")
            .to_owned(),
        pk: pk.to_owned(),
        data: data.to_vec(),
    }
}

/// Creates a stream and writes a few good records (binary data, several partition keys).
async fn seed(s: &TestServer, stream: &str, shards: u32) -> Seeded {
    create_stream(s, stream, shards).await;
    let mut records = Vec::new();
    for i in 0..8u8 {
        let mut data = format!("seed record {i} of {stream}").into_bytes();
        data.extend_from_slice(&[0, 0xff, i]);
        records.push(put(s, stream, &format!("seed-{i}"), &data, None).await);
    }
    Seeded {
        stream: stream.to_owned(),
        records,
    }
}

/// A fresh server with one seeded stream (see [`seed`]).
async fn seeded_server(stream: &str, shards: u32) -> (TestServer, Seeded) {
    let s = TestServer::start().await;
    let seeded = seed(&s, stream, shards).await;
    (s, seeded)
}

async fn shard_ids(s: &TestServer, stream: &str) -> Vec<String> {
    let v = ok(s, "ListShards", json!({"StreamName": stream})).await;
    v["Shards"]
        .as_array()
        .expect("Shards")
        .iter()
        .map(|sh| sh["ShardId"].as_str().unwrap().to_owned())
        .collect()
}

async fn iterator(
    s: &TestServer,
    stream: &str,
    shard: &str,
    kind: &str,
    seq: Option<&str>,
) -> String {
    let mut body = json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": kind});
    if let Some(seq) = seq {
        body["StartingSequenceNumber"] = json!(seq);
    }
    let v = ok(s, "GetShardIterator", body).await;
    v["ShardIterator"]
        .as_str()
        .expect("ShardIterator")
        .to_owned()
}

fn rec_from(shard: &str, r: &Value) -> Rec {
    Rec {
        shard: shard.to_owned(),
        seq: r["SequenceNumber"].as_str().unwrap().to_owned(),
        pk: r["PartitionKey"].as_str().unwrap().to_owned(),
        data: B64.decode(r["Data"].as_str().unwrap()).unwrap(),
    }
}

/// Every record of a shard, from the trim horizon to the tip.
async fn read_shard(s: &TestServer, stream: &str, shard: &str) -> Vec<Rec> {
    let mut it = iterator(s, stream, shard, "TRIM_HORIZON", None).await;
    let mut out = Vec::new();
    loop {
        let v = ok(s, "GetRecords", json!({"ShardIterator": it})).await;
        let records = v["Records"].as_array().expect("Records");
        if records.is_empty() {
            break;
        }
        out.extend(records.iter().map(|r| rec_from(shard, r)));
        it = v["NextShardIterator"].as_str().unwrap().to_owned();
    }
    out
}

fn assert_same_record(what: &str, got: &Rec, want: &Rec) {
    assert_eq!(
        (&got.shard, &got.seq, &got.pk, got.data.len()),
        (&want.shard, &want.seq, &want.pk, want.data.len()),
        "{what}: record differs"
    );
    assert!(
        got.data == want.data,
        "{what}: data of record {} differs",
        want.seq
    );
}

/// The stream holds exactly the acknowledged records, and a new record round-trips.
async fn assert_intact(s: &TestServer, seeded: &Seeded) {
    let stream = &seeded.stream;
    let mut stored = Vec::new();
    for shard in shard_ids(s, stream).await {
        stored.extend(read_shard(s, stream, &shard).await);
    }
    let mut want = seeded.records.clone();
    let key = |r: &Rec| (r.shard.clone(), r.seq.clone());
    stored.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(
        stored.iter().map(key).collect::<Vec<_>>(),
        want.iter().map(key).collect::<Vec<_>>(),
        "stream {stream} must hold exactly the acknowledged records"
    );
    for (got, want) in stored.iter().zip(&want) {
        assert_same_record(&format!("stream {stream}"), got, want);
    }

    let data = b"\x00after the bad input\xff".to_vec();
    let fresh = put(s, stream, "after-bad-input", &data, None).await;
    let it = iterator(
        s,
        stream,
        &fresh.shard,
        "AT_SEQUENCE_NUMBER",
        Some(&fresh.seq),
    )
    .await;
    let v = ok(s, "GetRecords", json!({"ShardIterator": it, "Limit": 1})).await;
    let records = v["Records"].as_array().expect("Records");
    assert_eq!(records.len(), 1, "round trip after bad input: {v}");
    assert_same_record(
        "round trip after bad input",
        &rec_from(&fresh.shard, &records[0]),
        &fresh,
    );
}

// ---------------------------------------------------------------------------------------------
// CBOR helpers
// ---------------------------------------------------------------------------------------------

fn cbor_bytes(v: &Cbor) -> Vec<u8> {
    let mut buf = Vec::new();
    ciborium::into_writer(v, &mut buf).unwrap();
    buf
}

fn cbor_map(pairs: Vec<(&str, Cbor)>) -> Vec<u8> {
    cbor_bytes(&Cbor::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Cbor::Text(k.to_owned()), v))
            .collect(),
    ))
}

fn cbor_field<'a>(v: &'a Cbor, key: &str) -> Option<&'a Cbor> {
    match v {
        Cbor::Map(m) => m
            .iter()
            .find(|(k, _)| matches!(k, Cbor::Text(t) if t == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn cbor_text<'a>(v: &'a Cbor, key: &str) -> &'a str {
    match cbor_field(v, key) {
        Some(Cbor::Text(s)) => s,
        other => panic!("{key} should be a CBOR text string, found {other:?}"),
    }
}

fn text(s: &str) -> Cbor {
    Cbor::Text(s.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Framing: body, target, method
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_a_serialization_exception() {
    let (s, seeded) = seeded_server("framing", 1).await;

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated object",
            br#"{"StreamName": "framing", "PartitionKey": "k", "Data": "aGk="#.to_vec(),
            "not valid JSON",
        ),
        ("truncated after brace", b"{".to_vec(), "not valid JSON"),
        (
            "not JSON at all",
            b"this is not json".to_vec(),
            "not valid JSON",
        ),
        (
            "JSON array instead of an object",
            br#"[{"StreamName": "framing", "PartitionKey": "k", "Data": "aGk="}]"#.to_vec(),
            "must be an object, found a list",
        ),
        (
            "JSON string instead of an object",
            br#""framing""#.to_vec(),
            "must be an object, found a string",
        ),
        (
            "JSON number",
            b"42".to_vec(),
            "must be an object, found a number",
        ),
        (
            "JSON null",
            b"null".to_vec(),
            "must be an object, found null",
        ),
        (
            "invalid UTF-8 inside a string",
            b"{\"StreamName\": \"fr\xff\xfeming\"}".to_vec(),
            "not valid JSON",
        ),
        (
            "nesting deeper than any parser allows",
            format!("{{\"StreamName\": {}", "[".repeat(100_000)).into_bytes(),
            "not valid JSON",
        ),
    ];
    for op in ["PutRecord", "CreateStream", "GetRecords"] {
        for (what, body, phrase) in &cases {
            let r = post(&s, op, JSON, body.clone()).await;
            assert_error(&format!("{op}: {what}"), &r, 400, SERIALIZATION, phrase);
        }
    }
    assert_intact(&s, &seeded).await;
}

#[tokio::test]
async fn bad_targets_and_methods_are_unknown_operations() {
    let (s, seeded) = seeded_server("targets", 1).await;
    let body = serde_json::to_vec(&json!({"StreamName": "targets"})).unwrap();

    // (what, method, X-Amz-Target, Content-Type, body, phrase): each is refused as an unknown
    // operation.
    let frobnicate = Some("Kinesis_20131202.Frobnicate");
    let post_json = |what: &str, target: Option<&'static str>, phrase| {
        let json = Some(JSON);
        (
            what.to_owned(),
            Method::POST,
            target,
            json,
            body.clone(),
            phrase,
        )
    };
    let mut cases = vec![
        post_json("no X-Amz-Target", None, "X-Amz-Target"),
        post_json("unknown operation", frobnicate, "Frobnicate"),
    ];
    for target in [
        "Kinesis_20131203.DescribeStream",
        "kinesis_20131202.DescribeStream",
        "DynamoDB_20120810.DescribeStream",
        "DescribeStream",
        "Kinesis_20131202.",
        "",
    ] {
        let what = format!("target {target:?}");
        cases.push(post_json(&what, Some(target), "X-Amz-Target"));
    }
    // The operation name is case sensitive, as in Kinesis.
    let lower = Some("Kinesis_20131202.describestream");
    cases.push(post_json("lower-case operation", lower, "describestream"));
    let describe = Some("Kinesis_20131202.DescribeStream");
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let what = format!("{method} request");
        cases.push((what, method, describe, Some(JSON), Vec::new(), "POST"));
    }
    let bare = "bare GET without target".to_owned();
    cases.push((bare, Method::GET, None, None, Vec::new(), "POST"));
    for (what, method, target, content_type, body, phrase) in cases {
        let r = send(&s, method, target, content_type, body).await;
        assert_error(&what, &r, 400, UNKNOWN_OPERATION, phrase);
    }

    // A target is checked before the body: an unknown operation with a broken body is still
    // an unknown operation, not a crash.
    let r = send(
        &s,
        Method::POST,
        frobnicate,
        Some(JSON),
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(r.status, 400, "Frobnicate with a broken body: {}", r.text());

    assert_intact(&s, &seeded).await;
}

// ---------------------------------------------------------------------------------------------
// Member types and required members
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn wrong_member_types_are_serialization_exceptions() {
    let (s, seeded) = seeded_server("types", 2).await;
    let it = iterator(&s, "types", &seeded.records[0].shard, "TRIM_HORIZON", None).await;

    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "ShardCount as a string",
            "CreateStream",
            json!({"StreamName": "typed", "ShardCount": "1"}),
            "ShardCount must be an integer, found a string",
        ),
        (
            "StreamName as a number",
            "CreateStream",
            json!({"StreamName": 7, "ShardCount": 1}),
            "StreamName must be a string, found a number",
        ),
        (
            "StreamName as a number",
            "DescribeStream",
            json!({"StreamName": 7}),
            "StreamName must be a string, found a number",
        ),
        (
            "StreamName as a list",
            "PutRecord",
            json!({"StreamName": ["types"], "PartitionKey": "k", "Data": "aGk="}),
            "StreamName must be a string, found a list",
        ),
        (
            "Data not base64",
            "PutRecord",
            json!({"StreamName": "types", "PartitionKey": "k", "Data": "this is *not* base64!"}),
            "Data is not valid base64",
        ),
        (
            "Data base64 without padding",
            "PutRecord",
            json!({"StreamName": "types", "PartitionKey": "k", "Data": "aGk"}),
            "Data is not valid base64",
        ),
        (
            "Data as a number",
            "PutRecord",
            json!({"StreamName": "types", "PartitionKey": "k", "Data": 12}),
            "Data must be a base64-encoded blob, found a number",
        ),
        (
            "PartitionKey as a number",
            "PutRecord",
            json!({"StreamName": "types", "PartitionKey": 5, "Data": "aGk="}),
            "PartitionKey must be a string, found a number",
        ),
        (
            "ExplicitHashKey as a number",
            "PutRecord",
            json!({"StreamName": "types", "PartitionKey": "k", "Data": "aGk=", "ExplicitHashKey": 5}),
            "ExplicitHashKey must be a string",
        ),
        (
            "Records as a structure",
            "PutRecords",
            json!({"StreamName": "types", "Records": {"PartitionKey": "k", "Data": "aGk="}}),
            "Records must be a list, found a structure",
        ),
        (
            "Records as a string",
            "PutRecords",
            json!({"StreamName": "types", "Records": "aGk="}),
            "Records must be a list, found a string",
        ),
        (
            "a record that is not a structure",
            "PutRecords",
            json!({"StreamName": "types", "Records": [{"PartitionKey": "k", "Data": "aGk="}, "x"]}),
            "Records[1] must be a structure",
        ),
        (
            "a record whose Data is not base64",
            "PutRecords",
            json!({"StreamName": "types", "Records": [{"PartitionKey": "k", "Data": "%%%"}]}),
            "Records[0].Data is not valid base64",
        ),
        (
            "Limit as a string",
            "GetRecords",
            json!({"ShardIterator": it, "Limit": "10"}),
            "Limit must be an integer, found a string",
        ),
        (
            "ShardIterator as a structure",
            "GetRecords",
            json!({"ShardIterator": {"it": 1}}),
            "ShardIterator must be a string, found a structure",
        ),
        (
            "RetentionPeriodHours as a boolean",
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": "types", "RetentionPeriodHours": true}),
            "RetentionPeriodHours must be an integer, found a boolean",
        ),
        (
            "Timestamp that is not a timestamp",
            "GetShardIterator",
            json!({"StreamName": "types", "ShardId": "shardId-000000000000",
                   "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": "yesterday"}),
            "Timestamp is not a timestamp",
        ),
    ];
    expect_errors(&s, SERIALIZATION, cases).await;

    // None of the rejected CreateStream calls created a stream.
    expect_error(
        &s,
        "stream from a rejected CreateStream",
        "DescribeStreamSummary",
        json!({"StreamName": "typed"}),
        NOT_FOUND,
        "not found",
    )
    .await;
    assert_intact(&s, &seeded).await;
}

#[tokio::test]
async fn missing_required_members_are_validation_exceptions_naming_the_member() {
    let (s, seeded) = seeded_server("required", 1).await;
    let shard = seeded.records[0].shard.clone();

    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "no StreamName",
            "CreateStream",
            json!({"ShardCount": 1}),
            "Value null at 'streamName' failed to satisfy constraint: Member must not be null",
        ),
        (
            "StreamName null",
            "CreateStream",
            json!({"StreamName": null, "ShardCount": 1}),
            "Value null at 'streamName'",
        ),
        (
            "ShardCount 0",
            "CreateStream",
            json!({"StreamName": "zero", "ShardCount": 0}),
            "at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1",
        ),
        (
            "no PartitionKey",
            "PutRecord",
            json!({"StreamName": "required", "Data": "aGk="}),
            "Value null at 'partitionKey' failed to satisfy constraint: Member must not be null",
        ),
        (
            "no Data",
            "PutRecord",
            json!({"StreamName": "required", "PartitionKey": "k"}),
            "Value null at 'data' failed to satisfy constraint: Member must not be null",
        ),
        (
            "no Records",
            "PutRecords",
            json!({"StreamName": "required"}),
            "Value null at 'records' failed to satisfy constraint: Member must not be null",
        ),
        (
            "a record without Data",
            "PutRecords",
            json!({"StreamName": "required", "Records": [{"PartitionKey": "k", "Data": "aGk="}, {"PartitionKey": "k"}]}),
            "Value null at 'records.2.member.data' failed to satisfy constraint: Member must not be null",
        ),
        (
            "no ShardId",
            "GetShardIterator",
            json!({"StreamName": "required", "ShardIteratorType": "LATEST"}),
            "Value null at 'shardId'",
        ),
        (
            "no ShardIteratorType",
            "GetShardIterator",
            json!({"StreamName": "required", "ShardId": shard}),
            "Value null at 'shardIteratorType'",
        ),
        (
            "no ShardIterator",
            "GetRecords",
            json!({"Limit": 5}),
            "Value null at 'shardIterator'",
        ),
        (
            "no RetentionPeriodHours",
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": "required"}),
            "Value null at 'retentionPeriodHours'",
        ),
    ];
    expect_errors(&s, VALIDATION, cases).await;

    // Without StreamName or StreamARN, operations that accept either say so.
    expect_errors(
        &s,
        INVALID_ARGUMENT,
        vec![
            (
                "neither StreamName nor StreamARN",
                "PutRecord",
                json!({"PartitionKey": "k", "Data": "aGk="}),
                "Either StreamName or StreamARN should be provided",
            ),
            (
                "empty body",
                "DescribeStream",
                json!({}),
                "StreamName or StreamARN",
            ),
        ],
    )
    .await;
    // An empty (zero-byte) body is an empty request, not a crash.
    let r = post(&s, "CreateStream", JSON, Vec::new()).await;
    assert_error(
        "CreateStream with an empty body",
        &r,
        400,
        VALIDATION,
        "'streamName'",
    );
    assert_intact(&s, &seeded).await;
}

// ---------------------------------------------------------------------------------------------
// Stream names and existence
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stream_names_are_validated_and_existence_is_checked() {
    let (s, seeded) = seeded_server("names", 1).await;

    for bad in [
        "has space",
        "slash/name",
        "colon:name",
        "ünïcödé",
        "star*",
        "semi;colon",
    ] {
        expect_error(
            &s,
            &format!("name {bad:?}"),
            "CreateStream",
            json!({"StreamName": bad, "ShardCount": 1}),
            VALIDATION,
            "at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        )
        .await;
    }
    expect_error(
        &s,
        "name with bad characters",
        "DescribeStream",
        json!({"StreamName": "a/../b"}),
        VALIDATION,
        "regular expression pattern",
    )
    .await;
    expect_error(
        &s,
        "empty name",
        "CreateStream",
        json!({"StreamName": "", "ShardCount": 1}),
        VALIDATION,
        "at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1",
    )
    .await;
    let long = "a".repeat(129);
    for op in ["CreateStream", "PutRecord", "DescribeStreamSummary"] {
        expect_error(
            &s,
            "129-character name",
            op,
            json!({"StreamName": long, "ShardCount": 1, "PartitionKey": "k", "Data": "aGk="}),
            VALIDATION,
            "at 'streamName' failed to satisfy constraint: Member must have length less than or equal to 128",
        )
        .await;
    }
    // 128 characters (all allowed classes) is fine.
    let longest = format!("{}-_.a", "Z9".repeat(62));
    assert_eq!(longest.len(), 128);
    create_stream(&s, &longest, 1).await;
    let v = ok(&s, "DescribeStreamSummary", json!({"StreamName": longest})).await;
    assert_eq!(
        v["StreamDescriptionSummary"]["StreamName"],
        longest.as_str()
    );

    // Creating an existing stream.
    let message = {
        let r = call(
            &s,
            "CreateStream",
            json!({"StreamName": "names", "ShardCount": 3}),
        )
        .await;
        assert_error(
            "CreateStream on an existing stream",
            &r,
            400,
            IN_USE,
            "already exists",
        )
    };
    assert!(
        message.contains("names"),
        "message names the stream: {message}"
    );
    // ... did not touch the existing stream's shards.
    assert_eq!(shard_ids(&s, "names").await.len(), 1);

    // Every operation on a stream that does not exist.
    let missing: Vec<(&str, Value)> = vec![
        ("DescribeStream", json!({"StreamName": "nosuch"})),
        ("DescribeStreamSummary", json!({"StreamName": "nosuch"})),
        ("ListShards", json!({"StreamName": "nosuch"})),
        (
            "PutRecord",
            json!({"StreamName": "nosuch", "PartitionKey": "k", "Data": "aGk="}),
        ),
        (
            "PutRecords",
            json!({"StreamName": "nosuch", "Records": [{"PartitionKey": "k", "Data": "aGk="}]}),
        ),
        (
            "GetShardIterator",
            json!({"StreamName": "nosuch", "ShardId": "shardId-000000000000", "ShardIteratorType": "LATEST"}),
        ),
        ("DeleteStream", json!({"StreamName": "nosuch"})),
        (
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": "nosuch", "RetentionPeriodHours": 48}),
        ),
        (
            "DecreaseStreamRetentionPeriod",
            json!({"StreamName": "nosuch", "RetentionPeriodHours": 24}),
        ),
        (
            "AddTagsToStream",
            json!({"StreamName": "nosuch", "Tags": {"k": "v"}}),
        ),
        ("ListTagsForStream", json!({"StreamName": "nosuch"})),
        (
            "RemoveTagsFromStream",
            json!({"StreamName": "nosuch", "TagKeys": ["k"]}),
        ),
        (
            "DescribeStream",
            json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/nosuch"}),
        ),
    ];
    for (op, body) in missing {
        expect_error(
            &s,
            "missing stream",
            op,
            body,
            NOT_FOUND,
            "Stream nosuch under account 000000000000 not found",
        )
        .await;
    }

    // Nothing was created by the rejected calls.
    let v = ok(&s, "ListStreams", json!({})).await;
    let mut names: Vec<&str> = v["StreamNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    names.sort_unstable();
    let mut want = vec![longest.as_str(), "names"];
    want.sort_unstable();
    assert_eq!(names, want);
    assert_intact(&s, &seeded).await;
}

// ---------------------------------------------------------------------------------------------
// Record limits and routing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn record_size_and_partition_key_limits() {
    let (s, mut seeded) = seeded_server("limits", 1).await;
    let put_body = |pk: &str, data: &[u8]| json!({"StreamName": "limits", "PartitionKey": pk, "Data": B64.encode(data)});

    // Exactly 1 MiB of data and key is accepted and reads back byte for byte.
    let big: Vec<u8> = (0..MIB - 3).map(|i| (i * 31 % 251) as u8).collect();
    seeded
        .records
        .push(put(&s, "limits", "big", &big, None).await);
    // One byte more is refused: the limit counts the partition key with the data.
    let over = vec![1u8; MIB];
    expect_error(
        &s,
        "1 MiB of data and a key",
        "PutRecord",
        put_body("k", &over),
        INVALID_ARGUMENT,
        "Record size of 1048577 bytes (data and partition key) exceeds the maximum record size of 1048576 bytes",
    )
    .await;
    // Past the largest record any stream takes (10 MiB) the model's constraint answers.
    let huge = vec![1u8; 10 * MIB + 1];
    expect_error(
        &s,
        "10 MiB + 1 of data",
        "PutRecord",
        put_body("k", &huge),
        VALIDATION,
        "at 'data' failed to satisfy constraint: Member must have length less than or equal to 10485760",
    )
    .await;

    // Empty data is allowed (Kinesis has no minimum on the blob).
    seeded
        .records
        .push(put(&s, "limits", "empty-data", b"", None).await);

    // Partition keys: 1..=256 characters (counted as Unicode characters, not bytes).
    let pk256 = "p".repeat(256);
    seeded
        .records
        .push(put(&s, "limits", &pk256, b"x", None).await);
    let pk256_wide = "é".repeat(256);
    seeded
        .records
        .push(put(&s, "limits", &pk256_wide, b"wide", None).await);
    expect_error(
        &s,
        "257-character partition key",
        "PutRecord",
        put_body(&"p".repeat(257), b"x"),
        VALIDATION,
        "at 'partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256",
    )
    .await;
    expect_error(
        &s,
        "empty partition key",
        "PutRecord",
        put_body("", b"x"),
        VALIDATION,
        "at 'partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1",
    )
    .await;

    // The same limits apply per record inside PutRecords, and reject the whole call.
    let rec = |pk: &str, data: &[u8]| json!({"PartitionKey": pk, "Data": B64.encode(data)});
    for (what, bad, phrase) in [
        (
            "257-character key",
            rec(&"p".repeat(257), b"x"),
            "Member must have length less than or equal to 256",
        ),
        (
            "empty key",
            rec("", b"x"),
            "Member must have length greater than or equal to 1",
        ),
        (
            "10 MiB + 1 of data",
            rec("k", &huge),
            "at 'records.2.member.data' failed to satisfy constraint: Member must have length less than or equal to 10485760",
        ),
    ] {
        expect_error(
            &s,
            &format!("PutRecords with a {what}"),
            "PutRecords",
            json!({"StreamName": "limits", "Records": [rec("good", b"good"), bad, rec("good2", b"good")]}),
            VALIDATION,
            phrase,
        )
        .await;
    }
    // A record over the stream's maximum (key + data) is the service's check, not the model's.
    expect_error(
        &s,
        "PutRecords with 1 MiB of data and a key",
        "PutRecords",
        json!({"StreamName": "limits", "Records": [rec("good", b"good"), rec("k", &over), rec("good2", b"good")]}),
        INVALID_ARGUMENT,
        "Record size of 1048577 bytes (data and partition key) exceeds the maximum record size of 1048576 bytes",
    )
    .await;
    assert_intact(&s, &seeded).await;
}

#[tokio::test]
async fn explicit_hash_keys_are_validated_and_route_to_the_owning_shard() {
    let (s, mut seeded) = seeded_server("routed", 3).await;
    let body = |ehk: &str| json!({"StreamName": "routed", "PartitionKey": "k", "Data": "aGk=", "ExplicitHashKey": ehk});

    for bad in [
        "abc",
        "-1",
        "01",
        "1.5",
        "1e10",
        " 5",
        "",
        "9".repeat(40).as_str(),
    ] {
        expect_error(
            &s,
            &format!("ExplicitHashKey {bad:?}"),
            "PutRecord",
            body(bad),
            VALIDATION,
            "at 'explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern",
        )
        .await;
    }
    for too_big in [TWO_POW_128, "9".repeat(39).as_str()] {
        expect_error(
            &s,
            &format!("ExplicitHashKey {too_big}"),
            "PutRecord",
            body(too_big),
            INVALID_ARGUMENT,
            "ExplicitHashKey must be in the range: [0, 2^128-1]",
        )
        .await;
    }
    expect_error(
        &s,
        "PutRecords with ExplicitHashKey 2^128",
        "PutRecords",
        json!({"StreamName": "routed", "Records": [
            {"PartitionKey": "k", "Data": "aGk="},
            {"PartitionKey": "k", "Data": "aGk=", "ExplicitHashKey": TWO_POW_128},
        ]}),
        INVALID_ARGUMENT,
        "ExplicitHashKey must be in the range",
    )
    .await;

    // Each shard's range boundaries and midpoint route to that shard, in PutRecord and
    // PutRecords alike, and the record is then found in that shard.
    let v = ok(&s, "ListShards", json!({"StreamName": "routed"})).await;
    let shards = v["Shards"].as_array().unwrap().clone();
    assert_eq!(shards.len(), 3);
    let mut batch = Vec::new();
    let mut batch_want = Vec::new();
    for sh in &shards {
        let id = sh["ShardId"].as_str().unwrap();
        let start: u128 = sh["HashKeyRange"]["StartingHashKey"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let end: u128 = sh["HashKeyRange"]["EndingHashKey"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        for key in [start, start + (end - start) / 2, end] {
            let key = key.to_string();
            let data = format!("ehk {key}").into_bytes();
            let r = put(&s, "routed", "same-partition-key", &data, Some(&key)).await;
            assert_eq!(r.shard, id, "ExplicitHashKey {key} must go to {id}");
            seeded.records.push(r);
            batch.push(json!({"PartitionKey": "same-partition-key",
                              "Data": B64.encode(&data), "ExplicitHashKey": key}));
            batch_want.push((id.to_owned(), data));
        }
    }
    assert_eq!(shards[0]["HashKeyRange"]["StartingHashKey"], "0");
    assert_eq!(shards[2]["HashKeyRange"]["EndingHashKey"], MAX_HASH_KEY);
    let v = ok(
        &s,
        "PutRecords",
        json!({"StreamName": "routed", "Records": batch}),
    )
    .await;
    assert_eq!(v["FailedRecordCount"], 0);
    for (got, (id, data)) in v["Records"].as_array().unwrap().iter().zip(batch_want) {
        assert_eq!(got["ShardId"], id.as_str(), "PutRecords routing: {got}");
        seeded.records.push(Rec {
            shard: id,
            seq: got["SequenceNumber"].as_str().unwrap().to_owned(),
            pk: "same-partition-key".into(),
            data,
        });
    }
    // assert_intact reads every shard, so each routed record is checked to be where the
    // reply said it is.
    assert_intact(&s, &seeded).await;
}

#[tokio::test]
async fn put_records_count_and_size_limits() {
    let (s, mut seeded) = seeded_server("batches", 2).await;
    let rec = |pk: &str, data: &[u8]| json!({"PartitionKey": pk, "Data": B64.encode(data)});

    expect_error(
        &s,
        "no records",
        "PutRecords",
        json!({"StreamName": "batches", "Records": []}),
        VALIDATION,
        "at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1",
    )
    .await;
    let many: Vec<Value> = (0..501).map(|i| rec(&format!("k{i}"), b"x")).collect();
    expect_error(
        &s,
        "501 records",
        "PutRecords",
        json!({"StreamName": "batches", "Records": many}),
        VALIDATION,
        "at 'records' failed to satisfy constraint: Member must have length less than or equal to 500",
    )
    .await;

    // 500 records is the most, and all are stored.
    let five_hundred: Vec<Value> = (0..500)
        .map(|i| rec(&format!("k{i}"), format!("r{i}").as_bytes()))
        .collect();
    let v = ok(
        &s,
        "PutRecords",
        json!({"StreamName": "batches", "Records": five_hundred}),
    )
    .await;
    assert_eq!(v["FailedRecordCount"], 0);
    let results = v["Records"].as_array().unwrap();
    assert_eq!(results.len(), 500);
    for (i, r) in results.iter().enumerate() {
        seeded.records.push(Rec {
            shard: r["ShardId"].as_str().unwrap().to_owned(),
            seq: r["SequenceNumber"].as_str().unwrap().to_owned(),
            pk: format!("k{i}"),
            data: format!("r{i}").into_bytes(),
        });
    }

    // Data plus partition keys of exactly 5 MiB is accepted ...
    let sizes = [MIB - 1; 5];
    let exact: Vec<(String, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (format!("{i}"), vec![b'a' + i as u8; n]))
        .collect();
    assert_eq!(
        exact.iter().map(|(k, d)| k.len() + d.len()).sum::<usize>(),
        5 * MIB
    );
    let v = ok(
        &s,
        "PutRecords",
        json!({"StreamName": "batches",
               "Records": exact.iter().map(|(k, d)| rec(k, d)).collect::<Vec<_>>()}),
    )
    .await;
    assert_eq!(v["FailedRecordCount"], 0);
    for (r, (k, d)) in v["Records"].as_array().unwrap().iter().zip(exact) {
        seeded.records.push(Rec {
            shard: r["ShardId"].as_str().unwrap().to_owned(),
            seq: r["SequenceNumber"].as_str().unwrap().to_owned(),
            pk: k,
            data: d,
        });
    }

    // ... one byte more is not: five records of 1 MiB each plus their keys exceed 5 MiB
    // while the base64 body (~6.7 MiB) stays under the 15 MiB body limit.
    let over: Vec<Value> = (0..5)
        .map(|i| rec(&format!("{i}"), &vec![9u8; MIB]))
        .collect();
    let body = serde_json::to_vec(&json!({"StreamName": "batches", "Records": over})).unwrap();
    assert!(body.len() < millrace_gateway::MAX_BODY_BYTES);
    let r = post(&s, "PutRecords", JSON, body).await;
    assert_error(
        "PutRecords of 5 MiB + 5 bytes",
        &r,
        400,
        INVALID_ARGUMENT,
        "exceeds 5 MB",
    );

    // One invalid record anywhere rejects the whole call: nothing of it is stored.
    expect_error(
        &s,
        "one bad record among good ones",
        "PutRecords",
        json!({"StreamName": "batches", "Records": [
            rec("a", b"good"), rec("b", b"good"),
            {"PartitionKey": "c", "Data": "aGk=", "ExplicitHashKey": "nope"},
            rec("d", b"good"),
        ]}),
        VALIDATION,
        "explicitHashKey",
    )
    .await;
    assert_intact(&s, &seeded).await;
}

#[tokio::test]
async fn put_records_validation_names_the_record_member_like_kinesis() {
    // Kinesis names a member inside a list by its path: the second record's partition key is
    // 'records.2.member.partitionKey' (the server already does this for a missing Data).
    let (s, seeded) = seeded_server("paths", 1).await;
    let good = json!({"PartitionKey": "k", "Data": "aGk="});
    let cases = [
        (
            json!({"PartitionKey": "", "Data": "aGk="}),
            "Value '' at 'records.2.member.partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ),
        (
            json!({"Data": "aGk="}),
            "Value null at 'records.2.member.partitionKey' failed to satisfy constraint: Member must not be null",
        ),
        (
            json!({"PartitionKey": "k", "Data": "aGk=", "ExplicitHashKey": "x"}),
            "at 'records.2.member.explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern",
        ),
    ];
    for (bad, phrase) in cases {
        let r = call(
            &s,
            "PutRecords",
            json!({"StreamName": "paths", "Records": [good.clone(), bad.clone()]}),
        )
        .await;
        let message = assert_error(
            &format!("PutRecords with record 2 = {bad}"),
            &r,
            400,
            VALIDATION,
            phrase,
        );
        assert!(
            message.starts_with("1 validation error detected: "),
            "AWS validation wording: {message}"
        );
    }
    assert_intact(&s, &seeded).await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_request_entity_too_large() {
    let (s, seeded) = seeded_server("huge", 1).await;

    // Twelve 1 MiB records: over the 5 MiB PutRecords limit, and their base64 (~16.8 MiB) over
    // the server's 15 MiB body limit, which answers first.
    assert_eq!(millrace_gateway::MAX_BODY_BYTES, 15 * MIB);
    let rec = json!({"PartitionKey": "k", "Data": B64.encode(vec![7u8; MIB])});
    let body =
        serde_json::to_vec(&json!({"StreamName": "huge", "Records": vec![rec; 12]})).unwrap();
    assert!(body.len() > millrace_gateway::MAX_BODY_BYTES);
    let r = post(&s, "PutRecords", JSON, body).await;
    assert_error(
        "PutRecords body over 15 MiB",
        &r,
        413,
        TOO_LARGE,
        "request body exceeds",
    );

    // Far over the limit: the server stops reading at 15 MiB and still answers cleanly.
    let r = post(&s, "PutRecord", JSON, vec![b' '; 24 * MIB]).await;
    assert_error("24 MiB body", &r, 413, TOO_LARGE, "request body exceeds");

    // The same for a CBOR body, answered in CBOR.
    let big = Cbor::Map(vec![
        (text("PartitionKey"), text("k")),
        (text("Data"), Cbor::Bytes(vec![3u8; MIB])),
    ]);
    let body = cbor_map(vec![
        ("StreamName", text("huge")),
        ("Records", Cbor::Array(vec![big; 16])),
    ]);
    assert!(body.len() > millrace_gateway::MAX_BODY_BYTES);
    let r = post(&s, "PutRecords", CBOR, body).await;
    assert_error(
        "CBOR PutRecords body over 15 MiB",
        &r,
        413,
        TOO_LARGE,
        "request body exceeds",
    );
    assert_intact(&s, &seeded).await;
}

// ---------------------------------------------------------------------------------------------
// Iterators
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn iterator_errors() {
    let (s, mut seeded) = seeded_server("iters", 2).await;
    let r0 = put(&s, "iters", "k", b"on shard 0", Some("0")).await;
    let r1 = put(&s, "iters", "k", b"on shard 1", Some(MAX_HASH_KEY)).await;
    assert_eq!(r0.shard, "shardId-000000000000");
    assert_eq!(r1.shard, "shardId-000000000001");
    seeded.records.push(r0.clone());
    seeded.records.push(r1.clone());
    let other = seed(&s, "elsewhere", 2).await;
    let gsi = |shard: &str, kind: &str| json!({"StreamName": "iters", "ShardId": shard, "ShardIteratorType": kind});

    // GetRecords with iterators that were never issued, or were altered.
    let good = iterator(&s, "iters", &r0.shard, "AT_SEQUENCE_NUMBER", Some(&r0.seq)).await;
    let mut altered: Vec<(String, String)> = Vec::new();
    for at in [0, good.len() / 2, good.len() - 2] {
        let mut chars: Vec<char> = good.chars().collect();
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        altered.push((
            format!("valid iterator with character {at} changed"),
            chars.into_iter().collect(),
        ));
    }
    altered.push(("valid iterator plus a character".into(), format!("{good}A")));
    altered.push((
        "valid iterator less its last character".into(),
        good[..good.len() - 1].to_owned(),
    ));
    altered.push(("garbage".into(), "not-an-iterator".into()));
    altered.push(("garbage with odd characters".into(), "!!@@##$$%%".into()));
    altered.push(("well-formed base64 of zeros".into(), "A".repeat(good.len())));
    altered.push(("a sequence number".into(), r0.seq.clone()));
    for (what, it) in &altered {
        expect_error(
            &s,
            what,
            "GetRecords",
            json!({"ShardIterator": it}),
            INVALID_ARGUMENT,
            "Invalid ShardIterator",
        )
        .await;
    }
    expect_error(
        &s,
        "empty iterator",
        "GetRecords",
        json!({"ShardIterator": ""}),
        VALIDATION,
        "at 'shardIterator' failed to satisfy constraint: Member must have length greater than or equal to 1",
    )
    .await;
    expect_error(
        &s,
        "513-character iterator",
        "GetRecords",
        json!({"ShardIterator": "A".repeat(513)}),
        VALIDATION,
        "Member must have length less than or equal to 512",
    )
    .await;
    // The untouched iterator still works after all that.
    let v = ok(&s, "GetRecords", json!({"ShardIterator": good, "Limit": 1})).await;
    assert_same_record(
        "untampered iterator",
        &rec_from(&r0.shard, &v["Records"][0]),
        &r0,
    );

    // Limit bounds on GetRecords.
    expect_error(
        &s,
        "Limit 0",
        "GetRecords",
        json!({"ShardIterator": good, "Limit": 0}),
        VALIDATION,
        "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    )
    .await;
    expect_error(
        &s,
        "Limit 10001",
        "GetRecords",
        json!({"ShardIterator": good, "Limit": 10001}),
        VALIDATION,
        "Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000",
    )
    .await;
    expect_error(
        &s,
        "Limit -1",
        "GetRecords",
        json!({"ShardIterator": good, "Limit": -1}),
        VALIDATION,
        "at 'limit'",
    )
    .await;
    let v = ok(
        &s,
        "GetRecords",
        json!({"ShardIterator": good, "Limit": 10000}),
    )
    .await;
    assert!(!v["Records"].as_array().unwrap().is_empty());

    // GetShardIterator on shards that do not exist.
    for bad in ["shardId-000000000002", "shardId-000000999999", "bogus"] {
        expect_error(
            &s,
            &format!("shard {bad}"),
            "GetShardIterator",
            gsi(bad, "TRIM_HORIZON"),
            NOT_FOUND,
            bad,
        )
        .await;
    }
    expect_error(
        &s,
        "129-character shard id",
        "GetShardIterator",
        gsi(&"s".repeat(129), "TRIM_HORIZON"),
        VALIDATION,
        "at 'shardId' failed to satisfy constraint: Member must have length less than or equal to 128",
    )
    .await;

    // Sequence-number iterators.
    for kind in ["AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"] {
        expect_error(
            &s,
            &format!("{kind} without StartingSequenceNumber"),
            "GetShardIterator",
            gsi(&r0.shard, kind),
            INVALID_ARGUMENT,
            "StartingSequenceNumber",
        )
        .await;
        let mut from_other_shard = gsi(&r0.shard, kind);
        from_other_shard["StartingSequenceNumber"] = json!(r1.seq);
        expect_error(
            &s,
            &format!("{kind} with a sequence number of another shard"),
            "GetShardIterator",
            from_other_shard,
            INVALID_ARGUMENT,
            "did not come from this stream",
        )
        .await;
        let foreign = other
            .records
            .iter()
            .find(|r| r.shard == r0.shard)
            .expect("a record of the other stream on shard 0");
        let mut from_other_stream = gsi(&r0.shard, kind);
        from_other_stream["StartingSequenceNumber"] = json!(foreign.seq);
        expect_error(
            &s,
            &format!("{kind} with a sequence number of another stream"),
            "GetShardIterator",
            from_other_stream,
            INVALID_ARGUMENT,
            "did not come from this stream",
        )
        .await;
        // A well-formed number that was never issued (far beyond the tip).
        let mut never = gsi(&r0.shard, kind);
        never["StartingSequenceNumber"] = json!(format!("{}99999999", &r0.seq[..32]));
        expect_error(
            &s,
            &format!("{kind} with a sequence number beyond the tip"),
            "GetShardIterator",
            never,
            INVALID_ARGUMENT,
            "StartingSequenceNumber",
        )
        .await;
    }

    // Timestamp iterators.
    expect_error(
        &s,
        "AT_TIMESTAMP without Timestamp",
        "GetShardIterator",
        gsi(&r0.shard, "AT_TIMESTAMP"),
        INVALID_ARGUMENT,
        "AT_TIMESTAMP",
    )
    .await;
    let mut at_time = gsi(&r0.shard, "AT_TIMESTAMP");
    at_time["Timestamp"] = json!((now_ms() - 600_000) as f64 / 1000.0);
    let it = ok(&s, "GetShardIterator", at_time).await["ShardIterator"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = ok(&s, "GetRecords", json!({"ShardIterator": it})).await;
    assert!(
        v["Records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["SequenceNumber"] == r0.seq.as_str()),
        "AT_TIMESTAMP ten minutes ago reads the shard's records: {v}"
    );

    // Unknown iterator types.
    for kind in ["FROM_START", "latest", "", "AT_SEQUENCE"] {
        expect_error(
            &s,
            &format!("ShardIteratorType {kind:?}"),
            "GetShardIterator",
            gsi(&r0.shard, kind),
            VALIDATION,
            "at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set",
        )
        .await;
    }

    // An iterator of a stream that was deleted (and recreated under the same name).
    create_stream(&s, "doomed", 1).await;
    let doomed = iterator(&s, "doomed", "shardId-000000000000", "TRIM_HORIZON", None).await;
    ok(&s, "DeleteStream", json!({"StreamName": "doomed"})).await;
    let read_doomed = |what: &'static str| {
        expect_error(
            &s,
            what,
            "GetRecords",
            json!({"ShardIterator": doomed}),
            NOT_FOUND,
            "doomed",
        )
    };
    read_doomed("iterator of a deleted stream").await;
    create_stream(&s, "doomed", 1).await;
    read_doomed("iterator of a deleted and recreated stream").await;

    assert_intact(&s, &seeded).await;
    assert_intact(&s, &other).await;
}

#[tokio::test]
async fn starting_sequence_number_must_match_the_kinesis_pattern() {
    // Kinesis models StartingSequenceNumber as `0|([1-9]\d{0,128})`: a value that does not
    // match is a ValidationException naming 'startingSequenceNumber', checked before the
    // stream or shard is looked at.
    let (s, seeded) = seeded_server("seqpat", 1).await;
    for bad in ["", "abc", "-1", "007", "1.5"] {
        expect_error(
            &s,
            &format!("StartingSequenceNumber {bad:?}"),
            "GetShardIterator",
            json!({"StreamName": "seqpat", "ShardId": "shardId-000000000000",
                   "ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": bad}),
            VALIDATION,
            "at 'startingSequenceNumber' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})",
        )
        .await;
    }
    assert_intact(&s, &seeded).await;
}

#[tokio::test]
async fn starting_sequence_number_is_refused_with_trim_horizon_and_latest() {
    // Kinesis: "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and
    // StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber."
    let (s, seeded) = seeded_server("seqkind", 1).await;
    let seq = seeded.records[0].seq.clone();
    for kind in ["TRIM_HORIZON", "LATEST"] {
        expect_error(
            &s,
            &format!("{kind} with a StartingSequenceNumber"),
            "GetShardIterator",
            json!({"StreamName": "seqkind", "ShardId": "shardId-000000000000",
                   "ShardIteratorType": kind, "StartingSequenceNumber": seq}),
            INVALID_ARGUMENT,
            &format!("Request specified {kind} and also a StartingSequenceNumber"),
        )
        .await;
    }
    assert_intact(&s, &seeded).await;
}

// ---------------------------------------------------------------------------------------------
// Retention and ListShards
// ---------------------------------------------------------------------------------------------

async fn retention(s: &TestServer, stream: &str) -> i64 {
    ok(s, "DescribeStreamSummary", json!({"StreamName": stream})).await["StreamDescriptionSummary"]
        ["RetentionPeriodHours"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn retention_changes_are_bounded() {
    let (s, seeded) = seeded_server("kept", 1).await;
    let hours = |h: i64| json!({"StreamName": "kept", "RetentionPeriodHours": h});
    assert_eq!(retention(&s, "kept").await, 24);

    for op in [
        "IncreaseStreamRetentionPeriod",
        "DecreaseStreamRetentionPeriod",
    ] {
        expect_error(
            &s,
            "23 hours",
            op,
            hours(23),
            INVALID_ARGUMENT,
            "Minimum allowed retention period is 24 hours",
        )
        .await;
        expect_error(
            &s,
            "8761 hours",
            op,
            hours(8761),
            INVALID_ARGUMENT,
            "Maximum allowed retention period is 8760 hours",
        )
        .await;
    }
    ok(&s, "IncreaseStreamRetentionPeriod", hours(48)).await;
    assert_eq!(retention(&s, "kept").await, 48);
    expect_error(
        &s,
        "increase below the current period",
        "IncreaseStreamRetentionPeriod",
        hours(36),
        INVALID_ARGUMENT,
        "can not be shorter than existing retention period (48 hours)",
    )
    .await;
    expect_error(
        &s,
        "decrease above the current period",
        "DecreaseStreamRetentionPeriod",
        hours(72),
        INVALID_ARGUMENT,
        "can not be longer than existing retention period (48 hours)",
    )
    .await;
    // The rejected calls changed nothing.
    assert_eq!(retention(&s, "kept").await, 48);
    ok(&s, "IncreaseStreamRetentionPeriod", hours(8760)).await;
    ok(&s, "DecreaseStreamRetentionPeriod", hours(24)).await;
    assert_eq!(retention(&s, "kept").await, 24);
    assert_intact(&s, &seeded).await;
}

#[tokio::test]
async fn list_shards_refuses_next_token_with_stream_name() {
    let (s, seeded) = seeded_server("paged", 3).await;
    let v = ok(
        &s,
        "ListShards",
        json!({"StreamName": "paged", "MaxResults": 1}),
    )
    .await;
    let token = v["NextToken"].as_str().expect("a NextToken").to_owned();

    expect_error(
        &s,
        "NextToken with StreamName",
        "ListShards",
        json!({"StreamName": "paged", "NextToken": token}),
        INVALID_ARGUMENT,
        "NextToken and StreamName cannot be provided together",
    )
    .await;
    expect_error(
        &s,
        "garbage NextToken",
        "ListShards",
        json!({"NextToken": "definitely not a token"}),
        INVALID_ARGUMENT,
        "Invalid NextToken",
    )
    .await;
    expect_error(
        &s,
        "MaxResults 0",
        "ListShards",
        json!({"StreamName": "paged", "MaxResults": 0}),
        VALIDATION,
        "at 'maxResults'",
    )
    .await;
    // The token alone still continues the listing.
    let v = ok(
        &s,
        "ListShards",
        json!({"NextToken": token, "MaxResults": 1}),
    )
    .await;
    assert_eq!(v["Shards"][0]["ShardId"], "shardId-000000000001");
    assert_intact(&s, &seeded).await;
}

// ---------------------------------------------------------------------------------------------
// CBOR
// ---------------------------------------------------------------------------------------------

async fn cbor_ok(s: &TestServer, op: &str, body: Vec<u8>) -> Cbor {
    let r = post(s, op, CBOR, body).await;
    assert_eq!(r.status, 200, "CBOR {op} should succeed: {:?}", r.cbor());
    r.cbor()
}

#[tokio::test]
async fn cbor_round_trip_keeps_blobs_and_timestamps_typed() {
    let s = TestServer::start().await;
    let created = cbor_ok(
        &s,
        "CreateStream",
        cbor_map(vec![
            ("StreamName", text("cbor")),
            ("ShardCount", Cbor::Integer(1.into())),
        ]),
    )
    .await;
    assert_eq!(created, Cbor::Map(vec![]));

    // Every byte value, so a text or base64 round trip anywhere would show.
    let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let before = now_ms();
    let put = cbor_ok(
        &s,
        "PutRecord",
        cbor_map(vec![
            ("StreamName", text("cbor")),
            ("PartitionKey", text("cbor-key")),
            ("Data", Cbor::Bytes(data.clone())),
        ]),
    )
    .await;
    let shard = cbor_text(&put, "ShardId").to_owned();
    let seq = cbor_text(&put, "SequenceNumber").to_owned();

    let it = cbor_ok(
        &s,
        "GetShardIterator",
        cbor_map(vec![
            ("StreamName", text("cbor")),
            ("ShardId", text(&shard)),
            ("ShardIteratorType", text("AT_SEQUENCE_NUMBER")),
            ("StartingSequenceNumber", text(&seq)),
        ]),
    )
    .await;
    let it = cbor_text(&it, "ShardIterator").to_owned();
    let got = cbor_ok(
        &s,
        "GetRecords",
        cbor_map(vec![
            ("ShardIterator", text(&it)),
            ("Limit", Cbor::Integer(10.into())),
        ]),
    )
    .await;
    let after = now_ms();
    let Some(Cbor::Array(records)) = cbor_field(&got, "Records") else {
        panic!("Records should be a CBOR array: {got:?}");
    };
    assert_eq!(records.len(), 1, "{got:?}");
    let rec = &records[0];
    assert_eq!(cbor_text(rec, "SequenceNumber"), seq);
    assert_eq!(cbor_text(rec, "PartitionKey"), "cbor-key");
    assert_eq!(
        cbor_field(rec, "Data"),
        Some(&Cbor::Bytes(data.clone())),
        "Data must come back as a CBOR byte string equal to what was sent"
    );
    let arrival = match cbor_field(rec, "ApproximateArrivalTimestamp") {
        Some(Cbor::Tag(1, inner)) => match inner.as_ref() {
            Cbor::Integer(i) => i64::try_from(i128::from(*i)).unwrap(),
            other => panic!("tag 1 should wrap an integer (epoch ms), found {other:?}"),
        },
        other => panic!("ApproximateArrivalTimestamp should be CBOR tag 1, found {other:?}"),
    };
    assert!(
        (before - 1_000..=after + 1_000).contains(&arrival),
        "arrival {arrival} ms should be between {before} and {after} (epoch milliseconds)"
    );
    assert!(matches!(
        cbor_field(&got, "NextShardIterator"),
        Some(Cbor::Text(_))
    ));
    assert!(matches!(
        cbor_field(&got, "MillisBehindLatest"),
        Some(Cbor::Integer(_))
    ));

    // A CBOR timestamp (tag 1, epoch milliseconds) positions an AT_TIMESTAMP iterator.
    let at = cbor_ok(
        &s,
        "GetShardIterator",
        cbor_map(vec![
            ("StreamName", text("cbor")),
            ("ShardId", text(&shard)),
            ("ShardIteratorType", text("AT_TIMESTAMP")),
            (
                "Timestamp",
                Cbor::Tag(1, Box::new(Cbor::Integer((arrival - 5_000).into()))),
            ),
        ]),
    )
    .await;
    let got = cbor_ok(
        &s,
        "GetRecords",
        cbor_map(vec![(
            "ShardIterator",
            text(cbor_text(&at, "ShardIterator")),
        )]),
    )
    .await;
    let Some(Cbor::Array(records)) = cbor_field(&got, "Records") else {
        panic!("Records should be a CBOR array: {got:?}");
    };
    assert_eq!(records.len(), 1, "AT_TIMESTAMP 5 s before arrival: {got:?}");
    assert_eq!(cbor_field(&records[0], "Data"), Some(&Cbor::Bytes(data)));

    // The JSON view of the same stream agrees.
    let seeded = Seeded {
        stream: "cbor".into(),
        records: vec![Rec {
            shard,
            seq,
            pk: "cbor-key".into(),
            data: (0..=255u8).chain((0..=255u8).rev()).collect(),
        }],
    };
    assert_intact(&s, &seeded).await;
}

#[tokio::test]
async fn cbor_errors_are_cbor_encoded() {
    let (s, seeded) = seeded_server("cborerr", 1).await;

    let valid = cbor_map(vec![
        ("StreamName", text("cborerr")),
        ("PartitionKey", text("k")),
        ("Data", Cbor::Bytes(b"payload".to_vec())),
    ]);
    let mut deep = vec![0x81u8; 100_000]; // 100,000 nested one-element arrays
    deep.push(0x00);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated map",
            valid[..valid.len() - 3].to_vec(),
            "not valid CBOR",
        ),
        ("a lone break byte", vec![0xff], "not valid CBOR"),
        (
            "JSON sent as CBOR",
            br#"{"StreamName": "cborerr"}"#.to_vec(),
            "not valid CBOR",
        ),
        (
            "an array at the top",
            cbor_bytes(&Cbor::Array(vec![text("cborerr")])),
            "must be an object, found a list",
        ),
        (
            "a map with an integer key",
            cbor_bytes(&Cbor::Map(vec![(Cbor::Integer(1.into()), text("x"))])),
            "map keys must be text",
        ),
        (
            "an array header claiming 2^32 items",
            vec![0x9b, 0, 0, 0, 1, 0, 0, 0, 0],
            "not valid CBOR",
        ),
        (
            "a byte string header claiming 2^62 bytes",
            vec![0x5b, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3],
            "not valid CBOR",
        ),
        ("nesting 100,000 deep", deep, "not valid CBOR"),
    ];
    for (what, body, phrase) in cases {
        let r = post(&s, "PutRecord", CBOR, body).await;
        assert_error(&format!("CBOR {what}"), &r, 400, SERIALIZATION, phrase);
    }

    // Other errors come back in CBOR too.
    let r = post(
        &s,
        "PutRecord",
        CBOR,
        cbor_map(vec![
            ("StreamName", text("nosuch")),
            ("PartitionKey", text("k")),
            ("Data", Cbor::Bytes(b"x".to_vec())),
        ]),
    )
    .await;
    assert_error("CBOR missing stream", &r, 400, NOT_FOUND, "not found");
    let r = post(
        &s,
        "PutRecord",
        CBOR,
        cbor_map(vec![
            ("StreamName", text("cborerr")),
            ("PartitionKey", text("k")),
            ("Data", Cbor::Bytes(vec![0; MIB + 1])),
        ]),
    )
    .await;
    assert_error(
        "CBOR Data of 1 MiB + 1",
        &r,
        400,
        INVALID_ARGUMENT,
        "Record size of 1048578 bytes (data and partition key) exceeds the maximum record size of 1048576 bytes",
    );
    let r = post(
        &s,
        "PutRecord",
        CBOR,
        cbor_map(vec![
            ("StreamName", text("cborerr")),
            ("PartitionKey", text("k")),
            ("Data", Cbor::Bytes(vec![0; 10 * MIB + 1])),
        ]),
    )
    .await;
    assert_error(
        "CBOR Data of 10 MiB + 1",
        &r,
        400,
        VALIDATION,
        "at 'data' failed to satisfy constraint: Member must have length less than or equal to 10485760",
    );
    let r = post(
        &s,
        "PutRecord",
        CBOR,
        cbor_map(vec![
            ("StreamName", Cbor::Integer(3.into())),
            ("PartitionKey", text("k")),
            ("Data", Cbor::Bytes(b"x".to_vec())),
        ]),
    )
    .await;
    assert_error(
        "CBOR StreamName as an integer",
        &r,
        400,
        SERIALIZATION,
        "StreamName must be a string",
    );
    let r = send(
        &s,
        Method::POST,
        Some("Kinesis_20131202.Frobnicate"),
        Some(CBOR),
        valid.clone(),
    )
    .await;
    assert_error(
        "CBOR unknown operation",
        &r,
        400,
        UNKNOWN_OPERATION,
        "Frobnicate",
    );
    assert_intact(&s, &seeded).await;
}

// ---------------------------------------------------------------------------------------------
// Everything at once
// ---------------------------------------------------------------------------------------------

/// One bad request and the error it must get.
struct Bad {
    what: &'static str,
    method: Method,
    target: Option<&'static str>,
    content_type: &'static str,
    body: Vec<u8>,
    ty: &'static str,
}

fn bad_json(what: &'static str, target: &'static str, body: Value, ty: &'static str) -> Bad {
    Bad {
        what,
        method: Method::POST,
        target: Some(target),
        content_type: JSON,
        body: serde_json::to_vec(&body).unwrap(),
        ty,
    }
}

#[tokio::test]
async fn concurrent_barrage_leaves_the_server_up_and_data_intact() {
    let (s, seeded) = seeded_server("barrage", 2).await;
    let it = iterator(&s, "barrage", "shardId-000000000000", "TRIM_HORIZON", None).await;
    let tampered: String = {
        let mut c: Vec<char> = it.chars().collect();
        let mid = c.len() / 2;
        c[mid] = if c[mid] == 'x' { 'y' } else { 'x' };
        c.into_iter().collect()
    };
    let pr = "Kinesis_20131202.PutRecord";
    let raw = |what, target, content_type, body: &[u8], ty| Bad {
        what,
        method: Method::POST,
        target,
        content_type,
        body: body.to_vec(),
        ty,
    };
    let bads = vec![
        raw(
            "truncated JSON",
            Some(pr),
            JSON,
            br#"{"StreamName": "barr"#,
            SERIALIZATION,
        ),
        raw(
            "not JSON",
            Some(pr),
            JSON,
            b"\x00\x01binary\xff",
            SERIALIZATION,
        ),
        raw("JSON array", Some(pr), JSON, b"[1, 2, 3]", SERIALIZATION),
        raw(
            "deep JSON",
            Some(pr),
            JSON,
            "[".repeat(50_000).as_bytes(),
            SERIALIZATION,
        ),
        raw("no target", None, JSON, b"{}", UNKNOWN_OPERATION),
        raw(
            "unknown operation",
            Some("Kinesis_20131202.Frobnicate"),
            JSON,
            b"{}",
            UNKNOWN_OPERATION,
        ),
        raw(
            "wrong prefix",
            Some("Kinesis_20991231.PutRecord"),
            JSON,
            b"{}",
            UNKNOWN_OPERATION,
        ),
        Bad {
            what: "GET",
            method: Method::GET,
            target: Some(pr),
            content_type: JSON,
            body: Vec::new(),
            ty: UNKNOWN_OPERATION,
        },
        raw(
            "truncated CBOR",
            Some(pr),
            CBOR,
            &[0xa3, 0x6a, b'S'],
            SERIALIZATION,
        ),
        raw("deep CBOR", Some(pr), CBOR, &[0x81; 20_000], SERIALIZATION),
        raw(
            "huge CBOR map header",
            Some(pr),
            CBOR,
            &[0xbb, 0xff, 0, 0, 0, 0, 0, 0, 0],
            SERIALIZATION,
        ),
        bad_json(
            "Data not base64",
            pr,
            json!({"StreamName": "barrage", "PartitionKey": "k", "Data": "???"}),
            SERIALIZATION,
        ),
        bad_json(
            "no PartitionKey",
            pr,
            json!({"StreamName": "barrage", "Data": "aGk="}),
            VALIDATION,
        ),
        bad_json(
            "257-char key",
            pr,
            json!({"StreamName": "barrage", "PartitionKey": "k".repeat(257), "Data": "aGk="}),
            VALIDATION,
        ),
        bad_json(
            "1 MiB + 1 (over the stream's maximum record size)",
            pr,
            json!({"StreamName": "barrage", "PartitionKey": "k", "Data": B64.encode(vec![0u8; MIB + 1])}),
            INVALID_ARGUMENT,
        ),
        bad_json(
            "ExplicitHashKey 2^128",
            pr,
            json!({"StreamName": "barrage", "PartitionKey": "k", "Data": "aGk=", "ExplicitHashKey": TWO_POW_128}),
            INVALID_ARGUMENT,
        ),
        bad_json(
            "bad stream name",
            pr,
            json!({"StreamName": "bar rage", "PartitionKey": "k", "Data": "aGk="}),
            VALIDATION,
        ),
        bad_json(
            "missing stream",
            pr,
            json!({"StreamName": "nosuch", "PartitionKey": "k", "Data": "aGk="}),
            NOT_FOUND,
        ),
        bad_json(
            "501 records",
            "Kinesis_20131202.PutRecords",
            json!({"StreamName": "barrage",
                   "Records": vec![json!({"PartitionKey": "k", "Data": "aGk="}); 501]}),
            VALIDATION,
        ),
        bad_json(
            "batch with a bad record",
            "Kinesis_20131202.PutRecords",
            json!({"StreamName": "barrage", "Records": [
                {"PartitionKey": "k", "Data": "aGk="}, {"PartitionKey": "", "Data": "aGk="}]}),
            VALIDATION,
        ),
        bad_json(
            "existing stream",
            "Kinesis_20131202.CreateStream",
            json!({"StreamName": "barrage", "ShardCount": 1}),
            IN_USE,
        ),
        bad_json(
            "tampered iterator",
            "Kinesis_20131202.GetRecords",
            json!({"ShardIterator": tampered}),
            INVALID_ARGUMENT,
        ),
        bad_json(
            "Limit 0",
            "Kinesis_20131202.GetRecords",
            json!({"ShardIterator": it, "Limit": 0}),
            VALIDATION,
        ),
        bad_json(
            "unknown shard",
            "Kinesis_20131202.GetShardIterator",
            json!({"StreamName": "barrage", "ShardId": "shardId-000000000007", "ShardIteratorType": "LATEST"}),
            NOT_FOUND,
        ),
        bad_json(
            "retention too short",
            "Kinesis_20131202.DecreaseStreamRetentionPeriod",
            json!({"StreamName": "barrage", "RetentionPeriodHours": 1}),
            INVALID_ARGUMENT,
        ),
        bad_json(
            "delete missing stream",
            "Kinesis_20131202.DeleteStream",
            json!({"StreamName": "nosuch"}),
            NOT_FOUND,
        ),
    ];

    // Three rounds of every bad request, all in flight at once.
    let s = &s;
    let requests = bads
        .iter()
        .cycle()
        .take(bads.len() * 3)
        .map(|b| async move {
            let r = send(
                s,
                b.method.clone(),
                b.target,
                Some(b.content_type),
                b.body.clone(),
            )
            .await;
            let (ty, message) = r.error();
            assert_eq!(ty, b.ty, "barrage {}: {message}", b.what);
            assert_eq!(r.status, 400, "barrage {}: {message}", b.what);
            assert!(!message.is_empty(), "barrage {}: empty message", b.what);
        });
    futures::future::join_all(requests).await;

    // The server still answers, nothing was created, and the data is intact.
    let v = ok(s, "ListStreams", json!({})).await;
    assert_eq!(v["StreamNames"], json!(["barrage"]));
    assert_intact(s, &seeded).await;
}
