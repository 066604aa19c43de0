//! Firehose's concatenated JSON through a real table: objects crossing decoder batch
//! boundaries, unicode, nested objects, compression, and a truncated last object that is
//! reported by object and offset while the good rows survive.

use crate::common;

use std::io::Write;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use common::{lake, query};
use datafusion::datasource::TableProvider;
use millrace_prep::{InputFormat, LakeTable, Location, OnBadRecord, TableOptions};

fn record(i: usize) -> String {
    format!(
        r#"{{"id":"c-{i}","name":"Zoë 東京 🚀 \"q\" \\ {i}","n":{i},"nested":{{"city":"Kraków","tags":["a","b"],"deep":{{"x":{i}}}}}}}"#
    )
}

fn strings(b: &[arrow::array::RecordBatch], col: usize) -> Vec<String> {
    b.iter()
        .flat_map(|b| {
            let a = b.column(col).as_string::<i32>();
            (0..a.len())
                .map(|i| a.value(i).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn concatenated_objects_unicode_nested_and_batch_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let body: String = (0..n).map(record).collect();
    std::fs::create_dir_all(dir.path().join("raw/a")).unwrap();
    std::fs::write(dir.path().join("raw/a/obj-1"), &body).unwrap();
    // The same records gzip-compressed and zstd-compressed, under other names.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body.as_bytes()).unwrap();
    std::fs::write(dir.path().join("raw/a/obj-2.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        dir.path().join("raw/a/obj-3"),
        zstd::encode_all(body.as_bytes(), 3).unwrap(),
    )
    .unwrap();
    let lake = lake(dir.path());
    let (b, tables) = query(
        Some(&lake),
        &[("t", "raw/a", Some(InputFormat::Concat))],
        &TableOptions {
            source_columns: true,
            ..Default::default()
        },
        "SELECT _object, count(*), sum(n), sum(nested['deep']['x']), min(name), max(_row), \
                count(DISTINCT id) FROM t GROUP BY _object ORDER BY _object",
    )
    .await
    .unwrap();
    let schema = tables[0].schema();
    assert!(matches!(
        schema.field_with_name("nested").unwrap().data_type(),
        DataType::Struct(_)
    ));
    let want_sum = (0..n as i64).sum::<i64>();
    assert_eq!(
        strings(&b, 0),
        ["raw/a/obj-1", "raw/a/obj-2.gz", "raw/a/obj-3"]
    );
    for row in 0..3 {
        assert_eq!(
            b[0].column(1).as_primitive::<Int64Type>().value(row),
            n as i64
        );
        assert_eq!(
            b[0].column(2).as_primitive::<Int64Type>().value(row),
            want_sum
        );
        assert_eq!(
            b[0].column(3).as_primitive::<Int64Type>().value(row),
            want_sum
        );
        assert_eq!(
            b[0].column(5).as_primitive::<Int64Type>().value(row),
            n as i64 - 1
        );
        assert_eq!(
            b[0].column(6).as_primitive::<Int64Type>().value(row),
            n as i64
        );
    }
    assert_eq!(strings(&b, 4)[0], "Zoë 東京 🚀 \"q\" \\ 0");
    assert!(tables[0].progress().bad_records().is_empty());
}

#[tokio::test]
async fn every_split_point_of_a_small_object_decodes_the_same() {
    // Batch sizes 1..=4 force the decoder to stop and resume inside the object at every
    // record boundary; escapes inside strings must never be taken for boundaries.
    let body: String = (0..7).map(record).collect();
    let schema =
        std::sync::Arc::new(millrace_prep::json::infer_schema(&[body.as_bytes()], 100).unwrap());
    for batch in 1..=4 {
        let d = millrace_prep::json::decode(
            "o",
            body.as_bytes(),
            millrace_prep::format::JsonLayout::Concatenated,
            &schema,
            batch,
        )
        .unwrap();
        let rows: usize = d.batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 7, "batch size {batch}");
        assert!(d.bad.is_empty());
    }
}

#[tokio::test]
async fn truncated_last_object_is_reported_and_good_rows_kept() {
    let dir = tempfile::tempdir().unwrap();
    let good: String = (0..5).map(record).collect();
    let last = record(5);
    let cut = &last[..last.len() / 2];
    std::fs::create_dir_all(dir.path().join("raw")).unwrap();
    std::fs::write(dir.path().join("raw/obj"), format!("{good}{cut}")).unwrap();
    std::fs::write(dir.path().join("raw/ok"), record(9)).unwrap();
    let lake = lake(dir.path());
    let (b, tables) = query(
        Some(&lake),
        &[("t", "raw", Some(InputFormat::Concat))],
        &TableOptions::default(),
        "SELECT count(*), sum(n) FROM t",
    )
    .await
    .unwrap();
    assert_eq!(b[0].column(0).as_primitive::<Int64Type>().value(0), 6);
    assert_eq!(b[0].column(1).as_primitive::<Int64Type>().value(0), 10 + 9);
    let bad = tables[0].progress().bad_records();
    assert_eq!(bad.len(), 1);
    assert!(bad[0].object.ends_with("raw/obj"), "{}", bad[0].object);
    assert_eq!(bad[0].offset, good.len() as u64);
    assert!(bad[0].error.contains("truncated"), "{}", bad[0].error);

    // Strict tables fail instead, naming the object and the offset.
    let e = query(
        Some(&lake),
        &[("t", "raw", Some(InputFormat::Concat))],
        &TableOptions {
            on_bad_record: OnBadRecord::Fail,
            ..Default::default()
        },
        "SELECT count(*) FROM t",
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("raw/obj") && e.contains(&good.len().to_string()),
        "{e}"
    );
}

#[tokio::test]
async fn ndjson_with_a_bad_line_and_hive_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("events/year=2026/month=11");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("a.json"),
        "{\"id\":\"a\",\"n\":1}\nnot json\n{\"id\":\"b\",\"n\":\"oops\"}\n{\"id\":\"c\",\"n\":3}\n",
    )
    .unwrap();
    let q = dir.path().join("events/year=2026/month=12");
    std::fs::create_dir_all(&q).unwrap();
    std::fs::write(q.join("b.json"), "{\"id\":\"d\",\"n\":4}\n").unwrap();
    std::fs::write(dir.path().join("events/_SUCCESS"), "").unwrap();
    std::fs::write(q.join(".b.json.crc"), "x").unwrap();
    let spec = dir.path().join("events");
    let (b, tables) = query(
        None,
        &[("e", spec.to_str().unwrap(), None)],
        &TableOptions::default(),
        "SELECT month, count(*) AS c, sum(n) AS s FROM e WHERE year = '2026' GROUP BY month ORDER BY month",
    )
    .await
    .unwrap();
    assert_eq!(strings(&b, 0), ["11", "12"]);
    assert_eq!(b[0].column(1).as_primitive::<Int64Type>().values(), &[2, 1]);
    assert_eq!(b[0].column(2).as_primitive::<Int64Type>().values(), &[4, 4]);
    let bad = tables[0].progress().bad_records();
    assert_eq!(bad.iter().map(|b| b.offset).collect::<Vec<_>>(), [17, 26]);
}

#[tokio::test]
async fn missing_paths_and_empty_folders_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let e = Location::resolve(missing.to_str().unwrap(), None, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let loc = Location::resolve(
        dir.path().join("empty").to_str().unwrap(),
        None,
        &Default::default(),
    )
    .unwrap();
    let e = LakeTable::open("t", &loc, None, None, &TableOptions::default())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("table t") && e.to_string().contains("no data objects"),
        "{e}"
    );
}
