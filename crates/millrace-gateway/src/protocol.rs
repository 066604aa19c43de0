//! Framing of the two wire protocols Kinesis clients use: AWS JSON 1.1 (CLI, boto3, most SDKs;
//! blobs are base64 strings, timestamps epoch seconds) and CBOR 1.1 (Java SDK, KPL; blobs are
//! byte strings, timestamps epoch milliseconds under tag 1).
//!
//! Requests are decoded into a `serde_json::Value` tree for both protocols (CBOR byte strings
//! become base64 strings, so operations read blobs one way); replies are built as [`Out`],
//! which keeps blobs and timestamps typed until the protocol encodes them.

use bytes::Bytes;
use serde_json::Value;

use crate::error::{ApiError, ErrorCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    Cbor,
}

impl Protocol {
    /// Picks the protocol from the request's Content-Type (JSON when absent).
    pub fn from_content_type(ct: Option<&str>) -> Self {
        match ct {
            Some(ct) if ct.contains("cbor") => Self::Cbor,
            _ => Self::Json,
        }
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Json => "application/x-amz-json-1.1",
            Self::Cbor => "application/x-amz-cbor-1.1",
        }
    }

    /// Decodes a request body into a JSON object. An empty body is `{}`.
    pub fn decode(&self, body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::Map::new());
        }
        let value = match self {
            Self::Json => serde_json::from_slice::<Value>(body).map_err(|e| {
                ApiError::serialization(format!("request body is not valid JSON: {e}"))
            })?,
            Self::Cbor => {
                let v: ciborium::Value = ciborium::from_reader(body).map_err(|e| {
                    ApiError::serialization(format!("request body is not valid CBOR: {e}"))
                })?;
                cbor_to_json(v)?
            }
        };
        match value {
            Value::Object(map) => Ok(map),
            other => Err(ApiError::serialization(format!(
                "request body must be an object, found {}",
                kind(&other)
            ))),
        }
    }

    pub fn encode(&self, out: &Out) -> Vec<u8> {
        match self {
            Self::Json => {
                // Sized up front: a GetRecords reply of 10 MB is written without regrowing.
                let mut buf = Vec::with_capacity(out.json_size_hint());
                write_json(out, &mut buf);
                buf
            }
            Self::Cbor => {
                let mut buf = Vec::with_capacity(256);
                ciborium::into_writer(&to_cbor(out), &mut buf).expect("writing to a Vec");
                buf
            }
        }
    }

    pub fn encode_error(&self, e: &ApiError) -> Vec<u8> {
        self.encode(&Out::map([
            ("__type", Out::str(e.code.as_str())),
            ("message", Out::str(&e.message)),
        ]))
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a structure",
    }
}

fn cbor_to_json(v: ciborium::Value) -> Result<Value, ApiError> {
    use ciborium::Value as C;
    Ok(match v {
        C::Null => Value::Null,
        C::Bool(b) => Value::Bool(b),
        C::Integer(i) => {
            let i = i128::from(i);
            match i64::try_from(i) {
                Ok(i) => Value::from(i),
                Err(_) => Value::from(i as f64),
            }
        }
        C::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        C::Text(s) => Value::String(s),
        C::Bytes(b) => Value::String(millrace_common::base64::encode(&b)),
        // Tag 1 wraps an epoch timestamp: milliseconds from the AWS SDKs, seconds by RFC 8949.
        // `request::cbor_timestamp_ms` tells them apart by magnitude for every CBOR timestamp,
        // tagged or not, so the tag itself carries no extra meaning here.
        C::Tag(_, inner) => cbor_to_json(*inner)?,
        C::Array(a) => Value::Array(a.into_iter().map(cbor_to_json).collect::<Result<_, _>>()?),
        C::Map(m) => {
            let mut out = serde_json::Map::with_capacity(m.len());
            for (k, v) in m {
                let C::Text(k) = k else {
                    return Err(ApiError::serialization("CBOR map keys must be text"));
                };
                out.insert(k, cbor_to_json(v)?);
            }
            Value::Object(out)
        }
        _ => return Err(ApiError::serialization("unsupported CBOR value")),
    })
}

