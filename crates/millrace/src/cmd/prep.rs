//! `millrace prep --job FILE`: run a SQL job file and report what it read and wrote.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use millrace_common::layout::DataDir;
use millrace_prep::{Job, JobReport, JobRun, RunOptions, ScanProgress};

use crate::cli::S3Args;

#[derive(Debug, Args)]
pub struct PrepArgs {
    /// The job file (TOML).
    #[arg(long)]
    pub job: PathBuf,
    /// Lake for the job's relative paths when the job names none (default: <data-dir>/lake).
    #[arg(long)]
    pub lake: Option<String>,
    /// Query engine memory pool in MiB (overrides the job's memory_limit_mib).
    #[arg(long)]
    pub memory_limit_mib: Option<u64>,
    /// Where the job runs: `local` (this process) or `ballista://HOST:PORT`, a Ballista
    /// scheduler started with `millrace ballista scheduler` (same SQL, same outputs and
    /// manifests; the executors read the lake themselves).
    #[arg(long, default_value = "local", value_parser = crate::engine::parse_flag)]
    pub engine: crate::engine::Engine,
    #[command(flatten)]
    pub s3: S3Args,
}

pub async fn run(data_dir: &DataDir, args: PrepArgs) -> anyhow::Result<()> {
    let report = run_job(data_dir, &args).await?;
    print_report(&report);
    Ok(())
}

/// Runs a job with a progress bar.
pub async fn run_job(data_dir: &DataDir, args: &PrepArgs) -> anyhow::Result<JobReport> {
    let job = Job::load(&args.job)?;
    let opts = RunOptions {
        default_lake: Some(
            args.lake
                .clone()
                .unwrap_or_else(|| data_dir.lake().display().to_string()),
        ),
        s3: args.s3.options(),
        memory_limit_mib: args.memory_limit_mib,
        target_partitions: None,
        distributed: args.engine.distributed(),
    };
    let job_path = args.job.display().to_string();
    let run = JobRun::prepare(job, &job_path, &opts)
        .await
        .with_context(|| format!("preparing job {job_path}"))?;
    let ctx = args.engine.context(run.engine_options()).await?;
    let bar = match &args.engine {
        crate::engine::Engine::Local => ScanBar::start(run.progress()),
        engine => ScanBar::remote(engine),
    };
    let result = run.execute_on(ctx).await;
    bar.finish();
    Ok(result?)
}

pub fn print_report(r: &JobReport) {
    for i in &r.inputs {
        let skipped = if i.already_read > 0 {
            format!(" ({} read by earlier runs, skipped)", i.already_read)
        } else {
            String::new()
        };
        println!(
            "  input  {:<12} {} objects, {}{skipped}  {}",
            i.table,
            i.objects,
            human_bytes(i.bytes),
            i.location
        );
    }
    if r.up_to_date {
        println!("  nothing new since the last run; outputs unchanged");
    }
    for o in &r.outputs {
        println!(
            "  output {} rows in {} file(s), {}  {}",
            o.rows,
            o.files,
            human_bytes(o.bytes),
            o.location
        );
        println!("         manifest {}", o.manifest);
    }
    if r.bad_records > 0 {
        println!(
            "  {} input value(s) could not be read and were skipped (listed in the manifest)",
            r.bad_records
        );
    }
    println!(
        "prep {}: run {} finished in {:.2} s",
        r.job,
        r.run_id,
        r.elapsed.as_secs_f64()
    );
}

pub fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b} B")
    }
}

/// A progress bar over the bytes of every input (hidden when stderr is not a terminal).
pub struct ScanBar {
    bar: indicatif::ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl ScanBar {
    /// A spinner for a job that runs elsewhere (its scans' counters arrive at the end).
    pub fn remote(engine: &crate::engine::Engine) -> Self {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} running on {msg} {elapsed}")
                .expect("valid template"),
        );
        bar.set_message(engine.to_string());
        let b = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                b.tick();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { bar, task }
    }

    pub fn start(progress: Vec<Arc<ScanProgress>>) -> Self {
        let total: u64 = progress
            .iter()
            .map(|p| p.bytes_total.load(Ordering::Relaxed))
            .sum();
        let objects: u64 = progress
            .iter()
            .map(|p| p.objects_total.load(Ordering::Relaxed))
            .sum();
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} reading {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        let b = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                let read: u64 = progress
                    .iter()
                    .map(|p| p.bytes_read.load(Ordering::Relaxed))
                    .sum();
                let done: u64 = progress
                    .iter()
                    .map(|p| p.objects_read.load(Ordering::Relaxed))
                    .sum();
                b.set_position(read);
                b.set_message(format!("{done}/{objects} objects"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { bar, task }
    }

    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
