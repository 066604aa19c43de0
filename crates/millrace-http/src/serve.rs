//! [`serve`]: the accept loop every millrace server runs instead of `axum::serve`, so that each
//! connection is capped, timed and closable:
//!
//! - a connection gets a place in the [`Connections`] table (at the cap, the idlest one is
//!   closed for it; when all are busy it is answered 503 and closed);
//! - a connection speaks HTTP/1.1 or HTTP/2 cleartext with prior knowledge (hyper-util's
//!   `auto` builder; the SDKs' SubscribeToShard uses HTTP/2). hyper's HTTP/1 reader closes a
//!   connection whose request headers do not arrive within `header_timeout` — counted from the
//!   connection's start and after each response; [`Server::idle_expired`] closes any
//!   connection (HTTP/2 ones, and ones that never send a byte) with no request in flight and no
//!   response streaming for as long;
//! - a response marked [`StreamingResponse`] (an event stream that runs for minutes) does not
//!   keep its connection busy: the connection may be evicted at the cap (after every idle one)
//!   or closed on shutdown under it, which ends the stream;
//! - each request names an allowed host ([`AllowedHosts`]), reserves its body's bytes from the
//!   server's in-flight budget before its handler runs (waiting at most `inflight_wait`, else
//!   503), and must deliver its body within `body_timeout` (else 408 and the connection ends).
//!
//! On shutdown the listener closes, idle connections are dropped, and busy ones finish their
//! request first.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Response, header};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::body::{HeldBody, TimedBody};
use crate::conns::{Connections, Slot, SlotHandle};
use crate::host::AllowedHosts;
use crate::limits::ServerLimits;
use crate::refusal::{Refusal, RefusalBody, respond};

/// Connections answered 503 at once while all `max_connections` are busy; past these, new
/// connections are closed unanswered until one frees.
const REFUSING_AT_MOST: usize = 64;
/// How long a refused connection may take to send the request it is refused.
const REFUSAL_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause after an accept error that is not about one connection (e.g. out of descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Out of descriptors, a connection idle for less than this is not closed to free one.
const EVICT_IDLE_FOR: Duration = Duration::from_secs(1);

/// A response extension a handler sets on a response whose body streams for long (an AWS
/// event stream): its connection counts as streaming, not busy (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct StreamingResponse;

/// A request extension every request carries: who sent it and how (the peer's address, for
/// `aws:SourceIp`, and whether the connection is TLS, for `aws:SecureTransport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub addr: std::net::SocketAddr,
    pub tls: bool,
}

/// One server: its routes and how it words a refusal.
pub struct App {
    /// What it is, in log lines and the non-loopback warning ("the Kinesis API").
    pub name: &'static str,
    pub router: Router,
    /// The largest body a handler reads: what a request without Content-Length reserves.
    pub body_limit: usize,
    pub refusal_body: RefusalBody,
    /// Every request is authenticated (`[auth]` mode log or enforce): no warning for a bind
    /// beyond loopback.
    pub authenticated: bool,
    /// Serve HTTPS with this certificate (`None`: plain HTTP).
    pub tls: Option<crate::Tls>,
}

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then closes idle
/// connections and waits for the requests in flight. Warns first when the address is not
/// loopback (see [`crate::warn_if_exposed`]).
pub async fn serve(
    listener: TcpListener,
    app: App,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    if !app.authenticated {
        crate::warn_if_exposed(app.name, local);
    }
    let server = Arc::new(Server::new(app, limits, local));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    server.accept_failed(e).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        match server.conns.admit() {
            Some(slot) => {
                tokio::spawn(server.clone().connection(stream, slot));
            }
            None => server.clone().refuse_connection(stream),
        }
    }
    drop(listener);
    server.stop.cancel();
    server.conns.drained().await;
    Ok(())
}

struct Server {
    name: &'static str,
    router: Router,
    body_limit: usize,
    refusal_body: RefusalBody,
    limits: ServerLimits,
    hosts: AllowedHosts,
    conns: Arc<Connections>,
    /// Request body bytes free to reserve.
    inflight: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    http: auto::Builder<TokioExecutor>,
    stop: CancellationToken,
    tls: Option<crate::Tls>,
}

