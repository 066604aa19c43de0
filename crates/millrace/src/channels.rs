//! The runner of the Kinesis API's channels under `millrace up` (CreateChannel …, registry in
//! `millrace_gateway::channels`): one `millrace-delivery` pipeline per channel, kept in step
//! with the registry by [`Supervisor`]. A new channel starts; one whose revision UpdateChannel
//! raised is stopped (it flushes its buffer and checkpoints) and started again with the new
//! settings, which is exactly-once because the checkpoints carry over; a deleted one is
//! stopped and its checkpoints removed. Each state is reported back to the registry, which is
//! what DescribeChannel shows: ACTIVE while the delivery runs, FAILED with the reason when it
//! cannot start (a bucket `[buckets]` does not map, a lake that does not open) or while it is
//! stalled (the delivery retries; ACTIVE again once it delivers).
//!
//! A channel's delivery ([`delivery_config`]): named after the channel (objects
//! `<channel>-<shard>-<first>-<last><ext>`), prefix from OutputKeyTemplate, error prefix from
//! the dead-letter configuration, buffer interval DataFreshnessInSeconds, NDJSON for JSON
//! records and the records byte for byte for STRING and BYTE_ARRAY, the compression asked
//! for, and the stream's own record size limit. It reads the embedded store from the oldest
//! record kept (TRIM_HORIZON). Checkpoints live in `state/channels/<channel id>/`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use millrace_common::layout::DataDir;
use millrace_delivery::{Compression, Delivery, DeliveryConfig, DeliveryMetrics, Format, RunMode};
use millrace_gateway::channels::{
    self as registry, ChannelSpec, Channels, DATA_DIR_BUCKET, RecordFormat, RunState,
};
use millrace_lake::{Lake, S3Options};
use millrace_stream::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Each running channel's delivery counters, by channel name, for `/metrics` and `/status`.
pub type ChannelMetrics = Arc<Mutex<BTreeMap<String, Arc<DeliveryMetrics>>>>;

/// How often stalled deliveries are looked for (and their status reported).
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// A channel that could not start is tried again after this long.
const RETRY_FAILED: Duration = Duration::from_secs(10);

/// Where each bucket a channel may name lives: `[buckets]` (relative folders under the data
/// dir), and `lake`, the data dir's own lake, unless `[buckets]` maps it elsewhere.
#[derive(Debug, Clone)]
pub struct Buckets {
    locations: BTreeMap<String, String>,
    s3: S3Options,
    /// `[table_buckets]`: table bucket name → warehouse folder.
    table_buckets: BTreeMap<String, PathBuf>,
    /// `[schemas]`: GSRSchemaARN → JSON Schema file.
    schemas: BTreeMap<String, PathBuf>,
}

impl Buckets {
    pub fn from_config(data_dir: &DataDir, config: &Config) -> Self {
        let mut locations: BTreeMap<String, String> = config
            .buckets
            .iter()
            .map(|(name, l)| (name.clone(), crate::config::lake_url(data_dir, l)))
            .collect();
        locations
            .entry(DATA_DIR_BUCKET.to_owned())
            .or_insert_with(|| data_dir.lake().display().to_string());
        let table_buckets = config
            .table_buckets
            .iter()
            .map(|(name, dir)| {
                let dir = if dir.is_relative() {
                    data_dir.root().join(dir)
                } else {
                    dir.clone()
                };
                (name.clone(), dir)
            })
            .collect();
        Self {
            locations,
            s3: config.lake.s3_options(),
            table_buckets,
            schemas: config.schemas.clone(),
        }
    }

