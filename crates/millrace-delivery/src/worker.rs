//! The delivery loop: one task per shard reads, buffers, and flushes objects under the
//! intent → write → commit protocol described in the crate docs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use millrace_io::{RecordSource, ShardExit, SourceRecord, seq_cmp};
use millrace_lake::Lake;
use tokio::sync::watch;

use crate::checkpoint::{Checkpoint, CheckpointDir, checkpoint_dir};
use crate::config::DeliveryConfig;
use crate::encode::{Encoder, Object};
use crate::metrics::DeliveryMetrics;
use crate::{DeliveryError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Until the shutdown signal; buffers are flushed before returning.
    Forever,
    /// Until every shard has been read to its end once and everything read is in the lake.
    UntilCaughtUp,
}

/// The delivery's checkpoints: in the source when it keeps them (a Kafka consumer group, so
/// another member continues from them), else files under `STATE/delivery/NAME/`.
fn checkpoints_for(
    source: &dyn RecordSource,
    state_dir: &std::path::Path,
    name: &str,
) -> CheckpointDir {
    let files = checkpoint_dir(state_dir, name);
    match source.shared_checkpoints() {
        Some(shared) => files.shared(shared, |cp: &Checkpoint| cp.delivered.as_deref()),
        None => files,
    }
}

/// A configured delivery, ready to run.
pub struct Delivery {
    config: DeliveryConfig,
    encoder: Encoder,
    lake: Lake,
    /// Where error objects go when not beside the data (a channel's dead-letter bucket).
    error_lake: Option<Lake>,
    source: Arc<dyn RecordSource>,
    checkpoints: CheckpointDir,
    metrics: Arc<DeliveryMetrics>,
    state_dir: std::path::PathBuf,
    /// With `leases`: the shards this delivery holds (released when it stops).
    leases: Option<millrace_io::Leases>,
}

/// How long an idle read waits for new records before checking for shutdown again.
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// A shard's checkpoint as the loop knows it, and whether the file is behind it.
struct Progress {
    cp: Checkpoint,
    /// Objects through `cp.delivered` are committed while the file still names them as
    /// pending: the next flush's intent stores both, or [`Delivery::save`] when the shard
    /// idles or stops.
    unsaved: bool,
}

impl Delivery {
    pub fn new(
        config: DeliveryConfig,
        lake: Lake,
        source: Arc<dyn RecordSource>,
        state_dir: &std::path::Path,
    ) -> Result<Self> {
        config.validate("delivery").map_err(DeliveryError::Config)?;
        Ok(Self {
            encoder: Encoder::new(&config)?,
            checkpoints: checkpoints_for(&*source, state_dir, &config.name),
            metrics: Arc::new(DeliveryMetrics::new(&config.name, &config.stream)),
            config,
            lake,
            error_lake: None,
            source,
            state_dir: state_dir.to_path_buf(),
            leases: None,
        })
    }

    /// With the configuration's `leases`, shares the stream's shards with the other
    /// deliveries of this name through leases there (reached with `s3`); checkpoints then
    /// live in the leases. Without, changes nothing.
    pub fn with_leases(mut self, s3: &millrace_lake::S3Options) -> Result<Self> {
        let ttl = millrace_io::leases::lease_time(self.config.lease_seconds);
        let (source, leases) = millrace_io::Leases::share(
            self.source.clone(),
            &self.config.stream,
            self.config.leases.as_deref(),
            s3,
            &format!("delivery-{}", self.config.name),
            ttl,
            |cp| serde_json::from_slice::<Checkpoint>(cp).is_ok_and(|c| c.ended),
        )
        .map_err(|e| DeliveryError::Config(format!("delivery.{e}")))?;
        if leases.is_some() {
            self.checkpoints = checkpoints_for(&*source, &self.state_dir, &self.config.name);
            self.source = source;
            self.leases = leases;
        }
        Ok(self)
    }

    /// Writes error objects into `lake` instead of the data's lake.
    pub fn with_error_lake(mut self, lake: Lake) -> Self {
        self.error_lake = Some(lake);
        self
    }

    pub fn metrics(&self) -> Arc<DeliveryMetrics> {
        self.metrics.clone()
    }

    pub fn config(&self) -> &DeliveryConfig {
        &self.config
    }

    /// Runs every shard until `mode` says stop, children of a reshard after their parents
    /// (`millrace_io::for_each_shard`). The first shard error stops the delivery.
    pub async fn run(
        self: Arc<Self>,
        mode: RunMode,
        shutdown: watch::Receiver<bool>,
    ) -> Result<()> {
        let source = self.source.clone();
        let checkpoints = self.checkpoints.clone();
        let result = millrace_io::for_each_shard(
            &*source,
            mode == RunMode::UntilCaughtUp,
            shutdown.clone(),
            |shard| checkpoints.load(shard).is_ok_and(|c| c.ended),
            |shard| {
                let me = self.clone();
                let shutdown = shutdown.clone();
                async move { me.shard_task(&shard, mode, shutdown).await }
            },
        )
        .await;
        if let Some(leases) = &self.leases {
            // The others take this delivery's shards at once instead of after the lease time.
            leases.release_all().await;
        }
        result
    }

