//! DescribeLimits: the account's shard quota and use, and its on-demand stream count.

use millrace_stream::StreamMode;

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::Request;
use crate::server::Gateway;

/// Kinesis's default quota of ON_DEMAND streams per account.
pub(crate) const ON_DEMAND_STREAM_COUNT_LIMIT: i64 = 50;

pub fn handle(gw: &Gateway, _req: Request) -> Result<Out, ApiError> {
    let on_demand = gw
        .store
        .list()
        .iter()
        .filter(|s| s.mode == StreamMode::OnDemand)
        .count();
    Ok(Out::map([
        ("ShardLimit", Out::Int(gw.store.options().max_shards.into())),
        (
            "OpenShardCount",
            Out::Int(gw.store.open_shard_count().into()),
        ),
        ("OnDemandStreamCount", Out::Int(on_demand as i64)),
        (
            "OnDemandStreamCountLimit",
            Out::Int(ON_DEMAND_STREAM_COUNT_LIMIT),
        ),
    ]))
}
