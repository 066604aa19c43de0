//! Writing a Firehose delivery stream through the official SDK (aws-sdk-firehose): millrace's
//! own Firehose API or Amazon Data Firehose. PutRecordBatch takes at most 500 records and
//! 4 MiB per call ([`FirehoseSink::batch_limits`]); a record's place is its `RecordId`.

use async_trait::async_trait;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;

use crate::kinesis::sdk_error;
use crate::sink::{Placed, PutFailure, RecordSink, SinkRecord};
use crate::{IoError, Result};

/// Records per PutRecordBatch.
pub const PUT_RECORD_BATCH_MAX_RECORDS: usize = 500;
/// Data per PutRecordBatch.
pub const PUT_RECORD_BATCH_MAX_BYTES: usize = 4 * 1024 * 1024;

/// A delivery stream to put records into; partition keys are not sent (Firehose has none).
pub struct FirehoseSink {
    client: aws_sdk_firehose::Client,
    name: String,
}

impl FirehoseSink {
    pub fn new(client: aws_sdk_firehose::Client, delivery_stream: &str) -> Self {
        Self {
            client,
            name: delivery_stream.to_owned(),
        }
    }
}

fn record(r: &SinkRecord) -> Record {
    Record::builder()
        .data(Blob::new(r.data.to_vec()))
        .build()
        .expect("data is set")
}

fn placed(record_id: String) -> Placed {
    Placed {
        shard: String::new(),
        sequence: record_id,
    }
}

#[async_trait]
impl RecordSink for FirehoseSink {
    fn stream(&self) -> &str {
        &self.name
    }

    fn batch_limits(&self) -> (usize, usize) {
        (PUT_RECORD_BATCH_MAX_RECORDS, PUT_RECORD_BATCH_MAX_BYTES)
    }

    async fn put_records(
        &self,
        records: &[SinkRecord],
    ) -> Result<Vec<std::result::Result<Placed, PutFailure>>> {
        let out = self
            .client
            .put_record_batch()
            .delivery_stream_name(&self.name)
            .set_records(Some(records.iter().map(record).collect()))
            .send()
            .await
            .map_err(|e| sdk_error(format!("PutRecordBatch to {}", self.name), e))?;
        let responses = out.request_responses();
        if responses.len() != records.len() {
            return Err(IoError::Failed {
                op: format!("PutRecordBatch to {}", self.name),
                message: format!("{} results for {} records", responses.len(), records.len()),
                transient: true,
            });
        }
        Ok(responses
            .iter()
            .map(|r| match (r.record_id(), r.error_code()) {
                (Some(id), None) => Ok(placed(id.to_owned())),
                (_, code) => {
                    let code = code.unwrap_or("InternalFailure").to_owned();
                    Err(PutFailure {
                        retryable: matches!(
                            code.as_str(),
                            "ServiceUnavailableException" | "InternalFailure"
                        ),
                        message: r.error_message().unwrap_or_default().to_owned(),
                        code,
                    })
                }
            })
            .collect())
    }

    async fn put_record(&self, r: &SinkRecord) -> Result<Placed> {
        let out = self
            .client
            .put_record()
            .delivery_stream_name(&self.name)
            .record(record(r))
            .send()
            .await
            .map_err(|e| sdk_error(format!("PutRecord to {}", self.name), e))?;
        Ok(placed(out.record_id().to_owned()))
    }
}
