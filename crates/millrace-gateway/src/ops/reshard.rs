//! SplitShard, MergeShards and UpdateShardCount: validation of the members here, the shard map
//! change in `millrace_stream` (`reshard.rs`), run off the async threads (it fsyncs).

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Request, check_len};
use crate::server::Gateway;

/// A `ShardId` member: 1 to 128 of `[a-zA-Z0-9_.-]`.
fn shard_member(req: &Request, field: &str) -> Result<String, ApiError> {
    let id = req.str(field)?;
    check_len(field, id, 1, 128)?;
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(ApiError::validation(
            &crate::request::member(field),
            &format!("'{id}'"),
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(id.to_owned())
}

pub async fn split(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let name = gw.stream_name(&req)?;
    let shard = shard_member(&req, "ShardToSplit")?;
    let key = req.str("NewStartingHashKey")?;
    let well_formed = !key.is_empty()
        && key.len() <= 39
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    if !well_formed {
        return Err(ApiError::validation(
            "newStartingHashKey",
            &format!("'{key}'"),
            "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
        ));
    }
    let at: u128 = key.parse().map_err(|_| {
        ApiError::invalid(format!(
            "NewStartingHashKey {key} is outside the hash key range [0, 2^128-1]"
        ))
    })?;
    gw.blocking(move |store| Ok(store.split_shard(&name, &shard, at)?))
        .await?;
    Ok(Out::map([]))
}

pub async fn merge(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let name = gw.stream_name(&req)?;
    let shard = shard_member(&req, "ShardToMerge")?;
    let adjacent = shard_member(&req, "AdjacentShardToMerge")?;
    gw.blocking(move |store| Ok(store.merge_shards(&name, &shard, &adjacent)?))
        .await?;
    Ok(Out::map([]))
}

pub async fn update_shard_count(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let name = gw.stream_name(&req)?;
    let target = req
        .opt_int_in("TargetShardCount", 1, 100_000)?
        .ok_or_else(|| Request::missing("TargetShardCount"))? as u32;
    match req.opt_str("ScalingType")? {
        Some("UNIFORM_SCALING") => {}
        other => {
            return Err(ApiError::validation(
                "scalingType",
                &format!("'{}'", other.unwrap_or("null")),
                "Member must satisfy enum value set: [UNIFORM_SCALING]",
            ));
        }
    }
    let arn = gw.arn(&name);
    let stream = name.clone();
    let current = gw
        .blocking(move |store| Ok(store.update_shard_count(&stream, target)?))
        .await?;
    Ok(Out::map([
        ("StreamName", Out::str(name)),
        ("CurrentShardCount", Out::Int(current.into())),
        ("TargetShardCount", Out::Int(target.into())),
        ("StreamARN", Out::str(arn)),
    ]))
}
