//! The one place a stream is opened: [`Streams`] is where streams live (the embedded store,
//! or a Kinesis API), [`StreamTarget`] one stream there. Both hand out trait objects, so
//! callers never name a backend. A stream named `kafka://BROKERS/TOPIC` is a Kafka topic
//! wherever the other streams live ([`crate::kafka`]): every reader and writer takes one.

use std::sync::Arc;
use std::time::Duration;

use millrace_stream::{Store, StreamError, StreamHandle, StreamMode};

use crate::embedded::{EmbeddedSink, EmbeddedSource, store_error};
use crate::kafka::{KafkaSink, KafkaSource, KafkaUrl};
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

    /// Stream `name`. The embedded store checks it exists now; a Kinesis API and Kafka on
    /// first use.
    pub fn open(&self, name: &str) -> Result<StreamTarget> {
        if let Some(url) = kafka_url(name)? {
            return Ok(StreamTarget::Kafka(url));
        }
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
        self.open(name)?.source()
    }

    /// A reader of stream `name` that shares the stream with the other readers named `group`:
    /// for a Kafka topic, a member of consumer group `group` (its partitions and checkpoints,
    /// see [`crate::kafka_group`]); other streams are read whole, as [`Streams::source`].
    pub fn group_source(&self, name: &str, group: &str) -> Result<Arc<dyn RecordSource>> {
        match self.open(name)? {
            StreamTarget::Kafka(url) => Ok(Arc::new(KafkaSource::in_group(url, group)?)),
            target => target.source(),
        }
    }

    /// A writer of stream `name`.
    pub fn sink(&self, name: &str) -> Result<Arc<dyn RecordSink>> {
        self.open(name)?.sink()
    }

    /// True when stream `name` exists.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        if let Some(url) = kafka_url(name)? {
            return crate::kafka::exists(&url).await;
        }
        match self {
            Streams::Embedded(store) => Ok(store.stream(name).is_ok()),
            Streams::Kinesis { client, .. } => crate::kinesis::exists(client, name).await,
        }
    }

    /// Creates stream `name` when it does not exist (`shards` provisioned shards, or
    /// on-demand when `None`) and waits until it can be used. True when this call created it.
    pub async fn ensure(&self, name: &str, shards: Option<u32>) -> Result<bool> {
        if let Some(url) = kafka_url(name)? {
            return crate::kafka::ensure(&url, shards).await;
        }
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

/// Checks a stream name given in configuration or a flag: a Kinesis stream name
/// (1-128 characters of `[A-Za-z0-9_.-]`) or a `kafka://BROKERS/TOPIC` name.
pub fn check_stream_name(name: &str) -> std::result::Result<(), String> {
    match KafkaUrl::parse(name) {
        Some(parsed) => parsed.map(|_| ()),
        None => millrace_common::keys::check_name(name)
            .map_err(|_| format!("{name:?}: not a stream name (1-128 characters of [A-Za-z0-9_.-], or kafka://HOST:PORT/TOPIC)")),
    }
}

/// The Kafka topic `name` names, if it is a `kafka://` name.
fn kafka_url(name: &str) -> Result<Option<KafkaUrl>> {
    KafkaUrl::parse(name)
        .transpose()
        .map_err(|message| IoError::Rejected {
            op: "opening a stream".into(),
            message,
        })
}

/// One stream, ready to read and write.
#[derive(Debug, Clone)]
pub enum StreamTarget {
    Embedded(Arc<StreamHandle>),
    /// A Kafka topic (`kafka://BROKERS/TOPIC`).
    Kafka(KafkaUrl),
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
            StreamTarget::Kafka(url) => url.to_string(),
        }
    }

    /// A reader. Kafka's clients are made here (a bad broker list fails now).
    pub fn source(&self) -> Result<Arc<dyn RecordSource>> {
        Ok(match self {
            StreamTarget::Embedded(handle) => Arc::new(EmbeddedSource::new(handle.clone())),
            StreamTarget::Kinesis {
                client,
                stream,
                poll,
            } => Arc::new(KinesisSource::new(client.clone(), stream).with_poll(*poll)),
            StreamTarget::Kafka(url) => Arc::new(KafkaSource::new(url.clone())?),
        })
    }

    /// A writer.
    pub fn sink(&self) -> Result<Arc<dyn RecordSink>> {
        Ok(match self {
            StreamTarget::Embedded(handle) => Arc::new(EmbeddedSink::new(handle.clone())),
            StreamTarget::Kinesis { client, stream, .. } => {
                Arc::new(KinesisSink::new(client.clone(), stream))
            }
            StreamTarget::Kafka(url) => Arc::new(KafkaSink::new(url.clone())?),
        })
    }
}
