//! The channel operations (CreateChannel, DescribeChannel, ListChannels, UpdateChannel,
//! DeleteChannel) against a real server: through aws-sdk-kinesis each change is seen by a later
//! call and again after the registry is reopened on the same folder; the statuses follow what a
//! runner reports (the test plays `millrace up`'s part); raw JSON requests check AWS's error
//! types and wording for bad input: every model violation in one ValidationException, semantic
//! problems as InvalidArgumentException, and ResourceNotFound / ResourceInUse /
//! ExpiredNextToken where Kinesis answers them.

use std::sync::Arc;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::{
    ChannelEncryptionConfiguration, ChannelEncryptionType, ChannelLoggingUpdateInput,
    ChannelStatus, ChannelStreamConfiguration, CloudWatchLogsUpdateInput, RecordConfiguration,
    RecordFormatType, S3CompressionType, S3DestinationConfiguration, S3DestinationUpdateInput,
    S3StorageConfiguration, StreamFilter, StreamMode, StreamModeDetails,
};
use millrace_gateway::Gateway;
use millrace_gateway::channels::RunState;
use millrace_stream::{Store, StoreOptions};
use serde_json::{Value, json};

const ACCOUNT: &str = "000000000000";
const ROLE: &str = "arn:aws:iam::000000000000:role/channel-writer";

