//! GBDT evaluation harness for millrace: perpetual vs lightgbm3 on Telco churn.
//!
//! Protocol (fixed): 5 stratified 80/20 splits, seeds 1..=5. Within each 80% train
//! part: 5-fold stratified CV -> out-of-fold probabilities -> threshold maximising F1.
//! Final refit on the whole 80% (timed), then test AUC / F1@threshold / accuracy.
//! Determinism: the final refit is repeated with the same seed and predictions are
//! compared bit for bit; an FNV-1a hash of all test predictions is also printed so
//! that two separate process runs can be compared.
//!
//! Which model families are compiled in depends on cargo features:
//!   perp  -> perpetual 2.3.0 (needs a nightly toolchain: `#![feature(array_ptr_get)]`)
//!   perp3 -> perpetual 3.0.0-rc.2 (builds on stable)
//!   lgbm  -> lightgbm3 1.0.11 (+ lightgbm3-sys for the native-categorical variant)

mod data;
mod eval;
mod models;
mod rng;

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let csv = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "/work/shared/data/telco-customer-churn.csv".to_string());
    let out = args.get(2).cloned();
    let only: Option<String> = args.get(3).cloned();

    let ds = data::load(&csv);
    eprintln!(
        "loaded {} rows, {} features, {} positives, {} NaN cells",
        ds.n,
        ds.p,
        ds.y.iter().filter(|&&v| v == 1.0).count(),
        ds.x.iter().filter(|v| v.is_nan()).count()
    );

    let mut specs = models::all_specs(&ds);
    if let Some(f) = &only {
        specs.retain(|s| s.name.contains(f.as_str()));
    }
    let mut lines = Vec::new();
    lines.push(eval::Summary::header());
    for spec in &specs {
        eprintln!("== {}", spec.name);
        let s = eval::run_protocol(&ds, spec);
        eprintln!("{}", s.row());
        lines.push(s.row());
    }
    println!();
    for l in &lines {
        println!("{l}");
    }
    if let Some(path) = out {
        let mut f = std::fs::File::create(path).unwrap();
        for l in &lines {
            writeln!(f, "{l}").unwrap();
        }
    }
}
