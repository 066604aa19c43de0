use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{ApiError, ErrorCode};
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

use millrace_stream::ShardMeta;

use super::shards::shard_out;

/// How long a ListShards NextToken stays valid (as in Kinesis).
const TOKEN_TTL_MS: i64 = 300_000;

/// ListShards: pages of shards, continued by a NextToken that alone identifies the stream
/// and the filter.
pub fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let limit = req.int_in(&mut c, "MaxResults", 1, super::MAX_LIST_LIMIT)?;
    req.str_len(&mut c, "NextToken", 1, 1_048_576)?;
    if let Some(id) = req.opt_str("ExclusiveStartShardId")? {
        super::get_shard_iterator::check_shard_id(&mut c, "ExclusiveStartShardId", id);
    }
    if let Some(filter) = req.opt_object("ShardFilter")? {
        let kind = filter.get("Type").and_then(|v| v.as_str());
        if let Some(kind) = c.required("ShardFilter.Type", kind) {
            c.one_of("ShardFilter.Type", kind, &FILTER_TYPES);
        }
        if let Some(id) = filter.get("ShardId").and_then(|v| v.as_str()) {
            super::get_shard_iterator::check_shard_id(&mut c, "ShardFilter.ShardId", id);
        }
    }
    c.finish()?;
    let limit = limit.unwrap_or(1000) as usize;
    let (name, created, mut start, filter) = match req.opt_str("NextToken")? {
        Some(token) => {
            if req.has("StreamName")
                || req.has("StreamARN")
                || req.has("ExclusiveStartShardId")
                || req.has("ShardFilter")
            {
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
            (t.stream, Some(t.created_ms), t.next, t.filter)
        }
        None => (gw.stream_name(&req)?, None, 0, Filter::parse(&req)?),
    };
    let stream = gw.store.stream(&name)?;
    if created.is_some_and(|c| c != stream.created_ms()) {
        return Err(ApiError::invalid(format!(
            "NextToken refers to an earlier stream named {name} that was deleted"
        )));
    }
    if let Some(id) = req.opt_str("ExclusiveStartShardId")? {
        start = start.max(after_id(id));
    }
    if let Filter::AfterShardId(id) = &filter {
        start = start.max(after_id(id));
    }
    let meta = stream.meta();
    let now = millrace_stream::now_ms();
    let trim_ms = (now - i64::from(meta.retention_hours) * 3_600_000).max(meta.created_ms);
    let mut matching =
        super::shards::listed(&meta, now).filter(|s| s.index >= start && filter.keeps(s, trim_ms));
    let shards: Vec<Out> = matching
        .by_ref()
        .take(limit)
        .map(|s| shard_out(&stream, s))
        .collect();
    let next_token = match matching.next() {
        Some(next) => Out::str(
            Token {
                stream: name,
                created_ms: stream.created_ms(),
                next: next.index,
                issued_ms: now,
                filter,
            }
            .encode(),
        ),
        None => Out::Null,
    };
    Ok(Out::map([
        ("Shards", Out::List(shards)),
        ("NextToken", next_token),
    ]))
}

/// The first index after shard `id` (ids sort by index; an unknown id sorts by its number).
fn after_id(id: &str) -> u32 {
    millrace_stream::parse_shard_id(id).map_or(0, |i| i.saturating_add(1))
}

/// The model's `ShardFilterType` enum.
const FILTER_TYPES: [&str; 6] = [
    "AFTER_SHARD_ID",
    "AT_TRIM_HORIZON",
    "FROM_TRIM_HORIZON",
    "AT_LATEST",
    "AT_TIMESTAMP",
    "FROM_TIMESTAMP",
];

/// ListShards' `ShardFilter`.
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    FromTrimHorizon,
    AtTrimHorizon,
    AtLatest,
    AfterShardId(String),
    AtTimestamp(i64),
    FromTimestamp(i64),
}

