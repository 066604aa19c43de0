//! Delivery counters, rendered as Prometheus text and as JSON for `millrace deliver status`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

#[derive(Debug, Default)]
pub struct DeliveryMetrics {
    pub name: String,
    pub stream: String,
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub objects: AtomicU64,
    pub error_records: AtomicU64,
    /// Per shard: arrival time of the oldest record read but not yet in the lake, and the
    /// last delivered sequence number.
    shards: Mutex<BTreeMap<String, ShardState>>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ShardState {
    pub oldest_pending_ms: Option<i64>,
    pub delivered: Option<String>,
    /// The error that keeps this shard from delivering, while it is retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the shard first failed (cleared by the next delivery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled_since_ms: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub name: String,
    pub stream: String,
    pub records: u64,
    pub bytes: u64,
    pub objects: u64,
    pub error_records: u64,
    /// Age of the oldest record not yet in the lake (Firehose's DataFreshness), 0 when none.
    pub freshness_ms: i64,
    /// `running`, or `stalled` while a shard fails and is retried.
    pub status: &'static str,
    /// The error of a stalled shard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub shards: BTreeMap<String, ShardState>,
}

impl DeliveryMetrics {
    pub fn new(name: &str, stream: &str) -> Self {
        Self {
            name: name.into(),
            stream: stream.into(),
            ..Self::default()
        }
    }

    pub(crate) fn pending_since(&self, shard: &str, arrival_ms: i64) {
        let mut s = self.shards.lock();
        let e = s.entry(shard.to_owned()).or_default();
        e.oldest_pending_ms.get_or_insert(arrival_ms);
    }

    pub(crate) fn delivered(&self, shard: &str, seq: &str) {
        let mut s = self.shards.lock();
        let e = s.entry(shard.to_owned()).or_default();
        e.oldest_pending_ms = None;
        e.delivered = Some(seq.to_owned());
        e.error = None;
        e.stalled_since_ms = None;
    }

    /// The shard went to another member of a consumer group: its lag is theirs to report.
    pub(crate) fn released(&self, shard: &str) {
        self.shards.lock().remove(shard);
    }

    /// A shard failed with `error` and will be retried: shown as stalled until it delivers.
    pub(crate) fn stalled(&self, shard: &str, error: &str, now_ms: i64) {
        let mut s = self.shards.lock();
        let e = s.entry(shard.to_owned()).or_default();
        e.error = Some(error.to_owned());
        e.stalled_since_ms.get_or_insert(now_ms);
        // Lag counts from when the failure was first seen if no record was read yet (a
        // replay that fails before reading): never 0 while nothing is delivered.
        e.oldest_pending_ms.get_or_insert(now_ms);
    }

    pub fn snapshot(&self, now_ms: i64) -> Snapshot {
        let shards = self.shards.lock().clone();
        let freshness_ms = shards
            .values()
            .filter_map(|s| s.oldest_pending_ms)
            .map(|t| (now_ms - t).max(0))
            .max()
            .unwrap_or(0);
        let last_error = shards.values().find_map(|s| s.error.clone());
        Snapshot {
            name: self.name.clone(),
            stream: self.stream.clone(),
            records: self.records.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            objects: self.objects.load(Ordering::Relaxed),
            error_records: self.error_records.load(Ordering::Relaxed),
            freshness_ms,
            status: if last_error.is_some() {
                "stalled"
            } else {
                "running"
            },
            last_error,
            shards,
        }
    }

    /// Appends this delivery's series in Prometheus text format.
    pub fn render_prometheus(&self, now_ms: i64, out: &mut String) {
        let s = self.snapshot(now_ms);
        let labels = format!("delivery=\"{}\",stream=\"{}\"", s.name, s.stream);
        for (metric, help, value) in [
            (
                "millrace_delivery_records_total",
                "Records delivered to the lake.",
                s.records as f64,
            ),
            (
                "millrace_delivery_bytes_total",
                "Record bytes delivered to the lake.",
                s.bytes as f64,
            ),
            (
                "millrace_delivery_objects_total",
                "Objects written to the lake.",
                s.objects as f64,
            ),
            (
                "millrace_delivery_error_records_total",
                "Records written to the error prefix.",
                s.error_records as f64,
            ),
            (
                "millrace_delivery_stalled",
                "1 while a shard fails and is retried, else 0.",
                f64::from(u8::from(s.last_error.is_some())),
            ),
            (
                "millrace_delivery_freshness_seconds",
                "Age of the oldest record not yet in the lake.",
                s.freshness_ms as f64 / 1000.0,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {metric} {help}\n{metric}{{{labels}}} {value}\n"
            ));
        }
    }
}
