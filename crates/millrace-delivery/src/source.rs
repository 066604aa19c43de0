//! Where delivery reads records: the embedded store (direct reads, woken on append) or any
//! Kinesis API via aws-sdk-kinesis (millrace's own server, kinesalite, Amazon Kinesis).
//! Positions are Kinesis sequence number strings, so checkpoints mean the same for both.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kinesis::types::ShardIteratorType;
use bytes::Bytes;
use millrace_stream::{SequenceNumber, StreamHandle};
use parking_lot::Mutex;

use crate::{DeliveryError, Result};

#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub sequence: String,
    pub arrival_ms: i64,
    pub partition_key: String,
    pub data: Bytes,
}

#[derive(Debug, Default)]
pub struct SourceBatch {
    pub records: Vec<SourceRecord>,
    /// True when nothing newer was in the shard when it was read.
    pub caught_up: bool,
}

/// A readable stream.
#[async_trait]
pub trait RecordSource: Send + Sync {
    async fn shards(&self) -> Result<Vec<String>>;
    /// Records after `after` (from the oldest when `None`). When there are none yet, waits up
    /// to `wait` for some to arrive.
    async fn read(&self, shard: &str, after: Option<&str>, wait: Duration) -> Result<SourceBatch>;
}

/// Most records and bytes one read returns.
const READ_RECORDS: usize = 10_000;
const READ_BYTES: usize = 8 * 1024 * 1024;

/// Reads the embedded store directly: no HTTP, and woken by the shard's tip instead of polling.
pub struct EmbeddedSource {
    stream: Arc<StreamHandle>,
}

impl EmbeddedSource {
    pub fn new(stream: Arc<StreamHandle>) -> Self {
        Self { stream }
    }
}

#[async_trait]
impl RecordSource for EmbeddedSource {
    async fn shards(&self) -> Result<Vec<String>> {
        Ok(self.stream.shards().iter().map(|s| s.id()).collect())
    }

    async fn read(&self, shard: &str, after: Option<&str>, wait: Duration) -> Result<SourceBatch> {
        let shard = self
            .stream
            .shard_by_id(shard)
            .map_err(|e| DeliveryError::Source(e.to_string()))?
            .clone();
        let from = match after {
            None => 0,
            Some(s) => {
                SequenceNumber::parse(s)
                    .ok_or_else(|| {
                        DeliveryError::Source(format!(
                            "checkpoint {s} is not a millrace sequence number"
                        ))
                    })?
                    .counter
                    + 1
            }
        };
        let mut tip = shard.watch_tip();
        if *tip.borrow_and_update() <= from && !wait.is_zero() {
            let _ = tokio::time::timeout(wait, tip.changed()).await;
        }
        let index = shard.index();
        let s2 = shard.clone();
        let batch = tokio::task::spawn_blocking(move || s2.read(from, READ_RECORDS, READ_BYTES))
            .await
            .map_err(|e| DeliveryError::Source(e.to_string()))?
            .map_err(|e| DeliveryError::Source(e.to_string()))?;
        let caught_up = batch.next >= batch.tip;
        let records = batch
            .records
            .into_iter()
            .map(|r| SourceRecord {
                sequence: self.stream.sequence(index, r.counter).to_string(),
                arrival_ms: r.arrival_ms,
                partition_key: r.partition_key,
                data: r.data,
            })
            .collect();
        Ok(SourceBatch { records, caught_up })
    }
}

/// Reads any Kinesis API with the official SDK. Keeps each shard's next iterator so steady
/// reading costs one GetRecords per poll.
pub struct KinesisSource {
    client: aws_sdk_kinesis::Client,
    stream: String,
    /// shard → (position the iterator continues after, iterator)
    iterators: Mutex<HashMap<String, (Option<String>, String)>>,
    poll: Duration,
}

impl KinesisSource {
    pub fn new(client: aws_sdk_kinesis::Client, stream: &str) -> Self {
        Self {
            client,
            stream: stream.to_owned(),
            iterators: Mutex::new(HashMap::new()),
            poll: POLL,
        }
    }

    /// Polls a caught-up shard every `poll` instead of every 200 ms (Amazon Kinesis allows 5
    /// reads per second per shard; a local millrace server allows more).
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    async fn iterator(&self, shard: &str, after: Option<&str>) -> Result<String> {
        if let Some((pos, it)) = self.iterators.lock().get(shard)
            && pos.as_deref() == after
        {
            return Ok(it.clone());
        }
        let req = self
            .client
            .get_shard_iterator()
            .stream_name(&self.stream)
            .shard_id(shard);
        let req = match after {
            None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Some(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
        };
        let out = req.send().await.map_err(|e| {
            DeliveryError::Source(format!(
                "GetShardIterator on {shard}: {}",
                aws_sdk_kinesis::error::DisplayErrorContext(e)
            ))
        })?;
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| DeliveryError::Source(format!("shard {shard} is closed")))
    }
}

/// Kinesis allows 5 GetRecords per second per shard; poll a caught-up shard at that pace.
const POLL: Duration = Duration::from_millis(200);

#[async_trait]
impl RecordSource for KinesisSource {
    async fn shards(&self) -> Result<Vec<String>> {
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = match &token {
                Some(t) => self.client.list_shards().next_token(t),
                None => self.client.list_shards().stream_name(&self.stream),
            };
            let out = req.send().await.map_err(|e| {
                DeliveryError::Source(format!(
                    "ListShards of {}: {}",
                    self.stream,
                    aws_sdk_kinesis::error::DisplayErrorContext(e)
                ))
            })?;
            shards.extend(out.shards().iter().map(|s| s.shard_id().to_owned()));
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(shards)
    }

    async fn read(&self, shard: &str, after: Option<&str>, wait: Duration) -> Result<SourceBatch> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let it = self.iterator(shard, after).await?;
            let out = match self.client.get_records().shard_iterator(&it).send().await {
                Ok(out) => out,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_expired_iterator_exception()) =>
                {
                    self.iterators.lock().remove(shard);
                    continue;
                }
                Err(e) => {
                    return Err(DeliveryError::Source(format!(
                        "GetRecords on {shard}: {}",
                        aws_sdk_kinesis::error::DisplayErrorContext(e)
                    )));
                }
            };
            let records: Vec<SourceRecord> = out
                .records()
                .iter()
                .map(|r| SourceRecord {
                    sequence: r.sequence_number().to_owned(),
                    arrival_ms: r
                        .approximate_arrival_timestamp()
                        .and_then(|t| t.to_millis().ok())
                        .unwrap_or_else(millrace_stream::now_ms),
                    partition_key: r.partition_key().unwrap_or_default().to_owned(),
                    data: Bytes::copy_from_slice(r.data().as_ref()),
                })
                .collect();
            // Only an empty page proves the end: some Kinesis emulators (kinesalite) always
            // report MillisBehindLatest = 0, even with more records waiting.
            let caught_up = records.is_empty();
            let pos = records
                .last()
                .map(|r| Some(r.sequence.clone()))
                .unwrap_or_else(|| after.map(str::to_owned));
            if let Some(next) = out.next_shard_iterator() {
                self.iterators
                    .lock()
                    .insert(shard.to_owned(), (pos, next.to_owned()));
            }
            if !records.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(SourceBatch { records, caught_up });
            }
            tokio::time::sleep(self.poll.min(deadline - tokio::time::Instant::now())).await;
        }
    }
}