impl Server {
    fn new(app: App, limits: ServerLimits, local: std::net::SocketAddr) -> Self {
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .keep_alive(true);
        http.http2().timer(TokioTimer::new());
        Self {
            name: app.name,
            router: app.router,
            body_limit: app.body_limit,
            refusal_body: app.refusal_body,
            hosts: AllowedHosts::new(&limits.allowed_hosts, Some(local)),
            conns: Connections::new(limits.max_connections),
            inflight: Arc::new(Semaphore::new(
                limits.max_inflight_bytes.min(Semaphore::MAX_PERMITS),
            )),
            refusing: Arc::new(Semaphore::new(REFUSING_AT_MOST)),
            limits,
            http,
            stop: CancellationToken::new(),
            tls: app.tls,
        }
    }

    /// Serves one admitted connection until it ends, is evicted, or the server stops.
    async fn connection(self: Arc<Self>, stream: TcpStream, slot: Slot) {
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        let Some(tls) = self.tls.clone() else {
            let client = peer.map(|addr| Client { addr, tls: false });
            return self.serve_io(TokioIo::new(stream), client, slot).await;
        };
        // The handshake counts as the first request's headers: bounded by header_timeout, and
        // given up when the connection is evicted or the server stops.
        let handshake =
            tokio::time::timeout(self.limits.header_timeout, tls.acceptor().accept(stream));
        let stream = tokio::select! {
            done = handshake => match done {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(server = self.name, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            },
            _ = slot.evicted().cancelled() => return,
            _ = self.stop.cancelled() => return,
        };
        let client = peer.map(|addr| Client { addr, tls: true });
        self.serve_io(TokioIo::new(stream), client, slot).await
    }

    /// Serves HTTP on one connection's byte stream (plain or TLS) until it ends, is evicted,
    /// or the server stops.
    async fn serve_io<I>(self: Arc<Self>, io: I, client: Option<Client>, slot: Slot)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (server, handle) = (self.clone(), slot.handle());
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let (server, handle) = (server.clone(), handle.clone());
            if let Some(client) = client {
                req.extensions_mut().insert(client);
            }
            async move { Ok::<_, Infallible>(server.request(req, handle).await) }
        });
        let conn = self.http.serve_connection(io, service);
        tokio::pin!(conn);
        let idle = self.idle_expired(slot.handle());
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(server = self.name, error = %e, "connection ended");
                }
            }
            _ = slot.evicted().cancelled() => {}
            _ = idle => {}
            _ = self.stop.cancelled() => {
                // Idle: close now. Busy: finish the request in flight, then close.
                if !slot.handle().claim_idle() {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        }
    }

    /// Resolves once the connection has had no request in flight and no response streaming
    /// for `header_timeout`, having claimed it for closing.
    async fn idle_expired(&self, slot: SlotHandle) {
        let limit = self.limits.header_timeout;
        loop {
            let wait = match slot.idle_for() {
                Some(idle) if idle >= limit => {
                    if slot.claim_idle() {
                        return;
                    }
                    limit
                }
                Some(idle) => limit - idle,
                None => limit,
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One request, marked busy on its connection until its response is sent (streaming
    /// responses: marked streaming instead, once the handler has answered).
    async fn request(&self, req: Request<Incoming>, slot: SlotHandle) -> Response<Body> {
        let Some(busy) = slot.begin() else {
            // Evicted between its headers and now: it is closing.
            return self.refuse(&Refusal::ConnectionClosing, req.headers());
        };
        let resp = self.answer(req).await;
        if resp.extensions().get::<StreamingResponse>().is_some() {
            let streaming = slot.streaming();
            drop(busy);
            return resp.map(|b| HeldBody::wrap(b, streaming));
        }
        resp.map(|b| HeldBody::wrap(b, busy))
    }

    /// Host check, bytes reserved, body timed, then the router.
    async fn answer(&self, req: Request<Incoming>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        if let Err(refusal) = self.hosts.check(&parts) {
            return self.refuse(&refusal, &parts.headers);
        }
        let permit = match self.reserve(&body).await {
            Ok(permit) => permit,
            Err(refusal) => {
                // Read and drop the body, so the client (busy sending it) reads the 503
                // instead of a broken pipe, and may retry on the same connection.
                let drained = self.discard(body, &parts.headers).await;
                let mut resp = self.refuse(&refusal, &parts.headers);
                if !drained {
                    resp.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                return resp;
            }
        };
        let headers = parts.headers.clone();
        let (body, timed_out) = TimedBody::new(body, self.limits.body_timeout);
        let req = Request::from_parts(parts, Body::new(body));
        let resp = match self.router.clone().oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        };
        drop(permit);
        if timed_out.load(Ordering::Relaxed) {
            let after = self.limits.body_timeout;
            return self.refuse(&Refusal::BodyTimeout { after }, &headers);
        }
        resp
    }

    /// Reserves the body's size (its exact length, or the body limit when it has none) from the
    /// in-flight budget, waiting at most `inflight_wait`.
    async fn reserve(&self, body: &Incoming) -> Result<Option<OwnedSemaphorePermit>, Refusal> {
        if body.is_end_stream() {
            return Ok(None);
        }
        let size = body.size_hint().exact().map_or(self.body_limit, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        });
        let need = size
            .min(self.body_limit)
            .min(self.limits.max_inflight_bytes)
            .min(u32::MAX as usize);
        if need == 0 {
            return Ok(None);
        }
        let acquire = self.inflight.clone().acquire_many_owned(need as u32);
        match tokio::time::timeout(self.limits.inflight_wait, acquire).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => {
                tracing::debug!(
                    server = self.name,
                    bytes = need,
                    "request bytes in flight at the limit"
                );
                Err(Refusal::Overloaded {
                    limit_mib: self.limits.max_inflight_bytes >> 20,
                })
            }
        }
    }

    /// Reads a refused request's body to its end and drops it, chunk by chunk (no more than
    /// the body limit, within the body timeout). Not when the client waits for
    /// `100 Continue`: then it sends nothing. `false` when the body was not read to its end.
    async fn discard(&self, body: Incoming, headers: &HeaderMap) -> bool {
        if headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
        {
            return false;
        }
        let (mut body, _) = TimedBody::new(body, self.limits.body_timeout);
        let mut read = 0usize;
        loop {
            match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                None => return true,
                Some(Ok(frame)) => {
                    read += frame.data_ref().map_or(0, |d| d.len());
                    if read > self.body_limit {
                        return false;
                    }
                }
                Some(Err(_)) => return false,
            }
        }
    }

    fn refuse(&self, refusal: &Refusal, request: &HeaderMap) -> Response<Body> {
        respond(refusal, self.refusal_body, request)
    }

    /// Every connection is busy: answer this one 503 and close it, or close it unanswered
    /// when even the refusals are at their cap.
    fn refuse_connection(self: Arc<Self>, stream: TcpStream) {
        // Over TLS a plain-text 503 would be garbage to the client: closing says as much.
        if self.tls.is_some() {
            return;
        }
        let Ok(permit) = self.refusing.clone().try_acquire_owned() else {
            return;
        };
        tokio::spawn(async move {
            let server = self.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let max = server.conns.max();
                let resp = server.refuse(&Refusal::TooManyConnections { max }, req.headers());
                async move { Ok::<_, Infallible>(resp) }
            });
            let mut http = http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(REFUSAL_HEADER_TIMEOUT.min(self.limits.header_timeout))
                .keep_alive(false);
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
            drop(permit);
        });
    }

    /// A failed accept. One connection's failure is nothing; anything else (out of
    /// descriptors) closes the connection idle the longest, if idle for [`EVICT_IDLE_FOR`], to
    /// free one, then pauses: the new connection waits in the backlog meanwhile.
    async fn accept_failed(&self, e: std::io::Error) {
        use std::io::ErrorKind::*;
        if matches!(
            e.kind(),
            ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
        ) {
            return;
        }
        tracing::warn!(server = self.name, error = %e, "accepting a connection failed");
        self.conns.evict_one(EVICT_IDLE_FOR);
        tokio::time::sleep(ACCEPT_BACKOFF).await;
    }
}
