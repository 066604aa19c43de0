//! Streaming inference: read a stream, score each record on arrival with a registry model, and
//! put `{id fields, predicted_label, probability, model, model_version, scored_at, source_*}`
//! on an output stream; records that cannot be scored go to an error stream with the reason.
//!
//! Exactly one output per input, across crashes: the shard's checkpoint records the last input
//! whose output is acknowledged and, per output shard, the last sequence number put (the
//! marks). Outputs put after the checkpoint (a crash, or the up to 250 ms between checkpoints)
//! are found on restart by reading the output streams from the marks: the inputs they answer
//! (`source_shard`, `source_sequence`) are skipped, the rest scored.
//!
//! Every record put fits the stream's per-record limit (`fit`): an error record keeps as much
//! of its input as fits, with the input's size and hash; a prediction too large to put (huge id
//! fields) becomes an error record.

pub mod checkpoint;
mod fit;

use millrace_automl::explain::Detail;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use millrace_automl::Task;
use millrace_common::time::{now_ms, rfc3339};
use millrace_io::sink::{Retry, put_all};
use millrace_io::{
    Placed, RecordSink, RecordSource, ShardExit, SinkRecord, SourceRecord, Streams, seq_cmp,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::endpoint::Loaded;
use crate::error::ServeError;
use crate::input::{self, BodyFormat, Record};
use crate::registry::Registry;
use checkpoint::{CheckpointDir, ScoreCheckpoint, checkpoint_dir};

/// One `[[scoring]]` table of `millrace.toml` (or the `millrace score` flags).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    /// Names the checkpoints (`state/scoring/NAME/`); defaults to `STREAM-to-TO_STREAM`.
    #[serde(default)]
    pub name: Option<String>,
    /// The input stream.
    pub stream: String,
    /// `NAME` follows the registry (promotions swap in); `NAME:vN` pins a version.
    pub model: String,
    /// Where predictions go (created on demand if missing).
    pub to_stream: String,
    /// Where unscorable records go; defaults to `TO_STREAM-errors`.
    #[serde(default)]
    pub error_stream: Option<String>,
    /// Input fields copied into each prediction; defaults to the model's ID columns.
    #[serde(default)]
    pub id_fields: Option<Vec<String>>,
    /// `explain = K` (or `"all"`): each prediction carries an `explanation` object
    /// (`base_value`, `margin`, `space`, `contributions`), as the endpoint's `?explain=K`.
    #[serde(default, deserialize_with = "explain_setting")]
    pub explain: Option<Detail>,
    /// `s3://bucket/prefix`: scorers of this name on several machines share a Kinesis
    /// stream's shards through leases kept there (`scoring-NAME/`), checkpoints included.
    /// Kafka topics need none: their consumer group shares the partitions.
    #[serde(default)]
    pub leases: Option<String>,
    /// Seconds after which a scorer that stopped renewing its leases (killed) loses its shards
    /// to the others (3 to 600; default 10).
    #[serde(default)]
    pub lease_seconds: Option<u64>,
}

/// `explain = 3` or `explain = "all"` (or `"3"`).
fn explain_setting<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Detail>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Count(u64),
        Text(String),
    }
    let text = match Option::<Raw>::deserialize(d)? {
        None => return Ok(None),
        Some(Raw::Count(n)) => n.to_string(),
        Some(Raw::Text(s)) => s,
    };
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

