//! The lake table and its scan written out and read back (what a Ballista scheduler and its
//! executors do with them) run to the same rows, bad records included: a plain multi-partition
//! scan with source columns and a limit, and a `latest_by` scan. A distributed scan is one
//! partition and leaves a report, which `collect_reports` reads and removes.

use std::sync::Arc;

use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties, collect};
use millrace_prep::scan::collect_reports;
use millrace_prep::{LakeScanExec, LakeTable, Location, TableOptions};

use crate::common::{lake, shared};

fn write(dir: &std::path::Path, key: &str, body: &str) {
    let p = dir.join(key);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

async fn run(plan: Arc<dyn ExecutionPlan>) -> String {
    let ctx = millrace_prep::context(&Default::default()).unwrap();
    let batches = collect(plan, ctx.task_ctx()).await.unwrap();
    let mut lines: Vec<String> = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines.join("\n")
}

#[tokio::test]
async fn scans_read_back_from_bytes_give_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let firehose = std::fs::read_to_string(shared("firehose-s3-object-example.json")).unwrap();
    write(dir.path(), "raw/day=1/a", &firehose);
    write(
        dir.path(),
        "raw/day=2/b.json",
        "{\"customerID\": \"x\", \"tenure\": \"1\"}\n{\"customerID\": }\n",
    );
    write(dir.path(), "raw/day=2/c.json", &firehose);
    let lake = lake(dir.path());
    let loc = Location::resolve("raw", Some(&lake), &Default::default()).unwrap();
    let ctx = millrace_prep::context(&millrace_prep::EngineOptions {
        target_partitions: Some(3),
        ..Default::default()
    })
    .unwrap();
    for (options, limit) in [
        (
            TableOptions {
                source_columns: true,
                ..Default::default()
            },
            None,
        ),
        (TableOptions::default(), Some(100)),
        (
            TableOptions {
                latest_by: Some("customerID".into()),
                ..Default::default()
            },
            None,
        ),
    ] {
        let table = LakeTable::open("raw", &loc, None, None, &options)
            .await
            .unwrap();
        let back = LakeTable::from_bytes(&table.to_bytes().unwrap()).unwrap();
        assert_eq!(
            datafusion::catalog::TableProvider::schema(&table),
            datafusion::catalog::TableProvider::schema(&back)
        );
        let plan = datafusion::catalog::TableProvider::scan(&back, &ctx.state(), None, &[], limit)
            .await
            .unwrap();
        let scan = plan.downcast_ref::<LakeScanExec>().expect("a lake scan");
        let again: Arc<dyn ExecutionPlan> =
            Arc::new(LakeScanExec::from_bytes(&scan.to_bytes().unwrap()).unwrap());
        assert_eq!(
            plan.output_partitioning().partition_count(),
            again.output_partitioning().partition_count()
        );
        let (a, b) = (run(plan.clone()).await, run(again.clone()).await);
        assert_eq!(a, b, "{options:?}");
        if limit.is_none() {
            let progress = again.downcast_ref::<LakeScanExec>().unwrap().progress();
            assert_eq!(
                progress
                    .bad_count
                    .load(std::sync::atomic::Ordering::Relaxed),
                1
            );
        }
    }

    // A distributed scan is one partition (Ballista would run any other whole in every task)
    // and reports when it ends; the reports add up and are removed.
    let mut table = LakeTable::open("raw", &loc, None, None, &TableOptions::default())
        .await
        .unwrap();
    table.report_to("_millrace/test-run");
    let plan = datafusion::catalog::TableProvider::scan(&table, &ctx.state(), None, &[], None)
        .await
        .unwrap();
    assert_eq!(plan.output_partitioning().partition_count(), 1);
    let remote: Arc<dyn ExecutionPlan> = Arc::new(
        LakeScanExec::from_bytes(
            &plan
                .downcast_ref::<LakeScanExec>()
                .unwrap()
                .to_bytes()
                .unwrap(),
        )
        .unwrap(),
    );
    let rows: usize = collect(remote, ctx.task_ctx())
        .await
        .unwrap()
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(
        lake.list_objects("_millrace/test-run/")
            .await
            .unwrap()
            .len(),
        1
    );
    let report = collect_reports(&lake, "_millrace/test-run").await.unwrap();
    assert_eq!(report.objects, 3);
    assert_eq!(report.rows as usize, rows);
    assert_eq!(report.bad_count, 1);
    assert_eq!(report.bad.len(), 1);
    assert!(
        report.bad[0].object.ends_with("raw/day=2/b.json"),
        "{:?}",
        report.bad
    );
    assert!(lake.list_objects("_millrace/").await.unwrap().is_empty());
}
