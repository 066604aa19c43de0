//! Reading a stream: [`RecordSource`] and what it returns. Positions are Kinesis sequence
//! number strings for every backend, so a checkpoint means the same whichever one wrote it.

use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;
use crate::checkpoint::SharedCheckpoints;

/// One record read from a shard.
#[derive(Debug, Clone)]
pub struct SourceRecord {
    pub sequence: String,
    pub arrival_ms: i64,
    pub partition_key: String,
    pub data: Bytes,
}

/// What one read returned.
#[derive(Debug, Default)]
pub struct SourceBatch {
    pub records: Vec<SourceRecord>,
    /// True when nothing newer was in the shard when it was read.
    pub caught_up: bool,
    /// True when a reshard closed the shard and these records are its last: nothing will
    /// follow, and its children may be read once they are done with.
    pub ended: bool,
}

/// A shard and the shards it came from (a split has one parent, a merge two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: String,
    pub parents: Vec<String>,
}

/// A readable stream.
#[async_trait]
pub trait RecordSource: Send + Sync {
    /// The shard ids, in the stream's order: open shards and closed ones still retained.
    async fn shards(&self) -> Result<Vec<String>> {
        Ok(self.lineage().await?.into_iter().map(|s| s.id).collect())
    }

    /// The shards with their parents. A reader that finishes parents before it starts their
    /// children reads every record once, in order per partition key, across any reshard
    /// ([`crate::lineage::for_each_shard`] does this).
    async fn lineage(&self) -> Result<Vec<ShardInfo>>;

    /// Records after `after` (from the oldest when `None`). When there are none yet, waits up
    /// to `wait` for some to arrive.
    async fn read(&self, shard: &str, after: Option<&str>, wait: Duration) -> Result<SourceBatch>;

    /// The sequence number of the newest record in `shard` now (`None` when it has none):
    /// reading after it returns only records put later. This default reads the shard to its
    /// end; a backend that knows its tip answers directly.
    async fn newest(&self, shard: &str) -> Result<Option<String>> {
        let mut after: Option<String> = None;
        loop {
            let batch = self.read(shard, after.as_deref(), Duration::ZERO).await?;
            match batch.records.last() {
                Some(r) => after = Some(r.sequence.clone()),
                None => return Ok(after),
            }
            if batch.caught_up {
                return Ok(after);
            }
        }
    }

    /// Where this source keeps its readers' checkpoints itself (a Kafka consumer group, whose
    /// members share the shards), if it does: readers then store them there instead of in
    /// local files, so the member that reads a shard next continues from them.
    fn shared_checkpoints(&self) -> Option<Arc<dyn SharedCheckpoints>> {
        None
    }
}
