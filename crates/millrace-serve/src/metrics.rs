//! Endpoint metrics in the Prometheus text format: requests and records by model and status,
//! a latency histogram, and the model version being served. Plain atomics: the request path
//! takes no lock to count. `render_drift` adds the drift monitor's gauges (PSI per feature,
//! the drifting flag), computed when scraped.

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

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders the drift of every model that has a baseline (see `monitor`): PSI per feature,
/// whether the model is drifting, the records in the window and the threshold.
pub fn render_drift<'a>(
    reports: impl Iterator<Item = (&'a str, &'a crate::monitor::DriftReport)>,
) -> String {
    let reports: Vec<_> = reports.collect();
    let mut o = String::new();
    if reports.is_empty() {
        return o;
    }
    o.push_str(
        "# HELP millrace_feature_psi Population stability index of a feature over the drift \
         window against the training baseline.\n\
         # TYPE millrace_feature_psi gauge\n",
    );
    for (name, r) in &reports {
        for f in &r.features {
            let _ = writeln!(
                o,
                "millrace_feature_psi{{model=\"{}\",feature=\"{}\"}} {}",
                label(name),
                label(&f.feature),
                f.psi
            );
        }
    }
    type Gauge = fn(&crate::monitor::DriftReport) -> f64;
    let gauges: [(&str, &str, Gauge); 3] = [
        (
            "millrace_model_drifting",
            "1 when the window holds enough records and a feature's PSI is at or above the \
             threshold.",
            |r| f64::from(u8::from(r.drifting)),
        ),
        (
            "millrace_drift_window_records",
            "Scored records in the drift window.",
            |r| r.window_records as f64,
        ),
        (
            "millrace_drift_threshold",
            "PSI at or above which a feature counts as drifted.",
            |r| r.threshold,
        ),
    ];
    for (metric, help, value) in gauges {
        let _ = writeln!(o, "# HELP {metric} {help}\n# TYPE {metric} gauge");
        for (name, r) in &reports {
            let _ = writeln!(o, "{metric}{{model=\"{}\"}} {}", label(name), value(r));
        }
    }
    o
}