impl ScoringConfig {
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let short = millrace_io::kafka::short_name;
            format!("{}-to-{}", short(&self.stream), short(&self.to_stream))
        })
    }

    pub fn error_stream(&self) -> String {
        self.error_stream
            .clone()
            .unwrap_or_else(|| format!("{}-errors", self.to_stream))
    }

    /// Checks the names; `key` prefixes messages (`scoring[0]`).
    pub fn validate(&self, key: &str) -> Result<(), String> {
        for (field, value) in [
            ("stream", &self.stream),
            ("model", &self.model),
            ("to_stream", &self.to_stream),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{key}.{field} must not be empty"));
            }
            if field != "model" {
                millrace_io::check_stream_name(value)
                    .map_err(|e| format!("{key}.{field} = {e}"))?;
            }
        }
        if let Some(errors) = &self.error_stream {
            millrace_io::check_stream_name(errors)
                .map_err(|e| format!("{key}.error_stream = {e}"))?;
        }
        // The name becomes the folder state/scoring/<name>/: the one rule for such names.
        millrace_common::keys::check_name(&self.name()).map_err(|e| format!("{key}.name = {e}"))?;
        if self.stream == self.to_stream || self.stream == self.error_stream() {
            return Err(format!(
                "{key}.to_stream: writing predictions to the input stream `{}` would score them again",
                self.stream
            ));
        }
        millrace_io::Leases::check_settings(key, self.leases.as_deref(), self.lease_seconds)?;
        if self.to_stream == self.error_stream() {
            return Err(format!(
                "{key}.error_stream must differ from to_stream `{}`",
                self.to_stream
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Until the shutdown signal.
    Forever,
    /// Until every shard has been read to its end once and every output is acknowledged.
    UntilCaughtUp,
}

/// Counters for status and `/metrics`.
#[derive(Debug, Default)]
pub struct ScoreMetrics {
    pub records: AtomicU64,
    pub errors: AtomicU64,
    pub model_version: AtomicU64,
    /// Arrival time (ms) of the newest input scored.
    pub last_arrival_ms: AtomicI64,
    /// When (ms) the newest output was acknowledged.
    pub last_scored_ms: AtomicI64,
}

/// Where a scorer puts its outputs: predictions and unscorable records.
#[derive(Clone)]
struct Sinks {
    out: Arc<dyn RecordSink>,
    errors: Arc<dyn RecordSink>,
}

/// A configured scorer, ready to run.
pub struct Scorer {
    config: ScoringConfig,
    name: String,
    error_stream: String,
    registry: Registry,
    streams: Streams,
    /// The input: for a Kafka topic, a member of the consumer group `millrace-scoring-NAME`,
    /// so scorers of the same name share its partitions and their checkpoints.
    source: Arc<dyn RecordSource>,
    /// With `leases`: the shards this scorer holds (released when it stops).
    leases: Option<millrace_io::Leases>,
    checkpoints: CheckpointDir,
    model: ArcSwap<Loaded>,
    follow: bool,
    metrics: Arc<ScoreMetrics>,
    /// Where drift reports go (`DATA_DIR/state/monitor/MODEL.json`).
    data_dir: std::path::PathBuf,
    drift_saved: std::sync::Mutex<std::time::Instant>,
}

/// How often the drift report of the records scored is saved (when new ones arrived).
const DRIFT_SAVE_EVERY: Duration = Duration::from_secs(5);

/// Records scored together: one put per output stream and one checkpoint per chunk.
const CHUNK: usize = 500;
/// Longest time between checkpoints while records flow.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// How long an idle read waits before checking for shutdown again.
const IDLE_WAIT: Duration = Duration::from_millis(500);
/// Chunks above this many records are scored on a blocking thread.
const INLINE_RECORDS: usize = 64;

impl Scorer {
    /// Loads the model and checks the configuration (the streams are checked by `run`).
    pub fn new(
        config: ScoringConfig,
        registry: Registry,
        streams: Streams,
        state_dir: &Path,
        s3: &millrace_lake::S3Options,
    ) -> Result<Scorer, ServeError> {
        config.validate("scoring").map_err(ServeError::Registry)?;
        let (model, version) = registry.load(&config.model)?;
        let bare = config.model.split(':').next().unwrap_or(&config.model);
        let model_name = if model.name.is_empty() {
            bare.to_owned()
        } else {
            model.name.clone()
        };
        let name = config.name();
        let metrics = Arc::new(ScoreMetrics::default());
        metrics
            .model_version
            .store(u64::from(version), Ordering::Relaxed);
        let source = streams.group_source(&config.stream, &format!("millrace-scoring-{name}"))?;
        let (source, leases) = Self::leased(&config, &name, source, s3)?;
        let checkpoints = match source.shared_checkpoints() {
            Some(shared) => checkpoint_dir(state_dir, &name)
                .shared(shared, |cp: &ScoreCheckpoint| cp.scored.as_deref()),
            None => checkpoint_dir(state_dir, &name),
        };
        Ok(Scorer {
            follow: !config.model.contains(':') && !Path::new(&config.model).exists(),
            model: ArcSwap::from_pointee(Loaded::new(&model_name, version, model)),
            error_stream: config.error_stream(),
            source,
            leases,
            checkpoints,
            name,
            config,
            registry,
            streams,
            metrics,
            data_dir: state_dir.parent().unwrap_or(state_dir).to_owned(),
            drift_saved: std::sync::Mutex::new(std::time::Instant::now()),
        })
    }

    /// With `leases`, the input shared with the other scorers of this name through shard
    /// leases (`millrace_io::leases`).
    fn leased(
        config: &ScoringConfig,
        name: &str,
        source: Arc<dyn RecordSource>,
        s3: &millrace_lake::S3Options,
    ) -> Result<(Arc<dyn RecordSource>, Option<millrace_io::Leases>), ServeError> {
        let ttl = millrace_io::leases::lease_time(config.lease_seconds);
        millrace_io::Leases::share(
            source,
            &config.stream,
            config.leases.as_deref(),
            s3,
            &format!("scoring-{name}"),
            ttl,
            |cp| serde_json::from_slice::<ScoreCheckpoint>(cp).is_ok_and(|c| c.ended),
        )
        .map_err(ServeError::Invalid)
    }

    /// Saves the drift report of the current version's window when it has new records and
    /// the last save is older than `DRIFT_SAVE_EVERY` (or `force`).
    async fn save_drift(&self, force: bool) {
        {
            let mut last = self.drift_saved.lock().expect("drift clock");
            if !force && last.elapsed() < DRIFT_SAVE_EVERY {
                return;
            }
            *last = std::time::Instant::now();
        }
        let loaded = self.model.load_full();
        let data_dir = self.data_dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(w) = &loaded.drift
                && w.take_changed()
                && let Err(e) = w.report().save(&data_dir, &loaded.name)
            {
                tracing::warn!(error = %e, "cannot save the drift report");
            }
        })
        .await;
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &ScoringConfig {
        &self.config
    }

    pub fn metrics(&self) -> Arc<ScoreMetrics> {
        self.metrics.clone()
    }

    /// The model served now: (name, version).
    pub fn serving(&self) -> (String, u32) {
        let m = self.model.load();
        (m.name.clone(), m.version)
    }

    pub fn checkpoints(&self) -> &CheckpointDir {
        &self.checkpoints
    }

    /// Swaps in the registry's current version when it changed (a bare model name only).
    pub fn reload(&self) {
        if !self.follow {
            return;
        }
        let name = self.model.load().name.clone();
        let Ok(v) = self.registry.current(&name) else {
            return;
        };
        if v == self.model.load().version {
            return;
        }
        match self.registry.load(&format!("{name}:v{v}")) {
            Ok((model, version)) => {
                self.model
                    .store(Arc::new(Loaded::new(&name, version, model)));
                self.metrics
                    .model_version
                    .store(u64::from(version), Ordering::Relaxed);
                tracing::info!(scorer = %self.name, model = %name, version, "scoring with the new version");
            }
            Err(e) => {
                tracing::warn!(scorer = %self.name, error = %e, "cannot load the new version; still scoring with the old one")
            }
        }
    }

    /// Scores every shard until `mode` says stop. The first shard error stops the scorer.
    /// With leases, they are let go when it stops, whyever it stops.
    pub async fn run(
        self: Arc<Self>,
        mode: RunMode,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), ServeError> {
        let result = self.clone().score_shards(mode, shutdown).await;
        if let Some(leases) = &self.leases {
            // The others take this scorer's shards at once instead of after the lease time.
            leases.release_all().await;
        }
        result
    }

    async fn score_shards(
        self: Arc<Self>,
        mode: RunMode,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), ServeError> {
        if !self.streams.exists(&self.config.stream).await? {
            return Err(ServeError::Stream(format!(
                "input stream {} does not exist",
                self.config.stream
            )));
        }
        for out in [&self.config.to_stream, &self.error_stream] {
            if self.streams.ensure(out, None).await? {
                tracing::debug!(stream = %out, "created output stream");
            }
        }
        let source = self.source.clone();
        let sinks = Sinks {
            out: self.streams.sink(&self.config.to_stream)?,
            errors: self.streams.sink(&self.error_stream)?,
        };
        let reloader = {
            let me = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let me = me.clone();
                    let _ = tokio::task::spawn_blocking(move || me.reload()).await;
                }
            })
        };
        // Children of a reshard are scored after their parents (millrace_io::for_each_shard).
        let checkpoints = self.checkpoints.clone();
        let result = millrace_io::for_each_shard(
            &*source,
            mode == RunMode::UntilCaughtUp,
            shutdown.clone(),
            |shard| checkpoints.load(shard).is_ok_and(|c| c.ended),
            |shard| {
                let me = self.clone();
                let shutdown = shutdown.clone();
                let (source, sinks) = (source.clone(), sinks.clone());
                async move {
                    match me.shard_loop(&shard, &*source, &sinks, mode, shutdown).await {
                        // A consumer group gave the shard to another scorer of this name: its
                        // outputs since the checkpoint are found by that scorer's scan.
                        Err(e) if e.is_not_owned() => {
                            tracing::info!(scorer = %me.name, shard, "shard handed to another member of the group");
                            Ok(ShardExit::Released)
                        }
                        other => other,
                    }
                }
            },
        )
        .await;
        reloader.abort();
        result
    }

    async fn shard_loop(
        &self,
        shard: &str,
        source: &dyn RecordSource,
        sinks: &Sinks,
        mode: RunMode,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<ShardExit, ServeError> {
        let checkpoints = self.checkpoints.clone();
        let sh = shard.to_owned();
        let mut cp = tokio::task::spawn_blocking(move || checkpoints.load(&sh))
            .await
            .map_err(|e| ServeError::Stream(e.to_string()))?
            .map_err(ServeError::Checkpoint)?;
        if cp.ended {
            return Ok(ShardExit::Ended);
        }
        // Outputs put after the checkpoint (a crash between put and checkpoint).
        let mut answered = self.answered_since(shard, &cp).await?;
        if !answered.is_empty() {
            tracing::info!(scorer = %self.name, shard, outputs = answered.len(), "found outputs put after the last checkpoint; they will not be put again");
        }
        self.metrics
            .records
            .fetch_add(cp.records, Ordering::Relaxed);
        self.metrics.errors.fetch_add(cp.errors, Ordering::Relaxed);
        // The checkpoint only bounds what a restart rereads and scans (correctness comes from
        // the scan), so it is written at most every CHECKPOINT_EVERY, and on the way out.
        let mut stored = cp.clone();
        let mut stored_at = std::time::Instant::now();
        let result = loop {
            let wait = match mode {
                RunMode::UntilCaughtUp => Duration::ZERO,
                RunMode::Forever if cp != stored => CHECKPOINT_EVERY,
                RunMode::Forever => IDLE_WAIT,
            };
            let batch = tokio::select! {
                b = source.read(shard, cp.scored.as_deref(), wait) => {
                    match b {
                        Ok(b) => b,
                        Err(e) => break Err(ServeError::StreamIo(e)),
                    }
                }
                _ = shutdown.changed() => break Ok(ShardExit::Stopped),
            };
            for chunk in batch.records.chunks(CHUNK) {
                self.score_chunk(shard, chunk, sinks, &mut cp, &mut answered)
                    .await?;
            }
            if cp != stored && stored_at.elapsed() >= CHECKPOINT_EVERY {
                self.store(shard, &cp).await?;
                stored = cp.clone();
                stored_at = std::time::Instant::now();
                self.save_drift(false).await;
            }
            if batch.ended {
                // The shard's last record is scored: record the end so its children start.
                cp.ended = true;
                break Ok(ShardExit::Ended);
            }
            if (mode == RunMode::UntilCaughtUp && batch.caught_up) || *shutdown.borrow() {
                break Ok(ShardExit::Stopped);
            }
        };
        if cp != stored {
            self.store(shard, &cp).await?;
        }
        self.save_drift(true).await;
        result
    }

    /// Writes the checkpoint durably (on a blocking thread: it fsyncs).
    async fn store(&self, shard: &str, cp: &ScoreCheckpoint) -> Result<(), ServeError> {
        let (checkpoints, sh, snapshot) = (self.checkpoints.clone(), shard.to_owned(), cp.clone());
        tokio::task::spawn_blocking(move || checkpoints.store(&sh, &snapshot))
            .await
            .map_err(|e| ServeError::Stream(e.to_string()))?
            .map_err(ServeError::Checkpoint)?;
        Ok(())
    }

    /// Inputs of `shard` whose output is on the output streams after the checkpoint's marks.
    async fn answered_since(
        &self,
        shard: &str,
        cp: &ScoreCheckpoint,
    ) -> Result<HashSet<String>, ServeError> {
        let mut answered = HashSet::new();
        for out in [&self.config.to_stream, &self.error_stream] {
            let src = self.streams.source(out)?;
            let out_shards = src.shards().await?;
            for os in out_shards {
                let mut after = cp.marks.get(&format!("{out}/{os}")).cloned();
                loop {
                    let b = src.read(&os, after.as_deref(), Duration::ZERO).await?;
                    for r in &b.records {
                        if let Ok(v) = serde_json::from_slice::<Value>(&r.data)
                            && v.get("source_stream").and_then(Value::as_str)
                                == Some(self.config.stream.as_str())
                            && v.get("source_shard").and_then(Value::as_str) == Some(shard)
                            && let Some(seq) = v.get("source_sequence").and_then(Value::as_str)
                            && cp.scored.as_deref().is_none_or(|s| seq_cmp(seq, s).is_gt())
                        {
                            answered.insert(seq.to_owned());
                        }
                    }
                    if let Some(last) = b.records.last() {
                        after = Some(last.sequence.clone());
                    }
                    if b.caught_up || b.records.is_empty() {
                        break;
                    }
                }
            }
        }
        Ok(answered)
    }

    async fn score_chunk(
        &self,
        shard: &str,
        chunk: &[SourceRecord],
        sinks: &Sinks,
        cp: &mut ScoreCheckpoint,
        answered: &mut HashSet<String>,
    ) -> Result<(), ServeError> {
        let todo: Vec<SourceRecord> = chunk
            .iter()
            .filter(|r| !answered.remove(&r.sequence))
            .cloned()
            .collect();
        let todo_len = todo.len();
        let loaded = self.model.load_full();
        let (outs, errs) = if todo.len() > INLINE_RECORDS {
            let (stream, shard, ids, explain) = (
                self.config.stream.clone(),
                shard.to_owned(),
                self.config.id_fields.clone(),
                self.config.explain,
            );
            tokio::task::spawn_blocking(move || {
                score_records(&loaded, &stream, &shard, ids.as_deref(), explain, &todo)
            })
            .await
            .map_err(|e| ServeError::Stream(e.to_string()))?
        } else {
            score_records(
                &loaded,
                &self.config.stream,
                shard,
                self.config.id_fields.as_deref(),
                self.config.explain,
                &todo,
            )
        };
        // Inputs answered before a crash count once, as what they were put as: predictions.
        let recovered = (chunk.len() - todo_len) as u64;
        let (n_out, n_err) = (outs.len() as u64 + recovered, errs.len() as u64);
        let (placed_out, placed_err) = tokio::try_join!(
            put_all(&*sinks.out, &outs, Retry::default()),
            put_all(&*sinks.errors, &errs, Retry::default())
        )?;
        crash_point();
        mark(&mut cp.marks, &self.config.to_stream, &placed_out);
        mark(&mut cp.marks, &self.error_stream, &placed_err);
        let last = chunk.last().expect("chunks are not empty");
        cp.scored = Some(last.sequence.clone());
        cp.records += n_out;
        cp.errors += n_err;
        self.metrics.records.fetch_add(n_out, Ordering::Relaxed);
        self.metrics.errors.fetch_add(n_err, Ordering::Relaxed);
        self.metrics
            .last_arrival_ms
            .fetch_max(last.arrival_ms, Ordering::Relaxed);
        self.metrics
            .last_scored_ms
            .store(now_ms(), Ordering::Relaxed);
        Ok(())
    }
}

