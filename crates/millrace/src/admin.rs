//! The admin API of `millrace up`: Prometheus `/metrics` and JSON `/status`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use millrace_delivery::DeliveryMetrics;
use millrace_stream::Store;

/// Deliveries register their metrics once their stream exists.
pub type Registry = Arc<std::sync::Mutex<Vec<Arc<DeliveryMetrics>>>>;

/// Scorers register once their stream and model exist.
pub type Scorers = Arc<std::sync::Mutex<Vec<Arc<millrace_serve::score::Scorer>>>>;

#[derive(Clone)]
pub struct Admin {
    pub store: Arc<Store>,
    pub deliveries: Registry,
    pub scorers: Scorers,
    /// Prep and train components of the pipeline.
    pub pipeline: crate::pipeline::Board,
    /// The endpoint, once it serves.
    pub endpoint: Arc<std::sync::OnceLock<Arc<millrace_serve::endpoint::Endpoint>>>,
    /// The Kinesis API's state: its queues and channels.
    pub gateway: millrace_gateway::Gateway,
    /// The delivery of each running channel.
    pub channels: crate::channels::ChannelMetrics,
    /// The Firehose API's delivery streams.
    pub firehose: millrace_firehose::Firehose,
    /// The delivery of each running delivery stream.
    pub delivery_streams: crate::supervise::JobMetrics,
    /// Each stream's records per second in and out.
    pub rates: Arc<crate::rates::StreamRates>,
}

impl Admin {
    fn deliveries(&self) -> Vec<Arc<DeliveryMetrics>> {
        self.deliveries.lock().expect("metrics registry").clone()
    }
}

pub fn router(admin: Admin, auth: Option<Arc<millrace_auth::Auth>>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .layer(axum::middleware::from_fn_with_state(auth, check_auth))
        .with_state(Arc::new(admin))
}

/// Under `[auth]`, every admin request must be SigV4-signed for the service `millrace` and
/// allowed `millrace:GetMetrics` or `millrace:GetStatus` (resource `*`); refusals are
/// `{"error": …}` with AWS's error type in `x-amzn-errortype`.
async fn check_auth(
    State(auth): State<Option<Arc<millrace_auth::Auth>>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Some(auth) = auth else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "body over 64 KiB",
        )
            .into_response();
    };
    let action = match parts.uri.path() {
        "/metrics" => "millrace:GetMetrics",
        _ => "millrace:GetStatus",
    };
    let client = parts.extensions.get::<millrace_http::Client>();
    let signed = millrace_auth::HttpRequest::from_parts(&parts, &bytes);
    let checked = auth.check(
        &signed,
        "millrace",
        client.map(|c| c.addr.ip()),
        client.is_some_and(|c| c.tls),
        action,
        "*",
    );
    match checked {
        Ok(()) => {
            let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
            next.run(req).await
        }
        Err(e) => {
            let status = axum::http::StatusCode::from_u16(e.status())
                .unwrap_or(axum::http::StatusCode::FORBIDDEN);
            let body = serde_json::json!({ "error": format!("{}: {e}", e.aws_code()) });
            let mut resp = (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response();
            resp.headers_mut().insert(
                "x-amzn-errortype",
                axum::http::HeaderValue::from_static(e.aws_code()),
            );
            resp
        }
    }
}

