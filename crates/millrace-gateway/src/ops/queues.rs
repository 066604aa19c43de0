//! Queues, the control plane: CreateQueue, DescribeQueue, ListQueues, UpdateQueue and
//! DeleteQueue over `millrace-queue`'s [`Queues`](millrace_queue::Queues).
//!
//! A queue's ARN is `arn:aws:kinesis:REGION:ACCOUNT:queue/ID`, the id generated at creation
//! (AWS: "not derived from QueueName"). CreateQueue answers CREATING and UpdateQueue UPDATING,
//! as the operations are documented to; the change is complete when they answer, so every
//! later call sees ACTIVE.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use millrace_queue::{
    Attributes, DeadLetter, NewQueue, Queue, QueueConfig, StartKind, StartingPosition,
};
use serde_json::{Map, Value};

use super::consumers::MAX_CONSUMERS;
use super::tags::{check_tag_characters, parse_tag_map};
use crate::error::{ApiError, ErrorCode};
use crate::protocol::Out;
use crate::request::{Checks, Request, stream_of_arn};
use crate::server::Gateway;

const QUEUE_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:queue/\\S+";
const STREAM_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+";
/// ListQueues' page when `MaxResults` is absent, and its largest page.
const LIST_PAGE: usize = 100;
const NEXT_TOKEN_TTL_MS: i64 = 300_000;
const MAX_TAGS: usize = 50;

fn is_queue_name(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Whether `arn` has the shape of the model's `QueueARN` pattern.
fn looks_like_queue_arn(arn: &str) -> bool {
    let Some(rest) = arn.strip_prefix("arn:aws") else {
        return false;
    };
    let Some((head, id)) = rest.rsplit_once(":queue/") else {
        return false;
    };
    let Some((_, account)) = head.rsplit_once(':') else {
        return false;
    };
    head.contains(":kinesis:")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !id.is_empty()
        && !id.chars().any(char::is_whitespace)
}

/// A `QueueARN` member's model constraints.
pub(crate) fn check_queue_arn(c: &mut Checks, arn: &str) {
    if c.len("QueueARN", arn, 1, 2048) {
        c.pattern(
            "QueueARN",
            arn,
            looks_like_queue_arn(arn),
            QUEUE_ARN_PATTERN,
        );
    }
}

pub(crate) fn queue_arn(gw: &Gateway, id: &str) -> String {
    let o = gw.store.options();
    format!("arn:aws:kinesis:{}:{}:queue/{id}", o.region, o.account_id)
}

fn queue_not_found(gw: &Gateway, arn: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!(
            "Queue {arn} under account {} not found.",
            gw.store.options().account_id
        ),
    )
}

/// The queue a (checked) `QueueARN` names; one of another account or region names nothing.
pub(crate) fn by_arn(gw: &Gateway, arn: &str) -> Result<Arc<Queue>, ApiError> {
    let o = gw.store.options();
    let prefix = format!("arn:aws:kinesis:{}:{}:queue/", o.region, o.account_id);
    let id = arn
        .strip_prefix(&prefix)
        .ok_or_else(|| queue_not_found(gw, arn))?;
    gw.queues.get(id).map_err(|_| queue_not_found(gw, arn))
}

/// The checked `QueueARN` of a request and its queue.
pub(crate) fn queue_of(gw: &Gateway, req: &Request, c: Checks) -> Result<Arc<Queue>, ApiError> {
    let mut c = c;
    let arn = c.required("QueueARN", req.opt_str("QueueARN")?);
    if let Some(a) = arn {
        check_queue_arn(&mut c, a);
    }
    c.finish()?;
    by_arn(gw, arn.expect("checked"))
}

/// A stream ARN member (nested in a list), checked; the stream's name when it is this
/// server's account and region.
fn check_stream_arn(c: &mut Checks, path: &str, arn: &str) -> bool {
    c.len(path, arn, 1, 2048)
        && c.pattern(path, arn, stream_of_arn(arn).is_some(), STREAM_ARN_PATTERN)
}

fn local_stream(gw: &Gateway, arn: &str) -> Result<String, ApiError> {
    let name = stream_of_arn(arn).unwrap_or_default();
    if gw.arn(name) != arn {
        return Err(millrace_stream::StreamError::StreamNotFound(name.to_owned()).into());
    }
    Ok(name.to_owned())
}

