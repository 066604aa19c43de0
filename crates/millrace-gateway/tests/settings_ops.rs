//! The Kinesis metadata operations through aws-sdk-kinesis against a real server: DescribeLimits,
//! account settings, enhanced monitoring, encryption, stream mode, record size, warm
//! throughput, resource policies, resource tags and DeleteStream's EnforceConsumerDeletion.
//! Each change is observed by a later call, again after the store is reopened on the same
//! folder, and invalid input gets the AWS error type Kinesis gives.

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    EncryptionType, MetricsName, MinimumThroughputBillingCommitmentInput,
    MinimumThroughputBillingCommitmentInputStatus, MinimumThroughputBillingCommitmentOutputStatus,
    PutRecordsRequestEntry, StreamMode, StreamModeDetails,
};
use millrace_stream::{ConsumerMeta, StoreOptions};

use crate::common;

use common::TestServer as Server;

impl Server {
    /// Posts a JSON body to operation `op`; returns the status and the error type, if any.
    async fn json_type(&self, op: &str, body: serde_json::Value) -> (u16, String) {
        let resp = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("Kinesis_20131202.{op}"))
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        (status, v["__type"].as_str().unwrap_or_default().to_owned())
    }

    fn arn(&self, stream: &str) -> String {
        format!("arn:aws:kinesis:us-east-1:000000000000:stream/{stream}")
    }

    /// Registers consumer `name` of `stream` directly in the store (created at `created_ms`);
    /// returns its ARN.
    fn add_consumer(&self, stream: &str, name: &str, created_ms: i64) -> String {
        self.store
            .stream(stream)
            .unwrap()
            .update_meta(|m| {
                m.consumers.push(ConsumerMeta {
                    name: name.into(),
                    created_ms,
                    tags: Default::default(),
                });
                Ok(())
            })
            .unwrap();
        format!("{}/consumer/{name}:{}", self.arn(stream), created_ms / 1000)
    }
}

/// The AWS error type of a failed call; panics if it succeeded.
fn code<T, E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    r: Result<T, SdkError<E, R>>,
) -> String {
    match r {
        Ok(_) => panic!("the call succeeded; an error was expected"),
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("no error code in {e:?}"))
            .to_owned(),
    }
}

async fn create(client: &Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .unwrap();
}

