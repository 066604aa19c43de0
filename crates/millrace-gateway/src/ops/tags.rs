use std::collections::BTreeMap;

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Request, check_len};
use crate::server::Gateway;

/// Kinesis allows 50 tags on a stream and 10 per AddTagsToStream call.
const MAX_TAGS: usize = 50;
const MAX_TAGS_PER_CALL: usize = 10;

pub async fn add(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let name = gw.stream_name(&req)?;
    let map = req
        .opt_object("Tags")?
        .ok_or_else(|| Request::missing("Tags"))?;
    if map.is_empty() {
        return Err(ApiError::validation(
            "tags",
            "{}",
            "Member must have length greater than or equal to 1",
        ));
    }
    let tags = parse_tag_map(map, MAX_TAGS_PER_CALL)?;
    let stream = gw.store.stream(&name)?;
    gw.blocking(move |_| stream.add_tags(tags, MAX_TAGS).map_err(ApiError::from))
        .await?;
    Ok(Out::map([]))
}

/// Validates a `Tags` map member: at most `max` entries, keys 1-128 and values 0-256 chars.
pub(crate) fn parse_tag_map(
    map: &serde_json::Map<String, serde_json::Value>,
    max: usize,
) -> Result<BTreeMap<String, String>, ApiError> {
    if map.len() > max {
        return Err(ApiError::validation(
            "tags",
            &format!("<{} tags>", map.len()),
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    let mut tags = BTreeMap::new();
    for (k, v) in map {
        check_len("TagKey", k, 1, 128)?;
        let v = v
            .as_str()
            .ok_or_else(|| ApiError::serialization(format!("tag {k} must be a string")))?;
        check_len("TagValue", v, 0, 256)?;
        tags.insert(k.clone(), v.to_owned());
    }
    Ok(tags)
}

pub fn list(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let name = gw.stream_name(&req)?;
    let limit = req
        .opt_int_in("Limit", 1, MAX_TAGS as i64)?
        .unwrap_or(MAX_TAGS as i64) as usize;
    let after = req.opt_str("ExclusiveStartTagKey")?;
    let tags = gw.store.stream(&name)?.meta().tags;
    let page: Vec<_> = tags
        .iter()
        .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
        .collect();
    let has_more = page.len() > limit;
    Ok(Out::map([
        (
            "Tags",
            Out::List(
                page.into_iter()
                    .take(limit)
                    .map(|(k, v)| Out::map([("Key", Out::str(k)), ("Value", Out::str(v))]))
                    .collect(),
            ),
        ),
        ("HasMoreTags", Out::Bool(has_more)),
    ]))
}

pub async fn remove(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let name = gw.stream_name(&req)?;
    let keys = req
        .opt_list("TagKeys")?
        .ok_or_else(|| Request::missing("TagKeys"))?;
    if keys.is_empty() || keys.len() > MAX_TAGS {
        return Err(ApiError::validation(
            "tagKeys",
            &format!("<{} keys>", keys.len()),
            &format!("Member must have length between 1 and {MAX_TAGS}"),
        ));
    }
    let keys = keys
        .iter()
        .map(|k| {
            k.as_str()
                .map(str::to_owned)
                .ok_or_else(|| ApiError::serialization("TagKeys must be a list of strings"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stream = gw.store.stream(&name)?;
    gw.blocking(move |_| stream.remove_tags(&keys).map_err(ApiError::from))
        .await?;
    Ok(Out::map([]))
}