/// `QueueAttributes`: its members checked; `base` fills what it leaves out.
fn parse_attributes(
    c: &mut Checks,
    attrs: &Map<String, Value>,
    base: Attributes,
) -> Result<Attributes, ApiError> {
    let mut out = base;
    if let Some(v) = attrs
        .get("VisibilityTimeoutSeconds")
        .and_then(Value::as_i64)
        && c.range("QueueAttributes.VisibilityTimeoutSeconds", v, 0, 43_200)
    {
        out.visibility_timeout_s = v as u32;
    }
    let Some(dl) = attrs
        .get("DeadLetterConfiguration")
        .and_then(Value::as_object)
    else {
        return Ok(out);
    };
    let target = dl.get("TargetType").and_then(Value::as_str);
    let target = c.required("QueueAttributes.DeadLetterConfiguration.TargetType", target);
    let max = dl.get("MaxReceiveCount").and_then(Value::as_i64);
    if let Some(m) = max {
        c.range(
            "QueueAttributes.DeadLetterConfiguration.MaxReceiveCount",
            m,
            1,
            1000,
        );
    }
    let Some(target) = target else {
        return Ok(out);
    };
    if !c.one_of(
        "QueueAttributes.DeadLetterConfiguration.TargetType",
        target,
        &["BUILT_IN", "NONE"],
    ) {
        return Ok(out);
    }
    out.dead_letter = match (target, max) {
        ("BUILT_IN", Some(m)) => DeadLetter::BuiltIn {
            max_receive_count: m.clamp(1, 1000) as u32,
        },
        ("BUILT_IN", None) => {
            c.later(ApiError::invalid(
                "MaxReceiveCount is required when DeadLetterConfiguration.TargetType is BUILT_IN.",
            ));
            out.dead_letter
        }
        (_, Some(_)) => {
            c.later(ApiError::invalid(
                "MaxReceiveCount applies only when DeadLetterConfiguration.TargetType is BUILT_IN.",
            ));
            out.dead_letter
        }
        _ => DeadLetter::None,
    };
    Ok(out)
}

/// The one `QueueStreamConfiguration` of CreateQueue: its stream ARN and starting position.
fn parse_stream_configuration(
    req: &Request,
    c: &mut Checks,
    list: &[Value],
) -> Result<Option<(String, StartingPosition)>, ApiError> {
    let n = list.len();
    if n == 0 || n > 10_000 {
        c.fail(
            "streamConfigurationList",
            &format!("'<{n} entries>'"),
            if n == 0 {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 10000"
            },
        );
        return Ok(None);
    }
    let mut first = None;
    for (i, item) in list.iter().enumerate() {
        let path = format!("StreamConfigurationList.{}.member", i + 1);
        let obj = item.as_object();
        let arn = obj.and_then(|o| o.get("StreamARN")).and_then(Value::as_str);
        let arn = c.required(&format!("{path}.StreamARN"), arn);
        let arn_ok = arn.is_some_and(|a| check_stream_arn(c, &format!("{path}.StreamARN"), a));
        let mut start = StartingPosition {
            kind: StartKind::Latest,
            timestamp_ms: None,
        };
        if let Some(sp) = obj
            .and_then(|o| o.get("StartingPosition"))
            .and_then(Value::as_object)
        {
            let kind = sp.get("Type").and_then(Value::as_str);
            let kind = c.required(&format!("{path}.StartingPosition.Type"), kind);
            let ts = match sp.get("Timestamp").filter(|v| !v.is_null()) {
                Some(v) => Some(req.timestamp_ms("Timestamp", v)?),
                None => None,
            };
            if let Some(k) = kind
                && c.one_of(
                    &format!("{path}.StartingPosition.Type"),
                    k,
                    &["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"],
                )
            {
                start.kind = match k {
                    "TRIM_HORIZON" => StartKind::TrimHorizon,
                    "AT_TIMESTAMP" => StartKind::AtTimestamp,
                    _ => StartKind::Latest,
                };
                match (start.kind, ts) {
                    (StartKind::AtTimestamp, None) => c.fail(
                        &format!("{path}.StartingPosition.Timestamp"),
                        "null",
                        "Member must not be null when Type is AT_TIMESTAMP",
                    ),
                    (StartKind::AtTimestamp, Some(_)) => {}
                    (_, Some(t)) => c.fail(
                        &format!("{path}.StartingPosition.Timestamp"),
                        &format!("'{t}'"),
                        "Member must be null unless Type is AT_TIMESTAMP",
                    ),
                    _ => {}
                }
                start.timestamp_ms = ts;
            }
        }
        if i == 0 && arn_ok {
            first = arn.map(|a| (a.to_owned(), start));
        }
    }
    if n != 1 {
        c.later(ApiError::invalid(format!(
            "StreamConfigurationList must contain exactly one entry (a queue reads one stream); it has {n}."
        )));
    }
    Ok(first)
}

