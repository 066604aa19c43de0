//! Trainings started from the console: `millrace train` of a lake folder, run in the
//! background of `up`, one at a time, saved as the next version of the model as the CLI saves
//! it. Each training's state lives in memory while it runs (what its page and event stream
//! read) and in `state/console/trainings/<id>/info.json`, replaced durably when it starts,
//! after each candidate and when it ends. One left `running` or `waiting` by a stopped `up`
//! reads as failed ("interrupted").

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use millrace_automl::search::Mode;
use millrace_automl::train::{self, Event, Options};
use millrace_common::durable;
use millrace_common::layout::DataDir;
use millrace_console::train::{BUDGET_S, OBJECTIVES};
use millrace_console::{SourceError, TrainRequest, TrainedCandidate, TrainingInfo};
use millrace_lake::S3Options;
use millrace_serve::registry::Registry;
use tokio::sync::Semaphore;

/// Lines of what training said kept per training (a long `best` run prunes many candidates).
const MOST_LINES: usize = 500;

/// Trainings running or waiting in this process, by id.
type Live = Arc<Mutex<HashMap<String, TrainingInfo>>>;

/// The console's trainings and the one turn they take.
pub struct Trainings {
    data_dir: PathBuf,
    dir: PathBuf,
    s3: S3Options,
    turn: Arc<Semaphore>,
    live: Live,
}

/// Numbers trainings started in the same millisecond.
static STARTED: AtomicU64 = AtomicU64::new(0);

impl Trainings {
    pub fn new(data_dir: &DataDir, s3: S3Options) -> Trainings {
        Trainings {
            data_dir: data_dir.root().to_path_buf(),
            dir: data_dir.console_trainings(),
            s3,
            turn: Arc::new(Semaphore::new(1)),
            live: Arc::default(),
        }
    }

    pub fn list(&self) -> Result<Vec<TrainingInfo>, SourceError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SourceError::Failed(format!("reading the trainings: {e}"))),
        };
        Ok(entries
            .flatten()
            .filter_map(|e| self.get(&e.file_name().to_string_lossy()).ok())
            .collect())
    }

    pub fn get(&self, id: &str) -> Result<TrainingInfo, SourceError> {
        let missing = || SourceError::NotFound(format!("there is no training {id:?}"));
        millrace_common::keys::check_name(id).map_err(|_| missing())?;
        if let Some(info) = lock(&self.live).get(id) {
            return Ok(info.clone());
        }
        let bytes = std::fs::read(self.dir.join(id).join("info.json")).map_err(|_| missing())?;
        let mut info: TrainingInfo = serde_json::from_slice(&bytes)
            .map_err(|e| SourceError::Failed(format!("training {id}: info.json: {e}")))?;
        // Not live here (a training is live from before its first save until after its
        // last), and not over: the `up` that ran it stopped.
        if !info.finished() {
            info.state = "failed".into();
            info.error = Some("interrupted: millrace up stopped while it ran".into());
        }
        Ok(info)
    }

    /// Starts training on `folder` (already checked to be inside the lake, at `path`, with
    /// `columns`).
    pub fn start(
        &self,
        request: &TrainRequest,
        path: PathBuf,
        columns: &[String],
    ) -> Result<String, SourceError> {
        check(request, columns)?;
        let started_ms = millrace_common::time::now_ms();
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let id = format!("{started_ms}-{n}");
        let info = TrainingInfo {
            id: id.clone(),
            asked: TrainRequest {
                dataset: request.dataset.trim_end_matches('/').to_owned(),
                ..request.clone()
            },
            state: "waiting".into(),
            started_ms,
            ..TrainingInfo::default()
        };
        let dir = self.dir.join(&id);
        lock(&self.live).insert(id.clone(), info.clone());
        let saved = std::fs::create_dir_all(&dir)
            .map_err(|e| SourceError::Failed(format!("creating {}: {e}", dir.display())))
            .and_then(|()| save(&dir, &info));
        if let Err(e) = saved {
            lock(&self.live).remove(&id);
            return Err(e);
        }
        let job = Job {
            id: id.clone(),
            dir,
            path,
            data_dir: self.data_dir.clone(),
            s3: self.s3.clone(),
            live: self.live.clone(),
        };
        let turn = self.turn.clone();
        tokio::runtime::Handle::current().spawn(async move {
            let _turn = turn.acquire_owned().await;
            job.run().await;
        });
        Ok(id)
    }
}

