//! `millrace train`: the AutoML quick build, saved as the next version of a named model.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use millrace_automl::problem::Want;
use millrace_automl::report_html;
use millrace_automl::search::Mode;
use millrace_automl::train::{self, Event, Options};
use millrace_wrangle::Recipe;

use millrace_serve::registry::Registry;

use crate::cmd::data_io;

use crate::cli::{S3Args, parse_duration};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrainMode {
    /// A fixed list of twelve well-tried candidates: deterministic, seconds on small tables.
    Quick,
    /// The quick list, then random configurations until --time-budget is spent.
    Best,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FinalFit {
    /// Once the test part is scored, refit the chosen ensemble on every labelled row (test
    /// part included): the saved model learns from all the data; the reported figures are
    /// those of the same recipe fitted on the training part.
    All,
    /// Save the model fitted on the training part: the one the test figures were measured on.
    Train,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProblemType {
    Binary,
    Multiclass,
    Regression,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data: CSV (every column read as text, as it is in the file), Parquet or JSON,
    /// a folder, a lake prefix (e.g. a prep output) or an s3:// URL.
    #[arg(long, value_name = "FILE_OR_URL")]
    pub data: String,
    /// The column to predict.
    #[arg(long)]
    pub target: String,
    /// Model name; each run saves the next version (v1, v2, ...).
    #[arg(long)]
    pub name: String,
    /// Metric to optimise. Binary: f1 (default), accuracy, balanced_accuracy, auc, log_loss.
    /// Multiclass: accuracy (default), macro_f1, log_loss. Regression: rmse (default), mae, r2.
    #[arg(long)]
    pub objective: Option<String>,
    /// Override the detected problem type.
    #[arg(long, value_enum)]
    pub problem: Option<ProblemType>,
    /// A wrangle recipe (.toml) fitted on the training part and applied before the
    /// automatic features; it becomes part of the model.
    #[arg(long, value_name = "R.toml")]
    pub recipe: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "quick")]
    pub mode: TrainMode,
    /// Time for the search in best mode (e.g. 30s, 2m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub time_budget: std::time::Duration,
    /// Best mode: try at most this many candidates (makes a run reproducible).
    #[arg(long)]
    pub max_candidates: Option<usize>,
    /// Share of labelled rows held out (stratified, seeded) to report on.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Cross-validation folds on the training part.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Which rows the saved model is fitted on, once candidates, ensemble and threshold are
    /// chosen and the test part scored.
    #[arg(long, value_enum, default_value = "all")]
    pub final_fit: FinalFit,
    /// Seed of the split, the folds and every model: same seed and data, same model.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Refuse tables with more columns than this (target included), before any work: very
    /// wide data takes a long time to train; select the useful columns first.
    #[arg(long, default_value_t = millrace_automl::train::DEFAULT_MAX_COLUMNS)]
    pub max_columns: usize,
    /// Nodes (tree nodes and leaves, linear weights) an explanation of one row may walk. Over
    /// it, the ensemble's largest members are left out, one at a time, where the ensemble
    /// without them is within one standard error of its out-of-fold loss (the default is
    /// about 1 ms of one core per explained row). 0 keeps every member selected.
    #[arg(long, value_name = "NODES", default_value_t = millrace_automl::train::DEFAULT_EXPLAIN_BUDGET)]
    pub explain_budget: usize,
    #[command(flatten)]
    pub s3: S3Args,
}

/// A short digest of a local file's bytes (FNV-1a, 64 bits): enough to tell which file a
/// model was trained on, with no extra dependency.
fn digest(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Some(format!("fnv1a64:{h:016x}"))
}

