//! A table written, reopened from its version hint, appended to again and read back with
//! iceberg's own scan.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use millrace_tables::{Column, ColumnKind, TableCompression, TableSpec, TableWriter};
use serde_json::json;

fn spec(compression: TableCompression) -> TableSpec {
    let col = |name: &str, kind, required| Column {
        name: name.into(),
        kind,
        required,
    };
    TableSpec {
        namespace: "sales".into(),
        table: "orders".into(),
        columns: vec![
            col("event_time", ColumnKind::Timestamptz, true),
            col("customer", ColumnKind::String, true),
            col("amount", ColumnKind::Double, false),
            col("items", ColumnKind::Long, false),
            col("churned", ColumnKind::Boolean, false),
        ],
        hour_partition: Some("event_time".into()),
        compression,
    }
}

async fn count(w: &TableWriter) -> usize {
    let batches: Vec<_> = w
        .table()
        .scan()
        .build()
        .unwrap()
        .to_arrow()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    batches.iter().map(|b| b.num_rows()).sum()
}

#[tokio::test]
async fn appends_are_snapshots_that_survive_a_reopen_with_their_marks() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TableWriter::open(dir.path(), spec(TableCompression::Zstd))
        .await
        .unwrap();
    assert!(w.committed().is_empty());
    let base = 1_764_892_800_000i64; // an hour boundary
    let rows: Vec<_> = (0..300)
        .map(|i| {
            json!({"event_time": base + i * 40_000, "customer": format!("c{i}"),
                   "amount": i as f64 * 1.5, "items": i % 7, "churned": i % 2 == 0})
        })
        .collect();
    let mut bad = rows.clone();
    bad.push(json!({"customer": "no time"}));
    bad.push(json!("not an object"));
    let rejected = w
        .append(
            &bad,
            &BTreeMap::from([("shardId-000000000000".into(), "42".into())]),
        )
        .await
        .unwrap();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(count(&w).await, 300);
    drop(w);

    let mut w = TableWriter::open(dir.path(), spec(TableCompression::Zstd))
        .await
        .unwrap();
    assert_eq!(w.committed()["shardId-000000000000"], "42");
    let more = vec![json!({"event_time": "2026-12-05T10:00:00Z", "customer": "late"})];
    w.append(
        &more,
        &BTreeMap::from([("shardId-000000000001".into(), "7".into())]),
    )
    .await
    .unwrap();
    assert_eq!(count(&w).await, 301);
    let marks = w.committed();
    assert_eq!(
        marks["shardId-000000000000"], "42",
        "earlier marks carry over"
    );
    assert_eq!(marks["shardId-000000000001"], "7");
    // 300 rows 40 s apart span 4 hours: one data file per hour partition, plus the late one.
    let files = walk(&dir.path().join("sales/orders/data"));
    assert!(files.len() >= 5, "{files:?}");
    assert!(
        dir.path()
            .join("sales/orders/metadata/version-hint.text")
            .exists()
    );
    assert_eq!(codecs(&files), ["ZSTD(ZstdLevel(1))"]);
}

#[tokio::test]
async fn data_files_take_the_compression_asked_for() {
    for (compression, codec) in [
        (TableCompression::None, "UNCOMPRESSED"),
        (TableCompression::Snappy, "SNAPPY"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut w = TableWriter::open(dir.path(), spec(compression))
            .await
            .unwrap();
        let rows = [json!({"event_time": 1_764_892_800_000i64, "customer": "c"})];
        w.append(&rows, &BTreeMap::new()).await.unwrap();
        assert_eq!(count(&w).await, 1);
        let files = walk(&dir.path().join("sales/orders/data"));
        assert_eq!(codecs(&files), [codec], "{compression:?}");
    }
}

/// The distinct column-chunk codecs of Parquet `files`.
fn codecs(files: &[std::path::PathBuf]) -> Vec<String> {
    use parquet_58::file::reader::{FileReader, SerializedFileReader};
    let mut out = std::collections::BTreeSet::new();
    for f in files {
        let reader = SerializedFileReader::new(std::fs::File::open(f).unwrap()).unwrap();
        for rg in reader.metadata().row_groups() {
            for c in rg.columns() {
                out.insert(format!("{:?}", c.compression()));
            }
        }
    }
    out.into_iter().collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out
}
