//! `millrace profile`: the data-quality and insights report (report.json + report.html).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use millrace_common::layout::DataDir;
use millrace_wrangle::profile::{self, ProfileOptions};

use crate::cli::S3Args;
use crate::cmd::data_io;

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Data: a CSV, Parquet or JSON file, a folder, a lake prefix or an s3:// URL.
    #[arg(long, value_name = "FILE_OR_URL")]
    pub data: String,
    /// The column to predict (enables feature power, leakage and imbalance checks, and the
    /// quick model).
    #[arg(long)]
    pub target: Option<String>,
    /// Folder for report.html and report.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Rows sampled (seeded) for correlations, feature power and the quick model; counts,
    /// missing values and min/max/mean use every row.
    #[arg(long, default_value_t = 200_000)]
    pub sample_rows: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub s3: S3Args,
}

pub async fn run(data_dir: &DataDir, args: ProfileArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let s3 = args.s3.options();
    let (_, batches) = data_io::read_table(data_dir.root(), &args.data, &s3).await?;
    let options = ProfileOptions {
        target: args.target.clone(),
        seed: args.seed,
        max_sample_rows: args.sample_rows,
    };
    let report = tokio::task::spawn_blocking(move || profile::profile(&batches, &options))
        .await?
        .context("profiling")?;
    let html = profile::render_html(&report);
    let json = serde_json::to_vec_pretty(&report)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for (name, bytes) in [("report.json", json), ("report.html", html.into_bytes())] {
        let path = args.out.join(name);
        data_io::write_bytes(&path.display().to_string(), bytes, &s3).await?;
    }
    println!(
        "profiled {} rows × {} columns in {:.2} s: {} warning(s)",
        report.summary.rows,
        report.summary.columns,
        started.elapsed().as_secs_f64(),
        report.warnings.len()
    );
    for w in report.warnings.iter().take(12) {
        println!("  - {}", w.message);
    }
    if let Some(top) = report.feature_power.first() {
        let names: Vec<&str> = report
            .feature_power
            .iter()
            .take(5)
            .map(|f| f.column.as_str())
            .collect();
        println!(
            "  strongest features for the target: {} (top: {})",
            names.join(", "),
            top.column
        );
    }
    println!(
        "  {} and {}",
        args.out.join("report.html").display(),
        args.out.join("report.json").display()
    );
    Ok(())
}
