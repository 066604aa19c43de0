//! The client's check on a cluster job's result before any of it is used.
//!
//! Ballista 55's scheduler hands the client a list of the executors' result partitions. When
//! it reruns a job's last stage because an executor was lost, that list keeps the first
//! attempt's partitions beside the rerun's: read as given, the result repeats rows (seen: a
//! 980,000-row job read back as 1,102,188 rows) or fails half-way on the lost executor. And a
//! job that finished just before an executor died has part of its result on it.
//!
//! [`CheckedPlanner`] wraps each query Ballista's planner sends to the cluster in a
//! [`CheckedResultExec`]. That node runs the query, and before it passes on the first row it
//! asks the scheduler for the job's result list and checks it: no partition listed twice,
//! every executor holding one answers, the first read succeeds. When the check fails, it runs
//! the job again (by then the scheduler has dropped the lost executor), up to
//! [`ATTEMPTS`] times in all, and then fails with [`ClusterError::ResultLost`]. A read that
//! breaks after rows were passed on is a [`RunAgain`] error: prep then runs the output's query
//! again from the start.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{
    GetJobStatusParams, PartitionLocation, SuccessfulJob, job_status,
};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, ReplaceChildrenOptions,
};
use datafusion_proto::protobuf::LogicalPlanNode;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use millrace_prep::RunAgain;

use crate::error::ClusterError;

/// Runs of one job, the first included, before a result that fails the check is an error.
pub const ATTEMPTS: usize = 3;

/// How long an executor holding a result partition has to accept a connection.
const EXECUTOR_ANSWER: Duration = Duration::from_secs(3);

type Query = DistributedQueryExec<LogicalPlanNode>;

/// Ballista's client planner, with every cluster query wrapped in a [`CheckedResultExec`].
#[derive(Debug)]
pub(crate) struct CheckedPlanner {
    pub(crate) inner: Arc<dyn QueryPlanner + Send + Sync>,
    /// The scheduler's `HOST:PORT`.
    pub(crate) scheduler: String,
}

#[async_trait::async_trait]
impl QueryPlanner for CheckedPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = self
            .inner
            .create_physical_plan(logical_plan, session)
            .await?;
        if plan.downcast_ref::<Query>().is_some() {
            Ok(Arc::new(CheckedResultExec {
                query: plan,
                scheduler: self.scheduler.clone(),
            }))
        } else {
            Ok(plan)
        }
    }
}

/// A cluster query whose result list is checked before its rows are passed on (module docs).
#[derive(Debug)]
pub struct CheckedResultExec {
    /// Ballista's `DistributedQueryExec`: it submits the job and reads the result.
    query: Arc<dyn ExecutionPlan>,
    scheduler: String,
}

impl DisplayAs for CheckedResultExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "CheckedResultExec: ")?;
        self.query.fmt_as(t, f)
    }
}

impl ExecutionPlan for CheckedResultExec {
    fn name(&self) -> &'static str {
        "CheckedResultExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.query.properties()
    }

    // The query runs on the cluster: nothing under it is planned or run here.
    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        ctx: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "a cluster query has one partition, asked for {partition}"
            )));
        }
        let query = self.query.clone();
        let scheduler = self.scheduler.clone();
        let rows = futures::stream::once(checked_rows(query, scheduler, ctx)).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.query.schema(),
            rows,
        )))
    }
}

/// What the check found about a job's result.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Finished, and its result list is sound: read it.
    Sound,
    /// Running it again may help: what went wrong, in words.
    Unsound(String),
    /// Failed for a reason of its own, or the scheduler could not say: the query reports it.
    Unchecked,
}

