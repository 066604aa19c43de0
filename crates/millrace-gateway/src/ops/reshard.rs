//! SplitShard, MergeShards and UpdateShardCount: the members' model constraints here (every
//! failure in one ValidationException), the shard map change in `millrace_stream`
//! (`reshard.rs`), run off the async threads (it fsyncs).

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

use super::get_shard_iterator::check_shard_id;

const HASH_KEY_PATTERN: &str = "0|([1-9]\\d{0,38})";

fn is_hash_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 39
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
}

/// A required shard id member, checked into `c`.
fn shard_member(req: &Request, c: &mut Checks, field: &str) -> Result<Option<String>, ApiError> {
    let id = c.required(field, req.opt_str(field)?);
    Ok(id
        .filter(|id| check_shard_id(c, field, id))
        .map(str::to_owned))
}

pub async fn split(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let shard = shard_member(&req, &mut c, "ShardToSplit")?;
    let key = c.required("NewStartingHashKey", req.opt_str("NewStartingHashKey")?);
    if let Some(k) = key {
        c.pattern("NewStartingHashKey", k, is_hash_key(k), HASH_KEY_PATTERN);
    }
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let (shard, key) = (shard.expect("checked"), key.expect("checked"));
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
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let shard = shard_member(&req, &mut c, "ShardToMerge")?;
    let adjacent = shard_member(&req, &mut c, "AdjacentShardToMerge")?;
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let (shard, adjacent) = (shard.expect("checked"), adjacent.expect("checked"));
    gw.blocking(move |store| Ok(store.merge_shards(&name, &shard, &adjacent)?))
        .await?;
    Ok(Out::map([]))
}

pub async fn update_shard_count(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let target = req.int_in(&mut c, "TargetShardCount", 1, i64::from(i32::MAX))?;
    let target = c.required("TargetShardCount", target);
    let scaling = c.required("ScalingType", req.opt_str("ScalingType")?);
    if let Some(s) = scaling {
        c.one_of("ScalingType", s, &["UNIFORM_SCALING"]);
    }
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let target = u32::try_from(target.expect("checked")).unwrap_or(u32::MAX);
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
