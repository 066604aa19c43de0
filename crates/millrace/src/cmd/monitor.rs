//! `millrace monitor`: is a model's input drifting away from what it was trained on? Either
//! the report a running endpoint saved (`state/monitor/NAME.json`), or a file's last rows
//! compared with the model's training baseline on the spot.

use std::io::Write;

use anyhow::{Context, bail};
use millrace_common::layout::DataDir;
use millrace_serve::monitor::{
    DEFAULT_MIN_RECORDS, DEFAULT_THRESHOLD, DEFAULT_WINDOW, DriftOptions, DriftReport, DriftWindow,
    report_path,
};
use millrace_serve::registry::Registry;

use crate::cli::S3Args;
use crate::cmd::data_io;

/// Exit status of `--fail-on-drift` when the model is drifting.
pub const EXIT_DRIFTING: i32 = 3;

#[derive(Debug, clap::Args)]
pub struct MonitorArgs {
    /// NAME (the production version, or the latest when none is promoted), NAME:vN, or a model
    /// folder / model.json path.
    pub model: String,
    /// Compare the last --window rows of this data (CSV, Parquet or JSON; a file, folder, lake
    /// prefix or s3:// URL) with the model's baseline, instead of showing the report a running
    /// endpoint saved.
    #[arg(long, value_name = "FILE_OR_URL")]
    pub data: Option<String>,
    /// With --data: how many of its last rows form the window.
    #[arg(long, default_value_t = DEFAULT_WINDOW)]
    pub window: usize,
    /// PSI at or above which a feature has drifted [default: 0.2, or the saved report's].
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Fewer records than this are never judged drifting [default: 200, or the window if
    /// smaller].
    #[arg(long)]
    pub min_records: Option<usize>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Exit with status 3 when the model is drifting (for cron jobs and CI).
    #[arg(long)]
    pub fail_on_drift: bool,
    #[command(flatten)]
    pub s3: S3Args,
}

pub async fn run(data_dir: &DataDir, args: MonitorArgs) -> anyhow::Result<()> {
    if let Some(t) = args.threshold.filter(|t| !(t.is_finite() && *t > 0.0)) {
        bail!("--threshold {t}: must be a positive number (0.2 is the usual cut)");
    }
    if args.window == 0 {
        bail!("--window must be at least 1");
    }
    let registry = crate::registry::open(data_dir.root());
    let report = match &args.data {
        Some(data) => from_data(data_dir, &registry, &args, data).await?,
        None => saved(data_dir, &registry, &args)?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    if args.fail_on_drift && report.drifting {
        let _ = std::io::stdout().flush();
        std::process::exit(EXIT_DRIFTING);
    }
    Ok(())
}

/// The model `spec` names, its name and version; an error when it has no baseline.
fn load_model(
    registry: &Registry,
    spec: &str,
) -> anyhow::Result<(millrace_automl::model::ModelArtifact, String, u32)> {
    let (model, version) = registry
        .load(spec)
        .with_context(|| format!("model {spec}"))?;
    let name = if model.name.is_empty() {
        spec.split(':').next().unwrap_or(spec).to_owned()
    } else {
        model.name.clone()
    };
    if model.baseline.is_none() {
        bail!(
            "model {name} v{version} has no baseline (it was trained before drift monitoring \
             existed); retrain it"
        );
    }
    Ok((model, name, version))
}

async fn from_data(
    data_dir: &DataDir,
    registry: &Registry,
    args: &MonitorArgs,
    data: &str,
) -> anyhow::Result<DriftReport> {
    let (model, name, version) = load_model(registry, &args.model)?;
    let frame = data_io::read_frame(data_dir.root(), data, &args.s3.options())
        .await
        .with_context(|| format!("--data {data}"))?;
    let options = DriftOptions {
        window: args.window,
        min_records: args
            .min_records
            .unwrap_or(DEFAULT_MIN_RECORDS.min(args.window)),
        threshold: args.threshold.unwrap_or(DEFAULT_THRESHOLD),
    };
    let window = DriftWindow::for_model(&name, version, &model, options)
        .context("the model has no baseline")?;
    let features: Vec<&str> = window
        .baseline()
        .features
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    let absent: Vec<&str> = features
        .iter()
        .copied()
        .filter(|f| frame.index(f).is_none())
        .collect();
    if absent.len() == features.len() {
        bail!(
            "--data {data}: none of the model's input columns is there (expected {})",
            features.join(", ")
        );
    }
    if !absent.is_empty() {
        eprintln!(
            "warning: --data {data} lacks {}; counted as missing values",
            absent.join(", ")
        );
    }
    let rows = frame.rows();
    let last: Vec<usize> = (rows.saturating_sub(args.window)..rows).collect();
    let frame = if last.len() == rows {
        frame
    } else {
        frame.take_rows(&last)
    };
    eprintln!(
        "{name}:v{version}: the last {} of {rows} rows of {data} against the training baseline",
        frame.rows()
    );
    window.observe_frame(&frame);
    Ok(window.report())
}

fn saved(
    data_dir: &DataDir,
    registry: &Registry,
    args: &MonitorArgs,
) -> anyhow::Result<DriftReport> {
    if args.window != DEFAULT_WINDOW {
        bail!(
            "--window applies with --data; an endpoint's window is set by `millrace endpoint \
             --drift-window`"
        );
    }
    // The registry's name for the spec (a model path names its model); the spec's own name
    // when the model is gone but its report is not.
    let resolved = registry.resolve(&args.model).ok();
    let name = match &resolved {
        Some((_, n, _)) => n.as_str(),
        None => args.model.split(':').next().unwrap_or(&args.model),
    };
    let Some(mut report) = DriftReport::load(data_dir.root(), name)? else {
        // Say why: no such model, a model without a baseline, or nothing scored yet.
        let (_, name, _) = load_model(registry, &args.model)?;
        bail!(
            "no drift report for {name} yet ({} does not exist): a running `millrace endpoint \
             --model {name}` saves one every few seconds once it has scored records; or pass \
             --data FILE to compare a file with the model's baseline",
            report_path(data_dir.root(), &name).display()
        );
    };
    if let Some((_, _, v)) = resolved.filter(|(_, _, v)| *v != report.version) {
        eprintln!(
            "note: the saved report is for {}:v{}; {} is v{v}",
            report.model, report.version, args.model
        );
    }
    // Judge the saved PSI values again under the thresholds asked for.
    if let Some(t) = args.threshold {
        report.threshold = t;
    }
    if let Some(m) = args.min_records {
        report.min_records = m;
    }
    report.drifting = report.window_records >= report.min_records
        && report.max().is_some_and(|f| f.psi >= report.threshold);
    let age = (millrace_common::time::now_ms() - report.at_ms).max(0) / 1000;
    eprintln!(
        "report saved at {} UTC ({age} s ago) by the process serving {}:v{}",
        millrace_common::time::utc_minutes(report.at_ms),
        report.model,
        report.version
    );
    Ok(report)
}

/// The table a person reads: feature, PSI, a bar (the threshold at its middle), the flag and
/// the bucket that moved most.
fn print_table(r: &DriftReport) {
    const BAR: usize = 20;
    println!(
        "{}:v{}: {} records in the window (of {} observed; window {}), threshold {}",
        r.model, r.version, r.window_records, r.observed_records, r.window, r.threshold
    );
    let width = r
        .features
        .iter()
        .map(|f| f.feature.chars().count())
        .max()
        .unwrap_or(7)
        .max(7);
    println!(
        "{:<width$}  {:>8}  {:<BAR$}  {:<5}  most moved bucket (training → now)",
        "feature", "PSI", "", "flag"
    );
    for f in &r.features {
        let cells = ((f.psi / r.threshold) * (BAR as f64 / 2.0))
            .round()
            .clamp(0.0, BAR as f64) as usize;
        let bar = format!("{}{}", "█".repeat(cells), "·".repeat(BAR - cells));
        let flag = if f.psi >= r.threshold {
            "DRIFT"
        } else if f.psi >= r.threshold / 2.0 {
            "watch"
        } else {
            ""
        };
        let moved = f
            .moved
            .as_ref()
            .map(|m| {
                format!(
                    "{}: {:.1}% → {:.1}%",
                    m.bucket,
                    m.expected * 100.0,
                    m.actual * 100.0
                )
            })
            .unwrap_or_default();
        println!(
            "{:<width$}  {:>8.4}  {bar}  {flag:<5}  {moved}",
            f.feature, f.psi
        );
    }
    println!("{}", r.summary());
}