/// What the form sent, checked before anything runs: each problem named.
fn check(r: &TrainRequest, columns: &[String]) -> Result<(), SourceError> {
    let invalid = |m: String| Err(SourceError::Invalid(m));
    if let Err(e) = Registry::check_name(&r.name) {
        return invalid(format!("model name: {e}"));
    }
    if !columns.contains(&r.target) {
        return invalid(format!(
            "{} has no column {:?}; its columns: {}",
            r.dataset,
            r.target,
            columns.join(", ")
        ));
    }
    if let Some(o) = &r.objective
        && !OBJECTIVES.iter().any(|(name, _)| name == o)
    {
        let known: Vec<&str> = OBJECTIVES.iter().map(|(n, _)| *n).collect();
        return invalid(format!(
            "metric {o:?}: one of {}, or none for the problem's default",
            known.join(", ")
        ));
    }
    if !matches!(r.mode.as_str(), "quick" | "best") {
        return invalid(format!("mode {:?}: quick or best", r.mode));
    }
    if !BUDGET_S.contains(&r.budget_s) {
        return invalid(format!(
            "time budget {} s: between {} and {} s",
            r.budget_s,
            BUDGET_S.start(),
            BUDGET_S.end()
        ));
    }
    Ok(())
}

/// One training, from the queue to its saved version.
struct Job {
    id: String,
    dir: PathBuf,
    /// The folder's path in the local lake.
    path: PathBuf,
    data_dir: PathBuf,
    s3: S3Options,
    live: Live,
}

impl Job {
    async fn run(self) {
        self.update(true, |i| i.state = "running".into());
        let started = std::time::Instant::now();
        let outcome = self.train().await;
        let seconds = started.elapsed().as_secs_f64();
        self.update(true, |i| {
            match &outcome {
                Ok(version) => {
                    i.state = "done".into();
                    i.version = Some(*version);
                }
                Err(e) => {
                    i.state = "failed".into();
                    i.error = Some(format!("{e:#}"));
                }
            }
            i.seconds = Some(seconds);
        });
        lock(&self.live).remove(&self.id);
    }

    /// Changes the live state; with `keep`, saves it too.
    fn update(&self, keep: bool, change: impl FnOnce(&mut TrainingInfo)) {
        update(&self.live, &self.id, keep.then_some(&self.dir), change);
    }

    /// Reads the folder, trains as `millrace train` does and saves the next version.
    async fn train(&self) -> anyhow::Result<u32> {
        let asked = self.current().asked;
        let spec = self.path.display().to_string();
        let frame = crate::cmd::data_io::read_frame(&self.data_dir, &spec, &self.s3).await?;
        self.update(false, |i| {
            say(
                i,
                format!(
                    "read {} rows × {} columns from {}",
                    frame.rows(),
                    frame.names().len(),
                    i.asked.dataset
                ),
            )
        });
        let opts = Options {
            objective: asked.objective.clone(),
            mode: if asked.mode == "best" {
                Mode::Best
            } else {
                Mode::Quick
            },
            time_budget: Duration::from_secs(asked.budget_s),
            ..Options::new(&asked.target)
        };
        let (live, id, dir) = (self.live.clone(), self.id.clone(), self.dir.clone());
        let mut trained = tokio::task::spawn_blocking(move || {
            train::train(&frame, &opts, &|e| progress(&live, &id, &dir, e))
        })
        .await??;
        let (version, _) =
            crate::cmd::train::save(&self.data_dir, &asked.name, &spec, &mut trained, &self.s3)
                .await?;
        Ok(version)
    }

    /// The training's live state.
    fn current(&self) -> TrainingInfo {
        lock(&self.live).get(&self.id).cloned().unwrap_or_default()
    }
}

/// Training's progress into the live state: a candidate's figure is saved at once.
fn progress(live: &Live, id: &str, dir: &Path, e: Event) {
    let keep = matches!(e, Event::Evaluated { .. });
    update(live, id, keep.then_some(dir), |i| match e {
        Event::Info(line) => say(i, line),
        Event::Objective {
            name,
            higher_is_better,
        } => {
            i.metric = Some(name.to_owned());
            i.higher_is_better = higher_is_better;
        }
        Event::Planned(n) => i.planned = n,
        Event::Evaluated {
            name, cv, seconds, ..
        } => i.candidates.push(TrainedCandidate { name, cv, seconds }),
    });
}

