//! The Kinesis side of the crash tests: an SDK client that never retries, waiting for a
//! stream, reading its shards back, and the producers' bookkeeping.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::Credentials;
use aws_sdk_kinesis::error::{DisplayErrorContext, SdkError};
use aws_sdk_kinesis::operation::put_records::{PutRecordsError, PutRecordsOutput};
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
use tokio::task::JoinHandle;

/// A client for the server at `url`.
pub async fn client(url: &str) -> Client {
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("t", "t", None, None, "t"))
        // One attempt: a retried request whose first attempt was stored would legitimately
        // show up twice, and the crash tests must attribute every duplicate to the server.
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .load()
        .await;
    Client::new(&conf)
}

/// A sequence number as a key that orders like the integer it spells. Kinesis sequence numbers
/// are decimal strings too big for a u128 (ours have 56 digits, like Amazon's), so compare them by length,
/// then lexicographically, after dropping leading zeros.
pub fn seq_num(seq: &str) -> (usize, &str) {
    assert!(
        !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()),
        "sequence number {seq:?} is not a decimal integer"
    );
    let trimmed = seq.trim_start_matches('0');
    (trimmed.len(), trimmed)
}

/// Waits (at most `patience`) until `stream` is ACTIVE, then checks it has `shards` open shards.
pub async fn wait_active(client: &Client, stream: &str, shards: usize, patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let out = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .expect("DescribeStreamSummary");
        let summary = out
            .stream_description_summary()
            .expect("a stream description");
        if summary.stream_status() == &StreamStatus::Active {
            assert_eq!(summary.open_shard_count(), shards as i32);
            return;
        }
        assert!(Instant::now() < deadline, "stream never became ACTIVE");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The stream's shards: (shard id, starting hash key), in shard order; there must be `count`.
pub async fn shards(client: &Client, stream: &str, count: usize) -> Vec<(String, String)> {
    let out = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards");
    let shards: Vec<(String, String)> = out
        .shards()
        .iter()
        .map(|s| {
            let range = s.hash_key_range().expect("a hash key range");
            (
                s.shard_id().to_owned(),
                range.starting_hash_key().to_owned(),
            )
        })
        .collect();
    assert_eq!(shards.len(), count, "shards: {shards:?}");
    assert!(out.next_token().is_none(), "all shards fit one page");
    shards
}

/// A record as read back.
#[derive(Debug, Clone)]
pub struct Stored {
    pub seq: String,
    pub key: String,
    pub data: Vec<u8>,
}

/// A shard iterator of `kind` (starting at `seq` where the kind takes one).
pub async fn iterator(
    client: &Client,
    stream: &str,
    shard: &str,
    kind: ShardIteratorType,
    seq: Option<&str>,
) -> String {
    client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_starting_sequence_number(seq.map(str::to_owned))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetShardIterator on {shard}: {}", DisplayErrorContext(e)))
        .shard_iterator()
        .expect("an iterator")
        .to_owned()
}

/// Reads one shard from `iterator` until caught up (an empty page with MillisBehindLatest 0),
/// within `patience`.
pub async fn read_from(
    client: &Client,
    shard: &str,
    mut iterator: String,
    patience: Duration,
) -> Vec<Stored> {
    let deadline = Instant::now() + patience;
    let mut records = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "reading {shard} did not catch up within {patience:?}"
        );
        let out = client
            .get_records()
            .shard_iterator(&iterator)
            .limit(10_000)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetRecords on {shard}: {}", DisplayErrorContext(e)));
        let page = out.records();
        let behind = out.millis_behind_latest();
        for r in page {
            records.push(Stored {
                seq: r.sequence_number().to_owned(),
                key: r.partition_key().unwrap_or_default().to_owned(),
                data: r.data().as_ref().to_vec(),
            });
        }
        if page.is_empty() && behind == Some(0) {
            return records;
        }
        iterator = out
            .next_shard_iterator()
            .unwrap_or_else(|| panic!("{shard}: an open shard always has a next iterator"))
            .to_owned();
    }
}

