use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{ApiError, ErrorCode};
use crate::protocol::Out;
use crate::request::Request;
use crate::server::Gateway;

use super::shard_out;

/// How long a ListShards NextToken stays valid (as in Kinesis).
const TOKEN_TTL_MS: i64 = 300_000;

/// ListShards: pages of shards, continued by a NextToken that alone identifies the stream.
pub fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let limit = req
        .opt_int_in("MaxResults", 1, super::MAX_LIST_LIMIT)?
        .unwrap_or(1000) as usize;
    let (name, created, mut start) = match req.opt_str("NextToken")? {
        Some(token) => {
            if req.has("StreamName") || req.has("StreamARN") || req.has("ExclusiveStartShardId") {
                return Err(ApiError::invalid(
                    "NextToken and StreamName cannot be provided together.",
                ));
            }
            let t = Token::decode(token)?;
            if millrace_stream::now_ms() - t.issued_ms > TOKEN_TTL_MS {
                return Err(ApiError::new(
                    ErrorCode::ExpiredNextToken,
                    format!("NextToken {token} has expired"),
                ));
            }
            (t.stream, Some(t.created_ms), t.next)
        }
        None => (req.stream_name()?, None, 0),
    };
    let stream = gw.store.stream(&name)?;
    if created.is_some_and(|c| c != stream.created_ms()) {
        return Err(ApiError::invalid(format!(
            "NextToken refers to an earlier stream named {name} that was deleted"
        )));
    }
    if let Some(id) = req.opt_str("ExclusiveStartShardId")? {
        start = stream.shard_by_id(id).map(|s| s.index() + 1).unwrap_or(0);
    }
    if let Some(filter) = req.opt_object("ShardFilter")? {
        // Without resharding every shard is open from the trim horizon to the tip, so only
        // AFTER_SHARD_ID narrows the list.
        match filter.get("Type").and_then(|v| v.as_str()) {
            Some("AFTER_SHARD_ID") => {
                let id = filter
                    .get("ShardId")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| {
                        ApiError::invalid("ShardFilter of type AFTER_SHARD_ID requires a ShardId")
                    })?;
                start = start.max(stream.shard_by_id(id).map(|s| s.index() + 1).unwrap_or(0));
            }
            Some(
                "AT_TRIM_HORIZON" | "FROM_TRIM_HORIZON" | "AT_LATEST" | "AT_TIMESTAMP"
                | "FROM_TIMESTAMP",
            ) => {}
            other => {
                return Err(ApiError::validation(
                    "shardFilter.type",
                    &format!("'{}'", other.unwrap_or("null")),
                    "Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, \
                     FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]",
                ));
            }
        }
    }
    let total = stream.shards().len() as u32;
    let end = (start as usize + limit).min(total as usize) as u32;
    let shards: Vec<Out> = (start.min(end)..end)
        .map(|i| shard_out(&stream, i))
        .collect();
    let next_token = if end < total {
        Out::str(
            Token {
                stream: name,
                created_ms: stream.created_ms(),
                next: end,
                issued_ms: millrace_stream::now_ms(),
            }
            .encode(),
        )
    } else {
        Out::Null
    };
    Ok(Out::map([
        ("Shards", Out::List(shards)),
        ("NextToken", next_token),
    ]))
}

struct Token {
    stream: String,
    created_ms: i64,
    next: u32,
    issued_ms: i64,
}

impl Token {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}\n{}\n{}\n{}",
            self.created_ms, self.next, self.issued_ms, self.stream
        ))
    }

    fn decode(token: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::invalid(format!("Invalid NextToken: {token}"));
        let text = URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(bad)?;
        let mut parts = text.splitn(4, '\n');
        let mut next = || parts.next().ok_or_else(bad);
        Ok(Self {
            created_ms: next()?.parse().map_err(|_| bad())?,
            next: next()?.parse().map_err(|_| bad())?,
            issued_ms: next()?.parse().map_err(|_| bad())?,
            stream: next()?.to_owned(),
        })
    }
}