async fn create_on_demand(client: &Client, name: &str) {
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

async fn summary(client: &Client, name: &str) -> aws_sdk_kinesis::types::StreamDescriptionSummary {
    client
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
}

fn commitment(status: &str) -> MinimumThroughputBillingCommitmentInput {
    MinimumThroughputBillingCommitmentInput::builder()
        .status(MinimumThroughputBillingCommitmentInputStatus::from(status))
        .build()
        .unwrap()
}

#[tokio::test]
async fn describe_limits_counts_open_shards_and_on_demand_streams() {
    let server = Server::start_with(StoreOptions {
        max_shards: 100,
        on_demand_shards: 2,
        ..StoreOptions::default()
    })
    .await;
    let client = server.sdk().await;
    create(&client, "p", 3).await;
    create_on_demand(&client, "od").await;
    let check = |l: aws_sdk_kinesis::operation::describe_limits::DescribeLimitsOutput| {
        assert_eq!(l.shard_limit(), 100);
        assert_eq!(l.open_shard_count(), 5);
        assert_eq!(l.on_demand_stream_count(), 1);
        assert_eq!(l.on_demand_stream_count_limit(), 50);
    };
    check(client.describe_limits().send().await.unwrap());
    let server = server.restart().await;
    let client = server.sdk().await;
    check(client.describe_limits().send().await.unwrap());
    // A body that is not a JSON object.
    let resp = reqwest::Client::new()
        .post(&server.url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.DescribeLimits")
        .body("[1]")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(v["__type"], "SerializationException");
}

#[tokio::test]
async fn account_settings_commitment_is_saved_and_survives_a_restart() {
    let server = Server::start().await;
    let client = server.sdk().await;
    let s = client.describe_account_settings().send().await.unwrap();
    let c = s.minimum_throughput_billing_commitment().unwrap();
    assert_eq!(
        c.status(),
        &MinimumThroughputBillingCommitmentOutputStatus::Disabled
    );
    assert!(c.started_at().is_none());

    let out = client
        .update_account_settings()
        .minimum_throughput_billing_commitment(commitment("ENABLED"))
        .send()
        .await
        .unwrap();
    let c = out.minimum_throughput_billing_commitment().unwrap();
    assert_eq!(
        c.status(),
        &MinimumThroughputBillingCommitmentOutputStatus::Enabled
    );
    let started = c.started_at().unwrap().secs();
    let earliest = c.earliest_allowed_end_at().unwrap().secs();
    assert_eq!(earliest - started, 24 * 3600);
    assert!(server.dir().join("account.json").exists());

    let server = server.restart().await;
    let client = server.sdk().await;
    let s = client.describe_account_settings().send().await.unwrap();
    let c = s.minimum_throughput_billing_commitment().unwrap();
    assert_eq!(
        c.status(),
        &MinimumThroughputBillingCommitmentOutputStatus::Enabled
    );
    assert_eq!(c.started_at().unwrap().secs(), started);

    // Disabled before its earliest allowed end, it runs until then.
    client
        .update_account_settings()
        .minimum_throughput_billing_commitment(commitment("DISABLED"))
        .send()
        .await
        .unwrap();
    let server = server.restart().await;
    let client = server.sdk().await;
    let s = client.describe_account_settings().send().await.unwrap();
    let c = s.minimum_throughput_billing_commitment().unwrap();
    assert_eq!(
        c.status(),
        &MinimumThroughputBillingCommitmentOutputStatus::EnabledUntilEarliestAllowedEnd
    );
    assert_eq!(c.ended_at().unwrap().secs(), earliest);

    let e = client
        .update_account_settings()
        .minimum_throughput_billing_commitment(commitment("SOMETIMES"))
        .send()
        .await;
    assert_eq!(code(e), "ValidationException");
    assert_eq!(
        server
            .json_type("UpdateAccountSettings", serde_json::json!({}))
            .await,
        (400, "ValidationException".to_owned())
    );
}

#[tokio::test]
async fn enhanced_monitoring_enables_and_disables_metrics() {
    let server = Server::start().await;
    let client = server.sdk().await;
    create(&client, "m", 1).await;
    let out = client
        .enable_enhanced_monitoring()
        .stream_name("m")
        .shard_level_metrics(MetricsName::IncomingBytes)
        .send()
        .await
        .unwrap();
    assert!(out.current_shard_level_metrics().is_empty());
    assert_eq!(
        out.desired_shard_level_metrics(),
        &[MetricsName::IncomingBytes]
    );
    assert_eq!(out.stream_name(), Some("m"));
    assert_eq!(out.stream_arn(), Some(server.arn("m").as_str()));

    let out = client
        .enable_enhanced_monitoring()
        .stream_arn(server.arn("m"))
        .shard_level_metrics(MetricsName::All)
        .send()
        .await
        .unwrap();
    assert_eq!(out.current_shard_level_metrics().len(), 1);
    assert_eq!(out.desired_shard_level_metrics().len(), 7);

    let out = client
        .disable_enhanced_monitoring()
        .stream_name("m")
        .shard_level_metrics(MetricsName::IncomingBytes)
        .shard_level_metrics(MetricsName::IteratorAgeMilliseconds)
        .send()
        .await
        .unwrap();
    assert_eq!(out.current_shard_level_metrics().len(), 7);
    let desired = out.desired_shard_level_metrics().to_vec();
    assert_eq!(desired.len(), 5);
    assert!(!desired.contains(&MetricsName::IncomingBytes));
    assert!(!desired.contains(&MetricsName::IteratorAgeMilliseconds));

    let seen = |s: aws_sdk_kinesis::types::StreamDescriptionSummary| {
        s.enhanced_monitoring()[0].shard_level_metrics().to_vec()
    };
    assert_eq!(seen(summary(&client, "m").await), desired);
    let server = server.restart().await;
    let client = server.sdk().await;
    assert_eq!(seen(summary(&client, "m").await), desired);

    let e = client
        .enable_enhanced_monitoring()
        .stream_name("m")
        .shard_level_metrics(MetricsName::from("Bogus"))
        .send()
        .await;
    assert_eq!(code(e), "ValidationException");
    let e = client
        .disable_enhanced_monitoring()
        .stream_name("m")
        .set_shard_level_metrics(Some(vec![]))
        .send()
        .await;
    assert_eq!(code(e), "ValidationException");
    let e = client
        .enable_enhanced_monitoring()
        .stream_name("nope")
        .shard_level_metrics(MetricsName::All)
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
}

#[tokio::test]
async fn stream_encryption_starts_is_reported_and_stops_with_its_key() {
    let server = Server::start().await;
    let client = server.sdk().await;
    create(&client, "e", 1).await;
    let put = client
        .put_record()
        .stream_name("e")
        .partition_key("k")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.encryption_type(), None);

    client
        .start_stream_encryption()
        .stream_name("e")
        .encryption_type(EncryptionType::Kms)
        .key_id("alias/aws/kinesis")
        .send()
        .await
        .unwrap();
    let s = summary(&client, "e").await;
    assert_eq!(s.encryption_type(), Some(&EncryptionType::Kms));
    assert_eq!(s.key_id(), Some("alias/aws/kinesis"));

    let server = server.restart().await;
    let client = server.sdk().await;
    let s = summary(&client, "e").await;
    assert_eq!(s.encryption_type(), Some(&EncryptionType::Kms));
    let put = client
        .put_record()
        .stream_name("e")
        .partition_key("k")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.encryption_type(), Some(&EncryptionType::Kms));
    let puts = client
        .put_records()
        .stream_name("e")
        .records(
            PutRecordsRequestEntry::builder()
                .partition_key("k")
                .data(Blob::new("y"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(puts.encryption_type(), Some(&EncryptionType::Kms));

    // Stopping takes the key the stream is encrypted with.
    let e = client
        .stop_stream_encryption()
        .stream_name("e")
        .encryption_type(EncryptionType::Kms)
        .key_id("alias/other")
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
    assert_eq!(
        summary(&client, "e").await.encryption_type(),
        Some(&EncryptionType::Kms)
    );
    client
        .stop_stream_encryption()
        .stream_arn(server.arn("e"))
        .encryption_type(EncryptionType::Kms)
        .key_id("alias/aws/kinesis")
        .send()
        .await
        .unwrap();
    let server = server.restart().await;
    let client = server.sdk().await;
    assert_eq!(
        summary(&client, "e").await.encryption_type(),
        Some(&EncryptionType::None)
    );
    let put = client
        .put_record()
        .stream_name("e")
        .partition_key("k")
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.encryption_type(), None);

    let e = client
        .start_stream_encryption()
        .stream_name("e")
        .encryption_type(EncryptionType::None)
        .key_id("k")
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
    let e = client
        .start_stream_encryption()
        .stream_name("e")
        .encryption_type(EncryptionType::Kms)
        .key_id("")
        .send()
        .await;
    assert_eq!(code(e), "ValidationException");
    let e = client
        .stop_stream_encryption()
        .stream_name("e")
        .encryption_type(EncryptionType::Kms)
        .key_id("alias/aws/kinesis")
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
}

/// Every byte of every file under `dir`.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reads the whole of shard 0 with GetRecords: (partition key, data) in order, or the error
/// type that stopped the read.
async fn read_shard(client: &Client, stream: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut it = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let mut out = Vec::new();
    loop {
        let got = match client.get_records().shard_iterator(&it).send().await {
            Ok(g) => g,
            Err(e) => return Err(e.code().unwrap_or("?").to_owned()),
        };
        if got.records.is_empty() {
            return Ok(out);
        }
        out.extend(got.records.iter().map(|r| {
            (
                r.partition_key().unwrap_or_default().to_owned(),
                r.data.as_ref().to_vec(),
            )
        }));
        it = got.next_shard_iterator.unwrap();
    }
}

async fn put_one(
    client: &Client,
    key: &str,
    data: &str,
) -> Result<(), SdkError<aws_sdk_kinesis::operation::put_record::PutRecordError>> {
    client
        .put_record()
        .stream_name("sealed")
        .partition_key(key)
        .data(Blob::new(data))
        .send()
        .await
        .map(|_| ())
}

#[tokio::test]
async fn an_encrypted_streams_records_are_sealed_on_disk_and_read_back_after_a_restart() {
    let server = Server::start().await;
    let client = server.sdk().await;
    create(&client, "sealed", 1).await;
    put_one(&client, "before-key", "written-before-encryption")
        .await
        .unwrap();
    let e = client
        .start_stream_encryption()
        .stream_name("sealed")
        .encryption_type(EncryptionType::Kms)
        .key_id("alias/not-in-the-keyring")
        .send()
        .await;
    assert_eq!(code(e), "KMSNotFoundException");
    client
        .start_stream_encryption()
        .stream_name("sealed")
        .encryption_type(EncryptionType::Kms)
        .key_id("alias/aws/kinesis")
        .send()
        .await
        .unwrap();
    let mut expected = vec![(
        "before-key".to_owned(),
        b"written-before-encryption".to_vec(),
    )];
    for i in 0..40 {
        let (k, d) = (
            format!("SECRET-KEY-{i}"),
            format!("SECRET-PAYLOAD-{i:04}-{}", "x".repeat(i * 37)),
        );
        put_one(&client, &k, &d).await.unwrap();
        expected.push((k, d.into_bytes()));
    }

    let server = server.restart().await;
    let client = server.sdk().await;
    assert_eq!(read_shard(&client, "sealed").await.unwrap(), expected);
    let stream_dir = server.dir().join("streams/sealed");
    let files = files_under(&stream_dir);
    assert!(
        files
            .iter()
            .any(|(_, b)| contains(b, b"written-before-encryption"))
    );
    for (path, bytes) in &files {
        for needle in [&b"SECRET-KEY"[..], b"SECRET-PAYLOAD"] {
            assert!(
                !contains(bytes, needle),
                "{} holds plaintext",
                path.display()
            );
        }
    }

    // Without its key: the plain record is still answered, then the sealed ones are refused
    // with the AWS error, and so are new appends; nothing is written in the clear.
    let keyring = server.dir().join("state/keyring.toml");
    let kept = server.dir().join("keyring.kept");
    std::fs::rename(&keyring, &kept).unwrap();
    let server = server.restart().await;
    let client = server.sdk().await;
    assert_eq!(
        read_shard(&client, "sealed").await,
        Err("KMSNotFoundException".to_owned())
    );
    let e = client
        .put_record()
        .stream_name("sealed")
        .partition_key("k")
        .data(Blob::new("SECRET-LATE"))
        .send()
        .await;
    assert_eq!(code(e), "KMSNotFoundException");
    // The key put back is found again without a restart (appends look once a second).
    std::fs::rename(&kept, &keyring).unwrap();
    assert_eq!(read_shard(&client, "sealed").await.unwrap(), expected);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    put_one(&client, "late", "after-the-key-came-back")
        .await
        .unwrap();
    assert_eq!(
        read_shard(&client, "sealed").await.unwrap().len(),
        expected.len() + 1
    );
    for (path, bytes) in files_under(&stream_dir) {
        assert!(
            !contains(&bytes, b"SECRET-LATE") && !contains(&bytes, b"after-the-key"),
            "{}",
            path.display()
        );
    }
}

#[tokio::test]
async fn update_stream_mode_switches_mode_and_keeps_the_shards() {
    let server = Server::start().await;
    let client = server.sdk().await;
    create(&client, "sm", 3).await;
    let on_demand = StreamModeDetails::builder()
        .stream_mode(StreamMode::OnDemand)
        .build()
        .unwrap();
    client
        .update_stream_mode()
        .stream_arn(server.arn("sm"))
        .stream_mode_details(on_demand.clone())
        .send()
        .await
        .unwrap();
    let s = summary(&client, "sm").await;
    assert_eq!(
        s.stream_mode_details().unwrap().stream_mode(),
        &StreamMode::OnDemand
    );
    assert_eq!(s.open_shard_count(), 3);
    let server = server.restart().await;
    let client = server.sdk().await;
    let s = summary(&client, "sm").await;
    assert_eq!(
        s.stream_mode_details().unwrap().stream_mode(),
        &StreamMode::OnDemand
    );
    assert_eq!(s.open_shard_count(), 3);

    let e = client
        .update_stream_mode()
        .stream_arn(server.arn("sm"))
        .stream_mode_details(on_demand)
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
    let e = client
        .update_stream_mode()
        .stream_arn(server.arn("sm"))
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::from("SOMETIMES"))
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_eq!(code(e), "ValidationException");
    // StreamARN is required: a name alone is not enough.
    assert_eq!(
        server
            .json_type(
                "UpdateStreamMode",
                serde_json::json!({"StreamName": "sm",
                    "StreamModeDetails": {"StreamMode": "PROVISIONED"}}),
            )
            .await,
        (400, "ValidationException".to_owned())
    );
    let e = client
        .update_stream_mode()
        .stream_arn(server.arn("missing"))
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::Provisioned)
                .build()
                .unwrap(),
        )
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
    client
        .update_stream_mode()
        .stream_arn(server.arn("sm"))
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::Provisioned)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let server = server.restart().await;
    let client = server.sdk().await;
    assert_eq!(
        summary(&client, "sm")
            .await
            .stream_mode_details()
            .unwrap()
            .stream_mode(),
        &StreamMode::Provisioned
    );
}

