//! Endpoint metrics in the Prometheus text format: requests and records by model and status,
//! a latency histogram, and the model version being served. Plain atomics: the request path
//! takes no lock to count.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in seconds (the last bucket is +Inf).
pub const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// Counters for one model.
#[derive(Debug, Default)]
pub struct ModelMetrics {
    pub ok: AtomicU64,
    pub client_errors: AtomicU64,
    pub server_errors: AtomicU64,
    pub records: AtomicU64,
    /// Cumulative counts per bucket (plus +Inf), and the sum in microseconds.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
    pub version: AtomicU64,
}

impl ModelMetrics {
    pub fn observe(&self, status: u16, records: usize, seconds: f64) {
        match status {
            200..=299 => &self.ok,
            400..=499 => &self.client_errors,
            _ => &self.server_errors,
        }
        .fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records as u64, Ordering::Relaxed);
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

/// Renders every model's metrics.
pub fn render<'a>(models: impl Iterator<Item = (&'a str, &'a ModelMetrics)>) -> String {
    let mut o = String::new();
    let models: Vec<(&str, &ModelMetrics)> = models.collect();
    o.push_str(
        "# HELP millrace_endpoint_requests_total Invocation requests by model and status class.\n\
         # TYPE millrace_endpoint_requests_total counter\n",
    );
    for (name, m) in &models {
        for (class, c) in [
            ("2xx", &m.ok),
            ("4xx", &m.client_errors),
            ("5xx", &m.server_errors),
        ] {
            let _ = writeln!(
                o,
                "millrace_endpoint_requests_total{{model=\"{name}\",status=\"{class}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
    }
    o.push_str(
        "# HELP millrace_endpoint_records_total Records scored or rejected.\n\
         # TYPE millrace_endpoint_records_total counter\n",
    );
    for (name, m) in &models {
        let _ = writeln!(
            o,
            "millrace_endpoint_records_total{{model=\"{name}\"}} {}",
            m.records.load(Ordering::Relaxed)
        );
    }
    o.push_str(
        "# HELP millrace_endpoint_latency_seconds Request latency, body read to response.\n\
         # TYPE millrace_endpoint_latency_seconds histogram\n",
    );
    for (name, m) in &models {
        let mut cum = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cum += m.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                o,
                "millrace_endpoint_latency_seconds_bucket{{model=\"{name}\",le=\"{b}\"}} {cum}"
            );
        }
        cum += m.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            o,
            "millrace_endpoint_latency_seconds_bucket{{model=\"{name}\",le=\"+Inf\"}} {cum}\n\
             millrace_endpoint_latency_seconds_sum{{model=\"{name}\"}} {}\n\
             millrace_endpoint_latency_seconds_count{{model=\"{name}\"}} {cum}",
            m.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
    }
    o.push_str(
        "# HELP millrace_endpoint_model_version The model version being served.\n\
         # TYPE millrace_endpoint_model_version gauge\n",
    );
    for (name, m) in &models {
        let _ = writeln!(
            o,
            "millrace_endpoint_model_version{{model=\"{name}\"}} {}",
            m.version.load(Ordering::Relaxed)
        );
    }
    o
}
