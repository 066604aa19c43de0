//! Job files end to end on a local lake: the shipped churn job (casts, trims, latest record per
//! customer), manifests and garbage collection, incremental runs, partitioned output, errors
//! that name the job and statement, and a memory limit far below the data.

use crate::common;

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use common::{json_values, lake, query, shared};
use datafusion::datasource::TableProvider;
use millrace_prep::manifest::Manifest;
use millrace_prep::{Job, JobRun, RunOptions, TableOptions};

fn churn_job() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/jobs/churn.toml")
}

async fn run(job_path: &Path, lake_dir: &Path) -> Result<millrace_prep::JobReport, String> {
    let job = Job::load(job_path).map_err(|e| e.to_string())?;
    let opts = RunOptions {
        default_lake: Some(lake_dir.display().to_string()),
        ..Default::default()
    };
    let run = JobRun::prepare(job, &job_path.display().to_string(), &opts)
        .await
        .map_err(|e| e.to_string())?;
    run.execute().await.map_err(|e| e.to_string())
}

fn write(dir: &Path, key: &str, body: &str) {
    let p = dir.join(key);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn col_f64(b: &RecordBatch, name: &str, row: usize) -> Option<f64> {
    let a = b.column(b.schema().index_of(name).unwrap());
    (!a.is_null(row)).then(|| a.as_primitive::<Float64Type>().value(row))
}

#[tokio::test]
async fn churn_job_casts_trims_and_keeps_the_latest_record() {
    let dir = tempfile::tempdir().unwrap();
    let firehose = std::fs::read_to_string(shared("firehose-s3-object-example.json")).unwrap();
    let values = json_values(firehose.as_bytes());
    write(dir.path(), "raw/churn/2026/11/25/10/churn-a", &firehose);
    // An hour later: an update of the first two customers, and a new customer with padded
    // strings and a blank TotalCharges (tenure 0), as the real file has.
    let id0 = values[0]["customerID"].as_str().unwrap().to_owned();
    let id1 = values[1]["customerID"].as_str().unwrap().to_owned();
    let mut u0 = values[0].clone();
    u0.insert("tenure".into(), "71".into());
    u0.insert("TotalCharges".into(), "7000.5".into());
    let mut u1a = values[1].clone();
    u1a.insert("tenure".into(), "10".into());
    let mut u1b = values[1].clone();
    u1b.insert("tenure".into(), "11".into());
    let mut new = values[2].clone();
    new.insert("customerID".into(), " 0000-NEWCU ".into());
    new.insert("Contract".into(), "  Month-to-month ".into());
    new.insert("tenure".into(), "0".into());
    new.insert("TotalCharges".into(), " ".into());
    new.insert("SeniorCitizen".into(), "".into());
    let later: String = [u0, u1a, u1b, new]
        .iter()
        .map(|m| serde_json::to_string(m).unwrap() + "\n")
        .collect();
    write(dir.path(), "raw/churn/2026/11/25/11/churn-b.json", &later);

    let report = run(&churn_job(), dir.path()).await.unwrap();
    assert_eq!(report.inputs[0].objects, 2);
    assert_eq!(report.outputs[0].rows, 145);
    assert_eq!(report.bad_records, 0);

    let lake = lake(dir.path());
    let (b, t) = query(
        Some(&lake),
        &[("c", "curated/churn", None)],
        &TableOptions::default(),
        &format!(
            "SELECT customerID, tenure, TotalCharges, SeniorCitizen, Contract, MonthlyCharges FROM c \
             WHERE customerID IN ('{id0}', '{id1}', '0000-NEWCU') ORDER BY customerID"
        ),
    )
    .await
    .unwrap();
    let schema = t[0].schema();
    assert_eq!(
        schema.field_with_name("tenure").unwrap().data_type(),
        &DataType::Int32
    );
    assert_eq!(
        schema.field_with_name("SeniorCitizen").unwrap().data_type(),
        &DataType::Int32
    );
    assert_eq!(
        schema
            .field_with_name("MonthlyCharges")
            .unwrap()
            .data_type(),
        &DataType::Float64
    );
    assert_eq!(
        schema.field_with_name("TotalCharges").unwrap().data_type(),
        &DataType::Float64
    );
    assert_eq!(
        schema.field_with_name("Churn").unwrap().data_type(),
        &DataType::Utf8
    );
    assert_eq!(schema.fields().len(), 21);
    let b = &b[0];
    let ids = b.column(0).as_string::<i32>();
    let tenure = b.column(1).as_primitive::<Int32Type>();
    let mut seen = std::collections::HashMap::new();
    for r in 0..b.num_rows() {
        seen.insert(ids.value(r).to_owned(), r);
    }
    assert_eq!(seen.len(), 3);
    let r0 = seen[&id0];
    assert_eq!(tenure.value(r0), 71);
    assert_eq!(col_f64(b, "TotalCharges", r0), Some(7000.5));
    assert_eq!(
        tenure.value(seen[&id1]),
        11,
        "the later of two updates in one object wins"
    );
    let rn = seen["0000-NEWCU"];
    assert_eq!(tenure.value(rn), 0);
    assert_eq!(col_f64(b, "TotalCharges", rn), None, "blank becomes NULL");
    assert!(b.column(3).is_null(rn), "empty SeniorCitizen becomes NULL");
    assert_eq!(b.column(4).as_string::<i32>().value(rn), "Month-to-month");

    // Sums over the whole curated set, against values computed from the raw JSON here.
    let mut latest: std::collections::BTreeMap<String, (i64, f64)> = values
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap().trim().to_owned();
            (
                s("customerID"),
                (
                    s("tenure").parse().unwrap(),
                    s("MonthlyCharges").parse().unwrap(),
                ),
            )
        })
        .collect();
    latest.get_mut(&id0).unwrap().0 = 71;
    latest.get_mut(&id1).unwrap().0 = 11;
    latest.insert(
        "0000-NEWCU".into(),
        (
            0,
            values[2]["MonthlyCharges"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        ),
    );
    let (b, _) = query(
        Some(&lake),
        &[("c", "curated/churn", None)],
        &TableOptions::default(),
        "SELECT count(*), count(DISTINCT customerID), sum(CAST(tenure AS BIGINT)), sum(MonthlyCharges) FROM c",
    )
    .await
    .unwrap();
    let b = &b[0];
    assert_eq!(
        b.column(0).as_primitive::<Int64Type>().value(0),
        latest.len() as i64
    );
    assert_eq!(
        b.column(1).as_primitive::<Int64Type>().value(0),
        latest.len() as i64
    );
    assert_eq!(
        b.column(2).as_primitive::<Int64Type>().value(0),
        latest.values().map(|v| v.0).sum::<i64>()
    );
    let monthly: f64 = latest.values().map(|v| v.1).sum();
    assert!((b.column(3).as_primitive::<Float64Type>().value(0) - monthly).abs() < 1e-6);

    // The manifest says where the dataset came from.
    let m = Manifest::read(&lake, "curated/churn/_manifest.json")
        .await
        .unwrap();
    assert_eq!(m.rows, 145);
    assert_eq!(m.mode, "overwrite");
    let inputs = &m.inputs["raw_churn"];
    assert_eq!(inputs.len(), 2);
    assert_eq!(inputs[0].size, firehose.len() as u64);
    assert!(
        inputs[0]
            .object
            .ends_with("raw/churn/2026/11/25/10/churn-a")
    );
    assert!(inputs.iter().all(|o| o.etag.is_some()));
    assert_eq!(m.statements.len(), 1);
    assert!(m.job.as_deref().unwrap().ends_with("churn.toml"));

    // A second full run replaces the first; the old files are gone.
    let first_files: Vec<String> = m.files.iter().map(|f| f.key.clone()).collect();
    let report = run(&churn_job(), dir.path()).await.unwrap();
    assert_eq!(report.outputs[0].rows, 145);
    for f in first_files {
        assert!(
            !dir.path().join("curated/churn").join(&f).exists(),
            "{f} should be collected"
        );
    }
    let m2 = Manifest::read(&lake, "curated/churn/_manifest.json")
        .await
        .unwrap();
    assert_eq!(m2.previous_run_id.as_deref(), Some(m.run_id.as_str()));
    assert!(
        dir.path()
            .join(format!("curated/churn/_manifests/{}.json", m.run_id))
            .exists()
    );
}