#[tokio::test]
async fn update_max_record_size_is_enforced_and_survives_a_restart() {
    let server = Server::start().await;
    let client = server.sdk().await;
    create(&client, "big", 1).await;
    assert_eq!(
        summary(&client, "big").await.max_record_size_in_kib(),
        Some(1024)
    );
    let record = vec![7u8; 1536 * 1024];
    let e = client
        .put_record()
        .stream_name("big")
        .partition_key("k")
        .data(Blob::new(record.clone()))
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");

    client
        .update_max_record_size()
        .stream_arn(server.arn("big"))
        .max_record_size_in_kib(2048)
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary(&client, "big").await.max_record_size_in_kib(),
        Some(2048)
    );
    let server = server.restart().await;
    let client = server.sdk().await;
    assert_eq!(
        summary(&client, "big").await.max_record_size_in_kib(),
        Some(2048)
    );
    client
        .put_record()
        .stream_name("big")
        .partition_key("k")
        .data(Blob::new(record))
        .send()
        .await
        .unwrap();

    for kib in [1023, 10_241] {
        let e = client
            .update_max_record_size()
            .stream_arn(server.arn("big"))
            .max_record_size_in_kib(kib)
            .send()
            .await;
        assert_eq!(code(e), "ValidationException", "{kib}");
    }
    let e = client
        .update_max_record_size()
        .stream_arn(server.arn("gone"))
        .max_record_size_in_kib(4096)
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
}

