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
