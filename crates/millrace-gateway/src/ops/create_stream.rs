use std::collections::BTreeMap;

use millrace_stream::StreamMode;

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::Request;
use crate::server::Gateway;

/// Kinesis's default retention.
const DEFAULT_RETENTION_HOURS: u32 = 24;

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let name = req.str("StreamName")?.to_owned();
    crate::request::validate_stream_name(&name)?;
    let shards = req.opt_int_in("ShardCount", 1, 100_000)?.map(|n| n as u32);
    let mode = match req.opt_object("StreamModeDetails")? {
        None => StreamMode::Provisioned,
        Some(details) => match details.get("StreamMode").and_then(|v| v.as_str()) {
            Some("PROVISIONED") => StreamMode::Provisioned,
            Some("ON_DEMAND") => StreamMode::OnDemand,
            other => {
                return Err(ApiError::validation(
                    "streamModeDetails.streamMode",
                    &format!("'{}'", other.unwrap_or("null")),
                    "Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]",
                ));
            }
        },
    };
    let tags = parse_tags(&req)?;
    let created = gw
        .blocking(move |store| {
            store
                .create(&name, mode, shards, DEFAULT_RETENTION_HOURS, tags)
                .map_err(ApiError::from)
        })
        .await?;
    tracing::info!(stream = %created.name(), shards = created.shards().len(), "created stream");
    Ok(Out::map([]))
}

fn parse_tags(req: &Request) -> Result<BTreeMap<String, String>, ApiError> {
    match req.opt_object("Tags")? {
        Some(map) => super::tags::parse_tag_map(map, 50),
        None => Ok(BTreeMap::new()),
    }
}
