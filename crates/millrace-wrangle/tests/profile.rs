//! Tests of the data-quality report: figures on the Telco churn CSV checked against an
//! independent computation with the `csv` crate, leakage/constant detection on synthetic data,
//! and the HTML page rendered by headless Chromium without console errors.

use std::collections::HashSet;
use std::io::Seek;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use millrace_wrangle::profile::{
    ColumnKind, ProblemType, ProfileError, ProfileOptions, Report, WarningKind, profile,
    render_html,
};

const TELCO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/telco-customer-churn.csv"
);

fn read_telco() -> Vec<RecordBatch> {
    let mut file = std::fs::File::open(TELCO).unwrap_or_else(|e| panic!("open {TELCO}: {e}"));
    let (schema, _) = arrow_csv::reader::Format::default()
        .with_header(true)
        .infer_schema(&mut file, None)
        .unwrap();
    file.rewind().unwrap();
    let reader = arrow_csv::ReaderBuilder::new(Arc::new(schema))
        .with_header(true)
        .build(file)
        .unwrap();
    reader.collect::<Result<Vec<_>, _>>().unwrap()
}

fn telco_report() -> Report {
    let batches = read_telco();
    let options = ProfileOptions {
        target: Some("Churn".into()),
        ..Default::default()
    };
    let start = Instant::now();
    let report = profile(&batches, &options).unwrap();
    eprintln!("profile(telco) took {:?}", start.elapsed());
    report
}

