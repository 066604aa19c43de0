//! `millrace-firehose` serves the Amazon Data Firehose API (AWS JSON 1.1, `X-Amz-Target:
//! Firehose_20150804.*`) on the Kinesis listener, in front of millrace's delivery engine, so
//! code written for Firehose (boto3 `firehose`, the AWS CLI, any SDK) works by changing only
//! the endpoint URL.
//!
//! A delivery stream is a [`spec::DeliveryStreamSpec`] in the [`registry::Registry`]
//! (`state/firehose/ds-<name>.json`). Its source is a Kinesis stream of the store
//! (`KinesisStreamAsSource`) or, for `DirectPut`, a one-shard buffer stream in a second store
//! under `DATA_DIR/firehose/`: PutRecord and PutRecordBatch append there and answer once the
//! records are durable (the store's fsync policy), so an acknowledged record survives a crash;
//! `millrace up` runs one `millrace-delivery` per delivery stream from that buffer into the
//! destination bucket, with checkpoints, so nothing is delivered twice. The wire (framing,
//! model checks, error bodies) is `millrace-gateway`'s; this crate holds the operations
//! ([`ops`], [`put`]), their members ([`input`]), what a destination means
//! ([`destination`]) and the description ([`describe`]).

pub mod describe;
pub mod destination;
pub mod error;
pub mod input;
pub mod ops;
pub mod put;
pub mod registry;
pub mod spec;

use std::path::Path;
use std::sync::Arc;

use millrace_gateway::protocol::Out;
use millrace_gateway::request::Request;
use millrace_gateway::{ApiError, ErrorCode, Service, ServiceFuture};
use millrace_stream::Store;

pub use error::FirehoseError;
pub use registry::{Registry, RunState, Status};
pub use spec::DeliveryStreamSpec;

/// `X-Amz-Target` prefix of the Firehose API.
pub const TARGET_PREFIX: &str = "Firehose_20150804.";

/// The Firehose API over a data dir: its delivery streams, their DirectPut buffers and the
/// Kinesis store that `KinesisStreamAsSource` streams read.
#[derive(Debug, Clone)]
pub struct Firehose {
    pub registry: Arc<Registry>,
    /// DirectPut buffers (`DATA_DIR/firehose/`): one stream `ds-<id>` per delivery stream.
    pub buffers: Arc<Store>,
    /// The Kinesis streams.
    pub kinesis: Arc<Store>,
}

impl Firehose {
    /// Opens the registry under `data_dir`'s `state/firehose/` and the buffer store under
    /// `firehose/` (with the Kinesis store's options). Blocking file I/O.
    pub fn open(data_dir: &Path, kinesis: Arc<Store>) -> Result<Self, FirehoseError> {
        let layout = millrace_common::layout::DataDir::new(data_dir);
        let opts = kinesis.options().clone();
        let registry = Registry::open(&layout.firehose(), &opts.account_id, &opts.region)?;
        let root = layout.firehose_buffers();
        let buffers = Store::open(&root, opts).map_err(|e| FirehoseError::Io {
            path: root.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(Self {
            registry: Arc::new(registry),
            buffers: Arc::new(buffers),
            kinesis,
        })
    }

    /// Routes an operation name to its handler.
    pub async fn dispatch(&self, op: &str, req: Request) -> Result<Out, ApiError> {
        match op {
            "CreateDeliveryStream" => ops::create(self, req).await,
            "DeleteDeliveryStream" => ops::delete(self, req).await,
            "DescribeDeliveryStream" => ops::describe(self, req),
            "ListDeliveryStreams" => ops::list(self, req),
            "UpdateDestination" => ops::update_destination(self, req).await,
            "PutRecord" => put::put_record(self, req).await,
            "PutRecordBatch" => put::put_record_batch(self, req).await,
            "TagDeliveryStream" => ops::tag(self, req).await,
            "UntagDeliveryStream" => ops::untag(self, req).await,
            "ListTagsForDeliveryStream" => ops::list_tags(self, req),
            "StartDeliveryStreamEncryption" => ops::start_encryption(self, req).await,
            "StopDeliveryStreamEncryption" => ops::stop_encryption(self, req).await,
            _ => Err(ApiError::new(
                ErrorCode::UnknownOperation,
                format!("Firehose has no operation {op}"),
            )),
        }
    }
}

impl Service for Firehose {
    fn target_prefix(&self) -> &'static str {
        TARGET_PREFIX
    }

    fn signing_name(&self) -> &'static str {
        "firehose"
    }

    /// The delivery stream's ARN (whether or not it exists: CreateDeliveryStream acts on the
    /// one it names); `*` for ListDeliveryStreams.
    fn resource_arn(&self, _op: &str, names: &millrace_gateway::auth::ResourceNames) -> String {
        match names.delivery_stream_name.as_deref() {
            Some(name) => format!(
                "arn:aws:firehose:{}:{}:deliverystream/{name}",
                self.registry.region(),
                self.registry.account()
            ),
            None => "*".into(),
        }
    }

    fn call<'a>(&'a self, op: &'a str, req: Request) -> ServiceFuture<'a> {
        Box::pin(self.dispatch(op, req))
    }

    fn call_json<'a>(&'a self, op: &'a str, body: &'a [u8]) -> Option<ServiceFuture<'a>> {
        if op != "PutRecordBatch" {
            return None;
        }
        let batch = put::FastBatch::parse(body)?;
        Some(Box::pin(put::put_fast(self, batch)))
    }
}

/// Runs blocking registry or store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FirehoseError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorCode::InternalFailure, e.to_string()))?
        .map_err(ApiError::from)
}
