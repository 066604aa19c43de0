//! How shards look on the wire (`Shard`, `ChildShard`), shared by DescribeStream, ListShards,
//! GetRecords and SubscribeToShard.

use millrace_stream::{HashKeyRange, ShardMeta, StreamHandle, StreamMeta};

use crate::protocol::Out;

pub(crate) fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

fn range_out(r: HashKeyRange) -> Out {
    Out::map([
        ("StartingHashKey", Out::str(r.start.to_string())),
        ("EndingHashKey", Out::str(r.end.to_string())),
    ])
}

/// A `Shard`: id, parents, hash-key range, and its sequence-number range (with the ending
/// number once a reshard closed it).
pub(crate) fn shard_out(stream: &StreamHandle, m: &ShardMeta) -> Out {
    let mut seq = vec![(
        "StartingSequenceNumber",
        Out::str(stream.sequence(m.index, 0).to_string()),
    )];
    if let Some(end) = m.closed {
        let last = end.next_counter.saturating_sub(1);
        seq.push((
            "EndingSequenceNumber",
            Out::str(stream.sequence(m.index, last).to_string()),
        ));
    }
    let mut fields = vec![("ShardId", Out::str(shard_id(m.index)))];
    if let Some(p) = m.parent {
        fields.push(("ParentShardId", Out::str(shard_id(p))));
    }
    if let Some(p) = m.adjacent_parent {
        fields.push(("AdjacentParentShardId", Out::str(shard_id(p))));
    }
    fields.push(("HashKeyRange", range_out(m.range)));
    fields.push(("SequenceNumberRange", Out::Map(seq)));
    Out::Map(fields)
}

/// The `ChildShards` of a closed shard: each child with all its parents and its range.
pub(crate) fn child_shards_out(meta: &StreamMeta, index: u32) -> Out {
    Out::List(
        meta.children(index)
            .map(|c| {
                Out::map([
                    ("ShardId", Out::str(shard_id(c.index))),
                    (
                        "ParentShards",
                        Out::List(c.parents().map(|p| Out::str(shard_id(p))).collect()),
                    ),
                    ("HashKeyRange", range_out(c.range)),
                ])
            })
            .collect(),
    )
}

/// Shards a client still sees: open ones, and closed ones until retention has passed over
/// their end (Kinesis then drops them from the shard list).
pub(crate) fn listed(meta: &StreamMeta, now_ms: i64) -> impl Iterator<Item = &ShardMeta> {
    let retention_ms = i64::from(meta.retention_hours) * 3_600_000;
    meta.shards.iter().filter(move |s| match s.closed {
        None => true,
        Some(end) => end.closed_ms + retention_ms >= now_ms,
    })
}
