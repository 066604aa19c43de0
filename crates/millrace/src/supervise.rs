//! Keeping a registry's jobs running under `millrace up`: the channels of the Kinesis API
//! (`channels.rs`) and the delivery streams of the Firehose API (`firehose.rs`) are both a
//! set of specs, each with a name, an id and a revision, that a runner must follow. A new
//! job starts; one whose revision was raised is stopped (it flushes and checkpoints) and
//! started again; a deleted one is stopped and what it leaves is removed. Each state is
//! reported back to the registry (what Describe shows). A job that could not start is tried
//! again [`RETRY_FAILED`] later; a running one whose delivery reports an error is shown
//! failed until it delivers again.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use millrace_delivery::{Delivery, DeliveryMetrics, RunMode};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often stalled jobs are looked for (and their state reported).
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// A job that could not start is tried again after this long.
const RETRY_FAILED: Duration = Duration::from_secs(10);

/// Each running job's delivery counters, by job name, for `/metrics` and `/status`.
pub type JobMetrics = Arc<Mutex<BTreeMap<String, Arc<DeliveryMetrics>>>>;

/// A job's identity: a change of id (deleted and created again) or revision restarts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobKey {
    pub name: String,
    pub id: String,
    pub revision: u64,
}

/// What a runner reports about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Active,
    Failed(String),
}

/// A registry whose jobs a [`Supervisor`] keeps running.
pub trait Jobs: Send + Sync + 'static {
    type Spec: Clone + Send + Sync;
    /// What a job is called in log lines ("channel", "delivery stream").
    const KIND: &'static str;

    fn specs(&self) -> Vec<Self::Spec>;
    fn key(spec: &Self::Spec) -> JobKey;
    /// A counter raised by every change of the registry.
    fn subscribe(&self) -> watch::Receiver<u64>;
    fn report(&self, key: &JobKey, state: JobState);
    /// Builds and spawns `spec`'s job, or says why it cannot run.
    fn start(&self, spec: &Self::Spec) -> Result<Task, String>;
    /// Ids of jobs that left state behind (checkpoint folders, buffers).
    fn leftovers(&self) -> Vec<String>;
    /// Removes what the job with `id` left (it was deleted).
    fn remove(&self, id: &str) -> impl Future<Output = ()> + Send;
}

/// A running job.
pub struct Task {
    stop: watch::Sender<bool>,
    handle: JoinHandle<Result<(), String>>,
    metrics: Arc<DeliveryMetrics>,
}

impl Task {
    /// Runs `delivery` until told to stop (it flushes and checkpoints then).
    pub fn delivery(delivery: Delivery) -> Self {
        Self::deliveries(delivery, None)
    }

    /// Runs `main` and, beside it, `beside` (a source record backup) until told to stop; the
    /// job's counters are `main`'s, and the first to fail ends both.
    pub fn deliveries(main: Delivery, beside: Option<Delivery>) -> Self {
        let main = Arc::new(main);
        let metrics = main.metrics();
        Self::spawn(metrics, move |stopped| async move {
            let run = |d: Arc<Delivery>, stopped: watch::Receiver<bool>| async move {
                d.run(RunMode::Forever, stopped)
                    .await
                    .map_err(|e| chain(&e))
            };
            match beside {
                None => run(main, stopped).await,
                Some(b) => {
                    tokio::try_join!(run(main, stopped.clone()), run(Arc::new(b), stopped))?;
                    Ok(())
                }
            }
        })
    }

    /// Runs `run` (given the stop signal) with `metrics` as its counters.
    pub fn spawn<F>(
        metrics: Arc<DeliveryMetrics>,
        run: impl FnOnce(watch::Receiver<bool>) -> F,
    ) -> Self
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        Self {
            stop,
            handle: tokio::spawn(run(stopped)),
            metrics,
        }
    }
}

struct Running {
    key: JobKey,
    /// `None` while the job cannot run (the reason is in `state`).
    task: Option<Task>,
    state: JobState,
    /// When it started or failed: a failed job is tried again [`RETRY_FAILED`] later.
    since: Instant,
}

/// Keeps one task per job of `J`'s registry, until `up` stops.
pub struct Supervisor<J: Jobs> {
    jobs: J,
    metrics: JobMetrics,
    running: BTreeMap<String, Running>,
}

impl<J: Jobs> Supervisor<J> {
    pub fn new(jobs: J, metrics: JobMetrics) -> Self {
        Self {
            jobs,
            metrics,
            running: BTreeMap::new(),
        }
    }

