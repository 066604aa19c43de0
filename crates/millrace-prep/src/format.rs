//! Input formats and compression: what a `--table NAME=PATH:FORMAT` suffix or a job's `format`
//! key may say, what an object's name suggests, and what its first bytes prove.

use std::io::Read;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::PrepError;

/// How the objects of an input are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// JSON objects, one per line or concatenated; decided per object.
    Json,
    /// Newline-delimited JSON (one object per line).
    Ndjson,
    /// Firehose's concatenated JSON objects (`{…}{…}`, no separator).
    Concat,
    /// CSV with a header row.
    Csv,
    Parquet,
}

/// How JSON values are separated, which only matters when an object needs the careful path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonLayout {
    Auto,
    Lines,
    Concatenated,
}

impl InputFormat {
    pub const NAMES: &'static str = "json, ndjson, concat, csv, parquet";

    pub fn json_layout(self) -> Option<JsonLayout> {
        match self {
            Self::Json => Some(JsonLayout::Auto),
            Self::Ndjson => Some(JsonLayout::Lines),
            Self::Concat => Some(JsonLayout::Concatenated),
            Self::Csv | Self::Parquet => None,
        }
    }

    /// The format an object's name suggests (compression suffixes ignored). Names without a
    /// known extension, such as Firehose's, are JSON.
    pub fn from_key(key: &str) -> Self {
        let name = key.rsplit('/').next().unwrap_or(key).to_ascii_lowercase();
        let name = name
            .trim_end_matches(".gz")
            .trim_end_matches(".zst")
            .trim_end_matches(".zstd");
        if name.ends_with(".parquet") || name.ends_with(".pq") {
            Self::Parquet
        } else if name.ends_with(".csv") || name.ends_with(".tsv") {
            Self::Csv
        } else if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
            Self::Ndjson
        } else {
            Self::Json
        }
    }
}

impl FromStr for InputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "ndjson" | "jsonl" => Ok(Self::Ndjson),
            "concat" | "concatenated" => Ok(Self::Concat),
            "csv" => Ok(Self::Csv),
            "parquet" => Ok(Self::Parquet),
            other => Err(format!(
                "unknown format {other:?}; expected one of {}",
                Self::NAMES
            )),
        }
    }
}

impl std::fmt::Display for InputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Json => "json",
            Self::Ndjson => "ndjson",
            Self::Concat => "concat",
            Self::Csv => "csv",
            Self::Parquet => "parquet",
        })
    }
}

/// Undoes gzip or zstd, recognised by magic bytes rather than by name (Firehose names carry no
/// extension). Anything else is returned as is.
pub fn decompress(object: &str, bytes: bytes::Bytes) -> Result<bytes::Bytes, PrepError> {
    let err = |e: std::io::Error| PrepError::Decode {
        object: object.to_owned(),
        offset: 0,
        message: format!("cannot decompress: {e}"),
    };
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len() * 6);
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(err)?;
        Ok(out.into())
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::decode_all(&bytes[..])
            .map(Into::into)
            .map_err(err)
    } else {
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_suffixes() {
        assert_eq!(InputFormat::from_key("a/b.parquet"), InputFormat::Parquet);
        assert_eq!(InputFormat::from_key("a/b.csv.gz"), InputFormat::Csv);
        assert_eq!(InputFormat::from_key("a/b.jsonl.zst"), InputFormat::Ndjson);
        assert_eq!(
            InputFormat::from_key("churn-1-2021-01-01-00-00-00-uuid"),
            InputFormat::Json
        );
        assert_eq!("CONCAT".parse::<InputFormat>(), Ok(InputFormat::Concat));
        assert!(
            "xml"
                .parse::<InputFormat>()
                .unwrap_err()
                .contains("parquet")
        );
    }

    #[test]
    fn compression_by_magic_bytes() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"a\":1}").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(&decompress("o", gz.into()).unwrap()[..], b"{\"a\":1}");
        let zs = zstd::encode_all(&b"{\"a\":2}"[..], 1).unwrap();
        assert_eq!(&decompress("o", zs.into()).unwrap()[..], b"{\"a\":2}");
        let e = decompress("o", vec![0x1f, 0x8b, 0, 0].into()).unwrap_err();
        assert!(e.to_string().contains("o"));
    }
}
