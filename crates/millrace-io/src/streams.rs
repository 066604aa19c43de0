//! The one place a stream is opened: [`Streams`] is where streams live (the embedded store,
//! or a Kinesis API), [`StreamTarget`] one stream there. Both hand out trait objects, so
//! callers never name a backend; a new backend (Kafka) is a module and one variant in each.

use std::sync::Arc;
use std::time::Duration;

use millrace_stream::{Store, StreamError, StreamHandle, StreamMode};

use crate::embedded::{EmbeddedSink, EmbeddedSource, store_error};
use crate::kinesis::{KinesisSink, KinesisSource};
use crate::sink::RecordSink;
use crate::source::RecordSource;
use crate::{IoError, Result};

/// Where streams live.
#[derive(Debug, Clone)]
pub enum Streams {
    /// The embedded store of this process (`millrace up`, the demo).
    Embedded(Arc<Store>),
    /// Any Kinesis API.
    Kinesis {
        client: aws_sdk_kinesis::Client,
        /// How often a caught-up shard is polled (Kinesis allows 5 reads/s per shard).
        poll: Duration,
    },
}

impl Streams {
    /// A Kinesis API polled at Kinesis's own pace (200 ms when caught up).
    pub fn kinesis(client: aws_sdk_kinesis::Client) -> Self {
        Streams::Kinesis {
            client,
            poll: crate::kinesis::POLL,
        }
    }

    /// Stream `name`. The embedded store checks it exists now; a Kinesis API on first use.
    pub fn open(&self, name: &str) -> Result<StreamTarget> {
        Ok(match self {
            Streams::Embedded(store) => StreamTarget::Embedded(
                store
                    .stream(name)
                    .map_err(|e| store_error(format!("stream {name}"), e))?,
            ),
            Streams::Kinesis { client, poll } => StreamTarget::Kinesis {
                client: client.clone(),
                stream: name.to_owned(),
                poll: *poll,
            },
        })
    }

    /// A reader of stream `name`.
    pub fn source(&self, name: &str) -> Result<Arc<dyn RecordSource>> {
        Ok(self.open(name)?.source())
    }

    /// A writer of stream `name`.
    pub fn sink(&self, name: &str) -> Result<Arc<dyn RecordSink>> {
        Ok(self.open(name)?.sink())
    }

    /// True when stream `name` exists.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        match self {
            Streams::Embedded(store) => Ok(store.stream(name).is_ok()),
            Streams::Kinesis { client, .. } => crate::kinesis::exists(client, name).await,
        }
    }

    /// Creates stream `name` when it does not exist (`shards` provisioned shards, or
    /// on-demand when `None`) and waits until it can be used. True when this call created it.
    pub async fn ensure(&self, name: &str, shards: Option<u32>) -> Result<bool> {
        match self {
            Streams::Embedded(store) => {
                let (store, owned) = (store.clone(), name.to_owned());
                let mode = match shards {
                    Some(_) => StreamMode::Provisioned,
                    None => StreamMode::OnDemand,
                };
                let created = tokio::task::spawn_blocking(move || {
                    store.create(&owned, mode, shards, 24, Default::default())
                })
                .await
                .map_err(|e| IoError::task(format!("creating stream {name}"), e))?;
                match created {
                    Ok(_) => Ok(true),
                    Err(StreamError::StreamExists(_)) => Ok(false),
                    Err(e) => Err(store_error(format!("creating stream {name}"), e)),
                }
            }
            Streams::Kinesis { client, .. } => crate::kinesis::ensure(client, name, shards).await,
        }
    }
}

/// One stream, ready to read and write.
#[derive(Debug, Clone)]
pub enum StreamTarget {
    Embedded(Arc<StreamHandle>),
    Kinesis {
        client: aws_sdk_kinesis::Client,
        stream: String,
        poll: Duration,
    },
}

impl StreamTarget {
    /// The stream's name.
    pub fn name(&self) -> String {
        match self {
            StreamTarget::Embedded(handle) => handle.name(),
            StreamTarget::Kinesis { stream, .. } => stream.clone(),
        }
    }

    pub fn source(&self) -> Arc<dyn RecordSource> {
        match self {
            StreamTarget::Embedded(handle) => Arc::new(EmbeddedSource::new(handle.clone())),
            StreamTarget::Kinesis {
                client,
                stream,
                poll,
            } => Arc::new(KinesisSource::new(client.clone(), stream).with_poll(*poll)),
        }
    }

    pub fn sink(&self) -> Arc<dyn RecordSink> {
        match self {
            StreamTarget::Embedded(handle) => Arc::new(EmbeddedSink::new(handle.clone())),
            StreamTarget::Kinesis { client, stream, .. } => {
                Arc::new(KinesisSink::new(client.clone(), stream))
            }
        }
    }
}