pub async fn run(data_dir: &Path, args: TrainArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    Registry::check_name(&args.name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    if !(args.test_fraction > 0.0 && args.test_fraction < 1.0) {
        anyhow::bail!(
            "--test-fraction {}: must be between 0 and 1 (exclusive)",
            args.test_fraction
        );
    }
    if args.folds < 2 {
        anyhow::bail!("--folds {}: cross-validation needs at least 2", args.folds);
    }
    let recipe = match &args.recipe {
        Some(p) => Some(Recipe::load(p).with_context(|| format!("--recipe {}", p.display()))?),
        None => None,
    };
    let s3 = args.s3.options();
    let frame = data_io::read_frame(data_dir, &args.data, &s3)
        .await
        .with_context(|| format!("--data {}", args.data))?;
    eprintln!(
        "read {} rows × {} columns from {}",
        frame.rows(),
        frame.names().len(),
        args.data
    );
    let opts = Options {
        target: args.target.clone(),
        want: match args.problem {
            None => Want::Auto,
            Some(ProblemType::Binary) => Want::Binary,
            Some(ProblemType::Multiclass) => Want::Multiclass,
            Some(ProblemType::Regression) => Want::Regression,
        },
        objective: args.objective.clone(),
        test_fraction: args.test_fraction,
        folds: args.folds,
        seed: args.seed,
        mode: match args.mode {
            TrainMode::Quick => Mode::Quick,
            TrainMode::Best => Mode::Best,
        },
        time_budget: args.time_budget,
        max_candidates: args.max_candidates,
        recipe,
        max_columns: args.max_columns,
        refit_all: args.final_fit == FinalFit::All,
        explain_budget: (args.explain_budget > 0).then_some(args.explain_budget),
        ..Options::new(&args.target)
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let bar_c = bar.clone();
    let trained = tokio::task::spawn_blocking(move || {
        train::train(&frame, &opts, &move |e| match e {
            // Printed even when the bar is hidden (stderr not a terminal).
            Event::Info(line) => bar_c.suspend(|| eprintln!("{line}")),
            Event::Objective { .. } => {}
            Event::Planned(n) => bar_c.set_length(n as u64),
            Event::Evaluated {
                done,
                name,
                cv,
                seconds,
            } => {
                bar_c.set_position(done as u64);
                bar_c.set_message(format!("{name}: cv {cv:.4} ({seconds:.2} s)"));
            }
        })
    })
    .await?;
    bar.finish_and_clear();
    let mut trained = trained.context("training")?;

    let (version, dir) = save(data_dir, &args.name, &args.data, &mut trained, &s3).await?;
    let r = &trained.report;
    print_leaderboard(r);
    let head: Vec<String> = r
        .headline()
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect();
    println!(
        "\nensemble on the held-out test part ({} rows): {}",
        r.test_rows,
        head.join(", ")
    );
    if let Some(line) = cv_line(r) {
        println!("{line}");
    }
    if let Some(c) = r.confusion() {
        println!(
            "  threshold {:.4}; confusion: tp {} fp {} tn {} fn {}",
            r.threshold, c.tp, c.fp, c.tn, c.fn_
        );
    }
    let top: Vec<&str> = r.impact.iter().take(5).map(|i| i.column.as_str()).collect();
    if !top.is_empty() {
        println!("  most impact: {}", top.join(", "));
    }
    if trained.model.lineage.refit_all {
        println!(
            "  the saved model was then refitted on all {} labelled rows (these figures are \
             the training part's fit; --final-fit train keeps that one)",
            r.train_rows + r.test_rows
        );
    }
    println!(
        "saved {}:v{version} to {} in {:.2} s",
        args.name,
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The cross-validated estimate with its spread, beside the one held-out split: one split's
/// figure moves with the seed, the mean over the folds much less.
pub(crate) fn cv_line(r: &millrace_automl::report::Report) -> Option<String> {
    let spread = r.cv_spread();
    if spread.is_empty() {
        return None;
    }
    let figures: Vec<String> = spread
        .iter()
        .map(|(k, mean, sd)| format!("{k} {mean:.4} ± {sd:.4}"))
        .collect();
    Some(format!(
        "  cross-validated over {} folds of the {} training rows (mean ± sd; the ensemble's \
         weights and threshold were chosen on these folds too): {}",
        r.cv_folds.len(),
        r.train_rows,
        figures.join(", ")
    ))
}

/// The leaderboard as an aligned table (train prints it; `models describe` too).
pub(crate) fn print_leaderboard(r: &millrace_automl::report::Report) {
    println!(
        "\n{:<28} {:>9} {:>9} {:>7} {:>8}",
        "candidate",
        format!("cv {}", r.objective.name()),
        "test",
        "weight",
        "fit s"
    );
    for e in &r.leaderboard {
        println!(
            "{:<28} {:>9.4} {:>9.4} {:>7.2} {:>8.2}",
            e.name, e.cv, e.test, e.weight, e.fit_seconds
        );
    }
}

/// Saves a trained model as the next version of `name`, numbered by the registry under its
/// lock (so a concurrent `millrace train` or `up` retraining never takes the same version):
/// metrics.json and report.html first, model.json last (a version exists once its model.json
/// does). Returns the version and folder. Model files are always local (`_s3` is unused).
pub(crate) async fn save(
    data_dir: &Path,
    name: &str,
    data: &str,
    trained: &mut millrace_automl::train::Trained,
    _s3: &millrace_lake::S3Options,
) -> anyhow::Result<(u32, std::path::PathBuf)> {
    let registry = crate::registry::open(data_dir);
    let model_name = name.to_owned();
    // Taking the lock may wait for another change: off the async threads.
    let new = tokio::task::spawn_blocking(move || registry.new_version(&model_name)).await??;
    let version = new.version();
    let m = &mut trained.model;
    m.name = name.to_owned();
    m.version = version;
    m.lineage.data = data.to_owned();
    let local = Path::new(data);
    if local.is_dir() && local.join("_manifest.json").is_file() {
        m.lineage.manifest = Some(local.join("_manifest.json").display().to_string());
        m.lineage.digest = digest(&local.join("_manifest.json"));
    } else if local.is_file() {
        m.lineage.digest = digest(local);
    }
    let r = &mut trained.report;
    r.name = name.to_owned();
    r.version = version;
    let metrics = serde_json::to_vec_pretty(&trained.report)?;
    let report = report_html::render_html(&trained.report).into_bytes();
    let model = trained.model.to_json().into_bytes();
    let dir = tokio::task::spawn_blocking(move || {
        new.commit(
            &[("metrics.json", &metrics), ("report.html", &report)],
            &model,
        )
    })
    .await??;
    Ok((version, dir))
}
