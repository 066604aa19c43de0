use std::collections::BTreeMap;

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// Kinesis allows 50 tags on a stream and 10 per AddTagsToStream call.
const MAX_TAGS: usize = 50;
const MAX_TAGS_PER_CALL: usize = 10;

pub async fn add(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let map = c.required("Tags", req.opt_object("Tags")?);
    let tags = match map {
        Some(map) if map.is_empty() => {
            c.fail(
                "tags",
                "{}",
                "Member must have length greater than or equal to 1",
            );
            BTreeMap::new()
        }
        Some(map) => parse_tag_map(&mut c, map, MAX_TAGS_PER_CALL),
        None => BTreeMap::new(),
    };
    c.finish()?;
    let name = gw.stream_name(&req)?;
    check_tag_characters(&tags)?;
    let stream = gw.store.stream(&name)?;
    gw.blocking(move |_| stream.add_tags(tags, MAX_TAGS).map_err(ApiError::from))
        .await?;
    Ok(Out::map([]))
}

/// Feeds a `Tags` map member's constraints to `c` (at most `max` entries, keys 1-128 and
/// values 0-256 characters) and returns the tags.
pub(crate) fn parse_tag_map(
    c: &mut Checks,
    map: &serde_json::Map<String, serde_json::Value>,
    max: usize,
) -> BTreeMap<String, String> {
    if map.len() > max {
        c.fail(
            "tags",
            &format!("<{} tags>", map.len()),
            &format!("Member must have length less than or equal to {max}"),
        );
    }
    let mut tags = BTreeMap::new();
    for (k, v) in map {
        c.len("TagKey", k, 1, 128);
        // Types were checked against the model before the operation ran.
        let v = v.as_str().unwrap_or_default();
        c.len("TagValue", v, 0, 256);
        tags.insert(k.clone(), v.to_owned());
    }
    tags
}

/// The characters Kinesis allows in tag keys and values: Unicode letters, digits, white
/// space and `_ . / = + - % @`.
fn is_tag_char(ch: char) -> bool {
    ch.is_alphanumeric() || ch.is_whitespace() || "_./=+-%@".contains(ch)
}

/// Tag rules Kinesis checks beyond the model (`InvalidArgumentException`): keys may not start
/// with the reserved `aws:` prefix (in any case), and keys and values use only
/// [`is_tag_char`] characters.
pub(crate) fn check_tag_characters(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if let Some(k) = tags
        .keys()
        .find(|k| k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")))
    {
        return Err(ApiError::invalid(format!(
            "Tag key '{k}' starts with 'aws:': 'aws:' is a reserved prefix."
        )));
    }
    if let Some((k, v)) = tags
        .iter()
        .find(|(k, v)| !k.chars().chain(v.chars()).all(is_tag_char))
    {
        return Err(ApiError::invalid(format!(
            "Some tags contain invalid characters (tag '{k}' = '{v}'). Valid characters: \
             Unicode letters, digits, white space, _ . / = + - % @"
        )));
    }
    Ok(())
}

pub fn list(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let limit = req.int_in(&mut c, "Limit", 1, MAX_TAGS as i64)?;
    req.str_len(&mut c, "ExclusiveStartTagKey", 1, 128)?;
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let limit = limit.unwrap_or(MAX_TAGS as i64) as usize;
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
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let keys = c.required("TagKeys", req.opt_list("TagKeys")?);
    let keys: Vec<String> = keys
        .into_iter()
        .flatten()
        .map(|k| k.as_str().unwrap_or_default().to_owned())
        .collect();
    if (keys.is_empty() || keys.len() > MAX_TAGS) && req.has("TagKeys") {
        c.fail(
            "tagKeys",
            &format!("<{} keys>", keys.len()),
            &format!("Member must have length between 1 and {MAX_TAGS}"),
        );
    }
    for (i, k) in keys.iter().enumerate() {
        c.len(&format!("tagKeys.{}.member", i + 1), k, 1, 128);
    }
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let stream = gw.store.stream(&name)?;
    gw.blocking(move |_| stream.remove_tags(&keys).map_err(ApiError::from))
        .await?;
    Ok(Out::map([]))
}
