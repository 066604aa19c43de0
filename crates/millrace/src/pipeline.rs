//! The continuous part of `millrace up`: prep jobs triggered by new lake objects, retraining
//! triggered by new curated rows with a champion/challenger gate, and the status of each for
//! `/status` and `millrace status`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use millrace_common::layout::DataDir;
use millrace_serve::promotion::{self, Production, row_ids};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// `[[prep]]`: run a job file when new objects land under its inputs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrepTrigger {
    /// The job file (relative paths are relative to the config file's folder).
    pub job: PathBuf,
    /// Run once this many new objects are under the job's inputs...
    #[serde(default = "default_every_objects")]
    pub every_objects: usize,
    /// ...or once the oldest unprocessed object has waited this long.
    #[serde(default = "default_prep_secs")]
    pub every_secs: u64,
    /// Where the job runs: `local` (default) or `ballista://HOST:PORT`, a Ballista scheduler
    /// (`millrace ballista scheduler`).
    #[serde(default)]
    pub engine: Option<String>,
}

fn default_every_objects() -> usize {
    10
}
fn default_prep_secs() -> u64 {
    30
}

/// `[[train]]`: retrain a model when its dataset has grown, and promote it through the gate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainTrigger {
    /// The model's registry name.
    pub name: String,
    /// The dataset: a lake prefix written by a prep job (`curated/churn`), or a path.
    pub data: String,
    pub target: String,
    /// Retrain once the dataset has this many more rows than the last training saw (the first
    /// model is trained as soon as the dataset exists).
    #[serde(default = "default_min_new_rows")]
    pub min_new_rows: u64,
    /// The metric the gate compares (default: the task's, F1 for binary).
    #[serde(default)]
    pub objective: Option<String>,
    /// Champion/challenger: promote a new version only if its metric on its own fresh test
    /// part is at least the production model's on the same rows. `false` promotes every one.
    #[serde(default = "default_true")]
    pub gate: bool,
    /// How often the dataset is checked.
    #[serde(default = "default_check_secs")]
    pub check_secs: u64,
}

fn default_min_new_rows() -> u64 {
    1000
}
fn default_true() -> bool {
    true
}
fn default_check_secs() -> u64 {
    5
}

/// `[endpoint]`: the real-time endpoint inside `up`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSection {
    pub models: Vec<String>,
    #[serde(default = "default_endpoint_addr")]
    pub addr: std::net::SocketAddr,
}

fn default_endpoint_addr() -> std::net::SocketAddr {
    "127.0.0.1:8080".parse().expect("valid address")
}

impl PrepTrigger {
    pub fn engine(&self) -> anyhow::Result<crate::engine::Engine> {
        crate::engine::Engine::parse(self.engine.as_deref().unwrap_or("local"))
    }

    pub fn validate(&self, key: &str) -> Result<(), String> {
        if self.every_objects == 0 {
            return Err(format!("{key}.every_objects must be at least 1"));
        }
        self.engine().map_err(|e| {
            format!(
                "{key}.engine = {:?}: {e}",
                self.engine.as_deref().unwrap_or("")
            )
        })?;
        Ok(())
    }
}

impl TrainTrigger {
    pub fn validate(&self, key: &str) -> Result<(), String> {
        millrace_serve::registry::Registry::check_name(&self.name)
            .map_err(|e| format!("{key}.name = {:?}: {e}", self.name))?;
        if self.target.trim().is_empty() {
            return Err(format!("{key}.target must not be empty"));
        }
        if self.check_secs == 0 {
            return Err(format!("{key}.check_secs must be at least 1"));
        }
        Ok(())
    }
}

/// One component's state, as `/status` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Component {
    pub kind: String,
    pub name: String,
    /// `waiting`, `running`, `idle`, `failed`.
    pub state: String,
    pub detail: String,
    pub runs: u64,
    pub last_run_ms: Option<i64>,
    pub last_error: Option<String>,
}

pub type Board = Arc<Mutex<Vec<Component>>>;

fn set(board: &Board, kind: &str, name: &str, f: impl FnOnce(&mut Component)) {
    let mut b = board.lock().expect("status board");
    let i = match b.iter().position(|c| c.kind == kind && c.name == name) {
        Some(i) => i,
        None => {
            b.push(Component {
                kind: kind.into(),
                name: name.into(),
                state: "waiting".into(),
                ..Default::default()
            });
            b.len() - 1
        }
    };
    f(&mut b[i]);
}

/// Objects under `prefix` (names starting with `_` or `.` are not data).
async fn count_objects(lake: &millrace_lake::Lake, prefix: &str) -> usize {
    let prefix = format!("{}/", prefix.trim_end_matches('/'));
    match lake.list(&prefix).await {
        Ok(objs) => objs
            .iter()
            .filter(|(k, _)| {
                !k.split('/')
                    .any(|seg| seg.starts_with('_') || seg.starts_with('.'))
            })
            .count(),
        Err(_) => 0,
    }
}

