//! `millrace wrangle`: fit a recipe on data and write the features, or apply a fitted recipe.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use millrace_common::layout::DataDir;
use millrace_wrangle::{FittedRecipe, Frame, Recipe, Rows};

use crate::cli::S3Args;
use crate::cmd::data_io;

#[derive(Debug, Args)]
pub struct WrangleArgs {
    /// Recipe to fit (.toml), or a fitted recipe to apply (.json).
    #[arg(long)]
    pub recipe: PathBuf,
    /// Data: a CSV, Parquet or JSON file, a folder, a lake prefix or an s3:// URL
    /// (optionally :FORMAT as in `millrace query`).
    #[arg(long, value_name = "FILE_OR_URL")]
    pub data: String,
    /// Where to write the features: .parquet, .csv or .ndjson, local or s3://.
    #[arg(long, value_name = "FILE_OR_URL")]
    pub out: Option<String>,
    /// Fit the recipe and write its fitted state (JSON) here; no features are written unless
    /// --out is also given.
    #[arg(long, value_name = "STATE")]
    pub fit_only: Option<PathBuf>,
    /// Also write the fitted state here when writing features.
    #[arg(long, value_name = "STATE")]
    pub save_state: Option<PathBuf>,
    #[command(flatten)]
    pub s3: S3Args,
}

pub async fn run(data_dir: &DataDir, args: WrangleArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let s3 = args.s3.options();
    // A .json recipe is a fitted state (from --fit-only): applied as is, never refitted.
    let fitted_in = args
        .recipe
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let (recipe, state) = if fitted_in {
        (None, Some(FittedRecipe::load(&args.recipe)?))
    } else {
        (Some(Recipe::load(&args.recipe)?), None)
    };
    if args.out.is_none() && args.fit_only.is_none() {
        anyhow::bail!(
            "nothing to write: give --out FILE for the features or --fit-only STATE.json"
        );
    }
    if fitted_in && args.fit_only.is_some() {
        anyhow::bail!(
            "--recipe {} is already fitted; --fit-only needs a recipe .toml",
            args.recipe.display()
        );
    }
    let (schema, batches) = data_io::read_table(data_dir.root(), &args.data, &s3).await?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    eprintln!(
        "read {rows} rows × {} columns from {}",
        schema.fields().len(),
        args.data
    );
    let fit_only = args.fit_only.clone();
    let (fitted, out) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(FittedRecipe, Frame)> {
            let frame = Frame::from_batches(&schema, &batches)?;
            drop(batches);
            match (recipe, state) {
                (Some(r), _) => Ok(r.fit(frame)?),
                (None, Some(s)) => {
                    let out = s.transform(frame, Rows::Drop)?;
                    Ok((s, out))
                }
                (None, None) => unreachable!("recipe or state loaded above"),
            }
        })
        .await??;
    if let Some(path) = &fit_only {
        fitted
            .save(path)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "fitted {} step(s) on {} rows ({} kept): {} feature column(s); state written to {}",
            fitted.steps.len(),
            fitted.rows_in,
            fitted.rows_out,
            fitted.features().count(),
            path.display()
        );
    }
    if let Some(dest) = &args.out {
        let batch = out.to_batch()?;
        let dest_c = dest.clone();
        let bytes = tokio::task::spawn_blocking(move || data_io::encode(&dest_c, &batch)).await??;
        data_io::write_bytes(dest, bytes, &s3).await?;
        if let Some(path) = &args.save_state {
            fitted
                .save(path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        eprintln!(
            "wrote {} rows × {} columns to {dest} in {:.2} s",
            out.rows(),
            out.names().len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
