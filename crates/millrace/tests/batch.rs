//! Batch transform as a user runs it: `millrace predict` over a CSV file, a lake prefix of
//! NDJSON parts and a folder of Parquet parts, in chunks of any size, to a file or a lake
//! folder with a manifest. Every way of reading the same rows must give the same bytes out;
//! a failure must leave nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

fn millrace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_millrace"))
}

fn telco() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/telco-customer-churn.csv")
}

/// A churn model trained once for every test here (quick mode, 2 folds: the fastest build),
/// in Cargo's scratch folder for integration tests.
fn model() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("batch-model");
        let _ = std::fs::remove_dir_all(&dir);
        let out = millrace()
            .arg("--data-dir")
            .arg(&dir)
            .args([
                "train", "--target", "Churn", "--name", "churn", "--folds", "2",
            ])
            .arg("--data")
            .arg(telco())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = dir.join("lake/models/churn/v1/model.json");
        assert!(file.is_file());
        file
    })
}

/// `millrace --data-dir DATA predict --model MODEL --input IN --output OUT EXTRA...`.
fn predict(data: &Path, input: &str, output: &str, extra: &[&str]) -> Output {
    millrace()
        .arg("--data-dir")
        .arg(data)
        .arg("predict")
        .arg("--model")
        .arg(model())
        .args(["--input", input, "--output", output])
        .args(extra)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    err
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The Telco file as header and rows of fields.
fn telco_rows() -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(telco()).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// Splits the Telco rows into NDJSON objects (every value a string, as producers send them;
/// an empty field left out) under `dir`, in nested hour folders, `per` rows each.
fn write_ndjson_parts(dir: &Path, per: usize) -> usize {
    let (header, rows) = telco_rows();
    let mut n = 0;
    for (i, chunk) in rows.chunks(per).enumerate() {
        let folder = dir.join(format!("2026/11/25/{:02}", i / 2));
        std::fs::create_dir_all(&folder).unwrap();
        let mut text = String::new();
        for r in chunk {
            let obj: serde_json::Map<String, serde_json::Value> = header
                .iter()
                .zip(r)
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            text.push_str(&serde_json::to_string(&obj).unwrap());
            text.push('\n');
        }
        std::fs::write(folder.join(format!("churn-{i:04}.ndjson")), text).unwrap();
        n += 1;
    }
    n
}

/// Splits the Telco rows into Parquet files with typed numeric columns (tenure as Int64,
/// the charges as Float64; a blank TotalCharges as NULL), the rest as text.
fn write_parquet_parts(dir: &Path, per: usize) {
    let (header, rows) = telco_rows();
    std::fs::create_dir_all(dir).unwrap();
    let fields: Vec<Field> = header
        .iter()
        .map(|h| match h.as_str() {
            "tenure" => Field::new(h, DataType::Int64, true),
            "MonthlyCharges" | "TotalCharges" => Field::new(h, DataType::Float64, true),
            _ => Field::new(h, DataType::Utf8, true),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    for (i, chunk) in rows.chunks(per).enumerate() {
        let cols: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(c, f)| -> ArrayRef {
                let vals = chunk.iter().map(|r| r[c].trim());
                match f.data_type() {
                    DataType::Int64 => {
                        Arc::new(Int64Array::from_iter(vals.map(|v| v.parse().ok())))
                    }
                    DataType::Float64 => {
                        Arc::new(Float64Array::from_iter(vals.map(|v| v.parse().ok())))
                    }
                    _ => Arc::new(StringArray::from_iter(
                        chunk
                            .iter()
                            .map(|r| (!r[c].is_empty()).then(|| r[c].clone())),
                    )),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let file = std::fs::File::create(dir.join(format!("part-{i:03}.parquet"))).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }
}

#[test]
fn a_file_a_lake_prefix_of_parts_and_a_parquet_folder_score_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let whole = dir.path().join("whole.csv");
    ok(&predict(&data, path(&telco()), path(&whole), &[]));
    let text = std::fs::read_to_string(&whole).unwrap();
    assert_eq!(
        text.lines().next(),
        Some("customerID,predicted_label,probability,warnings,error")
    );
    assert_eq!(text.lines().count(), 7044);

    // The same rows as NDJSON objects under a prefix of the data dir's lake, as delivery
    // writes them: named by the prefix alone.
    let parts = write_ndjson_parts(&data.join("lake/incoming/churn"), 1500);
    assert_eq!(parts, 5);
    let from_lake = dir.path().join("from-lake.csv");
    let err = ok(&predict(&data, "incoming/churn", path(&from_lake), &[]));
    assert!(err.contains("scored 7043 rows with churn v1"), "{err}");
    assert_eq!(std::fs::read_to_string(&from_lake).unwrap(), text);

    // Parquet with typed numbers: the model reads 58 as it reads "58".
    let pq = dir.path().join("parquet-in");
    write_parquet_parts(&pq, 2000);
    let from_pq = dir.path().join("from-parquet.csv");
    ok(&predict(&data, path(&pq), path(&from_pq), &[]));
    assert_eq!(std::fs::read_to_string(&from_pq).unwrap(), text);
}

#[test]
fn any_chunk_size_and_thread_count_gives_the_bytes_of_one_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let one = dir.path().join("one.csv");
    ok(&predict(
        &data,
        path(&telco()),
        path(&one),
        &["--chunk-rows", "100000"],
    ));
    let expected = std::fs::read(&one).unwrap();
    for (chunk, threads) in [("1000", "1"), ("777", "3"), ("1", "2")] {
        let out = dir.path().join(format!("c{chunk}.csv"));
        ok(&predict(
            &data,
            path(&telco()),
            path(&out),
            &["--chunk-rows", chunk, "--threads", threads],
        ));
        assert!(
            std::fs::read(&out).unwrap() == expected,
            "--chunk-rows {chunk}"
        );
    }
    // Through DataFusion too, with chunks that straddle its batches and the objects.
    write_ndjson_parts(&data.join("lake/in"), 2000);
    let out = dir.path().join("lake-chunks.csv");
    ok(&predict(&data, "in", path(&out), &["--chunk-rows", "3001"]));
    assert!(std::fs::read(&out).unwrap() == expected);
    // Parquet and NDJSON files hold the same rows.
    let pq = dir.path().join("one.parquet");
    ok(&predict(
        &data,
        path(&telco()),
        path(&pq),
        &["--chunk-rows", "1000"],
    ));
    let out = millrace()
        .args(["query", "--format", "csv", "--table"])
        .arg(format!("p={}", pq.display()))
        .arg("SELECT * FROM p")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        out.stdout == expected,
        "the Parquet file reads back as the CSV"
    );
}

#[test]
fn a_folder_output_gets_parts_and_a_manifest_that_query_reads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("scored.csv");
    ok(&predict(&data, path(&telco()), path(&file), &[]));
    // A relative name that does not exist here is a prefix of the data dir's lake.
    let err = ok(&predict(
        &data,
        path(&telco()),
        "scored/churn/",
        &["--part-rows", "3000", "--chunk-rows", "1000"],
    ));
    let folder = data.join("lake/scored/churn");
    assert!(
        err.contains(&format!("→ {}", folder.canonicalize().unwrap().display())),
        "{err}"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(m["rows"], 7043);
    let files = m["files"].as_array().unwrap();
    let rows: Vec<u64> = files.iter().map(|f| f["rows"].as_u64().unwrap()).collect();
    assert_eq!(rows, [3000, 3000, 1043]);
    for f in files {
        let name = f["key"].as_str().unwrap();
        assert!(
            name.starts_with("part-") && name.ends_with(".parquet"),
            "{name}"
        );
        let size = std::fs::metadata(folder.join(name)).unwrap().len();
        assert_eq!(f["bytes"].as_u64(), Some(size));
    }
    let t = &m["transform"];
    assert_eq!(
        (t["model"].as_str(), t["model_version"].as_u64()),
        (Some("churn"), Some(1))
    );
    assert!(t["model_path"].as_str().unwrap().ends_with("model.json"));
    assert_eq!(t["rows"], 7043);
    assert!(t["rows_per_second"].as_f64().unwrap() > 0.0);
    assert!(t["started_at_ms"].as_i64() <= t["finished_at_ms"].as_i64());
    let input = &m["inputs"]["input"][0];
    assert!(
        input["object"]
            .as_str()
            .unwrap()
            .ends_with("telco-customer-churn.csv")
    );
    assert_eq!(
        input["size"].as_u64(),
        Some(std::fs::metadata(telco()).unwrap().len())
    );
    assert!(folder.join("_manifests").is_dir());

    // `millrace query` reads the folder through its manifest: the rows of the file output.
    let query = |table: &str| {
        let out = millrace()
            .arg("--data-dir")
            .arg(&data)
            .args(["query", "--format", "csv", "--table", table])
            .arg(
                "SELECT customerID, predicted_label, probability FROM p \
                 ORDER BY customerID",
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let from_file = query(&format!("p={}", file.display()));
    assert_eq!(query("p=scored/churn"), from_file);

    // Written again as NDJSON: the new parts replace the old once its manifest is in.
    ok(&predict(
        &data,
        path(&telco()),
        "scored/churn",
        &["--format", "ndjson"],
    ));
    let names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("part-"))
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with(".ndjson"));
    let m2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(m2["previous_run_id"], m["run_id"]);
    assert_eq!(query("p=scored/churn"), from_file);
}

#[test]
fn bad_input_fails_naming_it_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A CSV whose row 5000 is short: several chunks are scored and written before it.
    let text = std::fs::read_to_string(telco()).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[5000] = "9999-BROKEN,Male,0";
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out_file = dir.path().join("out/scored.csv");
    let out = predict(&data, path(&bad), path(&out_file), &["--chunk-rows", "500"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.csv") && err.contains("row 5000"), "{err}");
    assert!(
        !dir.path().join("out").exists(),
        "the folder made for it is gone too"
    );

    // A lake prefix with one broken JSON object among good ones, to a folder output.
    let parts = data.join("lake/incoming/churn");
    write_ndjson_parts(&parts, 1500);
    let broken = parts.join("2026/11/25/01/churn-0003.ndjson");
    let mut body = std::fs::read_to_string(&broken).unwrap();
    body.insert_str(body.len() / 2, "{\"customerID\": oops}\n");
    std::fs::write(&broken, body).unwrap();
    let out_dir = dir.path().join("scored");
    let out = predict(
        &data,
        "incoming/churn",
        &format!("{}/", out_dir.display()),
        &["--part-rows", "1000", "--chunk-rows", "1000"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("churn-0003.ndjson"), "{err}");
    assert!(!out_dir.exists(), "no parts, no manifest, no folder");
    // Into an existing folder: its parts written before the failure are removed again.
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = predict(
        &data,
        "incoming/churn",
        path(&out_dir),
        &["--part-rows", "1000", "--chunk-rows", "1000"],
    );
    assert!(!out.status.success());
    let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // No such model, no such input: clear messages, nothing written.
    let out = millrace()
        .arg("--data-dir")
        .arg(&data)
        .args(["predict", "--model", "nothing", "--input"])
        .arg(telco())
        .args(["--output", "x.csv"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no model named nothing"));
    let out = predict(&data, "/no/such/input.parquet", path(&out_file), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("/no/such/input.parquet"),
        "{err}"
    );
    assert!(!out_file.exists());
}
