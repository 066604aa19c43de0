//! The real-time endpoint as a client meets it: the real binary on a port, a model trained by
//! `millrace train`, requests over HTTP. Responses must equal `millrace predict` on the same
//! records; bad input gets the right status and a message naming the record; a new version is
//! swapped in under load without a failed request.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, TELCO_CSV, millrace, read_csv};

/// Starts the endpoint serving `churn` on a free port (registry polled every 200 ms); returns
/// it and its base URL.
fn start(data: &Path, extra: &[&str]) -> (Running, String) {
    let mut args = vec![
        "--model",
        "churn",
        "--addr",
        "127.0.0.1:0",
        "--reload-interval",
        "200ms",
    ];
    args.extend_from_slice(extra);
    common::start_endpoint(data, &args)
}

fn train(data: &Path, csv: &Path) {
    common::train_churn(data, csv, &[]);
}

/// The log-odds of a probability.
fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// `?explain=all` and CustomAttributes `explain=K` on the endpoint, `--explain` on `millrace
/// predict`: the contributions name the raw input columns, add up with the base value to the
/// log-odds of the probability answered, and batch and endpoint agree.
async fn check_explanations(
    client: &reqwest::Client,
    url: &str,
    data: &Path,
    new_csv: &Path,
    objects: &[serde_json::Value],
    want: &[(String, f64)],
) {
    let some = &objects[..20];
    let r = client
        .post(format!("{url}/invocations?explain=all"))
        .header("content-type", "application/json")
        .body(serde_json::to_string(some).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let preds = v["predictions"].as_array().unwrap();
    let inputs: Vec<&String> = objects[0]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "customerID")
        .collect();
    for (p, (label, prob)) in preds.iter().zip(want) {
        assert_eq!(p["predicted_label"], label.as_str());
        let e = &p["explanation"];
        assert_eq!(e["space"], "log_odds");
        let contributions = e["contributions"].as_object().unwrap();
        let mut names: Vec<&String> = contributions.keys().collect();
        names.sort();
        let mut expected = inputs.clone();
        expected.sort();
        assert_eq!(
            names, expected,
            "every raw input column, nothing engineered"
        );
        let sum: f64 = contributions.values().map(|v| v.as_f64().unwrap()).sum();
        let (base, margin) = (
            e["base_value"].as_f64().unwrap(),
            e["margin"].as_f64().unwrap(),
        );
        assert!(
            (base + sum - margin).abs() < 1e-9,
            "{base} + {sum} != {margin}"
        );
        assert!(
            (margin - logit(*prob)).abs() < 1e-6,
            "margin {margin} vs logit({prob})"
        );
        // Largest first: a waterfall in order.
        let mags: Vec<f64> = contributions
            .values()
            .map(|v| v.as_f64().unwrap().abs())
            .collect();
        assert!(mags.windows(2).all(|w| w[0] >= w[1]));
    }
    // SageMaker's custom attributes, through InvokeEndpoint's route.
    let r = client
        .post(format!("{url}/endpoints/churn/invocations"))
        .header("content-type", "application/json")
        .header("X-Amzn-SageMaker-Custom-Attributes", "trace=1;explain=2")
        .body(objects[0].to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let c = v["predictions"][0]["explanation"]["contributions"]
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(c.len(), 2);
    let r = client
        .post(format!("{url}/invocations?explain=0"))
        .header("content-type", "application/json")
        .body(objects[0].to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("explain"));

    // Batch: the same explanations, top 3.
    let explained = new_csv.with_file_name("explained.csv");
    let st = millrace()
        .arg("--data-dir")
        .arg(data)
        .args(["predict", "--model", "churn", "--explain", "3", "--input"])
        .arg(new_csv)
        .arg("--output")
        .arg(&explained)
        .status()
        .unwrap();
    assert!(st.success());
    let (header, rows) = read_csv(&explained);
    assert_eq!(
        &header[header.len() - 4..],
        ["base_value", "contributions", "warnings", "error"]
    );
    for (row, p) in rows.iter().zip(preds) {
        let c: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row[row.len() - 3]).unwrap();
        assert_eq!(c.len(), 3);
        let all = p["explanation"]["contributions"].as_object().unwrap();
        for (k, v) in &c {
            assert!(
                (v.as_f64().unwrap() - all[k].as_f64().unwrap()).abs() < 1e-12,
                "{k}"
            );
        }
        let base: f64 = row[row.len() - 4].parse().unwrap();
        assert!((base - p["explanation"]["base_value"].as_f64().unwrap()).abs() < 1e-9);
    }

    // Batch warnings and refusals: a row whose tenure is not a number is scored with a warning;
    // a row with only its ID and one column gets no prediction, only an error naming fields.
    let first = objects[0].as_object().unwrap();
    let names: Vec<&String> = first.keys().collect();
    let odd = new_csv.with_file_name("odd.csv");
    let mut w = csv::Writer::from_path(&odd).unwrap();
    w.write_record(&names).unwrap();
    w.write_record(names.iter().map(|n| match n.as_str() {
        "tenure" => "abc".to_owned(),
        _ => first[n.as_str()].as_str().unwrap().to_owned(),
    }))
    .unwrap();
    w.write_record(names.iter().map(|n| match n.as_str() {
        "customerID" => "sparse-1",
        "gender" => "Female",
        _ => "",
    }))
    .unwrap();
    w.flush().unwrap();
    let scored = new_csv.with_file_name("odd-scored.csv");
    let st = millrace()
        .arg("--data-dir")
        .arg(data)
        .args(["predict", "--model", "churn", "--input"])
        .arg(&odd)
        .arg("--output")
        .arg(&scored)
        .status()
        .unwrap();
    assert!(st.success());
    let (header, rows) = read_csv(&scored);
    assert_eq!(
        header,
        [
            "customerID",
            "predicted_label",
            "probability",
            "warnings",
            "error"
        ]
    );
    assert!(
        !rows[0][1].is_empty() && rows[0][4].is_empty(),
        "{:?}",
        rows[0]
    );
    assert!(
        rows[0][3].contains("`tenure`: \\\"abc\\\" is not a number"),
        "{:?}",
        rows[0]
    );
    assert!(
        rows[1][1].is_empty() && rows[1][2].is_empty(),
        "{:?}",
        rows[1]
    );
    assert!(
        rows[1][4].contains("18 of the model's 19 inputs are missing"),
        "{:?}",
        rows[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_scores_like_predict_rejects_bad_input_and_swaps_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (header, rows) = read_csv(TELCO_CSV);
    let churn = header.iter().position(|h| h == "Churn").unwrap();
    let (train_rows, new_rows) = rows.split_at(rows.len() - 200);
    let train_csv = dir.path().join("train.csv");
    let mut w = csv::Writer::from_path(&train_csv).unwrap();
    w.write_record(&header).unwrap();
    for r in train_rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
    let strip = |r: &[String]| -> Vec<String> {
        r.iter()
            .enumerate()
            .filter(|(i, _)| *i != churn)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let cols = strip(&header);
    let new: Vec<Vec<String>> = new_rows.iter().map(|r| strip(r)).collect();
    let new_csv = dir.path().join("new.csv");
    let mut w = csv::Writer::from_path(&new_csv).unwrap();
    w.write_record(&cols).unwrap();
    for r in &new {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
    train(&data, &train_csv);

    // What batch prediction says.
    let scored = dir.path().join("scored.csv");
    let st = millrace()
        .arg("--data-dir")
        .arg(&data)
        .args(["predict", "--model", "churn", "--input"])
        .arg(&new_csv)
        .arg("--output")
        .arg(&scored)
        .status()
        .unwrap();
    assert!(st.success());
    let (_, batch) = read_csv(&scored);
    let want: Vec<(String, f64)> = batch
        .iter()
        .map(|r| (r[1].clone(), r[2].parse().unwrap()))
        .collect();

    let (_ep, url) = start(&data, &["--max-payload-mb", "1"]);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{url}/ping")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "endpoint never answered /ping");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The same records as raw JSON objects of strings (as on the stream), as JSON lines, and
    // as CSV rows without a header.
    let objects: Vec<serde_json::Value> = new
        .iter()
        .map(|r| {
            serde_json::Value::Object(
                cols.iter()
                    .cloned()
                    .zip(r.iter().map(|v| serde_json::Value::String(v.clone())))
                    .collect(),
            )
        })
        .collect();
    let jsonl: String = objects.iter().map(|o| format!("{o}\n")).collect();
    let csv_body: String = new
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| {
                    if v.contains(',') {
                        format!("\"{v}\"")
                    } else {
                        v.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
                + "\n"
        })
        .collect();
    for (ct, body) in [
        ("application/json", serde_json::to_string(&objects).unwrap()),
        ("application/jsonlines", jsonl),
        ("text/csv", csv_body.clone()),
    ] {
        let r = client
            .post(format!("{url}/invocations"))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{ct}");
        let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        let preds = v["predictions"].as_array().unwrap();
        assert_eq!(preds.len(), want.len(), "{ct}");
        for (p, (label, prob)) in preds.iter().zip(&want) {
            assert_eq!(p["predicted_label"], label.as_str(), "{ct}");
            assert_eq!(
                p["probability"].as_f64().unwrap().to_bits(),
                prob.to_bits(),
                "{ct}"
            );
            assert_eq!(p["labels"], serde_json::json!(["No", "Yes"]));
        }
    }
    // One record, and CSV out.
    let r = client
        .post(format!("{url}/models/churn/invocations"))
        .header("content-type", "application/json")
        .header("accept", "text/csv")
        .body(objects[0].to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        format!("{},{}\n", want[0].0, want[0].1)
    );

    check_explanations(&client, &url, &data, &new_csv, &objects, &want).await;

    // Bad input: status and a message naming what is wrong; the endpoint keeps serving.
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("application/json", "{oops".into(), 400, "not valid JSON"),
        (
            "application/json",
            format!("[{}, 7]", objects[0]),
            400,
            "record 1: expected a JSON object",
        ),
        (
            "application/json",
            r#"[{"tenure": {"x": 1}}]"#.into(),
            400,
            "record 0: field `tenure` is an object",
        ),
        (
            "text/csv",
            "1,2,3\n".into(),
            400,
            "record 0: 3 values, the model takes 20",
        ),
        ("application/json", "[]".into(), 400, "no records"),
        ("image/png", "x".into(), 415, "not supported"),
    ];
    for (ct, body, status, msg) in cases {
        let r = client
            .post(format!("{url}/invocations"))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{ct} {msg}");
        let text = r.text().await.unwrap();
        assert!(text.contains(msg), "{status}: {text}");
    }
    // Over the payload limit: 413 from the declared length, before the body is sent (the
    // client asks with `Expect: 100-continue` and uploads nothing).
    let addr = url.trim_start_matches("http://").to_owned();
    let head = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(
            b"POST /invocations HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: text/csv\r\n\
              expect: 100-continue\r\ncontent-length: 2000000\r\n\r\n",
        )
        .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    })
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("over the 1048576-byte limit"), "{head}");
    let r = client
        .post(format!("{url}/models/nope/invocations"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Hot swap under load: a client keeps scoring while v2 is trained and then v1 promoted.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (client, url, body, stop) = (
            client.clone(),
            url.clone(),
            objects[0].to_string(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let (mut ok, mut failed, mut versions) = (0, 0, std::collections::BTreeSet::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match client
                    .post(format!("{url}/invocations"))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => {
                        ok += 1;
                        if let Some(v) = r.headers().get("x-millrace-model") {
                            versions.insert(v.to_str().unwrap().to_owned());
                        }
                    }
                    _ => failed += 1,
                }
            }
            (ok, failed, versions)
        })
    };
    let (d, t) = (data.clone(), train_csv.clone());
    tokio::task::spawn_blocking(move || train(&d, &t))
        .await
        .unwrap();
    let wait_for = |want: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let r = client.get(format!("{url}/ping")).send().await.unwrap();
                if r.text().await.unwrap().contains(want) {
                    return;
                }
                assert!(Instant::now() < deadline, "never swapped to {want}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_for("churn:v2").await;
    let st = millrace()
        .arg("--data-dir")
        .arg(&data)
        .args(["models", "promote", "churn:v1"])
        .status()
        .unwrap();
    assert!(st.success());
    wait_for("churn:v1").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed, versions) = load.await.unwrap();
    assert_eq!(failed, 0, "{ok} ok, {failed} failed");
    assert!(ok > 10, "{ok}");
    assert!(
        versions.contains("churn:v1") && versions.contains("churn:v2"),
        "{versions:?}"
    );

    let m = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("millrace_endpoint_requests_total{model=\"churn\",status=\"4xx\"}"),
        "{m}"
    );
    assert!(
        m.contains("millrace_endpoint_model_version{model=\"churn\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("millrace_endpoint_latency_seconds_bucket"),
        "{m}"
    );
}

#[test]
fn up_serves_the_endpoint_beside_the_stream_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let csv = dir.path().join("gen.csv");
    let st = millrace()
        .args(["generate", "churn", "--rows", "600", "--seed", "4", "--out"])
        .arg(&csv)
        .status()
        .unwrap();
    assert!(st.success());
    train(&data, &csv);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = millrace()
        .arg("--data-dir")
        .arg(&data)
        .args([
            "up",
            "--kinesis-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .args(["--endpoint-model", "churn", "--endpoint-addr"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("endpoint=") {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "up exited: {seen}");
        seen.push_str(&line);
    }
    assert!(seen.contains("serving churn:v1"), "{seen}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/invocations"))
            .header("content-type", "application/json")
            .body(
                r#"{"tenure": "3", "Contract": "Month-to-month", "MonthlyCharges": "80.1",
                    "TotalCharges": "240.3", "InternetService": "Fiber optic", "gender": "Female",
                    "SeniorCitizen": "0", "Partner": "No", "Dependents": "No",
                    "PhoneService": "Yes", "PaperlessBilling": "Yes",
                    "PaymentMethod": "Electronic check"}"#,
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(body.contains("\"predicted_label\""), "{body}");
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("stopped cleanly"), "{err}");
}