fn attributes_out(a: &Attributes) -> Out {
    let dl = match a.dead_letter {
        DeadLetter::BuiltIn { max_receive_count } => Out::map([
            ("TargetType", Out::str("BUILT_IN")),
            ("MaxReceiveCount", Out::Int(max_receive_count.into())),
        ]),
        DeadLetter::None => Out::map([("TargetType", Out::str("NONE"))]),
    };
    Out::map([
        (
            "VisibilityTimeoutSeconds",
            Out::Int(a.visibility_timeout_s.into()),
        ),
        ("DeadLetterConfiguration", dl),
    ])
}

/// A `QueueDescription`. `start_ms` is the starting position's `Timestamp`: the effective one
/// once ACTIVE; while CREATING, AT_TIMESTAMP's as requested and none for the others.
fn description(gw: &Gateway, q: &QueueConfig, status: &str, start_ms: Option<i64>) -> Out {
    let start = match start_ms {
        Some(ms) => Out::map([
            ("Type", Out::str(q.start.kind.as_str())),
            ("Timestamp", Out::Time(ms)),
        ]),
        None => Out::map([("Type", Out::str(q.start.kind.as_str()))]),
    };
    Out::map([
        ("QueueName", Out::str(&q.name)),
        ("QueueARN", Out::str(queue_arn(gw, &q.id))),
        ("QueueStatus", Out::str(status)),
        ("QueueCreationTimestamp", Out::Time(q.created_ms)),
        (
            "StreamConfigurationList",
            Out::List(vec![Out::map([
                ("StreamARN", Out::str(gw.arn(&q.stream))),
                ("StartingPosition", start),
            ])]),
        ),
        ("QueueAttributes", attributes_out(&q.attributes)),
    ])
}

pub async fn create(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let name = c.required("QueueName", req.opt_str("QueueName")?);
    if let Some(n) = name
        && c.len("QueueName", n, 1, 128)
    {
        c.pattern("QueueName", n, is_queue_name(n), "[a-zA-Z0-9_.-]+");
    }
    let list = c.required(
        "StreamConfigurationList",
        req.opt_list("StreamConfigurationList")?,
    );
    let stream = match list {
        Some(l) => parse_stream_configuration(&req, &mut c, l)?,
        None => None,
    };
    let attributes = match req.opt_object("QueueAttributes")? {
        Some(a) => parse_attributes(&mut c, a, Attributes::default())?,
        None => Attributes::default(),
    };
    let tags = match req.opt_object("Tags")? {
        Some(map) => parse_tag_map(&mut c, map, MAX_TAGS),
        None => Default::default(),
    };
    c.finish()?;
    check_tag_characters(&tags)?;
    let (stream_arn, start) = stream.expect("checked");
    let new = NewQueue {
        name: name.expect("checked").to_owned(),
        stream: local_stream(gw, &stream_arn)?,
        start,
        attributes,
        tags,
    };
    let queues = gw.queues.clone();
    let queue = gw
        .blocking(move |_| queues.create(new, MAX_CONSUMERS).map_err(ApiError::from))
        .await?;
    let config = queue.config();
    Ok(Out::map([(
        "QueueDescription",
        description(gw, &config, "CREATING", config.start.timestamp_ms),
    )]))
}

/// DescribeQueue. Beside the model's members, `QueueRecordCounts` (a millrace extension, which
/// SDKs skip as an unknown member) gives the records visible, in flight and dead letters now.
pub fn describe(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let queue = queue_of(gw, &req, Checks::new())?;
    let config = queue.config();
    let mut d = description(gw, &config, "ACTIVE", Some(config.effective_start_ms));
    if let Out::Map(fields) = &mut d {
        let n = queue.counts();
        fields.push((
            "QueueRecordCounts",
            Out::map([
                ("Visible", Out::Int(n.visible as i64)),
                ("InFlight", Out::Int(n.in_flight as i64)),
                ("DeadLetter", Out::Int(n.dead_letter as i64)),
            ]),
        ));
    }
    Ok(Out::map([("QueueDescription", d)]))
}

pub async fn update(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let attrs = c.required("QueueAttributes", req.opt_object("QueueAttributes")?);
    let arn = c.required("QueueARN", req.opt_str("QueueARN")?);
    if let Some(a) = arn {
        check_queue_arn(&mut c, a);
    }
    // Checked against the defaults first so every constraint is reported before the lookup.
    let probe = match attrs {
        Some(a) => Some(parse_attributes(&mut c, a, Attributes::default())?),
        None => None,
    };
    c.finish()?;
    let _ = probe;
    let queue = by_arn(gw, arn.expect("checked"))?;
    let mut again = Checks::new();
    let attributes = parse_attributes(
        &mut again,
        attrs.expect("checked"),
        queue.config().attributes,
    )?;
    again.finish()?;
    let (queues, id) = (gw.queues.clone(), queue.id());
    let config = gw
        .blocking(move |_| queues.update(&id, attributes).map_err(ApiError::from))
        .await?;
    Ok(Out::map([(
        "QueueDescription",
        description(gw, &config, "UPDATING", Some(config.effective_start_ms)),
    )]))
}