pub async fn prep_loop(
    trigger: PrepTrigger,
    data_dir: PathBuf,
    board: Board,
    stop: CancellationToken,
) {
    let lake_dir = DataDir::new(data_dir).lake();
    let job = match millrace_prep::Job::load(&trigger.job) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(job = %trigger.job.display(), error = %e, "prep job not started");
            return;
        }
    };
    let name = job.name.clone().unwrap_or_else(|| {
        trigger
            .job
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "prep".into())
    });
    let engine = match trigger.engine() {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(job = %name, error = %e, "prep job not started");
            return;
        }
    };
    set(&board, "prep", &name, |c| {
        c.detail = format!("waiting for objects under {}", job.inputs[0].path)
    });
    let lake = match millrace_lake::Lake::open(&lake_dir.display().to_string(), &Default::default())
    {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(job = %name, error = %e, "prep job not started");
            return;
        }
    };
    // What the last run read: the output manifest's inputs (survives restarts).
    let mut done = 0usize;
    if let Some(out) = job.outputs.first()
        && let Ok(m) = millrace_prep::manifest::Manifest::read(
            &lake,
            &format!("{}/_manifest.json", out.path.trim_end_matches('/')),
        )
        .await
    {
        done = m.inputs.values().map(Vec::len).sum();
    }
    let mut first_new: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.cancelled() => return,
        }
        if stop.is_cancelled() {
            return;
        }
        let mut now_objects = 0;
        for input in &job.inputs {
            now_objects += count_objects(&lake, &input.path).await;
        }
        if now_objects <= done {
            first_new = None;
            continue;
        }
        let waited = first_new.get_or_insert_with(Instant::now).elapsed();
        if now_objects - done < trigger.every_objects
            && waited < Duration::from_secs(trigger.every_secs)
        {
            continue;
        }
        set(&board, "prep", &name, |c| {
            c.state = "running".into();
            c.detail = format!("{} new objects", now_objects - done);
        });
        let t = Instant::now();
        let opts = millrace_prep::RunOptions {
            default_lake: Some(lake_dir.display().to_string()),
            distributed: engine.distributed(),
            ..Default::default()
        };
        let origin = trigger.job.display().to_string();
        let result = async {
            let run = millrace_prep::JobRun::prepare(job.clone(), &origin, &opts).await?;
            let ctx = engine.context(run.engine_options()).await?;
            anyhow::Ok(run.execute_on(ctx).await?)
        }
        .await;
        match result {
            Ok(report) => {
                let rows = report.outputs.first().map_or(0, |o| o.dataset_rows);
                let read: usize = report
                    .inputs
                    .iter()
                    .map(|i| i.objects + i.already_read)
                    .sum();
                done = read.max(now_objects);
                first_new = None;
                tracing::info!(job = %name, rows, objects = read, secs = t.elapsed().as_secs_f64(), "prep job ran");
                set(&board, "prep", &name, |c| {
                    c.state = "idle".into();
                    c.runs += 1;
                    c.last_run_ms = Some(millrace_stream::now_ms());
                    c.last_error = None;
                    c.detail = format!(
                        "{rows} rows from {read} objects in {:.2}s",
                        t.elapsed().as_secs_f64()
                    );
                });
            }
            Err(e) => {
                tracing::warn!(job = %name, error = %e, "prep job failed; retrying on the next trigger");
                first_new = None;
                set(&board, "prep", &name, |c| {
                    c.state = "failed".into();
                    c.last_error = Some(e.to_string());
                });
            }
        }
    }
}

/// What the last training of a `[[train]]` saw, kept in `state/pipeline/`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct TrainState {
    rows: u64,
    run_id: Option<String>,
    /// Every gate decision, newest last.
    #[serde(default)]
    decisions: Vec<String>,
}

fn state_path(data_dir: &Path, name: &str) -> PathBuf {
    DataDir::new(data_dir)
        .pipeline_state()
        .join(format!("train-{name}.json"))
}

fn save_state(path: &Path, state: &TrainState) -> anyhow::Result<()> {
    millrace_common::durable::write_file(path, &serde_json::to_vec_pretty(state)?)?;
    Ok(())
}

