//! `millrace produce --to firehose` against `millrace up`'s Firehose API: a DirectPut delivery
//! stream created with aws-sdk-firehose, the records sent with PutRecordBatch (and one
//! PutRecord each), and every one read back from the lake exactly once.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_firehose::types::{
    BufferingHints, DeliveryStreamStatus, ExtendedS3DestinationConfiguration,
};
use common::{Server, ServerLogs, millrace};

const PATIENCE: Duration = Duration::from_secs(30);

async fn firehose(url: &str) -> aws_sdk_firehose::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_firehose::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_firehose::Client::new(&conf)
}

async fn create(client: &aws_sdk_firehose::Client, name: &str, prefix: &str) {
    client
        .create_delivery_stream()
        .delivery_stream_name(name)
        .extended_s3_destination_configuration(
            ExtendedS3DestinationConfiguration::builder()
                .role_arn("arn:aws:iam::000000000000:role/firehose")
                .bucket_arn("arn:aws:s3:::lake")
                .prefix(prefix)
                .buffering_hints(
                    BufferingHints::builder()
                        .size_in_mbs(1)
                        .interval_in_seconds(0)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let t0 = Instant::now();
    loop {
        let d = client
            .describe_delivery_stream()
            .delivery_stream_name(name)
            .send()
            .await
            .unwrap();
        let d = d.delivery_stream_description().unwrap();
        if *d.delivery_stream_status() == DeliveryStreamStatus::Active {
            return;
        }
        assert!(t0.elapsed() < PATIENCE, "{name} not ACTIVE: {d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `id` of every JSON record under `dir` (records back to back, as Firehose writes them).
fn delivered_ids(dir: &Path) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !e.file_name().to_string_lossy().starts_with('.') {
                let bytes = std::fs::read(&p).unwrap();
                for v in
                    serde_json::Deserializer::from_slice(&bytes).into_iter::<serde_json::Value>()
                {
                    ids.push(v.unwrap()["id"].as_u64().unwrap());
                }
            }
        }
    }
    ids.sort();
    ids
}

fn wait_for(dir: &Path, n: usize) -> Vec<u64> {
    let t0 = Instant::now();
    loop {
        let ids = delivered_ids(dir);
        if ids.len() >= n || t0.elapsed() > PATIENCE {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_to_firehose_delivers_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut logs = ServerLogs::new(dir.path().join("logs"));
    let server = Server::start(
        &data,
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
    );
    let url = server.url("kinesis").to_owned();
    let client = firehose(&url).await;
    create(&client, "batched", "batched/").await;
    create(&client, "single", "single/").await;
    let input = dir.path().join("records.json");
    let lines: Vec<String> = (0..2000)
        .map(|i| format!("{{\"id\":{i},\"pad\":\"{}\"}}", "x".repeat(600)))
        .collect();
    std::fs::write(&input, lines.join("\n")).unwrap();

    for (name, batch) in [("batched", true), ("single", false)] {
        let file = if batch {
            input.clone()
        } else {
            let few = dir.path().join("few.json");
            std::fs::write(&few, lines[..20].join("\n")).unwrap();
            few
        };
        let mut cmd = millrace();
        cmd.args([
            "produce",
            "--to",
            "firehose",
            "--endpoint-url",
            &url,
            "--stream",
            name,
        ])
        .arg("--file")
        .arg(&file);
        if batch {
            cmd.arg("--batch");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "produce --to firehose ({name}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("to delivery stream"), "{stderr}");
    }
    let want: Vec<u64> = (0..2000).collect();
    assert_eq!(wait_for(&data.join("lake/batched"), 2000), want);
    assert_eq!(wait_for(&data.join("lake/single"), 20), want[..20]);

    // --create-shards is for Kinesis: refused, with the reason.
    let out = millrace()
        .args([
            "produce",
            "--to",
            "firehose",
            "--endpoint-url",
            &url,
            "--stream",
            "single",
        ])
        .arg("--file")
        .arg(&input)
        .args(["--create-shards", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--create-shards"));
}