/// A gateway served on a loopback port, with its `Gateway` at hand to play the runner.
struct Server {
    url: String,
    gw: Gateway,
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
        let gw = Gateway::new(store, [9; 32]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = gw.clone();
        let task = tokio::spawn(async move {
            millrace_gateway::serve(listener, served, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            gw,
            dir: Some(dir),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops serving, closes the store and opens everything again on the same folder.
    async fn restart(mut self) -> Self {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
        let store = self.gw.store.clone();
        tokio::task::spawn_blocking(move || store.shutdown())
            .await
            .unwrap();
        Self::start_in(self.dir.take().unwrap()).await
    }

    async fn sdk(&self) -> Client {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await;
        Client::new(&conf)
    }

    /// Posts JSON to `op`; returns the status, the error type (empty on success) and the body.
    async fn call(&self, op: &str, body: Value) -> (u16, String, Value) {
        let resp = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("Kinesis_20131202.{op}"))
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
        let kind = v["__type"].as_str().unwrap_or_default().to_owned();
        (status, kind, v)
    }

    /// The reply to a call that must succeed.
    async fn ok(&self, op: &str, body: Value) -> Value {
        let (status, _, v) = self.call(op, body).await;
        assert_eq!(status, 200, "{op}: {v}");
        v
    }

    /// The error type and message `op` answers `body` with.
    async fn error(&self, op: &str, body: Value) -> (String, String) {
        let (status, kind, v) = self.call(op, body).await;
        assert_eq!(status, 400, "{op}: {v}");
        (kind, v["message"].as_str().unwrap_or_default().to_owned())
    }

    fn stream_arn(&self, stream: &str) -> String {
        format!("arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{stream}")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn code<T, E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    r: Result<T, SdkError<E, R>>,
) -> String {
    match r {
        Ok(_) => panic!("the call succeeded; an error was expected"),
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("no code: {e:?}"))
            .to_owned(),
    }
}

async fn on_demand(client: &Client, name: &str) {
    client
        .create_stream()
        .stream_name(name)
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// A valid CreateChannel body for `name` reading `stream` into bucket `lake`.
fn create_body(server: &Server, name: &str, stream: &str) -> Value {
    json!({
        "ChannelName": name,
        "ServiceExecutionRoleARN": ROLE,
        "StreamConfigurationList": [{
            "StreamARN": server.stream_arn(stream),
            "RecordConfiguration": {"RecordFormatType": "JSON"}
        }],
        "S3DestinationConfiguration": {
            "StorageConfiguration": {
                "BucketARN": "arn:aws:s3:::lake",
                "ExpectedBucketOwner": ACCOUNT,
                "CompressionType": "NONE"
            }
        }
    })
}

#[tokio::test]
async fn channels_are_created_described_listed_updated_and_deleted() {
    let server = Server::start().await;
    let client = server.sdk().await;
    on_demand(&client, "orders").await;
    let created = client
        .create_channel()
        .channel_name("orders-to-lake")
        .service_execution_role_arn(ROLE)
        .stream_configuration_list(
            ChannelStreamConfiguration::builder()
                .stream_arn(server.stream_arn("orders"))
                .record_configuration(
                    RecordConfiguration::builder()
                        .record_format_type(RecordFormatType::Json)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .s3_destination_configuration(
            S3DestinationConfiguration::builder()
                .data_freshness_in_seconds(60)
                .storage_configuration(
                    S3StorageConfiguration::builder()
                        .bucket_arn("arn:aws:s3:::lake")
                        .expected_bucket_owner(ACCOUNT)
                        .output_key_template("orders/!{timestamp:yyyy-MM-dd}/")
                        .compression_type(S3CompressionType::Gzip)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .encryption_configuration(
            ChannelEncryptionConfiguration::builder()
                .encryption_type(ChannelEncryptionType::Kms)
                .key_id("alias/lake-key")
                .build()
                .unwrap(),
        )
        .tags("team", "data")
        .send()
        .await
        .unwrap()
        .channel_description
        .unwrap();
    assert_eq!(created.channel_status(), &ChannelStatus::Creating);
    let arn = created.channel_arn().to_owned();
    assert_eq!(
        arn,
        format!(
            "arn:aws:kinesis:us-east-1:{ACCOUNT}:channel/orders-to-lake/{}",
            created.channel_id()
        )
    );
    let describe = || async {
        client
            .describe_channel()
            .channel_arn(&arn)
            .send()
            .await
            .unwrap()
            .channel_description
            .unwrap()
    };
    // No runner yet: CREATING, with everything given echoed back and the defaults filled in.
    let d = describe().await;
    assert_eq!(d.channel_status(), &ChannelStatus::Creating);
    assert_eq!(d.service_execution_role_arn(), ROLE);
    assert_eq!(
        d.stream_configuration_list()[0].stream_arn(),
        server.stream_arn("orders")
    );
    let s3 = d.s3_destination_configuration().unwrap();
    assert_eq!(s3.data_freshness_in_seconds(), 60);
    let storage = s3.storage_configuration().unwrap();
    assert_eq!(
        storage.output_key_template(),
        Some("orders/!{timestamp:yyyy-MM-dd}/")
    );
    assert_eq!(storage.compression_type(), &S3CompressionType::Gzip);
    let dlq = s3.dead_letter_queue_s3_configuration().unwrap();
    assert_eq!(
        (dlq.bucket_arn(), dlq.error_output_prefix()),
        ("arn:aws:s3:::lake", Some("errors/orders-to-lake/"))
    );
    assert_eq!(
        d.encryption_configuration().unwrap().key_id(),
        "alias/lake-key"
    );
    let logs = d
        .logging_configuration()
        .unwrap()
        .cloud_watch_logs()
        .unwrap();
    assert!(!logs.enabled());

    // Not ACTIVE yet: an update is refused.
    let update = |secs: i32| {
        client
            .update_channel()
            .channel_arn(&arn)
            .s3_destination_configuration(
                S3DestinationUpdateInput::builder()
                    .data_freshness_in_seconds(secs)
                    .build()
                    .unwrap(),
            )
            .send()
    };
    assert_eq!(code(update(5).await), "ResourceInUseException");

    // The runner started revision 0.
    let id = created.channel_id().to_owned();
    server
        .gw
        .channels
        .report("orders-to-lake", &id, 0, RunState::Active);
    assert_eq!(describe().await.channel_status(), &ChannelStatus::Active);
    let updated = update(5).await.unwrap().channel_description.unwrap();
    assert_eq!(updated.channel_status(), &ChannelStatus::Updating);
    let d = describe().await;
    assert_eq!(d.channel_status(), &ChannelStatus::Updating);
    assert_eq!(
        d.s3_destination_configuration()
            .unwrap()
            .data_freshness_in_seconds(),
        5
    );
    server.gw.channels.report(
        "orders-to-lake",
        &id,
        1,
        RunState::Failed("bucket lake: disk full".into()),
    );
    let d = describe().await;
    assert_eq!(d.channel_status(), &ChannelStatus::Failed);
    assert_eq!(d.channel_status_reason(), Some("bucket lake: disk full"));
    // A FAILED channel takes updates (logging here).
    let logged = client
        .update_channel()
        .channel_arn(&arn)
        .logging_configuration(
            ChannelLoggingUpdateInput::builder()
                .cloud_watch_logs(
                    CloudWatchLogsUpdateInput::builder()
                        .enabled(true)
                        .log_group_name("/millrace/channels")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .channel_description
        .unwrap();
    let logs = logged
        .logging_configuration()
        .unwrap()
        .cloud_watch_logs()
        .unwrap();
    assert_eq!(
        (logs.enabled(), logs.log_group_name()),
        (true, Some("/millrace/channels"))
    );

    let listed = client.list_channels().send().await.unwrap();
    assert_eq!(listed.channel_summaries().len(), 1);
    let summary = &listed.channel_summaries()[0];
    assert_eq!(summary.channel_arn(), arn);
    assert_eq!(
        summary.streams()[0].stream_arn(),
        server.stream_arn("orders")
    );
    let filtered = |stream: String| {
        client
            .list_channels()
            .stream_filter(StreamFilter::builder().stream_arn(stream).build().unwrap())
            .send()
    };
    let by_stream = filtered(server.stream_arn("orders")).await.unwrap();
    assert_eq!(by_stream.channel_summaries().len(), 1);
    let other = filtered(server.stream_arn("other")).await.unwrap();
    assert!(other.channel_summaries().is_empty());

    // A stream with a channel stays.
    assert_eq!(
        code(client.delete_stream().stream_name("orders").send().await),
        "ResourceInUseException"
    );

    // Everything survives a restart (revision 2 not run yet: UPDATING).
    let server = server.restart().await;
    let client = server.sdk().await;
    let d = client
        .describe_channel()
        .channel_arn(&arn)
        .send()
        .await
        .unwrap()
        .channel_description
        .unwrap();
    assert_eq!(d.channel_status(), &ChannelStatus::Updating);
    assert_eq!(
        d.s3_destination_configuration()
            .unwrap()
            .data_freshness_in_seconds(),
        5
    );
    assert_eq!(
        d.logging_configuration()
            .unwrap()
            .cloud_watch_logs()
            .unwrap()
            .log_group_name(),
        Some("/millrace/channels")
    );
    assert_eq!(
        server.gw.channels.get("orders-to-lake").unwrap().tags["team"],
        "data"
    );

    client
        .delete_channel()
        .channel_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(client.describe_channel().channel_arn(&arn).send().await),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(client.delete_channel().channel_arn(&arn).send().await),
        "ResourceNotFoundException"
    );
    assert!(
        client
            .list_channels()
            .send()
            .await
            .unwrap()
            .channel_summaries()
            .is_empty()
    );
    client
        .delete_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
    let server = server.restart().await;
    assert!(server.gw.channels.list().is_empty());
}

#[tokio::test]
async fn a_name_is_taken_until_deleted_and_a_new_channel_gets_a_new_arn() {
    let server = Server::start().await;
    on_demand(&server.sdk().await, "s").await;
    let (status, _, first) = server
        .call("CreateChannel", create_body(&server, "c", "s"))
        .await;
    assert_eq!(status, 200, "{first}");
    let (kind, message) = server
        .error("CreateChannel", create_body(&server, "c", "s"))
        .await;
    assert_eq!(kind, "ResourceInUseException");
    assert!(message.contains("c under account"), "{message}");
    let old_arn = first["ChannelDescription"]["ChannelARN"].as_str().unwrap();
    let (status, ..) = server
        .call("DeleteChannel", json!({"ChannelARN": old_arn}))
        .await;
    assert_eq!(status, 200);
    let (_, _, second) = server
        .call("CreateChannel", create_body(&server, "c", "s"))
        .await;
    let new_arn = second["ChannelDescription"]["ChannelARN"].as_str().unwrap();
    assert_ne!(old_arn, new_arn);
    let (kind, _) = server
        .error("DescribeChannel", json!({"ChannelARN": old_arn}))
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn model_violations_come_back_in_one_validation_exception() {
    let server = Server::start().await;
    let (kind, message) = server.error("CreateChannel", json!({})).await;
    assert_eq!(kind, "ValidationException");
    assert_eq!(
        message,
        "3 validation errors detected: Value null at 'channelName' failed to satisfy \
         constraint: Member must not be null; Value null at 'serviceExecutionRoleARN' failed to \
         satisfy constraint: Member must not be null; Value null at 'streamConfigurationList' \
         failed to satisfy constraint: Member must not be null"
    );
    let mut body = create_body(&server, "bad name", "s");
    body["ServiceExecutionRoleARN"] = json!("arn:aws:iam::1:role/x");
    body["StreamConfigurationList"][0]["RecordConfiguration"]["RecordFormatType"] = json!("XML");
    let storage = &mut body["S3DestinationConfiguration"]["StorageConfiguration"];
    storage["CompressionType"] = json!("LZ4");
    storage["BucketARN"] = json!("arn:aws:s3:::B");
    storage["OutputKeyTemplate"] = json!("a b");
    body["S3DestinationConfiguration"]["DeadLetterQueueS3Configuration"] =
        json!({"BucketARN": "arn:aws:s3:::lake"});
    body["LoggingConfiguration"] = json!({"CloudWatchLogs": {"LogStreamName": "a:b"}});
    body["Tags"] = json!({});
    let (kind, message) = server.error("CreateChannel", body).await;
    assert_eq!(kind, "ValidationException");
    assert!(
        message.starts_with("10 validation errors detected: "),
        "{message}"
    );
    for part in [
        "Value 'bad name' at 'channelName' failed to satisfy constraint: Member must satisfy \
         regular expression pattern: [a-zA-Z0-9_.-]+",
        "at 'serviceExecutionRoleARN' failed to satisfy constraint: Member must satisfy \
         regular expression pattern: arn:aws[-a-z0-9]*:iam::",
        "Value 'XML' at 'streamConfigurationList.1.member.recordConfiguration.recordFormatType' \
         failed to satisfy constraint: Member must satisfy enum value set: [GSR_JSON, JSON, \
         STRING, BYTE_ARRAY]",
        "at 's3DestinationConfiguration.storageConfiguration.compressionType'",
        "at 's3DestinationConfiguration.storageConfiguration.bucketARN'",
        "at 's3DestinationConfiguration.storageConfiguration.outputKeyTemplate'",
        "Value null at 's3DestinationConfiguration.deadLetterQueueS3Configuration.\
         expectedBucketOwner' failed to satisfy constraint: Member must not be null",
        "Value null at 'loggingConfiguration.cloudWatchLogs.enabled'",
        "Value 'a:b' at 'loggingConfiguration.cloudWatchLogs.logStreamName'",
        "Value {} at 'tags' failed to satisfy constraint: Member must have length greater than \
         or equal to 1",
    ] {
        assert!(message.contains(part), "{part}\nnot in\n{message}");
    }
    // A wrong type is a SerializationException before anything else.
    let (kind, _) = server
        .error(
            "CreateChannel",
            json!({"ChannelName": 7, "StreamConfigurationList": []}),
        )
        .await;
    assert_eq!(kind, "SerializationException");
    for op in ["DescribeChannel", "DeleteChannel", "UpdateChannel"] {
        let (kind, message) = server
            .error(op, json!({"ChannelARN": "arn:aws:s3:::b"}))
            .await;
        assert_eq!(kind, "ValidationException", "{op}");
        assert!(message.contains("at 'channelARN'"), "{op}: {message}");
        let (kind, _) = server.error(op, json!({})).await;
        assert_eq!(kind, "ValidationException", "{op}");
    }
    let (kind, message) = server
        .error(
            "ListChannels",
            json!({"MaxResults": 0, "NextToken": "", "StreamFilter": [{"StreamARN": "x"}]}),
        )
        .await;
    assert_eq!(kind, "ValidationException");
    assert!(
        message.starts_with("3 validation errors detected"),
        "{message}"
    );
    assert!(
        message.contains("at 'streamFilter.1.member.streamARN'"),
        "{message}"
    );
    let (kind, message) = server
        .error(
            "UpdateChannel",
            json!({"ChannelARN": "arn:aws:kinesis:us-east-1:000000000000:channel/c/1",
                   "S3DestinationConfiguration": {}}),
        )
        .await;
    assert_eq!(kind, "ValidationException");
    assert!(
        message.contains("at 's3DestinationConfiguration.dataFreshnessInSeconds'"),
        "{message}"
    );
}

/// A change to a valid request body.
type Change = Box<dyn Fn(&mut Value)>;

#[tokio::test]
async fn meaning_is_checked_after_the_model() {
    let server = Server::start().await;
    let client = server.sdk().await;
    on_demand(&client, "s").await;
    client
        .create_stream()
        .stream_name("provisioned")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "no destination",
            Box::new(|b| {
                b.as_object_mut()
                    .unwrap()
                    .remove("S3DestinationConfiguration");
            }),
            "must be provided",
        ),
        (
            "unmapped bucket",
            Box::new(|b| {
                b["S3DestinationConfiguration"]["StorageConfiguration"]["BucketARN"] =
                    json!("arn:aws:s3:::raw-events");
            }),
            "buckets.raw-events",
        ),
        (
            "unknown placeholder",
            Box::new(|b| {
                b["S3DestinationConfiguration"]["StorageConfiguration"]["OutputKeyTemplate"] =
                    json!("x/{partitionKey}/!{timestamp:yyyy}/");
            }),
            "{partitionKey}",
        ),
        (
            "provisioned stream",
            Box::new(|b| {
                b["StreamConfigurationList"][0]["StreamARN"] =
                    json!("arn:aws:kinesis:us-east-1:000000000000:stream/provisioned");
            }),
            "ON_DEMAND",
        ),
        (
            "two streams",
            Box::new(|b| {
                let one = b["StreamConfigurationList"][0].clone();
                b["StreamConfigurationList"] = json!([one.clone(), one]);
            }),
            "one stream",
        ),
        (
            "GSR_JSON to S3",
            Box::new(|b| {
                b["StreamConfigurationList"][0]["RecordConfiguration"]["RecordFormatType"] =
                    json!("GSR_JSON");
            }),
            "GSR_JSON",
        ),
        (
            "an unmapped dead-letter bucket",
            Box::new(|b| {
                b["S3DestinationConfiguration"]["DeadLetterQueueS3Configuration"] = json!({
                    "BucketARN": "arn:aws:s3:::errors", "ExpectedBucketOwner": ACCOUNT});
            }),
            "buckets.errors",
        ),
        (
            "another owner",
            Box::new(|b| {
                b["S3DestinationConfiguration"]["StorageConfiguration"]["ExpectedBucketOwner"] =
                    json!("123456789012");
            }),
            "123456789012",
        ),
        (
            "freshness out of range",
            Box::new(|b| {
                b["S3DestinationConfiguration"]["DataFreshnessInSeconds"] = json!(901);
            }),
            "DataFreshnessInSeconds",
        ),
        (
            "reserved tag key",
            Box::new(|b| {
                b["Tags"] = json!({"aws:x": "y"});
            }),
            "aws:",
        ),
        (
            "the service key",
            Box::new(|b| {
                b["EncryptionConfiguration"] =
                    json!({"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"});
            }),
            "service key",
        ),
    ];
    for (what, change, says) in cases {
        let mut body = create_body(&server, "c", "s");
        change(&mut body);
        let (kind, message) = server.error("CreateChannel", body).await;
        assert_eq!(kind, "InvalidArgumentException", "{what}: {message}");
        assert!(message.contains(says), "{what}: {message}");
    }
    let (kind, _) = server
        .error("CreateChannel", create_body(&server, "c", "missing"))
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
    let mut other_region = create_body(&server, "c", "s");
    other_region["StreamConfigurationList"][0]["StreamARN"] =
        json!("arn:aws:kinesis:eu-west-1:000000000000:stream/s");
    let (kind, _) = server.error("CreateChannel", other_region).await;
    assert_eq!(kind, "ResourceNotFoundException");

    // Once `up` maps the bucket, the same request is taken.
    server.gw.channels.set_buckets(["raw-events".to_owned()]);
    let mut mapped = create_body(&server, "c", "s");
    mapped["S3DestinationConfiguration"]["StorageConfiguration"]["BucketARN"] =
        json!("arn:aws:s3:::raw-events");
    let (status, _, v) = server.call("CreateChannel", mapped).await;
    assert_eq!(status, 200, "{v}");
    let arn = v["ChannelDescription"]["ChannelARN"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = v["ChannelDescription"]["ChannelId"]
        .as_str()
        .unwrap()
        .to_owned();
    server.gw.channels.report("c", &id, 0, RunState::Active);
    let (kind, message) = server
        .error("UpdateChannel", json!({"ChannelARN": arn}))
        .await;
    assert_eq!(kind, "InvalidArgumentException", "{message}");
    let (kind, _) = server
        .error(
            "UpdateChannel",
            json!({"ChannelARN": arn,
                   "S3TablesDestinationConfiguration": {"DataFreshnessInSeconds": 60}}),
        )
        .await;
    assert_eq!(kind, "InvalidArgumentException");
    let (kind, _) = server
        .error(
            "UpdateChannel",
            json!({"ChannelARN": arn,
                   "S3DestinationConfiguration": {"DataFreshnessInSeconds": -1}}),
        )
        .await;
    assert_eq!(kind, "InvalidArgumentException");
    let foreign = arn.replace(ACCOUNT, "123456789012");
    let (kind, _) = server
        .error("DescribeChannel", json!({"ChannelARN": foreign}))
        .await;
    assert_eq!(kind, "ResourceNotFoundException");
}

#[tokio::test]
async fn list_pages_with_tokens_that_expire() {
    let server = Server::start().await;
    on_demand(&server.sdk().await, "a").await;
    on_demand(&server.sdk().await, "b").await;
    for (name, stream) in [("c1", "a"), ("c2", "b"), ("c3", "a")] {
        let (status, _, v) = server
            .call("CreateChannel", create_body(&server, name, stream))
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let names = |v: &Value| -> Vec<String> {
        v["ChannelSummaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["ChannelName"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, _, first) = server.call("ListChannels", json!({"MaxResults": 2})).await;
    assert_eq!(names(&first), ["c1", "c2"]);
    let token = first["NextToken"].as_str().unwrap();
    let (_, _, second) = server
        .call("ListChannels", json!({"MaxResults": 2, "NextToken": token}))
        .await;
    assert_eq!(names(&second), ["c3"]);
    assert!(second["NextToken"].is_null());
    let (_, _, on_a) = server
        .call(
            "ListChannels",
            json!({"StreamFilter": [{"StreamARN": server.stream_arn("a")}]}),
        )
        .await;
    assert_eq!(names(&on_a), ["c1", "c3"]);
    let (_, _, wrong_time) = server
        .call(
            "ListChannels",
            json!({"StreamFilter": [{"StreamARN": server.stream_arn("a"),
                                      "StreamCreationTimestamp": 1}]}),
        )
        .await;
    assert!(names(&wrong_time).is_empty());
    let (_, _, big) = server
        .call("ListChannels", json!({"MaxResults": 10_000}))
        .await;
    assert_eq!(names(&big).len(), 3);

    let (kind, _) = server
        .error("ListChannels", json!({"NextToken": "not a token"}))
        .await;
    assert_eq!(kind, "InvalidArgumentException");
    use base64::Engine;
    let old = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("c1\n{}", millrace_stream::now_ms() - 301_000));
    let (kind, _) = server
        .error("ListChannels", json!({"NextToken": old}))
        .await;
    assert_eq!(kind, "ExpiredNextTokenException");
}

#[tokio::test]
async fn channels_take_tags_through_the_resource_operations_and_hold_their_stream_on_demand() {
    let server = Server::start().await;
    on_demand(&server.sdk().await, "s").await;
    let (status, _, v) = server
        .call("CreateChannel", create_body(&server, "c", "s"))
        .await;
    assert_eq!(status, 200, "{v}");
    let arn = v["ChannelDescription"]["ChannelARN"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, v) = server
        .call(
            "TagResource",
            json!({"ResourceARN": arn, "Tags": {"env": "prod", "team": "x"}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    server
        .call(
            "UntagResource",
            json!({"ResourceARN": arn, "TagKeys": ["team"]}),
        )
        .await;
    let server = server.restart().await;
    let (_, _, v) = server
        .call("ListTagsForResource", json!({"ResourceARN": arn}))
        .await;
    assert!(
        v["Tags"]
            .as_array()
            .unwrap()
            .contains(&json!({"Key": "env", "Value": "prod"})),
        "{v}"
    );
    assert!(!v.to_string().contains("team"), "{v}");
    let (kind, _) = server
        .error(
            "UpdateStreamMode",
            json!({"StreamARN": server.stream_arn("s"), "StreamModeDetails": {"StreamMode": "PROVISIONED"}}),
        )
        .await;
    assert_eq!(kind, "ResourceInUseException");
}

fn tables_body(server: &Server, name: &str, stream: &str) -> Value {
    json!({
        "ChannelName": name,
        "ServiceExecutionRoleARN": ROLE,
        "StreamConfigurationList": [{
            "StreamARN": server.stream_arn(stream),
            "RecordConfiguration": {
                "RecordFormatType": "JSON",
                "GSRSchemaARN": SCHEMA
            }
        }],
        "S3TablesDestinationConfiguration": {
            "DataFreshnessInSeconds": 60,
            "DeadLetterQueueS3Configuration": {
                "BucketARN": "arn:aws:s3:::lake", "ExpectedBucketOwner": ACCOUNT,
                "ErrorOutputPrefix": "bad/"},
            "S3TablesConfigurationList": [{
                "TableBucketARN": "arn:aws:s3tables:us-east-1:000000000000:bucket/tbl",
                "Namespace": "sales", "TableName": "orders", "CompressionType": "ZSTD",
                "PartitionSpec": {"PartitionFields": [
                    {"Transform": "TIME_HOUR", "SourceName": "event_time"}]}
            }]
        }
    })
}

const SCHEMA: &str = "arn:aws:glue:us-east-1:000000000000:schema/reg/orders";

/// S3 Tables destinations: refused with a message naming the config key until `up` maps the
/// table bucket and the schema; then created, described with the table (and no S3
/// destination), listed as S3_TABLES, updated through S3TablesDestinationConfiguration only,
/// and the same after a restart.
#[tokio::test]
async fn tables_destinations_need_mapped_buckets_and_schemas() {
    let server = Server::start().await;
    let client = server.sdk().await;
    on_demand(&client, "s").await;
    let cases: Vec<(&str, Change, &str)> = vec![
        ("unknown schema", Box::new(|_| {}), "schemas.\"arn:aws:glue"),
        (
            "no schema",
            Box::new(|b| {
                b["StreamConfigurationList"][0]["RecordConfiguration"]
                    .as_object_mut()
                    .unwrap()
                    .remove("GSRSchemaARN");
            }),
            "GSRSchemaARN is required",
        ),
        (
            "STRING records",
            Box::new(|b| {
                b["StreamConfigurationList"][0]["RecordConfiguration"]["RecordFormatType"] =
                    json!("STRING");
            }),
            "JSON or GSR_JSON",
        ),
        (
            "two tables",
            Box::new(|b| {
                let t =
                    b["S3TablesDestinationConfiguration"]["S3TablesConfigurationList"][0].clone();
                b["S3TablesDestinationConfiguration"]["S3TablesConfigurationList"] =
                    json!([t.clone(), t]);
            }),
            "one table",
        ),
        (
            "both destinations",
            Box::new(|b| {
                b["S3DestinationConfiguration"] = json!({"StorageConfiguration": {
                    "BucketARN": "arn:aws:s3:::lake", "ExpectedBucketOwner": ACCOUNT,
                    "CompressionType": "NONE"}});
            }),
            "not both",
        ),
    ];
    for (what, change, says) in cases {
        let mut body = tables_body(&server, "t", "s");
        change(&mut body);
        let (kind, message) = server.error("CreateChannel", body).await;
        assert_eq!(kind, "InvalidArgumentException", "{what}: {message}");
        assert!(message.contains(says), "{what}: {message}");
    }
    server.gw.channels.set_tables([], [SCHEMA.to_owned()]);
    let (kind, message) = server
        .error("CreateChannel", tables_body(&server, "t", "s"))
        .await;
    assert_eq!(kind, "InvalidArgumentException");
    assert!(message.contains("table_buckets.tbl"), "{message}");
    server
        .gw
        .channels
        .set_tables(["tbl".to_owned()], [SCHEMA.to_owned()]);
    let mut unmapped_dead_letters = tables_body(&server, "t", "s");
    unmapped_dead_letters["S3TablesDestinationConfiguration"]["DeadLetterQueueS3Configuration"]["BucketARN"] =
        json!("arn:aws:s3:::errors");
    let (_, message) = server.error("CreateChannel", unmapped_dead_letters).await;
    assert!(message.contains("buckets.errors"), "{message}");

    let created = server
        .ok("CreateChannel", tables_body(&server, "t", "s"))
        .await;
    let arn = created["ChannelDescription"]["ChannelARN"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = created["ChannelDescription"]["ChannelId"]
        .as_str()
        .unwrap()
        .to_owned();
    server.gw.channels.report("t", &id, 0, RunState::Active);
    let check = |d: &aws_sdk_kinesis::types::ChannelDescription, freshness: i32| {
        assert!(d.s3_destination_configuration().is_none());
        let t = d.s3_tables_destination_configuration().expect("tables");
        assert_eq!(t.data_freshness_in_seconds(), freshness);
        let dl = t
            .dead_letter_queue_s3_configuration()
            .expect("dead letters");
        assert_eq!(dl.bucket_arn(), "arn:aws:s3:::lake");
        assert_eq!(dl.error_output_prefix(), Some("bad/"));
        let [table] = t.s3_tables_configuration_list() else {
            panic!("one table: {t:?}");
        };
        assert_eq!(table.namespace(), "sales");
        assert_eq!(table.table_name(), "orders");
        assert_eq!(table.compression_type().as_str(), "ZSTD");
        let fields = table.partition_spec().unwrap().partition_fields();
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].transform().as_str(), "TIME_HOUR");
        assert_eq!(fields[0].source_name(), "event_time");
        let rc = d.stream_configuration_list()[0]
            .record_configuration()
            .unwrap();
        assert_eq!(rc.gsr_schema_arn(), Some(SCHEMA));
    };
    let d = client
        .describe_channel()
        .channel_arn(&arn)
        .send()
        .await
        .unwrap();
    check(d.channel_description().unwrap(), 60);
    let listed = client.list_channels().send().await.unwrap();
    assert_eq!(
        listed.channel_summaries()[0]
            .channel_destination_type()
            .as_str(),
        "S3_TABLES"
    );
    // A table channel's freshness changes through S3TablesDestinationConfiguration only.
    let (kind, message) = server
        .error(
            "UpdateChannel",
            json!({"ChannelARN": arn,
                   "S3DestinationConfiguration": {"DataFreshnessInSeconds": 120}}),
        )
        .await;
    assert_eq!(kind, "InvalidArgumentException");
    assert!(
        message.contains("S3TablesDestinationConfiguration"),
        "{message}"
    );
    server
        .ok(
            "UpdateChannel",
            json!({"ChannelARN": arn,
                   "S3TablesDestinationConfiguration": {"DataFreshnessInSeconds": 120}}),
        )
        .await;
    let server = server.restart().await;
    let client = server.sdk().await;
    let d = client
        .describe_channel()
        .channel_arn(&arn)
        .send()
        .await
        .unwrap();
    check(d.channel_description().unwrap(), 120);
}
