//! Any Kinesis API through the official SDK (aws-sdk-kinesis): millrace's own server,
//! kinesalite, Amazon Kinesis. The client comes configured from the caller (endpoint, region,
//! credentials); this module only speaks the operations.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};
use bytes::Bytes;
use parking_lot::Mutex;

use crate::sink::{Placed, PutFailure, RecordSink, SinkRecord};
use crate::source::{RecordSource, ShardInfo, SourceBatch, SourceRecord};
use crate::{IoError, Result};

/// Kinesis allows 5 GetRecords per second per shard; poll a caught-up shard at that pace.
pub const POLL: Duration = Duration::from_millis(200);

/// The text of an SDK failure: the AWS error type and message for a service error, the whole
/// cause chain otherwise (connection refused, timeout…).
pub fn describe<E, R>(e: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(se) if se.code().is_some() => format!(
            "{}: {}",
            se.code().unwrap_or("ServiceError"),
            se.message().unwrap_or("(no message)")
        ),
        _ => DisplayErrorContext(e).to_string(),
    }
}

/// Classifies an SDK failure by the AWS error type (or how the call failed); the message is
/// [`describe`]'s.
pub(crate) fn sdk_error<E, R>(op: String, e: SdkError<E, R>) -> IoError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let message = describe(&e);
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            IoError::Unreachable { op, message }
        }
        SdkError::ResponseError(_) => IoError::Failed {
            op,
            message,
            transient: true,
        },
        SdkError::ServiceError(se) => match se.err().code() {
            Some("ResourceNotFoundException") => IoError::StreamNotFound { op, message },
            Some(
                "ProvisionedThroughputExceededException"
                | "LimitExceededException"
                | "KMSThrottlingException"
                | "ThrottlingException",
            ) => IoError::Throttled { op, message },
            Some("ExpiredIteratorException") => IoError::BadPosition { op, message },
            Some("InternalFailure" | "InternalFailureException" | "ServiceUnavailable") => {
                IoError::Failed {
                    op,
                    message,
                    transient: true,
                }
            }
            _ => IoError::Rejected { op, message },
        },
        _ => IoError::Rejected { op, message },
    }
}

/// Reads any Kinesis API. Keeps each shard's next iterator so steady reading costs one
/// GetRecords per poll; positions use GetShardIterator AFTER_SEQUENCE_NUMBER (TRIM_HORIZON from
/// the start), and an expired iterator is fetched again.
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
        let op = || format!("GetShardIterator on {shard}");
        let out = req.send().await.map_err(|e| {
            // A starting sequence number the stream refuses is a bad position.
            let invalid = e
                .as_service_error()
                .is_some_and(|s| s.is_invalid_argument_exception());
            match sdk_error(op(), e) {
                IoError::Rejected { op, message } if invalid && after.is_some() => {
                    IoError::BadPosition { op, message }
                }
                e => e,
            }
        })?;
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| IoError::ShardClosed {
                stream: self.stream.clone(),
                shard: shard.to_owned(),
            })
    }
}

#[async_trait]
impl RecordSource for KinesisSource {
    async fn lineage(&self) -> Result<Vec<ShardInfo>> {
        let mut shards = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let req = match &token {
                Some(t) => self.client.list_shards().next_token(t),
                None => self.client.list_shards().stream_name(&self.stream),
            };
            let out = req
                .send()
                .await
                .map_err(|e| sdk_error(format!("ListShards of {}", self.stream), e))?;
            shards.extend(out.shards().iter().map(|s| {
                ShardInfo {
                    id: s.shard_id().to_owned(),
                    parents: s
                        .parent_shard_id()
                        .into_iter()
                        .chain(s.adjacent_parent_shard_id())
                        .map(str::to_owned)
                        .collect(),
                }
            }));
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
            let it = match self.iterator(shard, after).await {
                Err(IoError::ShardClosed { .. }) => {
                    return Ok(SourceBatch {
                        records: Vec::new(),
                        caught_up: true,
                        ended: true,
                    });
                }
                r => r?,
            };
            let out = match self.client.get_records().shard_iterator(&it).send().await {
                Ok(out) => out,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_expired_iterator_exception()) =>
                {
                    self.iterators.lock().remove(shard);
                    continue;
                }
                Err(e) => return Err(sdk_error(format!("GetRecords on {shard}"), e)),
            };
            let records: Vec<SourceRecord> = out
                .records()
                .iter()
                .map(|r| SourceRecord {
                    sequence: r.sequence_number().to_owned(),
                    arrival_ms: r
                        .approximate_arrival_timestamp()
                        .and_then(|t| t.to_millis().ok())
                        .unwrap_or_else(millrace_common::time::now_ms),
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
            // No next iterator: a reshard closed the shard and this page is its end.
            let Some(next) = out.next_shard_iterator() else {
                self.iterators.lock().remove(shard);
                return Ok(SourceBatch {
                    records,
                    caught_up: true,
                    ended: true,
                });
            };
            self.iterators
                .lock()
                .insert(shard.to_owned(), (pos, next.to_owned()));
            if !records.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(SourceBatch {
                    records,
                    caught_up,
                    ended: false,
                });
            }
            tokio::time::sleep(self.poll.min(deadline - tokio::time::Instant::now())).await;
        }
    }
}

