//! Golden results on the shared Telco CSV and the real Firehose object: row counts, column
//! types, NULL counts and sums, each checked against values computed here independently (csv
//! and serde_json parsing, not DataFusion).

use crate::common;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use common::{json_values, query, shared};
use datafusion::datasource::TableProvider;
use millrace_prep::{InputFormat, TableOptions};

fn one_row_f64(batches: &[arrow::array::RecordBatch], col: usize) -> Option<f64> {
    let a = batches[0].column(col);
    if a.is_null(0) {
        return None;
    }
    Some(match a.data_type() {
        DataType::Float64 => a.as_primitive::<Float64Type>().value(0),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(0) as f64,
        other => panic!("unexpected type {other}"),
    })
}

#[tokio::test]
async fn shared_csv_counts_types_nulls_and_sums() {
    let path = shared("telco-customer-churn.csv");
    // Independent truth from the csv crate.
    let mut r = csv::Reader::from_path(&path).unwrap();
    let (mut rows, mut tenure, mut monthly, mut total, mut blank_total, mut churn) =
        (0u64, 0i64, 0f64, 0f64, 0u64, 0u64);
    for rec in r.records() {
        let rec = rec.unwrap();
        rows += 1;
        tenure += rec[5].parse::<i64>().unwrap();
        monthly += rec[18].parse::<f64>().unwrap();
        match rec[19].trim() {
            "" => blank_total += 1,
            v => total += v.parse::<f64>().unwrap(),
        }
        churn += (&rec[20] == "Yes") as u64;
    }
    assert_eq!(rows, 7043);

    let spec = path.to_str().unwrap();
    let (b, tables) = query(
        None,
        &[("churn", spec, Some(InputFormat::Csv))],
        &TableOptions::default(),
        "SELECT count(*), sum(tenure), sum(\"MonthlyCharges\"), \
                sum(TRY_CAST(NULLIF(TRIM(\"TotalCharges\"), '') AS DOUBLE)), \
                count(*) - count(NULLIF(TRIM(\"TotalCharges\"), '')), \
                sum(CASE WHEN \"Churn\" = 'Yes' THEN 1 ELSE 0 END) FROM churn",
    )
    .await
    .unwrap();
    // Inferred types: integers, doubles, and strings where blanks occur.
    let schema = tables[0].schema();
    assert_eq!(
        schema.field_with_name("SeniorCitizen").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(
        schema.field_with_name("tenure").unwrap().data_type(),
        &DataType::Int64
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
        &DataType::Utf8
    );
    assert_eq!(schema.fields().len(), 21);
    assert_eq!(one_row_f64(&b, 0), Some(rows as f64));
    assert_eq!(one_row_f64(&b, 1), Some(tenure as f64));
    assert!((one_row_f64(&b, 2).unwrap() - monthly).abs() < 1e-6);
    assert!((one_row_f64(&b, 3).unwrap() - total).abs() < 1e-3);
    assert_eq!(one_row_f64(&b, 4), Some(blank_total as f64));
    assert_eq!(blank_total, 11);
    assert_eq!(one_row_f64(&b, 5), Some(churn as f64));
}

#[tokio::test]
async fn firehose_object_counts_types_nulls_and_sums() {
    let path = shared("firehose-s3-object-example.json");
    let bytes = std::fs::read(&path).unwrap();
    let values = json_values(&bytes);
    assert_eq!(values.len(), 144);
    let s = |m: &serde_json::Map<String, serde_json::Value>, k: &str| {
        m[k].as_str().unwrap().trim().to_owned()
    };
    let tenure: i64 = values
        .iter()
        .map(|m| s(m, "tenure").parse::<i64>().unwrap())
        .sum();
    let monthly: f64 = values
        .iter()
        .map(|m| s(m, "MonthlyCharges").parse::<f64>().unwrap())
        .sum();
    let total_nulls = values
        .iter()
        .filter(|m| s(m, "TotalCharges").is_empty())
        .count();
    let total: f64 = values
        .iter()
        .filter_map(|m| s(m, "TotalCharges").parse::<f64>().ok())
        .sum();
    let seniors: i64 = values
        .iter()
        .map(|m| s(m, "SeniorCitizen").parse::<i64>().unwrap())
        .sum();

    for format in [None, Some(InputFormat::Concat), Some(InputFormat::Json)] {
        let (b, tables) = query(
            None,
            &[("fh", path.to_str().unwrap(), format)],
            &TableOptions::default(),
            "SELECT count(*), sum(CAST(tenure AS BIGINT)), sum(CAST(\"MonthlyCharges\" AS DOUBLE)), \
                    count(*) - count(TRY_CAST(NULLIF(TRIM(\"TotalCharges\"), '') AS DOUBLE)), \
                    sum(TRY_CAST(NULLIF(TRIM(\"TotalCharges\"), '') AS DOUBLE)), \
                    sum(CAST(\"SeniorCitizen\" AS BIGINT)) FROM fh",
        )
        .await
        .unwrap();
        let schema = tables[0].schema();
        assert_eq!(schema.fields().len(), 21, "{format:?}");
        assert!(
            schema
                .fields()
                .iter()
                .all(|f| f.data_type() == &DataType::Utf8)
        );
        assert_eq!(one_row_f64(&b, 0), Some(144.0));
        assert_eq!(one_row_f64(&b, 1), Some(tenure as f64));
        assert!((one_row_f64(&b, 2).unwrap() - monthly).abs() < 1e-6);
        assert_eq!(one_row_f64(&b, 3), Some(total_nulls as f64));
        assert!((one_row_f64(&b, 4).unwrap() - total).abs() < 1e-3);
        assert_eq!(one_row_f64(&b, 5), Some(seniors as f64));
        assert_eq!(tables[0].progress().bad_records(), vec![]);
    }
}
