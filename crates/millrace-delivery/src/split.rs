//! Firehose's RecordDeAggregation processor (multi-record de-aggregation): one record holding
//! several becomes one record each, by JSON objects (`{"a":1}{"a":2}`, or one per line) or by
//! a custom delimiter. At most [`MAX_SUB_RECORDS`] per record, as Firehose caps it.

use bytes::Bytes;
use serde::de::IgnoredAny;

use crate::config::Split;

/// Firehose: "Record deaggregation by JSON or by delimiter is capped at 500 per record."
pub const MAX_SUB_RECORDS: usize = 500;

/// Why a record cannot be split (it then goes to the error prefix as it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("record de-aggregation (JSON): {0}")]
    Json(String),
    #[error(
        "record de-aggregation (JSON): a value at byte {0} is not a JSON object (the records \
         must be objects back to back or one per line; an array is not split)"
    )]
    NotAnObject(usize),
    #[error("record de-aggregation: the record holds no sub-record")]
    Empty,
    #[error(
        "record de-aggregation: the record holds more than {MAX_SUB_RECORDS} sub-records, \
         Firehose's limit per record"
    )]
    TooMany,
}

/// The sub-records of `data` (slices of it, no copy), in order.
pub fn split(data: &Bytes, how: &Split) -> Result<Vec<Bytes>, SplitError> {
    let ranges = match how {
        Split::Json => json_objects(data)?,
        Split::Delimited(delimiter) => pieces(data, delimiter)?,
    };
    if ranges.is_empty() {
        return Err(SplitError::Empty);
    }
    Ok(ranges.into_iter().map(|(a, b)| data.slice(a..b)).collect())
}

/// The byte ranges of consecutive JSON objects; JSON whitespace may stand between them.
fn json_objects(data: &[u8]) -> Result<Vec<(usize, usize)>, SplitError> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<IgnoredAny>();
    loop {
        let at = stream.byte_offset();
        let Some(start) = data[at..]
            .iter()
            .position(|b| !b" \t\r\n".contains(b))
            .map(|i| at + i)
        else {
            return Ok(out);
        };
        if data[start] != b'{' {
            return Err(SplitError::NotAnObject(start));
        }
        if out.len() == MAX_SUB_RECORDS {
            return Err(SplitError::TooMany);
        }
        match stream.next() {
            Some(Ok(IgnoredAny)) => out.push((start, stream.byte_offset())),
            Some(Err(e)) => return Err(SplitError::Json(e.to_string())),
            None => return Ok(out),
        }
    }
}

/// The byte ranges between occurrences of `delimiter`; empty pieces (delimiters back to back
/// or at either end) are left out.
fn pieces(data: &[u8], delimiter: &[u8]) -> Result<Vec<(usize, usize)>, SplitError> {
    let mut out = Vec::new();
    let mut start = 0;
    if !delimiter.is_empty() {
        while let Some(i) = data[start..]
            .windows(delimiter.len())
            .position(|w| w == delimiter)
        {
            keep(&mut out, start, start + i)?;
            start += i + delimiter.len();
        }
    }
    keep(&mut out, start, data.len())?;
    Ok(out)
}

/// Adds the piece `a..b` unless it is empty; more than [`MAX_SUB_RECORDS`] is an error.
fn keep(out: &mut Vec<(usize, usize)>, a: usize, b: usize) -> Result<(), SplitError> {
    if a == b {
        return Ok(());
    }
    if out.len() == MAX_SUB_RECORDS {
        return Err(SplitError::TooMany);
    }
    out.push((a, b));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(data: &str, how: &Split) -> Result<Vec<String>, SplitError> {
        split(&Bytes::from(data.to_owned()), how).map(|v| {
            v.iter()
                .map(|b| String::from_utf8(b.to_vec()).unwrap())
                .collect()
        })
    }

    #[test]
    fn json_objects_back_to_back_or_one_per_line() {
        let j = Split::Json;
        assert_eq!(
            parts(r#"{"a":1}{"a":2}"#, &j).unwrap(),
            [r#"{"a":1}"#, r#"{"a":2}"#]
        );
        assert_eq!(
            parts("{\"a\":1}\n{\"a\":{\"b\":[1,2]}}\r\n  {\"a\":\"}{\"}\n", &j).unwrap(),
            ["{\"a\":1}", "{\"a\":{\"b\":[1,2]}}", "{\"a\":\"}{\"}"]
        );
        assert_eq!(parts(r#"{"one":1}"#, &j).unwrap(), [r#"{"one":1}"#]);
    }

    #[test]
    fn json_that_does_not_split_is_an_error() {
        let j = Split::Json;
        assert_eq!(
            parts(r#"[{"a":1},{"a":2}]"#, &j),
            Err(SplitError::NotAnObject(0))
        );
        assert_eq!(parts(r#"{"a":1} 7"#, &j), Err(SplitError::NotAnObject(8)));
        assert!(matches!(
            parts(r#"{"a":1}{"a":"#, &j),
            Err(SplitError::Json(_))
        ));
        assert_eq!(parts(" \n", &j), Err(SplitError::Empty));
        assert_eq!(parts("", &j), Err(SplitError::Empty));
    }

    #[test]
    fn delimited_pieces_leave_out_the_delimiter_and_empty_pieces() {
        let d = Split::Delimited(b"####".to_vec());
        assert_eq!(parts("a####bb####c", &d).unwrap(), ["a", "bb", "c"]);
        assert_eq!(parts("####a########b####", &d).unwrap(), ["a", "b"]);
        assert_eq!(parts("no delimiter", &d).unwrap(), ["no delimiter"]);
        assert_eq!(parts("a###b", &d).unwrap(), ["a###b"]);
        assert_eq!(parts("########", &d), Err(SplitError::Empty));
        let nl = Split::Delimited(b"\n".to_vec());
        assert_eq!(parts("x\ny\n", &nl).unwrap(), ["x", "y"]);
    }

    #[test]
    fn at_most_500_sub_records() {
        let d = Split::Delimited(b",".to_vec());
        let ok = vec!["x"; MAX_SUB_RECORDS].join(",");
        assert_eq!(parts(&ok, &d).unwrap().len(), MAX_SUB_RECORDS);
        let over = vec!["x"; MAX_SUB_RECORDS + 1].join(",");
        assert_eq!(parts(&over, &d), Err(SplitError::TooMany));
        let json = "{}".repeat(MAX_SUB_RECORDS);
        assert_eq!(parts(&json, &Split::Json).unwrap().len(), MAX_SUB_RECORDS);
        let json = "{}".repeat(MAX_SUB_RECORDS + 1);
        assert_eq!(parts(&json, &Split::Json), Err(SplitError::TooMany));
    }
}
