//! Puts through real streams: the embedded store (EmbeddedSink) and millrace's Kinesis API on
//! a loopback port (KinesisSink over aws-sdk-kinesis). millrace never throttles, so the retry
//! tests put Amazon's throttling answers in front of a real EmbeddedSink; what reached the
//! stream is then read back from the store itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use millrace_io::sink::{self, PutFailure, Retry};
use millrace_io::{
    EmbeddedSink, EmbeddedSource, IoError, Placed, RecordSink, RecordSource, SinkRecord, Streams,
};
use millrace_stream::{Store, StoreOptions, StreamHandle, StreamMode};
use parking_lot::Mutex;

fn store(dir: &std::path::Path) -> Arc<Store> {
    Arc::new(Store::open(dir, StoreOptions::default()).unwrap())
}

fn stream(store: &Store, name: &str, shards: u32) -> Arc<StreamHandle> {
    store
        .create(
            name,
            StreamMode::Provisioned,
            Some(shards),
            24,
            Default::default(),
        )
        .unwrap()
}

fn records(n: usize) -> Vec<SinkRecord> {
    (0..n)
        .map(|i| SinkRecord::new(format!("key-{i}"), format!("{{\"i\":{i}}}")))
        .collect()
}

/// Every record's data in the stream, with how often it is there.
async fn contents(stream: &Arc<StreamHandle>) -> HashMap<Vec<u8>, usize> {
    let source = EmbeddedSource::new(stream.clone());
    let mut seen = HashMap::new();
    for shard in source.shards().await.unwrap() {
        let mut after = None;
        loop {
            let b = source
                .read(&shard, after.as_deref(), Duration::ZERO)
                .await
                .unwrap();
            for r in &b.records {
                *seen.entry(r.data.to_vec()).or_insert(0) += 1;
            }
            if let Some(r) = b.records.last() {
                after = Some(r.sequence.clone());
            }
            if b.caught_up {
                break;
            }
        }
    }
    seen
}

/// Answers as Amazon Kinesis does under load: the records whose key is listed fail with
/// ProvisionedThroughputExceededException for their first `fails` tries; the first
/// `whole_call` requests are refused as a whole. The rest go to the real sink.
struct Throttled {
    inner: EmbeddedSink,
    fails: u32,
    keys: Vec<String>,
    whole_call: Mutex<u32>,
    tries: Mutex<HashMap<String, u32>>,
    /// The partition keys of each request that reached this sink.
    requests: Mutex<Vec<Vec<String>>>,
}

