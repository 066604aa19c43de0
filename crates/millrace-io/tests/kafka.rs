//! The Kafka backend against librdkafka's mock cluster (a Kafka-protocol broker in this
//! process: produce, fetch, offsets, groups; no CreateTopics, so topics are made through its
//! own call). The same reads and writes against a real broker: `tests/kafka_broker.rs` in the
//! binary's crate.

use std::collections::HashMap;
use std::time::Duration;

use millrace_io::sink::{self, Retry};
use millrace_io::{IoError, KafkaSink, KafkaSource, KafkaUrl, RecordSource, SinkRecord};
use rdkafka::mocking::MockCluster;

fn url(
    cluster: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    topic: &str,
) -> KafkaUrl {
    KafkaUrl::parse(&format!("kafka://{}/{topic}", cluster.bootstrap_servers()))
        .unwrap()
        .unwrap()
}

fn records(n: usize) -> Vec<SinkRecord> {
    (0..n)
        .map(|i| SinkRecord::new(format!("key-{}", i % 17), format!("{{\"i\":{i}}}")))
        .collect()
}

/// Reads every partition from the oldest record until caught up.
async fn read_all(source: &dyn RecordSource) -> HashMap<String, Vec<(String, String, String)>> {
    let mut out = HashMap::new();
    for shard in source.shards().await.unwrap() {
        let mut after: Option<String> = None;
        let mut got = Vec::new();
        loop {
            let batch = source
                .read(&shard, after.as_deref(), Duration::from_millis(500))
                .await
                .unwrap();
            for r in &batch.records {
                got.push((
                    r.sequence.clone(),
                    r.partition_key.clone(),
                    String::from_utf8(r.data.to_vec()).unwrap(),
                ));
            }
            if let Some(last) = batch.records.last() {
                after = Some(last.sequence.clone());
            }
            if batch.caught_up {
                break;
            }
        }
        out.insert(shard, got);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_put_is_read_once_in_order_per_key() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("churn", 3, 1).unwrap();
    let stream = url(&cluster, "churn");
    let sink = KafkaSink::new(stream.clone()).unwrap();
    let sent = records(1200);
    let placed = sink::put_all(&sink, &sent, Retry::default()).await.unwrap();
    assert_eq!(placed.len(), sent.len());

    let source = KafkaSource::new(stream.clone()).unwrap();
    assert_eq!(
        source.shards().await.unwrap(),
        ["partition-0", "partition-1", "partition-2"]
    );
    let read = read_all(&source).await;
    let total: usize = read.values().map(Vec::len).sum();
    assert_eq!(total, sent.len(), "every record once");
    let mut shard_of_key: HashMap<String, String> = HashMap::new();
    for (shard, got) in &read {
        // Offsets rise by one and each key lives in one partition, in the order it was sent.
        for pair in got.windows(2) {
            let (a, b) = (
                pair[0].0.parse::<i64>().unwrap(),
                pair[1].0.parse::<i64>().unwrap(),
            );
            assert_eq!(b, a + 1);
        }
        let mut last_i: HashMap<&str, i64> = HashMap::new();
        for (_, key, data) in got {
            let prev = shard_of_key.insert(key.clone(), shard.clone());
            assert!(prev.is_none_or(|p| &p == shard), "{key} in two partitions");
            let i: i64 = data[5..data.len() - 1].parse().unwrap();
            if let Some(before) = last_i.insert(key, i) {
                assert!(before < i, "{key}: {before} then {i}");
            }
        }
        // Where the sink said each record landed is where it was read.
        for (sequence, _, data) in got {
            let i: usize = data[5..data.len() - 1].parse().unwrap();
            assert_eq!(&placed[i].shard, shard);
            assert_eq!(&placed[i].sequence, sequence);
        }
    }

    // The newest record of a partition, then nothing after it until a new put.
    let shard = "partition-1";
    let newest = source.newest(shard).await.unwrap().unwrap();
    assert_eq!(Some(&newest), read[shard].last().map(|r| &r.0));
    let batch = source
        .read(shard, Some(&newest), Duration::from_millis(100))
        .await
        .unwrap();
    assert!(batch.records.is_empty() && batch.caught_up);
    let more = sink::put_all(&sink, &records(300), Retry::default())
        .await
        .unwrap();
    let expected = more.iter().filter(|p| p.shard == shard).count();
    let mut after = newest;
    let mut fresh = 0;
    loop {
        let batch = source
            .read(shard, Some(&after), Duration::from_millis(500))
            .await
            .unwrap();
        fresh += batch.records.len();
        if let Some(last) = batch.records.last() {
            after = last.sequence.clone();
        }
        if batch.caught_up {
            break;
        }
    }
    assert_eq!(fresh, expected);

    // A read that may not wait still returns what the partition holds past the position, even
    // from a consumer that has fetched nothing yet (a restart's scan for outputs does this).
    let fresh_reader = KafkaSource::new(stream.clone()).unwrap();
    let batch = fresh_reader
        .read(shard, Some(&read[shard][0].0), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(batch.records[0].sequence, read[shard][1].0);

    // Reading again from an earlier position repositions the partition's consumer.
    let first = &read[shard][0].0;
    let batch = source
        .read(shard, Some(first), Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(batch.records[0].sequence, read[shard][1].0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_missing_topics_are_typed_errors() {
    let err = millrace_io::Streams::kinesis(aws_client())
        .source("kafka://127.0.0.1/t")
        .err()
        .unwrap();
    assert!(matches!(err, IoError::Rejected { .. }), "{err}");
    assert!(err.to_string().contains("kafka://HOST:PORT"), "{err}");

    let cluster = MockCluster::new(1).unwrap();
    let source = KafkaSource::new(url(&cluster, "absent")).unwrap();
    let err = source.shards().await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = source
        .read("shardId-000000000000", None, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, IoError::BadPosition { .. }), "{err}");
}

fn aws_client() -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}