impl Filter {
    fn parse(req: &Request) -> Result<Self, ApiError> {
        let Some(filter) = req.opt_object("ShardFilter")? else {
            return Ok(Self::FromTrimHorizon);
        };
        let kind = filter.get("Type").and_then(|v| v.as_str());
        let shard_id = filter.get("ShardId").and_then(|v| v.as_str());
        let ts = match filter.get("Timestamp") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(req.timestamp_ms("ShardFilter.Timestamp", v)?),
        };
        if shard_id.is_some() && kind != Some("AFTER_SHARD_ID") {
            return Err(ApiError::invalid(
                "ShardId can only be specified in the ShardFilter with type AFTER_SHARD_ID.",
            ));
        }
        if ts.is_some() && !matches!(kind, Some("AT_TIMESTAMP" | "FROM_TIMESTAMP")) {
            return Err(ApiError::invalid(
                "Timestamp can only be specified in the ShardFilter with type AT_TIMESTAMP or \
                 FROM_TIMESTAMP.",
            ));
        }
        let need_ts = |k: &str| {
            ts.ok_or_else(|| {
                ApiError::invalid(format!(
                    "Timestamp must be specified in the ShardFilter with type {k}."
                ))
            })
        };
        Ok(match kind {
            Some("AFTER_SHARD_ID") => Self::AfterShardId(
                shard_id
                    .ok_or_else(|| {
                        ApiError::invalid("ShardFilter of type AFTER_SHARD_ID requires a ShardId")
                    })?
                    .to_owned(),
            ),
            Some("AT_TRIM_HORIZON") => Self::AtTrimHorizon,
            Some("FROM_TRIM_HORIZON") => Self::FromTrimHorizon,
            Some("AT_LATEST") => Self::AtLatest,
            Some("AT_TIMESTAMP") => {
                let t = need_ts("AT_TIMESTAMP")?;
                super::get_shard_iterator::not_in_the_future(t)?;
                Self::AtTimestamp(t)
            }
            Some("FROM_TIMESTAMP") => Self::FromTimestamp(need_ts("FROM_TIMESTAMP")?),
            other => {
                return Err(ApiError::validation(
                    "shardFilter.type",
                    &format!("'{}'", other.unwrap_or("null")),
                    "Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, \
                     FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]",
                ));
            }
        })
    }

    /// Whether shard `s` passes; `trim_ms` is the oldest time still retained.
    fn keeps(&self, s: &ShardMeta, trim_ms: i64) -> bool {
        let open_at = |t: i64| s.opened_ms <= t && s.closed.is_none_or(|e| e.closed_ms >= t);
        match self {
            Self::FromTrimHorizon | Self::AfterShardId(_) => true,
            Self::AtLatest => s.is_open(),
            Self::AtTrimHorizon => open_at(trim_ms),
            Self::AtTimestamp(t) => open_at(*t),
            Self::FromTimestamp(t) => s.closed.is_none_or(|e| e.closed_ms >= (*t).max(trim_ms)),
        }
    }

    fn encode(&self) -> String {
        match self {
            Self::FromTrimHorizon => "F".into(),
            Self::AtTrimHorizon => "T".into(),
            Self::AtLatest => "L".into(),
            Self::AfterShardId(id) => format!("A{id}"),
            Self::AtTimestamp(t) => format!("@{t}"),
            Self::FromTimestamp(t) => format!(">{t}"),
        }
    }

    fn decode(s: &str) -> Option<Self> {
        let (kind, rest) = s.split_at_checked(1)?;
        Some(match kind {
            "F" => Self::FromTrimHorizon,
            "T" => Self::AtTrimHorizon,
            "L" => Self::AtLatest,
            "A" => Self::AfterShardId(rest.to_owned()),
            "@" => Self::AtTimestamp(rest.parse().ok()?),
            ">" => Self::FromTimestamp(rest.parse().ok()?),
            _ => return None,
        })
    }
}

struct Token {
    stream: String,
    created_ms: i64,
    next: u32,
    issued_ms: i64,
    filter: Filter,
}

impl Token {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}\n{}\n{}\n{}\n{}",
            self.created_ms,
            self.next,
            self.issued_ms,
            self.filter.encode(),
            self.stream
        ))
    }

    fn decode(token: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::invalid(format!("Invalid NextToken: {token}"));
        let text = URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(bad)?;
        let mut parts = text.splitn(5, '\n');
        let mut next = || parts.next().ok_or_else(bad);
        Ok(Self {
            created_ms: next()?.parse().map_err(|_| bad())?,
            next: next()?.parse().map_err(|_| bad())?,
            issued_ms: next()?.parse().map_err(|_| bad())?,
            filter: Filter::decode(next()?).ok_or_else(bad)?,
            stream: next()?.to_owned(),
        })
    }
}
