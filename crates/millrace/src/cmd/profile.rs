//! `millrace profile`: the data-quality and insights report (report.json + report.html).

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use millrace_wrangle::profile::{self, ProfileOptions};

use crate::cli::ProfileArgs;
use crate::cmd::data_io;

pub async fn run(data_dir: &Path, args: ProfileArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let s3 = millrace_lake::S3Options {
        endpoint_url: args.s3_endpoint_url.clone(),
        path_style: args.s3_endpoint_url.is_some(),
    };
    let (_, batches) = data_io::read_table(data_dir, &args.data, &s3).await?;
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