#[tokio::test]
async fn warm_throughput_needs_on_demand_and_the_commitment() {
    let server = Server::start().await;
    let client = server.sdk().await;
    create(&client, "prov", 1).await;
    create_on_demand(&client, "od").await;
    // Not before the account enables the billing commitment.
    let e = client
        .update_stream_warm_throughput()
        .stream_name("od")
        .warm_throughput_mibps(100)
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
    client
        .update_account_settings()
        .minimum_throughput_billing_commitment(commitment("ENABLED"))
        .send()
        .await
        .unwrap();
    let e = client
        .update_stream_warm_throughput()
        .stream_name("prov")
        .warm_throughput_mibps(100)
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");

    let out = client
        .update_stream_warm_throughput()
        .stream_arn(server.arn("od"))
        .warm_throughput_mibps(100)
        .send()
        .await
        .unwrap();
    assert_eq!(out.stream_name(), Some("od"));
    assert_eq!(out.stream_arn(), Some(server.arn("od").as_str()));
    let w = out.warm_throughput().unwrap();
    assert_eq!(
        (w.target_mibps(), w.current_mibps()),
        (Some(100), Some(100))
    );
    assert_eq!(
        summary(&client, "od")
            .await
            .warm_throughput()
            .unwrap()
            .target_mibps(),
        Some(100)
    );

    // CreateStream's WarmThroughputMiBps and MaxRecordSizeInKiB.
    client
        .create_stream()
        .stream_name("od2")
        .stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .unwrap(),
        )
        .warm_throughput_mibps(50)
        .max_record_size_in_kib(4096)
        .send()
        .await
        .unwrap();
    let e = client
        .create_stream()
        .stream_name("prov2")
        .shard_count(1)
        .warm_throughput_mibps(50)
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
    let e = client
        .create_stream()
        .stream_name("prov3")
        .shard_count(1)
        .max_record_size_in_kib(100)
        .send()
        .await;
    assert_eq!(code(e), "ValidationException");

    let server = server.restart().await;
    let client = server.sdk().await;
    assert_eq!(
        summary(&client, "od")
            .await
            .warm_throughput()
            .unwrap()
            .target_mibps(),
        Some(100)
    );
    let s = summary(&client, "od2").await;
    assert_eq!(s.warm_throughput().unwrap().target_mibps(), Some(50));
    assert_eq!(s.max_record_size_in_kib(), Some(4096));
    let streams = client.list_streams().send().await.unwrap();
    assert!(
        !streams
            .stream_names()
            .iter()
            .any(|n| n.starts_with("prov2"))
    );

    let e = client
        .update_stream_warm_throughput()
        .stream_name("od")
        .warm_throughput_mibps(-1)
        .send()
        .await;
    assert_eq!(code(e), "ValidationException");
    let e = client
        .update_stream_warm_throughput()
        .stream_name("od")
        .warm_throughput_mibps(20_000)
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
}

