//! The command-line contract, run as a user would: the real binary, real files.

use std::process::Command;

fn millrace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_millrace"))
}

#[test]
fn every_subcommand_explains_itself() {
    for args in [
        vec!["--help"],
        vec!["up", "--help"],
        vec!["produce", "--help"],
        vec!["generate", "churn", "--help"],
        vec!["bench", "ingest", "--help"],
        vec!["demo", "--help"],
        vec!["query", "--help"],
        vec!["prep", "--help"],
        vec!["generate", "churn-lake", "--help"],
        vec!["wrangle", "--help"],
        vec!["profile", "--help"],
        vec!["bench", "wrangle", "--help"],
        vec!["train", "--help"],
        vec!["predict", "--help"],
        vec!["endpoint", "--help"],
        vec!["models", "list", "--help"],
        vec!["models", "promote", "--help"],
        vec!["score", "--help"],
        vec!["status", "--help"],
        vec!["monitor", "--help"],
        vec!["bench", "score", "--help"],
    ] {
        let out = millrace().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Usage:"), "{args:?}: {text}");
    }
}

#[test]
fn generate_churn_writes_the_telco_columns_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    let b = dir.path().join("sub/b.csv");
    for path in [&a, &b] {
        let st = millrace()
            .args(["generate", "churn", "--rows", "300", "--seed", "9", "--out"])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let text = std::fs::read_to_string(&a).unwrap();
    assert_eq!(text, std::fs::read_to_string(&b).unwrap());
    let real = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/telco-customer-churn.csv"
    ))
    .unwrap();
    assert_eq!(text.lines().next(), real.lines().next(), "same header");
    assert_eq!(text.lines().count(), 301);
}

#[test]
fn demo_streams_generated_records_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = millrace()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--rows", "1500"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1500 records acknowledged"), "{stdout}");
    assert!(stdout.contains("1500 records read back"), "{stdout}");
    assert!(stdout.contains("exactly once"), "{stdout}");
    assert!(stdout.contains("1500 records into"), "{stdout}");
    assert!(stdout.contains("→ 1500 customers"), "{stdout}");
    assert!(stdout.contains("Month-to-month"), "{stdout}");
    assert!(stdout.contains("[6/10] wrangle"), "{stdout}");
    assert!(stdout.contains("[7/10] automl"), "{stdout}");
    assert!(
        stdout.contains("[8/10] registry churn:v1 promoted"),
        "{stdout}"
    );
    assert!(stdout.contains("[9/10] endpoint"), "{stdout}");
    assert!(
        stdout.contains("1000 single-record JSON requests"),
        "{stdout}"
    );
    assert!(stdout.contains("[10/10] live"), "{stdout}");
    assert!(stdout.contains("300 predictions"), "{stdout}");
    assert!(stdout.contains("         live   "), "{stdout}");
    assert!(
        stdout.contains("one raw record → churn probability"),
        "{stdout}"
    );
    assert!(stdout.contains("one raw record"), "{stdout}");
    assert!(dir.path().join("lake/features/churn/recipe.json").is_file());
    // A second run on the same data dir checks only its own records.
    let again = millrace()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--rows", "200"])
        .output()
        .unwrap();
    assert!(again.status.success());
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("200 records read back"));
    // The same seed sends the first 200 customers again: updates, not new customers.
    assert!(stdout.contains("→ 1500 customers"), "{stdout}");
}

