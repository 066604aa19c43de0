//! `millrace bench wrangle`: how fast a recipe fits and transforms, and how long one raw record
//! takes through the fitted recipe (what the endpoint adds to every prediction).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use arrow::array::{Array, AsArray};
use clap::Args;
use hdrhistogram::Histogram;
use millrace_common::layout::DataDir;
use millrace_wrangle::{Frame, Recipe, Rows};
use serde_json::{Map, Value, json};

const CHURN_RECIPE: &str = include_str!("../../../../../examples/recipes/churn.toml");

#[derive(Debug, Args)]
pub struct BenchWrangleArgs {
    /// The data (CSV, Parquet, NDJSON), e.g. from `millrace generate churn --rows 1000000`.
    #[arg(long)]
    pub data: String,
    /// Recipe to fit (default: examples/recipes/churn.toml, built in).
    #[arg(long)]
    pub recipe: Option<PathBuf>,
    /// Records (the data's first rows, as JSON objects of strings) timed one at a time.
    #[arg(long, default_value_t = 20000)]
    pub records: usize,
    /// Write the results as JSON to this file too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub async fn wrangle(data_dir: &DataDir, args: BenchWrangleArgs) -> anyhow::Result<()> {
    let recipe = match &args.recipe {
        Some(p) => Recipe::load(p)?,
        None => Recipe::parse(CHURN_RECIPE, "examples/recipes/churn.toml")?,
    };
    let t = Instant::now();
    let (schema, batches) =
        crate::cmd::data_io::read_table(data_dir.root(), &args.data, &Default::default()).await?;
    let read_s = t.elapsed().as_secs_f64();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    // The records a producer would send: every value as a string, like the stream carries them.
    let mut records: Vec<Map<String, Value>> = Vec::with_capacity(args.records.min(rows));
    'outer: for b in &batches {
        let cols: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8))
            .collect::<Result<_, _>>()?;
        for i in 0..b.num_rows() {
            if records.len() >= args.records {
                break 'outer;
            }
            let mut m = Map::new();
            for (f, c) in schema.fields().iter().zip(&cols) {
                let s = c.as_string::<i32>();
                if !s.is_null(i) {
                    m.insert(f.name().clone(), Value::String(s.value(i).to_owned()));
                }
            }
            records.push(m);
        }
    }
    let result = tokio::task::spawn_blocking(move || -> anyhow::Result<Value> {
        let t = Instant::now();
        let frame = Frame::from_batches(&schema, &batches)?;
        let to_frame_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (fitted, out) = recipe.fit(frame)?;
        let fit_s = t.elapsed().as_secs_f64();
        let features = out.names().len();
        drop(out);
        // A fresh frame for the second pass, as `millrace wrangle --recipe STATE.json` reads one.
        let frame = Frame::from_batches(&schema, &batches)?;
        drop(batches);
        let t = Instant::now();
        let again = fitted.transform(frame, Rows::Drop)?;
        let transform_s = t.elapsed().as_secs_f64();
        drop(again);
        // Warm up, then time each record alone.
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
        for r in records.iter().take(1000) {
            std::hint::black_box(fitted.transform_record(r)?);
        }
        for r in &records {
            let t = Instant::now();
            let f = fitted.transform_record(r)?;
            let ns = t.elapsed().as_nanos() as u64;
            std::hint::black_box(f);
            hist.record(ns.max(1))?;
        }
        Ok(json!({
            "rows": rows,
            "read_s": read_s,
            "to_frame_s": to_frame_s,
            "fit_transform_s": fit_s,
            "fit_transform_rows_per_s": rows as f64 / fit_s,
            "transform_s": transform_s,
            "transform_rows_per_s": rows as f64 / transform_s,
            "rows_kept": fitted.rows_out,
            "output_columns": features,
            "record_count": hist.len(),
            "record_median_us": hist.value_at_quantile(0.5) as f64 / 1000.0,
            "record_p99_us": hist.value_at_quantile(0.99) as f64 / 1000.0,
            "peak_rss_mib": peak_rss_mib(),
        }))
    })
    .await??;
    println!(
        "wrangle bench: {} rows, {} output columns\n  fit+transform {:.2} s ({:.0} rows/s), transform {:.2} s ({:.0} rows/s)\n  one record: median {:.1} µs, p99 {:.1} µs over {} records\n  peak RSS {:.0} MiB (read {:.2} s, to frame {:.2} s)",
        result["rows"],
        result["output_columns"],
        result["fit_transform_s"].as_f64().unwrap_or_default(),
        result["fit_transform_rows_per_s"]
            .as_f64()
            .unwrap_or_default(),
        result["transform_s"].as_f64().unwrap_or_default(),
        result["transform_rows_per_s"].as_f64().unwrap_or_default(),
        result["record_median_us"].as_f64().unwrap_or_default(),
        result["record_p99_us"].as_f64().unwrap_or_default(),
        result["record_count"],
        result["peak_rss_mib"].as_f64().unwrap_or_default(),
        result["read_s"].as_f64().unwrap_or_default(),
        result["to_frame_s"].as_f64().unwrap_or_default(),
    );
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_vec(&result)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// Peak resident memory of this process (Linux), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