impl Throttled {
    fn new(inner: EmbeddedSink, keys: &[&str], fails: u32, whole_call: u32) -> Self {
        Self {
            inner,
            fails,
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            whole_call: Mutex::new(whole_call),
            tries: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl RecordSink for Throttled {
    fn stream(&self) -> &str {
        self.inner.stream()
    }

    async fn put_records(
        &self,
        records: &[SinkRecord],
    ) -> millrace_io::Result<Vec<Result<Placed, PutFailure>>> {
        self.requests
            .lock()
            .push(records.iter().map(|r| r.partition_key.clone()).collect());
        {
            let mut whole = self.whole_call.lock();
            if *whole > 0 {
                *whole -= 1;
                return Err(IoError::Throttled {
                    op: format!("PutRecords to {}", self.stream()),
                    message: "ProvisionedThroughputExceededException: Rate exceeded".into(),
                });
            }
        }
        let mut out: Vec<Option<Result<Placed, PutFailure>>> = vec![None; records.len()];
        let mut pass = Vec::new();
        let mut pass_at = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let mut tries = self.tries.lock();
            let t = tries.entry(r.partition_key.clone()).or_insert(0);
            *t += 1;
            if self.keys.contains(&r.partition_key) && *t <= self.fails {
                out[i] = Some(Err(PutFailure {
                    code: "ProvisionedThroughputExceededException".into(),
                    message: "Rate exceeded for shard shardId-000000000000".into(),
                    retryable: true,
                }));
            } else {
                pass.push(r.clone());
                pass_at.push(i);
            }
        }
        for (i, res) in pass_at
            .into_iter()
            .zip(self.inner.put_records(&pass).await?)
        {
            out[i] = Some(res);
        }
        Ok(out.into_iter().map(Option::unwrap).collect())
    }
}

fn quick(attempts: u32) -> Retry {
    Retry {
        attempts,
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
    }
}

#[tokio::test]
async fn failed_records_are_retried_and_the_others_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let s = stream(&store, "out", 2);
    let sink = Throttled::new(EmbeddedSink::new(s.clone()), &["key-3", "key-7"], 2, 1);
    let recs = records(10);
    let placed = sink::put_with_retry(&sink, &recs, quick(5)).await.unwrap();
    assert_eq!(placed.len(), 10);
    // One refused request, the full one, then only the two throttled records, twice more.
    let requests = sink.requests.lock().clone();
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert_eq!(requests[0].len(), 10);
    assert_eq!(requests[1].len(), 10);
    assert_eq!(requests[2], vec!["key-3", "key-7"]);
    assert_eq!(requests[3], vec!["key-3", "key-7"]);
    // The stream holds each record exactly once, where the put said it landed.
    let seen = contents(&s).await;
    assert_eq!(seen.len(), 10);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    let source = EmbeddedSource::new(s.clone());
    let mut by_place = HashMap::new();
    for shard in source.shards().await.unwrap() {
        let b = source.read(&shard, None, Duration::ZERO).await.unwrap();
        for r in b.records {
            by_place.insert((shard.clone(), r.sequence), r.data);
        }
    }
    for (r, p) in recs.iter().zip(&placed) {
        assert_eq!(by_place[&(p.shard.clone(), p.sequence.clone())], r.data);
    }
}

#[tokio::test]
async fn gives_up_after_the_configured_attempts_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let s = stream(&store, "out", 1);
    let sink = Throttled::new(EmbeddedSink::new(s.clone()), &["key-4"], u32::MAX, 0);
    let e = sink::put_all(&sink, &records(6), quick(3))
        .await
        .unwrap_err();
    match &e {
        IoError::Unacknowledged {
            stream,
            failed,
            first,
            attempts,
            transient,
            ..
        } => {
            assert_eq!(
                (stream.as_str(), *failed, *first, *attempts),
                ("out", 1, 4, 3)
            );
            assert!(*transient);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_transient());
    assert!(
        e.to_string()
            .contains("ProvisionedThroughputExceededException"),
        "{e}"
    );
    assert_eq!(sink.requests.lock().len(), 3);
    // The other five records are in the stream once each.
    let seen = contents(&s).await;
    assert_eq!(seen.len(), 5);
    assert!(seen.values().all(|&n| n == 1));
}

#[tokio::test]
async fn a_failure_no_retry_helps_ends_the_put_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let s = stream(&store, "out", 2);
    let sink = EmbeddedSink::new(s.clone());
    // The shard writers stop: every append fails with "writer gone", which no retry fixes.
    store.shutdown();
    let e = sink::put_with_retry(&sink, &records(3), quick(5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            IoError::Unacknowledged {
                attempts: 1,
                failed: 3,
                transient: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!e.is_transient());
}

/// millrace's Kinesis API on a loopback port, and an SDK client for it.
async fn gateway(store: Arc<Store>) -> (aws_sdk_kinesis::Client, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(millrace_gateway::serve(
        listener,
        millrace_gateway::Gateway::new(store, [7; 32]).unwrap(),
        async {
            let _ = rx.await;
        },
    ));
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "millrace", "millrace", None, None, "test",
        ))
        .build();
    (aws_sdk_kinesis::Client::from_conf(config), tx)
}

