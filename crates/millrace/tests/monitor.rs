//! `millrace monitor` as a user runs it: a model trained by `millrace train` on the Telco data,
//! then a file of unshifted held-out rows (not drifting, exit 0) and a shifted copy (drifting,
//! exit 3 with --fail-on-drift); and a running endpoint fed shifted records, whose /metrics
//! raise the flag and whose saved report `millrace monitor NAME` prints.

use crate::common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{TELCO_CSV, millrace, read_csv, start_endpoint, write_csv};

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Charges ×1.6 + 20, tenure + 24 months, four in five customers on two-year contracts.
fn shift(header: &[String], rows: &[Vec<String>]) -> Vec<Vec<String>> {
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let (charges, tenure, contract) = (col("MonthlyCharges"), col("tenure"), col("Contract"));
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            if let Ok(x) = r[charges].trim().parse::<f64>() {
                r[charges] = format!("{:.2}", x * 1.6 + 20.0);
            }
            if let Ok(x) = r[tenure].trim().parse::<f64>() {
                r[tenure] = format!("{}", x + 24.0);
            }
            if i % 5 != 0 {
                r[contract] = "Two year".into();
            }
            r
        })
        .collect()
}

fn monitor(data: &Path, args: &[&str]) -> Output {
    millrace()
        .arg("--data-dir")
        .arg(data)
        .arg("monitor")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_flags_a_shifted_copy_and_not_the_data_itself() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (header, rows) = read_csv(TELCO_CSV);
    let (train_rows, new_rows) = rows.split_at(rows.len() - 1500);
    let train_csv = dir.path().join("train.csv");
    write_csv(&train_csv, &header, train_rows);
    let out = millrace()
        .arg("--data-dir")
        .arg(&data)
        .args([
            "train", "--target", "Churn", "--name", "churn", "--folds", "3", "--data",
        ])
        .arg(&train_csv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out).1);

    // Nothing has been scored yet: a clear error, not an empty report.
    let out = monitor(&data, &["churn"]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no drift report for churn yet"), "{err}");
    assert!(err.contains("--data"), "{err}");

    // New rows like the training data: not drifting.
    let calm_csv = dir.path().join("unshifted.csv");
    write_csv(&calm_csv, &header, new_rows);
    let calm = calm_csv.to_str().unwrap();
    let out = monitor(&data, &["churn", "--data", calm, "--fail-on-drift"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("drifting: no (max PSI"), "{stdout}");
    assert!(stdout.contains("1000 records"), "{stdout}");
    assert!(!stdout.contains("DRIFT "), "{stdout}");

    // A shifted copy: drifting, exit 3, the shifted features flagged.
    let moved_csv = dir.path().join("shifted.csv");
    let moved_rows = shift(&header, new_rows);
    write_csv(&moved_csv, &header, &moved_rows);
    let moved = moved_csv.to_str().unwrap();
    let out = monitor(&data, &["churn", "--data", moved, "--fail-on-drift"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("drifting: yes (max PSI"), "{stdout}");
    for f in ["MonthlyCharges", "tenure", "Contract"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(f))
            .unwrap_or_else(|| panic!("no {f} row in {stdout}"));
        assert!(line.contains("DRIFT"), "{line}");
    }
    let gender = stdout.lines().find(|l| l.starts_with("gender")).unwrap();
    assert!(!gender.contains("DRIFT"), "{gender}");
    // Without --fail-on-drift the verdict is printed and the run succeeds; --json for tools.
    let out = monitor(&data, &["churn:v1", "--data", moved, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["drifting"], true);
    assert_eq!(report["window_records"], 1000);
    // A looser threshold than any shift here: not drifting.
    let out = monitor(
        &data,
        &[
            "churn",
            "--data",
            moved,
            "--threshold",
            "50",
            "--fail-on-drift",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).0);

    // A model saved before baselines existed.
    let v1 = data.join("lake/models/churn/v1");
    let v2 = data.join("lake/models/churn/v2");
    std::fs::create_dir_all(&v2).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v1.join("model.json")).unwrap()).unwrap();
    m.as_object_mut().unwrap().remove("baseline");
    m["version"] = 2.into();
    std::fs::write(v2.join("model.json"), m.to_string()).unwrap();
    let out = monitor(&data, &["churn:v2", "--data", calm]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("model churn v2 has no baseline") && err.contains("retrain it"),
        "{err}"
    );
    std::fs::remove_dir_all(&v2).unwrap();

    // A running endpoint fed shifted records.
    let (_running, url) = start_endpoint(
        &data,
        &[
            "--model",
            "churn",
            "--addr",
            "127.0.0.1:0",
            "--drift-save-interval",
            "100ms",
        ],
    );
    let client = reqwest::Client::new();
    let churn = header.iter().position(|h| h == "Churn").unwrap();
    let records: Vec<serde_json::Value> = moved_rows[..400]
        .iter()
        .map(|r| {
            let m: serde_json::Map<String, serde_json::Value> = header
                .iter()
                .zip(r)
                .enumerate()
                .filter(|(i, _)| *i != churn)
                .map(|(_, (h, v))| (h.clone(), serde_json::Value::from(v.as_str())))
                .collect();
            serde_json::Value::Object(m)
        })
        .collect();
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
    let before = metrics().await;
    assert!(
        before.contains("millrace_model_drifting{model=\"churn\"} 0"),
        "{before}"
    );
    for chunk in records.chunks(100) {
        let resp = client
            .post(format!("{url}/invocations"))
            .header("content-type", "application/json")
            .body(serde_json::to_string(chunk).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let after = metrics().await;
    assert!(
        after.contains("millrace_model_drifting{model=\"churn\"} 1"),
        "{after}"
    );
    assert!(
        after.contains("millrace_drift_window_records{model=\"churn\"} 400"),
        "{after}"
    );
    assert!(
        after.contains("millrace_feature_psi{model=\"churn\",feature=\"MonthlyCharges\"}"),
        "{after}"
    );

    // The endpoint saves its report within moments; `monitor` prints it.
    let started = Instant::now();
    let out = loop {
        let out = monitor(&data, &["churn", "--fail-on-drift"]);
        if out.status.code() != Some(1) || started.elapsed() > Duration::from_secs(20) {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("drifting: yes (max PSI") && stdout.contains("400 records"),
        "{stdout}"
    );
    assert!(stderr.contains("report saved at"), "{stderr}");
}
