//! The HTTP front: one POST route for every operation (Kinesis dispatches on the
//! `X-Amz-Target` header), body limits, protocol negotiation and error framing. Connections,
//! timeouts, allowed hosts and request bytes in flight are bounded by `millrace-http`; its
//! refusals are framed here as AWS errors.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use millrace_http::{App, Refusal, RefusalKind, ServerLimits};
use millrace_stream::Store;
use tokio::net::TcpListener;

use crate::error::{ApiError, ErrorCode};
use crate::iterator::IteratorCodec;
use crate::ops;
use crate::protocol::{Out, Protocol};
use crate::request::Request;
use crate::throttle::Throttle;

/// Largest request body accepted: a 10 MiB record (UpdateMaxRecordSize's ceiling) in base64
/// plus overhead.
pub const MAX_BODY_BYTES: usize = 15 * 1024 * 1024;
const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// Shared state of the API server.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub store: Arc<Store>,
    pub iterators: IteratorCodec,
    /// Opt-in per-shard throughput limits and fault injection (`StoreOptions`).
    pub throttle: Arc<Throttle>,
    /// The queues on this store's streams (`millrace-queue`).
    pub queues: Arc<millrace_queue::Queues>,
    /// The channels (CreateChannel …) that `millrace up` runs as deliveries.
    pub channels: Arc<crate::channels::Channels>,
    /// Other AWS JSON 1.1 services served on this listener, by `X-Amz-Target` prefix (the
    /// Firehose API).
    pub services: Vec<Arc<dyn Service>>,
    /// Identities, policies and the audit log (`[auth]`); `None` under `mode = "off"`.
    pub auth: Option<Arc<millrace_auth::Auth>>,
    /// HTTPS (`[server] tls`); `None`: plain HTTP.
    pub tls: Option<millrace_http::Tls>,
}

/// Another AWS JSON 1.1 service on the Kinesis listener: requests whose `X-Amz-Target` starts
/// with its prefix are decoded with this crate's wire (framing, error bodies) and handed to it.
pub trait Service: Send + Sync + std::fmt::Debug {
    /// `Firehose_20150804.`
    fn target_prefix(&self) -> &'static str;

    /// The name requests are signed for (SigV4's service) and actions are prefixed with in
    /// policies: `firehose`.
    fn signing_name(&self) -> &'static str;

    /// The ARN operation `op` acts on, from the names in its body; `*` for none.
    fn resource_arn(&self, _op: &str, _names: &crate::auth::ResourceNames) -> String {
        "*".into()
    }

    /// Answers operation `op` (the target after the prefix).
    fn call<'a>(&'a self, op: &'a str, req: Request) -> ServiceFuture<'a>;

    /// A hot path that reads a JSON body itself, without the general value tree: `None` to
    /// take the general path ([`Service::call`]), which also gives every error its message.
    fn call_json<'a>(&'a self, _op: &'a str, _body: &'a [u8]) -> Option<ServiceFuture<'a>> {
        None
    }
}

/// What a [`Service`] answers.
pub type ServiceFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Out, ApiError>> + Send + 'a>>;

/// Why a gateway could not open the state it keeps beside the store.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("opening the queues: {0}")]
    Queues(String),
    #[error("opening the channels: {0}")]
    Channels(String),
}

impl Gateway {
    /// The API over `store`: shard iterators and receipt handles are signed with
    /// `iterator_key`. Reads the queues' and channels' state (blocking file I/O).
    pub fn new(store: Arc<Store>, iterator_key: [u8; 32]) -> Result<Self, OpenError> {
        let queues = millrace_queue::Queues::open(store.clone(), iterator_key)
            .map_err(|e| OpenError::Queues(e.to_string()))?;
        let o = store.options();
        let channels_dir = millrace_common::layout::DataDir::new(store.root()).channels();
        let channels = crate::channels::Channels::open(&channels_dir, &o.account_id, &o.region)
            .map_err(|e| OpenError::Channels(e.to_string()))?;
        Ok(Self {
            channels: Arc::new(channels),
            queues: Arc::new(queues),
            throttle: Arc::new(Throttle::new(store.options())),
            store,
            iterators: IteratorCodec::new(iterator_key),
            services: Vec::new(),
            auth: None,
            tls: None,
        })
    }

