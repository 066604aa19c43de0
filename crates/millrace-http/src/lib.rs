//! The bounds every millrace HTTP server keeps — the Kinesis API, the real-time endpoint and
//! the admin API all run [`serve`] — so that no client, careless or hostile, can hold the
//! server's memory, connections or time:
//!
//! - [`ServerLimits`] (`limits.rs`): header and body timeouts, the connection cap, request bytes
//!   in flight, allowed hosts; defaults and checks that name the setting.
//! - `serve.rs`: the accept loop over hyper's HTTP/1 connection (what `axum::serve` would do,
//!   plus the bounds); `conns.rs`: the capped connection table that evicts the idlest.
//! - `host.rs`: only loopback names and configured ones are served (DNS rebinding).
//! - `refusal.rs`: what the server answers itself (421, 400, 503 with `Retry-After`, 408), in
//!   each server's own error shape.
//! - `exposure.rs`: the loud warning for a bind beyond loopback without authentication.
//! - [`Tls`] (`tls.rs`): HTTPS on any server (rustls): PEM files, or a self-signed certificate
//!   generated on first start.
//! - [`eventstream`]: AWS event stream framing for replies that are a stream of messages
//!   (Kinesis SubscribeToShard, SageMaker InvokeEndpointWithResponseStream).
//!
//! Not here: per-request body limits and media types, which each server's handlers enforce.

mod body;
mod conns;
pub mod eventstream;
mod exposure;
mod host;
mod limits;
mod refusal;
mod serve;
mod tls;

pub use body::BodyTimedOut;
pub use exposure::{exposure_warning, warn_if_exposed};
pub use host::AllowedHosts;
pub use limits::{
    DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_INFLIGHT_WAIT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_INFLIGHT_MIB, InvalidLimit, LimitField, ServerLimits,
};
pub use refusal::{Refusal, RefusalBody, RefusalKind, json_refusal};
pub use serve::{App, Client, StreamingResponse, serve};
pub use tls::{Tls, TlsError};
