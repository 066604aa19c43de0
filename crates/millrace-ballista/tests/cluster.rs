//! Prep jobs on a Ballista cluster in this process (a scheduler and two executors on loopback)
//! give the local engine's outputs and manifests, row for row: the shipped churn job
//! (`latest_by` on the executors) and an aggregation whose scan is split over both executors
//! and shuffled, each with a bad JSON value to report. A memory:// lake is refused by name.
//! (`tests/compat/ballista_flows.py` runs the same with the roles as separate processes, on
//! S3, and kills an executor.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use millrace_ballista::{ExecutorOptions, SchedulerOptions};
use millrace_lake::{Lake, S3Options};
use millrace_prep::manifest::Manifest;
use millrace_prep::{EngineOptions, Job, JobReport, JobRun, LakeTable, Location, RunOptions};

fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A scheduler and two executors, on loopback; returns the engine URL.
async fn cluster(work: &Path) -> String {
    let (addr, serve) = millrace_ballista::scheduler(SchedulerOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        external_host: None,
        executor_timeout: Duration::from_secs(30),
    })
    .await
    .unwrap();
    tokio::spawn(serve);
    for i in 0..2 {
        let opts = ExecutorOptions {
            scheduler: addr.to_string(),
            flight_port: free_port(),
            grpc_port: free_port(),
            concurrent_tasks: Some(2),
            work_dir: Some(work.join(format!("executor-{i}"))),
            ..Default::default()
        };
        std::fs::create_dir_all(opts.work_dir.as_ref().unwrap()).unwrap();
        tokio::spawn(async move {
            if let Err(e) = millrace_ballista::executor(opts).await {
                panic!("executor {i}: {e}");
            }
        });
    }
    // Both executors registered: a query that needs them answers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    format!("ballista://{addr}")
}