const EVENTS_JOB: &str = r#"
incremental = true
sql = ["CREATE VIEW v AS SELECT id, CAST(n AS BIGINT) AS n, kind FROM ev"]

[[input]]
table = "ev"
path = "raw/events"
format = "ndjson"

[[output]]
path = "curated/events"
table = "v"
partition_by = ["kind"]
"#;

fn events(dir: &Path, key: &str, ids: std::ops::Range<i64>) {
    let body: String = ids
        .map(|i| {
            format!(
                "{{\"id\":\"e{i}\",\"n\":{i},\"kind\":\"{}\"}}\n",
                ["a", "b/c", ""][i as usize % 3]
            )
        })
        .collect();
    write(dir, key, &body);
}

#[tokio::test]
async fn incremental_runs_read_only_new_objects_and_append_partitioned_output() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("events.toml");
    std::fs::write(&job, EVENTS_JOB).unwrap();
    let lake_dir = dir.path().join("lake");
    events(&lake_dir, "raw/events/1.json", 0..10);
    events(&lake_dir, "raw/events/2.json", 10..20);
    let r1 = run(&job, &lake_dir).await.unwrap();
    assert_eq!((r1.inputs[0].objects, r1.outputs[0].rows), (2, 20));
    assert!(lake_dir.join("curated/events/kind=a").is_dir());
    assert!(lake_dir.join("curated/events/kind=b%2Fc").is_dir());
    assert!(
        lake_dir
            .join("curated/events/kind=__HIVE_DEFAULT_PARTITION__")
            .is_dir()
    );

    events(&lake_dir, "raw/events/3.json", 20..25);
    let r2 = run(&job, &lake_dir).await.unwrap();
    assert_eq!(r2.inputs[0].objects, 1);
    assert_eq!(r2.inputs[0].already_read, 2);
    assert_eq!((r2.outputs[0].rows, r2.outputs[0].dataset_rows), (5, 25));

    let r3 = run(&job, &lake_dir).await.unwrap();
    assert!(r3.up_to_date);
    assert!(r3.outputs.is_empty());

    let lake = lake(&lake_dir);
    let m = Manifest::read(&lake, "curated/events/_manifest.json")
        .await
        .unwrap();
    assert_eq!((m.rows, m.run_rows, m.mode.as_str()), (25, 5, "append"));
    assert_eq!(m.inputs["ev"].len(), 3);
    assert_eq!(m.run_inputs["ev"], 1);
    let (b, _) = query(
        Some(&lake),
        &[("e", "curated/events", None)],
        &TableOptions::default(),
        "SELECT kind, count(*), sum(n) FROM e GROUP BY kind ORDER BY kind NULLS LAST",
    )
    .await
    .unwrap();
    let b = &b[0];
    let kinds = b.column(0).as_string::<i32>();
    assert_eq!((kinds.value(0), kinds.value(1)), ("a", "b/c"));
    assert!(kinds.is_null(2), "empty partition values read back as NULL");
    let counts = b.column(1).as_primitive::<Int64Type>();
    assert_eq!(counts.values().iter().sum::<i64>(), 25);
    let sums = b.column(2).as_primitive::<Int64Type>();
    assert_eq!(sums.values().iter().sum::<i64>(), (0..25).sum::<i64>());
}