    /// The warehouse folder of a table bucket and the schema text of a GSR ARN.
    fn table(&self, t: &registry::TablesDestination) -> Result<(PathBuf, String), String> {
        let dir = self.table_buckets.get(&t.table_bucket).ok_or_else(|| {
            format!(
                "table bucket {} is not mapped: add it to [table_buckets] in millrace up's config \
                 (table_buckets.{})",
                t.table_bucket, t.table_bucket
            )
        })?;
        let file = self.schemas.get(&t.schema_arn).ok_or_else(|| {
            format!(
                "schema {} is not mapped: add it to [schemas] in millrace up's config",
                t.schema_arn
            )
        })?;
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("reading schema file {}: {e}", file.display()))?;
        Ok((dir.clone(), text))
    }

    /// The lake of `bucket`, or why there is none.
    fn open(&self, bucket: &str) -> Result<Lake, String> {
        let location = self.locations.get(bucket).ok_or_else(|| {
            format!(
                "bucket {bucket} is not mapped: add `{bucket} = \"<folder, file:// or \
                 s3://bucket/prefix>\"` to [buckets] in millrace up's config (buckets.{bucket})"
            )
        })?;
        Lake::open(location, &self.s3)
            .map_err(|e| format!("bucket {bucket}: opening {location}: {}", chain(&e)))
    }
}

/// The delivery that runs `spec`, over a stream whose records are at most `max_record_bytes`.
pub fn delivery_config(spec: &ChannelSpec, max_record_bytes: usize) -> DeliveryConfig {
    let mut c = DeliveryConfig::new(&spec.name, &spec.source.stream);
    c.prefix = Some(spec.key_template());
    c.error_prefix = Some(spec.error_template());
    c.buffer_interval_secs = spec.destination.freshness_secs.into();
    c.max_record_kib = (max_record_bytes / 1024).clamp(1, 10_240) as u64;
    c.format = match spec.source.record_format {
        // GSR_JSON channels write tables (`table_channel.rs`), never objects.
        RecordFormat::Json | RecordFormat::GsrJson => Format::Ndjson,
        RecordFormat::String | RecordFormat::ByteArray => Format::Concat,
    };
    c.compression = match spec.destination.compression {
        registry::Compression::None => Compression::None,
        registry::Compression::Gzip => Compression::Gzip,
        registry::Compression::Zstd => Compression::Zstd,
    };
    c
}

/// A channel as the supervisor runs it.
struct Running {
    id: String,
    revision: u64,
    /// `None` while the channel cannot run (the reason is in `state`).
    task: Option<Task>,
    state: RunState,
    /// When it started or failed: a failed channel is tried again [`RETRY_FAILED`] later.
    since: Instant,
}

/// A running delivery.
struct Task {
    stop: watch::Sender<bool>,
    handle: JoinHandle<Result<(), String>>,
    metrics: Arc<DeliveryMetrics>,
}

/// Keeps one delivery per channel of the registry, until `up` stops.
pub struct Supervisor {
    data_dir: DataDir,
    store: Arc<Store>,
    channels: Arc<Channels>,
    buckets: Buckets,
    metrics: ChannelMetrics,
    running: BTreeMap<String, Running>,
}

impl Supervisor {
    pub fn new(
        data_dir: DataDir,
        store: Arc<Store>,
        channels: Arc<Channels>,
        buckets: Buckets,
        metrics: ChannelMetrics,
    ) -> Self {
        Self {
            data_dir,
            store,
            channels,
            buckets,
            metrics,
            running: BTreeMap::new(),
        }
    }

    /// Runs until `stop`; then stops every delivery (each flushes and checkpoints).
    pub async fn run(mut self, stop: CancellationToken) -> anyhow::Result<()> {
        let mut changes = self.channels.subscribe();
        self.remove_orphans().await;
        let mut tick = tokio::time::interval(STATUS_EVERY);
        loop {
            changes.mark_unchanged();
            self.reconcile().await;
            self.refresh();
            tokio::select! {
                _ = changes.changed() => {}
                _ = tick.tick() => {}
                _ = stop.cancelled() => break,
            }
        }
        self.stop_all().await;
        Ok(())
    }