    /// Runs until `stop`; then stops every job (each flushes and checkpoints).
    pub async fn run(mut self, stop: CancellationToken) -> anyhow::Result<()> {
        let mut changes = self.jobs.subscribe();
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
        let specs: BTreeMap<String, J::Spec> = self
            .jobs
            .specs()
            .into_iter()
            .map(|s| (J::key(&s).name, s))
            .collect();
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(name, r)| {
                let retry = r.task.is_none() && r.since.elapsed() >= RETRY_FAILED;
                retry || specs.get(*name).is_none_or(|s| J::key(s) != r.key)
            })
            .map(|(name, _)| name.clone())
            .collect();
        let mut previous = BTreeMap::new();
        for name in stale {
            let r = self.running.remove(&name).expect("listed");
            let deleted = specs.get(&name).is_none_or(|s| J::key(s).id != r.key.id);
            if !deleted {
                previous.insert(name.clone(), r.state.clone());
            }
            self.stop(r, deleted).await;
        }
        for (name, spec) in &specs {
            if !self.running.contains_key(name) {
                let r = self.start(spec, previous.get(name));
                self.running.insert(name.clone(), r);
            }
        }
    }

    /// Starts `spec`'s job, or records why it cannot run; reports either.
    fn start(&self, spec: &J::Spec, previous: Option<&JobState>) -> Running {
        let key = J::key(spec);
        let (task, state) = match self.jobs.start(spec) {
            Ok(task) => {
                tracing::info!(kind = J::KIND, name = %key.name, revision = key.revision, "running");
                self.registry()
                    .insert(key.name.clone(), task.metrics.clone());
                (Some(task), JobState::Active)
            }
            Err(reason) => {
                if previous != Some(&JobState::Failed(reason.clone())) {
                    tracing::warn!(kind = J::KIND, name = %key.name, reason = %reason, "cannot run");
                }
                (None, JobState::Failed(reason))
            }
        };
        self.jobs.report(&key, state.clone());
        Running {
            key,
            task,
            state,
            since: Instant::now(),
        }
    }

    /// Stops a job (it flushes and checkpoints); a deleted job's leftovers go too.
    async fn stop(&mut self, r: Running, deleted: bool) {
        let name = &r.key.name;
        if let Some(task) = r.task {
            let _ = task.stop.send(true);
            match task.handle.await {
                Ok(Err(e)) => {
                    tracing::warn!(kind = J::KIND, name = %name, error = %e, "stopped with an error")
                }
                Err(e) => tracing::warn!(kind = J::KIND, name = %name, error = %e, "task failed"),
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
            self.jobs.remove(&r.key.id).await;
            tracing::info!(kind = J::KIND, name = %name, "deleted: stopped and removed");
        }
    }

    /// Reports stalled jobs as failed (and active again once they deliver); a job that ended
    /// on its own is failed and started again later.
    fn refresh(&mut self) {
        let now = millrace_common::time::now_ms();
        for r in self.running.values_mut() {
            let Some(task) = &mut r.task else { continue };
            let state = match (&mut task.handle).now_or_never() {
                Some(ended) => {
                    let reason = match ended {
                        Ok(Ok(())) => "the delivery stopped".to_owned(),
                        Ok(Err(e)) => format!("the delivery stopped: {e}"),
                        Err(e) => format!("the delivery task failed: {e}"),
                    };
                    tracing::warn!(kind = J::KIND, name = %r.key.name, reason = %reason, "failed");
                    r.task = None;
                    r.since = Instant::now();
                    JobState::Failed(reason)
                }
                None => match task.metrics.snapshot(now).last_error {
                    Some(e) => JobState::Failed(format!("delivery stalled, retrying: {e}")),
                    None => JobState::Active,
                },
            };
            if state != r.state {
                self.jobs.report(&r.key, state.clone());
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
        for (_, r) in running {
            self.stop(r, false).await;
        }
    }

    /// Removes what jobs deleted while `up` was down left behind. Only this supervisor
    /// creates such state, and it has started nothing yet.
    async fn remove_orphans(&self) {
        let ids: Vec<String> = self.jobs.specs().iter().map(|s| J::key(s).id).collect();
        for id in self.jobs.leftovers() {
            if !ids.contains(&id) {
                self.jobs.remove(&id).await;
            }
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<DeliveryMetrics>>> {
        self.metrics.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Removes a folder a deleted job left (off the async threads); a missing one is fine.
pub async fn remove_dir(dir: std::path::PathBuf) {
    let shown = dir.display().to_string();
    let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await;
    if let Ok(Err(e)) = removed
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %shown, error = %e, "could not remove a deleted job's state");
    }
}

/// The folder names under `dir` (the ids of the jobs whose state lives there).
pub fn folder_names(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// An error and its causes on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    out
}
