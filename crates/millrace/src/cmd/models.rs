//! `millrace models`: the model registry from the command line — list versions and stages,
//! describe one version, promote a version to production, roll back to the previous one.

use millrace_common::time::utc_minutes;
use std::path::Path;

use anyhow::{Context, bail};
use millrace_automl::Task;
use millrace_automl::model::ModelArtifact;
use millrace_automl::report::Report;
use millrace_serve::registry::{Registry, Stage, VersionInfo};

#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Every model and its versions, with stage (candidate, production, archived), when it was
    /// trained, its objective and headline test metrics.
    /// Example: millrace models list
    List,
    /// One version in detail: stage, task, target, objective, decision threshold, every test
    /// metric, the leaderboard of candidates, where the training data came from, and the
    /// model's promotion history.
    /// Example: millrace models describe churn:v2
    Describe {
        /// NAME (the production version, or the latest when none is promoted) or NAME:vN; a
        /// model folder or model.json path also works.
        spec: String,
    },
    /// Make NAME:vN the production version: what endpoints and scoring serve for a bare NAME
    /// (a running endpoint swaps it in without failing a request). The version in production
    /// before becomes archived. The change is one atomic file replace; two promotions at once
    /// are serialised.
    /// Example: millrace models promote churn:v3
    Promote {
        /// NAME:vN (the version is required).
        spec: String,
    },
    /// Put the previous production version back. Repeated rollbacks walk further back through
    /// the versions that were in production, in the order they were promoted.
    /// Example: millrace models rollback churn
    Rollback {
        /// The model's name.
        name: String,
    },
}

pub async fn run(data_dir: &Path, cmd: ModelsCommand) -> anyhow::Result<()> {
    let reg = crate::registry::open(data_dir);
    match cmd {
        ModelsCommand::List => list(&reg),
        ModelsCommand::Describe { spec } => describe(&reg, &spec),
        ModelsCommand::Promote { spec } => promote(&reg, &spec),
        ModelsCommand::Rollback { name } => rollback(&reg, &name),
    }
}

