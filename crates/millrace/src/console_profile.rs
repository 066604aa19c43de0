//! Data-quality reports started from the console: `millrace profile` of a lake folder, run in
//! the background of `up`, one at a time, into `state/console/profiles/<id>/` (`info.json`,
//! then `report.json` and `report.html`, each replaced durably). A report left `running` or
//! `waiting` by a stopped `up` reads as failed ("interrupted").

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use millrace_common::durable;
use millrace_common::layout::DataDir;
use millrace_console::{ProfileInfo, SourceError};
use millrace_lake::S3Options;
use millrace_wrangle::profile::{self, ProfileOptions};
use tokio::sync::Semaphore;

/// Rows sampled for correlations, feature power and the quick model (`profile`'s default).
const SAMPLE_ROWS: usize = 200_000;

/// The console's reports and the one turn they take.
pub struct Profiles {
    data_dir: DataDir,
    dir: PathBuf,
    s3: S3Options,
    turn: Arc<Semaphore>,
    /// Ids running or waiting in this process.
    live: Arc<Mutex<HashSet<String>>>,
}

/// Numbers reports started in the same millisecond.
static STARTED: AtomicU64 = AtomicU64::new(0);

impl Profiles {
    pub fn new(data_dir: &DataDir, s3: S3Options) -> Profiles {
        Profiles {
            data_dir: data_dir.clone(),
            dir: data_dir.console_profiles(),
            s3,
            turn: Arc::new(Semaphore::new(1)),
            live: Arc::default(),
        }
    }

    pub fn list(&self) -> Result<Vec<ProfileInfo>, SourceError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SourceError::Failed(format!("reading the reports: {e}"))),
        };
        Ok(entries
            .flatten()
            .filter_map(|e| self.get(&e.file_name().to_string_lossy()).ok())
            .collect())
    }

    pub fn get(&self, id: &str) -> Result<ProfileInfo, SourceError> {
        let missing = || SourceError::NotFound(format!("there is no data-quality report {id:?}"));
        millrace_common::keys::check_name(id).map_err(|_| missing())?;
        let bytes = std::fs::read(self.dir.join(id).join("info.json")).map_err(|_| missing())?;
        let mut info: ProfileInfo = serde_json::from_slice(&bytes)
            .map_err(|e| SourceError::Failed(format!("report {id}: info.json: {e}")))?;
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(info.state.as_str(), "waiting" | "running") && !live.contains(id) {
            info.state = "failed".into();
            info.error = Some("interrupted: millrace up stopped while it ran".into());
        }
        Ok(info)
    }

    pub fn file(&self, id: &str, name: &str) -> Result<Vec<u8>, SourceError> {
        let info = self.get(id)?;
        if info.state != "done" || !matches!(name, "report.html" | "report.json") {
            return Err(SourceError::NotFound(format!(
                "report {id} has no {name} ({})",
                info.state
            )));
        }
        std::fs::read(self.dir.join(id).join(name))
            .map_err(|e| SourceError::Failed(format!("report {id}: {name}: {e}")))
    }

    /// Starts the report of `folder` (already checked to be inside the lake, at `path`).
    pub fn start(
        &self,
        folder: &str,
        path: PathBuf,
        target: Option<&str>,
    ) -> Result<String, SourceError> {
        let started_ms = millrace_common::time::now_ms();
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let id = format!("{started_ms}-{n}");
        let info = ProfileInfo {
            id: id.clone(),
            dataset: folder.trim_end_matches('/').to_owned(),
            target: target.map(str::to_owned),
            state: "waiting".into(),
            started_ms,
            ..ProfileInfo::default()
        };
        let dir = self.dir.join(&id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| SourceError::Failed(format!("creating {}: {e}", dir.display())))?;
        save(&dir, &info)?;
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone());
        let job = Job {
            dir,
            info,
            path,
            data_dir: self.data_dir.root().to_path_buf(),
            s3: self.s3.clone(),
        };
        let (turn, live, done_id) = (self.turn.clone(), self.live.clone(), id.clone());
        tokio::runtime::Handle::current().spawn(async move {
            let _turn = turn.acquire_owned().await;
            job.run().await;
            live.lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&done_id);
        });
        Ok(id)
    }
}

/// One report being made.
struct Job {
    dir: PathBuf,
    info: ProfileInfo,
    /// The folder's path in the local lake.
    path: PathBuf,
    data_dir: PathBuf,
    s3: S3Options,
}

impl Job {
    async fn run(mut self) {
        self.info.state = "running".into();
        let _ = save(&self.dir, &self.info);
        let started = std::time::Instant::now();
        match self.profile().await {
            Ok(report) => {
                self.info.state = "done".into();
                self.info.rows = Some(report.summary.rows as u64);
                self.info.columns = Some(report.summary.columns as u64);
                self.info.warnings = report.warnings.iter().map(|w| w.message.clone()).collect();
            }
            Err(e) => {
                self.info.state = "failed".into();
                self.info.error = Some(format!("{e:#}"));
            }
        }
        self.info.seconds = Some(started.elapsed().as_secs_f64());
        if let Err(e) = save(&self.dir, &self.info) {
            tracing::warn!(report = %self.info.id, error = %e, "saving a data-quality report's state");
        }
    }

    /// Reads the folder and writes report.json and report.html, as `millrace profile` does.
    async fn profile(&self) -> anyhow::Result<profile::Report> {
        let spec = self.path.display().to_string();
        let (_, batches) = crate::cmd::data_io::read_table(&self.data_dir, &spec, &self.s3).await?;
        let options = ProfileOptions {
            target: self.info.target.clone(),
            seed: 42,
            max_sample_rows: SAMPLE_ROWS,
        };
        let report =
            tokio::task::spawn_blocking(move || profile::profile(&batches, &options)).await??;
        let html = profile::render_html(&report);
        let json = serde_json::to_vec_pretty(&report)?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            durable::write_file(&dir.join("report.json"), &json)?;
            durable::write_file(&dir.join("report.html"), html.as_bytes())
        })
        .await??;
        Ok(report)
    }
}

fn save(dir: &Path, info: &ProfileInfo) -> Result<(), SourceError> {
    let bytes = serde_json::to_vec_pretty(info).expect("a report's info serializes");
    durable::write_file(&dir.join("info.json"), &bytes)
        .map_err(|e| SourceError::Failed(format!("saving {}: {e}", dir.display())))
}