pub async fn train_loop(
    trigger: TrainTrigger,
    data_dir: PathBuf,
    board: Board,
    stop: CancellationToken,
) {
    let name = trigger.name.clone();
    let path = state_path(&data_dir, &name);
    let mut state: TrainState = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    set(&board, "train", &name, |c| {
        c.detail = format!("waiting for {}", trigger.data)
    });
    let lake_dir = DataDir::new(&data_dir).lake();
    let dataset = if Path::new(&trigger.data).is_absolute() || trigger.data.contains("://") {
        PathBuf::from(&trigger.data)
    } else {
        lake_dir.join(&trigger.data)
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(trigger.check_secs)) => {}
            _ = stop.cancelled() => return,
        }
        if stop.is_cancelled() {
            return;
        }
        let Some((rows, run_id)) = manifest_rows(&dataset) else {
            continue;
        };
        let registry = crate::registry::open(&data_dir);
        let first = registry.versions(&name).is_empty();
        if state.run_id.as_deref() == Some(run_id.as_str())
            || (!first && rows < state.rows + trigger.min_new_rows)
        {
            continue;
        }
        set(&board, "train", &name, |c| {
            c.state = "running".into();
            c.detail = format!("training on {rows} rows");
        });
        let t = Instant::now();
        match train_and_gate(&trigger, &data_dir, &dataset).await {
            Ok(decision) => {
                tracing::info!(model = %name, %decision, secs = t.elapsed().as_secs_f64(), "trained");
                state.rows = rows;
                state.run_id = Some(run_id);
                state.decisions.push(format!(
                    "{} {decision}",
                    millrace_common::time::rfc3339(millrace_stream::now_ms())
                ));
                if let Err(e) = save_state(&path, &state) {
                    tracing::warn!(error = %e, "cannot save the training state");
                }
                set(&board, "train", &name, |c| {
                    c.state = "idle".into();
                    c.runs += 1;
                    c.last_run_ms = Some(millrace_stream::now_ms());
                    c.last_error = None;
                    c.detail = decision;
                });
            }
            Err(e) => {
                tracing::warn!(model = %name, error = %format!("{e:#}"), "training failed; retrying when the data changes");
                state.run_id = Some(run_id);
                set(&board, "train", &name, |c| {
                    c.state = "failed".into();
                    c.last_error = Some(format!("{e:#}"));
                });
            }
        }
    }
}

/// Rows and run id of a prep dataset's manifest.
fn manifest_rows(dataset: &Path) -> Option<(u64, String)> {
    let bytes = std::fs::read(dataset.join("_manifest.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some((
        v.get("rows")?.as_u64()?,
        v.get("run_id")?.as_str()?.to_owned(),
    ))
}

/// IDs of the rows a version was trained on (the gate's notion of "seen").
fn trained_ids_path(data_dir: &Path, name: &str, version: u32) -> PathBuf {
    DataDir::new(data_dir)
        .pipeline_state()
        .join(format!("train-{name}-v{version}.ids"))
}

/// Trains a challenger, saves it, and promotes it when it passes the gate. Returns the
/// decision in words.
async fn train_and_gate(
    trigger: &TrainTrigger,
    data_dir: &Path,
    dataset: &Path,
) -> anyhow::Result<String> {
    let spec = dataset.display().to_string();
    let frame = crate::cmd::data_io::read_frame(data_dir, &spec, &Default::default())
        .await
        .with_context(|| format!("reading {spec}"))?;
    let mut opts = millrace_automl::train::Options::new(&trigger.target);
    opts.objective = trigger.objective.clone();
    let (mut trained, full) = tokio::task::spawn_blocking(move || {
        millrace_automl::train::train(&frame, &opts, &|_| {}).map(|t| (t, frame))
    })
    .await??;
    let (version, _) = crate::cmd::train::save(
        data_dir,
        &trigger.name,
        &spec,
        &mut trained,
        &Default::default(),
    )
    .await?;
    let registry = crate::registry::open(data_dir);
    let name = trigger.name.clone();
    // Rows each version trained on, by ID, so the gate can compare on rows neither has seen.
    if !trained.model.id_columns.is_empty() {
        let test_ids = row_ids(&trained.model, &trained.test_frame);
        let test: std::collections::HashSet<&str> =
            test_ids.iter().flatten().map(String::as_str).collect();
        // A model refitted on every labelled row has seen its test rows too.
        let refit_all = trained.model.lineage.refit_all;
        let seen: Vec<String> = row_ids(&trained.model, &full)
            .into_iter()
            .flatten()
            .filter(|id| refit_all || !test.contains(id.as_str()))
            .collect();
        let path = trained_ids_path(data_dir, &name, version);
        millrace_common::durable::write_file(&path, seen.join("\n").as_bytes())?;
    }
    // The champion: the production version (none yet → the challenger wins by default).
    let champion = registry
        .info(&name)
        .ok()
        .and_then(|i| i.production)
        .filter(|&v| v != version);
    let verdict = match champion {
        None => promotion::judge(&trained, None)?,
        Some(v) if !trigger.gate => {
            promotion::judge(&trained, Some(Production::Ungated { version: v }))?
        }
        Some(v) => {
            let (champ, _) = registry.load(&format!("{name}:v{v}"))?;
            let trained_on: std::collections::HashSet<String> =
                std::fs::read_to_string(trained_ids_path(data_dir, &name, v))
                    .map(|t| t.lines().map(str::to_owned).collect())
                    .unwrap_or_default();
            promotion::judge(
                &trained,
                Some(Production::Gated {
                    version: v,
                    model: &champ,
                    trained_on: &trained_on,
                }),
            )?
        }
    };
    let decision = verdict.describe(&name, version);
    if verdict.promotes() {
        let r = registry.clone();
        tokio::task::spawn_blocking(move || r.promote(&name, version)).await??;
    }
    Ok(decision)
}
