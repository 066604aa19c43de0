//! The embedded log of this process (`millrace_stream::StreamHandle`), read and written
//! directly: no HTTP, and a reader is woken by the shard's tip instead of polling.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use millrace_stream::{PutInput, SequenceNumber, StreamError, StreamHandle};

use crate::limits::GET_RECORDS_MAX_RECORDS;
use crate::sink::{Placed, PutFailure, RecordSink, SinkRecord};
use crate::source::{RecordSource, ShardInfo, SourceBatch, SourceRecord};
use crate::{IoError, Result};

/// Most bytes one read returns (under GetRecords' 10 MiB: a read is one batch of work).
const READ_BYTES: usize = 8 * 1024 * 1024;

/// Classifies a store failure: `op` says what was being done.
pub(crate) fn store_error(op: String, e: StreamError) -> IoError {
    let message = e.to_string();
    match e {
        StreamError::StreamNotFound(_)
        | StreamError::ShardNotFound { .. }
        | StreamError::Deleting(_) => IoError::StreamNotFound { op, message },
        StreamError::LimitExceeded(_)
        | StreamError::OutOfDescriptors { .. }
        | StreamError::ResourceInUse(_) => IoError::Throttled { op, message },
        StreamError::InvalidArgument(_)
        | StreamError::StreamExists(_)
        | StreamError::RecordTooLarge { .. }
        | StreamError::PartitionKeyLength { .. } => IoError::Rejected { op, message },
        StreamError::Io { .. } | StreamError::CorruptMeta { .. } | StreamError::WriterGone(_) => {
            IoError::Failed {
                op,
                message,
                transient: false,
            }
        }
        // A key missing from the keyring can be added while the reader waits: it is found on
        // the next try.
        StreamError::KeyNotFound(_) | StreamError::KeyUnavailable(_) => IoError::Failed {
            op,
            message,
            transient: true,
        },
    }
}

/// Reads a stream of the embedded store.
pub struct EmbeddedSource {
    stream: Arc<StreamHandle>,
}

impl EmbeddedSource {
    pub fn new(stream: Arc<StreamHandle>) -> Self {
        Self { stream }
    }

    fn op(&self, what: &str, shard: &str) -> String {
        format!("{what} {shard} of {}", self.stream.name())
    }
}

#[async_trait]
impl RecordSource for EmbeddedSource {
    async fn lineage(&self) -> Result<Vec<ShardInfo>> {
        let id = |i: u32| format!("shardId-{i:012}");
        Ok(self
            .stream
            .meta()
            .shards
            .iter()
            .map(|s| ShardInfo {
                id: id(s.index),
                parents: s.parents().map(id).collect(),
            })
            .collect())
    }

    async fn read(&self, shard: &str, after: Option<&str>, wait: Duration) -> Result<SourceBatch> {
        let shard_id = shard;
        let shard = self
            .stream
            .shard_by_id(shard_id)
            .map_err(|e| store_error(self.op("reading shard", shard_id), e))?
            .clone();
        let from = match after {
            None => 0,
            Some(s) => {
                SequenceNumber::parse(s)
                    .ok_or_else(|| IoError::BadPosition {
                        op: self.op("reading shard", shard_id),
                        message: format!("checkpoint {s} is not a millrace sequence number"),
                    })?
                    .counter
                    + 1
            }
        };
        let end = self.stream.shard_end(shard.index());
        let mut tip = shard.watch_tip();
        if *tip.borrow_and_update() <= from && !wait.is_zero() && end.is_none() {
            let _ = tokio::time::timeout(wait, tip.changed()).await;
        }
        let index = shard.index();
        let s2 = shard.clone();
        let batch =
            tokio::task::spawn_blocking(move || s2.read(from, GET_RECORDS_MAX_RECORDS, READ_BYTES))
                .await
                .map_err(|e| IoError::task(self.op("reading shard", shard_id), e))?
                .map_err(|e| store_error(self.op("reading shard", shard_id), e))?;
        let caught_up = batch.next >= batch.tip;
        let ended = end.is_some_and(|e| batch.next >= e);
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
        Ok(SourceBatch {
            records,
            caught_up,
            ended,
        })
    }

    /// The record before the shard's tip: known without reading.
    async fn newest(&self, shard: &str) -> Result<Option<String>> {
        let s = self
            .stream
            .shard_by_id(shard)
            .map_err(|e| store_error(self.op("reading shard", shard), e))?;
        Ok(s.tip()
            .checked_sub(1)
            .map(|counter| self.stream.sequence(s.index(), counter).to_string()))
    }
}

/// Appends to a stream of the embedded store (each shard's writer, group commit).
pub struct EmbeddedSink {
    stream: Arc<StreamHandle>,
    name: String,
}

impl EmbeddedSink {
    pub fn new(stream: Arc<StreamHandle>) -> Self {
        Self {
            name: stream.name(),
            stream,
        }
    }
}

#[async_trait]
impl RecordSink for EmbeddedSink {
    fn stream(&self) -> &str {
        &self.name
    }

    async fn put_records(
        &self,
        records: &[SinkRecord],
    ) -> Result<Vec<std::result::Result<Placed, PutFailure>>> {
        let inputs = records
            .iter()
            .map(|r| PutInput {
                partition_key: r.partition_key.clone(),
                explicit_hash_key: None,
                data: r.data.clone(),
            })
            .collect();
        Ok(self
            .stream
            .put(inputs)
            .await
            .into_iter()
            .map(|r| match r {
                Ok(o) => Ok(Placed {
                    shard: self
                        .stream
                        .shard(o.shard)
                        .map(|s| s.id())
                        .unwrap_or_default(),
                    sequence: o.sequence.to_string(),
                }),
                Err(e) => {
                    let e = store_error(format!("putting to {}", self.name), e);
                    Err(PutFailure {
                        code: match &e {
                            IoError::StreamNotFound { .. } => "ResourceNotFoundException",
                            IoError::Throttled { .. } => "ProvisionedThroughputExceededException",
                            IoError::Rejected { .. } => "InvalidArgumentException",
                            _ => "InternalFailure",
                        }
                        .to_owned(),
                        retryable: e.is_transient(),
                        message: e.to_string(),
                    })
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{Retry, put_all};

    #[tokio::test]
    async fn a_record_over_the_limit_is_refused_for_good_and_the_others_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = millrace_stream::Store::open(dir.path(), Default::default()).unwrap();
        let stream = store
            .create(
                "s",
                millrace_stream::StreamMode::Provisioned,
                Some(1),
                24,
                Default::default(),
            )
            .unwrap();
        let sink = EmbeddedSink::new(stream);
        let big = vec![0u8; crate::limits::RECORD_MAX_DATA_BYTES + 1];
        let records = [
            SinkRecord::new("k", "a"),
            SinkRecord::new("k", big),
            SinkRecord::new("k", "b"),
        ];
        let results = sink.put_records(&records).await.unwrap();
        assert!(results[0].is_ok() && results[2].is_ok());
        let failure = results[1].as_ref().unwrap_err();
        assert_eq!(failure.code, "InvalidArgumentException");
        assert!(!failure.retryable, "{failure}");
        assert!(failure.message.contains("over the limit"), "{failure}");
        let e = put_all(&sink, &records[1..2], Retry::default())
            .await
            .unwrap_err();
        assert!(!e.is_transient(), "{e}");
    }
}
