//! Times `profile` and `render_html` on the Telco churn CSV and on a 1,000,000-row × 21-column
//! table made by repeating it (customer IDs made unique).
//!
//! `cargo run --release -p millrace-wrangle --example profile_bench [rows] [out_dir]`
//!
//! With `out_dir`, the Telco report is written there as `report.json` and `report.html`.

use std::io::Seek;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, StringArray};
use arrow::compute::{concat_batches, take};
use arrow::record_batch::RecordBatch;
use millrace_wrangle::profile::{ProfileOptions, profile, render_html};

fn main() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/telco-customer-churn.csv"
    );
    let rows: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut file = std::fs::File::open(path).expect("telco csv");
    let (schema, _) = arrow_csv::reader::Format::default()
        .with_header(true)
        .infer_schema(&mut file, None)
        .unwrap();
    file.rewind().unwrap();
    let schema = Arc::new(schema);
    let batches: Vec<RecordBatch> = arrow_csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .build(file)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let options = ProfileOptions {
        target: Some("Churn".into()),
        ..Default::default()
    };

    let t = Instant::now();
    let report = profile(&batches, &options).unwrap();
    let profile_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let html = render_html(&report);
    println!(
        "telco 7043 rows: profile {:.3} s, render_html {:.3} s ({} bytes)",
        profile_s,
        t.elapsed().as_secs_f64(),
        html.len()
    );
    if let Some(dir) = std::env::args().nth(2) {
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_string_pretty(&report).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("report.html"), &html).unwrap();
    }

    // Grow to `rows` by repeating rows; IDs get a copy suffix so they stay unique.
    let base = concat_batches(&schema, &batches).unwrap();
    let n = base.num_rows();
    let mut big = Vec::new();
    let chunk = 65_536;
    let mut start = 0;
    while start < rows {
        let len = chunk.min(rows - start);
        let idx = arrow::array::UInt32Array::from_iter_values(
            (start..start + len).map(|i| (i % n) as u32),
        );
        let mut cols: Vec<ArrayRef> = base
            .columns()
            .iter()
            .map(|c| take(c, &idx, None).unwrap())
            .collect();
        let ids = cols[0].as_any().downcast_ref::<StringArray>().unwrap();
        let unique: StringArray = (0..len)
            .map(|k| Some(format!("{}-{}", ids.value(k), (start + k) / n)))
            .collect();
        cols[0] = Arc::new(unique);
        big.push(RecordBatch::try_new(schema.clone(), cols).unwrap());
        start += len;
    }
    let t = Instant::now();
    let report = profile(&big, &options).unwrap();
    let profile_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let html_len = render_html(&report).len();
    println!(
        "{} rows x {} columns: profile {:.3} s, render_html {:.3} s ({} bytes); model AUC {:.3}, sample {} rows",
        rows,
        schema.fields().len(),
        profile_s,
        t.elapsed().as_secs_f64(),
        html_len,
        report
            .model
            .as_ref()
            .map(|m| m.holdout_score)
            .unwrap_or(f64::NAN),
        report.sampling.sample_rows
    );
}