/// Crash tests: `MILLRACE_FAILPOINT=score-after-put:N` aborts the process after the N-th
/// chunk's outputs are acknowledged and before its checkpoint is written — the window the
/// restart scan exists for. Unset (always, outside tests) it costs one relaxed load.
fn crash_point() {
    static AFTER: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    static SEEN: AtomicU64 = AtomicU64::new(0);
    let after = AFTER.get_or_init(|| {
        std::env::var("MILLRACE_FAILPOINT")
            .ok()
            .and_then(|v| v.strip_prefix("score-after-put:")?.parse().ok())
    });
    if let Some(n) = after
        && SEEN.fetch_add(1, Ordering::Relaxed) + 1 >= *n
    {
        eprintln!("MILLRACE_FAILPOINT: aborting after a put, before its checkpoint");
        std::process::abort();
    }
}

/// Advances each `STREAM/SHARD` mark to the newest sequence number put there.
fn mark(marks: &mut std::collections::BTreeMap<String, String>, stream: &str, placed: &[Placed]) {
    let mut newest: HashMap<&str, &str> = HashMap::new();
    for Placed { shard, sequence } in placed {
        let e = newest.entry(shard.as_str()).or_insert(sequence.as_str());
        if seq_cmp(sequence, e).is_gt() {
            *e = sequence.as_str();
        }
    }
    for (shard, seq) in newest {
        let key = format!("{stream}/{shard}");
        match marks.get(&key) {
            Some(old) if seq_cmp(old, seq).is_ge() => {}
            _ => {
                marks.insert(key, seq.to_owned());
            }
        }
    }
}

