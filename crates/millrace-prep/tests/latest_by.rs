//! `latest_by`: a table read as current state, one record per key, the last to arrive. Checked
//! against a model written here (walk the objects in key order, overwrite by key) in every
//! input format, with keys repeated within an object, across objects and across the batches of
//! one object, padded with spaces, missing and blank; and against the same result computed in
//! SQL with an anti join over `_seq`.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use common::{lake, query};
use millrace_prep::{InputFormat, TableOptions};

/// One record: its key (None: the field is missing or null) and a value unique to it.
type Record = (Option<String>, i64);

/// Objects in arrival order. Keys come from a small pool so most repeat; some are padded with
/// spaces (the same customer), some blank, some missing. Object sizes vary, and a few objects
/// are larger than a batch (8,192 rows), so a key can repeat across one object's batches.
fn objects() -> Vec<Vec<Record>> {
    let mut v = 0i64;
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..24)
        .map(|o| {
            let rows = if o % 7 == 3 {
                9_000
            } else {
                40 + (o * 37) % 300
            };
            (0..rows)
                .map(|_| {
                    v += 1;
                    let r = next();
                    let key = match r % 50 {
                        0 => None,
                        1 => Some("   ".to_owned()),
                        2 => Some(format!(" c{} ", (r >> 8) % 4000)),
                        _ => Some(format!("c{}", (r >> 8) % 4000)),
                    };
                    (key, v)
                })
                .collect()
        })
        .collect()
}

/// What the table should give, computed directly: the last record of each trimmed key, and
/// every record without one.
fn expected(objects: &[Vec<Record>]) -> Vec<Record> {
    let mut latest: BTreeMap<String, Record> = BTreeMap::new();
    let mut keyless = Vec::new();
    for r in objects.iter().flatten() {
        match r.0.as_deref().map(|k| k.trim_matches(' ')) {
            Some(k) if !k.is_empty() => {
                latest.insert(k.to_owned(), r.clone());
            }
            _ => keyless.push(r.clone()),
        }
    }
    let mut out: Vec<Record> = latest.into_values().chain(keyless).collect();
    out.sort_by_key(|r| r.1);
    out
}

fn json_line((key, v): &Record) -> String {
    match key {
        Some(k) => format!("{{\"k\":{},\"v\":{v},\"pad\":\"x\"}}", serde_json::json!(k)),
        None if v % 2 == 0 => format!("{{\"v\":{v},\"pad\":\"x\"}}"),
        None => format!("{{\"k\":null,\"v\":{v},\"pad\":\"x\"}}"),
    }
}

fn write_lake(dir: &Path, format: InputFormat, objects: &[Vec<Record>]) {
    let folder = dir.join("raw/t");
    for (o, rows) in objects.iter().enumerate() {
        // Two hour folders, so key order crosses a folder boundary.
        let path = folder.join(format!("2026/11/26/{:02}/obj-{o:03}", 10 + o / 12));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let body: Vec<u8> = match format {
            InputFormat::Ndjson => rows
                .iter()
                .map(|r| json_line(r) + "\n")
                .collect::<String>()
                .into_bytes(),
            InputFormat::Concat => rows.iter().map(json_line).collect::<String>().into_bytes(),
            InputFormat::Csv => {
                let mut s = String::from("k,v,pad\n");
                for (k, v) in rows {
                    s += &format!("\"{}\",{v},x\n", k.as_deref().unwrap_or(""));
                }
                s.into_bytes()
            }
            InputFormat::Parquet => {
                let schema = Arc::new(Schema::new(vec![
                    Field::new("k", DataType::Utf8, true),
                    Field::new("v", DataType::Int64, false),
                ]));
                let batch = RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(StringArray::from(
                            rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
                        )),
                        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
                    ],
                )
                .unwrap();
                let mut buf = Vec::new();
                let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None).unwrap();
                w.write(&batch).unwrap();
                w.close().unwrap();
                buf
            }
            InputFormat::Json => unreachable!(),
        };
        std::fs::write(path, body).unwrap();
    }
}