/// Writes to any Kinesis API: PutRecords for batches, PutRecord for one record.
pub struct KinesisSink {
    client: aws_sdk_kinesis::Client,
    stream: String,
}

impl KinesisSink {
    pub fn new(client: aws_sdk_kinesis::Client, stream: &str) -> Self {
        Self {
            client,
            stream: stream.to_owned(),
        }
    }
}

#[async_trait]
impl RecordSink for KinesisSink {
    fn stream(&self) -> &str {
        &self.stream
    }

    async fn put_records(
        &self,
        records: &[SinkRecord],
    ) -> Result<Vec<std::result::Result<Placed, PutFailure>>> {
        let op = || format!("PutRecords to {}", self.stream);
        let entries = records
            .iter()
            .map(|r| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&r.partition_key)
                    .data(Blob::new(r.data.to_vec()))
                    .build()
                    .map_err(|e| IoError::Rejected {
                        op: op(),
                        message: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let out = self
            .client
            .put_records()
            .stream_name(&self.stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error(op(), e))?;
        Ok(out
            .records()
            .iter()
            .map(
                |r| match (r.shard_id(), r.sequence_number(), r.error_code()) {
                    (Some(shard), Some(seq), None) => Ok(Placed {
                        shard: shard.to_owned(),
                        sequence: seq.to_owned(),
                    }),
                    (_, _, code) => Err(PutFailure {
                        code: code.unwrap_or("?").to_owned(),
                        message: r.error_message().unwrap_or("").to_owned(),
                        // Kinesis fails single entries only for throughput and internal
                        // failures: both pass with a retry.
                        retryable: true,
                    }),
                },
            )
            .collect())
    }

    async fn put_record(&self, record: &SinkRecord) -> Result<Placed> {
        let out = self
            .client
            .put_record()
            .stream_name(&self.stream)
            .partition_key(&record.partition_key)
            .data(Blob::new(record.data.to_vec()))
            .send()
            .await
            .map_err(|e| sdk_error(format!("PutRecord to {}", self.stream), e))?;
        Ok(Placed {
            shard: out.shard_id().to_owned(),
            sequence: out.sequence_number().to_owned(),
        })
    }
}

/// True when stream `name` exists.
pub async fn exists(client: &aws_sdk_kinesis::Client, name: &str) -> Result<bool> {
    match client
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => match sdk_error(format!("DescribeStreamSummary {name}"), e) {
            IoError::StreamNotFound { .. } => Ok(false),
            e => Err(e),
        },
    }
}

/// Creates stream `name` when it does not exist (`shards` provisioned shards, or on-demand
/// when `None`) and waits until it is ACTIVE (Amazon Kinesis creates streams asynchronously).
/// True when this call created it.
pub async fn ensure(
    client: &aws_sdk_kinesis::Client,
    name: &str,
    shards: Option<u32>,
) -> Result<bool> {
    use aws_sdk_kinesis::types::{StreamMode, StreamModeDetails};
    let mut created = false;
    if !exists(client, name).await? {
        let req = client.create_stream().stream_name(name);
        let req = match shards {
            Some(n) => req.shard_count(n as i32),
            None => req.stream_mode_details(
                StreamModeDetails::builder()
                    .stream_mode(StreamMode::OnDemand)
                    .build()
                    .map_err(|e| IoError::Rejected {
                        op: format!("CreateStream {name}"),
                        message: e.to_string(),
                    })?,
            ),
        };
        match req.send().await {
            Ok(_) => created = true,
            // Another writer created it first.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) => {}
            Err(e) => return Err(sdk_error(format!("CreateStream {name}"), e)),
        }
    }
    for _ in 0..600 {
        let out = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(|e| sdk_error(format!("DescribeStreamSummary {name}"), e))?;
        let status = out
            .stream_description_summary()
            .map(|s| s.stream_status().clone());
        if matches!(status, Some(StreamStatus::Active | StreamStatus::Updating)) {
            return Ok(created);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(IoError::Failed {
        op: format!("CreateStream {name}"),
        message: format!("stream {name} did not become ACTIVE in 5 minutes"),
        transient: true,
    })
}
