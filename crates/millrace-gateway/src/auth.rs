//! Identities on the Kinesis listener: every request (Kinesis, and the services beside it such
//! as Firehose) is authenticated by its SigV4 signature and authorized against its principal's
//! IAM policies and the resource's own policy, before any operation runs. The rules live in
//! `millrace-auth`; this module finds what they need in a request: the action
//! (`kinesis:PutRecords`), the resource ARN the body names, the client's address. The
//! signature is checked as soon as the body is read ([`authenticate`]); the policies once the
//! body is parsed ([`authorize`]), from the names the operation's own parse found, so the
//! PutRecords hot path reads its body once.

use std::borrow::Cow;

use axum::http::request::Parts;
use millrace_auth::{Caller, HttpRequest};
use serde::Deserialize;

use crate::error::ApiError;
use crate::server::{Gateway, Service};

/// The members that name a request's resource, read without the rest of the body.
#[derive(Debug, Default, Deserialize)]
pub struct ResourceNames<'a> {
    #[serde(rename = "StreamName", borrow, default)]
    pub stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "StreamARN", borrow, default)]
    pub stream_arn: Option<Cow<'a, str>>,
    #[serde(rename = "ConsumerARN", borrow, default)]
    pub consumer_arn: Option<Cow<'a, str>>,
    #[serde(rename = "ResourceARN", borrow, default)]
    pub resource_arn: Option<Cow<'a, str>>,
    #[serde(rename = "DeliveryStreamName", borrow, default)]
    pub delivery_stream_name: Option<Cow<'a, str>>,
}

impl<'a> ResourceNames<'a> {
    /// The names in a decoded body (the general path's fields).
    pub fn from_fields(fields: &'a serde_json::Map<String, serde_json::Value>) -> Self {
        let get = |k: &str| {
            fields
                .get(k)
                .and_then(serde_json::Value::as_str)
                .map(Cow::Borrowed)
        };
        Self {
            stream_name: get("StreamName"),
            stream_arn: get("StreamARN"),
            consumer_arn: get("ConsumerARN"),
            resource_arn: get("ResourceARN"),
            delivery_stream_name: get("DeliveryStreamName"),
        }
    }

    /// The names in a JSON body, read by a pass that skips everything else; none when it does
    /// not parse.
    pub fn read_json(body: &'a [u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }
}

/// Checks the request's signature (for Kinesis, or `service`'s signing name). `None` when
/// the gateway has no identities (`mode = "off"`): nothing to authorize either.
pub(crate) fn authenticate(
    gw: &Gateway,
    parts: &Parts,
    body: &[u8],
    service: Option<&dyn Service>,
) -> Result<Option<Caller>, ApiError> {
    let Some(auth) = &gw.auth else {
        return Ok(None);
    };
    let client = parts.extensions.get::<millrace_http::Client>();
    let req = HttpRequest::from_parts(parts, body);
    let signing_name = service.map_or("kinesis", |s| s.signing_name());
    let caller = auth.authenticate(
        &req,
        signing_name,
        client.map(|c| c.addr.ip()),
        client.is_some_and(|c| c.tls),
    )?;
    Ok(Some(caller))
}

/// Checks that `caller` may perform `op` (of `service`, or Kinesis) on the resource `names`
/// name, with that resource's own policy. Passes when there is no caller (`mode = "off"`).
pub(crate) fn authorize(
    gw: &Gateway,
    caller: Option<&Caller>,
    op: &str,
    service: Option<&dyn Service>,
    names: &ResourceNames,
) -> Result<(), ApiError> {
    let (Some(auth), Some(caller)) = (&gw.auth, caller) else {
        return Ok(());
    };
    let (action, resource) = match service {
        Some(s) => (
            format!("{}:{op}", s.signing_name()),
            s.resource_arn(op, names),
        ),
        None => (format!("kinesis:{op}"), kinesis_resource(gw, names)),
    };
    let policy = service
        .is_none()
        .then(|| resource_policy(gw, &resource))
        .flatten();
    auth.authorize(caller, &action, &resource, policy.as_deref())?;
    Ok(())
}

/// The ARN a Kinesis request acts on: its consumer, its `ResourceARN`, its stream (by ARN or
/// name), or `*` for account-wide operations (ListStreams, DescribeLimits).
fn kinesis_resource(gw: &Gateway, names: &ResourceNames) -> String {
    if let Some(arn) = names.consumer_arn.as_deref() {
        return arn.to_owned();
    }
    if let Some(arn) = names.resource_arn.as_deref() {
        return arn.to_owned();
    }
    if let Some(arn) = names.stream_arn.as_deref() {
        return arn.to_owned();
    }
    match names.stream_name.as_deref() {
        Some(name) => gw.arn(name),
        None => "*".into(),
    }
}

/// The resource policy PutResourcePolicy attached to a stream or consumer ARN, if any.
fn resource_policy(gw: &Gateway, arn: &str) -> Option<String> {
    let path = arn.split_once(":stream/")?.1;
    let stream = path.split('/').next()?;
    gw.store.stream(stream).ok()?.policy(arn)
}
