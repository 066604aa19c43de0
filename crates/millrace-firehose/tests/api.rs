//! The Firehose API on a real gateway (the Kinesis listener with the Firehose service added),
//! over raw AWS JSON 1.1 requests: every operation's effect is seen by a later call and again
//! after a restart on the same folder; bad input gets Firehose's error types. Delivery into
//! the lake runs under `millrace up` (tests/compat/firehose_flows.py); here the test plays the
//! runner's part where a status depends on it.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use millrace_firehose::{Firehose, RunState};
use millrace_gateway::Gateway;
use millrace_stream::{Store, StoreOptions};
use serde_json::{Value, json};

const ROLE: &str = "arn:aws:iam::000000000000:role/firehose";

struct Server {
    url: String,
    firehose: Firehose,
    store: Arc<Store>,
    dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    async fn start() -> Self {
        Self::start_in(tempfile::tempdir().unwrap()).await
    }

    async fn start_in(dir: tempfile::TempDir) -> Self {
        let store = Arc::new(Store::open(dir.path(), StoreOptions::default()).unwrap());
        let firehose = Firehose::open(dir.path(), store.clone()).unwrap();
        firehose.registry.set_buckets(["archive".to_owned()]);
        let gw = Gateway::new(store.clone(), [7; 32])
            .unwrap()
            .with_service(Arc::new(firehose.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            millrace_gateway::serve(listener, gw, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            firehose,
            store,
            dir: Some(dir),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops serving, closes both stores and opens everything again on the same folder.
    async fn restart(mut self) -> Self {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
        let (store, buffers) = (self.store.clone(), self.firehose.buffers.clone());
        tokio::task::spawn_blocking(move || {
            store.shutdown();
            buffers.shutdown();
        })
        .await
        .unwrap();
        Self::start_in(self.dir.take().unwrap()).await
    }

    async fn call(&self, op: &str, body: Value) -> (u16, String, Value) {
        let resp = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("Firehose_20150804.{op}"))
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
        (
            status,
            v["__type"].as_str().unwrap_or_default().to_owned(),
            v,
        )
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        let (status, _, v) = self.call(op, body).await;
        assert_eq!(status, 200, "{op}: {v}");
        v
    }

    async fn error(&self, op: &str, body: Value) -> (String, String) {
        let (status, kind, v) = self.call(op, body).await;
        assert!(status >= 400, "{op} succeeded: {v}");
        (kind, v["message"].as_str().unwrap_or_default().to_owned())
    }

    async fn describe(&self, name: &str) -> Value {
        self.ok(
            "DescribeDeliveryStream",
            json!({"DeliveryStreamName": name}),
        )
        .await["DeliveryStreamDescription"]
            .clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn direct_put(name: &str) -> Value {
    json!({
        "DeliveryStreamName": name,
        "DeliveryStreamType": "DirectPut",
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": ROLE,
            "BucketARN": "arn:aws:s3:::lake",
            "Prefix": "fh/",
            "ErrorOutputPrefix": "fh-errors/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "CompressionFormat": "GZIP"
        },
        "Tags": [{"Key": "team", "Value": "data"}]
    })
}

#[tokio::test]
async fn delivery_streams_are_created_described_listed_tagged_and_deleted() {
    let server = Server::start().await;
    let created = server
        .ok("CreateDeliveryStream", direct_put("orders"))
        .await;
    let arn = created["DeliveryStreamARN"].as_str().unwrap().to_owned();
    assert_eq!(
        arn,
        "arn:aws:firehose:us-east-1:000000000000:deliverystream/orders"
    );
    let d = server.describe("orders").await;
    assert_eq!(d["DeliveryStreamStatus"], "CREATING", "{d}");
    let spec = server.firehose.registry.get("orders").unwrap();
    server
        .firehose
        .registry
        .report("orders", &spec.id, 1, RunState::Active);
    let d = server.describe("orders").await;
    assert_eq!(d["DeliveryStreamStatus"], "ACTIVE");
    assert_eq!(d["DeliveryStreamType"], "DirectPut");
    assert_eq!(d["VersionId"], "1");
    assert_eq!(d["HasMoreDestinations"], false);
    let s3 = &d["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(s3["BucketARN"], "arn:aws:s3:::lake");
    assert_eq!(s3["Prefix"], "fh/");
    assert_eq!(s3["CompressionFormat"], "GZIP");
    assert_eq!(s3["BufferingHints"]["IntervalInSeconds"], 0);
    assert_eq!(
        d["Destinations"][0]["DestinationId"],
        "destinationId-000000000001"
    );

    server
        .ok("CreateDeliveryStream", direct_put("payments"))
        .await;
    let page = server.ok("ListDeliveryStreams", json!({"Limit": 1})).await;
    assert_eq!(page["DeliveryStreamNames"], json!(["orders"]));
    assert_eq!(page["HasMoreDeliveryStreams"], true);
    let rest = server
        .ok(
            "ListDeliveryStreams",
            json!({"ExclusiveStartDeliveryStreamName": "orders"}),
        )
        .await;
    assert_eq!(rest["DeliveryStreamNames"], json!(["payments"]));
    assert_eq!(rest["HasMoreDeliveryStreams"], false);

    server
        .ok(
            "TagDeliveryStream",
            json!({"DeliveryStreamName": "orders", "Tags": [{"Key": "env", "Value": "prod"}]}),
        )
        .await;
    server
        .ok(
            "UntagDeliveryStream",
            json!({"DeliveryStreamName": "orders", "TagKeys": ["team"]}),
        )
        .await;
    server
        .ok(
            "StartDeliveryStreamEncryption",
            json!({"DeliveryStreamName": "orders",
                   "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "AWS_OWNED_CMK"}}),
        )
        .await;
    server
        .ok(
            "UpdateDestination",
            json!({"DeliveryStreamName": "orders", "CurrentDeliveryStreamVersionId": "1",
                   "DestinationId": "destinationId-000000000001",
                   "ExtendedS3DestinationUpdate": {"Prefix": "orders/",
                       "BufferingHints": {"IntervalInSeconds": 60}}}),
        )
        .await;

    // Everything after a restart.
    let server = server.restart().await;
    let d = server.describe("orders").await;
    assert_eq!(d["VersionId"], "2");
    let s3 = &d["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(s3["Prefix"], "orders/");
    assert_eq!(s3["BufferingHints"]["IntervalInSeconds"], 60);
    assert_eq!(s3["CompressionFormat"], "GZIP", "kept across the update");
    assert_eq!(
        d["DeliveryStreamEncryptionConfiguration"]["Status"],
        "ENABLED"
    );
    let tags = server
        .ok(
            "ListTagsForDeliveryStream",
            json!({"DeliveryStreamName": "orders"}),
        )
        .await;
    assert_eq!(tags["Tags"], json!([{"Key": "env", "Value": "prod"}]));
    server
        .ok(
            "StopDeliveryStreamEncryption",
            json!({"DeliveryStreamName": "orders"}),
        )
        .await;

    server
        .ok(
            "DeleteDeliveryStream",
            json!({"DeliveryStreamName": "orders"}),
        )
        .await;
    let (kind, message) = server
        .error(
            "DescribeDeliveryStream",
            json!({"DeliveryStreamName": "orders"}),
        )
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
    assert!(message.contains("orders"), "{message}");
    let server = server.restart().await;
    let all = server.ok("ListDeliveryStreams", json!({})).await;
    assert_eq!(all["DeliveryStreamNames"], json!(["payments"]));
}

#[tokio::test]
async fn records_put_are_kept_in_order_across_a_restart() {
    let server = Server::start().await;
    server
        .ok("CreateDeliveryStream", direct_put("clicks"))
        .await;
    let records: Vec<Value> = (0..500)
        .map(|i| json!({"Data": STANDARD.encode(format!("{{\"n\":{i}}}\n"))}))
        .collect();
    let put = server
        .ok(
            "PutRecordBatch",
            json!({"DeliveryStreamName": "clicks", "Records": records}),
        )
        .await;
    assert_eq!(put["FailedPutCount"], 0);
    assert_eq!(put["Encrypted"], false);
    let ids = put["RequestResponses"].as_array().unwrap();
    assert_eq!(ids.len(), 500);
    assert!(ids.iter().all(|r| r["RecordId"].as_str().is_some()));
    let one = server
        .ok(
            "PutRecord",
            json!({"DeliveryStreamName": "clicks",
                   "Record": {"Data": STANDARD.encode("last\n")}}),
        )
        .await;
    assert!(one["RecordId"].as_str().is_some());

    let server = server.restart().await;
    let spec = server.firehose.registry.get("clicks").unwrap();
    let buffer = server
        .firehose
        .buffers
        .stream(&spec.buffer_stream())
        .unwrap();
    // A call's records sit in one shard, in order; calls take turns over the shards.
    let per_shard: Vec<Vec<Vec<u8>>> = buffer
        .shards()
        .iter()
        .map(|s| {
            let read = s.read(0, 1000, 64 << 20).unwrap().records;
            read.iter().map(|r| r.data.to_vec()).collect()
        })
        .collect();
    assert_eq!(per_shard.len(), 2);
    assert_eq!(per_shard.iter().map(Vec::len).sum::<usize>(), 501);
    let want: Vec<Vec<u8>> = (0..500)
        .map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
        .collect();
    let holder = per_shard
        .iter()
        .find(|s| s.len() >= 500)
        .expect("the batch in one shard");
    let start = holder.iter().position(|r| r == &want[0]).unwrap();
    assert_eq!(&holder[start..start + 500], &want[..], "in order");
    assert!(per_shard.iter().flatten().any(|r| r == b"last\n"));
}

/// A `RecordDeAggregation` processor with `parameters`.
fn deaggregation(parameters: &[(&str, &str)]) -> Value {
    let parameters: Vec<Value> = parameters
        .iter()
        .map(|(k, v)| json!({"ParameterName": k, "ParameterValue": v}))
        .collect();
    json!({"Type": "RecordDeAggregation", "Parameters": parameters})
}

/// Makes `b`'s destination partition by `.k` (JQ) after the processor `extra`.
fn partitioned(b: &mut Value, extra: Value) {
    let s3 = &mut b["ExtendedS3DestinationConfiguration"];
    s3["DynamicPartitioningConfiguration"] = json!({"Enabled": true});
    s3["Prefix"] = json!("p/!{partitionKeyFromQuery:k}/!{firehose:random-string}/");
    s3["ErrorOutputPrefix"] = json!("e/!{firehose:error-output-type}/!{firehose:random-string}/");
    s3["BufferingHints"]["SizeInMBs"] = json!(64);
    s3["ProcessingConfiguration"] = json!({"Enabled": true, "Processors": [
        extra,
        {"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{k: .k}"},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]});
}

#[tokio::test]
async fn record_deaggregation_kpl_and_random_strings_map_onto_the_delivery() {
    use millrace_delivery::Split;
    use millrace_firehose::destination::delivery_config;
    let server = Server::start().await;
    let mut body = direct_put("split");
    partitioned(
        &mut body,
        deaggregation(&[("SubRecordType", "DELIMITED"), ("Delimiter", "IyMjIw==")]),
    );
    server.ok("CreateDeliveryStream", body).await;
    let d = server.describe("split").await;
    let s3 = &d["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(
        s3["ProcessingConfiguration"]["Processors"][0]["Type"], "RecordDeAggregation",
        "{s3}"
    );
    assert_eq!(
        s3["Prefix"],
        "p/!{partitionKeyFromQuery:k}/!{firehose:random-string}/"
    );
    let spec = server.firehose.registry.get("split").unwrap();
    let c = delivery_config(&spec, &spec.buffer_stream()).unwrap();
    assert_eq!(c.split_records, Some(Split::Delimited(b"####".to_vec())));
    assert!(!c.deaggregate_kpl, "DirectPut records are not KPL records");
    c.validate("delivery").unwrap();

    // JSON instead, by UpdateDestination.
    server
        .ok(
            "UpdateDestination",
            json!({"DeliveryStreamName": "split", "CurrentDeliveryStreamVersionId": "1",
                   "DestinationId": "destinationId-000000000001",
                   "ExtendedS3DestinationUpdate": {"ProcessingConfiguration": {
                       "Enabled": true, "Processors": [
                           deaggregation(&[("SubRecordType", "JSON")]),
                           {"Type": "MetadataExtraction", "Parameters": [
                               {"ParameterName": "MetadataExtractionQuery",
                                "ParameterValue": "{k: .k}"},
                               {"ParameterName": "JsonParsingEngine",
                                "ParameterValue": "JQ-1.6"}]}]}}}),
        )
        .await;
    let spec = server.firehose.registry.get("split").unwrap();
    let c = delivery_config(&spec, &spec.buffer_stream()).unwrap();
    assert_eq!(c.split_records, Some(Split::Json));

    // A random string alone in a prefix: Firehose's time folders still follow it.
    let mut body = direct_put("random");
    body["ExtendedS3DestinationConfiguration"]["Prefix"] = json!("r/!{firehose:random-string}/");
    server.ok("CreateDeliveryStream", body).await;
    let spec = server.firehose.registry.get("random").unwrap();
    let c = delivery_config(&spec, &spec.buffer_stream()).unwrap();
    assert_eq!(
        c.prefix.as_deref(),
        Some(
            "r/!{firehose:random-string}/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"
        )
    );
    assert_eq!(c.split_records, None);

    // A Kinesis source: KPL aggregated records are always de-aggregated.
    server
        .store
        .create(
            "events",
            millrace_stream::StreamMode::Provisioned,
            Some(1),
            24,
            Default::default(),
        )
        .unwrap();
    server
        .ok(
            "CreateDeliveryStream",
            json!({
                "DeliveryStreamName": "from-kinesis",
                "DeliveryStreamType": "KinesisStreamAsSource",
                "KinesisStreamSourceConfiguration": {
                    "KinesisStreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/events",
                    "RoleARN": ROLE},
                "ExtendedS3DestinationConfiguration": {"RoleARN": ROLE,
                    "BucketARN": "arn:aws:s3:::archive"}
            }),
        )
        .await;
    let spec = server.firehose.registry.get("from-kinesis").unwrap();
    let c = delivery_config(&spec, "events").unwrap();
    assert!(c.deaggregate_kpl);
    assert_eq!(c.split_records, None);
}

#[tokio::test]
async fn log_processors_extension_zone_and_source_backup_map_onto_two_deliveries() {
    use millrace_delivery::{Decompress, Format};
    use millrace_firehose::destination::{backup_config, delivery_config};
    let server = Server::start().await;
    let mut body = direct_put("logs");
    let s3 = &mut body["ExtendedS3DestinationConfiguration"];
    s3["FileExtension"] = json!(".log");
    s3["CustomTimeZone"] = json!("Asia/Tokyo");
    s3["ProcessingConfiguration"] = json!({"Enabled": true, "Processors": [
        {"Type": "Decompression", "Parameters": [
            {"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]},
        {"Type": "CloudWatchLogProcessing", "Parameters": [
            {"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]}]});
    server.ok("CreateDeliveryStream", body).await;
    let spec = server.firehose.registry.get("logs").unwrap();
    let c = delivery_config(&spec, &spec.buffer_stream()).unwrap();
    assert_eq!(c.decompress, Some(Decompress::Gzip));
    assert!(c.extract_log_messages);
    assert_eq!(c.file_extension.as_deref(), Some(".log"));
    assert_eq!(c.time_zone.as_deref(), Some("Asia/Tokyo"));
    assert_eq!(backup_config(&spec, "b").unwrap().map(|(b, _)| b), None);
    let d = server.describe("logs").await;
    let e = &d["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(
        (
            &e["FileExtension"],
            &e["CustomTimeZone"],
            &e["S3BackupMode"]
        ),
        (&json!(".log"), &json!("Asia/Tokyo"), &json!("Disabled")),
        "{e}"
    );

    // Backup turned on by UpdateDestination: a second delivery of the records as they came.
    let update = |version: &str, change: Value| {
        json!({"DeliveryStreamName": "logs", "CurrentDeliveryStreamVersionId": version,
               "DestinationId": "destinationId-000000000001",
               "ExtendedS3DestinationUpdate": change})
    };
    let (k, m) = server
        .error(
            "UpdateDestination",
            update("1", json!({"S3BackupMode": "Enabled"})),
        )
        .await;
    assert_eq!(k, "InvalidArgumentException", "{m}");
    let (k, m) = server
        .error(
            "UpdateDestination",
            update(
                "1",
                json!({"S3BackupMode": "Enabled", "S3BackupUpdate": {"Prefix": "src/"}}),
            ),
        )
        .await;
    assert_eq!(k, "InvalidArgumentException", "{m}");
    assert!(m.contains("BucketARN is required"), "{m}");
    server
        .ok(
            "UpdateDestination",
            update(
                "1",
                json!({"S3BackupMode": "Enabled", "S3BackupUpdate": {
                    "BucketARN": "arn:aws:s3:::archive", "Prefix": "src/",
                    "CompressionFormat": "GZIP"}}),
            ),
        )
        .await;
    let spec = server.firehose.registry.get("logs").unwrap();
    let (bucket, b) = backup_config(&spec, "buf").unwrap().expect("backup on");
    assert_eq!(bucket, "archive");
    assert_eq!(b.name, "logs-backup");
    assert_eq!(b.format, Format::Concat);
    assert_eq!(b.compression, millrace_delivery::Compression::Gzip);
    assert_eq!(
        (
            b.decompress,
            b.extract_log_messages,
            b.split_records.is_some()
        ),
        (None, false, false),
        "the backup holds the records unprocessed"
    );
    assert!(
        b.prefix
            .as_deref()
            .unwrap()
            .starts_with("src/!{timestamp:yyyy}")
    );
    b.validate("backup").unwrap();
    let server = server.restart().await;
    let d = server.describe("logs").await;
    let e = &d["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(e["S3BackupMode"], "Enabled", "{e}");
    assert_eq!(
        e["S3BackupDescription"]["BucketARN"],
        "arn:aws:s3:::archive"
    );
    assert_eq!(e["S3BackupDescription"]["CompressionFormat"], "GZIP");
    let (k, m) = server
        .error(
            "UpdateDestination",
            update("2", json!({"S3BackupMode": "Disabled"})),
        )
        .await;
    assert_eq!(k, "InvalidArgumentException", "{m}");
    assert!(m.contains("cannot be disabled"), "{m}");
}

#[tokio::test]
async fn bad_requests_get_firehose_error_types() {
    let server = Server::start().await;
    server.ok("CreateDeliveryStream", direct_put("s")).await;
    let kinesis = server
        .store
        .create(
            "events",
            millrace_stream::StreamMode::Provisioned,
            Some(1),
            24,
            Default::default(),
        )
        .unwrap();
    drop(kinesis);
    let from_kinesis = json!({
        "DeliveryStreamName": "from-kinesis",
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {
            "KinesisStreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/events",
            "RoleARN": ROLE},
        "ExtendedS3DestinationConfiguration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::archive"}
    });
    server
        .ok("CreateDeliveryStream", from_kinesis.clone())
        .await;

    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = direct_put("new");
        f(&mut b);
        b
    };
    let s3 = "ExtendedS3DestinationConfiguration";
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "a name in use",
            direct_put("s"),
            "ResourceInUseException",
            "already exists",
        ),
        (
            "an unmapped bucket",
            with(&|b| b[s3]["BucketARN"] = json!("arn:aws:s3:::raw")),
            "InvalidArgumentException",
            "buckets.raw",
        ),
        (
            "a Lambda processor",
            with(&|b| {
                b[s3]["ProcessingConfiguration"] = json!({"Enabled": true, "Processors": [
                    {"Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn",
                     "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:f"}]}]})
            }),
            "InvalidArgumentException",
            "Lambda",
        ),
        (
            "dynamic partitioning without a query",
            with(&|b| {
                b[s3]["DynamicPartitioningConfiguration"] = json!({"Enabled": true});
                b[s3]["Prefix"] = json!("p/!{partitionKeyFromQuery:k}/");
                b[s3]["BufferingHints"]["SizeInMBs"] = json!(64);
            }),
            "InvalidArgumentException",
            "MetadataExtraction",
        ),
        (
            "a query that is not jq",
            with(&|b| {
                b[s3]["DynamicPartitioningConfiguration"] = json!({"Enabled": true});
                b[s3]["Prefix"] = json!("p/!{partitionKeyFromQuery:k}/");
                b[s3]["BufferingHints"]["SizeInMBs"] = json!(64);
                b[s3]["ProcessingConfiguration"] = json!({"Enabled": true, "Processors": [
                    {"Type": "MetadataExtraction", "Parameters": [
                        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{k: .a |"},
                        {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]});
            }),
            "InvalidArgumentException",
            "MetadataExtractionQuery",
        ),
        (
            "RecordDeAggregation without dynamic partitioning",
            with(
                &|b| b[s3]["ProcessingConfiguration"] = json!({"Enabled": true, "Processors": [deaggregation(&[("SubRecordType", "JSON")])]}),
            ),
            "InvalidArgumentException",
            "only be present when dynamic partitioning is enabled",
        ),
        (
            "RecordDeAggregation DELIMITED without a Delimiter",
            with(&|b| partitioned(b, deaggregation(&[("SubRecordType", "DELIMITED")]))),
            "InvalidArgumentException",
            "needs a Delimiter parameter",
        ),
        (
            "a Delimiter that is not base64",
            with(&|b| {
                partitioned(
                    b,
                    deaggregation(&[("SubRecordType", "DELIMITED"), ("Delimiter", "####")]),
                )
            }),
            "InvalidArgumentException",
            "is not base64",
        ),
        (
            "a SubRecordType that is neither JSON nor DELIMITED",
            with(&|b| partitioned(b, deaggregation(&[("SubRecordType", "XML")]))),
            "InvalidArgumentException",
            "use JSON or DELIMITED",
        ),
        (
            "RecordDeAggregation without a SubRecordType",
            with(&|b| partitioned(b, deaggregation(&[("Delimiter", "IyMjIw==")]))),
            "InvalidArgumentException",
            "needs a SubRecordType",
        ),
        (
            "a parameter RecordDeAggregation does not take",
            with(&|b| {
                partitioned(
                    b,
                    deaggregation(&[("SubRecordType", "JSON"), ("NumberOfRetries", "3")]),
                )
            }),
            "InvalidArgumentException",
            "not NumberOfRetries",
        ),
        (
            "an ErrorOutputPrefix with expressions but no error type",
            with(&|b| b[s3]["ErrorOutputPrefix"] = json!("bad/!{firehose:random-string}/")),
            "InvalidArgumentException",
            "!{firehose:error-output-type}",
        ),
        (
            "CloudWatchLogProcessing without Decompression",
            with(&|b| {
                b[s3]["ProcessingConfiguration"] = json!({"Enabled": true, "Processors": [
                    {"Type": "CloudWatchLogProcessing", "Parameters": [
                        {"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]}]})
            }),
            "InvalidArgumentException",
            "needs a Decompression processor",
        ),
        (
            "a Decompression format other than GZIP",
            with(&|b| {
                b[s3]["ProcessingConfiguration"] = json!({"Enabled": true, "Processors": [
                    {"Type": "Decompression", "Parameters": [
                        {"ParameterName": "CompressionFormat", "ParameterValue": "ZSTD"}]}]})
            }),
            "InvalidArgumentException",
            "use GZIP",
        ),
        (
            "S3BackupMode Enabled without S3BackupConfiguration",
            with(&|b| b[s3]["S3BackupMode"] = json!("Enabled")),
            "InvalidArgumentException",
            "needs S3BackupConfiguration",
        ),
        (
            "a backup into an unmapped bucket",
            with(&|b| {
                b[s3]["S3BackupMode"] = json!("Enabled");
                b[s3]["S3BackupConfiguration"] = json!({
                    "RoleARN": "arn:aws:iam::000000000000:role/r",
                    "BucketARN": "arn:aws:s3:::nowhere"});
            }),
            "InvalidArgumentException",
            "S3BackupConfiguration: Bucket nowhere",
        ),
        (
            "a time zone that does not exist",
            with(&|b| b[s3]["CustomTimeZone"] = json!("Mars/Olympus")),
            "InvalidArgumentException",
            "not an IANA time zone",
        ),
        (
            "ZIP",
            with(&|b| b[s3]["CompressionFormat"] = json!("ZIP")),
            "InvalidArgumentException",
            "UNCOMPRESSED or GZIP",
        ),
        (
            "a Redshift destination",
            with(&|b| b["RedshiftDestinationConfiguration"] = json!({})),
            "InvalidArgumentException",
            "RedshiftDestinationConfiguration",
        ),
        (
            "a name with a slash and a buffer of 0 MiB",
            with(&|b| {
                b["DeliveryStreamName"] = json!("a/b");
                b[s3]["BufferingHints"]["SizeInMBs"] = json!(0);
            }),
            "ValidationException",
            "2 validation errors",
        ),
        (
            "an unknown Kinesis stream",
            {
                let mut b = from_kinesis.clone();
                b["DeliveryStreamName"] = json!("x");
                b["KinesisStreamSourceConfiguration"]["KinesisStreamARN"] =
                    json!("arn:aws:kinesis:us-east-1:000000000000:stream/nope");
                b
            },
            "InvalidArgumentException",
            "nope",
        ),
    ];
    for (what, body, kind, says) in cases {
        let (k, message) = server.error("CreateDeliveryStream", body).await;
        assert_eq!(k, kind, "{what}: {message}");
        assert!(message.contains(says), "{what}: {message}");
    }

    let big = STANDARD.encode(vec![b'x'; 1_024_001]);
    let (k, _) = server
        .error(
            "PutRecord",
            json!({"DeliveryStreamName": "s", "Record": {"Data": big}}),
        )
        .await;
    assert_eq!(k, "ValidationException");
    let many: Vec<Value> = (0..501).map(|_| json!({"Data": "eA=="})).collect();
    let (k, _) = server
        .error(
            "PutRecordBatch",
            json!({"DeliveryStreamName": "s", "Records": many}),
        )
        .await;
    assert_eq!(k, "ValidationException");
    let heavy: Vec<Value> = (0..5)
        .map(|_| json!({"Data": STANDARD.encode(vec![b'y'; 1_000_000])}))
        .collect();
    let (k, message) = server
        .error(
            "PutRecordBatch",
            json!({"DeliveryStreamName": "s", "Records": heavy}),
        )
        .await;
    assert_eq!(k, "InvalidArgumentException", "{message}");
    let (k, _) = server
        .error(
            "PutRecord",
            json!({"DeliveryStreamName": "from-kinesis", "Record": {"Data": "eA=="}}),
        )
        .await;
    assert_eq!(k, "InvalidArgumentException");
    let (k, _) = server
        .error(
            "PutRecord",
            json!({"DeliveryStreamName": "none", "Record": {"Data": "eA=="}}),
        )
        .await;
    assert_eq!(k, "ResourceNotFoundException");
    let (k, message) = server
        .error(
            "UpdateDestination",
            json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "7",
                   "DestinationId": "destinationId-000000000001",
                   "ExtendedS3DestinationUpdate": {"Prefix": "x/"}}),
        )
        .await;
    assert_eq!(k, "ConcurrentModificationException", "{message}");
    let (k, _) = server.error("NoSuchOperation", json!({})).await;
    assert_eq!(k, "UnknownOperationException");
}

/// Every byte of every file under `dir`, concatenated.
fn bytes_under(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(bytes_under(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn an_encrypted_delivery_streams_buffered_records_are_sealed_at_rest() {
    let server = Server::start().await;
    let mut body = direct_put("sealed");
    body["DeliveryStreamEncryptionConfigurationInput"] = json!({
        "KeyType": "CUSTOMER_MANAGED_CMK",
        "KeyARN": "arn:aws:kms:us-east-1:000000000000:key/not-in-the-keyring"});
    let (kind, message) = server.error("CreateDeliveryStream", body.clone()).await;
    assert_eq!(kind, "InvalidKMSResourceException", "{message}");
    body["DeliveryStreamName"] = json!("sealed2");
    body["DeliveryStreamEncryptionConfigurationInput"] = json!({"KeyType": "AWS_OWNED_CMK"});
    server.ok("CreateDeliveryStream", body).await;
    let put = |data: &str| json!({"DeliveryStreamName": "sealed2", "Records": [{"Data": STANDARD.encode(data)}]});
    let answer = server.ok("PutRecordBatch", put("SECRET-FH-ONE\n")).await;
    assert_eq!(answer["Encrypted"], true);
    server
        .ok(
            "StopDeliveryStreamEncryption",
            json!({"DeliveryStreamName": "sealed2"}),
        )
        .await;
    let answer = server.ok("PutRecordBatch", put("PLAIN-FH-TWO\n")).await;
    assert_eq!(answer["Encrypted"], false);

    let server = server.restart().await;
    let spec = server.firehose.registry.get("sealed2").unwrap();
    let buffer = server
        .firehose
        .buffers
        .stream(&spec.buffer_stream())
        .unwrap();
    let mut read: Vec<Vec<u8>> = buffer
        .shards()
        .iter()
        .flat_map(|s| s.read(0, 1000, 64 << 20).unwrap().records)
        .map(|r| r.data.to_vec())
        .collect();
    read.sort();
    assert_eq!(
        read,
        vec![b"PLAIN-FH-TWO\n".to_vec(), b"SECRET-FH-ONE\n".to_vec()]
    );
    let on_disk = bytes_under(&server.dir.as_ref().unwrap().path().join("firehose/streams"));
    assert!(
        holds(&on_disk, "PLAIN-FH-TWO"),
        "the check can see plaintext"
    );
    assert!(
        !holds(&on_disk, "SECRET-FH"),
        "a sealed record is on disk in the clear"
    );
}