#[tokio::test]
async fn kinesis_puts_in_batches_and_reads_back_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let s = stream(&store, "in", 3);
    let (client, _stop) = gateway(store.clone()).await;
    let streams = Streams::kinesis(client);
    assert!(streams.exists("in").await.unwrap());
    assert!(!streams.exists("nope").await.unwrap());
    // 1201 records: three PutRecords (500, 500, 201), every one placed.
    let recs = records(1201);
    let sink = streams.sink("in").unwrap();
    let placed = sink::put_all(&*sink, &recs, Retry::default())
        .await
        .unwrap();
    assert_eq!(placed.len(), 1201);
    let one = sink
        .put_record(&SinkRecord::new("k", "single"))
        .await
        .unwrap();
    assert!(one.shard.starts_with("shardId-"));
    // Read back through GetRecords: each record once.
    let source = streams.source("in").unwrap();
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut newest = Vec::new();
    for shard in source.shards().await.unwrap() {
        let mut after: Option<String> = None;
        loop {
            let b = source
                .read(&shard, after.as_deref(), Duration::ZERO)
                .await
                .unwrap();
            if b.records.is_empty() {
                break;
            }
            for r in &b.records {
                *seen.entry(r.data.to_vec()).or_default() += 1;
            }
            after = b.records.last().map(|r| r.sequence.clone());
        }
        assert_eq!(source.newest(&shard).await.unwrap(), after);
        newest.push((shard, after));
    }
    assert_eq!(seen.len(), 1202);
    assert!(seen.values().all(|&n| n == 1));
    // The embedded source agrees on where each shard ends.
    let embedded = EmbeddedSource::new(s);
    for (shard, last) in newest {
        assert_eq!(embedded.newest(&shard).await.unwrap(), last);
    }
}

#[tokio::test]
async fn kinesis_errors_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    stream(&store, "in", 1);
    let (client, _stop) = gateway(store.clone()).await;
    let streams = Streams::kinesis(client);
    // A record over 1 MiB: the API refuses the request; a retry would not help.
    let big = vec![SinkRecord::new(
        "k",
        vec![b'x'; millrace_io::limits::RECORD_MAX_DATA_BYTES + 1],
    )];
    let sink = streams.sink("in").unwrap();
    let e = sink::put_all(&*sink, &big, Retry::default())
        .await
        .unwrap_err();
    assert!(matches!(e, IoError::Rejected { .. }), "{e:?}");
    assert!(!e.is_transient());
    // A stream that is not there.
    let e = streams.source("nope").unwrap().shards().await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(e.to_string().contains("ListShards of nope"), "{e}");
    // A position from another stream.
    let e = streams
        .source("in")
        .unwrap()
        .read("shardId-000000000000", Some("12345"), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(e, IoError::BadPosition { .. }), "{e:?}");
    // Nothing listens here any more.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .endpoint_url(format!("http://{addr}"))
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "millrace", "millrace", None, None, "test",
        ))
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
        .build();
    let gone = Streams::kinesis(aws_sdk_kinesis::Client::from_conf(config));
    let e = gone.exists("in").await.unwrap_err();
    assert!(matches!(e, IoError::Unreachable { .. }), "{e:?}");
    assert!(e.is_transient());
}

#[tokio::test]
async fn embedded_streams_open_create_and_read_from_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let streams = Streams::Embedded(store.clone());
    assert!(streams.open("out").unwrap_err().is_not_found());
    assert!(streams.ensure("out", Some(2)).await.unwrap());
    assert!(!streams.ensure("out", Some(2)).await.unwrap());
    let target = streams.open("out").unwrap();
    assert_eq!(target.name(), "out");
    sink::put_all(&*target.sink().unwrap(), &records(20), Retry::default())
        .await
        .unwrap();
    let source = target.source().unwrap();
    let mut ends = Vec::new();
    for shard in source.shards().await.unwrap() {
        ends.push((shard.clone(), source.newest(&shard).await.unwrap()));
    }
    sink::put_all(&*target.sink().unwrap(), &records(5)[..], Retry::default())
        .await
        .unwrap();
    let mut later = 0;
    for (shard, after) in ends {
        let b = source
            .read(&shard, after.as_deref(), Duration::ZERO)
            .await
            .unwrap();
        later += b.records.len();
    }
    assert_eq!(later, 5);
    // A position that is not a sequence number.
    let e = source
        .read("shardId-000000000000", Some("x"), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(e, IoError::BadPosition { .. }), "{e:?}");
}
