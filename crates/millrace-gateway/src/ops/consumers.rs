//! Enhanced fan-out consumers: RegisterStreamConsumer, DescribeStreamConsumer,
//! ListStreamConsumers and DeregisterStreamConsumer. A consumer lives in its stream's
//! `meta.json` (`StreamMeta.consumers`), changed only through `StreamHandle::update_meta`, so it
//! survives a restart. Its ARN is the stream's with `/consumer/NAME:CREATED_EPOCH_SECONDS`; it
//! is ACTIVE as soon as it is registered (AWS passes through CREATING first, which a client
//! polling for ACTIVE does not notice).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use millrace_stream::{ConsumerMeta, StreamError, StreamHandle};

use super::tags::{check_tag_characters, parse_tag_map};
use crate::arn::{ResourceArn, consumer_arn, parse_resource_arn};
use crate::error::{ApiError, ErrorCode};
use crate::protocol::Out;
use crate::request::{Checks, Request, member};
use crate::server::Gateway;

/// Consumers a stream may have (On-demand Standard and Provisioned streams).
pub(crate) const MAX_CONSUMERS: usize = 20;
/// ListStreamConsumers' page when `MaxResults` is absent, and its largest page.
const LIST_PAGE: usize = 100;
/// A ListStreamConsumers `NextToken` is good for 300 seconds.
const NEXT_TOKEN_TTL_MS: i64 = 300_000;
/// Tags a consumer may be registered with.
const MAX_TAGS: usize = 50;
const CONSUMER_ARN_PATTERN: &str = "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+";

fn is_name(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A `ConsumerName` member's model constraints: 1-128 of `[a-zA-Z0-9_.-]`.
fn check_consumer_name(c: &mut Checks, name: &str) {
    if c.len("ConsumerName", name, 1, 128) {
        c.pattern("ConsumerName", name, is_name(name), "[a-zA-Z0-9_.-]+");
    }
}

/// Whether `arn` has the shape of the model's `ConsumerARN` pattern.
fn looks_like_consumer_arn(arn: &str) -> bool {
    let Some((head, tail)) = arn.split_once(":kinesis:") else {
        return false;
    };
    let Some((path, created)) = tail.rsplit_once(':') else {
        return false;
    };
    let Some((_, consumer)) = path.rsplit_once("/consumer/") else {
        return false;
    };
    head.starts_with("arn:aws")
        && !created.is_empty()
        && created.bytes().all(|b| b.is_ascii_digit())
        && !consumer.is_empty()
        && is_name(consumer)
        && path.contains("stream/")
}

/// A `ConsumerARN` member's model constraints.
pub(crate) fn check_consumer_arn(c: &mut Checks, arn: &str) {
    if c.len("ConsumerARN", arn, 1, 2048) {
        c.pattern(
            "ConsumerARN",
            arn,
            looks_like_consumer_arn(arn),
            CONSUMER_ARN_PATTERN,
        );
    }
}

fn consumer_not_found(gw: &Gateway, what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!(
            "Consumer {what} under account {} not found.",
            gw.store.options().account_id
        ),
    )
}

/// A registered consumer, found.
pub(crate) struct Found {
    pub stream: Arc<StreamHandle>,
    pub stream_name: String,
    pub consumer: ConsumerMeta,
    pub arn: String,
}

/// The consumer an ARN names, if it is registered now (the creation second in the ARN must
/// match: an ARN of a consumer deregistered and registered again names nothing).
pub(crate) fn by_arn(gw: &Gateway, arn: &str) -> Result<Found, ApiError> {
    let parsed = parse_resource_arn(gw.store.options(), arn).map_err(|e| match e.code {
        ErrorCode::ResourceNotFound => consumer_not_found(gw, arn),
        _ => e,
    })?;
    let ResourceArn::Consumer {
        stream,
        consumer,
        created_s,
    } = parsed
    else {
        return Err(ApiError::invalid(format!(
            "{} '{arn}' is not a consumer ARN.",
            member("ConsumerARN")
        )));
    };
    let handle = gw
        .store
        .stream(&stream)
        .map_err(|_| consumer_not_found(gw, arn))?;
    let meta = handle
        .meta()
        .consumer(&consumer)
        .filter(|c| c.created_ms.div_euclid(1000) == created_s)
        .cloned()
        .ok_or_else(|| consumer_not_found(gw, arn))?;
    Ok(Found {
        arn: consumer_arn(&gw.arn(&stream), &meta.name, meta.created_ms),
        stream: handle,
        stream_name: stream,
        consumer: meta,
    })
}

