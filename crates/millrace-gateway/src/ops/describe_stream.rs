use millrace_stream::{StreamHandle, StreamMeta};

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

use super::mode_out;
use super::shards::{listed, shard_out};

/// DescribeStream: the stream and a page of its shards (`Limit`, `ExclusiveStartShardId`),
/// closed ones included until retention passes over them.
pub fn describe(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let limit = req.int_in(&mut c, "Limit", 1, super::MAX_LIST_LIMIT)?;
    let after = req.opt_str("ExclusiveStartShardId")?;
    if let Some(id) = after {
        super::get_shard_iterator::check_shard_id(&mut c, "ExclusiveStartShardId", id);
    }
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let limit = limit.unwrap_or(100) as usize;
    let stream = gw.store.stream(&name)?;
    let meta = stream.meta();
    let start = after
        .and_then(millrace_stream::parse_shard_id)
        .map_or(0, |i| i.saturating_add(1));
    let mut page = listed(&meta, millrace_stream::now_ms()).filter(|s| s.index >= start);
    let shards: Vec<Out> = page
        .by_ref()
        .take(limit)
        .map(|s| shard_out(&stream, s))
        .collect();
    let more = page.next().is_some();
    let mut fields = common_fields(gw, &stream, &meta);
    fields.push(("Shards", Out::List(shards)));
    fields.push(("HasMoreShards", Out::Bool(more)));
    Ok(Out::map([("StreamDescription", Out::Map(fields))]))
}

/// DescribeStreamSummary: the stream without its shards.
pub fn summary(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let stream = gw.store.stream(&name)?;
    let meta = stream.meta();
    let mut fields = common_fields(gw, &stream, &meta);
    fields.push((
        "OpenShardCount",
        Out::Int(meta.open_shards().count() as i64),
    ));
    fields.push(("ConsumerCount", Out::Int(meta.consumers.len() as i64)));
    fields.push(("QueueCount", Out::Int(gw.queues.on_stream(&name) as i64)));
    if meta.mode == millrace_stream::StreamMode::OnDemand {
        fields.push((
            "RecordDistributionStrategy",
            Out::str(meta.record_distribution.as_str()),
        ));
    }
    fields.push((
        "MaxRecordSizeInKiB",
        Out::Int(meta.max_record_size_kib.into()),
    ));
    if let Some(w) = meta.warm_throughput_mibps {
        fields.push((
            "WarmThroughput",
            Out::map([
                ("TargetMiBps", Out::Int(w.into())),
                ("CurrentMiBps", Out::Int(w.into())),
            ]),
        ));
    }
    Ok(Out::map([("StreamDescriptionSummary", Out::Map(fields))]))
}

/// Members both descriptions carry.
fn common_fields(
    gw: &Gateway,
    stream: &StreamHandle,
    meta: &StreamMeta,
) -> Vec<(&'static str, Out)> {
    let status = if stream.is_updating() {
        "UPDATING"
    } else {
        "ACTIVE"
    };
    let metrics = meta.shard_level_metrics.iter().map(Out::str).collect();
    let mut fields = vec![
        ("StreamName", Out::str(&meta.name)),
        ("StreamARN", Out::str(gw.arn(&meta.name))),
        ("StreamStatus", Out::str(status)),
        ("StreamModeDetails", mode_out(meta)),
        (
            "RetentionPeriodHours",
            Out::Int(meta.retention_hours.into()),
        ),
        ("StreamCreationTimestamp", Out::Time(meta.created_ms)),
        (
            "EnhancedMonitoring",
            Out::List(vec![Out::map([("ShardLevelMetrics", Out::List(metrics))])]),
        ),
    ];
    match &meta.encryption {
        Some(e) => {
            fields.push(("EncryptionType", Out::str(&e.kind)));
            fields.push(("KeyId", Out::str(&e.key_id)));
        }
        None => fields.push(("EncryptionType", Out::str("NONE"))),
    }
    fields
}
