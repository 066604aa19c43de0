//! `millrace ballista scheduler|executor`: the roles of a Ballista cluster that runs prep jobs
//! and queries (`--engine ballista://HOST:PORT`), played by this same binary so that the lake
//! table's decoders run on the executors.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use millrace_ballista::{ExecutorOptions, SchedulerOptions};

#[derive(Debug, clap::Subcommand)]
pub enum BallistaCommand {
    /// Run a Ballista scheduler: it plans jobs and hands their tasks to executors.
    ///
    /// Clients send jobs to it with `millrace prep --engine ballista://HOST:PORT` (or
    /// `[[prep]] engine = ...`, `millrace query --engine ...`); executors register with
    /// `millrace ballista executor --scheduler HOST:PORT`. Runs until SIGINT or SIGTERM.
    ///
    /// Example: millrace ballista scheduler --addr 0.0.0.0:50050
    Scheduler {
        /// Address to listen on (executors and clients connect here).
        #[arg(long, default_value = "127.0.0.1:50050")]
        addr: SocketAddr,
        /// Host name executors and clients should use for it (default: the address).
        #[arg(long)]
        external_host: Option<String>,
        /// An executor silent for this long is dropped and its tasks run on the others.
        #[arg(long, default_value = "30s", value_parser = crate::cli::parse_duration)]
        executor_timeout: std::time::Duration,
    },
    /// Run a Ballista executor: it runs the tasks its scheduler hands it (lake scans, joins,
    /// sorts) and serves their results to other executors and to the client.
    ///
    /// The executor reads the lake itself: a local lake must be at the same path on every
    /// machine (a shared folder), an S3 lake is reached with this process's AWS environment
    /// (credentials, region) and the endpoint the job's client used.
    ///
    /// Example: millrace ballista executor --scheduler 10.0.0.1:50050 --bind 0.0.0.0
    ///   --external-host 10.0.0.2
    Executor {
        /// The scheduler, HOST:PORT.
        #[arg(long)]
        scheduler: String,
        /// Address to bind its two ports on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// Host name other executors and the client fetch its results from (default: --bind).
        #[arg(long)]
        external_host: Option<String>,
        /// Arrow Flight port (task results).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// gRPC port (the scheduler's calls).
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks run at once (default: the number of cores).
        #[arg(long)]
        concurrent_tasks: Option<usize>,
        /// Folder for shuffle files (default: a temporary folder).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
}

pub async fn run(cmd: BallistaCommand) -> anyhow::Result<()> {
    match cmd {
        BallistaCommand::Scheduler {
            addr,
            external_host,
            executor_timeout,
        } => {
            let (bound, serve) = millrace_ballista::scheduler(SchedulerOptions {
                addr,
                external_host,
                executor_timeout,
            })
            .await?;
            println!("ballista scheduler listening on {bound}");
            tokio::select! {
                r = serve => r.context("the scheduler stopped")?,
                _ = crate::cmd::up::shutdown_signal() => println!("ballista scheduler stopped"),
            }
            Ok(())
        }
        BallistaCommand::Executor {
            scheduler,
            bind,
            external_host,
            port,
            grpc_port,
            concurrent_tasks,
            work_dir,
        } => {
            println!(
                "ballista executor on {bind}:{port} (gRPC {grpc_port}), scheduler {scheduler}"
            );
            let opts = ExecutorOptions {
                scheduler,
                bind_host: bind,
                external_host,
                flight_port: port,
                grpc_port,
                concurrent_tasks,
                work_dir,
                ..Default::default()
            };
            tokio::select! {
                r = millrace_ballista::executor(opts) => r.context("the executor stopped")?,
                _ = crate::cmd::up::shutdown_signal() => println!("ballista executor stopped"),
            }
            Ok(())
        }
    }
}