fn say(info: &mut TrainingInfo, line: String) {
    if info.lines.len() < MOST_LINES {
        info.lines.push(line);
    }
}

/// Changes training `id`'s live state and, with `dir`, saves it (a failed save is logged: the
/// training goes on, its page reads the live state).
fn update(live: &Live, id: &str, dir: Option<&Path>, change: impl FnOnce(&mut TrainingInfo)) {
    let snapshot = {
        let mut all = lock(live);
        let Some(info) = all.get_mut(id) else { return };
        change(info);
        dir.map(|_| info.clone())
    };
    if let (Some(dir), Some(info)) = (dir, snapshot)
        && let Err(e) = save(dir, &info)
    {
        tracing::warn!(training = %id, error = %e, "saving a training's state");
    }
}

fn lock(live: &Live) -> std::sync::MutexGuard<'_, HashMap<String, TrainingInfo>> {
    live.lock().unwrap_or_else(|p| p.into_inner())
}

fn save(dir: &Path, info: &TrainingInfo) -> Result<(), SourceError> {
    let bytes = serde_json::to_vec_pretty(info).expect("a training's info serializes");
    durable::write_file(&dir.join("info.json"), &bytes)
        .map_err(|e| SourceError::Failed(format!("saving {}: {e}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> TrainRequest {
        TrainRequest {
            dataset: "raw/".into(),
            target: "Churn".into(),
            name: "churn".into(),
            objective: None,
            mode: "quick".into(),
            budget_s: 60,
        }
    }

    #[test]
    fn a_request_is_checked_and_each_problem_named() {
        let columns = ["tenure".to_owned(), "Churn".to_owned()];
        assert!(check(&request(), &columns).is_ok());
        let refused = |r: TrainRequest| match check(&r, &columns) {
            Err(SourceError::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        let m = refused(TrainRequest {
            name: "../x".into(),
            ..request()
        });
        assert!(m.starts_with("model name"), "{m}");
        let m = refused(TrainRequest {
            target: "nope".into(),
            ..request()
        });
        assert!(
            m.contains("no column \"nope\"") && m.contains("tenure, Churn"),
            "{m}"
        );
        let m = refused(TrainRequest {
            objective: Some("speed".into()),
            ..request()
        });
        assert!(m.contains("metric \"speed\"") && m.contains("auc"), "{m}");
        let m = refused(TrainRequest {
            mode: "slow".into(),
            ..request()
        });
        assert!(m.contains("quick or best"), "{m}");
        let m = refused(TrainRequest {
            budget_s: 5,
            ..request()
        });
        assert!(m.contains("between 10 and 3600"), "{m}");
    }

    #[test]
    fn progress_fills_the_live_state_and_saves_each_candidate() {
        let dir = tempfile::tempdir().unwrap();
        let live: Live = Arc::default();
        let info = TrainingInfo {
            id: "t".into(),
            state: "running".into(),
            ..TrainingInfo::default()
        };
        lock(&live).insert("t".into(), info);
        progress(&live, "t", dir.path(), Event::Info("binary target".into()));
        progress(
            &live,
            "t",
            dir.path(),
            Event::Objective {
                name: "log_loss",
                higher_is_better: false,
            },
        );
        progress(&live, "t", dir.path(), Event::Planned(12));
        assert!(
            !dir.path().join("info.json").exists(),
            "lines are not saved one by one"
        );
        progress(
            &live,
            "t",
            dir.path(),
            Event::Evaluated {
                done: 1,
                name: "gbdt".into(),
                cv: 0.41,
                seconds: 0.5,
            },
        );
        let saved: TrainingInfo =
            serde_json::from_slice(&std::fs::read(dir.path().join("info.json")).unwrap()).unwrap();
        assert_eq!(saved, lock(&live)["t"]);
        assert_eq!(saved.lines, ["binary target"]);
        assert_eq!(saved.metric.as_deref(), Some("log_loss"));
        assert!(!saved.higher_is_better);
        assert_eq!(saved.planned, 12);
        assert_eq!(saved.candidates.len(), 1);
        // Another training's events change nothing here.
        progress(&live, "other", dir.path(), Event::Planned(3));
        assert_eq!(lock(&live)["t"].planned, 12);
    }
}