pub async fn delete(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let queue = queue_of(gw, &req, Checks::new())?;
    let (queues, id) = (gw.queues.clone(), queue.id());
    gw.blocking(move |_| queues.delete(&id).map_err(ApiError::from))
        .await?;
    Ok(Out::map([]))
}

/// A `NextToken`: the last name listed and when the token was issued.
fn encode_token(last: &str, issued_ms: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("queues\n{last}\n{issued_ms}"))
}

fn decode_token(token: &str) -> Option<(String, i64)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut parts = raw.split('\n');
    (parts.next()? == "queues").then_some(())?;
    let last = parts.next()?.to_owned();
    let issued = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((last, issued))
}

/// ListQueues' `StreamFilter`: the streams (and creation times) to keep.
fn parse_stream_filter(
    req: &Request,
    c: &mut Checks,
    list: &[Value],
) -> Result<Vec<(String, Option<i64>)>, ApiError> {
    if list.is_empty() || list.len() > 10_000 {
        c.fail(
            "streamFilter",
            &format!("'<{} entries>'", list.len()),
            "Member must have length between 1 and 10000",
        );
    }
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let path = format!("StreamFilter.{}.member.StreamARN", i + 1);
        let obj = item.as_object();
        let arn = c.required(
            &path,
            obj.and_then(|o| o.get("StreamARN")).and_then(Value::as_str),
        );
        let created = match obj
            .and_then(|o| o.get("StreamCreationTimestamp"))
            .filter(|v| !v.is_null())
        {
            Some(v) => Some(req.timestamp_ms("StreamCreationTimestamp", v)?),
            None => None,
        };
        if let Some(a) = arn
            && check_stream_arn(c, &path, a)
        {
            out.push((a.to_owned(), created));
        }
    }
    Ok(out)
}

pub fn list(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let max = req.int_in(&mut c, "MaxResults", 1, 10_000)?;
    let token = req.str_len(&mut c, "NextToken", 1, 1_048_576)?;
    let filter = match req.opt_list("StreamFilter")? {
        Some(l) => Some(parse_stream_filter(&req, &mut c, l)?),
        None => None,
    };
    c.finish()?;
    let limit = max.map_or(LIST_PAGE, |m| (m as usize).min(LIST_PAGE));
    let now = millrace_stream::now_ms();
    let after = match token {
        None => None,
        Some(t) => {
            let (last, issued) = decode_token(t)
                .ok_or_else(|| ApiError::invalid(format!("Invalid NextToken: {t}")))?;
            if now - issued > NEXT_TOKEN_TTL_MS {
                return Err(ApiError::new(
                    ErrorCode::ExpiredNextToken,
                    format!("The NextToken {t} has expired."),
                ));
            }
            Some(last)
        }
    };
    let keep = |q: &QueueConfig| {
        filter.as_ref().is_none_or(|f| {
            f.iter().any(|(arn, created)| {
                *arn == gw.arn(&q.stream)
                    && created.is_none_or(|ms| {
                        ms.div_euclid(1000) == q.stream_created_ms.div_euclid(1000)
                    })
            })
        })
    };
    let rest: Vec<QueueConfig> = gw
        .queues
        .list()
        .iter()
        .map(|q| q.config())
        .filter(|q| keep(q) && after.as_deref().is_none_or(|a| q.name.as_str() > a))
        .collect();
    let more = rest.len() > limit;
    let page = &rest[..rest.len().min(limit)];
    let items = page
        .iter()
        .map(|q| {
            Out::map([
                ("QueueName", Out::str(&q.name)),
                ("QueueARN", Out::str(queue_arn(gw, &q.id))),
                ("QueueStatus", Out::str("ACTIVE")),
                ("QueueCreationTimestamp", Out::Time(q.created_ms)),
                (
                    "Streams",
                    Out::List(vec![Out::map([
                        ("StreamARN", Out::str(gw.arn(&q.stream))),
                        ("StreamCreationTimestamp", Out::Time(q.stream_created_ms)),
                    ])]),
                ),
            ])
        })
        .collect();
    let next = match (more, page.last()) {
        (true, Some(last)) => Out::str(encode_token(&last.name, now)),
        _ => Out::Null,
    };
    Ok(Out::map([
        ("QueueSummaries", Out::List(items)),
        ("NextToken", next),
    ]))
}
