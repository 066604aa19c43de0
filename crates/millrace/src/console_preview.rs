//! The console's preview of a lake object: its first rows as a table. Parquet through arrow;
//! text (NDJSON, concatenated JSON, CSV, anything else), gzip-compressed or not, line by
//! line: JSON objects become columns, a `.csv` its header and fields, other lines one `line`
//! column.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;
use millrace_console::Preview;

/// Bytes of a text object read for a preview at most.
const TEXT_BYTES: u64 = 1 << 20;

pub fn preview(path: &Path, rows: usize) -> anyhow::Result<Preview> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".parquet") {
        return parquet(File::open(path).context("opening")?, rows);
    }
    text(name, File::open(path).context("opening")?, rows)
}

/// As [`preview`], of an object's bytes as fetched (an S3 lake's): a Parquet object whole, a
/// text object's first bytes.
pub fn preview_bytes(name: &str, bytes: bytes::Bytes, rows: usize) -> anyhow::Result<Preview> {
    if name.ends_with(".parquet") {
        return parquet(bytes, rows);
    }
    text(name, std::io::Cursor::new(bytes), rows)
}

/// Bytes of a text object fetched for a preview at most.
pub const PREVIEW_TEXT_BYTES: u64 = TEXT_BYTES;

fn text(name: &str, mut source: impl Read + 'static, rows: usize) -> anyhow::Result<Preview> {
    let mut magic = Vec::with_capacity(2);
    (&mut source)
        .take(2)
        .read_to_end(&mut magic)
        .context("reading")?;
    let gz = magic == [0x1f, 0x8b];
    let source = std::io::Cursor::new(magic).chain(source);
    let reader: Box<dyn BufRead> = if gz {
        Box::new(BufReader::new(
            flate2::read::MultiGzDecoder::new(source).take(TEXT_BYTES),
        ))
    } else {
        Box::new(BufReader::new(source.take(TEXT_BYTES)))
    };
    let mut lines = Vec::new();
    for line in reader.lines().take(rows + 1) {
        match line {
            Ok(l) => lines.push(l),
            Err(_) => {
                return Ok(Preview {
                    note: "not text (and not Parquet): no preview".into(),
                    ..Preview::default()
                });
            }
        }
    }
    if name.trim_end_matches(".gz").ends_with(".csv") {
        Ok(csv_rows(&lines, rows))
    } else {
        Ok(json_or_lines(lines, rows))
    }
}

fn parquet<T: parquet::file::reader::ChunkReader + 'static>(
    source: T,
    rows: usize,
) -> anyhow::Result<Preview> {
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(source)
        .context("reading the Parquet footer")?;
    let total = builder.metadata().file_metadata().num_rows();
    let mut reader = builder.with_batch_size(rows.max(1)).build()?;
    let Some(batch) = reader.next().transpose()? else {
        return Ok(Preview {
            note: "no rows".into(),
            ..Preview::default()
        });
    };
    let schema = batch.schema();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &Default::default()))
        .collect::<Result<Vec<_>, _>>()?;
    let shown = batch.num_rows().min(rows);
    Ok(Preview {
        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        rows: (0..shown)
            .map(|r| formatters.iter().map(|f| f.value(r).to_string()).collect())
            .collect(),
        note: format!("Parquet, {total} rows, {} columns", schema.fields().len()),
    })
}

fn csv_rows(lines: &[String], rows: usize) -> Preview {
    let text = lines.join("\n");
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let columns = reader
        .headers()
        .map(|h| h.iter().map(str::to_owned).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = reader
        .records()
        .filter_map(Result::ok)
        .take(rows)
        .map(|r| r.iter().map(str::to_owned).collect())
        .collect();
    Preview {
        note: format!("CSV, the first {} rows", rows.len()),
        columns,
        rows,
    }
}

/// JSON objects one per line become columns (in order of appearance); anything else is
/// shown line by line.
/// The column an error record's `rawData` shows decoded in.
const RAW_DECODED: &str = "rawData, decoded";

/// An error record's `rawData` (base64) as text: UTF-8 (invalid bytes replaced), at most 500
/// characters.
fn decoded(raw: Option<&serde_json::Value>) -> String {
    use base64::Engine;
    let Some(b) = raw
        .and_then(serde_json::Value::as_str)
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
    else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&b);
    match text.char_indices().nth(500) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.into_owned(),
    }
}