    /// A shard's loop; in [`RunMode::Forever`] a failure (a bad object store, a full disk, a
    /// folder that cannot be made) does not end the delivery: the shard shows as stalled with
    /// its error and real lag, and retries from its checkpoint with a growing pause (up to
    /// 30 s) until it delivers again or is stopped. Nothing is skipped.
    async fn shard_task(
        &self,
        shard: &str,
        mode: RunMode,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<ShardExit> {
        let mut pause = Duration::from_millis(200);
        loop {
            let err = match self.shard_loop(shard, mode, shutdown.clone()).await {
                Ok(exit) => return Ok(exit),
                Err(e) if e.is_not_owned() => {
                    // Records read but not flushed are the next owner's to deliver: its
                    // checkpoint starts before them.
                    tracing::info!(delivery = %self.config.name, shard, "shard handed to another member of the group");
                    self.metrics.released(shard);
                    return Ok(ShardExit::Released);
                }
                Err(e) if mode == RunMode::Forever && !*shutdown.borrow() => e,
                Err(e) => return Err(e),
            };
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            self.metrics
                .stalled(shard, &message, millrace_common::time::now_ms());
            tracing::warn!(
                delivery = %self.config.name,
                shard,
                error = %message,
                retry_in_ms = pause.as_millis() as u64,
                "delivery stalled; retrying from the checkpoint"
            );
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return Err(err),
            }
            pause = (pause * 2).min(Duration::from_secs(30));
        }
    }

    async fn shard_loop(
        &self,
        shard: &str,
        mode: RunMode,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<ShardExit> {
        let mut cp = self.load(shard).await?;
        if cp.ended {
            return Ok(ShardExit::Ended);
        }
        if let Some(pending) = cp.pending.clone() {
            self.replay(shard, &mut cp, &pending).await?;
        }
        if let Some(d) = &cp.delivered {
            self.metrics.delivered(shard, d);
        }
        let mut at = Progress { cp, unsaved: false };
        let interval = Duration::from_secs(self.config.buffer_interval_secs);
        let max_bytes = (self.config.buffer_size_mib * 1024 * 1024) as usize;
        let mut buffer: Vec<SourceRecord> = Vec::new();
        let mut buffered_bytes = 0usize;
        let mut opened: Option<Instant> = None;
        let mut after = at.cp.delivered.clone();
        loop {
            // Read to the end once: an empty page is the end, so never wait for more records
            // (waiting out the buffer interval made `--until-caught-up` take a minute).
            let wait = match opened {
                _ if mode == RunMode::UntilCaughtUp => Duration::ZERO,
                Some(t) => interval.saturating_sub(t.elapsed()),
                None => IDLE_WAIT,
            };
            let batch = tokio::select! {
                b = self.source.read(shard, after.as_deref(), wait) => b?,
                _ = shutdown.changed() => {
                    self.settle(shard, &mut at, &mut buffer).await?;
                    return Ok(ShardExit::Stopped);
                }
            };
            let ended = batch.ended;
            for r in batch.records {
                if opened.is_none() {
                    opened = Some(Instant::now());
                    self.metrics.pending_since(shard, r.arrival_ms);
                }
                buffered_bytes += r.data.len();
                after = Some(r.sequence.clone());
                buffer.push(r);
            }
            let due = opened.is_some_and(|t| t.elapsed() >= interval);
            if !buffer.is_empty() && (due || buffered_bytes >= max_bytes) {
                self.flush(shard, &mut at, &mut buffer).await?;
                buffered_bytes = 0;
                opened = None;
            } else if buffer.is_empty() && at.unsaved {
                // Idle: no next intent to carry the last commit, so store it on its own.
                self.save(shard, &mut at).await?;
            }
            if ended {
                // A reshard closed the shard and this was its last record: deliver the rest
                // and record the end, so its children start (now and after a restart).
                self.flush(shard, &mut at, &mut buffer).await?;
                at.cp.ended = true;
                self.save(shard, &mut at).await?;
                return Ok(ShardExit::Ended);
            }
            if mode == RunMode::UntilCaughtUp && batch.caught_up {
                self.settle(shard, &mut at, &mut buffer).await?;
                return Ok(ShardExit::Stopped);
            }
            if *shutdown.borrow() {
                self.settle(shard, &mut at, &mut buffer).await?;
                return Ok(ShardExit::Stopped);
            }
        }
    }

    /// Writes the buffer's objects; the checkpoint file says they are delivered once the
    /// next flush's intent (or [`Delivery::save`]) is stored.
    ///
    /// One checkpoint write per flush: the intent names this range (`pending`) and, in the
    /// same file, the previous flush's end as `delivered`. The objects are encoded while the
    /// intent is being stored; nothing reaches the lake before the intent is durable, so a
    /// crash at any point replays exactly the range the file names, into the same objects.
    async fn flush(
        &self,
        shard: &str,
        at: &mut Progress,
        buffer: &mut Vec<SourceRecord>,
    ) -> Result<()> {
        let Some(last) = buffer.last().map(|r| r.sequence.clone()) else {
            return Ok(());
        };
        at.cp.pending = Some(last.clone());
        let records = std::mem::take(buffer);
        let (stored, objects) = tokio::join!(
            self.store(shard, &at.cp),
            self.encode(shard.to_owned(), records)
        );
        stored?;
        self.put(objects?).await?;
        at.cp.delivered = Some(last.clone());
        at.cp.pending = None;
        at.unsaved = true;
        self.metrics.delivered(shard, &last);
        Ok(())
    }

    /// Stores the checkpoint if objects were committed since it was last stored.
    async fn save(&self, shard: &str, at: &mut Progress) -> Result<()> {
        self.store(shard, &at.cp).await?;
        at.unsaved = false;
        Ok(())
    }

    /// Before the loop returns: the buffer delivered and the checkpoint stored.
    async fn settle(
        &self,
        shard: &str,
        at: &mut Progress,
        buffer: &mut Vec<SourceRecord>,
    ) -> Result<()> {
        self.flush(shard, at, buffer).await?;
        if at.unsaved {
            self.save(shard, at).await?;
        }
        Ok(())
    }

    /// Re-reads the records of an interrupted flush and writes the same objects again.
    async fn replay(&self, shard: &str, cp: &mut Checkpoint, pending: &str) -> Result<()> {
        let mut records = Vec::new();
        let mut after = cp.delivered.clone();
        'read: loop {
            let batch = self
                .source
                .read(shard, after.as_deref(), Duration::ZERO)
                .await?;
            if batch.records.is_empty() {
                break; // trimmed by retention: deliver what is left
            }
            for r in batch.records {
                if seq_cmp(&r.sequence, pending).is_gt() {
                    break 'read;
                }
                after = Some(r.sequence.clone());
                records.push(r);
            }
        }
        tracing::info!(
            delivery = %self.config.name,
            shard,
            records = records.len(),
            "replaying an interrupted flush"
        );
        self.write(shard, records).await?;
        cp.delivered = Some(pending.to_owned());
        cp.pending = None;
        self.store(shard, cp).await
    }

