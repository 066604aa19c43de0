//! Records up to 10 MiB, end to end through the real binary: after UpdateMaxRecordSize a 9 MiB
//! record is accepted by PutRecord and PutRecords, read back whole by GetRecords, delivered
//! into the lake, queried by prep, and scored (the scorer answers it within the output
//! stream's own limit); the default 1 MiB limit still refuses it on another stream.

use crate::common;

use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use common::kinesis::{client, iterator, read_from, wait_active};
use common::{Server, ServerLogs, millrace, train_tiny};

const PATIENCE: Duration = Duration::from_secs(60);
const MIB: usize = 1024 * 1024;

const CONFIG: &str = r#"
[[stream]]
name = "big"
shards = 1

[[stream]]
name = "small"
shards = 1

[[delivery]]
name = "big-lake"
stream = "big"
buffer_interval_secs = 0
max_record_kib = 10240

[[scoring]]
stream = "big"
model = "m"
to_stream = "preds"
"#;

fn record(id: &str, pad: usize) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","x":0.9,"z":0.1,"pad":"{}"}}"#,
        "p".repeat(pad)
    )
    .into_bytes()
}

async fn stream_arn(kinesis: &Client, stream: &str) -> String {
    kinesis
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .stream_description_summary()
        .unwrap()
        .stream_arn()
        .to_owned()
}

async fn count(kinesis: &Client, stream: &str) -> usize {
    let Ok(listed) = kinesis.list_shards().stream_name(stream).send().await else {
        return 0;
    };
    let mut n = 0;
    for s in listed.shards() {
        let it = iterator(
            kinesis,
            stream,
            s.shard_id(),
            ShardIteratorType::TrimHorizon,
            None,
        )
        .await;
        n += read_from(kinesis, s.shard_id(), it, PATIENCE).await.len();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_mib_records_flow_through_the_pipeline_after_update_max_record_size() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    train_tiny(&data, dir.path());
    let config = dir.path().join("millrace.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut logs = ServerLogs::new(dir.path().join("logs"));
    let server = Server::start(
        &data,
        [
            "--kinesis-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
            "-c",
            config.to_str().unwrap(),
        ],
        None,
        &["kinesis"],
        PATIENCE,
        logs.next(),
    );
    let kinesis = client(server.url("kinesis")).await;
    wait_active(&kinesis, "big", 1, PATIENCE).await;
    let big = record("big", 9 * MIB);

    // The default limit refuses it.
    let e = kinesis
        .put_record()
        .stream_name("small")
        .partition_key("k")
        .data(Blob::new(big.clone()))
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error()
            .unwrap()
            .is_invalid_argument_exception(),
        "{e:?}"
    );

    kinesis
        .update_max_record_size()
        .stream_arn(stream_arn(&kinesis, "big").await)
        .max_record_size_in_kib(10240)
        .send()
        .await
        .unwrap();
    let put = kinesis
        .put_record()
        .stream_name("big")
        .partition_key("k")
        .data(Blob::new(big.clone()))
        .send()
        .await
        .unwrap();
    let many = kinesis
        .put_records()
        .stream_name("big")
        .records(
            PutRecordsRequestEntry::builder()
                .partition_key("k")
                .data(Blob::new(record("big2", 9 * MIB)))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(many.failed_record_count(), Some(0));
    kinesis
        .put_record()
        .stream_name("big")
        .partition_key("k")
        .data(Blob::new(record("small", 10)))
        .send()
        .await
        .unwrap();

    // GetRecords gives it back whole.
    let it = iterator(
        &kinesis,
        "big",
        "shardId-000000000000",
        ShardIteratorType::AtSequenceNumber,
        Some(put.sequence_number()),
    )
    .await;
    let got = kinesis
        .get_records()
        .shard_iterator(it)
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(got.records()[0].data().as_ref(), &big[..]);

    // Delivered into the lake and read by prep.
    let lake = data.join("lake").join("raw").join("big");
    let deadline = Instant::now() + PATIENCE;
    let table = loop {
        let out = millrace()
            .args(["query", "--format", "csv", "--table"])
            .arg(format!("t={}", lake.display()))
            .arg("SELECT id, length(pad) AS n FROM t ORDER BY id")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.lines().count() == 4 {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "lake: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        table.lines().collect::<Vec<_>>(),
        [
            "id,n",
            &format!("big,{}", 9 * MIB),
            &format!("big2,{}", 9 * MIB),
            "small,10"
        ]
    );

    // Scored: three inputs, three answers (predictions or error records), none lost.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answered = count(&kinesis, "preds").await + count(&kinesis, "preds-errors").await;
        if answered >= 3 {
            assert_eq!(answered, 3);
            break;
        }
        assert!(Instant::now() < deadline, "{answered} of 3 inputs scored");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(server.log_count(" ERROR "), 0, "{}", server.log_tail());
}
