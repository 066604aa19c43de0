//! Keeping the scorer's records within the stream's per-record limit
//! ([`RECORD_MAX_DATA_BYTES`], which the store enforces on every writer): an error record copies
//! its input, and an input near the limit, once escaped or base64-encoded beside the reason,
//! would not fit. Such a record keeps the longest prefix of the input that fits, and says so
//! with `data_truncated: true`, the input's size (`data_bytes`) and its SHA-256
//! (`data_sha256`, hex), so the original can still be identified and checked.

use millrace_io::limits::RECORD_MAX_DATA_BYTES;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Longest error reason kept (the rest is cut off with `…`).
const MAX_REASON_BYTES: usize = 4096;

/// Most bytes of data a record with `partition_key` may hold so that data and key together are
/// within the per-record limit (the stricter reading of Kinesis's rule, so either reading
/// accepts it).
pub(crate) fn data_budget(partition_key: &str) -> usize {
    RECORD_MAX_DATA_BYTES.saturating_sub(partition_key.len())
}

/// `reason`, cut to [`MAX_REASON_BYTES`] at a character boundary.
pub(crate) fn short_reason(reason: &str) -> String {
    if reason.len() <= MAX_REASON_BYTES {
        return reason.to_owned();
    }
    let mut end = MAX_REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end])
}

/// Serialises the error record `m` with the input `data` in it (`data` as text when UTF-8,
/// `data_base64` otherwise), keeping it within `budget` bytes: whole when it fits, otherwise a
/// prefix with `data_truncated`, `data_bytes` and `data_sha256`.
pub(crate) fn with_payload(mut m: Map<String, Value>, data: &[u8], budget: usize) -> Vec<u8> {
    let text = std::str::from_utf8(data).ok();
    let field = if text.is_some() {
        "data"
    } else {
        "data_base64"
    };
    let whole = match text {
        Some(s) => s.to_owned(),
        None => base64_of(data),
    };
    let mut full = m.clone();
    full.insert(field.into(), Value::from(whole));
    let bytes = Value::Object(full).to_string().into_bytes();
    if bytes.len() <= budget {
        return bytes;
    }
    m.insert("data_truncated".into(), Value::from(true));
    m.insert("data_bytes".into(), Value::from(data.len()));
    m.insert(
        "data_sha256".into(),
        Value::from(format!("{:x}", Sha256::digest(data))),
    );
    m.insert(field.into(), Value::from(""));
    // What the record takes without the payload's content (its quotes included).
    let room = budget.saturating_sub(Value::Object(m.clone()).to_string().len());
    let prefix = match text {
        Some(s) => s[..text_prefix(s, room)].to_owned(),
        // Base64 needs no JSON escaping: 4 characters for each 3 bytes.
        None => base64_of(&data[..(room / 4 * 3).min(data.len())]),
    };
    m.insert(field.into(), Value::from(prefix));
    Value::Object(m).to_string().into_bytes()
}

fn base64_of(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The length in bytes of the longest prefix of `s` (whole characters) whose JSON string
/// content takes at most `room` bytes.
fn text_prefix(s: &str, room: usize) -> usize {
    let mut used = 0;
    for (at, c) in s.char_indices() {
        used += json_len(c);
        if used > room {
            return at;
        }
    }
    s.len()
}

/// Bytes `c` takes inside a JSON string as serde_json writes it.
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{08}' | '\u{09}' | '\u{0a}' | '\u{0c}' | '\u{0d}' => 2,
        '\u{00}'..='\u{1f}' => 6,
        c => c.len_utf8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("error".into(), Value::from("the record is not valid JSON"));
        m.insert("partition_key".into(), Value::from("k"));
        m
    }

    #[test]
    fn json_lengths_match_serde_json() {
        let s: String = (0u32..0x800).filter_map(char::from_u32).collect();
        let sum: usize = s.chars().map(json_len).sum();
        assert_eq!(sum, Value::from(s.as_str()).to_string().len() - 2);
    }

    #[test]
    fn small_inputs_are_kept_whole() {
        let out: Value = serde_json::from_slice(&with_payload(record(), b"{\"a\":", 1000)).unwrap();
        assert_eq!(out["data"], "{\"a\":");
        assert!(out.get("data_truncated").is_none());
        let out: Value = serde_json::from_slice(&with_payload(record(), &[0xff, 0], 1000)).unwrap();
        assert_eq!(out["data_base64"], "/wA=");
    }

    #[test]
    fn a_one_mib_binary_input_is_cut_to_fit_with_its_size_and_hash() {
        let data: Vec<u8> = (0..RECORD_MAX_DATA_BYTES)
            .map(|i| (i % 251) as u8 | 0x80)
            .collect();
        let budget = data_budget("k");
        let bytes = with_payload(record(), &data, budget);
        assert!(
            bytes.len() <= budget && bytes.len() > budget - 8,
            "{}",
            bytes.len()
        );
        let out: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(out["data_truncated"], true);
        assert_eq!(out["data_bytes"], RECORD_MAX_DATA_BYTES);
        assert_eq!(out["data_sha256"], format!("{:x}", Sha256::digest(&data)));
        let kept = out["data_base64"].as_str().unwrap();
        assert!(base64_of(&data).starts_with(kept));
    }

    #[test]
    fn escaped_text_is_cut_at_a_character_and_fits() {
        // Control characters take 6 bytes each once escaped; é takes 2.
        let data = "\u{01}é\"".repeat(200_000);
        let bytes = with_payload(record(), data.as_bytes(), 100_000);
        assert!(
            bytes.len() <= 100_000 && bytes.len() > 100_000 - 8,
            "{}",
            bytes.len()
        );
        let out: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(data.starts_with(out["data"].as_str().unwrap()));
        assert_eq!(out["data_bytes"], data.len());
    }

    #[test]
    fn long_reasons_are_cut_at_a_character() {
        let r = short_reason(&"é".repeat(5000));
        assert!(r.len() <= MAX_REASON_BYTES + '…'.len_utf8() && r.ends_with('…'));
        assert_eq!(short_reason("short"), "short");
    }
}
