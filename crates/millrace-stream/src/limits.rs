//! The Amazon Kinesis Data Streams service limits millrace keeps, in one place: the gateway
//! enforces them on requests, the store on every append whoever the writer is
//! ([`check_record`]), and `millrace-io` splits its puts and sizes its reads by them, so a batch
//! millrace builds is always one that Amazon Kinesis (and millrace's own API) accepts.

use crate::error::{Result, StreamError};

/// Most records one PutRecords request may carry.
pub const PUT_RECORDS_MAX_RECORDS: usize = 500;

/// Most bytes one PutRecords request may carry, counting each record's data and partition key.
pub const PUT_RECORDS_MAX_BYTES: usize = 5 * 1024 * 1024;

/// Most bytes of one record (data before base64 plus partition key) on a stream with the
/// default maximum record size (1 MiB).
pub const RECORD_MAX_DATA_BYTES: usize = 1024 * 1024;

/// Most bytes of one record on a stream after UpdateMaxRecordSize (10 MiB); the log stores
/// records up to this size.
pub const RECORD_MAX_BYTES_CEILING: usize = crate::segment::MAX_RECORD_BYTES;

/// The range UpdateMaxRecordSize accepts, in KiB.
pub const MAX_RECORD_SIZE_KIB: std::ops::RangeInclusive<u32> = 1024..=10240;

/// Characters (not bytes) a partition key has: 1 to this many.
pub const PARTITION_KEY_MAX_CHARS: usize = 256;

/// Most records one GetRecords response holds (and the largest `Limit` a request may ask).
pub const GET_RECORDS_MAX_RECORDS: usize = 10_000;

/// Most bytes of record data one GetRecords response holds.
pub const GET_RECORDS_MAX_BYTES: usize = 10 * 1024 * 1024;

/// Whether one record is within the per-record limits of a stream with the default record
/// size: see [`check_record_within`].
pub fn check_record(partition_key: &str, data: &[u8]) -> Result<()> {
    check_record_within(partition_key, data, RECORD_MAX_DATA_BYTES)
}

/// Whether one record is within the per-record limits the API keeps: data plus partition key
/// (UTF-8 bytes) at most `max_bytes` (the stream's maximum record size) and a partition key of
/// 1 to [`PARTITION_KEY_MAX_CHARS`] characters. The store checks every append with it.
pub fn check_record_within(partition_key: &str, data: &[u8], max_bytes: usize) -> Result<()> {
    let bytes = data.len() + partition_key.len();
    if bytes > max_bytes {
        return Err(StreamError::RecordTooLarge {
            bytes,
            limit: max_bytes,
        });
    }
    let chars = partition_key.chars().count();
    if !(1..=PARTITION_KEY_MAX_CHARS).contains(&chars) {
        return Err(StreamError::PartitionKeyLength {
            chars,
            max: PARTITION_KEY_MAX_CHARS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_at_the_limits_pass_and_over_them_fail() {
        check_record("k", &vec![0; RECORD_MAX_DATA_BYTES - 1]).unwrap();
        assert!(check_record("kk", &vec![0; RECORD_MAX_DATA_BYTES - 1]).is_err());
        check_record_within(
            "k",
            &vec![0; RECORD_MAX_BYTES_CEILING - 1],
            RECORD_MAX_BYTES_CEILING,
        )
        .unwrap();
        check_record(&"é".repeat(256), b"").unwrap();
        assert!(matches!(
            check_record("k", &vec![0; RECORD_MAX_DATA_BYTES + 1]),
            Err(StreamError::RecordTooLarge { bytes, .. }) if bytes == RECORD_MAX_DATA_BYTES + 2
        ));
        assert!(matches!(
            check_record("", b"x"),
            Err(StreamError::PartitionKeyLength { chars: 0, .. })
        ));
        assert!(matches!(
            check_record(&"k".repeat(257), b"x"),
            Err(StreamError::PartitionKeyLength { chars: 257, .. })
        ));
    }
}