#[tokio::test]
async fn resource_policies_of_streams_and_consumers() {
    let server = Server::start().await;
    let client = server.sdk().await;
    create(&client, "pol", 1).await;
    let consumer = server.add_consumer("pol", "c1", 1_700_000_000_123);
    let stream_arn = server.arn("pol");
    let policy = |action: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:root"}},"Action":"{action}","Resource":"*"}}]}}"#
        )
    };
    let get = |client: Client, arn: String| async move {
        client
            .get_resource_policy()
            .resource_arn(arn)
            .send()
            .await
            .unwrap()
            .policy
    };
    // No policy reads as the empty one.
    assert_eq!(get(client.clone(), stream_arn.clone()).await, "{}");
    client
        .put_resource_policy()
        .resource_arn(&stream_arn)
        .policy(policy("kinesis:GetRecords"))
        .send()
        .await
        .unwrap();
    client
        .put_resource_policy()
        .resource_arn(&consumer)
        .policy(policy("kinesis:SubscribeToShard"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(client.clone(), stream_arn.clone()).await,
        policy("kinesis:GetRecords")
    );

    let server = server.restart().await;
    let client = server.sdk().await;
    assert_eq!(
        get(client.clone(), stream_arn.clone()).await,
        policy("kinesis:GetRecords")
    );
    assert_eq!(
        get(client.clone(), consumer.clone()).await,
        policy("kinesis:SubscribeToShard")
    );
    client
        .delete_resource_policy()
        .resource_arn(&stream_arn)
        .send()
        .await
        .unwrap();
    let server = server.restart().await;
    let client = server.sdk().await;
    assert_eq!(get(client.clone(), stream_arn.clone()).await, "{}");
    assert_eq!(
        get(client.clone(), consumer.clone()).await,
        policy("kinesis:SubscribeToShard")
    );

    let e = client
        .delete_resource_policy()
        .resource_arn(&stream_arn)
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
    for bad in [
        "not json",
        "[]",
        "{}",
        r#"{"Statement":[{"Effect":"Perhaps"}]}"#,
    ] {
        let e = client
            .put_resource_policy()
            .resource_arn(&stream_arn)
            .policy(bad)
            .send()
            .await;
        assert_eq!(code(e), "InvalidArgumentException", "{bad}");
    }
    let e = client
        .get_resource_policy()
        .resource_arn("arn:aws:s3:::bucket")
        .send()
        .await;
    assert_eq!(code(e), "ValidationException");
    let e = client
        .get_resource_policy()
        .resource_arn(format!("{stream_arn}/consumer/c1:1"))
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
    let e = client
        .get_resource_policy()
        .resource_arn(server.arn("other"))
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
}

