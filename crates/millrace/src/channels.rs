//! The runner of the Kinesis API's channels under `millrace up` (CreateChannel …, registry in
//! `millrace_gateway::channels`): one `millrace-delivery` pipeline per channel, kept in step
//! with the registry by `up`'s [`crate::supervise::Supervisor`] ([`ChannelJobs`]). A new channel starts; one whose revision UpdateChannel
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
use std::sync::Arc;

use millrace_common::layout::DataDir;
use millrace_delivery::{Compression, Delivery, DeliveryConfig, DeliveryMetrics, Format};
use millrace_gateway::channels::{
    self as registry, ChannelSpec, Channels, DATA_DIR_BUCKET, RecordFormat, RunState,
};
use millrace_lake::{Lake, S3Options};
use millrace_stream::Store;
use tokio::sync::watch;

use crate::config::Config;
use crate::supervise::{JobKey, JobMetrics, JobState, Jobs, Task, chain, folder_names, remove_dir};

/// Each running channel's delivery counters, by channel name, for `/metrics` and `/status`.
/// Each running channel's delivery counters, by channel name, for `/metrics` and `/status`.
pub type ChannelMetrics = JobMetrics;

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
    pub fn open(&self, bucket: &str) -> Result<Lake, String> {
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

/// The channels of the registry as jobs of `up`'s [`crate::supervise::Supervisor`]: one delivery (or table
/// runner) per channel, checkpoints in `state/channels/<channel id>/`.
pub struct ChannelJobs {
    pub data_dir: DataDir,
    pub store: Arc<Store>,
    pub channels: Arc<Channels>,
    pub buckets: Buckets,
}

impl Jobs for ChannelJobs {
    type Spec = ChannelSpec;
    const KIND: &'static str = "channel";

    fn specs(&self) -> Vec<ChannelSpec> {
        self.channels.list()
    }

    fn key(spec: &ChannelSpec) -> JobKey {
        JobKey {
            name: spec.name.clone(),
            id: spec.id.clone(),
            revision: spec.revision,
        }
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.channels.subscribe()
    }

    fn report(&self, key: &JobKey, state: JobState) {
        let state = match state {
            JobState::Active => RunState::Active,
            JobState::Failed(reason) => RunState::Failed(reason),
        };
        self.channels
            .report(&key.name, &key.id, key.revision, state);
    }

    fn start(&self, spec: &ChannelSpec) -> Result<Task, String> {
        match &spec.tables {
            Some(_) => {
                let runner = self.table_runner(spec)?;
                let metrics = runner.metrics.clone();
                Ok(Task::spawn(metrics, move |stopped| runner.run(stopped)))
            }
            None => self.build(spec).map(Task::delivery),
        }
    }

    fn leftovers(&self) -> Vec<String> {
        folder_names(&self.data_dir.channels())
    }

    fn remove(&self, id: &str) -> impl std::future::Future<Output = ()> + Send {
        remove_dir(self.data_dir.channel_state(id))
    }
}

impl ChannelJobs {
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
            id: millrace_common::ids::uuid_v4(),
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
