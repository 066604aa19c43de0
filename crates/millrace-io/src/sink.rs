//! Writing a stream: [`RecordSink`] puts one request's worth of records and reports each
//! record's fate; [`batches`] cuts any number of records into requests the Kinesis limits
//! allow; [`put_with_retry`] re-sends only the records that failed, with backoff, and
//! [`put_all`] does both. Every writer (the scorer, `millrace produce`, the demo) goes through
//! these, so batching and retrying are the same everywhere.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::limits::{PUT_RECORDS_MAX_BYTES, PUT_RECORDS_MAX_RECORDS};
use crate::{IoError, Result};

/// One record to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRecord {
    pub partition_key: String,
    pub data: Bytes,
}

impl SinkRecord {
    pub fn new(partition_key: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self {
            partition_key: partition_key.into(),
            data: data.into(),
        }
    }

    /// What the record counts against a PutRecords request's byte limit: data and key.
    pub fn request_bytes(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// Where an accepted record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub shard: String,
    pub sequence: String,
}

/// Why the stream did not accept one record of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutFailure {
    /// The service's error type (`ProvisionedThroughputExceededException`, `InternalFailure`).
    pub code: String,
    pub message: String,
    /// Whether sending the record again may succeed.
    pub retryable: bool,
}

impl std::fmt::Display for PutFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A writable stream.
#[async_trait]
pub trait RecordSink: Send + Sync {
    /// The stream's name, for messages.
    fn stream(&self) -> &str;

    /// One request (at most [`PUT_RECORDS_MAX_RECORDS`] records and [`PUT_RECORDS_MAX_BYTES`]
    /// bytes; see [`batches`]): per record, in order, where it landed or why not. `Err` when
    /// the request as a whole failed.
    async fn put_records(
        &self,
        records: &[SinkRecord],
    ) -> Result<Vec<std::result::Result<Placed, PutFailure>>>;

    /// The most records and bytes one [`RecordSink::put_records`] takes (Kinesis's
    /// PutRecords limits unless the API has others).
    fn batch_limits(&self) -> (usize, usize) {
        (PUT_RECORDS_MAX_RECORDS, PUT_RECORDS_MAX_BYTES)
    }

    /// One record, through the API's single-record call where it has one (PutRecord), once.
    async fn put_record(&self, record: &SinkRecord) -> Result<Placed> {
        let mut results = self.put_records(std::slice::from_ref(record)).await?;
        match results.pop() {
            Some(Ok(placed)) => Ok(placed),
            Some(Err(f)) => Err(IoError::Unacknowledged {
                stream: self.stream().to_owned(),
                failed: 1,
                first: 0,
                attempts: 1,
                last_error: f.to_string(),
                transient: f.retryable,
            }),
            None => Err(IoError::Failed {
                op: format!("PutRecords to {}", self.stream()),
                message: "the answer holds no result for the record".into(),
                transient: true,
            }),
        }
    }
}