#[tokio::test]
async fn resource_tags_of_streams_and_consumers() {
    let server = Server::start().await;
    let client = server.sdk().await;
    create(&client, "tg", 1).await;
    let consumer = server.add_consumer("tg", "reader", 1_700_000_000_000);
    let stream_arn = server.arn("tg");
    client
        .tag_resource()
        .resource_arn(&stream_arn)
        .tags("team", "data")
        .tags("env", "test")
        .send()
        .await
        .unwrap();
    client
        .tag_resource()
        .resource_arn(&consumer)
        .tags("owner", "me")
        .send()
        .await
        .unwrap();
    client
        .untag_resource()
        .resource_arn(&stream_arn)
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    let list = |client: Client, arn: String| async move {
        client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap()
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect::<Vec<_>>()
    };
    let pair = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    assert_eq!(
        list(client.clone(), stream_arn.clone()).await,
        pair("team", "data")
    );
    // The stream's tags are the ones ListTagsForStream reads.
    let by_stream = client
        .list_tags_for_stream()
        .stream_name("tg")
        .send()
        .await
        .unwrap();
    assert_eq!(by_stream.tags().len(), 1);

    let server = server.restart().await;
    let client = server.sdk().await;
    assert_eq!(
        list(client.clone(), stream_arn.clone()).await,
        pair("team", "data")
    );
    assert_eq!(
        list(client.clone(), consumer.clone()).await,
        pair("owner", "me")
    );

    // At most 50 tags on a resource.
    let mut many = client.tag_resource().resource_arn(&consumer);
    for i in 0..50 {
        many = many.tags(format!("k{i}"), "v");
    }
    assert_eq!(code(many.send().await), "InvalidArgumentException");
    assert_eq!(list(client.clone(), consumer.clone()).await.len(), 1);
    let e = client
        .tag_resource()
        .resource_arn(&stream_arn)
        .tags("aws:reserved", "v")
        .send()
        .await;
    assert_eq!(code(e), "InvalidArgumentException");
    let e = client
        .tag_resource()
        .resource_arn(&stream_arn)
        .tags("k".repeat(129), "v")
        .send()
        .await;
    assert_eq!(code(e), "ValidationException");
    let e = client
        .untag_resource()
        .resource_arn(&stream_arn)
        .set_tag_keys(Some(vec![]))
        .send()
        .await;
    assert_eq!(code(e), "ValidationException");
    let e = client
        .list_tags_for_resource()
        .resource_arn(server.arn("nope"))
        .send()
        .await;
    assert_eq!(code(e), "ResourceNotFoundException");
    let e = client
        .list_tags_for_resource()
        .resource_arn("not an arn")
        .send()
        .await;
    assert_eq!(code(e), "ValidationException");
}

#[tokio::test]
async fn delete_stream_with_consumers_needs_enforce_consumer_deletion() {
    let server = Server::start().await;
    let client = server.sdk().await;
    create(&client, "dc", 1).await;
    create(&client, "plain", 1).await;
    server.add_consumer("dc", "c", 1_700_000_000_000);
    let e = client.delete_stream().stream_name("dc").send().await;
    assert_eq!(code(e), "ResourceInUseException");
    let e = client
        .delete_stream()
        .stream_name("dc")
        .enforce_consumer_deletion(false)
        .send()
        .await;
    assert_eq!(code(e), "ResourceInUseException");
    summary(&client, "dc").await;
    // A stream without consumers goes without it.
    client
        .delete_stream()
        .stream_name("plain")
        .send()
        .await
        .unwrap();
    client
        .delete_stream()
        .stream_name("dc")
        .enforce_consumer_deletion(true)
        .send()
        .await
        .unwrap();
    let server = server.restart().await;
    let client = server.sdk().await;
    let names = client.list_streams().send().await.unwrap();
    assert!(names.stream_names().is_empty(), "{names:?}");
    let e = client.delete_stream().stream_name("dc").send().await;
    assert_eq!(code(e), "ResourceNotFoundException");
}