/// The job's rows once its result list passed the check, running it again while it does not.
async fn checked_rows(
    query: Arc<dyn ExecutionPlan>,
    scheduler: String,
    ctx: Arc<TaskContext>,
) -> DfResult<BoxStream<'static, DfResult<RecordBatch>>> {
    let job_of = |q: &Arc<dyn ExecutionPlan>| {
        q.downcast_ref::<Query>()
            .and_then(|q| q.job_id())
            .map(|j| j.to_string())
    };
    for attempt in 1..=ATTEMPTS {
        let mut rows = query.execute(0, ctx.clone())?;
        let first = rows.next().await;
        let Some(job) = job_of(&query) else {
            // Not submitted: the error (or the empty result) is the query's own.
            return Ok(futures::stream::iter(first).chain(rows).boxed());
        };
        match check(&scheduler, &job, first.as_ref()).await {
            Verdict::Sound => {
                // Rows have been passed on: only the caller can start over (prep does).
                let read = move |e: DataFusionError| {
                    DataFusionError::External(Box::new(RunAgain(Box::new(
                        ClusterError::ResultRead {
                            job: job.clone(),
                            message: e.to_string(),
                        },
                    ))))
                };
                return Ok(futures::stream::iter(first)
                    .chain(rows)
                    .map_err(read)
                    .boxed());
            }
            Verdict::Unchecked => return Ok(futures::stream::iter(first).chain(rows).boxed()),
            Verdict::Unsound(problem) if attempt < ATTEMPTS => {
                tracing::warn!(
                    "cluster job {job}: {problem}; running the job again (attempt {} of \
                     {ATTEMPTS})",
                    attempt + 1
                );
            }
            Verdict::Unsound(problem) => {
                return Err(DataFusionError::External(Box::new(
                    ClusterError::ResultLost {
                        job,
                        attempts: ATTEMPTS,
                        problem,
                    },
                )));
            }
        }
    }
    unreachable!("the last attempt returns")
}

/// The scheduler's word on a job.
enum Outcome {
    Finished(Vec<PartitionLocation>),
    Failed(String),
    Unknown,
}

/// Whether the result of job `job` can be read as the scheduler lists it (`first` is what
/// reading it gave first).
async fn check(scheduler: &str, job: &str, first: Option<&DfResult<RecordBatch>>) -> Verdict {
    let locations = match outcome(scheduler, job).await {
        Outcome::Finished(l) => l,
        Outcome::Failed(error) if lost_connection(&error) => {
            return Verdict::Unsound(format!(
                "it failed when a task lost its connection to an executor: {error}"
            ));
        }
        Outcome::Failed(_) | Outcome::Unknown => return Verdict::Unchecked,
    };
    tracing::debug!(
        "cluster job {job}: result partitions (stage, partition, map partition, executor): {:?}",
        locations
            .iter()
            .map(|l| (
                l.partition_id
                    .as_ref()
                    .map(|p| (p.stage_id, p.partition_id)),
                l.map_partition_id,
                l.executor_meta.as_ref().map(|e| e.id.as_str()),
            ))
            .collect::<Vec<_>>()
    );
    if let Some(problem) = listed_twice(&locations) {
        return Verdict::Unsound(problem);
    }
    if let Some(Err(e)) = first {
        return Verdict::Unsound(format!("reading its result failed: {e}"));
    }
    match silent_executor(&locations).await {
        Some(problem) => Verdict::Unsound(problem),
        None => Verdict::Sound,
    }
}

/// Whether a job's failure message says a task lost its connection to an executor (Ballista
/// fails the job for that when a shuffle read breaks off, rather than rerunning the stage).
fn lost_connection(error: &str) -> bool {
    [
        "tcp connect error",
        "Connection refused",
        "ConnectionRefused",
        "ConnectionReset",
        "Connection reset",
        "error reading a body from connection",
        "broken pipe",
    ]
    .iter()
    .any(|s| error.contains(s))
}

/// The first executor holding one of `locations` that does not accept a connection, said in
/// words.
async fn silent_executor(locations: &[PartitionLocation]) -> Option<String> {
    for (id, addr) in executors(locations) {
        let answer = tokio::time::timeout(EXECUTOR_ANSWER, tokio::net::TcpStream::connect(&addr));
        match answer.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Some(format!(
                    "executor {id} at {addr}, which holds part of the result, does not \
                     answer ({e})"
                ));
            }
            Err(_) => {
                return Some(format!(
                    "executor {id} at {addr}, which holds part of the result, did not answer \
                     in {} s",
                    EXECUTOR_ANSWER.as_secs()
                ));
            }
        }
    }
    None
}

/// What the scheduler says of job `job`.
async fn outcome(scheduler: &str, job: &str) -> Outcome {
    let mut client = match SchedulerGrpcClient::connect(format!("http://{scheduler}")).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("cluster job {job}: cannot ask the scheduler for its result: {e}");
            return Outcome::Unknown;
        }
    };
    let status = client
        .get_job_status(GetJobStatusParams {
            job_id: job.to_owned(),
        })
        .await;
    match status.map(|r| r.into_inner().status.and_then(|s| s.status)) {
        Ok(Some(job_status::Status::Successful(SuccessfulJob {
            partition_location, ..
        }))) => Outcome::Finished(partition_location),
        Ok(Some(job_status::Status::Failed(failed))) => Outcome::Failed(failed.error),
        Ok(_) => Outcome::Unknown,
        Err(e) => {
            tracing::warn!("cluster job {job}: cannot ask the scheduler for its result: {e}");
            Outcome::Unknown
        }
    }
}

