//! JSON objects into Arrow: newline-delimited JSON and Firehose's concatenated objects
//! (`{…}{…}` with no separator).
//!
//! Flat objects (the usual stream record) go through [`flat`], a single-pass decoder. Anything
//! it declines goes to arrow-json's tape decoder, first with the whole object (it accepts both
//! layouts). Only when that fails does the object go through the careful path: split into
//! top-level values (by line for NDJSON, by a brace/string scanner for concatenated JSON),
//! decode them in groups, and isolate each bad value so the good rows of the object survive and
//! every bad one is reported by byte offset.

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::json::ReaderBuilder;
use arrow::json::reader::infer_json_schema_from_iterator;

use crate::error::PrepError;
use crate::format::JsonLayout;

pub mod flat;

/// A value that could not be read, located by its byte offset in the (decompressed) object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BadRecord {
    pub object: String,
    pub offset: u64,
    pub error: String,
}

/// What decoding one object produced.
#[derive(Debug, Default)]
pub struct Decoded {
    pub batches: Vec<RecordBatch>,
    pub bad: Vec<BadRecord>,
}

const GROUP: usize = 256;

fn builder(schema: &SchemaRef, batch_size: usize) -> ReaderBuilder {
    ReaderBuilder::new(schema.clone())
        .with_batch_size(batch_size)
        // Producers send numbers as strings and strings as numbers; a string column takes both.
        .with_coerce_primitive(true)
        .with_strict_mode(false)
}

/// Decodes every JSON object in `bytes` into batches of `schema` (fields absent from the schema
/// are skipped, missing ones are NULL).
pub fn decode(
    object: &str,
    bytes: &[u8],
    layout: JsonLayout,
    schema: &SchemaRef,
    batch_size: usize,
) -> Result<Decoded, PrepError> {
    let whole = match flat::decode(bytes, schema, batch_size) {
        Some(batches) => Ok(batches),
        None => decode_fast(bytes, schema, batch_size),
    };
    match whole {
        Ok(batches) => Ok(Decoded {
            batches,
            bad: Vec::new(),
        }),
        Err(_) => decode_careful(object, bytes, layout, schema, batch_size),
    }
}

fn decode_fast(
    bytes: &[u8],
    schema: &SchemaRef,
    batch_size: usize,
) -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
    let mut decoder = builder(schema, batch_size).build_decoder()?;
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let n = decoder.decode(&bytes[pos..])?;
        pos += n;
        if (n == 0 || decoder.len() >= batch_size)
            && let Some(b) = decoder.flush()?
        {
            out.push(b);
        }
    }
    if let Some(b) = decoder.flush()? {
        out.push(b);
    }
    Ok(out)
}

fn decode_careful(
    object: &str,
    bytes: &[u8],
    layout: JsonLayout,
    schema: &SchemaRef,
    batch_size: usize,
) -> Result<Decoded, PrepError> {
    let layout = match layout {
        JsonLayout::Auto => sniff_layout(bytes),
        l => l,
    };
    let values = match layout {
        JsonLayout::Lines => split_lines(bytes),
        _ => split_values(bytes),
    };
    let mut out = Decoded::default();
    let bad = |v: &Value, error: String| BadRecord {
        object: object.to_owned(),
        offset: v.start as u64,
        error,
    };
    let mut good: Vec<RecordBatch> = Vec::new();
    for group in values.chunks(GROUP) {
        // Values the scanner already knows are broken never reach the decoder.
        let whole: Vec<&Value> = group.iter().filter(|v| v.problem.is_none()).collect();
        for v in group.iter().filter(|v| v.problem.is_some()) {
            out.bad.push(bad(v, v.problem.clone().unwrap_or_default()));
        }
        if whole.is_empty() {
            continue;
        }
        let joined: Vec<u8> = whole
            .iter()
            .flat_map(|v| bytes[v.start..v.end].iter().copied().chain([b'\n']))
            .collect();
        match decode_fast(&joined, schema, batch_size) {
            Ok(b) if rows(&b) == whole.len() => good.extend(b),
            _ => {
                for v in whole {
                    match decode_fast(&bytes[v.start..v.end], schema, batch_size) {
                        Ok(b) if rows(&b) == 1 => good.extend(b),
                        Ok(_) => out.bad.push(bad(v, "not a single JSON object".into())),
                        Err(e) => out.bad.push(bad(v, e.to_string())),
                    }
                }
            }
        }
    }
    if !good.is_empty() {
        let merged = arrow::compute::concat_batches(schema, &good)?;
        let mut off = 0;
        while off < merged.num_rows() {
            let len = batch_size.min(merged.num_rows() - off);
            out.batches.push(merged.slice(off, len));
            off += len;
        }
    }
    Ok(out)
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

/// One top-level value found by the scanner: `bytes[start..end]`, or a reason it is unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    pub start: usize,
    pub end: usize,
    pub problem: Option<String>,
}

/// NDJSON when the first value is followed by a newline before the next one.
pub(crate) fn sniff_layout(bytes: &[u8]) -> JsonLayout {
    match split_values(bytes).first() {
        Some(v) if v.problem.is_none() => {
            let rest = &bytes[v.end..];
            let gap = rest
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            if rest[..gap].contains(&b'\n') || gap == rest.len() {
                JsonLayout::Lines
            } else {
                JsonLayout::Concatenated
            }
        }
        _ => JsonLayout::Lines,
    }
}

