//! Request bodies to records: `application/json` (one object, an array of objects, or
//! `{"instances": [...]}` whose items are objects or arrays of values in the model's column
//! order), JSON lines, and `text/csv` rows without a header in the model's column order.
//! Records may be raw, as they travel on the stream (every value a string): the model's recipes
//! do the typing. Every error names the record (0-based) and, where it applies, the field.

use serde_json::{Map, Value};

use crate::error::ServeError;

/// A body that cannot be scored (HTTP 400 through [`ServeError::BadInput`]): which record and
/// field, when the problem is in one, and the whole message (`record 1: field `a` is …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    /// 0-based, in the body's order.
    pub record: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

/// A problem with the body as a whole.
fn bad(message: String) -> InputError {
    InputError {
        record: None,
        field: None,
        message,
    }
}

/// A problem with record `i`.
fn bad_record(i: usize, problem: String) -> InputError {
    InputError {
        record: Some(i),
        field: None,
        message: format!("record {i}: {problem}"),
    }
}

pub type Record = Map<String, Value>;

/// The format of a request body (or a stream record): one JSON object or an array of them,
/// JSON lines, or CSV rows in the model's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    JsonLines,
    Csv,
}

/// The format a `Content-Type` names. A missing (or blank) one is refused rather than guessed:
/// a browser form or a stray tool must not have its body read as JSON.
pub fn format_of(content_type: Option<&str>) -> Result<BodyFormat, ServeError> {
    let Some(ct) = content_type else {
        return Err(ServeError::MissingContentType);
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "" => Err(ServeError::MissingContentType),
        "application/json" => Ok(BodyFormat::Json),
        "application/jsonlines"
        | "application/json-lines"
        | "application/jsonl"
        | "application/x-ndjson"
        | "application/x-jsonlines" => Ok(BodyFormat::JsonLines),
        "text/csv" | "application/csv" => Ok(BodyFormat::Csv),
        other => Err(ServeError::UnsupportedMediaType {
            content_type: other.to_owned(),
        }),
    }
}

/// Checks a record's values are scalars (nested values have no column to go to).
fn check(i: usize, r: &Record) -> Result<(), InputError> {
    for (k, v) in r {
        let what = match v {
            Value::Object(_) => "an object",
            Value::Array(_) => "an array",
            _ => continue,
        };
        return Err(InputError {
            record: Some(i),
            field: Some(k.clone()),
            message: format!(
                "record {i}: field `{k}` is {what}; values must be strings, numbers, booleans or \
                 null"
            ),
        });
    }
    Ok(())
}

fn from_values(i: usize, values: Vec<Value>, columns: &[String]) -> Result<Record, InputError> {
    if values.len() != columns.len() {
        return Err(bad_record(
            i,
            format!(
                "{} values, the model takes {} in this order: {}",
                values.len(),
                columns.len(),
                columns.join(", ")
            ),
        ));
    }
    Ok(columns.iter().cloned().zip(values).collect())
}