fn rows(batches: &[RecordBatch]) -> Vec<Record> {
    let mut out = Vec::new();
    for b in batches {
        let k = arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
        let k = k.as_string::<i32>();
        let v = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push(((!k.is_null(i)).then(|| k.value(i).to_owned()), v.value(i)));
        }
    }
    out.sort_by_key(|r| r.1);
    out
}

/// Keys as the table gives them: blank and missing keys are both "no key" to the model, and
/// CSV cannot tell an empty field from a missing one.
fn normalise(rows: Vec<Record>) -> Vec<(Option<String>, i64)> {
    rows.into_iter()
        .map(|(k, v)| (k.filter(|k| !k.trim().is_empty()), v))
        .collect()
}

async fn latest(dir: &Path, format: InputFormat, sql: &str) -> Vec<RecordBatch> {
    let lake = lake(dir);
    let options = TableOptions {
        latest_by: Some("k".into()),
        ..Default::default()
    };
    query(Some(&lake), &[("t", "raw/t", Some(format))], &options, sql)
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn every_format_keeps_the_last_record_of_each_key() {
    let objects = objects();
    let want = normalise(expected(&objects));
    // The model itself must have something to do: repeats within and across objects.
    let total: usize = objects.iter().map(Vec::len).sum();
    assert!(want.len() < total / 4, "{} of {total}", want.len());
    for format in [
        InputFormat::Ndjson,
        InputFormat::Concat,
        InputFormat::Csv,
        InputFormat::Parquet,
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_lake(dir.path(), format, &objects);
        let got = rows(&latest(dir.path(), format, "SELECT k, v FROM t").await);
        assert_eq!(normalise(got), want, "{format:?}");
    }
}

#[tokio::test]
async fn it_agrees_with_the_anti_join_and_reads_the_key_it_was_not_asked_for() {
    let objects = objects();
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path(), InputFormat::Ndjson, &objects);
    // The key column is not projected: the scan must still read it to drop stale rows.
    let only_v = latest(
        dir.path(),
        InputFormat::Ndjson,
        "SELECT v, v + 1 AS w FROM t",
    )
    .await;
    let mut got: Vec<i64> = only_v
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    got.sort_unstable();
    let lake = lake(dir.path());
    let sql = "CREATE VIEW r AS SELECT TRIM(k) AS k, v, _seq FROM t WHERE TRIM(k) <> ''; \
               SELECT r.v FROM (SELECT k, _seq FROM r) later RIGHT ANTI JOIN r \
               ON later.k = r.k AND later._seq > r._seq";
    let options = TableOptions {
        source_columns: true,
        ..Default::default()
    };
    let (b, _) = query(
        Some(&lake),
        &[("t", "raw/t", Some(InputFormat::Ndjson))],
        &options,
        sql,
    )
    .await
    .unwrap();
    let mut anti: Vec<i64> = b
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    anti.sort_unstable();
    let all: Vec<Record> = expected(&objects);
    let keyed: Vec<i64> = all
        .iter()
        .filter(|r| r.0.as_deref().is_some_and(|k| !k.trim().is_empty()))
        .map(|r| r.1)
        .collect();
    assert_eq!(anti, keyed);
    assert!(keyed.len() < all.len());
    assert_eq!(got, all.iter().map(|r| r.1).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_unknown_key_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_lake(dir.path(), InputFormat::Ndjson, &objects()[..2]);
    let lake = lake(dir.path());
    let options = TableOptions {
        latest_by: Some("customer".into()),
        ..Default::default()
    };
    let e = query(
        Some(&lake),
        &[("t", "raw/t", Some(InputFormat::Ndjson))],
        &options,
        "SELECT * FROM t",
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("latest_by") && e.contains("\"customer\"") && e.contains("k, v, pad"),
        "{e}"
    );
}