/// A result partition listed more than once, said in words. Each output partition of the last
/// stage is one stream of the result, so it must be listed once, whichever task wrote it.
fn listed_twice(locations: &[PartitionLocation]) -> Option<String> {
    let mut seen: BTreeMap<(u32, u32), Vec<String>> = BTreeMap::new();
    for loc in locations {
        let Some(p) = &loc.partition_id else { continue };
        let executor = loc
            .executor_meta
            .as_ref()
            .map_or_else(|| "?".to_owned(), |e| e.id.clone());
        seen.entry((p.stage_id, p.partition_id))
            .or_default()
            .push(format!(
                "task {} on executor {executor}",
                loc.map_partition_id
            ));
    }
    let ((stage, partition), writers) = seen.into_iter().find(|(_, w)| w.len() > 1)?;
    Some(format!(
        "the scheduler lists result partition {partition} of stage {stage} {} times ({}): \
         reading them all would repeat rows",
        writers.len(),
        writers.join(", ")
    ))
}

/// The executors holding result partitions: (id, `HOST:PORT` of their Arrow Flight service).
fn executors(locations: &[PartitionLocation]) -> BTreeSet<(String, String)> {
    locations
        .iter()
        .filter_map(|l| l.executor_meta.as_ref())
        .map(|e| (e.id.clone(), format!("{}:{}", e.host, e.port)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ballista_core::serde::protobuf::{ExecutorMetadata, PartitionId};

    fn loc(partition: u32, executor: &str) -> PartitionLocation {
        PartitionLocation {
            map_partition_id: partition,
            partition_id: Some(PartitionId {
                job_id: "j".into(),
                stage_id: 2,
                partition_id: partition,
            }),
            executor_meta: Some(ExecutorMetadata {
                id: executor.into(),
                host: "127.0.0.1".into(),
                port: 1,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_partition_listed_twice_is_found_and_named() {
        let sound = vec![loc(0, "a"), loc(1, "b"), loc(2, "a")];
        assert_eq!(listed_twice(&sound), None);
        // The scheduler's list after it reran the last stage: the first attempt's partition 1
        // (on the lost executor) and the rerun's, written by another task.
        let mut again = loc(1, "a");
        again.map_partition_id = 9;
        let rerun = vec![loc(0, "a"), loc(1, "b"), again, loc(2, "a")];
        let problem = listed_twice(&rerun).expect("a repeat");
        assert!(
            problem.contains("result partition 1 of stage 2 2 times")
                && problem.contains("task 1 on executor b, task 9 on executor a"),
            "{problem}"
        );
    }

    #[test]
    fn each_executor_holding_a_partition_is_probed_once() {
        let locs = vec![loc(0, "a"), loc(1, "b"), loc(2, "a")];
        let got: Vec<_> = executors(&locs).into_iter().map(|(id, _)| id).collect();
        assert_eq!(got, ["a", "b"]);
    }

    #[test]
    fn a_job_failed_by_a_lost_executor_is_told_from_one_failed_by_its_data() {
        // Ballista's message when a stage's shuffle read broke off (seen with an executor killed).
        let lost = "Job failed due to stage 2 failed: Task failed due to runtime execution \
                    error: DataFusionError(Shared(External(ArrowError(IpcError(\"Arrow error: \
                    Ipc error: code: 'Unknown error', message: \\\"h2 protocol error: error \
                    reading a body from connection\\\", source: hyper::Error(Body, Error { \
                    kind: Io(Kind(ConnectionReset)) })\")))))";
        assert!(lost_connection(lost));
        let own = "Job failed due to stage 1 failed: Task failed due to runtime execution \
                   error: Arrow error: Cast error: Cannot cast string 'abc' to value of Int32 type";
        assert!(!lost_connection(own));
    }

    #[tokio::test]
    async fn an_executor_that_does_not_answer_fails_the_check() {
        let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // A port nothing listens on: bound, then closed.
        let gone = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let at = |partition, id: &str, port: u16| {
            let mut l = loc(partition, id);
            l.executor_meta.as_mut().unwrap().port = port as u32;
            l
        };
        let up_port = up.local_addr().unwrap().port();
        assert_eq!(silent_executor(&[at(0, "a", up_port)]).await, None);
        let problem = silent_executor(&[at(0, "a", up_port), at(1, "b", gone)])
            .await
            .expect("b is gone");
        assert!(
            problem.starts_with(&format!("executor b at 127.0.0.1:{gone}")),
            "{problem}"
        );
    }
}
