//! Firehose's processors for CloudWatch Logs subscriptions: `Decompression` (a record is
//! gzip-compressed, as CloudWatch Logs sends it) and `CloudWatchLogProcessing` with
//! `DataMessageExtraction` (a subscription payload becomes one record per log event's
//! `message`, each followed by a newline; control messages are dropped).

use std::io::Read;

use bytes::Bytes;
use serde::Deserialize;

/// Largest decompressed record: Firehose caps a processed record like a put one, and a small
/// gzip member can claim gigabytes ("zip bomb"), so inflation stops here.
pub const MAX_DECOMPRESSED_BYTES: u64 = 10 * 1024 * 1024;

/// Why a record cannot be processed (it then goes to the error prefix as it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogsError {
    #[error("decompression (GZIP): {0}")]
    Gzip(String),
    #[error(
        "decompression (GZIP): the record inflates to more than {} MiB",
        MAX_DECOMPRESSED_BYTES / (1024 * 1024)
    )]
    TooLarge,
    #[error("CloudWatch Logs message extraction: not a subscription payload: {0}")]
    NotLogs(String),
    #[error("CloudWatch Logs message extraction: unknown messageType {0:?}")]
    MessageType(String),
}

/// The bytes gzip-compressed `data` holds (several members back to back, as `gzip` allows).
pub fn gunzip(data: &[u8]) -> Result<Bytes, LogsError> {
    let mut out = Vec::with_capacity(data.len() * 4);
    flate2::read::MultiGzDecoder::new(data)
        .take(MAX_DECOMPRESSED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| LogsError::Gzip(e.to_string()))?;
    if out.len() as u64 > MAX_DECOMPRESSED_BYTES {
        return Err(LogsError::TooLarge);
    }
    Ok(Bytes::from(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    message_type: String,
    #[serde(default)]
    log_events: Vec<LogEvent>,
}

#[derive(Deserialize)]
struct LogEvent {
    message: String,
}

/// The log messages of a CloudWatch Logs subscription payload, each with a newline after it;
/// none for a `CONTROL_MESSAGE` (CloudWatch Logs' check that the destination is reachable).
pub fn log_messages(data: &[u8]) -> Result<Vec<Bytes>, LogsError> {
    let payload: Payload =
        serde_json::from_slice(data).map_err(|e| LogsError::NotLogs(e.to_string()))?;
    match payload.message_type.as_str() {
        "DATA_MESSAGE" => Ok(payload
            .log_events
            .into_iter()
            .map(|e| {
                let mut line = e.message.into_bytes();
                line.push(b'\n');
                Bytes::from(line)
            })
            .collect()),
        "CONTROL_MESSAGE" => Ok(Vec::new()),
        other => Err(LogsError::MessageType(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(data).unwrap();
        z.finish().unwrap()
    }

    #[test]
    fn gzip_records_inflate_and_bombs_are_refused() {
        assert_eq!(
            gunzip(&gzip(b"hello")).unwrap(),
            Bytes::from_static(b"hello")
        );
        let mut two = gzip(b"a");
        two.extend(gzip(b"b"));
        assert_eq!(gunzip(&two).unwrap(), Bytes::from_static(b"ab"));
        assert!(matches!(gunzip(b"plain text"), Err(LogsError::Gzip(_))));
        let bomb = gzip(&vec![0u8; MAX_DECOMPRESSED_BYTES as usize + 1]);
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(gunzip(&bomb), Err(LogsError::TooLarge));
    }

    #[test]
    fn data_messages_become_lines_and_control_messages_nothing() {
        let data = br#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"g",
            "logStream":"s","subscriptionFilters":["f"],"logEvents":[
            {"id":"1","timestamp":1,"message":"first"},
            {"id":"2","timestamp":2,"message":"{\"level\":\"warn\"}"}]}"#;
        assert_eq!(
            log_messages(data).unwrap(),
            vec![
                Bytes::from_static(b"first\n"),
                Bytes::from_static(b"{\"level\":\"warn\"}\n")
            ]
        );
        let control = br#"{"messageType":"CONTROL_MESSAGE","logEvents":[
            {"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
        assert_eq!(log_messages(control).unwrap(), Vec::<Bytes>::new());
        assert!(matches!(log_messages(b"[1]"), Err(LogsError::NotLogs(_))));
        assert!(matches!(
            log_messages(br#"{"messageType":"OTHER"}"#),
            Err(LogsError::MessageType(_))
        ));
    }
}
