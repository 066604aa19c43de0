//! Sequence numbers. Kinesis sequence numbers are decimal strings that only grow within a
//! shard; clients compare them as big integers. Ours are 40 digits with fixed fields, so
//! numeric and lexicographic order agree and the position is recoverable without a lookup:
//!
//! `4` · stream creation time in ms (13 digits) · shard index (6) · per-shard counter (20)
//!
//! The creation time tells a sequence number of a deleted-and-recreated stream from one of the
//! current stream; the counter is the record's position in the shard's log.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SequenceNumber {
    pub stream_created_ms: i64,
    pub shard: u32,
    pub counter: u64,
}

impl SequenceNumber {
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 40 || !s.starts_with('4') || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self {
            stream_created_ms: s[1..14].parse().ok()?,
            shard: s[14..20].parse().ok()?,
            counter: s[20..40].parse().ok()?,
        })
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "4{:013}{:06}{:020}",
            self.stream_created_ms.rem_euclid(10_i64.pow(13)),
            self.shard,
            self.counter
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_orders_like_integers() {
        let a = SequenceNumber {
            stream_created_ms: 1_764_000_000_000,
            shard: 3,
            counter: 9,
        };
        let b = SequenceNumber { counter: 10, ..a };
        assert_eq!(SequenceNumber::parse(&a.to_string()), Some(a));
        assert!(a.to_string() < b.to_string());
        assert_eq!(a.to_string().len(), 40);
        assert!(SequenceNumber::parse("123").is_none());
        assert!(SequenceNumber::parse(&"5".repeat(40)).is_none());
    }
}
