//! Kinesis routing: a record's hash key is the MD5 of its partition key read as a 128-bit
//! big-endian number (or an explicit hash key), and shard `i` of `n` owns an equal slice of
//! the 2^128 key space, exactly as Amazon Kinesis splits a new stream.

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// An inclusive range of 128-bit hash keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashKeyRange {
    pub start: u128,
    pub end: u128,
}

impl HashKeyRange {
    pub fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }
}

/// MD5 of the partition key's UTF-8 bytes as a big-endian 128-bit integer.
pub fn hash_key_for_partition_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// `floor(2^128 / n)`, the width of each shard's slice. 2^128 itself does not fit in a u128,
/// so it is derived from `u128::MAX = 2^128 - 1`.
fn slice_width(n: u32) -> u128 {
    let n = u128::from(n.max(1));
    // For one shard the width is 2^128; saturating to u128::MAX routes the same way.
    (u128::MAX / n).saturating_add(u128::from(n > 1 && u128::MAX % n == n - 1))
}

/// The hash-key ranges of a stream created with `n` shards.
pub fn shard_ranges(n: u32) -> Vec<HashKeyRange> {
    let width = slice_width(n);
    (0..n)
        .map(|i| {
            let start = width * u128::from(i);
            let end = if i + 1 == n {
                u128::MAX
            } else {
                width * u128::from(i + 1) - 1
            };
            HashKeyRange { start, end }
        })
        .collect()
}

/// Index of the shard (of `n` equal slices) that owns `key`.
#[cfg(test)]
pub(crate) fn shard_for_key(key: u128, n: u32) -> u32 {
    let idx = key / slice_width(n);
    (idx as u32).min(n - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_shards_match_kinesis_boundaries() {
        let r = shard_ranges(4);
        assert_eq!(r[1].start, 1u128 << 126);
        assert_eq!(r[2].start, 1u128 << 127);
        assert_eq!(r[0].end, (1u128 << 126) - 1);
        assert_eq!(r[3].end, u128::MAX);
    }

    #[test]
    fn ranges_tile_the_key_space_for_odd_counts() {
        for n in [1u32, 3, 5, 7, 100, 1000] {
            let r = shard_ranges(n);
            assert_eq!(r[0].start, 0);
            assert_eq!(r.last().unwrap().end, u128::MAX);
            for w in r.windows(2) {
                assert_eq!(w[0].end + 1, w[1].start);
            }
            for (i, range) in r.iter().enumerate() {
                assert_eq!(shard_for_key(range.start, n), i as u32);
                assert_eq!(shard_for_key(range.end, n), i as u32);
            }
        }
    }

    #[test]
    fn md5_is_big_endian() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(
            hash_key_for_partition_key(""),
            0xd41d8cd98f00b204e9800998ecf8427e_u128
        );
    }
}
