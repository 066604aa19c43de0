//! The scheduler and executor roles of the millrace binary: Ballista's own servers, with the
//! lake codecs and prep's session (its optimizer rules and functions), so that a job planned
//! on the scheduler and run on the executors gives what the local engine gives.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::SessionConfigExt;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};

use crate::codec;
use crate::error::{ClusterError, Result};

/// Scheduler settings (`millrace ballista scheduler`).
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Where executors and clients reach it.
    pub addr: SocketAddr,
    /// The host name executors and clients are told to use for it (default: the bind address).
    pub external_host: Option<String>,
    /// An executor not heard from for this long is dropped and its tasks run elsewhere.
    pub executor_timeout: Duration,
}

/// Executor settings (`millrace ballista executor`).
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `HOST:PORT`.
    pub scheduler: String,
    /// Address to bind; the Arrow Flight port (shuffle data) and the gRPC port are on it.
    pub bind_host: String,
    /// The host name other executors and clients fetch results from (default: bind host).
    pub external_host: Option<String>,
    pub flight_port: u16,
    pub grpc_port: u16,
    /// Tasks run at once (default: the cores).
    pub concurrent_tasks: Option<usize>,
    /// Shuffle files (default: a temporary folder).
    pub work_dir: Option<PathBuf>,
    /// How often it tells the scheduler it is alive.
    pub heartbeat: Duration,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        Self {
            scheduler: "127.0.0.1:50050".into(),
            bind_host: "127.0.0.1".into(),
            external_host: None,
            flight_port: 50051,
            grpc_port: 50052,
            concurrent_tasks: None,
            work_dir: None,
            heartbeat: Duration::from_secs(2),
        }
    }
}

/// The session the scheduler plans in: Ballista's config and logical rules, prep's physical
/// rules and functions.
fn scheduler_session(config: SessionConfig) -> datafusion::error::Result<SessionState> {
    let runtime = RuntimeEnvBuilder::new().build_arc()?;
    let mut state = datafusion::execution::SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
        .with_physical_optimizer_rules(millrace_prep::engine::physical_optimizer_rules())
        .with_scalar_functions(ballista_core::extension::ballista_scalar_functions())
        .with_aggregate_functions(ballista_core::extension::ballista_aggregate_functions())
        .with_window_functions(ballista_core::extension::ballista_window_functions())
        .build();
    millrace_prep::engine::register_functions(&mut state);
    Ok(state)
}

/// Ballista's session config with the lake codecs, on Ballista's static planner.
///
/// Ballista 55's adaptive planner (its default) cannot recover a job whose shuffle outputs
/// were lost with an executor: it reruns the map stage but has already dropped that stage's
/// output table, so every rerun task's report is refused ("Can't find active stage to update
/// stage outputs") and the job never ends. The static planner reruns lost map tasks and
/// finishes (`tests/compat/ballista_flows.py`, flow 3). Jobs here are scans, filters,
/// projections and aggregates, whose shape the adaptive planner would not change.
pub(crate) fn session_config() -> SessionConfig {
    SessionConfig::new_with_ballista()
        .with_ballista_adaptive_query_planner(false)
        .with_ballista_logical_extension_codec(codec::logical())
        .with_ballista_physical_extension_codec(codec::physical())
}

/// Binds the scheduler's port (so a caller knows it is taken) and returns a future that serves
/// until it fails.
pub async fn scheduler(
    opts: SchedulerOptions,
) -> Result<(SocketAddr, impl std::future::Future<Output = Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(|source| ClusterError::Bind {
            addr: opts.addr.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ClusterError::Bind {
        addr: opts.addr.to_string(),
        source,
    })?;
    let timeout = opts.executor_timeout.as_secs().max(1);
    let mut config = SchedulerConfig::default()
        .with_hostname(
            opts.external_host
                .clone()
                .unwrap_or_else(|| addr.ip().to_string()),
        )
        .with_port(addr.port())
        .with_override_session_builder(Arc::new(scheduler_session))
        .with_override_config_producer(Arc::new(session_config))
        .with_remove_executor_wait_secs(0)
        // Executors ask for work (every 50 ms when idle). In Ballista 55's push mode the
        // scheduler counts each executor's free slots, and a task whose stage was rolled back
        // while it ran (its input was lost with another executor) never gives its slots back:
        // the executor looks full for good and the job waits forever (seen: 1 in 16 runs with
        // an executor killed).
        .with_scheduler_policy(TaskSchedulingPolicy::PullStaged);
    config.bind_host = addr.ip().to_string();
    config.executor_timeout_seconds = timeout;
    config.no_executors_grace_period_seconds = timeout;
    config.expire_dead_executor_interval_seconds = (timeout / 4).clamp(1, 15);
    config.override_logical_codec = Some(codec::logical());
    config.override_physical_codec = Some(codec::physical());
    let config = Arc::new(config);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(ClusterError::ballista)?;
    let server = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, config)
        .await
        .map_err(ClusterError::ballista)?;
    let serve = async move {
        start_grpc_service_with_listener(listener, server)
            .await
            .map_err(ClusterError::ballista)
    };
    Ok((addr, serve))
}

/// Runs an executor until it fails or the process is stopped.
pub async fn executor(opts: ExecutorOptions) -> Result<()> {
    let (host, port) = split_host_port(&opts.scheduler)?;
    let mut config = ExecutorProcessConfig {
        bind_host: opts.bind_host.clone(),
        external_host: opts.external_host.clone(),
        port: opts.flight_port,
        grpc_port: opts.grpc_port,
        scheduler_host: host,
        scheduler_port: port,
        scheduler_connect_timeout_seconds: 30,
        work_dir: opts.work_dir.as_ref().map(|p| p.display().to_string()),
        executor_heartbeat_interval_seconds: opts.heartbeat.as_secs().max(1),
        special_mod_log_level: "WARN".into(),
        print_thread_info: false,
        override_logical_codec: Some(codec::logical()),
        override_physical_codec: Some(codec::physical()),
        override_config_producer: Some(Arc::new(session_config)),
        // The scheduler's policy (`scheduler` above): they must agree.
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        ..Default::default()
    };
    if let Some(n) = opts.concurrent_tasks {
        config.vcores = n.max(1);
    }
    start_executor_process(Arc::new(config))
        .await
        .map_err(ClusterError::ballista)
}

/// `HOST:PORT` (a name or an address) into its parts.
pub fn split_host_port(text: &str) -> Result<(String, u16)> {
    let bad = |reason: &str| ClusterError::BadAddress {
        addr: text.to_owned(),
        reason: reason.to_owned(),
    };
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| bad("expected HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad("no host before the port"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| bad("the port is not a number from 1 to 65535"))?;
    if port == 0 {
        return Err(bad("the port is not a number from 1 to 65535"));
    }
    Ok((host.to_owned(), port))
}