/// How a put retries: `attempts` tries in all, sleeping `first_backoff` after the first
/// failure and doubling up to `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retry {
    /// 12 tries, 50 ms doubling up to 5 s: about 25 s of throttling before giving up.
    fn default() -> Self {
        Self {
            attempts: 12,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Cuts `records` into consecutive requests of at most [`PUT_RECORDS_MAX_RECORDS`] records
/// and [`PUT_RECORDS_MAX_BYTES`] bytes (data and partition keys). A record that alone is over
/// the byte limit goes in a request of its own, for the stream to refuse with its reason.
pub fn batches(records: &[SinkRecord]) -> Vec<Range<usize>> {
    batches_within(records, (PUT_RECORDS_MAX_RECORDS, PUT_RECORDS_MAX_BYTES))
}

/// As [`batches`], within `sink`'s own limits ([`RecordSink::batch_limits`]).
pub fn batches_for(sink: &dyn RecordSink, records: &[SinkRecord]) -> Vec<Range<usize>> {
    batches_within(records, sink.batch_limits())
}

fn batches_within(
    records: &[SinkRecord],
    (max_records, max_bytes): (usize, usize),
) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < records.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < records.len() && end - start < max_records {
            let size = records[end].request_bytes();
            if end > start && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// Puts one request's records, re-sending only those that failed (and the whole request when
/// it was throttled) with backoff, until all are placed or `retry.attempts` tries are spent.
/// A record failure no retry can help ends it at once. Returns where each record landed, in
/// order; the error's `first` is an index into `records`.
pub async fn put_with_retry(
    sink: &dyn RecordSink,
    records: &[SinkRecord],
    retry: Retry,
) -> Result<Vec<Placed>> {
    let mut placed: Vec<Option<Placed>> = vec![None; records.len()];
    let mut todo: Vec<usize> = (0..records.len()).collect();
    let mut backoff = retry.first_backoff;
    let attempts = retry.attempts.max(1);
    let mut attempt = 0;
    while !todo.is_empty() {
        attempt += 1;
        let request: Vec<SinkRecord> = if todo.len() == records.len() {
            records.to_vec()
        } else {
            todo.iter().map(|&i| records[i].clone()).collect()
        };
        let results = match sink.put_records(&request).await {
            Ok(results) => results,
            Err(e) if e.is_throttled() && attempt < attempts => {
                tracing::debug!(stream = sink.stream(), error = %e, "PutRecords throttled; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(retry.max_backoff);
                continue;
            }
            Err(e) => return Err(e),
        };
        if results.len() != todo.len() {
            return Err(IoError::Failed {
                op: format!("PutRecords to {}", sink.stream()),
                message: format!(
                    "the answer holds {} results for {} records",
                    results.len(),
                    todo.len()
                ),
                transient: false,
            });
        }
        let mut failed = Vec::new();
        let mut last_error: Option<PutFailure> = None;
        let mut permanent = false;
        for (&i, result) in todo.iter().zip(results) {
            match result {
                Ok(p) => placed[i] = Some(p),
                Err(f) => {
                    permanent |= !f.retryable;
                    last_error = Some(f);
                    failed.push(i);
                }
            }
        }
        if let Some(last) = last_error {
            if permanent || attempt >= attempts {
                return Err(IoError::Unacknowledged {
                    stream: sink.stream().to_owned(),
                    failed: failed.len(),
                    first: failed[0],
                    attempts: attempt,
                    last_error: last.to_string(),
                    transient: !permanent,
                });
            }
            tracing::debug!(
                stream = sink.stream(),
                failed = failed.len(),
                error = %last,
                "retrying failed PutRecords entries"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(retry.max_backoff);
        }
        todo = failed;
    }
    Ok(placed
        .into_iter()
        .map(|p| p.expect("every record placed"))
        .collect())
}

/// Puts every record in [`batches`], each through [`put_with_retry`], and returns where each
/// landed, in order. The error's `first` is an index into `records`.
pub async fn put_all(
    sink: &dyn RecordSink,
    records: &[SinkRecord],
    retry: Retry,
) -> Result<Vec<Placed>> {
    let mut placed = Vec::with_capacity(records.len());
    for range in batches(records) {
        let start = range.start;
        match put_with_retry(sink, &records[range], retry).await {
            Ok(p) => placed.extend(p),
            Err(e) => return Err(offset(e, start)),
        }
    }
    Ok(placed)
}

/// Shifts an [`IoError::Unacknowledged`]'s record index by `start` (a batch's place in the
/// whole put).
pub fn offset(e: IoError, start: usize) -> IoError {
    match e {
        IoError::Unacknowledged {
            stream,
            failed,
            first,
            attempts,
            last_error,
            transient,
        } => IoError::Unacknowledged {
            stream,
            failed,
            first: first + start,
            attempts,
            last_error,
            transient,
        },
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(key: &str, bytes: usize) -> SinkRecord {
        SinkRecord::new(key, vec![b'x'; bytes])
    }

    #[test]
    fn batches_split_at_500_records() {
        let records: Vec<SinkRecord> = (0..1201).map(|i| rec(&i.to_string(), 10)).collect();
        assert_eq!(batches(&records), vec![0..500, 500..1000, 1000..1201]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn batches_split_at_5_mib_counting_keys() {
        // 5 records of 1 MiB data + a 1-byte key: four fit (4 MiB + 4 B), the fifth would
        // make 5 MiB + 5 B.
        let mib = 1024 * 1024;
        let records: Vec<SinkRecord> = (0..5).map(|i| rec(&i.to_string(), mib)).collect();
        assert_eq!(batches(&records), vec![0..4, 4..5]);
        // Exactly 5 MiB with keys fits in one request.
        let exact = vec![rec("k", PUT_RECORDS_MAX_BYTES - 1)];
        assert_eq!(batches(&exact), vec![0..1]);
        let two = vec![rec("a", mib), rec("b", 4 * mib - 2)];
        assert_eq!(batches(&two), vec![0..2]);
        let over = vec![rec("a", mib), rec("b", 4 * mib - 1)];
        assert_eq!(batches(&over), vec![0..1, 1..2]);
    }

    #[test]
    fn a_record_over_the_byte_limit_goes_alone() {
        let records = vec![
            rec("a", 10),
            rec("b", PUT_RECORDS_MAX_BYTES + 1),
            rec("c", 10),
        ];
        assert_eq!(batches(&records), vec![0..1, 1..2, 2..3]);
    }
}
