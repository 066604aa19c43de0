//! JSON records to Arrow (58) batches of a table's schema, grouped by the hour partition.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array_58::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array_58::{ArrayRef, RecordBatch};
use arrow_schema_58::SchemaRef;
use serde_json::{Map, Value};

use crate::{ColumnKind, Result, TableSpec};

/// Why a record does not fit the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RowError(pub String);

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// A `timestamptz` value in microseconds: epoch milliseconds, or an RFC 3339 string.
fn micros(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().map(|ms| ms * 1000),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_micros()),
        _ => None,
    }
}

fn fits(kind: ColumnKind, v: &Value) -> bool {
    match kind {
        ColumnKind::String => !v.is_object() && !v.is_array(),
        ColumnKind::Long => {
            v.as_i64().is_some() || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok())
        }
        ColumnKind::Double => {
            v.as_f64().is_some() || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok())
        }
        ColumnKind::Boolean => v.is_boolean(),
        ColumnKind::Timestamptz => micros(v).is_some(),
    }
}

fn check(spec: &TableSpec, row: &Map<String, Value>) -> Result<(), RowError> {
    for c in &spec.columns {
        match row.get(&c.name).filter(|v| !v.is_null()) {
            None if c.required => {
                return Err(RowError(format!("required column {} is missing", c.name)));
            }
            None => {}
            Some(v) if !fits(c.kind, v) => {
                return Err(RowError(format!(
                    "column {}: {v} is not a {:?}",
                    c.name, c.kind
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

pub(crate) type Groups<'a> = BTreeMap<Option<i32>, Vec<&'a Map<String, Value>>>;

/// The rows that fit, by partition hour (`None` without a partition), and the others.
pub(crate) fn group<'a>(
    spec: &TableSpec,
    partition: Option<&str>,
    rows: &'a [Value],
) -> (Groups<'a>, Vec<(usize, RowError)>) {
    let mut groups: Groups<'a> = BTreeMap::new();
    let mut rejected = Vec::new();
    for (i, v) in rows.iter().enumerate() {
        let Some(row) = v.as_object() else {
            rejected.push((i, RowError("the record is not a JSON object".into())));
            continue;
        };
        if let Err(e) = check(spec, row) {
            rejected.push((i, e));
            continue;
        }
        let hour = partition.map(|p| {
            let us = row.get(p).and_then(micros).unwrap_or(0);
            us.div_euclid(MICROS_PER_HOUR) as i32
        });
        groups.entry(hour).or_default().push(row);
    }
    (groups, rejected)
}

/// One batch of checked rows in `schema` (the table's, with Iceberg field ids).
pub(crate) fn batch(
    spec: &TableSpec,
    schema: SchemaRef,
    rows: &[&Map<String, Value>],
) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = spec
        .columns
        .iter()
        .zip(schema.fields())
        .map(|(c, field)| {
            let values = rows.iter().map(|r| r.get(&c.name).filter(|v| !v.is_null()));
            let array: ArrayRef = match c.kind {
                ColumnKind::String => {
                    let mut b = StringBuilder::new();
                    for v in values {
                        match v {
                            Some(Value::String(s)) => b.append_value(s),
                            Some(other) => b.append_value(other.to_string()),
                            None => b.append_null(),
                        }
                    }
                    Arc::new(b.finish())
                }
                ColumnKind::Long => {
                    let mut b = Int64Builder::new();
                    for v in values {
                        b.append_option(v.and_then(|v| {
                            v.as_i64()
                                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                        }));
                    }
                    Arc::new(b.finish())
                }
                ColumnKind::Double => {
                    let mut b = Float64Builder::new();
                    for v in values {
                        b.append_option(v.and_then(|v| {
                            v.as_f64()
                                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                        }));
                    }
                    Arc::new(b.finish())
                }
                ColumnKind::Boolean => {
                    let mut b = BooleanBuilder::new();
                    for v in values {
                        b.append_option(v.and_then(Value::as_bool));
                    }
                    Arc::new(b.finish())
                }
                ColumnKind::Timestamptz => {
                    let mut b = TimestampMicrosecondBuilder::new()
                        .with_data_type(field.data_type().clone());
                    for v in values {
                        b.append_option(v.and_then(micros));
                    }
                    Arc::new(b.finish())
                }
            };
            array
        })
        .collect();
    RecordBatch::try_new(schema, columns)
        .map_err(|e| crate::TableError::Schema(format!("building a batch: {e}")))
}