/// The figure after `label ` in `text` (e.g. "accuracy 0.7906,").
fn figure(text: &str, label: &str) -> f64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {text}"))
        + label.len();
    text[at..]
        .split(|c: char| c != '.' && !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn demo_on_the_shared_csv_prints_figures_that_predict_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let out = millrace()
        .arg("--data-dir")
        .arg(dir.path())
        .arg("demo")
        .arg("--csv")
        .arg(shared("telco-customer-churn.csv"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("[10/10] live"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("test split: accuracy"))
        .unwrap_or_else(|| panic!("no test split line in {stdout}"));
    let (acc, f1, auc) = (
        figure(line, "accuracy "),
        figure(line, "F1 "),
        figure(line, "AUC "),
    );
    // Score the held-out rows outside the demo, with the saved model.
    let holdout = dir.path().join("lake/models/churn/v1/holdout.csv");
    let scored = dir.path().join("scored.csv");
    let st = millrace()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["predict", "--model", "churn", "--input"])
        .arg(&holdout)
        .arg("--output")
        .arg(&scored)
        .status()
        .unwrap();
    assert!(st.success());
    let truth: Vec<bool> = csv::Reader::from_path(&holdout)
        .unwrap()
        .deserialize::<std::collections::HashMap<String, String>>()
        .map(|r| r.unwrap()["Churn"] == "Yes")
        .collect();
    let preds: Vec<(bool, f64)> = csv::Reader::from_path(&scored)
        .unwrap()
        .deserialize::<std::collections::HashMap<String, String>>()
        .map(|r| {
            let r = r.unwrap();
            (
                r["predicted_label"] == "Yes",
                r["probability"].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(truth.len(), preds.len());
    assert!(truth.len() > 1000, "{} held-out rows", truth.len());
    let (mut tp, mut fp, mut fn_, mut right) = (0.0, 0.0, 0.0, 0.0);
    for (y, (p, _)) in truth.iter().zip(&preds) {
        match (y, p) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fn_ += 1.0,
            _ => {}
        }
        if y == p {
            right += 1.0;
        }
    }
    let my_acc = right / truth.len() as f64;
    let my_f1 = 2.0 * tp / (2.0 * tp + fp + fn_);
    // AUC: the chance a positive outranks a negative (ties count half).
    let (mut pairs, mut wins) = (0.0, 0.0);
    for (y1, (_, p1)) in truth.iter().zip(&preds) {
        if !y1 {
            continue;
        }
        for (y0, (_, p0)) in truth.iter().zip(&preds) {
            if *y0 {
                continue;
            }
            pairs += 1.0;
            wins += if p1 > p0 {
                1.0
            } else if p1 == p0 {
                0.5
            } else {
                0.0
            };
        }
    }
    let my_auc = wins / pairs;
    for (name, printed, mine) in [
        ("accuracy", acc, my_acc),
        ("F1", f1, my_f1),
        ("AUC", auc, my_auc),
    ] {
        assert!(
            (printed - mine).abs() < 6e-5,
            "{name}: the demo printed {printed}, predict gives {mine}"
        );
    }
}

fn shared(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

#[test]
fn query_reads_the_firehose_object_and_the_csv() {
    let out = millrace()
        .arg("query")
        .arg("--table")
        .arg(format!(
            "fh={}:concat",
            shared("firehose-s3-object-example.json").display()
        ))
        .arg("--table")
        .arg(format!(
            "c={}",
            shared("telco-customer-churn.csv").display()
        ))
        .args([
            "--format",
            "csv",
            "SELECT (SELECT count(*) FROM fh) AS fh_rows, count(*) AS csv_rows, \
             sum(tenure) AS tenure FROM c",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "fh_rows,csv_rows,tenure\n144,7043,227990\n");
}

#[test]
fn query_errors_name_the_table_or_the_statement() {
    let out = millrace()
        .args(["query", "--table", "t=/no/such/dir", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--table t=/no/such/dir"), "{err}");
    let out = millrace()
        .arg("query")
        .arg("--table")
        .arg(format!(
            "c={}",
            shared("telco-customer-churn.csv").display()
        ))
        .args(["SELECT 1; SELECT nope FROM c"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("statement 2") && err.contains("nope"), "{err}");
    let out = millrace()
        .args(["query", "--table", "t=x:xml", "SELECT 1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown format"));
}

#[test]
fn query_latest_by_keeps_each_keys_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::write(
        raw.join("a.json"),
        "{\"id\":\"1\",\"v\":1}\n{\"id\":\"2\",\"v\":2}\n{\"id\":\" 1\",\"v\":3}\n",
    )
    .unwrap();
    std::fs::write(raw.join("b.json"), "{\"id\":\"2\",\"v\":4}\n{\"v\":5}\n").unwrap();
    let table = format!("r={}", raw.display());
    let query = |extra: &[&str]| {
        millrace()
            .args(["query", "--table", &table, "--format", "csv"])
            .args(extra)
            .arg("SELECT TRIM(id) AS id, v FROM r ORDER BY v")
            .output()
            .unwrap()
    };
    let out = query(&["--latest-by", "r=id"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "id,v\n1,3\n2,4\n,5\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = query(&[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
    for (spec, says) in [("s=id", "no table"), ("r=ident", "\"ident\"")] {
        let out = query(&["--latest-by", spec]);
        assert!(!out.status.success(), "{spec}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("latest") && err.contains(says),
            "{spec}: {err}"
        );
    }
}

#[test]
fn prep_runs_the_shipped_churn_job() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("lake/raw/churn/2021/01/01/00");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::copy(shared("firehose-s3-object-example.json"), raw.join("obj")).unwrap();
    let job =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/jobs/churn.toml");
    let out = millrace()
        .arg("--data-dir")
        .arg(dir.path())
        .arg("prep")
        .arg("--job")
        .arg(&job)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("output 144 rows"), "{stdout}");
    assert!(
        dir.path()
            .join("lake/curated/churn/_manifest.json")
            .is_file()
    );
    let out = millrace()
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "query",
            "--table",
            "c=curated/churn",
            "--format",
            "json",
            "SELECT count(*) AS n, arrow_typeof(tenure) AS t FROM c GROUP BY 2",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"n\":144,\"t\":\"Int32\"}\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A config's deliveries are tables: the raw prefix of `churn-raw` is raw/churn/.
    let config = dir.path().join("millrace.toml");
    std::fs::write(
        &config,
        "[[delivery]]\nname = \"churn-raw\"\nstream = \"churn\"\nlake = \"lake\"\nformat = \"concat\"\n",
    )
    .unwrap();
    let out = millrace()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["query", "-c"])
        .arg(&config)
        .args(["--format", "csv", "SELECT count(*) AS n FROM churn_raw"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "n\n144\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_config_names_the_key_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.toml");
    std::fs::write(&cfg, "[storage]\nfsync = \"sometimes\"\n").unwrap();
    let out = millrace()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["up", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("storage.fsync"), "{err}");
}

#[test]
fn deliver_refuses_bad_options_with_the_flag_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = millrace()
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["deliver", "--stream", "s"]);
    assert!(e.contains("--lake"), "{e}");
    let e = run(&[
        "deliver",
        "--stream",
        "s",
        "--lake",
        "l",
        "--format",
        "parquet",
        "--compression",
        "gzip",
    ]);
    assert!(e.contains("--compression") && e.contains("Parquet"), "{e}");
    let e = run(&[
        "deliver",
        "--stream",
        "s",
        "--lake",
        "l",
        "--buffer-interval",
        "901",
    ]);
    assert!(e.contains("--buffer-interval = 901"), "{e}");
    let e = run(&[
        "deliver",
        "--stream",
        "s",
        "--lake",
        "l",
        "--partition",
        "contract",
    ]);
    assert!(e.contains("NAME=.field"), "{e}");
    let e = run(&["deliver", "--stream", "s", "--lake", "gs://bucket"]);
    assert!(e.contains("gs://bucket"), "{e}");
}

#[test]
fn wrangle_fits_the_churn_recipe_on_the_telco_csv_and_reapplies_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/recipes/churn.toml"
    );
    let csv = shared("telco-customer-churn.csv");
    let out = dir.path().join("features.csv");
    let state = dir.path().join("state.json");
    let run = millrace()
        .args(["wrangle", "--recipe", recipe, "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .arg("--save-state")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // 7,043 customers less the 11 with a blank TotalCharges (they are the tenure-0 ones).
    assert_eq!(rows.len(), 7032);
    // SeniorCitizen, 41 one-hot columns, 3 scaled numbers, the target.
    assert_eq!(header.len(), 46, "{header:?}");
    assert!(header.contains(&"Contract_Month-to-month") && header.contains(&"Churn"));
    assert!(!header.contains(&"customerID"));
    let t = header.iter().position(|h| *h == "tenure").unwrap();
    let mean: f64 = rows
        .iter()
        .map(|r| r[t].parse::<f64>().unwrap())
        .sum::<f64>()
        / 7032.0;
    assert!(mean.abs() < 1e-9, "scaled tenure has mean {mean}");
    // The fitted state applied to the same data gives the same file.
    let again = dir.path().join("again.csv");
    let run = millrace()
        .arg("wrangle")
        .arg("--recipe")
        .arg(&state)
        .arg("--data")
        .arg(&csv)
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(std::fs::read_to_string(&again).unwrap(), text);
    // --fit-only writes only the state.
    let only = dir.path().join("only.json");
    let run = millrace()
        .args(["wrangle", "--recipe", recipe, "--data"])
        .arg(&csv)
        .arg("--fit-only")
        .arg(&only)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let a: serde_json::Value = serde_json::from_slice(&std::fs::read(&only).unwrap()).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn wrangle_rejects_a_bad_recipe_naming_step_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("bad.toml");
    std::fs::write(
        &recipe,
        "[[step]]\nop = \"drop\"\ncolumns = [\"customerID\"]\n[[step]]\nop = \"bin\"\ncolumns = [\"tenure\"]\nbins = \"ten\"\n",
    )
    .unwrap();
    let run = millrace()
        .arg("wrangle")
        .arg("--recipe")
        .arg(&recipe)
        .arg("--data")
        .arg(shared("telco-customer-churn.csv"))
        .arg("--out")
        .arg(dir.path().join("x.csv"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("step 2 (bin): key `bins` must be an integer"),
        "{err}"
    );
    assert!(!dir.path().join("x.csv").exists());
}

#[test]
fn profile_writes_the_report_for_the_telco_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let run = millrace()
        .args(["profile", "--data"])
        .arg(shared("telco-customer-churn.csv"))
        .args(["--target", "Churn", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("profiled 7043 rows × 21 columns"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["summary"]["rows"], 7043);
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w["column"] == "customerID" && w["kind"] == "id_like"),
        "{warnings:?}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("customerID"));
}

/// Reads a CSV as (header, rows of fields).
fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

#[test]
fn train_and_predict_on_the_telco_csv() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let csv_in = shared("telco-customer-churn.csv");
    // Hold out the last 500 rows as "new" data, without the target.
    let (header, rows) = read_csv(&csv_in);
    let churn = header.iter().position(|h| h == "Churn").unwrap();
    let train_csv = dir.path().join("train.csv");
    let new_csv = dir.path().join("new.csv");
    let mut w = csv::Writer::from_path(&train_csv).unwrap();
    w.write_record(&header).unwrap();
    for r in &rows[..rows.len() - 500] {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
    let mut w = csv::Writer::from_path(&new_csv).unwrap();
    let keep = |r: &[String]| -> Vec<String> {
        r.iter()
            .enumerate()
            .filter(|(i, _)| *i != churn)
            .map(|(_, v)| v.clone())
            .collect()
    };
    w.write_record(keep(&header)).unwrap();
    for r in &rows[rows.len() - 500..] {
        w.write_record(keep(r)).unwrap();
    }
    w.flush().unwrap();

    let out = millrace()
        .arg("--data-dir")
        .arg(&data)
        .args(["train", "--target", "Churn", "--name", "churn", "--data"])
        .arg(&train_csv)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("positive class \"Yes\""), "{stderr}");
    assert!(
        stderr.contains("column `customerID` not used: ID-like"),
        "{stderr}"
    );
    assert!(stdout.contains("saved churn:v1"), "{stdout}");
    let v1 = data.join("lake/models/churn/v1");
    for f in ["model.json", "metrics.json", "report.html"] {
        assert!(v1.join(f).is_file(), "{f}");
    }
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v1.join("metrics.json")).unwrap()).unwrap();
    let auc = metrics["test"]["auc"].as_f64().unwrap();
    assert!(auc > 0.8, "test AUC {auc}");
    assert!(metrics["leaderboard"].as_array().unwrap().len() >= 3);
    let html = std::fs::read_to_string(v1.join("report.html")).unwrap();
    for part in [
        "Leaderboard",
        "Confusion matrix",
        "<polyline",
        "Column impact",
        "customerID",
    ] {
        assert!(html.contains(part), "report.html lacks {part}");
    }

    let scored = dir.path().join("scored.csv");
    let out = millrace()
        .arg("--data-dir")
        .arg(&data)
        .args(["predict", "--model", "churn", "--input"])
        .arg(&new_csv)
        .arg("--output")
        .arg(&scored)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (h, got) = read_csv(&scored);
    assert_eq!(
        h,
        [
            "customerID",
            "predicted_label",
            "probability",
            "warnings",
            "error"
        ]
    );
    assert_eq!(got.len(), 500);
    for (g, r) in got.iter().zip(&rows[rows.len() - 500..]) {
        assert_eq!(g[0], r[0], "rows keep their order and ID");
        assert!(g[1] == "Yes" || g[1] == "No");
        let p: f64 = g[2].parse().unwrap();
        assert!((0.0..=1.0).contains(&p));
    }
    // A second run is v2, and the same seed gives the same model.
    let out = millrace()
        .arg("--data-dir")
        .arg(&data)
        .args(["train", "--target", "Churn", "--name", "churn", "--data"])
        .arg(&train_csv)
        .output()
        .unwrap();
    assert!(out.status.success());
    let model = |v: &str| {
        let mut m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(data.join(format!("lake/models/churn/{v}/model.json"))).unwrap(),
        )
        .unwrap();
        m["version"] = serde_json::Value::Null;
        m
    };
    assert_eq!(model("v1"), model("v2"));
    let scored2 = dir.path().join("scored2.csv");
    let st = millrace()
        .arg("--data-dir")
        .arg(&data)
        .args(["predict", "--model", "churn:v1", "--input"])
        .arg(&new_csv)
        .arg("--output")
        .arg(&scored2)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        std::fs::read(&scored).unwrap(),
        std::fs::read(&scored2).unwrap()
    );
}

#[test]
fn train_and_predict_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let csv_in = shared("telco-customer-churn.csv");
    let run = |args: &[&str]| {
        let out = millrace()
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let csv = csv_in.to_str().unwrap();
    let e = run(&["train", "--data", csv, "--target", "churn", "--name", "m"]);
    assert!(e.contains("target `churn`: not in the data"), "{e}");
    let e = run(&["train", "--data", csv, "--target", "Churn", "--name", "a/b"]);
    assert!(e.contains("--name: model name \"a/b\""), "{e}");
    let e = run(&[
        "train",
        "--data",
        csv,
        "--target",
        "Churn",
        "--name",
        "m",
        "--objective",
        "r2",
    ]);
    assert!(
        e.contains("objective `r2` does not apply to a binary target"),
        "{e}"
    );
    let e = run(&[
        "train",
        "--data",
        csv,
        "--target",
        "Churn",
        "--name",
        "m",
        "--time-budget",
        "soon",
    ]);
    assert!(e.contains("not a duration"), "{e}");
    let e = run(&[
        "predict", "--model", "nothing", "--input", csv, "--output", "x.csv",
    ]);
    assert!(e.contains("no model named nothing"), "{e}");
}

#[test]
fn concurrent_trains_save_distinct_versions_and_overwrite_none() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let csv = dir.path().join("churn.csv");
    let st = millrace()
        .args(["generate", "churn", "--rows", "300", "--seed", "5", "--out"])
        .arg(&csv)
        .status()
        .unwrap();
    assert!(st.success());
    // Several trainers at once against one data dir (as `up` retraining beside a `train`),
    // each on its own copy of the data and its own seed, so every file names its writer.
    let writers = 4u64;
    let children: Vec<_> = (0..writers)
        .map(|i| {
            let input = dir.path().join(format!("churn-{i}.csv"));
            std::fs::copy(&csv, &input).unwrap();
            millrace()
                .arg("--data-dir")
                .arg(&data)
                .args([
                    "train", "--target", "Churn", "--name", "churn", "--folds", "2",
                ])
                .args(["--max-candidates", "2", "--seed", &i.to_string(), "--data"])
                .arg(&input)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut saved = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: u32 = stdout
            .split("saved churn:v")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{stdout}"));
        saved.push(v);
    }
    saved.sort_unstable();
    assert_eq!(saved, [1, 2, 3, 4], "two trainers claimed one version");
    let models = data.join("lake/models/churn");
    let mut seeds = Vec::new();
    for v in 1..=writers {
        let dir = models.join(format!("v{v}"));
        let read = |f: &str| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(dir.join(f)).unwrap()).unwrap()
        };
        let (model, metrics) = (read("model.json"), read("metrics.json"));
        assert_eq!(model["version"], v);
        assert_eq!(metrics["version"], v);
        // model.json and metrics.json come from the same writer.
        let seed = metrics["seed"].as_u64().unwrap();
        let trained_on = model["lineage"]["data"].as_str().unwrap();
        assert!(
            trained_on.ends_with(&format!("churn-{seed}.csv")),
            "v{v}: model.json from {trained_on}, metrics.json from seed {seed}"
        );
        seeds.push(seed);
    }
    seeds.sort_unstable();
    assert_eq!(seeds, (0..writers).collect::<Vec<_>>());
    // No reservation or lock is left behind.
    let left: Vec<String> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "_registry.json")
        .collect();
    assert_eq!(left.len(), writers as usize, "{left:?}");
}