    async fn write(&self, shard: &str, records: Vec<SourceRecord>) -> Result<()> {
        let objects = self.encode(shard.to_owned(), records).await?;
        self.put(objects).await
    }

    /// Encodes records into objects (Parquet, compression: CPU work, off the async threads).
    async fn encode(&self, shard: String, records: Vec<SourceRecord>) -> Result<Vec<Object>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let encoder = self.encoder.clone();
        tokio::task::spawn_blocking(move || encoder.encode(&shard, &records))
            .await
            .map_err(|source| DeliveryError::Task {
                what: "encoding objects",
                source,
            })?
    }

    /// Commits objects to the lake (error objects to the error lake when there is one).
    async fn put(&self, objects: Vec<Object>) -> Result<()> {
        for o in objects {
            let lake = match (&self.error_lake, o.is_error) {
                (Some(errors), true) => errors,
                _ => &self.lake,
            };
            lake.put(&o.key, o.bytes).await?;
            if o.is_error {
                self.metrics
                    .error_records
                    .fetch_add(o.records, Ordering::Relaxed);
                tracing::warn!(delivery = %self.config.name, key = %o.key, records = o.records, "records sent to the error prefix");
            } else {
                self.metrics.records.fetch_add(o.records, Ordering::Relaxed);
                self.metrics
                    .bytes
                    .fetch_add(o.data_bytes, Ordering::Relaxed);
            }
            self.metrics.objects.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn load(&self, shard: &str) -> Result<Checkpoint> {
        let c = self.checkpoints.clone();
        let s = shard.to_owned();
        Ok(tokio::task::spawn_blocking(move || c.load(&s))
            .await
            .map_err(|source| DeliveryError::Task {
                what: "loading a checkpoint",
                source,
            })??)
    }

    async fn store(&self, shard: &str, cp: &Checkpoint) -> Result<()> {
        let c = self.checkpoints.clone();
        let s = shard.to_owned();
        let cp = cp.clone();
        Ok(tokio::task::spawn_blocking(move || c.store(&s, &cp))
            .await
            .map_err(|source| DeliveryError::Task {
                what: "storing a checkpoint",
                source,
            })??)
    }
}