#[tokio::test]
async fn uncommitted_files_are_invisible_to_readers() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("events.toml");
    std::fs::write(&job, EVENTS_JOB.replace("incremental = true", "")).unwrap();
    let lake_dir = dir.path().join("lake");
    events(&lake_dir, "raw/events/1.json", 0..9);
    run(&job, &lake_dir).await.unwrap();
    // A run that died after writing a file but before committing its manifest.
    std::fs::copy(
        std::fs::read_dir(lake_dir.join("curated/events/kind=a"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
        lake_dir.join("curated/events/kind=a/part-dead-00000.parquet"),
    )
    .unwrap();
    let lake = lake(&lake_dir);
    let (b, _) = query(
        Some(&lake),
        &[("e", "curated/events", None)],
        &TableOptions::default(),
        "SELECT count(*) FROM e",
    )
    .await
    .unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 9);
    // The next commit collects it.
    run(&job, &lake_dir).await.unwrap();
    assert!(
        !lake_dir
            .join("curated/events/kind=a/part-dead-00000.parquet")
            .exists()
    );
}

#[tokio::test]
async fn errors_name_the_job_file_and_statement() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    events(&lake_dir, "raw/events/1.json", 0..3);
    let job = dir.path().join("bad.toml");
    let with_sql = |sql: &str| {
        EVENTS_JOB.replace("incremental = true\n", "").replace(
            "sql = [\"CREATE VIEW v AS SELECT id, CAST(n AS BIGINT) AS n, kind FROM ev\"]",
            sql,
        )
    };
    std::fs::write(
        &job,
        with_sql("sql = [\"CREATE VIEW w AS SELECT * FROM ev\", \"CREATE VIEW v AS SELECT * FROM nope\"]"),
    )
    .unwrap();
    let e = run(&job, &lake_dir).await.unwrap_err();
    assert!(e.contains("bad.toml") && e.contains("statement 2"), "{e}");
    assert!(e.contains("nope") && e.contains("not found"), "{e}");

    std::fs::write(
        &job,
        with_sql("sql = [\"CREATE VIEW v AS SELEC id FROM ev\"]"),
    )
    .unwrap();
    let e = run(&job, &lake_dir).await.unwrap_err();
    assert!(e.contains("bad.toml") && e.contains("statement 1"), "{e}");
    assert!(
        e.to_lowercase().contains("sql parser error") || e.contains("Expected"),
        "{e}"
    );

    std::fs::write(
        &job,
        with_sql("sql = [\"CREATE VIEW v AS SELECT id, no_such_column FROM ev\"]"),
    )
    .unwrap();
    let e = run(&job, &lake_dir).await.unwrap_err();
    assert!(
        e.contains("statement 1") && e.contains("no_such_column"),
        "{e}"
    );
    // Nothing was committed by the failed runs.
    assert!(!lake_dir.join("curated/events/_manifest.json").exists());
}