/// Scores `records`: (predictions, errors), each ready to put, keyed like its input.
pub fn score_records(
    loaded: &Loaded,
    stream: &str,
    shard: &str,
    id_fields: Option<&[String]>,
    explain: Option<Detail>,
    records: &[SourceRecord],
) -> (Vec<SinkRecord>, Vec<SinkRecord>) {
    let mut errs = Vec::new();
    // The parsed records and, beside them, where each came from (no copy of the records).
    let mut srcs: Vec<&SourceRecord> = Vec::with_capacity(records.len());
    let mut inputs: Vec<Record> = Vec::with_capacity(records.len());
    for r in records {
        match parse_one(&r.data, &loaded.columns) {
            Ok(rec) => {
                srcs.push(r);
                inputs.push(rec);
            }
            Err(reason) => errs.push(error_record(stream, shard, r, &reason, loaded)),
        }
    }
    let predictions: Vec<Result<Value, String>> = match loaded.score_observed(&inputs, explain) {
        Ok(p) => p.into_iter().map(Ok).collect(),
        // Find the record that fails; the others still get scored.
        Err(_) => inputs
            .iter()
            .map(|rec| {
                loaded
                    .score_observed(std::slice::from_ref(rec), explain)
                    .map(|mut p| p.remove(0))
                    .map_err(|e| e.to_string())
            })
            .collect(),
    };
    let ids: Vec<String> = match id_fields {
        Some(f) => f.to_vec(),
        None => loaded.model.id_columns.clone(),
    };
    let scored_at = rfc3339(now_ms());
    let mut outs = Vec::with_capacity(inputs.len());
    for ((src, rec), pred) in srcs.iter().zip(&inputs).zip(predictions) {
        let pred = match pred {
            Ok(p) => p,
            Err(reason) => {
                errs.push(error_record(stream, shard, src, &reason, loaded));
                continue;
            }
        };
        let mut m = Map::new();
        for id in &ids {
            if let Some(v) = rec.get(id) {
                m.insert(id.clone(), v.clone());
            }
        }
        if let Value::Object(p) = pred {
            for (k, v) in p {
                // Binary outputs stay lean: the label and the positive class's probability.
                if matches!(loaded.model.task, Task::Binary { .. })
                    && (k == "probabilities" || k == "labels")
                {
                    continue;
                }
                m.insert(k, v);
            }
        }
        m.insert("model".into(), Value::from(loaded.name.clone()));
        m.insert("model_version".into(), Value::from(loaded.version));
        m.insert("scored_at".into(), Value::from(scored_at.clone()));
        source_fields(&mut m, stream, shard, src);
        let data = Value::Object(m).to_string();
        let budget = fit::data_budget(&src.partition_key);
        if data.len() > budget {
            let reason = format!(
                "the prediction takes {} bytes, over the {budget} a record may hold with its \
                 partition key (the id fields copied into it are too large)",
                data.len()
            );
            errs.push(error_record(stream, shard, src, &reason, loaded));
            continue;
        }
        outs.push(SinkRecord {
            partition_key: src.partition_key.clone(),
            data: Bytes::from(data),
        });
    }
    (outs, errs)
}

