//! Infinite and NaN values in numeric fields are missing values (documented in the README):
//! `predict` and the endpoint give a finite probability for every record, never NaN or null.
//! A request without a Content-Type is refused with 415 instead of being guessed as JSON.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{TELCO_CSV, millrace, read_csv, write_csv};

/// What producers send for "not a finite number" in text fields.
const NON_FINITE: [&str; 6] = ["inf", "-inf", "Infinity", "-Infinity", "NaN", "1e999"];
const NUMERIC: [&str; 3] = ["tenure", "MonthlyCharges", "TotalCharges"];

fn train(data: &Path) {
    common::train_churn(data, Path::new(TELCO_CSV), &["--folds", "2"]);
}

/// Telco rows without the target whose numeric fields take every non-finite spelling, alone
/// and all at once.
fn rows_with_non_finite() -> (Vec<String>, Vec<Vec<String>>) {
    let (header, rows) = read_csv(TELCO_CSV);
    let churn = header.iter().position(|h| h == "Churn").unwrap();
    let keep = |r: &Vec<String>| -> Vec<String> {
        r.iter()
            .enumerate()
            .filter(|(i, _)| *i != churn)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let header = keep(&header);
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut out = Vec::new();
    for (k, spelling) in NON_FINITE.iter().enumerate() {
        for (j, field) in NUMERIC.iter().enumerate() {
            let mut r = keep(&rows[k * 3 + j]);
            r[at(field)] = spelling.to_string();
            out.push(r);
        }
        let mut all = keep(&rows[100 + k]);
        for field in NUMERIC {
            all[at(field)] = spelling.to_string();
        }
        out.push(all);
    }
    (header, out)
}

fn assert_probability(p: f64, what: &str) {
    assert!(
        p.is_finite() && (0.0..=1.0).contains(&p),
        "{what}: probability {p}"
    );
}

#[test]
fn predict_gives_finite_probabilities_for_infinite_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    train(&data);
    let (header, rows) = rows_with_non_finite();
    let input = dir.path().join("inf.csv");
    write_csv(&input, &header, &rows);
    let output = dir.path().join("scored.csv");
    let out = millrace()
        .arg("--data-dir")
        .arg(&data)
        .args(["predict", "--model", "churn", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (scored_header, scored) = read_csv(&output);
    let prob = scored_header
        .iter()
        .position(|h| h == "probability")
        .unwrap();
    assert_eq!(scored.len(), rows.len());
    for (i, r) in scored.iter().enumerate() {
        let p: f64 = r[prob].parse().unwrap_or(f64::NAN);
        assert_probability(p, &format!("row {i} ({:?})", r[prob]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_gives_finite_probabilities_and_wants_a_content_type() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    train(&data);
    let (_ep, url) = common::start_endpoint(&data, &["--model", "churn", "--addr", "127.0.0.1:0"]);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(client.get(format!("{url}/ping")).send().await, Ok(r) if r.status() == 200) {
        assert!(Instant::now() < deadline, "endpoint never answered /ping");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (header, rows) = rows_with_non_finite();
    let objects: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::Value::Object(
                header
                    .iter()
                    .cloned()
                    .zip(r.iter().map(|v| v.clone().into()))
                    .collect(),
            )
        })
        .collect();
    let body = serde_json::to_string(&objects).unwrap();
    let r = client
        .post(format!("{url}/invocations"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let preds = v["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), rows.len());
    for (i, p) in preds.iter().enumerate() {
        let prob = p["probability"].as_f64().unwrap_or(f64::NAN);
        assert_probability(prob, &format!("record {i}: {p}"));
    }

    // No Content-Type: 415 with a message naming what to send, not a guess.
    let r = client
        .post(format!("{url}/invocations"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let text = r.text().await.unwrap();
    assert!(text.contains("Content-Type"), "{text}");
}