fn write(dir: &Path, key: &str, body: &str) {
    let p = dir.join(key);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// Six objects of churn records: the real Firehose object, then updates of some customers
/// (so `latest_by` has work), one value that is not JSON, and padded strings.
fn churn_lake(dir: &Path) {
    let firehose = std::fs::read_to_string(shared("firehose-s3-object-example.json")).unwrap();
    write(dir, "raw/churn/2026/11/25/10/churn-0", &firehose);
    let values: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::Deserializer::from_str(&firehose)
            .into_iter::<serde_json::Value>()
            .map(|v| match v.unwrap() {
                serde_json::Value::Object(m) => m,
                other => panic!("not an object: {other}"),
            })
            .collect();
    for obj in 1..6 {
        let mut text = String::new();
        for (i, v) in values.iter().enumerate().filter(|(i, _)| i % obj == 0) {
            let mut v = v.clone();
            v.insert("tenure".into(), format!(" {} ", (i + obj) % 72).into());
            v.insert(
                "Contract".into(),
                format!("  {} ", v["Contract"].as_str().unwrap()).into(),
            );
            text.push_str(&serde_json::to_string(&v).unwrap());
            text.push('\n');
        }
        if obj == 3 {
            text.push_str("{\"customerID\": \"broken\", \"tenure\": }\n");
        }
        write(
            dir,
            &format!("raw/churn/2026/11/25/1{obj}/churn-{obj}.json"),
            &text,
        );
    }
}

const AGGREGATE_JOB: &str = r#"
name = "by_contract"
sql = ["""
CREATE VIEW by_contract AS
SELECT TRIM(Contract) AS Contract, count(*) AS n,
       sum(TRY_CAST(TRIM(CAST(tenure AS VARCHAR)) AS INT)) AS tenure_sum,
       count(DISTINCT customerID) AS customers, max(_object) AS last_object
FROM raw GROUP BY TRIM(Contract)
"""]

[[input]]
table = "raw"
path = "raw/churn"
format = "json"
source_columns = true

[[output]]
path = "curated/by_contract"
table = "by_contract"
format = "parquet"
"#;

async fn run(job: Job, lake: &Path, output: &str, engine: Option<&str>) -> JobReport {
    let mut job = job;
    job.outputs[0].path = output.to_owned();
    let opts = RunOptions {
        default_lake: Some(lake.display().to_string()),
        distributed: engine.is_some(),
        ..Default::default()
    };
    let run = JobRun::prepare(job, "test-job", &opts).await.unwrap();
    let ctx = match engine {
        None => millrace_prep::context(run.engine_options()).unwrap(),
        Some(url) => millrace_ballista::context(url, run.engine_options())
            .await
            .unwrap(),
    };
    run.execute_on(ctx).await.unwrap()
}

/// A dataset's rows, sorted, as text.
async fn rows(lake: &Lake, folder: &str) -> String {
    let loc = Location::resolve(folder, Some(lake), &S3Options::default()).unwrap();
    let table = LakeTable::open("t", &loc, None, None, &Default::default())
        .await
        .unwrap();
    let ctx = millrace_prep::context(&EngineOptions::default()).unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
    let df = ctx.sql("SELECT * FROM t").await.unwrap();
    let cols: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect();
    let batches = ctx
        .sql(&format!("SELECT * FROM t ORDER BY {}", cols.join(", ")))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}

async fn manifest(lake: &Lake, folder: &str) -> Manifest {
    Manifest::read(lake, &format!("{folder}/_manifest.json"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_on_the_cluster_write_what_the_local_engine_writes() {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    churn_lake(&lake_dir);
    let engine = cluster(dir.path()).await;
    let lake = Lake::open(lake_dir.to_str().unwrap(), &S3Options::default()).unwrap();

    let churn =
        Job::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/jobs/churn.toml"))
            .unwrap();
    let aggregate = Job::parse(AGGREGATE_JOB, "by_contract.toml", "by_contract").unwrap();
    for (job, name) in [(churn, "churn"), (aggregate, "by_contract")] {
        let local = run(job.clone(), &lake_dir, &format!("local/{name}"), None).await;
        let remote = run(job, &lake_dir, &format!("ballista/{name}"), Some(&engine)).await;
        assert_eq!(local.outputs[0].rows, remote.outputs[0].rows, "{name}");
        assert!(local.outputs[0].rows > 0, "{name}");
        assert_eq!(local.bad_records, 1, "{name}: the broken value");
        assert_eq!(remote.bad_records, 1, "{name}: reported by the executors");
        let (a, b) = (
            rows(&lake, &format!("local/{name}")).await,
            rows(&lake, &format!("ballista/{name}")).await,
        );
        assert_eq!(a, b, "{name}: rows differ");
        let (ma, mb) = (
            manifest(&lake, &format!("local/{name}")).await,
            manifest(&lake, &format!("ballista/{name}")).await,
        );
        assert_eq!(ma.inputs, mb.inputs, "{name}");
        assert_eq!(ma.rows, mb.rows, "{name}");
        assert_eq!(ma.bad_record_count, mb.bad_record_count, "{name}");
        assert_eq!(ma.bad_records, mb.bad_records, "{name}");
        assert_eq!(ma.statements, mb.statements, "{name}");
        // The executors' reports were read and removed.
        let left = lake.list_objects("_millrace/").await.unwrap();
        assert!(left.is_empty(), "{name}: reports left behind: {left:?}");
    }
}

/// Ballista's own task builder cuts a lake scan down to a task's partitions, and the cut plan
/// survives the codec: two tasks that share the groups read every object once between them
/// (what the cluster test above relies on, seen one task at a time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ballistas_task_builder_gives_each_task_its_own_groups() {
    use ballista_scheduler::state::task_builder::restrict_plan_to_partitions;
    use datafusion::physical_plan::{ExecutionPlanProperties, collect};
    use datafusion_proto::bytes::{
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };

    let dir = tempfile::tempdir().unwrap();
    let lake_dir = dir.path().join("lake");
    churn_lake(&lake_dir);
    let lake = Lake::open(lake_dir.to_str().unwrap(), &S3Options::default()).unwrap();
    let loc = Location::resolve("raw/churn", Some(&lake), &S3Options::default()).unwrap();
    let mut table = LakeTable::open("raw", &loc, None, None, &Default::default())
        .await
        .unwrap();
    table.report_to("_millrace/task-test");
    let ctx = millrace_prep::context(&EngineOptions {
        target_partitions: Some(4),
        ..Default::default()
    })
    .unwrap();
    let plan = datafusion::catalog::TableProvider::scan(&table, &ctx.state(), None, &[], None)
        .await
        .unwrap();
    assert_eq!(plan.output_partitioning().partition_count(), 4);
    let codec = millrace_ballista::codec::PhysicalCodec::default();
    let mut rows = 0;
    for task in [vec![3], vec![0, 2], vec![1]] {
        let cut = restrict_plan_to_partitions(plan.clone(), &task).unwrap();
        let bytes = physical_plan_to_bytes_with_extension_codec(cut, &codec).unwrap();
        let remote =
            physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &codec).unwrap();
        assert_eq!(remote.output_partitioning().partition_count(), task.len());
        rows += collect(remote, ctx.task_ctx())
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows() as u64)
            .sum::<u64>();
    }
    let report = millrace_prep::scan::collect_reports(&lake, "_millrace/task-test")
        .await
        .unwrap();
    assert_eq!(report.objects, 6, "every object read once: {report:?}");
    assert_eq!(report.rows, rows);
    assert_eq!(report.bad_count, 1);
    let whole: u64 = collect(plan, ctx.task_ctx())
        .await
        .unwrap()
        .iter()
        .map(|b| b.num_rows() as u64)
        .sum();
    assert_eq!(rows, whole);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_lake_is_refused_by_name() {
    let lake = Lake::open("memory://", &S3Options::default()).unwrap();
    lake.put(
        "raw/a.json",
        bytes::Bytes::from_static(b"{\"k\": \"a\", \"v\": 1}\n"),
    )
    .await
    .unwrap();
    let loc = Location::resolve("raw", Some(&lake), &S3Options::default()).unwrap();
    let table = LakeTable::open("raw", &loc, None, None, &Default::default())
        .await
        .unwrap();
    let err = table.to_bytes().unwrap_err().to_string();
    assert!(err.contains("memory://"), "{err}");
    // And a scheduler address that nothing listens on is named in the error.
    let port = free_port();
    let err = millrace_ballista::context(
        &format!("ballista://127.0.0.1:{port}"),
        &EngineOptions::default(),
    )
    .await
    .err()
    .expect("no scheduler there")
    .to_string();
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("scheduler"),
        "{err}"
    );
    assert!(millrace_ballista::scheduler_of("ballista://host").is_err());
    assert!(millrace_ballista::scheduler_of("http://host:1").is_err());
}
