//! Sequence numbers. Kinesis sequence numbers are decimal strings that only grow within a
//! shard; clients compare them as big integers, and Amazon's have 56 digits. Ours have 56
//! digits in fixed fields, so numeric and lexicographic order agree and the position is
//! recoverable without a lookup:
//!
//! `4` · stream creation time in ms (13 digits) · shard index (10) · per-shard counter (32)
//!
//! The 40-digit form of earlier versions (`4` · 13 · shard (6) · counter (20)) is still read,
//! so checkpoints written before stay valid; it sorts below every 56-digit number.
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
        if !s.starts_with('4') || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let shard_end = match s.len() {
            56 => 24,
            40 => 20,
            _ => return None,
        };
        Some(Self {
            stream_created_ms: s[1..14].parse().ok()?,
            shard: s[14..shard_end].parse().ok()?,
            counter: s[shard_end..].parse().ok()?,
        })
    }
}

impl SequenceNumber {
    /// The 56 digits, written into fixed fields: one per record in every PutRecords reply,
    /// where `fmt`'s zero padding (a call per padding character) cost ~5% of the server's CPU.
    pub fn digits(&self) -> [u8; 56] {
        let mut out = [b'0'; 56];
        out[0] = b'4';
        let created = self.stream_created_ms.rem_euclid(10_i64.pow(13)) as u64;
        put_decimal(&mut out[1..14], created);
        put_decimal(&mut out[14..24], u64::from(self.shard));
        put_decimal(&mut out[24..], self.counter);
        out
    }
}

/// `value` right-aligned in `field` (already zero-filled); `field` holds every u64 it is given.
fn put_decimal(field: &mut [u8], mut value: u64) {
    for b in field.iter_mut().rev() {
        if value == 0 {
            break;
        }
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.digits();
        f.write_str(std::str::from_utf8(&digits).expect("ASCII digits"))
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
        assert_eq!(a.to_string().len(), 56);
        let legacy = "4176400000000000000300000000000000000009";
        assert_eq!(SequenceNumber::parse(legacy), Some(a));
        assert!(SequenceNumber::parse("123").is_none());
        assert!(SequenceNumber::parse(&"5".repeat(40)).is_none());
    }

    #[test]
    fn digits_match_the_zero_padded_fields() {
        for (created, shard, counter) in [
            (0, 0, 0),
            (1_764_000_000_000, 3, 9),
            (9_999_999_999_999, u32::MAX, u64::MAX),
            (-1, 1, 10),
            (12_345_678_901_234, 1_000_000, 1 << 40),
        ] {
            let n = SequenceNumber {
                stream_created_ms: created,
                shard,
                counter,
            };
            let want = format!(
                "4{:013}{:010}{:032}",
                created.rem_euclid(10_i64.pow(13)),
                shard,
                counter
            );
            assert_eq!(n.to_string(), want);
            if (0..10_i64.pow(13)).contains(&created) {
                assert_eq!(SequenceNumber::parse(&want), Some(n));
            }
        }
    }
}