fn split_lines(bytes: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut start = 0;
    for line in bytes.split(|b| *b == b'\n') {
        let end = start + line.len();
        let trimmed_start = line
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map(|p| start + p);
        if let Some(s) = trimmed_start {
            out.push(Value {
                start: s,
                end,
                problem: None,
            });
        }
        start = end + 1;
    }
    // A last line whose object never closes is a truncated write, not a type problem.
    if let Some(last) = out.last_mut() {
        let v = split_values(&bytes[last.start..last.end]);
        if let Some(first) = v.first()
            && first.problem.is_some()
        {
            last.problem = first.problem.clone();
        }
    }
    out
}

/// Splits concatenated JSON into top-level values by tracking nesting and string state. It does
/// not validate; the decoder does. Bytes outside any object are reported as one bad value, and
/// an object still open at the end of the data as truncated.
pub(crate) fn split_values(bytes: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = bytes.len();
    while i < n {
        let b = bytes[i];
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if b != b'{' {
            let start = i;
            while i < n && bytes[i] != b'{' {
                i += 1;
            }
            out.push(Value {
                start,
                end: i,
                problem: Some(format!(
                    "expected '{{' to start a JSON object, found {:?}",
                    String::from_utf8_lossy(&bytes[start..i.min(start + 16)])
                )),
            });
            continue;
        }
        let start = i;
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        let mut end = None;
        while i < n {
            let c = bytes[i];
            i += 1;
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == b'\\' {
                    escaped = true;
                } else if c == b'"' {
                    in_string = false;
                }
                continue;
            }
            match c {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        match end {
            Some(end) => out.push(Value {
                start,
                end,
                problem: None,
            }),
            None => out.push(Value {
                start,
                end: n,
                problem: Some(format!(
                    "truncated JSON object: {} bytes from offset {start} to the end of the object never close",
                    n - start
                )),
            }),
        }
    }
    out
}

/// Infers a schema from up to `max_rows` objects of each sample. Samples that fail to parse
/// contribute what they parsed before the failure.
pub fn infer_schema(samples: &[&[u8]], max_rows: usize) -> Result<Schema, PrepError> {
    let mut values = Vec::new();
    for bytes in samples {
        let stream = serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>();
        for v in stream.take(max_rows) {
            match v {
                Ok(v @ serde_json::Value::Object(_)) => values.push(v),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    let schema = infer_json_schema_from_iterator(values.into_iter().map(Ok))?;
    Ok(schema)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Field};
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]))
    }

    fn ids(d: &Decoded) -> Vec<String> {
        d.batches
            .iter()
            .flat_map(|b| {
                let a = b.column(0).as_string::<i32>();
                (0..a.len())
                    .map(|i| a.value(i).to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn concatenated_and_lines_both_decode_fast() {
        let s = schema();
        let d = decode(
            "o",
            br#"{"id":"a","n":1}{"id":"b","n":2}"#,
            JsonLayout::Auto,
            &s,
            8,
        )
        .unwrap();
        assert_eq!(ids(&d), ["a", "b"]);
        let d = decode(
            "o",
            b"{\"id\":\"a\"}\n{\"id\":\"b\"}\n",
            JsonLayout::Auto,
            &s,
            1,
        )
        .unwrap();
        assert_eq!(ids(&d), ["a", "b"]);
        assert_eq!(d.batches.len(), 2);
    }

    #[test]
    fn truncated_last_object_keeps_good_rows() {
        let s = schema();
        let bytes = br#"{"id":"a","n":1}{"id":"b","n":2}{"id":"c","n""#;
        let d = decode("obj", bytes, JsonLayout::Concatenated, &s, 8).unwrap();
        assert_eq!(ids(&d), ["a", "b"]);
        assert_eq!(d.bad.len(), 1);
        assert_eq!(d.bad[0].offset, 32);
        assert!(d.bad[0].error.contains("truncated"), "{}", d.bad[0].error);
    }

    #[test]
    fn a_bad_line_in_the_middle_is_isolated() {
        let s = schema();
        let bytes = b"{\"id\":\"a\",\"n\":1}\n{\"id\":\"b\",\"n\":\"x\"}\n{\"id\":\"c\",\"n\":3}\n";
        let d = decode("obj", bytes, JsonLayout::Lines, &s, 8).unwrap();
        assert_eq!(ids(&d), ["a", "c"]);
        assert_eq!(d.bad.len(), 1);
        assert_eq!(d.bad[0].offset, 17);
    }

    #[test]
    fn scanner_respects_strings_and_nesting() {
        let bytes = br#"{"a":"}{\"","b":{"c":[1,{"d":2}]}} {"e":"\\"}"#;
        let v = split_values(bytes);
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|v| v.problem.is_none()));
        assert_eq!(v[1].start, bytes.len() - 10);
        assert_eq!(sniff_layout(bytes), JsonLayout::Concatenated);
    }

    #[test]
    fn garbage_between_objects_is_reported() {
        let s = schema();
        let d = decode(
            "o",
            br#"{"id":"a"}xyz{"id":"b"}"#,
            JsonLayout::Concatenated,
            &s,
            8,
        )
        .unwrap();
        assert_eq!(ids(&d), ["a", "b"]);
        assert_eq!(d.bad[0].offset, 10);
        let n = d.batches[0]
            .column(1)
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert!(n.is_null(0));
    }
}