#[tokio::test]
async fn dedup_sort_spills_under_a_tiny_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    // 200k records of ~260 bytes (52 MB), 10% of customers sent twice, under a 32 MiB pool.
    for obj in 0..8 {
        let body: String = (0..25_000)
            .map(|i| {
                let n = obj * 25_000 + i;
                let id = if n % 10 == 9 { n - 5 } else { n };
                format!(
                    "{{\"customerID\":\"{id:08}\",\"tenure\":\"{}\",\"pad\":\"{}\"}}",
                    n % 72,
                    "x".repeat(200)
                )
            })
            .collect();
        write(&lake_dir, &format!("raw/c/{obj:02}"), &body);
    }
    let job_text = |limit: u32| {
        format!(
            r#"
memory_limit_mib = {limit}
sql = ["""CREATE VIEW latest AS SELECT customerID, tenure, pad FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY customerID ORDER BY _object DESC, _row DESC) AS rn FROM raw
) WHERE rn = 1"""]
[[input]]
table = "raw"
path = "raw/c"
format = "concat"
source_columns = true
[[output]]
path = "curated/c"
table = "latest"
"#
        )
    };
    let job = dir.path().join("dedup.toml");
    // The pool is enforced: at 4 MiB not even one sort batch fits, and the job says so.
    std::fs::write(&job, job_text(4)).unwrap();
    let e = run(&job, &lake_dir).await.unwrap_err();
    assert!(e.contains("Resources exhausted"), "{e}");
    // At 32 MiB the sort of ~52 MB spills to disk and the job finishes with the right rows.
    std::fs::write(&job, job_text(32)).unwrap();
    let r = run(&job, &lake_dir).await.unwrap();
    assert_eq!(r.outputs[0].rows, 180_000);
    let lake = lake(&lake_dir);
    let (b, _) = query(
        Some(&lake),
        &[("c", "curated/c", None)],
        &TableOptions::default(),
        "SELECT count(DISTINCT customerID), sum(CAST(tenure AS BIGINT)) FROM c",
    )
    .await
    .unwrap();
    // Each duplicated id (n % 10 == 9 reuses id n - 5) keeps the later record's tenure.
    let mut want: std::collections::BTreeMap<i64, i64> = Default::default();
    for n in 0..200_000i64 {
        let id = if n % 10 == 9 { n - 5 } else { n };
        want.insert(id, n % 72);
    }
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 180_000);
    assert_eq!(
        b[0].column(1).as_primitive::<Int64Type>().value(0),
        want.values().sum::<i64>()
    );
}