    /// Stops what was deleted or changed, then starts what is not running.
    async fn reconcile(&mut self) {
        let specs: BTreeMap<String, ChannelSpec> = self
            .channels
            .list()
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(name, r)| {
                let retry = r.task.is_none() && r.since.elapsed() >= RETRY_FAILED;
                retry
                    || specs
                        .get(*name)
                        .is_none_or(|s| (&s.id, s.revision) != (&r.id, r.revision))
            })
            .map(|(name, _)| name.clone())
            .collect();
        let mut previous = BTreeMap::new();
        for name in stale {
            let r = self.running.remove(&name).expect("listed");
            let deleted = specs.get(&name).is_none_or(|s| s.id != r.id);
            if !deleted {
                previous.insert(name.clone(), r.state.clone());
            }
            self.stop(&name, r, deleted).await;
        }
        for spec in specs.values() {
            if !self.running.contains_key(&spec.name) {
                let r = self.start(spec, previous.get(&spec.name));
                self.running.insert(spec.name.clone(), r);
            }
        }
    }

    /// Starts `spec`'s delivery, or records why it cannot run; reports either.
    fn start(&self, spec: &ChannelSpec, previous: Option<&RunState>) -> Running {
        let started = match &spec.tables {
            Some(_) => self.table_runner(spec).map(|r| self.spawn_table(spec, r)),
            None => self.build(spec).map(|d| self.spawn(spec, d)),
        };
        let (task, state) = match started {
            Ok(task) => {
                tracing::info!(channel = %spec.name, stream = %spec.source.stream, bucket = %spec.destination.bucket, revision = spec.revision, "channel running");
                (Some(task), RunState::Active)
            }
            Err(reason) => {
                if previous != Some(&RunState::Failed(reason.clone())) {
                    tracing::warn!(channel = %spec.name, reason = %reason, "channel failed");
                }
                (None, RunState::Failed(reason))
            }
        };
        self.channels
            .report(&spec.name, &spec.id, spec.revision, state.clone());
        Running {
            id: spec.id.clone(),
            revision: spec.revision,
            task,
            state,
            since: Instant::now(),
        }
    }

    fn build(&self, spec: &ChannelSpec) -> Result<Delivery, String> {
        let lake = self.buckets.open(&spec.destination.bucket)?;
        let stream = self
            .store
            .stream(&spec.source.stream)
            .map_err(|_| format!("source stream {} does not exist", spec.source.stream))?;
        let config = delivery_config(spec, stream.max_record_bytes());
        let source = Arc::new(millrace_io::EmbeddedSource::new(stream));
        let delivery = Delivery::new(config, lake, source, &self.data_dir.channel_state(&spec.id))
            .map_err(|e| chain(&e))?;
        let errors = spec.dead_letter_bucket();
        if errors == spec.destination.bucket {
            return Ok(delivery);
        }
        Ok(delivery.with_error_lake(self.buckets.open(errors)?))
    }

    /// The runner of a channel into an Iceberg table (`crate::table_channel`).
    fn table_runner(
        &self,
        spec: &ChannelSpec,
    ) -> Result<crate::table_channel::TableRunner, String> {
        let t = spec.tables.as_ref().expect("a tables channel");
        let (warehouse, schema) = self.buckets.table(t)?;
        let table = crate::table_channel::TableRunner::table_spec(t, &schema)?;
        let stream = self
            .store
            .stream(&spec.source.stream)
            .map_err(|_| format!("source stream {} does not exist", spec.source.stream))?;
        Ok(crate::table_channel::TableRunner {
            spec: spec.clone(),
            table,
            warehouse,
            source: Arc::new(millrace_io::EmbeddedSource::new(stream)),
            errors: self.buckets.open(spec.dead_letter_bucket())?,
            metrics: Arc::new(DeliveryMetrics::new(&spec.name, &spec.source.stream)),
        })
    }

    fn spawn_table(&self, spec: &ChannelSpec, runner: crate::table_channel::TableRunner) -> Task {
        let metrics = runner.metrics.clone();
        self.registry().insert(spec.name.clone(), metrics.clone());
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(runner.run(stopped));
        Task {
            stop,
            handle,
            metrics,
        }
    }

    fn spawn(&self, spec: &ChannelSpec, delivery: Delivery) -> Task {
        let delivery = Arc::new(delivery);
        let metrics = delivery.metrics();
        self.registry().insert(spec.name.clone(), metrics.clone());
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(async move {
            delivery
                .run(RunMode::Forever, stopped)
                .await
                .map_err(|e| chain(&e))
        });
        Task {
            stop,
            handle,
            metrics,
        }
    }

    /// Stops a delivery (it flushes and checkpoints); a deleted channel's checkpoints go too.
    async fn stop(&mut self, name: &str, r: Running, deleted: bool) {
        if let Some(task) = r.task {
            let _ = task.stop.send(true);
            match task.handle.await {
                Ok(Err(e)) => {
                    tracing::warn!(channel = name, error = %e, "channel stopped with an error")
                }
                Err(e) => tracing::warn!(channel = name, error = %e, "channel task failed"),
                Ok(Ok(())) => {}
            }
            let mut registry = self.registry();
            if registry
                .get(name)
                .is_some_and(|m| Arc::ptr_eq(m, &task.metrics))
            {
                registry.remove(name);
            }
        }
        if deleted {
            remove_state(self.data_dir.channel_state(&r.id)).await;
            tracing::info!(channel = name, "channel deleted: delivery stopped");
        }
    }

    /// Reports stalled deliveries as FAILED (and ACTIVE again once they deliver); a delivery
    /// that ended on its own is FAILED and started again later.
    fn refresh(&mut self) {
        let now = millrace_common::time::now_ms();
        for (name, r) in &mut self.running {
            let Some(task) = &mut r.task else { continue };
            let state = match (&mut task.handle).now_or_never() {
                Some(ended) => {
                    let reason = match ended {
                        Ok(Ok(())) => "the delivery stopped".to_owned(),
                        Ok(Err(e)) => format!("the delivery stopped: {e}"),
                        Err(e) => format!("the delivery task failed: {e}"),
                    };
                    tracing::warn!(channel = %name, reason = %reason, "channel failed");
                    r.task = None;
                    r.since = Instant::now();
                    RunState::Failed(reason)
                }
                None => match task.metrics.snapshot(now).last_error {
                    Some(e) => RunState::Failed(format!("delivery stalled, retrying: {e}")),
                    None => RunState::Active,
                },
            };
            if state != r.state {
                self.channels.report(name, &r.id, r.revision, state.clone());
                r.state = state;
            }
        }
    }

    async fn stop_all(&mut self) {
        let running = std::mem::take(&mut self.running);
        for r in running.values() {
            if let Some(t) = &r.task {
                let _ = t.stop.send(true);
            }
        }
        for (name, r) in running {
            self.stop(&name, r, false).await;
        }
    }

    /// Removes checkpoint folders of channels that no longer exist (deleted while `up` was
    /// down). Only this supervisor creates them, and it has started none yet.
    async fn remove_orphans(&self) {
        let ids: Vec<String> = self.channels.list().into_iter().map(|s| s.id).collect();
        let dir = self.data_dir.channels();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && !ids.contains(&name) {
                remove_state(path).await;
            }
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<DeliveryMetrics>>> {
        self.metrics.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn remove_state(dir: PathBuf) {
    let shown = dir.display().to_string();
    let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await;
    if let Ok(Err(e)) = removed
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %shown, error = %e, "could not remove a deleted channel's state");
    }
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    out
}

