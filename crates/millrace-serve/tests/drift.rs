//! Drift monitoring on the Telco churn data: a model trained on it carries a baseline of its
//! training part; the held-out rows, scored as raw records, leave the drift flag down, and a
//! shifted copy of them (higher charges, longer tenure, another contract mix) raises it with
//! the shifted features on top. The endpoint shows the same on /metrics, saves the report, and
//! a newly swapped-in version starts a fresh window.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use millrace_automl::train::{self, Options, Trained};
use millrace_serve::endpoint::{Endpoint, EndpointOptions, Loaded};
use millrace_serve::input::Record;
use millrace_serve::monitor::{DriftOptions, DriftReport, DriftWindow};
use millrace_serve::registry::Registry;
use millrace_wrangle::{Column, Frame};
use serde_json::Value;

fn telco() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/telco-customer-churn.csv")
}

/// Every value as text (blank = missing), as the CSV and the stream carry them.
fn read_csv(path: &Path) -> Frame {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let mut cols: Vec<Vec<Option<String>>> = vec![Vec::new(); header.len()];
    for rec in r.records() {
        for (c, v) in cols.iter_mut().zip(rec.unwrap().iter()) {
            c.push((!v.trim().is_empty()).then(|| v.to_owned()));
        }
    }
    let mut f = Frame::new(cols[0].len());
    for (n, c) in header.into_iter().zip(cols) {
        f.set(n.as_str().into(), Column::Str(c));
    }
    f
}

/// The churn model, trained once per test binary.
fn trained() -> &'static Trained {
    static T: OnceLock<Trained> = OnceLock::new();
    T.get_or_init(|| {
        let opts = Options {
            folds: 3,
            ..Options::new("Churn")
        };
        train::train(&read_csv(&telco()), &opts, &|_| {}).expect("training on Telco")
    })
}

/// The held-out rows as raw records (strings, no target), as a client would send them.
fn held_out() -> Vec<Record> {
    let t = trained();
    (0..t.test_frame.rows())
        .map(|i| {
            let mut r = t.test_frame.record(i);
            r.shift_remove("Churn");
            r
        })
        .collect()
}

/// A shifted copy: charges ×1.6 + 20, tenure + 24 months, and most customers on two-year
/// contracts. Values stay text, as on the stream.
fn shifted(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            let num = |v: &Value| v.as_str().and_then(|s| s.trim().parse::<f64>().ok());
            if let Some(x) = r.get("MonthlyCharges").and_then(num) {
                r["MonthlyCharges"] = Value::from(format!("{:.2}", x * 1.6 + 20.0));
            }
            if let Some(x) = r.get("tenure").and_then(num) {
                r["tenure"] = Value::from(format!("{}", x + 24.0));
            }
            if i % 5 != 0 {
                r["Contract"] = Value::from("Two year");
            }
            r
        })
        .collect()
}

fn observed(records: &[Record]) -> DriftReport {
    let t = trained();
    let loaded = Loaded::new("churn", 1, t.model.clone());
    for chunk in records.chunks(7) {
        loaded.score_observed(chunk, None).unwrap();
    }
    loaded.drift.as_ref().expect("a baseline").report()
}

