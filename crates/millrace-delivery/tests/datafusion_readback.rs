//! The lake as a query engine sees it: Parquet and NDJSON objects written by delivery, read
//! back with Apache DataFusion, give the same rows as the input.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type};
use bytes::Bytes;
use datafusion::prelude::{JsonReadOptions, ParquetReadOptions, SessionContext};
use millrace_delivery::config::{ColumnType, SchemaColumn};
use millrace_delivery::{Compression, Delivery, DeliveryConfig, Format, RunMode};
use millrace_io::EmbeddedSource;
use millrace_lake::{Lake, S3Options};
use millrace_stream::{PutInput, Store, StoreOptions, StreamMode};

const CSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/telco-customer-churn.csv"
);

/// Rows of the shared CSV as maps of strings, the way the producer sends them.
fn rows() -> Vec<serde_json::Map<String, serde_json::Value>> {
    let mut r = csv::Reader::from_path(CSV).expect("shared CSV beside the repo");
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|row| {
            let row = row.unwrap();
            headers
                .iter()
                .zip(row.iter())
                .map(|(h, v)| (h.to_owned(), serde_json::Value::String(v.to_owned())))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn datafusion_reads_what_delivery_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("data"), StoreOptions::default()).unwrap());
    let stream = store
        .create(
            "churn",
            StreamMode::Provisioned,
            Some(4),
            24,
            Default::default(),
        )
        .unwrap();
    let rows = rows();
    let inputs = rows
        .iter()
        .map(|r| PutInput {
            partition_key: r["customerID"].as_str().unwrap().to_owned(),
            explicit_hash_key: None,
            data: Bytes::from(serde_json::to_vec(r).unwrap()),
        })
        .collect();
    assert!(stream.put(inputs).await.iter().all(|r| r.is_ok()));

    let lake_dir = dir.path().join("lake");
    let lake = Lake::open(lake_dir.to_str().unwrap(), &S3Options::default()).unwrap();
    let mut parquet = DeliveryConfig::new("pq", "churn");
    parquet.prefix = Some("curated/churn/".into());
    parquet.format = Format::Parquet;
    parquet.compression = Compression::Zstd;
    parquet.schema = [
        ("customerID", ColumnType::String),
        ("Contract", ColumnType::String),
        ("tenure", ColumnType::Int64),
        ("MonthlyCharges", ColumnType::Float64),
        ("TotalCharges", ColumnType::Float64),
        ("Churn", ColumnType::String),
    ]
    .into_iter()
    .map(|(n, k)| SchemaColumn {
        name: n.into(),
        kind: k,
    })
    .collect();
    let mut ndjson = DeliveryConfig::new("nd", "churn");
    ndjson.prefix = Some("raw/churn/".into());
    for cfg in [parquet, ndjson] {
        let d = Arc::new(
            Delivery::new(
                cfg,
                lake.clone(),
                Arc::new(EmbeddedSource::new(stream.clone())),
                &dir.path().join("state"),
            )
            .unwrap(),
        );
        let (_tx, rx) = tokio::sync::watch::channel(false);
        d.run(RunMode::UntilCaughtUp, rx).await.unwrap();
    }

    // Expected figures, computed from the CSV independently of millrace.
    let tenure: i64 = rows
        .iter()
        .map(|r| r["tenure"].as_str().unwrap().parse::<i64>().unwrap())
        .sum();
    let monthly: f64 = rows
        .iter()
        .map(|r| {
            r["MonthlyCharges"]
                .as_str()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        })
        .sum();
    let blank_total = rows
        .iter()
        .filter(|r| r["TotalCharges"].as_str().unwrap().trim().is_empty())
        .count();
    let mut contracts: BTreeMap<String, i64> = BTreeMap::new();
    for r in &rows {
        *contracts
            .entry(r["Contract"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }

    let ctx = SessionContext::new();
    ctx.register_parquet(
        "churn",
        lake_dir.join("curated/churn/").to_str().unwrap(),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let batches = ctx
        .sql(
            "SELECT count(*) AS n, count(DISTINCT \"customerID\") AS ids, sum(tenure) AS tenure, \
             sum(\"MonthlyCharges\") AS monthly, count(*) - count(\"TotalCharges\") AS null_total \
             FROM churn",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let b = &batches[0];
    assert_eq!(
        b.column(0).as_primitive::<Int64Type>().value(0),
        rows.len() as i64
    );
    assert_eq!(
        b.column(1).as_primitive::<Int64Type>().value(0),
        rows.len() as i64
    );
    assert_eq!(b.column(2).as_primitive::<Int64Type>().value(0), tenure);
    let got_monthly = b.column(3).as_primitive::<Float64Type>().value(0);
    assert!(
        (got_monthly - monthly).abs() < 1e-6,
        "{got_monthly} vs {monthly}"
    );
    assert_eq!(
        b.column(4).as_primitive::<Int64Type>().value(0),
        blank_total as i64
    );
    assert_eq!(blank_total, 11);

    let by_contract = ctx
        .sql("SELECT \"Contract\", count(*) FROM churn GROUP BY \"Contract\" ORDER BY \"Contract\"")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut got = BTreeMap::new();
    for b in &by_contract {
        let names = b
            .column(0)
            .as_string_view_opt()
            .map(|a| {
                (0..a.len())
                    .map(|i| a.value(i).to_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|| {
                let a = b.column(0).as_string::<i32>();
                (0..a.len()).map(|i| a.value(i).to_owned()).collect()
            });
        let counts = b.column(1).as_primitive::<Int64Type>();
        for (i, name) in names.into_iter().enumerate() {
            got.insert(name, counts.value(i));
        }
    }
    assert_eq!(got, contracts);

    // The NDJSON objects: every value stays a string, as the producer sent it.
    ctx.register_json(
        "raw",
        lake_dir.join("raw/churn/").to_str().unwrap(),
        JsonReadOptions::default(),
    )
    .await
    .unwrap();
    let raw = ctx
        .sql(
            "SELECT count(*), count(DISTINCT \"customerID\"), sum(CAST(tenure AS BIGINT)) FROM raw",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        raw[0].column(0).as_primitive::<Int64Type>().value(0),
        rows.len() as i64
    );
    assert_eq!(
        raw[0].column(1).as_primitive::<Int64Type>().value(0),
        rows.len() as i64
    );
    assert_eq!(
        raw[0].column(2).as_primitive::<Int64Type>().value(0),
        tenure
    );
    assert!(!raw[0].column(0).is_null(0));
}