    /// Serves HTTPS with `tls`.
    pub fn with_tls(mut self, tls: millrace_http::Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Checks every request's signature and policies with `auth`.
    pub fn with_auth(mut self, auth: Arc<millrace_auth::Auth>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Serves `service` too, on this listener.
    pub fn with_service(mut self, service: Arc<dyn Service>) -> Self {
        self.services.push(service);
        self
    }

    pub fn arn(&self, stream: &str) -> String {
        let o = self.store.options();
        format!(
            "arn:aws:kinesis:{}:{}:stream/{stream}",
            o.region, o.account_id
        )
    }

    /// The stream a request names by `StreamName` or `StreamARN`; an ARN of another account or
    /// region names a stream that is not here.
    pub fn stream_name(&self, req: &Request) -> Result<String, ApiError> {
        let name = req.stream_name()?;
        if let Some(arn) = req.opt_str("StreamARN")?
            && arn != self.arn(&name)
        {
            return Err(millrace_stream::StreamError::StreamNotFound(name).into());
        }
        Ok(name)
    }

    /// Runs blocking store work (file creation, fsync, reads) off the async threads.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| ApiError::new(ErrorCode::InternalFailure, e.to_string()))?
    }
}

pub fn router(gw: Gateway) -> Router {
    Router::new().fallback(handle).with_state(Arc::new(gw))
}

/// Serves the API on `listener` under the default [`ServerLimits`] until `shutdown` resolves,
/// then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    gw: Gateway,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, gw, ServerLimits::default(), shutdown).await
}

/// As [`serve`], under `limits`.
pub async fn serve_with(
    listener: TcpListener,
    gw: Gateway,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = App {
        name: "the Kinesis API",
        authenticated: gw.auth.is_some(),
        tls: gw.tls.clone(),
        router: router(gw),
        body_limit: MAX_BODY_BYTES,
        refusal_body: aws_refusal,
    };
    millrace_http::serve(listener, app, limits, shutdown).await
}