#[test]
fn the_baseline_describes_the_training_part_without_target_or_ids() {
    let t = trained();
    let b = t.model.baseline.as_ref().expect("train saves a baseline");
    assert_eq!(b.rows, t.model.lineage.train_rows);
    let names: Vec<&str> = b.features.iter().map(|f| f.name.as_str()).collect();
    assert!(
        !names.contains(&"Churn") && !names.contains(&"customerID"),
        "{names:?}"
    );
    for want in ["tenure", "MonthlyCharges", "TotalCharges", "Contract"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    // Numbers held as text (with blanks, as TotalCharges has) are binned as numbers.
    for f in &b.features {
        let numeric = matches!(f.bins, millrace_automl::baseline::Bins::Numeric { .. });
        let expect = ["tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"]
            .contains(&f.name.as_str());
        assert_eq!(numeric, expect, "{}", f.name);
        assert!((f.expected.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    // It survives the saved artifact.
    let back = millrace_automl::model::ModelArtifact::from_json(&t.model.to_json(), "m").unwrap();
    assert_eq!(back.baseline, t.model.baseline);
}

#[test]
fn held_out_rows_do_not_drift_and_a_shifted_copy_does() {
    let rows = held_out();
    assert!(rows.len() > 1000, "{} held-out rows", rows.len());
    let calm = observed(&rows);
    assert_eq!(calm.window_records, 1000);
    assert!(!calm.drifting, "{}: {:?}", calm.summary(), calm.features);
    assert!(calm.max().unwrap().psi < 0.1, "{:?}", calm.features);
    assert!(
        calm.summary().starts_with("drifting: no"),
        "{}",
        calm.summary()
    );

    let moved = observed(&shifted(&rows));
    assert!(moved.drifting, "{}", moved.summary());
    let top: Vec<&str> = moved.features[..3]
        .iter()
        .map(|f| f.feature.as_str())
        .collect();
    for f in ["MonthlyCharges", "tenure", "Contract"] {
        assert!(
            top.contains(&f),
            "{f} not among the top three: {:?}",
            moved.features
        );
    }
    for f in &moved.features[..3] {
        assert!(f.psi >= moved.threshold, "{f:?}");
    }
    // Untouched features stay put.
    let gender = moved
        .features
        .iter()
        .find(|f| f.feature == "gender")
        .unwrap();
    assert!(gender.psi < 0.1, "{gender:?}");

    // The same records as a frame (as `millrace monitor --data` reads a file) judge alike.
    let shifted_rows = shifted(&rows);
    let mut frame = Frame::new(shifted_rows.len());
    for name in trained().test_frame.names() {
        if &**name == "Churn" {
            continue;
        }
        frame.set(
            name.clone(),
            Column::Str(
                shifted_rows
                    .iter()
                    .map(|r| r.get(&**name).and_then(Value::as_str).map(str::to_owned))
                    .collect(),
            ),
        );
    }
    let w = DriftWindow::for_model("churn", 1, &trained().model, DriftOptions::default()).unwrap();
    w.observe_frame(&frame);
    let mut from_frame = w.report();
    from_frame.at_ms = moved.at_ms;
    assert_eq!(from_frame.features, moved.features);
    assert_eq!(from_frame.drifting, moved.drifting);
}

#[test]
fn a_stricter_threshold_or_too_few_records_changes_the_verdict() {
    let rows = held_out();
    let t = trained();
    // A threshold below the held-out rows' sampling noise flags them.
    let strict = DriftOptions {
        threshold: 0.0001,
        ..DriftOptions::default()
    };
    let w = DriftWindow::for_model("churn", 1, &t.model, strict).unwrap();
    w.observe(&rows);
    assert!(w.report().drifting);
    // A shift seen on too few records is not yet a verdict.
    let w = DriftWindow::for_model("churn", 1, &t.model, DriftOptions::default()).unwrap();
    w.observe(&shifted(&rows)[..50]);
    let r = w.report();
    assert!(
        !r.drifting && r.max().unwrap().psi >= r.threshold,
        "{}",
        r.summary()
    );
    // A model saved before baselines existed has no window.
    let mut old = t.model.clone();
    old.baseline = None;
    assert!(DriftWindow::for_model("churn", 1, &old, DriftOptions::default()).is_none());
    let json = old.to_json();
    assert!(!json.contains("\"baseline\""));
    assert!(
        millrace_automl::model::ModelArtifact::from_json(&json, "old")
            .unwrap()
            .baseline
            .is_none()
    );
}

fn save_version(reg: &Registry, v: u32) {
    let dir = reg.root().join("churn").join(format!("v{v}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut model = trained().model.clone();
    model.name = "churn".into();
    model.version = v;
    std::fs::write(dir.join("model.json"), model.to_json()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_reports_drift_on_metrics_saves_it_and_restarts_on_a_swap() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::new(dir.path());
    save_version(&reg, 1);
    let ep = Arc::new(
        Endpoint::load_with(
            reg.clone(),
            &["churn".to_owned()],
            EndpointOptions {
                drift_save_every: Duration::from_millis(50),
                ..EndpointOptions::default()
            },
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(Arc::clone(&ep).serve(listener, 1 << 20, std::future::pending()));
    let client = reqwest::Client::new();
    let metrics = || async {
        client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };

    // Nothing scored yet: the window is empty and nothing is saved.
    let text = metrics().await;
    assert!(
        text.contains("millrace_model_drifting{model=\"churn\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("millrace_drift_window_records{model=\"churn\"} 0"),
        "{text}"
    );
    assert_eq!(ep.save_drift_reports(), 0);
    assert!(DriftReport::load(dir.path(), "churn").unwrap().is_none());

    let rows = shifted(&held_out());
    // One record per request, as a real-time client sends them, and one big batch.
    for r in &rows[..100] {
        let resp = client
            .post(format!("{url}/invocations"))
            .header("content-type", "application/json")
            .body(serde_json::to_string(r).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let resp = client
        .post(format!("{url}/invocations"))
        .header("content-type", "application/json")
        .body(serde_json::to_string(&rows[100..400]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A rejected body is not observed.
    let resp = client
        .post(format!("{url}/invocations"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    let text = metrics().await;
    assert!(
        text.contains("millrace_model_drifting{model=\"churn\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("millrace_drift_window_records{model=\"churn\"} 400"),
        "{text}"
    );
    assert!(
        text.contains("millrace_feature_psi{model=\"churn\",feature=\"MonthlyCharges\"}"),
        "{text}"
    );

    // The reloader's tick saves the report.
    let reloader = ep.spawn_reloader(Duration::from_millis(50));
    let mut saved = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        saved = DriftReport::load(dir.path(), "churn").unwrap();
        if saved.is_some() {
            break;
        }
    }
    let saved = saved.expect("the endpoint saved its drift report");
    assert!(saved.drifting && saved.window_records == 400, "{saved:?}");
    assert_eq!(saved.version, 1);

    // A new version swaps in with an empty window.
    save_version(&reg, 2);
    let mut swapped = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if ep.serving() == vec![("churn".to_owned(), 2)] {
            swapped = true;
            break;
        }
    }
    assert!(swapped);
    let text = metrics().await;
    assert!(
        text.contains("millrace_drift_window_records{model=\"churn\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("millrace_model_drifting{model=\"churn\"} 0"),
        "{text}"
    );
    let r = ep.drift_reports();
    assert_eq!((r[0].version, r[0].window_records), (2, 0));
    reloader.abort();
    server.abort();
}
