use crate::error::ApiError;
use crate::iterator::Position;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

use super::shards::child_shards_out;
use millrace_stream::limits::{GET_RECORDS_MAX_BYTES, GET_RECORDS_MAX_RECORDS};

/// Kinesis caps one GetRecords response at 10,000 records and 10 MiB.
const MAX_RECORDS: i64 = GET_RECORDS_MAX_RECORDS as i64;

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let token = c.required("ShardIterator", req.opt_str("ShardIterator")?);
    if let Some(t) = token {
        c.len("ShardIterator", t, 1, 512);
    }
    let limit = req.int_in(&mut c, "Limit", 1, MAX_RECORDS)?;
    c.finish()?;
    let token = token.expect("checked");
    let limit = limit.unwrap_or(MAX_RECORDS) as usize;
    let now = millrace_stream::now_ms();
    let pos = gw.iterators.decode(token, now)?;
    let stream = gw.store.stream(&pos.stream)?;
    if stream.created_ms() != pos.stream_created_ms {
        return Err(millrace_stream::StreamError::StreamNotFound(pos.stream).into());
    }
    let shard = stream
        .shard(pos.shard)
        .ok_or_else(|| ApiError::invalid("Invalid ShardIterator: unknown shard"))?;
    let charge = gw.throttle.admit_read(&stream, pos.shard)?;
    let from = pos.counter;
    let batch = gw
        .blocking(move |_| {
            shard
                .read(from, limit, GET_RECORDS_MAX_BYTES)
                .map_err(ApiError::from)
        })
        .await?;
    gw.throttle.charge_read(charge, &batch);
    let behind = if batch.next >= batch.tip {
        0
    } else {
        let oldest_unread = batch
            .next_arrival_ms
            .or_else(|| batch.records.last().map(|r| r.arrival_ms))
            .unwrap_or(now);
        (now - oldest_unread).max(0)
    };
    let records: Vec<Out> = batch
        .records
        .into_iter()
        .map(|r| {
            Out::map([
                (
                    "SequenceNumber",
                    Out::str(stream.sequence(pos.shard, r.counter).to_string()),
                ),
                ("ApproximateArrivalTimestamp", Out::Time(r.arrival_ms)),
                ("Data", Out::Blob(r.data)),
                ("PartitionKey", Out::Str(r.partition_key)),
            ])
        })
        .collect();
    // A closed shard read to its end has no next iterator: the reader moves on to the
    // children, which the reply names.
    let ended = stream
        .shard_end(pos.shard)
        .is_some_and(|end| batch.next >= end);
    let mut fields = vec![("Records", Out::List(records))];
    if ended {
        fields.push(("MillisBehindLatest", Out::Int(0)));
        fields.push(("ChildShards", child_shards_out(&stream.meta(), pos.shard)));
    } else {
        let next = gw.iterators.encode(&Position {
            counter: batch.next,
            issued_ms: now,
            ..pos
        });
        fields.push(("NextShardIterator", Out::str(next)));
        fields.push(("MillisBehindLatest", Out::Int(behind)));
    }
    Ok(Out::Map(fields))
}