/// A job whose output query reads `flaky(n)`: a function that fails with [`RunAgain`] on the
/// calls `fail_on` names (0 is the first), the way a cluster's result read breaks off.
async fn run_with_flaky(
    dir: &Path,
    fail_on: fn(usize) -> bool,
) -> (Result<millrace_prep::JobReport, String>, usize) {
    use datafusion::arrow::array::ArrayRef;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use millrace_prep::RunAgain;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let job_path = dir.join("flaky.toml");
    std::fs::write(
        &job_path,
        r#"
[[input]]
table = "ev"
path = "raw/events"
format = "ndjson"

[[output]]
path = "curated/flaky"
query = "SELECT id, flaky(CAST(n AS BIGINT)) AS n FROM ev"
"#,
    )
    .unwrap();
    let lake_dir = dir.join("lake");
    for (i, key) in [
        "raw/events/1.json",
        "raw/events/2.json",
        "raw/events/3.json",
    ]
    .iter()
    .enumerate()
    {
        let i = i as i64;
        events(&lake_dir, key, i * 100..i * 100 + 100);
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let flaky = create_udf(
        "flaky",
        vec![DataType::Int64],
        DataType::Int64,
        Volatility::Volatile,
        Arc::new(move |args: &[ColumnarValue]| {
            let call = counter.fetch_add(1, Ordering::SeqCst);
            if fail_on(call) {
                let lost = std::io::Error::other("the executor holding partition 1 is gone");
                return Err(datafusion::error::DataFusionError::External(Box::new(
                    RunAgain(Box::new(lost)),
                )));
            }
            let arrays: Vec<ArrayRef> = ColumnarValue::values_to_arrays(args)?;
            Ok(ColumnarValue::Array(arrays[0].clone()))
        }),
    );
    let job = Job::load(&job_path).unwrap();
    let opts = RunOptions {
        default_lake: Some(lake_dir.display().to_string()),
        target_partitions: Some(1),
        ..Default::default()
    };
    let run = JobRun::prepare(job, &job_path.display().to_string(), &opts)
        .await
        .unwrap();
    let ctx = millrace_prep::context(run.engine_options()).unwrap();
    ctx.register_udf(flaky);
    let result = run.execute_on(ctx).await.map_err(|e| e.to_string());
    (result, calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn an_output_whose_engine_asks_to_run_again_is_written_once() {
    let dir = tempfile::tempdir().unwrap();
    // The second batch fails: the first batch's rows were already handed to the writer.
    let (result, calls) = run_with_flaky(dir.path(), |call| call == 1).await;
    let report = result.expect("the second run succeeds");
    assert!(calls > 3, "the query ran twice: {calls} calls");
    assert_eq!(report.outputs[0].rows, 300);
    let lake = lake(&dir.path().join("lake"));
    let (b, _) = query(
        Some(&lake),
        &[("f", "curated/flaky", None)],
        &TableOptions::default(),
        "SELECT count(*), count(DISTINCT id), sum(n) FROM f",
    )
    .await
    .unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 300);
    assert_eq!(b[0].column(1).as_primitive::<Int64Type>().value(0), 300);
    assert_eq!(
        b[0].column(2).as_primitive::<Int64Type>().value(0),
        (0..300).sum::<i64>()
    );

    // An engine that asks every time: three runs, then the error, and nothing written.
    let dir = tempfile::tempdir().unwrap();
    let (result, calls) = run_with_flaky(dir.path(), |_| true).await;
    let e = result.expect_err("every run breaks off");
    assert!(
        e.contains("flaky.toml, output 1") && e.contains("is gone"),
        "{e}"
    );
    assert_eq!(calls, millrace_prep::run::QUERY_RUNS, "one call per run");
    assert!(!dir.path().join("lake/curated/flaky").exists());
}
