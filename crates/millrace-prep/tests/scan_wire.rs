//! The lake table and its scan written out and read back (what a Ballista scheduler and its
//! executors do with them) run to the same rows, bad records included: a plain multi-partition
//! scan with source columns and a limit, and a `latest_by` scan. A distributed scan reads the
//! groups its group index names (cut as Ballista cuts one for a task), and each group leaves a
//! report, which `collect_reports` reads and removes.

use std::sync::Arc;

use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
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
            Arc::new(LakeScanExec::from_bytes(&scan.to_bytes().unwrap(), &[]).unwrap());
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

    // A distributed scan names its groups in a group index, one partition per group. Cut the
    // index down to some partitions, as Ballista cuts a memory table for a task: the scan then
    // reads only those groups. Two tasks that share the groups read every row once, and each
    // group reports when it ends; the reports add up and are removed.
    let mut table = LakeTable::open("raw", &loc, None, None, &TableOptions::default())
        .await
        .unwrap();
    table.report_to("_millrace/test-run");
    let plan = datafusion::catalog::TableProvider::scan(&table, &ctx.state(), None, &[], None)
        .await
        .unwrap();
    let scan = plan.downcast_ref::<LakeScanExec>().unwrap();
    assert!(scan.is_split());
    assert_eq!(plan.output_partitioning().partition_count(), 3);
    let whole = collect(plan.clone(), ctx.task_ctx()).await.unwrap();
    let whole_rows: usize = whole.iter().map(|b| b.num_rows()).sum();
    collect_reports(&lake, "_millrace/test-run").await.unwrap();
    let bytes = scan.to_bytes().unwrap();
    let index = plan.children()[0].clone();
    let mut rows = 0;
    for task in [vec![2], vec![0, 1]] {
        let cut = cut_index(&index, &task);
        let remote: Arc<dyn ExecutionPlan> =
            Arc::new(LakeScanExec::from_bytes(&bytes, &[cut]).unwrap());
        assert_eq!(remote.output_partitioning().partition_count(), task.len());
        rows += collect(remote, ctx.task_ctx())
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>();
    }
    assert_eq!(rows, whole_rows);
    assert_eq!(
        lake.list_objects("_millrace/test-run/")
            .await
            .unwrap()
            .len(),
        3,
        "one report per group"
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

/// A memory table's partitions `keep`, as Ballista's task builder cuts one for a task.
fn cut_index(index: &Arc<dyn ExecutionPlan>, keep: &[usize]) -> Arc<dyn ExecutionPlan> {
    let exec = index
        .downcast_ref::<DataSourceExec>()
        .expect("a memory table");
    let source: &dyn std::any::Any = exec.data_source().as_ref();
    let source = source
        .downcast_ref::<MemorySourceConfig>()
        .expect("a memory table");
    let kept: Vec<_> = keep
        .iter()
        .map(|&i| source.partitions()[i].clone())
        .collect();
    MemorySourceConfig::try_new_exec(&kept, source.original_schema(), None).unwrap()
}

/// A `latest_by` scan planned for a cluster is split into groups and merged by key after a
/// repartition (which DataFusion's distribution rule puts in): the same rows as the one
/// newest-first stream, for records updated within an object, across objects, and with keys
/// that differ only in spaces.
#[tokio::test]
async fn a_split_latest_by_scan_keeps_what_the_single_stream_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let mut expect_rows = 0;
    for i in 0..7 {
        let mut body = String::new();
        for k in 0..40 {
            // Keys 0..40 again in every object (updates), some padded, some twice in one
            // object, and a NULL and a blank key (all kept).
            let key = if k % 5 == 0 {
                format!(" k{k} ")
            } else {
                format!("k{k}")
            };
            body.push_str(&format!("{{\"id\": \"{key}\", \"v\": \"{i}-{k}\"}}\n"));
            if k % 7 == 0 {
                body.push_str(&format!("{{\"id\": \"k{k}\", \"v\": \"{i}-{k}-again\"}}\n"));
            }
        }
        body.push_str(&format!("{{\"id\": null, \"v\": \"null-{i}\"}}\n"));
        body.push_str(&format!("{{\"id\": \"  \", \"v\": \"blank-{i}\"}}\n"));
        expect_rows += 2;
        write(dir.path(), &format!("raw/o-{i:02}.json"), &body);
    }
    expect_rows += 40;
    let lake = lake(dir.path());
    let loc = Location::resolve("raw", Some(&lake), &Default::default()).unwrap();
    let options = TableOptions {
        latest_by: Some("id".into()),
        ..Default::default()
    };
    let mut answers = Vec::new();
    for distributed in [false, true] {
        let ctx = millrace_prep::context(&millrace_prep::EngineOptions {
            target_partitions: Some(3),
            ..Default::default()
        })
        .unwrap();
        let mut table = LakeTable::open("raw", &loc, None, None, &options)
            .await
            .unwrap();
        if distributed {
            table.report_to("_millrace/latest-test");
        }
        ctx.register_table("raw", Arc::new(table)).unwrap();
        let df = ctx.sql("SELECT id, v FROM raw ORDER BY v").await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let text = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(false)
            .to_string();
        assert_eq!(text.contains("LatestMergeExec"), distributed, "{text}");
        let batches = df.collect().await.unwrap();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, expect_rows);
        answers.push(
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].contains("| 6-7-again"), "{}", answers[0]);
    assert!(!answers[0].contains("| 5-"), "{}", answers[0]);
}