fn metrics_text(pairs: &[(String, f64)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first three headline metrics, plus the objective's when it is not among them.
fn short_metrics(v: &VersionInfo) -> String {
    let mut shown: Vec<(String, f64)> = v.headline.iter().take(3).cloned().collect();
    if let Some(o) = &v.objective
        && !shown.iter().any(|(k, _)| k == o)
        && let Some(m) = v.headline.iter().find(|(k, _)| k == o)
    {
        shown.push(m.clone());
    }
    if shown.is_empty() {
        "(no metrics.json)".to_owned()
    } else {
        metrics_text(&shown)
    }
}

fn list(reg: &Registry) -> anyhow::Result<()> {
    let models = reg.list()?;
    if models.is_empty() {
        println!(
            "no models under {} (train one with millrace train --name NAME)",
            reg.location()
        );
        return Ok(());
    }
    let w = models
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(0)
        .max(5);
    println!(
        "{:<w$}  {:>7}  {:<10}  {:<16}  {:<9}  test",
        "model", "version", "stage", "trained (UTC)", "objective"
    );
    for m in &models {
        if m.versions.is_empty() {
            println!("{:<w$}  {:>7}  (no versions yet)", m.name, "-");
        }
        for v in &m.versions {
            println!(
                "{:<w$}  {:>7}  {:<10}  {:<16}  {:<9}  {}",
                m.name,
                format!("v{}", v.version),
                v.stage.name(),
                utc_minutes(v.created_ms),
                v.objective.as_deref().unwrap_or("-"),
                short_metrics(v)
            );
        }
    }
    Ok(())
}

fn task_text(task: &Task) -> String {
    match task {
        Task::Binary { positive, negative } => {
            format!("binary (positive class {positive:?}, negative {negative:?})")
        }
        Task::Multiclass { classes } => {
            format!(
                "multiclass ({} classes: {})",
                classes.len(),
                classes.join(", ")
            )
        }
        Task::Regression => "regression".to_owned(),
    }
}

fn describe(reg: &Registry, spec: &str) -> anyhow::Result<()> {
    let (file, name, version) = reg.resolve(spec)?;
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let model = ModelArtifact::from_json(&text, &file.display().to_string())?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let metrics = dir.join("metrics.json");
    let report: Option<Report> = std::fs::read_to_string(&metrics)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    // A path outside the registry has no stage.
    let info = reg.info(&name).ok();
    let stage = info
        .as_ref()
        .and_then(|i| i.versions.iter().find(|v| v.version == version))
        .map(|v| v.stage);

    let row = |k: &str, v: String| println!("  {k:<12} {v}");
    println!(
        "{name}:v{version} ({})",
        stage.map_or("not in the registry", Stage::name)
    );
    row("folder", dir.display().to_string());
    if let Ok(t) = std::fs::metadata(&file).and_then(|m| m.modified())
        && let Ok(d) = t.duration_since(std::time::UNIX_EPOCH)
    {
        row(
            "trained",
            format!("{} UTC", utc_minutes(d.as_millis() as i64)),
        );
    }
    row("task", task_text(&model.task));
    row("target", model.target.clone());
    row("objective", model.objective.name().to_owned());
    if matches!(model.task, Task::Binary { .. }) {
        row("threshold", format!("{:.4}", model.threshold));
    }
    row("seed", model.seed.to_string());
    let l = &model.lineage;
    row("data", l.data.clone());
    if let Some(m) = &l.manifest {
        row("manifest", m.clone());
    }
    if let Some(d) = &l.digest {
        row("digest", d.clone());
    }
    row(
        "rows",
        format!("{} ({} train, {} test)", l.rows, l.train_rows, l.test_rows),
    );
    match &report {
        None => row("metrics", format!("{} cannot be read", metrics.display())),
        Some(r) => {
            let head: Vec<(String, f64)> = r
                .headline()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            row("test", metrics_text(&head));
            if let Some(c) = r.confusion() {
                row(
                    "confusion",
                    format!("tp {} fp {} tn {} fn {}", c.tp, c.fp, c.tn, c.fn_),
                );
            }
            let mode = serde_json::to_value(r.mode)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            row(
                "build",
                format!("{mode} mode, {} folds, {:.2} s", r.folds, r.seconds),
            );
            let top: Vec<&str> = r.impact.iter().take(5).map(|i| i.column.as_str()).collect();
            if !top.is_empty() {
                row("most impact", top.join(", "));
            }
            crate::cmd::train::print_leaderboard(r);
        }
    }
    if let Some(info) = info {
        let mine: Vec<_> = info
            .history
            .iter()
            .filter(|p| p.version == version)
            .collect();
        if !mine.is_empty() {
            println!();
            for p in mine {
                println!(
                    "{} v{version} at {} UTC",
                    if p.rollback {
                        "rolled back to"
                    } else {
                        "promoted"
                    },
                    utc_minutes(p.promoted_at_ms)
                );
            }
        }
    }
    Ok(())
}

fn promote(reg: &Registry, spec: &str) -> anyhow::Result<()> {
    let Some((name, v)) = spec.rsplit_once(':') else {
        Registry::check_name(spec)?;
        let all: Vec<String> = reg.versions(spec).iter().map(|v| format!("v{v}")).collect();
        bail!(
            "promote {spec}: say which version, as {spec}:vN (versions: {})",
            if all.is_empty() {
                "none".to_owned()
            } else {
                all.join(", ")
            }
        );
    };
    let version: u32 = v
        .strip_prefix('v')
        .unwrap_or(v)
        .parse()
        .with_context(|| format!("promote {spec}: the version must look like v3"))?;
    match reg.promote(name, version)? {
        Some(p) if p == version => println!("{name}:v{version} is already in production"),
        Some(p) => println!(
            "{name}:v{version} is now in production; v{p} is archived (millrace models rollback \
             {name} puts it back)"
        ),
        None => println!("{name}:v{version} is now in production"),
    }
    Ok(())
}

fn rollback(reg: &Registry, name: &str) -> anyhow::Result<()> {
    let before = reg.info(name)?.production;
    let now = reg.rollback(name)?;
    match before {
        Some(b) if b != now => {
            println!("{name}:v{now} is back in production; v{b} is archived")
        }
        _ => println!("{name}:v{now} is back in production"),
    }
    Ok(())
}