/// The CSV as strings, independent of Arrow.
fn read_csv_plain() -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(TELCO).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn telco_report_matches_independent_statistics() {
    let report = telco_report();
    let (header, rows) = read_csv_plain();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();

    // Dataset summary.
    assert_eq!(report.summary.rows, rows.len());
    assert_eq!(report.summary.rows, 7043);
    assert_eq!(report.summary.columns, header.len());
    let distinct: HashSet<&Vec<String>> = rows.iter().collect();
    assert_eq!(report.summary.duplicate_rows, rows.len() - distinct.len());
    let blank_cells = rows
        .iter()
        .flatten()
        .filter(|v| v.trim().is_empty())
        .count();
    assert_eq!(report.summary.missing_cells, blank_cells);
    assert!(report.summary.memory_bytes > 0);

    // TotalCharges: numbers stored as strings, 11 of them " ".
    let tc = report.column("TotalCharges").unwrap();
    let tc_blank = rows
        .iter()
        .filter(|r| r[col("TotalCharges")].trim().is_empty())
        .count();
    assert_eq!(tc_blank, 11);
    assert_eq!(tc.inferred_type, ColumnKind::Numeric);
    assert_eq!(tc.missing, 11);
    assert_eq!(tc.blank, 11);
    assert_eq!(tc.mismatched, 0);
    assert!(
        report.has_warning(WarningKind::Mismatched, Some("TotalCharges")),
        "{:#?}",
        report.warnings
    );

    // Numeric statistics of tenure and MonthlyCharges.
    for name in ["tenure", "MonthlyCharges"] {
        let mut v: Vec<f64> = rows
            .iter()
            .map(|r| r[col(name)].trim().parse::<f64>().unwrap())
            .collect();
        let (mean, std) = mean_std(&v);
        v.sort_by(f64::total_cmp);
        let p = report.column(name).unwrap();
        let n = p.numeric.as_ref().unwrap();
        assert_eq!(p.inferred_type, ColumnKind::Numeric);
        assert!(
            close(n.mean, mean, 1e-12),
            "{name} mean {} vs {mean}",
            n.mean
        );
        assert!(
            close(n.std.unwrap(), std, 1e-9),
            "{name} std {:?} vs {std}",
            n.std
        );
        assert_eq!(n.min, v[0]);
        assert_eq!(n.max, v[v.len() - 1]);
        // Median by linear interpolation.
        let pos = 0.5 * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        let median = v[lo] + (v[hi] - v[lo]) * (pos - lo as f64);
        assert!(close(n.quantiles.p50, median, 1e-12));
        assert_eq!(n.histogram.counts.iter().sum::<u64>() as usize, v.len());
    }

    // Contract: 3 categories, mode Month-to-month.
    let contract = report.column("Contract").unwrap();
    let values: Vec<&str> = rows.iter().map(|r| r[col("Contract")].as_str()).collect();
    let uniq: HashSet<&str> = values.iter().copied().collect();
    assert_eq!(contract.unique, uniq.len());
    assert_eq!(contract.unique, 3);
    let mode_count = values.iter().filter(|&&v| v == "Month-to-month").count();
    assert_eq!(contract.mode.as_deref(), Some("Month-to-month"));
    assert_eq!(contract.mode_count, mode_count);
    assert_eq!(contract.inferred_type, ColumnKind::Categorical);

    // Target: binary Churn, positive "Yes", 1869 of 7043.
    let churned = rows.iter().filter(|r| r[col("Churn")] == "Yes").count();
    assert_eq!(churned, 1869);
    let t = report.target.as_ref().unwrap();
    assert_eq!(t.problem_type, ProblemType::Binary);
    assert_eq!(t.positive_class.as_deref(), Some("Yes"));
    assert!(close(
        t.positive_rate.unwrap(),
        churned as f64 / 7043.0,
        1e-12
    ));
    assert!((t.positive_rate.unwrap() - 0.265).abs() < 0.001);
    assert!(report.has_warning(WarningKind::ClassImbalance, Some("Churn")));

    // customerID is an identifier and is not a leak.
    assert!(report.has_warning(WarningKind::IdLike, Some("customerID")));
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| w.kind == WarningKind::TargetLeakage),
        "{:#?}",
        report.warnings
    );

    // Contract and tenure among the five strongest features.
    let top5: Vec<&str> = report
        .feature_power
        .iter()
        .take(5)
        .map(|f| f.column.as_str())
        .collect();
    assert!(
        top5.contains(&"Contract") && top5.contains(&"tenure"),
        "top 5: {top5:?}"
    );
    let id_power = report
        .feature_power
        .iter()
        .find(|f| f.column == "customerID")
        .unwrap();
    assert!(id_power.auc.unwrap() < 0.6, "ID AUC {:?}", id_power.auc);

    // Pearson of tenure vs MonthlyCharges (all rows are in the sample at this size).
    assert!(!report.sampling.sampled);
    let x: Vec<f64> = rows
        .iter()
        .map(|r| r[col("tenure")].parse().unwrap())
        .collect();
    let y: Vec<f64> = rows
        .iter()
        .map(|r| r[col("MonthlyCharges")].parse().unwrap())
        .collect();
    let (mx, sx) = mean_std(&x);
    let (my, sy) = mean_std(&y);
    let cov = x
        .iter()
        .zip(&y)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / (x.len() as f64 - 1.0);
    let r = cov / (sx * sy);
    let c = &report.correlations;
    let i = c
        .numeric_columns
        .iter()
        .position(|n| n == "tenure")
        .unwrap();
    let j = c
        .numeric_columns
        .iter()
        .position(|n| n == "MonthlyCharges")
        .unwrap();
    let got = c.pearson[i][j].unwrap();
    assert!((got - r).abs() < 1e-9, "pearson {got} vs {r}");
    assert_eq!(c.pearson[j][i], c.pearson[i][j]);
    assert!(c.spearman[i][j].unwrap() > 0.0);
    assert!(c.categorical_columns.iter().any(|n| n == "Contract"));
    assert!(!c.categorical_columns.iter().any(|n| n == "customerID"));

    // The quick model learns something and ranks real columns.
    let m = report.model.as_ref().unwrap();
    assert!(m.holdout_score > 0.75, "holdout AUC {}", m.holdout_score);
    assert!(m.excluded.iter().any(|e| e.column == "customerID"));
    assert_eq!(m.impact.len(), header.len() - 2);

    // report.json round-trips and has the documented keys.
    let json = serde_json::to_string(&report).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["summary"]["rows"], 7043);
    assert_eq!(value["target"]["problem_type"], "binary");
    assert!(
        value["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["kind"] == "id_like")
    );
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back.columns.len(), report.columns.len());
}