fn source_fields(m: &mut Map<String, Value>, stream: &str, shard: &str, src: &SourceRecord) {
    m.insert("source_stream".into(), Value::from(stream));
    m.insert("source_shard".into(), Value::from(shard));
    m.insert("source_sequence".into(), Value::from(src.sequence.clone()));
    m.insert("arrival_ms".into(), Value::from(src.arrival_ms));
}

/// One stream record as one JSON object of field values.
fn parse_one(data: &[u8], columns: &[String]) -> Result<Record, String> {
    let v: Value =
        serde_json::from_slice(data).map_err(|e| format!("the record is not valid JSON: {e}"))?;
    let what = match &v {
        Value::Object(_) => None,
        Value::Array(_) => Some("an array"),
        Value::String(_) => Some("a string"),
        Value::Number(_) => Some("a number"),
        Value::Bool(_) => Some("a boolean"),
        Value::Null => Some("null"),
    };
    if let Some(what) = what {
        return Err(format!(
            "the record is {what}, not a JSON object of field values"
        ));
    }
    // The endpoint's checks (nested values), worded for one record.
    let mut records = input::parse(BodyFormat::Json, data, columns).map_err(|e| {
        e.message
            .strip_prefix("record 0: ")
            .map(str::to_owned)
            .unwrap_or(e.message)
    })?;
    Ok(records.remove(0))
}

