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
    // A second run on the same data dir checks only its own records.
    let again = millrace()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--rows", "200"])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("200 records read back"));
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