/// Every shard's full content, from TRIM_HORIZON, each read within `patience`.
pub async fn read_all(
    client: &Client,
    stream: &str,
    shards: &[(String, String)],
    patience: Duration,
) -> BTreeMap<String, Vec<Stored>> {
    let mut out = BTreeMap::new();
    for (shard, _) in shards {
        let it = iterator(client, stream, shard, ShardIteratorType::TrimHorizon, None).await;
        out.insert(shard.clone(), read_from(client, shard, it, patience).await);
    }
    out
}

/// What one producer saw in one cycle.
#[derive(Debug, Default)]
pub struct ProducerReport {
    pub acked: usize,
    pub failed_in_batch: usize,
    pub error: Option<String>,
}

impl ProducerReport {
    /// Counts the answer to a PutRecords of the records `ids`: each acknowledged record is
    /// counted here and in `acked_now` and handed to `ack` as (id, shard, sequence number).
    /// Returns false, keeping the error, when the request failed.
    pub fn put_records_answer(
        &mut self,
        ids: Vec<String>,
        answer: Result<PutRecordsOutput, SdkError<PutRecordsError>>,
        acked_now: &AtomicUsize,
        mut ack: impl FnMut(String, &str, &str),
    ) -> bool {
        match answer {
            Ok(out) => {
                assert_eq!(
                    out.records().len(),
                    ids.len(),
                    "PutRecords must answer every record"
                );
                for (id, r) in ids.into_iter().zip(out.records()) {
                    match (r.error_code(), r.shard_id(), r.sequence_number()) {
                        (None, Some(shard), Some(seq)) => {
                            ack(id, shard, seq);
                            self.acked += 1;
                            acked_now.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => self.failed_in_batch += 1,
                    }
                }
                true
            }
            Err(e) => {
                self.error = Some(DisplayErrorContext(e).to_string());
                false
            }
        }
    }
}

/// All producers' reports of one cycle, added up.
#[derive(Debug)]
pub struct CycleReport {
    pub reports: Vec<ProducerReport>,
    /// Records acknowledged.
    pub acked: usize,
    /// Producers whose last request failed (they saw the kill).
    pub failed_in_flight: usize,
    /// Records rejected inside PutRecords answers.
    pub failed_in_batch: usize,
}

/// The producers of one cycle.
pub struct Producers {
    pub handles: Vec<JoinHandle<ProducerReport>>,
    /// How many records they have had acknowledged so far.
    pub acked_now: Arc<AtomicUsize>,
    /// Set to make them stop.
    pub stop: Arc<AtomicBool>,
}

impl Producers {
    /// Spawns `count` producers, `produce(p, acked_now, stop)` for p in 0..count.
    pub fn spawn<F>(
        count: usize,
        produce: impl Fn(usize, Arc<AtomicUsize>, Arc<AtomicBool>) -> F,
    ) -> Producers
    where
        F: Future<Output = ProducerReport> + Send + 'static,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let acked_now = Arc::new(AtomicUsize::new(0));
        let handles = (0..count)
            .map(|p| tokio::spawn(produce(p, acked_now.clone(), stop.clone())))
            .collect();
        Producers {
            handles,
            acked_now,
            stop,
        }
    }

    /// How many have not finished yet.
    pub fn still_running(&self) -> usize {
        self.handles.iter().filter(|h| !h.is_finished()).count()
    }
}

/// Waits (at most `patience` each) for the producers of `cycle` to stop after the kill.
pub async fn join_producers(
    producers: Vec<JoinHandle<ProducerReport>>,
    cycle: usize,
    patience: Duration,
) -> CycleReport {
    let mut reports = Vec::new();
    for (p, h) in producers.into_iter().enumerate() {
        let report = tokio::time::timeout(patience, h)
            .await
            .unwrap_or_else(|_| panic!("cycle {cycle}: producer {p} did not stop"))
            .unwrap_or_else(|e| panic!("cycle {cycle}: producer {p} panicked: {e}"));
        reports.push(report);
    }
    CycleReport {
        acked: reports.iter().map(|r| r.acked).sum(),
        failed_in_flight: reports.iter().filter(|r| r.error.is_some()).count(),
        failed_in_batch: reports.iter().map(|r| r.failed_in_batch).sum(),
        reports,
    }
}