/// A refusal of the server itself (wrong host, over capacity, body too slow) as an AWS error,
/// in the protocol the client spoke. Over capacity is `ServiceUnavailable` with status 503,
/// which AWS SDKs retry with backoff.
fn aws_refusal(refusal: &Refusal, request: &HeaderMap) -> Response {
    let protocol = Protocol::from_content_type(
        request
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let code = match refusal.kind() {
        RefusalKind::Host => "AccessDeniedException",
        RefusalKind::Unavailable => "ServiceUnavailable",
        RefusalKind::Timeout => "RequestTimeout",
    };
    let body = protocol.encode(&Out::map([
        ("__type", Out::str(code)),
        ("message", Out::str(refusal.to_string())),
    ]));
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(protocol.content_type()),
    );
    insert_error_type(h, code);
    if let Ok(v) = HeaderValue::from_str(&millrace_common::ids::uuid_v4()) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

async fn handle(State(gw): State<Arc<Gateway>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let (method, headers) = (&parts.method, &parts.headers);
    let protocol = Protocol::from_content_type(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let started = Instant::now();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let service = gw
        .services
        .iter()
        .find(|s| target.starts_with(s.target_prefix()))
        .cloned();
    let op = match &service {
        Some(s) => target[s.target_prefix().len()..].to_owned(),
        None => target.strip_prefix(TARGET_PREFIX).unwrap_or("").to_owned(),
    };
    // SubscribeToShard answers with an event stream, not an `Out`.
    let mut streaming = None;
    let result = async {
        if method != Method::POST {
            return Err(ApiError::new(
                ErrorCode::UnknownOperation,
                format!("the Kinesis API takes POST requests, not {method}"),
            ));
        }
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::RequestTooLarge,
                    format!("request body exceeds the {MAX_BODY_BYTES}-byte limit"),
                )
            })?;
        let caller = crate::auth::authenticate(&gw, &parts, &bytes, service.as_deref())?;
        let caller = caller.as_ref();
        if op.is_empty() {
            return Err(ApiError::new(
                ErrorCode::UnknownOperation,
                format!(
                    "missing or unknown X-Amz-Target header '{target}': expected \
                     {TARGET_PREFIX}<Operation>"
                ),
            ));
        }
        // The ingest hot path: a well-formed JSON PutRecords is read into borrowed records
        // without the general value tree; any other body takes the general path below.
        if op == "PutRecords"
            && protocol == Protocol::Json
            && let Some(body) = ops::put_records::FastBody::parse(&bytes)
        {
            crate::auth::authorize(&gw, caller, &op, None, &body.resource_names())?;
            return ops::put_records::handle_fast(&gw, body).await;
        }
        if let Some(s) = &service
            && protocol == Protocol::Json
            && let Some(answer) = s.call_json(&op, &bytes)
        {
            if caller.is_some() {
                let names = crate::auth::ResourceNames::read_json(&bytes);
                crate::auth::authorize(&gw, caller, &op, Some(s.as_ref()), &names)?;
            }
            return answer.await;
        }
        let fields = protocol.decode(&bytes)?;
        let names = crate::auth::ResourceNames::from_fields(&fields);
        crate::auth::authorize(&gw, caller, &op, service.as_deref(), &names)?;
        if let Some(s) = &service {
            return s.call(&op, Request::new(fields, protocol)).await;
        }
        // Member types first: a wrong type is a SerializationException before any other check.
        crate::request::check_types(&op, &fields)?;
        if op == "SubscribeToShard" {
            let body = ops::subscribe_to_shard::start(&gw, Request::new(fields, protocol)).await?;
            streaming = Some(body);
            return Ok(Out::Null);
        }
        ops::dispatch(&gw, &op, Request::new(fields, protocol)).await
    }
    .await;
    if let (Some(body), Ok(_)) = (streaming, &result) {
        return event_stream_response(body);
    }
    let request_id = millrace_common::ids::uuid_v4();
    let (status, body, error_type) = match result {
        Ok(out) => (StatusCode::OK, protocol.encode(&out), None),
        Err(e) => {
            tracing::debug!(op = %op, error = %e, "request failed");
            (
                StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST),
                protocol.encode_error(&e),
                Some(e.code.as_str()),
            )
        }
    };
    tracing::trace!(op = %op, status = status.as_u16(), micros = started.elapsed().as_micros() as u64, "request");
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(protocol.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Some(code) = error_type {
        insert_error_type(h, code);
    }
    resp
}

/// A 200 whose body is SubscribeToShard's event stream, marked streaming for the connection
/// table (it runs for minutes without keeping the connection busy).
fn event_stream_response(body: ops::subscribe_to_shard::EventStreamBody) -> Response {
    let mut resp = Response::new(Body::new(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::eventstream::CONTENT_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(&millrace_common::ids::uuid_v4()) {
        h.insert("x-amzn-requestid", v);
    }
    resp.extensions_mut()
        .insert(millrace_http::StreamingResponse);
    resp
}

/// `x-amzn-ErrorType` as Kinesis sends it: the error type, a colon and the service's
/// namespace. botocore and aws-sdk-rust take the type from this header when present (the part
/// before the colon) and from `__type` otherwise.
fn insert_error_type(h: &mut HeaderMap, code: &str) {
    let value = format!("{code}:{ERROR_NAMESPACE}");
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert("x-amzn-errortype", v);
    }
}

const ERROR_NAMESPACE: &str = "http://internal.amazon.com/coral/com.amazonaws.kinesis/";