/// `/status`'s `channels`: each channel's status as DescribeChannel shows it, and its
/// delivery's counters and lag while it runs.
pub fn status(channels: &Channels, metrics: &ChannelMetrics, now_ms: i64) -> serde_json::Value {
    let metrics = metrics.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let items: Vec<_> = channels
        .list()
        .iter()
        .map(|spec| {
            let (status, reason) = channels.status(spec);
            let delivery = metrics.get(&spec.name).map(|m| m.snapshot(now_ms));
            serde_json::json!({
                "name": spec.name,
                "arn": channels.arn(spec),
                "stream": spec.source.stream,
                "bucket": spec.destination.bucket,
                "status": status.as_str(),
                "reason": reason,
                "freshness_ms": delivery.as_ref().map(|d| d.freshness_ms),
                "delivery": delivery,
            })
        })
        .collect();
    serde_json::Value::Array(items)
}

/// One number of a channel's delivery snapshot.
type SeriesValue = fn(&millrace_delivery::metrics::Snapshot) -> f64;

/// `/metrics`' channel series: records, objects, error records and lag per running channel.
pub fn render_prometheus(metrics: &ChannelMetrics, now_ms: i64, out: &mut String) {
    let snapshots: Vec<_> = metrics
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .map(|m| m.snapshot(now_ms))
        .collect();
    if snapshots.is_empty() {
        return;
    }
    let series: [(&str, &str, SeriesValue); 5] = [
        (
            "millrace_channel_records_total",
            "Records a channel delivered.",
            |s| s.records as f64,
        ),
        (
            "millrace_channel_objects_total",
            "Objects a channel wrote.",
            |s| s.objects as f64,
        ),
        (
            "millrace_channel_error_records_total",
            "Records a channel wrote to its error prefix.",
            |s| s.error_records as f64,
        ),
        (
            "millrace_channel_stalled",
            "1 while a channel's delivery fails and is retried, else 0.",
            |s| f64::from(u8::from(s.last_error.is_some())),
        ),
        (
            "millrace_channel_freshness_seconds",
            "Age of the oldest record a channel has not delivered yet (its lag).",
            |s| s.freshness_ms as f64 / 1000.0,
        ),
    ];
    for (metric, help, value) in series {
        out.push_str(&format!("# HELP {metric} {help}\n"));
        for s in &snapshots {
            out.push_str(&format!(
                "{metric}{{channel=\"{}\",stream=\"{}\"}} {}\n",
                s.name,
                s.stream,
                value(s)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use millrace_gateway::channels::{Logging, S3Destination, Source};

    fn spec(template: Option<&str>) -> ChannelSpec {
        ChannelSpec {
            name: "c1".into(),
            id: registry::new_channel_id(),
            created_ms: 0,
            revision: 0,
            role_arn: "arn:aws:iam::000000000000:role/r".into(),
            source: Source {
                stream: "s".into(),
                stream_created_ms: 0,
                record_format: RecordFormat::String,
            },
            destination: S3Destination {
                bucket: "lake".into(),
                bucket_arn: "arn:aws:s3:::lake".into(),
                expected_owner: "000000000000".into(),
                output_key_template: template.map(str::to_owned),
                storage_class: None,
                compression: registry::Compression::Zstd,
                freshness_secs: 7,
                dead_letter: None,
            },
            kms_key_id: None,
            logging: Logging::default(),
            tags: Default::default(),
            tables: None,
        }
    }

    /// Every key template the gateway accepts is a prefix the delivery engine renders.
    #[test]
    fn accepted_templates_make_valid_deliveries() {
        for t in [
            None,
            Some("data/"),
            Some("x=1/!{timestamp:yyyy-MM-dd}/!{timestamp:HH}/"),
            Some("!{timestamp:yyyy/MM/dd}/part-"),
        ] {
            assert_eq!(t.and_then(registry::key_template_problem), None, "{t:?}");
            let c = delivery_config(&spec(t), 1024 * 1024);
            c.validate("channel").unwrap();
            assert_eq!(
                (
                    c.format,
                    c.compression,
                    c.buffer_interval_secs,
                    c.max_record_kib
                ),
                (Format::Concat, Compression::Zstd, 7, 1024)
            );
        }
    }

    #[test]
    fn buckets_resolve_to_lakes() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let config = Config::parse("[buckets]\narchive = \"arch\"\n").unwrap();
        let b = Buckets::from_config(&data, &config);
        assert_eq!(b.locations["lake"], data.lake().display().to_string());
        assert!(b.open("archive").is_ok());
        assert!(dir.path().join("arch").is_dir());
        let e = b.open("nope").unwrap_err();
        assert!(e.contains("buckets.nope"), "{e}");
    }
}
