//! TagResource, UntagResource and ListTagsForResource: tags of a stream (`StreamMeta.tags`,
//! the same ones AddTagsToStream sets) or of a consumer (`ConsumerMeta.tags`), by ARN.

use millrace_stream::StreamError;

use super::resources;
use super::tags::{check_tag_characters, parse_tag_map};
use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// Kinesis allows 50 tags on a resource.
const MAX_TAGS: usize = 50;
/// The model's bounds of one request's `TagMap` and `TagKeyList`.
const MAX_TAGS_PER_TAG_CALL: usize = 200;
const MAX_KEYS_PER_UNTAG_CALL: usize = 50;

pub async fn tag(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    resources::check(&mut c, &req)?;
    let tags = match c.required("Tags", req.opt_object("Tags")?) {
        Some(map) if map.is_empty() => {
            c.fail(
                "tags",
                "{}",
                "Member must have length greater than or equal to 1",
            );
            Default::default()
        }
        Some(map) => parse_tag_map(&mut c, map, MAX_TAGS_PER_TAG_CALL),
        None => Default::default(),
    };
    c.finish()?;
    check_tag_characters(&tags)?;
    let r = resources::find(gw, &req)?;
    gw.blocking(move |_| {
        let arn = r.arn.clone();
        r.update_tags(|t| {
            t.extend(tags);
            if t.len() > MAX_TAGS {
                return Err(StreamError::InvalidArgument(format!(
                    "Failed to tag resource {arn} because the request would cause it to exceed \
                     the maximum allowed number of tags ({MAX_TAGS})."
                )));
            }
            Ok(())
        })
    })
    .await?;
    Ok(Out::map([]))
}

pub async fn untag(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    resources::check(&mut c, &req)?;
    let keys: Vec<String> = c
        .required("TagKeys", req.opt_list("TagKeys")?)
        .into_iter()
        .flatten()
        // Types were checked against the model before the operation ran.
        .map(|k| k.as_str().unwrap_or_default().to_owned())
        .collect();
    if req.has("TagKeys") {
        if keys.is_empty() {
            c.fail(
                "tagKeys",
                "[]",
                "Member must have length greater than or equal to 1",
            );
        } else if keys.len() > MAX_KEYS_PER_UNTAG_CALL {
            c.fail(
                "tagKeys",
                &format!("<{} keys>", keys.len()),
                &format!("Member must have length less than or equal to {MAX_KEYS_PER_UNTAG_CALL}"),
            );
        }
    }
    for (i, k) in keys.iter().enumerate() {
        c.len(&format!("tagKeys.{}.member", i + 1), k, 1, 128);
    }
    c.finish()?;
    let r = resources::find(gw, &req)?;
    gw.blocking(move |_| {
        r.update_tags(|t| {
            for k in &keys {
                t.remove(k);
            }
            Ok(())
        })
    })
    .await?;
    Ok(Out::map([]))
}

pub fn list(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    resources::check(&mut c, &req)?;
    c.finish()?;
    let r = resources::find(gw, &req)?;
    let tags = r
        .tags()
        .into_iter()
        .map(|(k, v)| Out::map([("Key", Out::str(k)), ("Value", Out::str(v))]))
        .collect();
    Ok(Out::map([("Tags", Out::List(tags))]))
}
