//! [`Refusal`]: a request the server answers itself, before or instead of its handler, and the
//! one function that turns it into a response. Each server says how its error body looks (the
//! Kinesis API in AWS's shape, the others as `{"error": …}`); the status and the headers that
//! tell a client whether to retry are set here, the same for all.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};

/// Why a request was answered without reaching its handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "Host '{host}' is not served here: this server answers only loopback names (localhost, \
         127.0.0.1, [::1]) and its allowed hosts, so that web pages cannot reach it by DNS \
         rebinding; add the name to the allowed hosts ([server] allowed_hosts, or \
         --allowed-host) to serve it"
    )]
    HostNotAllowed { host: String },
    #[error("the request has no Host header; HTTP/1.1 requires one")]
    MissingHost,
    #[error(
        "the server holds {limit_mib} MiB of request bodies, its limit for bytes in flight; \
         retry with backoff"
    )]
    Overloaded { limit_mib: usize },
    #[error("all {max} connections are serving requests; retry with backoff")]
    TooManyConnections { max: usize },
    #[error(
        "this connection was closed to make room (the server is at its connection cap or out \
         of file descriptors) before the request could start; retry it on a new connection"
    )]
    ConnectionClosing,
    #[error(
        "the request body did not arrive within {} s; the connection is closed",
        after.as_secs_f64()
    )]
    BodyTimeout { after: Duration },
}

/// What kind of refusal, for a server that maps refusals onto its own error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The client named a host this server does not answer to.
    Host,
    /// Over capacity for now; the same request succeeds later.
    Unavailable,
    /// The client sent its body too slowly.
    Timeout,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::HostNotAllowed { .. } => StatusCode::MISDIRECTED_REQUEST,
            Self::MissingHost => StatusCode::BAD_REQUEST,
            Self::Overloaded { .. } | Self::TooManyConnections { .. } | Self::ConnectionClosing => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        }
    }

    pub fn kind(&self) -> RefusalKind {
        match self {
            Self::HostNotAllowed { .. } | Self::MissingHost => RefusalKind::Host,
            Self::Overloaded { .. } | Self::TooManyConnections { .. } | Self::ConnectionClosing => {
                RefusalKind::Unavailable
            }
            Self::BodyTimeout { .. } => RefusalKind::Timeout,
        }
    }

    /// Whether the connection is closed after this answer (the rest of the request may still
    /// be on its way, or the server has no room for the connection).
    fn closes(&self) -> bool {
        matches!(
            self,
            Self::BodyTimeout { .. } | Self::TooManyConnections { .. } | Self::ConnectionClosing
        )
    }
}

/// A server's error body for a refusal, given the request's headers (e.g. to answer in the
/// protocol the client spoke). Status and retry headers are set by [`respond`].
pub type RefusalBody = fn(&Refusal, &HeaderMap) -> Response<Body>;

/// `{"error": "<message>"}` as `application/json`: the endpoint's and the admin API's shape.
pub fn json_refusal(refusal: &Refusal, _request: &HeaderMap) -> Response<Body> {
    let body = serde_json::json!({ "error": refusal.to_string() }).to_string();
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The response for `refusal`: the server's body, the refusal's status, `Retry-After` on a
/// 503 and `Connection: close` where the connection ends.
pub(crate) fn respond(refusal: &Refusal, body: RefusalBody, request: &HeaderMap) -> Response<Body> {
    let mut resp = body(refusal, request);
    *resp.status_mut() = refusal.status();
    let h = resp.headers_mut();
    if refusal.kind() == RefusalKind::Unavailable {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if refusal.closes() {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
