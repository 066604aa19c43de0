use millrace_stream::StreamMeta;

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::Request;
use crate::server::Gateway;

use super::{mode_out, shard_out};

/// DescribeStream: the stream and a page of its shards (`Limit`, `ExclusiveStartShardId`).
pub fn describe(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let name = req.stream_name()?;
    let limit = req
        .opt_int_in("Limit", 1, super::MAX_LIST_LIMIT)?
        .unwrap_or(100) as usize;
    let after = req.opt_str_len("ExclusiveStartShardId", 1, 128)?;
    let stream = gw.store.stream(&name)?;
    let meta = stream.meta();
    let start = match after {
        Some(id) => stream.shard_by_id(id).map(|s| s.index() + 1).unwrap_or(0),
        None => 0,
    };
    let end = (start as usize + limit).min(stream.shards().len());
    let shards: Vec<Out> = (start..end as u32).map(|i| shard_out(&stream, i)).collect();
    let mut fields = common_fields(gw, &meta);
    fields.push(("Shards", Out::List(shards)));
    fields.push(("HasMoreShards", Out::Bool(end < stream.shards().len())));
    Ok(Out::map([("StreamDescription", Out::Map(fields))]))
}

/// DescribeStreamSummary: the stream without its shards.
pub fn summary(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let name = req.stream_name()?;
    let stream = gw.store.stream(&name)?;
    let mut fields = common_fields(gw, &stream.meta());
    fields.push(("OpenShardCount", Out::Int(stream.shards().len() as i64)));
    fields.push(("ConsumerCount", Out::Int(0)));
    Ok(Out::map([("StreamDescriptionSummary", Out::Map(fields))]))
}

/// Members both descriptions carry.
fn common_fields(gw: &Gateway, meta: &StreamMeta) -> Vec<(&'static str, Out)> {
    vec![
        ("StreamName", Out::str(&meta.name)),
        ("StreamARN", Out::str(gw.arn(&meta.name))),
        ("StreamStatus", Out::str("ACTIVE")),
        ("StreamModeDetails", mode_out(meta)),
        (
            "RetentionPeriodHours",
            Out::Int(meta.retention_hours.into()),
        ),
        ("StreamCreationTimestamp", Out::Time(meta.created_ms)),
        (
            "EnhancedMonitoring",
            Out::List(vec![Out::map([("ShardLevelMetrics", Out::List(vec![]))])]),
        ),
        ("EncryptionType", Out::str("NONE")),
    ]
}