fn item(i: usize, v: Value, columns: &[String]) -> Result<Record, InputError> {
    let r = match v {
        Value::Object(m) => m,
        Value::Array(values) => from_values(i, values, columns)?,
        other => {
            return Err(bad_record(
                i,
                format!(
                    "expected a JSON object of field values, got {}",
                    kind(&other)
                ),
            ));
        }
    };
    check(i, &r)?;
    Ok(r)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The records of `body`; `columns` is the model's input order (CSV rows and value arrays).
pub fn parse(
    format: BodyFormat,
    body: &[u8],
    columns: &[String],
) -> Result<Vec<Record>, InputError> {
    let records = match format {
        BodyFormat::Json => {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| bad(format!("the body is not valid JSON: {e}")))?;
            match v {
                Value::Array(items) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| item(i, v, columns))
                    .collect::<Result<Vec<_>, _>>()?,
                Value::Object(mut m) if m.len() == 1 && m.contains_key("instances") => {
                    match m.remove("instances") {
                        Some(Value::Array(items)) => items
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| item(i, v, columns))
                            .collect::<Result<Vec<_>, _>>()?,
                        _ => return Err(bad("`instances` must be an array".into())),
                    }
                }
                Value::Object(m) => {
                    check(0, &m)?;
                    vec![m]
                }
                other => {
                    return Err(bad(format!(
                        "expected a JSON object, an array of objects or {{\"instances\": [...]}}, \
                         got {}",
                        kind(&other)
                    )));
                }
            }
        }
        BodyFormat::JsonLines => {
            let text = std::str::from_utf8(body)
                .map_err(|e| bad(format!("the body is not UTF-8: {e}")))?;
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(i, line)| {
                    let v: Value = serde_json::from_str(line)
                        .map_err(|e| bad_record(i, format!("not valid JSON: {e}")))?;
                    item(i, v, columns)
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        BodyFormat::Csv => {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(body);
            let mut out = Vec::new();
            for (i, row) in r.records().enumerate() {
                let row = row.map_err(|e| bad_record(i, format!("not valid CSV: {e}")))?;
                if row.len() == 1 && row.get(0) == Some("") {
                    continue;
                }
                let values = row
                    .iter()
                    .map(|f| {
                        if f.is_empty() {
                            Value::Null
                        } else {
                            Value::String(f.to_owned())
                        }
                    })
                    .collect();
                out.push(from_values(i, values, columns)?);
            }
            out
        }
    };
    if records.is_empty() {
        return Err(bad("no records in the body".into()));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<String> {
        vec!["a".into(), "b".into()]
    }

    #[test]
    fn every_shape_becomes_records() {
        let one = parse(BodyFormat::Json, br#"{"a": "1", "b": 2}"#, &cols()).unwrap();
        assert_eq!(one.len(), 1);
        let many = parse(BodyFormat::Json, br#"[{"a": "1"}, {"b": 2}]"#, &cols()).unwrap();
        assert_eq!(many.len(), 2);
        let inst = parse(
            BodyFormat::Json,
            br#"{"instances": [["1", 2], {"a": 3}]}"#,
            &cols(),
        )
        .unwrap();
        assert_eq!(inst[0]["b"], 2);
        let lines = parse(
            BodyFormat::JsonLines,
            b"{\"a\": 1}\n\n{\"a\": 2}\n",
            &cols(),
        )
        .unwrap();
        assert_eq!(lines.len(), 2);
        let csv = parse(BodyFormat::Csv, b"1,x\n2,\"y,z\"\n", &cols()).unwrap();
        assert_eq!(csv[1]["b"], "y,z");
    }

    #[test]
    fn errors_name_the_record_and_field() {
        let e = parse(BodyFormat::Json, br#"[{"a": 1}, 5]"#, &cols()).unwrap_err();
        assert_eq!(e.record, Some(1));
        assert!(
            e.message.contains("record 1: expected a JSON object"),
            "{}",
            e.message
        );
        let e = parse(BodyFormat::Json, br#"[{"a": {"x": 1}}]"#, &cols()).unwrap_err();
        assert_eq!((e.record, e.field.as_deref()), (Some(0), Some("a")));
        assert!(
            e.message.contains("record 0: field `a` is an object"),
            "{}",
            e.message
        );
        let e = parse(BodyFormat::Csv, b"1,2\n1,2,3\n", &cols()).unwrap_err();
        assert!(
            e.message.contains("record 1: 3 values, the model takes 2"),
            "{}",
            e.message
        );
        let e = parse(BodyFormat::JsonLines, b"{\"a\": 1}\n{oops\n", &cols()).unwrap_err();
        assert!(
            e.message.contains("record 1: not valid JSON"),
            "{}",
            e.message
        );
        let e = parse(BodyFormat::Json, b"[]", &cols()).unwrap_err();
        assert!(e.message.contains("no records"), "{}", e.message);
        assert_eq!(e.record, None);
        assert_eq!(
            format_of(Some("image/png")).unwrap_err().status().as_u16(),
            415
        );
        assert_eq!(format_of(None).unwrap_err().status().as_u16(), 415);
        assert_eq!(format_of(Some(" ")).unwrap_err().status().as_u16(), 415);
        assert_eq!(
            format_of(Some("text/csv; charset=utf-8")).unwrap(),
            BodyFormat::Csv
        );
    }
}