/// DescribeStreamConsumer's and DeregisterStreamConsumer's addressing: a `ConsumerARN`, or a
/// `StreamARN` and a `ConsumerName`, or all three as long as they agree.
fn resolve(gw: &Gateway, req: &Request) -> Result<Found, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let arn = req.opt_str("ConsumerARN")?;
    if let Some(a) = arn {
        check_consumer_arn(&mut c, a);
    }
    let name = req.opt_str("ConsumerName")?;
    if let Some(n) = name {
        check_consumer_name(&mut c, n);
    }
    c.finish()?;
    let stream_arn = req.opt_str("StreamARN")?;
    if let Some(a) = arn {
        let found = by_arn(gw, a)?;
        if stream_arn.is_some_and(|s| s != gw.arn(&found.stream_name))
            || name.is_some_and(|n| n != found.consumer.name)
        {
            return Err(ApiError::invalid(
                "ConsumerARN, StreamARN and ConsumerName name different consumers.",
            ));
        }
        return Ok(found);
    }
    let (Some(_), Some(name)) = (stream_arn, name) else {
        return Err(ApiError::invalid(
            "Either ConsumerARN or both ConsumerName and StreamARN must be provided.",
        ));
    };
    let stream_name = gw.stream_name(req)?;
    let stream = gw.store.stream(&stream_name)?;
    let consumer = stream.meta().consumer(name).cloned().ok_or_else(|| {
        consumer_not_found(gw, &format!("{name} of stream {}", gw.arn(&stream_name)))
    })?;
    Ok(Found {
        arn: consumer_arn(&gw.arn(&stream_name), &consumer.name, consumer.created_ms),
        stream,
        stream_name,
        consumer,
    })
}

fn consumer_out(arn: &str, c: &ConsumerMeta) -> Vec<(&'static str, Out)> {
    vec![
        ("ConsumerName", Out::str(&c.name)),
        ("ConsumerARN", Out::str(arn)),
        ("ConsumerStatus", Out::str("ACTIVE")),
        ("ConsumerCreationTimestamp", Out::Time(c.created_ms)),
    ]
}

