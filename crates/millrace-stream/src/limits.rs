//! The Amazon Kinesis Data Streams service limits millrace keeps, in one place: the gateway
//! enforces them on requests, and `millrace-io` splits its puts and sizes its reads by them, so
//! a batch millrace builds is always one that Amazon Kinesis (and millrace's own API) accepts.

/// Most records one PutRecords request may carry.
pub const PUT_RECORDS_MAX_RECORDS: usize = 500;

/// Most bytes one PutRecords request may carry, counting each record's data and partition key.
pub const PUT_RECORDS_MAX_BYTES: usize = 5 * 1024 * 1024;

/// Most bytes of data in one record (before base64), for PutRecord and each PutRecords entry;
/// the log stores records up to the same size.
pub const RECORD_MAX_DATA_BYTES: usize = crate::segment::MAX_RECORD_BYTES;

/// Most records one GetRecords response holds (and the largest `Limit` a request may ask).
pub const GET_RECORDS_MAX_RECORDS: usize = 10_000;

/// Most bytes of record data one GetRecords response holds.
pub const GET_RECORDS_MAX_BYTES: usize = 10 * 1024 * 1024;