/// A reply value. Blobs and timestamps stay typed so each protocol encodes them its own way.
#[derive(Debug, Clone)]
pub enum Out {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Blob(Bytes),
    /// Epoch milliseconds.
    Time(i64),
    List(Vec<Out>),
    Map(Vec<(&'static str, Out)>),
}

impl Out {
    pub fn str(s: impl Into<String>) -> Self {
        Self::Str(s.into())
    }

    pub fn map<const N: usize>(fields: [(&'static str, Out); N]) -> Self {
        Self::Map(fields.into_iter().collect())
    }

    /// About how many bytes the JSON encoding takes (exact for blobs, close for the rest).
    fn json_size_hint(&self) -> usize {
        match self {
            Out::Null | Out::Bool(_) => 5,
            Out::Int(_) | Out::Time(_) => 20,
            Out::Str(s) => s.len() + 2,
            Out::Blob(b) => b.len().div_ceil(3) * 4 + 2,
            Out::List(items) => 2 + items.iter().map(|i| i.json_size_hint() + 1).sum::<usize>(),
            Out::Map(fields) => {
                2 + fields
                    .iter()
                    .map(|(k, v)| k.len() + 4 + v.json_size_hint())
                    .sum::<usize>()
            }
        }
    }
}

fn write_json(out: &Out, buf: &mut Vec<u8>) {
    use std::io::Write;
    match out {
        Out::Null => buf.extend_from_slice(b"null"),
        Out::Bool(b) => buf.extend_from_slice(if *b { b"true" } else { b"false" }),
        Out::Int(i) => {
            let _ = write!(buf, "{i}");
        }
        Out::Str(s) => serde_json::to_writer(&mut *buf, s).expect("writing to a Vec"),
        Out::Blob(b) => {
            buf.push(b'"');
            millrace_common::base64::encode_into(b, buf);
            buf.push(b'"');
        }
        Out::Time(ms) => {
            // Epoch seconds with millisecond precision, as Kinesis sends them.
            let secs = ms.div_euclid(1000);
            let frac = ms.rem_euclid(1000);
            let _ = write!(buf, "{secs}.{frac:03}");
        }
        Out::List(items) => {
            buf.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_json(item, buf);
            }
            buf.push(b']');
        }
        Out::Map(fields) => {
            buf.push(b'{');
            let mut first = true;
            for (k, v) in fields {
                if matches!(v, Out::Null) {
                    continue;
                }
                if !first {
                    buf.push(b',');
                }
                first = false;
                buf.push(b'"');
                buf.extend_from_slice(k.as_bytes());
                buf.extend_from_slice(b"\":");
                write_json(v, buf);
            }
            buf.push(b'}');
        }
    }
}

fn to_cbor(out: &Out) -> ciborium::Value {
    use ciborium::Value as C;
    match out {
        Out::Null => C::Null,
        Out::Bool(b) => C::Bool(*b),
        Out::Int(i) => C::Integer((*i).into()),
        Out::Str(s) => C::Text(s.clone()),
        Out::Blob(b) => C::Bytes(b.to_vec()),
        Out::Time(ms) => C::Tag(1, Box::new(C::Integer((*ms).into()))),
        Out::List(items) => C::Array(items.iter().map(to_cbor).collect()),
        Out::Map(fields) => C::Map(
            fields
                .iter()
                .filter(|(_, v)| !matches!(v, Out::Null))
                .map(|(k, v)| (C::Text((*k).to_owned()), to_cbor(v)))
                .collect(),
        ),
    }
}

/// Builds the error body for a status the operations never produce themselves.
pub fn error_body(protocol: Protocol, code: ErrorCode, message: &str) -> Vec<u8> {
    protocol.encode_error(&ApiError::new(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_reply_encodes_blobs_and_times() {
        let out = Out::map([
            ("Data", Out::Blob(Bytes::from_static(b"hi"))),
            ("T", Out::Time(1_700_000_000_123)),
            ("Skip", Out::Null),
            ("S", Out::str("q\"")),
        ]);
        let s = String::from_utf8(Protocol::Json.encode(&out)).unwrap();
        assert_eq!(s, r#"{"Data":"aGk=","T":1700000000.123,"S":"q\""}"#);
    }

    #[test]
    fn cbor_round_trip_turns_bytes_into_base64() {
        use ciborium::Value as C;
        let req = C::Map(vec![
            (C::Text("Data".into()), C::Bytes(b"hi".to_vec())),
            (C::Text("N".into()), C::Integer(3.into())),
        ]);
        let mut body = Vec::new();
        ciborium::into_writer(&req, &mut body).unwrap();
        let map = Protocol::Cbor.decode(&body).unwrap();
        assert_eq!(map["Data"], "aGk=");
        assert_eq!(map["N"], 3);
        let err = Protocol::Json.decode(b"[1]").unwrap_err();
        assert_eq!(err.code, ErrorCode::Serialization);
    }
}
