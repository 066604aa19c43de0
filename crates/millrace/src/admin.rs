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

#[derive(Clone)]
pub struct Admin {
    pub store: Arc<Store>,
    pub deliveries: Registry,
}

impl Admin {
    fn deliveries(&self) -> Vec<Arc<DeliveryMetrics>> {
        self.deliveries.lock().expect("metrics registry").clone()
    }
}

pub fn router(admin: Admin) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(Arc::new(admin))
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
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

async fn status(State(a): State<Arc<Admin>>) -> impl IntoResponse {
    let now = millrace_stream::now_ms();
    let deliveries: Vec<_> = a.deliveries().iter().map(|d| d.snapshot(now)).collect();
    let body = serde_json::json!({
        "streams": a.store.list().iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
        "deliveries": deliveries,
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}