fn synthetic() -> RecordBatch {
    let n = 400;
    // A deterministic, unbalanced-looking but learnable pattern.
    let target: Vec<&str> = (0..n)
        .map(|i| if (i * 7919) % 10 < 4 { "Yes" } else { "No" })
        .collect();
    let noise: Vec<f64> = (0..n).map(|i| ((i * 37) % 101) as f64).collect();
    let ids: Vec<String> = (0..n).map(|i| format!("id-{i:05}")).collect();
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("noise", DataType::Float64, false),
        Field::new("constant", DataType::Int64, false),
        Field::new("leak", DataType::Utf8, false),
        Field::new("target", DataType::Utf8, false),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(Float64Array::from(noise)),
        Arc::new(Int64Array::from(vec![7i64; n])),
        Arc::new(StringArray::from(target.clone())),
        Arc::new(StringArray::from(target)),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).unwrap()
}

#[test]
fn synthetic_leak_and_constant_are_flagged() {
    let batch = synthetic();
    let options = ProfileOptions {
        target: Some("target".into()),
        ..Default::default()
    };
    let report = profile(std::slice::from_ref(&batch), &options).unwrap();
    assert!(
        report.has_warning(WarningKind::TargetLeakage, Some("leak")),
        "{:#?}",
        report.warnings
    );
    assert!(report.has_warning(WarningKind::Constant, Some("constant")));
    assert!(report.has_warning(WarningKind::IdLike, Some("id")));
    assert!(!report.has_warning(WarningKind::TargetLeakage, Some("id")));
    assert!(!report.has_warning(WarningKind::TargetLeakage, Some("noise")));
    assert_eq!(report.feature_power[0].column, "leak");

    // Errors: unknown target, no rows.
    let bad = ProfileOptions {
        target: Some("nope".into()),
        ..Default::default()
    };
    assert!(matches!(
        profile(std::slice::from_ref(&batch), &bad),
        Err(ProfileError::TargetMissing(_))
    ));
    assert!(matches!(
        profile(&[], &ProfileOptions::default()),
        Err(ProfileError::EmptyData)
    ));
    assert!(matches!(
        profile(&[batch.slice(0, 0)], &ProfileOptions::default()),
        Err(ProfileError::EmptyData)
    ));

    // Sampling is seeded and reported.
    let small = ProfileOptions {
        target: Some("target".into()),
        seed: 3,
        max_sample_rows: 100,
    };
    let a = profile(std::slice::from_ref(&batch), &small).unwrap();
    let b = profile(&[batch], &small).unwrap();
    assert!(a.sampling.sampled && a.sampling.sample_rows == 100);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

fn find_browser() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MILLRACE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Screenshots `html` with headless Chromium; returns (PNG size, console lines).
fn screenshot(browser: &Path, html: &Path, png: &Path) -> (u64, Vec<String>) {
    // A profile folder of its own (no clash with another browser or test), and no /dev/shm
    // use (containers often give it 64 MB).
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,2000",
            "--enable-logging=stderr",
            "--v=1",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read stderr on a thread so a chatty browser cannot block on a full pipe.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).ok();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = reader.join().unwrap();
    // Chromium logs every console message (errors, uncaught exceptions, SVG attribute errors)
    // as `INFO:CONSOLE` without a level; the page has no scripts, so any console line is a fault.
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    let size = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
    (size, console)
}