fn json_or_lines(lines: Vec<String>, rows: usize) -> Preview {
    let lines: Vec<String> = lines.into_iter().take(rows).collect();
    let objects: Option<Vec<serde_json::Map<String, serde_json::Value>>> = lines
        .iter()
        .map(|l| match serde_json::from_str(l) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => None,
        })
        .collect();
    match objects {
        Some(objects) if !objects.is_empty() => {
            let mut columns: Vec<String> = Vec::new();
            for o in &objects {
                for k in o.keys() {
                    if !columns.contains(k) {
                        columns.push(k.clone());
                    }
                }
            }
            let errors =
                columns.iter().any(|c| c == "errorCode") && columns.iter().any(|c| c == "rawData");
            if errors {
                // Error records: the reason first, the record as sent beside its base64.
                columns.retain(|c| c != "errorCode" && c != "errorMessage");
                columns.splice(0..0, ["errorCode".to_owned(), "errorMessage".to_owned()]);
                columns.push(RAW_DECODED.to_owned());
            }
            let rows = objects
                .iter()
                .map(|o| {
                    columns
                        .iter()
                        .map(|c| match (c.as_str(), o.get(c)) {
                            (RAW_DECODED, _) => decoded(o.get("rawData")),
                            (_, None) => String::new(),
                            (_, Some(serde_json::Value::String(s))) => s.clone(),
                            (_, Some(v)) => v.to_string(),
                        })
                        .collect()
                })
                .collect();
            let note = if errors {
                format!(
                    "Error records (under the error prefix): why each one failed, and the record \
                     as it was sent; the first {}",
                    objects.len()
                )
            } else {
                format!(
                    "JSON, one object a line: the first {} records",
                    objects.len()
                )
            };
            Preview {
                note,
                columns,
                rows,
            }
        }
        _ => Preview {
            note: format!("text: the first {} lines", lines.len()),
            columns: vec!["line".into()],
            rows: lines.into_iter().map(|l| vec![l]).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    #[test]
    fn error_records_show_their_reason_first_and_the_record_decoded() {
        let lines = vec![
            r#"{"attemptsMade":1,"errorCode":"Invalid.JSON","errorMessage":"expected value at line 1","rawData":"bm90IGpzb24="}"#.to_owned(),
        ];
        let p = super::json_or_lines(lines, 20);
        assert_eq!(
            p.columns,
            [
                "errorCode",
                "errorMessage",
                "attemptsMade",
                "rawData",
                "rawData, decoded"
            ]
        );
        assert_eq!(p.rows[0][0], "Invalid.JSON");
        assert_eq!(p.rows[0][4], "not json");
        assert!(p.note.starts_with("Error records"), "{}", p.note);
    }

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;

    use super::*;

    #[test]
    fn parquet_json_lines_csv_and_gzip_preview_as_tables() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("tenure", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            ],
        )
        .unwrap();
        let pq = dir.path().join("part-0.parquet");
        let mut w =
            parquet::arrow::ArrowWriter::try_new(File::create(&pq).unwrap(), schema, None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let p = preview(&pq, 2).unwrap();
        assert_eq!(p.columns, ["id", "tenure"]);
        assert_eq!(p.rows, [["a", "1"], ["b", ""]]);
        assert_eq!(p.note, "Parquet, 3 rows, 2 columns");

        let nd = dir.path().join("x.ndjson");
        std::fs::write(&nd, "{\"a\":1,\"b\":\"x\"}\n{\"c\":true}\n").unwrap();
        let p = preview(&nd, 20).unwrap();
        assert_eq!(p.columns, ["a", "b", "c"]);
        assert_eq!(p.rows, [["1", "x", ""], ["", "", "true"]]);

        let gz = dir.path().join("rows.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(b"id,tenure\na,1\nb,2\nc,3\n").unwrap();
        enc.finish().unwrap();
        let p = preview(&gz, 2).unwrap();
        assert_eq!(p.columns, ["id", "tenure"]);
        assert_eq!(p.rows, [["a", "1"], ["b", "2"]]);

        let bin = dir.path().join("blob");
        std::fs::write(&bin, [0xff, 0xfe, 0x00, 0x81]).unwrap();
        assert!(preview(&bin, 5).unwrap().rows.is_empty());
    }
}
