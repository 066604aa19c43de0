//! UpdateStreamRecordDistributionStrategy: how an ON_DEMAND stream places new records
//! (`StreamMeta.record_distribution`). AUTO spreads records evenly over the open shards and
//! ignores partition keys and explicit hash keys; USER_PARTITION_KEY (the default) routes by
//! key. Records already written keep their shards. PROVISIONED streams have no such setting.

use millrace_stream::{RecordDistribution, StreamError, StreamMode};

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    c.required("StreamARN", req.opt_str("StreamARN")?);
    req.check_stream(&mut c)?;
    if let Some(id) = req.opt_str("StreamId")? {
        c.len("StreamId", id, 1, 24);
    }
    let strategy = c.required(
        "RecordDistributionStrategy",
        req.opt_str("RecordDistributionStrategy")?,
    );
    if let Some(s) = strategy {
        c.one_of(
            "RecordDistributionStrategy",
            s,
            &["AUTO", "USER_PARTITION_KEY"],
        );
    }
    c.finish()?;
    let strategy = match strategy.expect("checked") {
        "AUTO" => RecordDistribution::Auto,
        _ => RecordDistribution::UserPartitionKey,
    };
    let name = gw.stream_name(&req)?;
    let stream = gw.store.stream(&name)?;
    gw.blocking(move |_| {
        stream
            .update_meta(|m| {
                if m.mode != StreamMode::OnDemand {
                    return Err(StreamError::InvalidArgument(format!(
                        "Stream {} is PROVISIONED: the record distribution strategy is a \
                         setting of on-demand streams only.",
                        m.name
                    )));
                }
                m.record_distribution = strategy;
                Ok(())
            })
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Out::map([]))
}
