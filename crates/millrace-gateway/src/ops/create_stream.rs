use std::collections::BTreeMap;

use millrace_stream::StreamMode;

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// Kinesis's default retention.
const DEFAULT_RETENTION_HOURS: u32 = 24;

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let name = c.required("StreamName", req.opt_str("StreamName")?);
    if let Some(name) = name {
        c.stream_name("StreamName", name);
    }
    let shards = req.int_in(&mut c, "ShardCount", 1, 100_000)?;
    let mode = match req.opt_object("StreamModeDetails")? {
        None => Some(StreamMode::Provisioned),
        Some(details) => {
            let mode = details.get("StreamMode").and_then(|v| v.as_str());
            match c.required("StreamModeDetails.StreamMode", mode) {
                Some("PROVISIONED") => Some(StreamMode::Provisioned),
                Some("ON_DEMAND") => Some(StreamMode::OnDemand),
                Some(other) => {
                    c.one_of(
                        "StreamModeDetails.StreamMode",
                        other,
                        &["PROVISIONED", "ON_DEMAND"],
                    );
                    None
                }
                None => None,
            }
        }
    };
    let tags = match req.opt_object("Tags")? {
        Some(map) => super::tags::parse_tag_map(&mut c, map, 50),
        None => BTreeMap::new(),
    };
    let warm = req.int_in(&mut c, "WarmThroughputMiBps", 0, i64::MAX)?;
    let max_record_kib = req.int_in(
        &mut c,
        "MaxRecordSizeInKiB",
        super::max_record_size::MIN_KIB,
        super::max_record_size::MAX_KIB,
    )?;
    c.finish()?;
    let name = name.expect("checked").to_owned();
    crate::request::validate_stream_name(&name)?;
    super::tags::check_tag_characters(&tags)?;
    let shards = shards.map(|n| n as u32);
    let mode = mode.expect("checked");
    if let Some(w) = warm {
        if mode != StreamMode::OnDemand {
            return Err(ApiError::invalid(
                "WarmThroughputMiBps is only supported for ON_DEMAND streams.",
            ));
        }
        super::warm_throughput::check_allowed(gw, w)?;
    }
    let created = gw
        .blocking(move |store| {
            store
                .create(&name, mode, shards, DEFAULT_RETENTION_HOURS, tags)
                .map_err(ApiError::from)
        })
        .await?;
    if warm.is_some() || max_record_kib.is_some() {
        let stream = created.clone();
        gw.blocking(move |_| {
            stream
                .update_meta(|m| {
                    if let Some(w) = warm {
                        m.warm_throughput_mibps = Some(w as u32);
                    }
                    if let Some(k) = max_record_kib {
                        m.max_record_size_kib = k as u32;
                    }
                    Ok(())
                })
                .map_err(ApiError::from)
        })
        .await?;
    }
    tracing::info!(stream = %created.name(), shards = created.shards().len(), "created stream");
    Ok(Out::map([]))
}
