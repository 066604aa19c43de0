//! The runner of the Firehose API's delivery streams under `millrace up`
//! (CreateDeliveryStream …, registry in `millrace_firehose`): one `millrace-delivery` per
//! delivery stream, kept in step with the registry by `up`'s
//! [`crate::supervise::Supervisor`]. A DirectPut stream's delivery reads its buffer (stream
//! `ds-<id>` of the store under `DATA_DIR/firehose/`), a KinesisStreamAsSource one the Kinesis
//! stream; both write into the bucket `[buckets]` maps (`lake`: the data dir's lake), with
//! checkpoints in `state/firehose/<id>/`. With source record backup on (`S3BackupMode`
//! Enabled), a second delivery, `<name>-backup`, writes the same records unprocessed into the
//! backup's bucket. UpdateDestination raises the version: the delivery
//! flushes, checkpoints and starts again with the new destination. A deleted stream's
//! checkpoints and buffer are removed after its delivery flushed.

use std::sync::Arc;

use millrace_common::layout::DataDir;
use millrace_delivery::Delivery;
use millrace_firehose::spec::{SourceKind, buffer_stream_name};
use millrace_firehose::{DeliveryStreamSpec, Firehose, RunState};
use tokio::sync::watch;

use crate::channels::Buckets;
use crate::supervise::{JobKey, JobState, Jobs, Task, chain, folder_names, remove_dir};

pub struct FirehoseJobs {
    pub data_dir: DataDir,
    pub firehose: Firehose,
    pub buckets: Buckets,
}

impl Jobs for FirehoseJobs {
    type Spec = DeliveryStreamSpec;
    const KIND: &'static str = "delivery stream";

    fn specs(&self) -> Vec<DeliveryStreamSpec> {
        self.firehose.registry.list()
    }

    fn key(spec: &DeliveryStreamSpec) -> JobKey {
        JobKey {
            name: spec.name.clone(),
            id: spec.id.clone(),
            revision: spec.version,
        }
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.firehose.registry.subscribe()
    }

    fn report(&self, key: &JobKey, state: JobState) {
        let state = match state {
            JobState::Active => RunState::Active,
            JobState::Failed(reason) => RunState::Failed(reason),
        };
        self.firehose
            .registry
            .report(&key.name, &key.id, key.revision, state);
    }

    fn start(&self, spec: &DeliveryStreamSpec) -> Result<Task, String> {
        let (main, backup) = self.build(spec)?;
        Ok(Task::deliveries(main, backup))
    }

    fn leftovers(&self) -> Vec<String> {
        let mut ids = folder_names(&self.data_dir.firehose());
        ids.extend(
            self.firehose
                .buffers
                .list()
                .into_iter()
                .filter_map(|s| s.name.strip_prefix("ds-").map(str::to_owned)),
        );
        ids.sort();
        ids.dedup();
        ids
    }

    fn remove(&self, id: &str) -> impl std::future::Future<Output = ()> + Send {
        let buffers = self.firehose.buffers.clone();
        let buffer = buffer_stream_name(id);
        let state = self.data_dir.firehose().join(id);
        async move {
            remove_dir(state).await;
            let removed = tokio::task::spawn_blocking(move || match buffers.delete(&buffer) {
                Err(millrace_stream::StreamError::StreamNotFound(_)) => Ok(()),
                r => r,
            })
            .await;
            if let Ok(Err(e)) = removed {
                tracing::warn!(error = %e, "could not remove a deleted delivery stream's buffer");
            }
        }
    }
}

impl FirehoseJobs {
    /// The stream's delivery, and its source record backup's when that is on.
    fn build(&self, spec: &DeliveryStreamSpec) -> Result<(Delivery, Option<Delivery>), String> {
        let lake = self.buckets.open(&spec.destination.bucket)?;
        let (store, stream) = match (&spec.kind, &spec.kinesis) {
            (SourceKind::KinesisStreamAsSource, Some(k)) => {
                (&self.firehose.kinesis, k.stream.clone())
            }
            _ => (&self.firehose.buffers, spec.buffer_stream()),
        };
        let handle = store
            .stream(&stream)
            .map_err(|_| format!("source stream {stream} does not exist"))?;
        let config = millrace_firehose::destination::delivery_config(spec, &stream)
            .map_err(|e| e.to_string())?;
        let source = Arc::new(millrace_io::EmbeddedSource::new(handle));
        let state = self.data_dir.firehose().join(&spec.id);
        let main = Delivery::new(config, lake, source.clone(), &state).map_err(|e| chain(&e))?;
        let backup = match millrace_firehose::destination::backup_config(spec, &stream)
            .map_err(|e| e.to_string())?
        {
            Some((bucket, config)) => {
                let lake = self.buckets.open(&bucket)?;
                Some(Delivery::new(config, lake, source, &state).map_err(|e| chain(&e))?)
            }
            None => None,
        };
        Ok((main, backup))
    }
}

/// `/status`'s `delivery_streams`: each one's status as DescribeDeliveryStream shows it, and
/// its delivery's counters and lag while it runs.
pub fn status(
    firehose: &Firehose,
    metrics: &crate::supervise::JobMetrics,
    now_ms: i64,
) -> serde_json::Value {
    let metrics = metrics.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let registry = &firehose.registry;
    let items: Vec<_> = registry
        .list()
        .iter()
        .map(|spec| {
            let status = registry.status(spec);
            let reason = match &status {
                millrace_firehose::Status::CreatingFailed(r) => Some(r.clone()),
                _ => None,
            };
            let delivery = metrics.get(&spec.name).map(|m| m.snapshot(now_ms));
            serde_json::json!({
                "name": spec.name,
                "arn": registry.arn(spec),
                "type": spec.kind.as_str(),
                "source": spec.kinesis.as_ref().map(|k| k.stream.clone()),
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
