//! Where the scorer reads and writes: the embedded store of a running `millrace up` (read
//! directly, woken on append) or any Kinesis API through aws-sdk-kinesis (millrace's server,
//! Amazon Kinesis). Both sides speak sequence-number strings, so checkpoints mean the same.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use millrace_delivery::source::{EmbeddedSource, KinesisSource, RecordSource};
use millrace_stream::{PutInput, Store, StreamError, StreamMode};

use crate::error::ServeError;

/// One record to put.
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub partition_key: String,
    pub data: Bytes,
}

/// Where an accepted record landed: (shard id, sequence number).
pub type Placed = (String, String);

#[derive(Clone)]
pub enum Streams {
    Embedded(Arc<Store>),
    Kinesis {
        client: aws_sdk_kinesis::Client,
        /// How often a caught-up shard is polled (Kinesis allows 5 reads/s per shard).
        poll: Duration,
    },
}

/// PutRecords takes at most 500 records and 5 MiB per call.
const PUT_RECORDS: usize = 500;
const PUT_BYTES: usize = 5 * 1024 * 1024;
/// A throttled or failed entry is retried this many times (with backoff) before giving up.
const PUT_TRIES: u32 = 12;

fn stream_err(what: impl std::fmt::Display) -> ServeError {
    ServeError::Stream(what.to_string())
}

impl Streams {
    /// A reader of stream `name`.
    pub fn source(&self, name: &str) -> Result<Arc<dyn RecordSource>, ServeError> {
        Ok(match self {
            Streams::Embedded(store) => {
                let handle = store
                    .stream(name)
                    .map_err(|e| stream_err(format!("stream {name}: {e}")))?;
                Arc::new(EmbeddedSource::new(handle))
            }
            Streams::Kinesis { client, poll } => {
                Arc::new(KinesisSource::new(client.clone(), name).with_poll(*poll))
            }
        })
    }

    /// True when stream `name` exists.
    pub async fn exists(&self, name: &str) -> Result<bool, ServeError> {
        match self {
            Streams::Embedded(store) => Ok(store.stream(name).is_ok()),
            Streams::Kinesis { client, .. } => {
                match client
                    .describe_stream_summary()
                    .stream_name(name)
                    .send()
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(stream_err(format!(
                        "DescribeStreamSummary {name}: {}",
                        aws_sdk_kinesis::error::DisplayErrorContext(e)
                    ))),
                }
            }
        }
    }

    /// Creates stream `name` (on-demand) when it does not exist, and waits until it is active.
    pub async fn ensure(&self, name: &str) -> Result<(), ServeError> {
        match self {
            Streams::Embedded(store) => {
                match store.create(name, StreamMode::OnDemand, None, 24, Default::default()) {
                    Ok(_) => {
                        tracing::debug!(stream = name, "created output stream");
                        Ok(())
                    }
                    Err(StreamError::StreamExists(_)) => Ok(()),
                    Err(e) => Err(stream_err(format!("creating stream {name}: {e}"))),
                }
            }
            Streams::Kinesis { client, .. } => {
                if !self.exists(name).await? {
                    let created = client
                        .create_stream()
                        .stream_name(name)
                        .stream_mode_details(
                            aws_sdk_kinesis::types::StreamModeDetails::builder()
                                .stream_mode(aws_sdk_kinesis::types::StreamMode::OnDemand)
                                .build()
                                .map_err(stream_err)?,
                        )
                        .send()
                        .await;
                    match created {
                        Ok(_) => tracing::debug!(stream = name, "created output stream"),
                        // Another scorer created it first.
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
                        Err(e) => {
                            return Err(stream_err(format!(
                                "CreateStream {name}: {}",
                                aws_sdk_kinesis::error::DisplayErrorContext(e)
                            )));
                        }
                    }
                }
                // Amazon Kinesis creates streams asynchronously (CREATING → ACTIVE).
                for _ in 0..600 {
                    let out = client
                        .describe_stream_summary()
                        .stream_name(name)
                        .send()
                        .await
                        .map_err(|e| {
                            stream_err(format!(
                                "DescribeStreamSummary {name}: {}",
                                aws_sdk_kinesis::error::DisplayErrorContext(e)
                            ))
                        })?;
                    let status = out
                        .stream_description_summary()
                        .map(|s| s.stream_status().clone());
                    if matches!(
                        status,
                        Some(aws_sdk_kinesis::types::StreamStatus::Active)
                            | Some(aws_sdk_kinesis::types::StreamStatus::Updating)
                    ) {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(stream_err(format!(
                    "stream {name} did not become ACTIVE in 5 minutes"
                )))
            }
        }
    }

    /// Puts every record (retrying throttled entries) and returns where each landed, in order.
    pub async fn put(
        &self,
        name: &str,
        records: Vec<OutRecord>,
    ) -> Result<Vec<Placed>, ServeError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Streams::Embedded(store) => {
                let handle = store
                    .stream(name)
                    .map_err(|e| stream_err(format!("stream {name}: {e}")))?;
                let inputs = records
                    .into_iter()
                    .map(|r| PutInput {
                        partition_key: r.partition_key,
                        explicit_hash_key: None,
                        data: r.data,
                    })
                    .collect();
                handle
                    .put(inputs)
                    .await
                    .into_iter()
                    .map(|r| {
                        r.map(|o| {
                            (
                                handle.shard(o.shard).map(|s| s.id()).unwrap_or_default(),
                                o.sequence.to_string(),
                            )
                        })
                        .map_err(|e| stream_err(format!("putting to {name}: {e}")))
                    })
                    .collect()
            }
            Streams::Kinesis { client, .. } => {
                let mut placed: Vec<Option<Placed>> = vec![None; records.len()];
                let mut start = 0;
                while start < records.len() {
                    // One call: up to 500 records and 5 MiB.
                    let mut end = start;
                    let mut bytes = 0;
                    while end < records.len()
                        && end - start < PUT_RECORDS
                        && (end == start
                            || bytes + records[end].data.len() + records[end].partition_key.len()
                                <= PUT_BYTES)
                    {
                        bytes += records[end].data.len() + records[end].partition_key.len();
                        end += 1;
                    }
                    put_kinesis(client, name, &records, start..end, &mut placed).await?;
                    start = end;
                }
                Ok(placed
                    .into_iter()
                    .map(|p| p.expect("every record placed"))
                    .collect())
            }
        }
    }
}