#[test]
fn html_renders_in_headless_chromium() {
    let report = telco_report();
    let html = render_html(&report);
    assert!(html.contains("<svg") && !html.contains("<script"));

    // A page with hostile strings: they must come out as text.
    let nasty_schema = Schema::new(vec![
        Field::new(
            "<script>throw new Error(\"name\")</script>",
            DataType::Utf8,
            false,
        ),
        Field::new("y", DataType::Utf8, false),
    ]);
    let vals: Vec<String> = (0..50)
        .map(|i| {
            if i % 2 == 0 {
                "<script>throw new Error(\"x\")</script>".into()
            } else {
                "a&b\"'".into()
            }
        })
        .collect();
    let ys: Vec<&str> = (0..50)
        .map(|i| if i % 3 == 0 { "1" } else { "0" })
        .collect();
    let nasty = RecordBatch::try_new(
        Arc::new(nasty_schema),
        vec![
            Arc::new(StringArray::from(vals)),
            Arc::new(StringArray::from(ys)),
        ],
    )
    .unwrap();
    let nasty_report = profile(
        &[nasty],
        &ProfileOptions {
            target: Some("y".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let nasty_html = render_html(&nasty_report);
    assert!(!nasty_html.contains("<script"), "unescaped data in HTML");

    let browser = match find_browser() {
        Some(b) => b,
        None if std::env::var("MILLRACE_SKIP_BROWSER").as_deref() == Ok("1") => {
            eprintln!("skipping the browser check: no chromium found and MILLRACE_SKIP_BROWSER=1");
            return;
        }
        None => panic!(
            "no headless browser found (chromium, chromium-browser, google-chrome or MILLRACE_CHROMIUM); \
             install the Debian package `chromium` (apt-get install chromium), or set MILLRACE_SKIP_BROWSER=1"
        ),
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, page) in [("report", &html), ("nasty", &nasty_html)] {
        let path = dir.path().join(format!("{name}.html"));
        std::fs::write(&path, page).unwrap();
        let png = dir.path().join(format!("{name}.png"));
        let (size, console) = screenshot(&browser, &path, &png);
        assert!(
            console.is_empty(),
            "{name}: console messages:\n{}",
            console.join("\n")
        );
        // A blank 1280x2000 page screenshots to about 12 KB; the report's text, tables and
        // charts make it several times larger.
        eprintln!("{name}: screenshot {size} bytes");
        assert!(
            size > 40_000,
            "{name}: screenshot looks blank ({size} bytes)"
        );
    }
}

#[test]
fn regression_and_multiclass_targets() {
    let n = 500;
    let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 / 10.0).collect();
    let z: Vec<f64> = (0..n).map(|i| ((i * 104_729) % 997) as f64).collect();
    // y = 3x + small deterministic wiggle; `x` as strings with a few "n/a" to exercise parsing.
    let y: Vec<f64> = x.iter().zip(&z).map(|(a, b)| 3.0 * a + b / 100.0).collect();
    let xs: Vec<String> = x
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if i % 100 == 0 {
                "n/a".into()
            } else {
                v.to_string()
            }
        })
        .collect();
    let class: Vec<&str> = (0..n).map(|i| ["a", "b", "c"][i % 3]).collect();
    let schema = Schema::new(vec![
        Field::new("x", DataType::Utf8, false),
        Field::new("z", DataType::Float64, false),
        Field::new("class", DataType::Utf8, false),
        Field::new("y", DataType::Float64, false),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(xs)),
            Arc::new(Float64Array::from(z)),
            Arc::new(StringArray::from(class)),
            Arc::new(Float64Array::from(y)),
        ],
    )
    .unwrap();

    let report = profile(
        std::slice::from_ref(&batch),
        &ProfileOptions {
            target: Some("y".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let x = report.column("x").unwrap();
    assert_eq!(x.inferred_type, ColumnKind::Numeric);
    assert_eq!(x.mismatched, 5);
    assert_eq!(x.mismatched_examples, vec!["n/a".to_string()]);
    assert!(report.has_warning(WarningKind::Mismatched, Some("x")));
    let t = report.target.as_ref().unwrap();
    assert_eq!(t.problem_type, ProblemType::Regression);
    assert_eq!(report.feature_power[0].column, "x");
    let m = report.model.as_ref().unwrap();
    assert_eq!(m.metric, "r2");
    assert!(m.holdout_score > 0.95, "R2 {}", m.holdout_score);
    assert_eq!(m.impact[0].column, "x");

    let report = profile(
        &[batch],
        &ProfileOptions {
            target: Some("class".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let t = report.target.as_ref().unwrap();
    assert_eq!(t.problem_type, ProblemType::Multiclass);
    assert_eq!(t.classes.len(), 3);
    assert!(report.model.is_none());
    assert!(
        report
            .feature_power
            .iter()
            .all(|f| f.metric == "mutual_information_bits")
    );
}