/// The error record of an input that could not be scored: the reason, the model, where the
/// input came from and the input itself, as much of it as fits the record limit (`fit`).
fn error_record(
    stream: &str,
    shard: &str,
    src: &SourceRecord,
    reason: &str,
    loaded: &Loaded,
) -> SinkRecord {
    let mut m = Map::new();
    m.insert("error".into(), Value::from(fit::short_reason(reason)));
    m.insert("model".into(), Value::from(loaded.name.clone()));
    m.insert("model_version".into(), Value::from(loaded.version));
    m.insert("scored_at".into(), Value::from(rfc3339(now_ms())));
    source_fields(&mut m, stream, shard, src);
    m.insert(
        "partition_key".into(),
        Value::from(src.partition_key.clone()),
    );
    // The input as it was: text when it is UTF-8, base64 otherwise.
    let data = fit::with_payload(m, &src.data, fit::data_budget(&src.partition_key));
    SinkRecord {
        partition_key: src.partition_key.clone(),
        data: Bytes::from(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_keep_the_newest() {
        let mut marks = std::collections::BTreeMap::new();
        let at = |seq: &str| Placed {
            shard: "s0".into(),
            sequence: seq.into(),
        };
        mark(&mut marks, "out", &[at("9"), at("12")]);
        mark(&mut marks, "out", &[at("10")]);
        assert_eq!(marks["out/s0"], "12");
    }

    #[test]
    fn config_rules() {
        let c = ScoringConfig {
            name: None,
            stream: "churn".into(),
            model: "churn".into(),
            to_stream: "churn".into(),
            error_stream: None,
            id_fields: None,
            explain: None,
            leases: None,
            lease_seconds: None,
        };
        assert!(c.validate("scoring[0]").unwrap_err().contains("to_stream"));
        let leased = |at: &str, secs| ScoringConfig {
            to_stream: "preds".into(),
            leases: Some(at.into()),
            lease_seconds: secs,
            ..c.clone()
        };
        assert!(
            leased("/tmp/l", None)
                .validate("s")
                .unwrap_err()
                .contains("s.leases")
        );
        assert!(
            leased("s3://b/l", Some(1))
                .validate("s")
                .unwrap_err()
                .contains("s.lease_seconds")
        );
        leased("s3://b/l", Some(10)).validate("s").unwrap();
        let ok = ScoringConfig {
            to_stream: "preds".into(),
            ..c
        };
        ok.validate("scoring[0]").unwrap();
        assert_eq!(ok.name(), "churn-to-preds");
        assert_eq!(ok.error_stream(), "preds-errors");
        let parse = |t: &str| toml::from_str::<ScoringConfig>(t).map(|c| c.explain);
        let base = "stream = \"a\"\nmodel = \"m\"\nto_stream = \"b\"\n";
        assert_eq!(
            parse(&format!("{base}explain = 3")).unwrap(),
            Some(Detail::Top(3))
        );
        assert_eq!(
            parse(&format!("{base}explain = \"all\"")).unwrap(),
            Some(Detail::All)
        );
        assert_eq!(parse(base).unwrap(), None);
        let e = parse(&format!("{base}explain = 0"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("explain"), "{e}");
    }
}