pub async fn register(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    c.required("StreamARN", req.opt_str("StreamARN")?);
    req.check_stream(&mut c)?;
    let name = c.required("ConsumerName", req.opt_str("ConsumerName")?);
    if let Some(n) = name {
        check_consumer_name(&mut c, n);
    }
    let tags = match req.opt_object("Tags")? {
        Some(map) => parse_tag_map(&mut c, map, MAX_TAGS),
        None => Default::default(),
    };
    c.finish()?;
    let name = name.expect("checked").to_owned();
    check_tag_characters(&tags)?;
    let stream_name = gw.stream_name(&req)?;
    let stream = gw.store.stream(&stream_name)?;
    let stream_arn = gw.arn(&stream_name);
    let created_ms = millrace_stream::now_ms();
    let consumer = ConsumerMeta {
        name: name.clone(),
        created_ms,
        tags,
    };
    let arn = consumer_arn(&stream_arn, &name, created_ms);
    let limit = stream_arn.clone();
    let stored = consumer.clone();
    // A queue counts as a registered consumer of its stream.
    let queues = gw.queues.on_stream(&stream_name);
    gw.blocking(move |_| {
        stream
            .update_meta(|m| {
                if let Some(old) = m.consumer(&stored.name) {
                    let old_arn = consumer_arn(&stream_arn, &old.name, old.created_ms);
                    return Err(StreamError::ResourceInUse(format!(
                        "Consumer {old_arn} under account {} already exists.",
                        account_of(&stream_arn)
                    )));
                }
                if m.consumers.len() + queues >= MAX_CONSUMERS {
                    return Err(StreamError::LimitExceeded(format!(
                        "Consumer limit of {MAX_CONSUMERS} has been reached for stream {limit}."
                    )));
                }
                m.consumers.push(stored);
                Ok(())
            })
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Out::map([(
        "Consumer",
        Out::Map(consumer_out(&arn, &consumer)),
    )]))
}

fn account_of(stream_arn: &str) -> &str {
    stream_arn.split(':').nth(4).unwrap_or_default()
}

pub fn describe(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let found = resolve(gw, &req)?;
    let mut fields = consumer_out(&found.arn, &found.consumer);
    fields.push(("StreamARN", Out::str(gw.arn(&found.stream_name))));
    Ok(Out::map([("ConsumerDescription", Out::Map(fields))]))
}

pub async fn deregister(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let found = resolve(gw, &req)?;
    let (name, created, arn) = (
        found.consumer.name.clone(),
        found.consumer.created_ms,
        found.arn.clone(),
    );
    let stream = found.stream.clone();
    gw.blocking(move |_| {
        stream
            .update_meta(|m| {
                m.consumers
                    .retain(|c| !(c.name == name && c.created_ms == created));
                m.policies.remove(&arn);
                Ok(())
            })
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Out::map([]))
}

/// A `NextToken`: the stream, its creation, the last name listed and when the token was issued.
fn encode_token(stream: &str, created_ms: i64, last: &str, issued_ms: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{stream}\n{created_ms}\n{last}\n{issued_ms}"))
}

fn decode_token(token: &str) -> Option<(String, i64, String, i64)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut parts = raw.split('\n');
    let stream = parts.next()?.to_owned();
    let created = parts.next()?.parse().ok()?;
    let last = parts.next()?.to_owned();
    let issued = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some((stream, created, last, issued))
}

pub fn list(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    c.required("StreamARN", req.opt_str("StreamARN")?);
    req.check_stream(&mut c)?;
    let max = req.int_in(&mut c, "MaxResults", 1, 10_000)?;
    let token = req.str_len(&mut c, "NextToken", 1, 1_048_576)?;
    let since = req.opt_timestamp_ms("StreamCreationTimestamp")?;
    c.finish()?;
    let limit = max.map_or(LIST_PAGE, |m| (m as usize).min(LIST_PAGE));
    if token.is_some() && since.is_some() {
        return Err(ApiError::invalid(
            "NextToken and StreamCreationTimestamp cannot be provided together.",
        ));
    }
    let stream_name = gw.stream_name(&req)?;
    let stream = gw.store.stream(&stream_name)?;
    let created = stream.created_ms();
    if since.is_some_and(|ms| ms.div_euclid(1000) != created.div_euclid(1000)) {
        return Err(StreamError::StreamNotFound(stream_name).into());
    }
    let now = millrace_stream::now_ms();
    let after = match token {
        None => None,
        Some(t) => {
            let (_, _, last, issued) = decode_token(t)
                .filter(|(s, c, ..)| *s == stream_name && *c == created)
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
    let stream_arn = gw.arn(&stream_name);
    let mut consumers = stream.meta().consumers;
    consumers.sort_by(|a, b| a.name.cmp(&b.name));
    let rest: Vec<_> = consumers
        .into_iter()
        .filter(|c| after.as_deref().is_none_or(|a| c.name.as_str() > a))
        .collect();
    let more = rest.len() > limit;
    let page = &rest[..rest.len().min(limit)];
    let next = match (more, page.last()) {
        (true, Some(last)) => Out::str(encode_token(&stream_name, created, &last.name, now)),
        _ => Out::Null,
    };
    let items = page
        .iter()
        .map(|c| {
            Out::Map(consumer_out(
                &consumer_arn(&stream_arn, &c.name, c.created_ms),
                c,
            ))
        })
        .collect();
    Ok(Out::map([
        ("Consumers", Out::List(items)),
        ("NextToken", next),
    ]))
}