async fn put_kinesis(
    client: &aws_sdk_kinesis::Client,
    name: &str,
    records: &[OutRecord],
    range: std::ops::Range<usize>,
    placed: &mut [Option<Placed>],
) -> Result<(), ServeError> {
    use aws_sdk_kinesis::primitives::Blob;
    use aws_sdk_kinesis::types::PutRecordsRequestEntry;
    let mut todo: Vec<usize> = range.collect();
    let mut backoff = Duration::from_millis(50);
    for attempt in 1..=PUT_TRIES {
        let entries = todo
            .iter()
            .map(|&i| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&records[i].partition_key)
                    .data(Blob::new(records[i].data.to_vec()))
                    .build()
                    .map_err(stream_err)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = match client
            .put_records()
            .stream_name(name)
            .set_records(Some(entries))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let retryable = e.as_service_error().is_some_and(|s| {
                    s.is_provisioned_throughput_exceeded_exception()
                        || s.is_kms_throttling_exception()
                });
                if !retryable || attempt == PUT_TRIES {
                    return Err(stream_err(format!(
                        "PutRecords to {name}: {}",
                        aws_sdk_kinesis::error::DisplayErrorContext(e)
                    )));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let mut failed = Vec::new();
        let mut last_error = String::new();
        for (&i, r) in todo.iter().zip(out.records()) {
            match (r.shard_id(), r.sequence_number()) {
                (Some(shard), Some(seq)) if r.error_code().is_none() => {
                    placed[i] = Some((shard.to_owned(), seq.to_owned()));
                }
                _ => {
                    last_error = format!(
                        "{}: {}",
                        r.error_code().unwrap_or("?"),
                        r.error_message().unwrap_or("")
                    );
                    failed.push(i);
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        tracing::debug!(
            stream = name,
            failed = failed.len(),
            "retrying failed PutRecords entries"
        );
        todo = failed;
        if attempt == PUT_TRIES {
            return Err(stream_err(format!(
                "PutRecords to {name}: {} records still failing after {PUT_TRIES} tries ({last_error})",
                todo.len()
            )));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    unreachable!("the loop returns on its last try")
}