async fn metrics(State(a): State<Arc<Admin>>) -> impl IntoResponse {
    let now = millrace_stream::now_ms();
    let mut out = String::new();
    out.push_str(
        "# HELP millrace_stream_records Records appended to each stream since creation.\n",
    );
    for s in a.store.list() {
        if let Ok(h) = a.store.stream(&s.name) {
            let total: u64 = h.shards().iter().map(|sh| sh.tip()).sum();
            out.push_str(&format!(
                "millrace_stream_records{{stream=\"{}\"}} {total}\n",
                s.name
            ));
        }
    }
    for d in &a.deliveries() {
        d.render_prometheus(now, &mut out);
    }
    crate::channels::render_prometheus(&a.channels, now, &mut out);
    for m in a
        .delivery_streams
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
    {
        m.render_prometheus(now, &mut out);
    }
    render_queues(&a.gateway, &mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

async fn status(State(a): State<Arc<Admin>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        status_json(&a).to_string(),
    )
}

/// The `/status` document: every component's state and counters (the console reads it too).
pub fn status_json(a: &Admin) -> serde_json::Value {
    let now = millrace_stream::now_ms();
    let deliveries: Vec<_> = a.deliveries().iter().map(|d| d.snapshot(now)).collect();
    let streams: Vec<_> = a
        .store
        .list()
        .iter()
        .map(|s| {
            let records: u64 = a
                .store
                .stream(&s.name)
                .map(|h| h.shards().iter().map(|sh| sh.tip()).sum())
                .unwrap_or(0);
            let rate = a.rates.rate(&s.name);
            serde_json::json!({
                "name": s.name,
                "records": records,
                "in_per_s": rate.map(|r| (r.r#in * 10.0).round() / 10.0),
                "out_per_s": rate.map(|r| (r.out * 10.0).round() / 10.0),
            })
        })
        .collect();
    let scorers: Vec<_> = a
        .scorers
        .lock()
        .expect("scorers")
        .iter()
        .map(|s| {
            let m = s.metrics();
            let (model, version) = s.serving();
            let last = m.last_arrival_ms.load(std::sync::atomic::Ordering::Relaxed);
            let scored_at = m.last_scored_ms.load(std::sync::atomic::Ordering::Relaxed);
            serde_json::json!({
                "name": s.name(),
                "stream": s.config().stream,
                "to_stream": s.config().to_stream,
                "model": format!("{model}:v{version}"),
                "records": m.records.load(std::sync::atomic::Ordering::Relaxed),
                "errors": m.errors.load(std::sync::atomic::Ordering::Relaxed),
                // Arrival → acknowledged output of the newest record scored.
                "last_latency_ms": if last > 0 { scored_at - last } else { 0 },
                "backlog": scorer_backlog(&a.store, s),
            })
        })
        .collect();
    let endpoint = a.endpoint.get().map(|ep| {
        serde_json::json!({
            "serving": ep.serving().iter().map(|(n, v)| format!("{n}:v{v}")).collect::<Vec<_>>(),
        })
    });
    let pipeline = a.pipeline.lock().expect("status board").clone();
    serde_json::json!({
        "streams": streams,
        "deliveries": deliveries,
        "channels": crate::channels::status(&a.gateway.channels, &a.channels, now),
        "queues": queue_rows(&a.gateway),
        "delivery_streams": crate::firehose::status(&a.firehose, &a.delivery_streams, now),
        "pipeline": pipeline,
        "scoring": scorers,
        "endpoint": endpoint,
    })
}

/// Records on the scorer's input stream not yet scored (from its checkpoints, so up to 250 ms
/// stale).
fn scorer_backlog(store: &Store, s: &millrace_serve::score::Scorer) -> u64 {
    let Ok(h) = store.stream(&s.config().stream) else {
        return 0;
    };
    let cps = s.checkpoints().all();
    h.shards()
        .iter()
        .map(|sh| {
            let done = cps
                .iter()
                .find(|(id, _)| *id == sh.id())
                .and_then(|(_, cp)| cp.scored.as_deref())
                .and_then(millrace_stream::SequenceNumber::parse)
                .map_or(0, |q| q.counter + 1);
            sh.tip().saturating_sub(done)
        })
        .sum()
}

/// Each queue's records by state, as `/status` lists them.
fn queue_rows(gw: &millrace_gateway::Gateway) -> Vec<serde_json::Value> {
    gw.queues
        .list()
        .iter()
        .map(|q| {
            let (c, n) = (q.config(), q.counts());
            serde_json::json!({
                "name": c.name,
                "id": c.id,
                "stream": c.stream,
                "visible": n.visible,
                "in_flight": n.in_flight,
                "dead_letter": n.dead_letter,
            })
        })
        .collect()
}

/// Gauges of each queue's visible, in-flight and dead-letter records.
fn render_queues(gw: &millrace_gateway::Gateway, out: &mut String) {
    use std::fmt::Write;
    let queues = gw.queues.list();
    if queues.is_empty() {
        return;
    }
    out.push_str(
        "# HELP millrace_queue_records Records of each queue by state: visible (a receive \
         would hand them out), in_flight (received, not acknowledged, within their visibility \
         timeout) and dead_letter.\n# TYPE millrace_queue_records gauge\n",
    );
    for q in &queues {
        let (c, n) = (q.config(), q.counts());
        for (state, v) in [
            ("visible", n.visible),
            ("in_flight", n.in_flight),
            ("dead_letter", n.dead_letter),
        ] {
            let _ = writeln!(
                out,
                "millrace_queue_records{{queue=\"{}\",stream=\"{}\",state=\"{state}\"}} {v}",
                c.name, c.stream
            );
        }
    }
}
