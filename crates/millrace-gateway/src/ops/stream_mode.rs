//! UpdateStreamMode: switches a stream between PROVISIONED and ON_DEMAND (`StreamMeta.mode`).
//! The shards stay as they are; an ON_DEMAND stream is then scaled by the on-demand scaler.

use millrace_stream::{StreamError, StreamMode};

use crate::error::{ApiError, ErrorCode};
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    c.required("StreamARN", req.opt_str("StreamARN")?);
    req.check_stream(&mut c)?;
    let details = c.required("StreamModeDetails", req.opt_object("StreamModeDetails")?);
    let mut mode = None;
    if let Some(details) = details {
        let m = details.get("StreamMode").and_then(|v| v.as_str());
        if let Some(m) = c.required("StreamModeDetails.StreamMode", m)
            && c.one_of(
                "StreamModeDetails.StreamMode",
                m,
                &["PROVISIONED", "ON_DEMAND"],
            )
        {
            mode = Some(if m == "ON_DEMAND" {
                StreamMode::OnDemand
            } else {
                StreamMode::Provisioned
            });
        }
    }
    let warm = req.int_in(&mut c, "WarmThroughputMiBps", 0, i64::MAX)?;
    c.finish()?;
    let mode = mode.expect("checked");
    let name = gw.stream_name(&req)?;
    let stream = gw.store.stream(&name)?;
    if let Some(w) = warm {
        if mode != StreamMode::OnDemand {
            return Err(ApiError::invalid(
                "WarmThroughputMiBps is only valid when the stream mode is updated to ON_DEMAND.",
            ));
        }
        super::warm_throughput::check_allowed(gw, w)?;
    }
    let (queues, channels) = (
        gw.queues.on_stream(&name),
        gw.channels.on_stream(&name).len(),
    );
    if mode == StreamMode::Provisioned && queues + channels > 0 {
        return Err(ApiError::new(
            crate::error::ErrorCode::ResourceInUse,
            format!(
                "Stream {name} has {queues} queue(s) and {channels} channel(s), which need an \
                 on-demand stream. Delete them before switching the stream to PROVISIONED."
            ),
        ));
    }
    let account = gw.store.options().account_id.clone();
    if mode == StreamMode::OnDemand && stream.meta().mode != StreamMode::OnDemand {
        let on_demand = gw
            .store
            .list()
            .iter()
            .filter(|s| s.mode == StreamMode::OnDemand)
            .count() as i64;
        if on_demand >= super::describe_limits::ON_DEMAND_STREAM_COUNT_LIMIT {
            return Err(ApiError::new(
                ErrorCode::LimitExceeded,
                format!(
                    "Account {account} already has {on_demand} ON_DEMAND streams, the most \
                     allowed."
                ),
            ));
        }
    }
    gw.blocking(move |_| {
        stream
            .update_meta(|m| {
                if m.mode == mode {
                    return Err(StreamError::InvalidArgument(format!(
                        "Stream {} under account {account} is already in {} mode.",
                        m.name,
                        mode.as_str()
                    )));
                }
                m.mode = mode;
                m.warm_throughput_mibps = match mode {
                    StreamMode::OnDemand => warm.map(|w| w as u32),
                    // Provisioned streams have no warm throughput.
                    StreamMode::Provisioned => None,
                };
                Ok(())
            })
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Out::map([]))
}
