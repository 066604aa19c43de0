//! Writes a small partitioned table into the folder given as the first argument (for reading
//! it back with pyiceberg or DuckDB by hand).

use std::collections::BTreeMap;

use millrace_tables::{Column, ColumnKind, TableSpec, TableWriter};

#[tokio::main]
async fn main() {
    let dir = std::env::args().nth(1).expect("a folder");
    let spec = TableSpec {
        namespace: "sales".into(),
        table: "orders".into(),
        columns: vec![
            Column {
                name: "event_time".into(),
                kind: ColumnKind::Timestamptz,
                required: true,
            },
            Column {
                name: "customer".into(),
                kind: ColumnKind::String,
                required: true,
            },
            Column {
                name: "amount".into(),
                kind: ColumnKind::Double,
                required: false,
            },
        ],
        hour_partition: Some("event_time".into()),
        compression: Default::default(),
    };
    let mut w = TableWriter::open(std::path::Path::new(&dir), spec)
        .await
        .unwrap();
    let rows: Vec<_> = (0..100)
        .map(|i| serde_json::json!({"event_time": 1_764_892_800_000i64 + i * 100_000, "customer": format!("c{i}"), "amount": i}))
        .collect();
    w.append(
        &rows,
        &BTreeMap::from([("shardId-000000000000".into(), "100".into())]),
    )
    .await
    .unwrap();
    println!("{}", w.table().metadata_location().unwrap_or_default());
}
