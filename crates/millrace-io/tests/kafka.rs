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

/// Reads `shard` of `source` once; `Ok(None)` when the group took it away.
async fn read_or_released(
    source: &KafkaSource,
    shard: &str,
    after: Option<&str>,
) -> Option<Vec<String>> {
    match source.read(shard, after, Duration::from_millis(200)).await {
        Ok(batch) => Some(batch.records.into_iter().map(|r| r.sequence).collect()),
        Err(e) if e.is_not_owned() => None,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_hands_a_partition_over_with_its_checkpoint() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("shared", 2, 1).unwrap();
    let stream = url(&cluster, "shared");
    let sink = KafkaSink::new(stream.clone()).unwrap();
    sink::put_all(&sink, &records(200), Retry::default())
        .await
        .unwrap();

    // Alone in the group, the first member gets both partitions and checkpoints each.
    let first = KafkaSource::in_group(stream.clone(), "g").unwrap();
    assert_eq!(
        first.shards().await.unwrap(),
        ["partition-0", "partition-1"]
    );
    let store = first
        .shared_checkpoints()
        .expect("a group keeps checkpoints");
    let mut last = HashMap::new();
    for shard in ["partition-0", "partition-1"] {
        let read = read_or_released(&first, shard, None).await.unwrap();
        let done = read.last().unwrap().clone();
        let json = format!("{{\"delivered\":\"{done}\"}}");
        store.store(shard, Some(&done), json.as_bytes()).unwrap();
        last.insert(shard, (done, json));
    }

    // A second member joins: one partition moves once the first member's reader of it comes
    // back for more (and is told it is no longer its own).
    let second = KafkaSource::in_group(stream.clone(), "g").unwrap();
    let joined = tokio::spawn(async move {
        let shards = second.shards().await.unwrap();
        (second, shards)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let moved = loop {
        assert!(std::time::Instant::now() < deadline, "no partition moved");
        let mut gone = None;
        for shard in ["partition-0", "partition-1"] {
            let after = last[shard].0.clone();
            if read_or_released(&first, shard, Some(&after))
                .await
                .is_none()
            {
                gone = Some(shard);
            }
        }
        if let Some(shard) = gone {
            break shard;
        }
    };
    let (second, shards) = joined.await.unwrap();
    assert_eq!(
        shards,
        [moved],
        "the second member holds what the first gave up"
    );
    // Nothing more is stored for it by the first member; the second continues from its
    // checkpoint.
    let err = store.store(moved, Some("0"), b"{}").unwrap_err();
    assert!(err.is_not_owned(), "{err}");
    let theirs = second.shared_checkpoints().unwrap().load(moved).unwrap();
    assert_eq!(theirs.as_deref(), Some(last[moved].1.as_bytes()));
    let kept = if moved == "partition-0" {
        "partition-1"
    } else {
        "partition-0"
    };
    assert!(
        read_or_released(&first, kept, Some(&last[kept].0))
            .await
            .is_some()
    );
}
