//! Kafka topics as streams, through librdkafka (`rdkafka`): a stream named
//! `kafka://HOST:PORT[,HOST:PORT…]/TOPIC` is that topic, its partitions play the part of
//! shards (`partition-N`) and offsets the part of sequence numbers (decimal strings, so
//! [`crate::seq_cmp`] orders them and checkpoints mean the same as for Kinesis).
//!
//! - [`KafkaSource`] reads each partition with a consumer of its own, assigned to that one
//!   partition at the position asked for (no group offsets: the reader's checkpoint is the
//!   position, as for Kinesis). A read waits up to its `wait` for the first message, takes what
//!   has arrived (10,000 records / 10 MiB at most, GetRecords's limits) and asks the broker for
//!   the partition's end to say whether it is caught up.
//! - [`KafkaSink`] is an idempotent producer (`enable.idempotence`: no duplicates from its own
//!   retries, order kept per partition) whose partitioner is Kafka's Java one (`murmur2_random`),
//!   so a partition key lands where a Java or kafka-python producer would put it.
//!
//! Why librdkafka: the reference client of the Kafka protocol outside the JVM, with consumer
//! groups, the idempotent producer and transactions, built here from source by `rdkafka-sys`
//! (C compiler and make, no cmake). The maintained pure-Rust client (`rskafka`) has no consumer
//! groups.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::checkpoint::SharedCheckpoints;
use crate::kafka_group::KafkaGroup;
use crate::limits::{GET_RECORDS_MAX_BYTES, GET_RECORDS_MAX_RECORDS};
use crate::sink::{Placed, PutFailure, RecordSink, SinkRecord};
use crate::source::{RecordSource, ShardInfo, SourceBatch, SourceRecord};
use crate::{IoError, Result};

/// The scheme of a stream name that is a Kafka topic.
pub const SCHEME: &str = "kafka://";

/// How long a metadata, watermark or admin call to the brokers may take.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Partitions a topic gets when it is created without a count (Kinesis's on-demand streams
/// start with 4 shards).
pub const DEFAULT_PARTITIONS: u32 = 4;

/// A parsed `kafka://BROKERS/TOPIC` stream name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaUrl {
    /// Bootstrap servers, `host:port` separated by commas.
    pub brokers: String,
    pub topic: String,
}

impl KafkaUrl {
    /// `None` when `name` is not a Kafka stream name; otherwise the parsed name, or what is
    /// wrong with it.
    pub fn parse(name: &str) -> Option<std::result::Result<Self, String>> {
        let rest = name.strip_prefix(SCHEME)?;
        Some(Self::parse_rest(rest).map_err(|problem| {
            format!("{name:?}: {problem} (expected kafka://HOST:PORT[,HOST:PORT...]/TOPIC)")
        }))
    }

    fn parse_rest(rest: &str) -> std::result::Result<Self, String> {
        let (brokers, topic) = rest.split_once('/').ok_or("no /TOPIC after the brokers")?;
        if brokers.is_empty() {
            return Err("no broker".into());
        }
        for broker in brokers.split(',') {
            let (host, port) = broker
                .rsplit_once(':')
                .ok_or_else(|| format!("broker {broker:?} has no :PORT"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(format!("broker {broker:?} is not HOST:PORT"));
            }
        }
        check_topic(topic)?;
        Ok(Self {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
        })
    }
}

impl std::fmt::Display for KafkaUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.brokers, self.topic)
    }
}

/// Kafka's rule for topic names: 1-249 characters of `[A-Za-z0-9._-]`, not `.` or `..`.
fn check_topic(topic: &str) -> std::result::Result<(), String> {
    let ok = !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "topic {topic:?} is not 1-249 characters of [A-Za-z0-9._-]"
        ))
    }
}

/// The name a stream goes by in folders, prefixes and metrics: the topic of a Kafka stream,
/// the name itself otherwise.
pub fn short_name(stream: &str) -> &str {
    match stream.strip_prefix(SCHEME) {
        Some(rest) => rest.split_once('/').map_or(rest, |(_, topic)| topic),
        None => stream,
    }
}

/// The shard id of partition `p`.
pub fn shard_id(partition: i32) -> String {
    format!("partition-{partition}")
}

pub(crate) fn partition_of(stream: &KafkaUrl, shard: &str) -> Result<i32> {
    shard
        .strip_prefix("partition-")
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|p| *p >= 0)
        .ok_or_else(|| IoError::BadPosition {
            op: format!("reading {stream}"),
            message: format!("{shard:?} is not a partition of a Kafka topic (partition-N)"),
        })
}

pub(crate) fn offset_of(stream: &KafkaUrl, sequence: &str) -> Result<i64> {
    sequence
        .parse::<i64>()
        .ok()
        .filter(|o| *o >= 0)
        .ok_or_else(|| IoError::BadPosition {
            op: format!("reading {stream}"),
            message: format!("{sequence:?} is not a Kafka offset"),
        })
}

/// Maps a client error onto what a caller can act on.
pub(crate) fn kafka_error(op: String, e: KafkaError) -> IoError {
    let code = e.rdkafka_error_code();
    let message = e.to_string();
    match code {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            IoError::StreamNotFound { op, message }
        }
        Some(
            RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::BrokerNotAvailable
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut,
        ) => IoError::Unreachable { op, message },
        Some(RDKafkaErrorCode::QueueFull | RDKafkaErrorCode::ThrottlingQuotaExceeded) => {
            IoError::Throttled { op, message }
        }
        Some(RDKafkaErrorCode::InvalidConfig | RDKafkaErrorCode::InvalidArgument) => {
            IoError::Rejected { op, message }
        }
        _ => IoError::Failed {
            op,
            message,
            transient: true,
        },
    }
}

pub(crate) fn base_config(stream: &KafkaUrl) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &stream.brokers)
        .set("client.id", "millrace")
        // A broker that is down is reported by the calls that need it, not logged forever.
        .set("log_level", "3");
    // librdkafka's own debug contexts (`cgrp,fetch,protocol`…), for diagnosing a broker.
    if let Ok(contexts) = std::env::var("MILLRACE_KAFKA_DEBUG") {
        config.set("debug", contexts).set("log_level", "7");
    }
    config
}

/// Runs a blocking librdkafka call (metadata, watermarks) off the async threads.
async fn blocking<T: Send + 'static>(
    op: &str,
    f: impl FnOnce() -> std::result::Result<T, KafkaError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IoError::task(op.to_owned(), e))?
        .map_err(|e| kafka_error(op.to_owned(), e))
}

/// The topic's partitions; `StreamNotFound` when it does not exist.
async fn partitions(stream: &KafkaUrl, consumer: Arc<StreamConsumer>) -> Result<Vec<i32>> {
    let topic = stream.topic.clone();
    let op = format!("listing the partitions of {stream}");
    let metadata = blocking(&op, move || {
        consumer.fetch_metadata(Some(&topic), CALL_TIMEOUT)
    })
    .await?;
    let Some(topic) = metadata.topics().first() else {
        return Err(IoError::StreamNotFound {
            op,
            message: format!("no topic {}", stream.topic),
        });
    };
    if let Some(e) = topic.error() {
        return Err(kafka_error(op, KafkaError::MetadataFetch(e.into())));
    }
    if topic.partitions().is_empty() {
        return Err(IoError::StreamNotFound {
            op,
            message: format!("topic {} has no partitions", stream.topic),
        });
    }
    let mut ids: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(ids)
}

/// True when the topic exists.
pub async fn exists(stream: &KafkaUrl) -> Result<bool> {
    let consumer = Arc::new(consumer(stream)?);
    match partitions(stream, consumer).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates the topic with `partitions` partitions (the brokers' default replication) unless it
/// exists. True when this call created it.
pub async fn ensure(stream: &KafkaUrl, partitions: Option<u32>) -> Result<bool> {
    if exists(stream).await? {
        return Ok(false);
    }
    let op = format!("creating {stream}");
    let admin: AdminClient<DefaultClientContext> = base_config(stream)
        .create()
        .map_err(|e| kafka_error(op.clone(), e))?;
    let count = partitions.unwrap_or(DEFAULT_PARTITIONS) as i32;
    let topic = NewTopic::new(&stream.topic, count, TopicReplication::Fixed(-1));
    let options = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(|e| kafka_error(op.clone(), e))?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => return Ok(false),
            Err((_, code)) => return Err(kafka_error(op, KafkaError::AdminOp(code))),
        }
    }
    // The brokers learn of a new topic asynchronously: wait until its metadata shows.
    let started = std::time::Instant::now();
    while !exists(stream).await? {
        if started.elapsed() > CALL_TIMEOUT {
            return Err(IoError::Failed {
                op,
                message: "the topic was created but its partitions did not show in time".into(),
                transient: true,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(true)
}

fn consumer(stream: &KafkaUrl) -> Result<StreamConsumer> {
    base_config(stream)
        // Positions are the reader's own checkpoints: nothing is committed to the brokers.
        .set("group.id", "millrace")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A position older than the retained log resumes at the oldest record kept, as a
        // Kinesis reader behind the trim horizon does.
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // One consumer per partition: prefetch at most 16 MiB each (librdkafka's default is 64).
        .set("queued.max.messages.kbytes", "16384")
        // Up to 8 MiB of a partition per fetch (librdkafka's default is 1 MiB): a backlog
        // comes in a quarter of the round trips.
        .set("fetch.message.max.bytes", "8388608")
        .create()
        .map_err(|e| kafka_error(format!("connecting to {stream}"), e))
}

/// One partition's consumer and where its next message comes from.
struct PartitionReader {
    consumer: Arc<StreamConsumer>,
    /// The offset the consumer is positioned at (`None`: the oldest, not known yet).
    next: Option<i64>,
    /// False until the consumer has been assigned a position.
    assigned: bool,
    /// In a consumer group: the partition's assignment count when this reader started
    /// ([`KafkaGroup::begin_read`]).
    epoch: Option<u64>,
}

/// Reads a topic, partition by partition: all of them, or with [`KafkaSource::in_group`] those
/// its consumer group gives this process.
pub struct KafkaSource {
    stream: KafkaUrl,
    name: String,
    group: Option<Arc<KafkaGroup>>,
    /// For metadata and watermarks.
    admin: Arc<StreamConsumer>,
    readers: parking_lot::Mutex<HashMap<i32, Arc<tokio::sync::Mutex<PartitionReader>>>>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("stream", &self.name)
            .finish()
    }
}

impl KafkaSource {
    pub fn new(stream: KafkaUrl) -> Result<Self> {
        Ok(Self {
            admin: Arc::new(consumer(&stream)?),
            name: stream.to_string(),
            stream,
            group: None,
            readers: Default::default(),
        })
    }

    /// Reads only the partitions consumer group `group` gives this process, and keeps the
    /// readers' checkpoints in the group ([`KafkaGroup`]).
    pub fn in_group(stream: KafkaUrl, group: &str) -> Result<Self> {
        let member = Arc::new(KafkaGroup::join(&stream, group)?);
        Ok(Self {
            group: Some(member),
            ..Self::new(stream)?
        })
    }

    fn reader(&self, partition: i32) -> Result<Arc<tokio::sync::Mutex<PartitionReader>>> {
        let mut readers = self.readers.lock();
        if let Some(r) = readers.get(&partition) {
            return Ok(r.clone());
        }
        let reader = Arc::new(tokio::sync::Mutex::new(PartitionReader {
            consumer: Arc::new(consumer(&self.stream)?),
            next: None,
            assigned: false,
            epoch: None,
        }));
        readers.insert(partition, reader.clone());
        Ok(reader)
    }

    /// True when the partition holds records past the reader's position. The position is the
    /// consumer's own (past transaction markers it skipped) where it has one.
    async fn behind(&self, r: &PartitionReader, partition: i32) -> Result<bool> {
        let (low, high) = self.watermarks(partition).await?;
        let fetched = r.consumer.position().ok().and_then(|tpl| {
            match tpl.find_partition(&self.stream.topic, partition)?.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            }
        });
        let position = fetched.max(r.next).unwrap_or(low).max(low);
        Ok(position < high)
    }

    /// The partition's oldest retained offset and its end (the next offset a write gets).
    async fn watermarks(&self, partition: i32) -> Result<(i64, i64)> {
        let (consumer, topic) = (self.admin.clone(), self.stream.topic.clone());
        let op = format!("reading the ends of {} partition {partition}", self.name);
        blocking(&op, move || {
            consumer.fetch_watermarks(&topic, partition, CALL_TIMEOUT)
        })
        .await
    }
}

#[async_trait]
impl RecordSource for KafkaSource {
    async fn lineage(&self) -> Result<Vec<ShardInfo>> {
        let mut ids = partitions(&self.stream, self.admin.clone()).await?;
        if let Some(group) = self.group.clone() {
            let owned = tokio::task::spawn_blocking(move || group.owned())
                .await
                .map_err(|e| IoError::task(format!("joining a group on {}", self.name), e))?;
            ids.retain(|p| owned.contains(p));
        }
        // Kafka partitions are never split or merged: no shard has parents.
        Ok(ids
            .into_iter()
            .map(|p| ShardInfo {
                id: shard_id(p),
                parents: Vec::new(),
            })
            .collect())
    }

    async fn read(&self, shard: &str, after: Option<&str>, wait: Duration) -> Result<SourceBatch> {
        let partition = partition_of(&self.stream, shard)?;
        let want = after.map(|s| offset_of(&self.stream, s)).transpose()?;
        let want = want.map(|o| o + 1);
        let reader = self.reader(partition)?;
        let mut r = reader.lock().await;
        if let Some(group) = &self.group {
            match group.begin_read(partition, r.epoch) {
                Ok(epoch) => r.epoch = Some(epoch),
                Err(e) => {
                    // Handed to another member (maybe and back): stop fetching it here; a
                    // reader that starts again starts from the checkpoint.
                    drop(r);
                    self.readers.lock().remove(&partition);
                    return Err(e);
                }
            }
        }
        if !r.assigned || r.next != want {
            let mut tpl = TopicPartitionList::new();
            let offset = want.map_or(Offset::Beginning, Offset::Offset);
            tpl.add_partition_offset(&self.stream.topic, partition, offset)
                .map_err(|e| kafka_error(format!("positioning {}", self.name), e))?;
            r.consumer
                .assign(&tpl)
                .map_err(|e| kafka_error(format!("positioning {}", self.name), e))?;
            r.next = want;
            r.assigned = true;
        }
        let op = || format!("reading {} partition {partition}", self.name);
        let mut records = Vec::new();
        let mut bytes = 0usize;
        let mut capped = false;
        let consumer = r.consumer.clone();
        let mut deadline = wait;
        let mut checked_backlog = false;
        loop {
            if records.len() >= GET_RECORDS_MAX_RECORDS || bytes >= GET_RECORDS_MAX_BYTES {
                capped = true;
                break;
            }
            // The first message may be waited for; after it, only what is already here.
            let message = match tokio::time::timeout(deadline, consumer.recv()).await {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => return Err(kafka_error(op(), e)),
                Err(_) if records.is_empty() && !checked_backlog => {
                    // Nothing came within `wait`. If the partition holds records past the
                    // position they are on their way (a consumer just positioned has fetched
                    // nothing yet): a read returns what is there, so wait for them.
                    checked_backlog = true;
                    if self.behind(&r, partition).await? {
                        deadline = CALL_TIMEOUT;
                        continue;
                    }
                    break;
                }
                Err(_) if records.is_empty() && self.behind(&r, partition).await? => {
                    // Records are there and none came: an empty page would read as the
                    // partition's end (a replay would stop short), so say what happened.
                    return Err(IoError::Unreachable {
                        op: op(),
                        message: format!(
                            "the partition holds records past offset {} but none arrived in {} s",
                            r.next.map_or("(oldest)".into(), |n| n.to_string()),
                            CALL_TIMEOUT.as_secs()
                        ),
                    });
                }
                Err(_) => break,
            };
            deadline = Duration::ZERO;
            let data = Bytes::copy_from_slice(message.payload().unwrap_or_default());
            let key = message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .unwrap_or_default();
            bytes += data.len() + key.len();
            r.next = Some(message.offset() + 1);
            records.push(SourceRecord {
                sequence: message.offset().to_string(),
                arrival_ms: message
                    .timestamp()
                    .to_millis()
                    .unwrap_or_else(millrace_common::time::now_ms),
                partition_key: key,
                data,
            });
        }
        let caught_up = !capped && !self.behind(&r, partition).await?;
        if let (Some(group), Some(epoch)) = (&self.group, r.epoch) {
            // Taken away while reading: these records are the next owner's.
            group.end_read(partition, epoch)?;
        }
        Ok(SourceBatch {
            records,
            caught_up,
            ended: false,
        })
    }

    async fn newest(&self, shard: &str) -> Result<Option<String>> {
        let partition = partition_of(&self.stream, shard)?;
        let (_, high) = self.watermarks(partition).await?;
        Ok((high > 0).then(|| (high - 1).to_string()))
    }

    fn shared_checkpoints(&self) -> Option<Arc<dyn SharedCheckpoints>> {
        self.group.clone().map(|g| g as Arc<dyn SharedCheckpoints>)
    }
}

/// Writes a topic.
pub struct KafkaSink {
    stream: KafkaUrl,
    name: String,
    producer: FutureProducer,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("stream", &self.name)
            .finish()
    }
}

impl KafkaSink {
    pub fn new(stream: KafkaUrl) -> Result<Self> {
        let producer = base_config(&stream)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .create()
            .map_err(|e| kafka_error(format!("connecting to {stream}"), e))?;
        Ok(Self {
            name: stream.to_string(),
            stream,
            producer,
        })
    }
}

#[async_trait]
impl RecordSink for KafkaSink {
    fn stream(&self) -> &str {
        &self.name
    }

    async fn put_records(
        &self,
        records: &[SinkRecord],
    ) -> Result<Vec<std::result::Result<Placed, PutFailure>>> {
        // Queue every record, then wait for each acknowledgement: the producer batches them
        // per partition and keeps their order.
        let mut pending = Vec::with_capacity(records.len());
        for record in records {
            let queued = self.producer.send_result(
                FutureRecord::to(&self.stream.topic)
                    .key(record.partition_key.as_bytes())
                    .payload(&record.data[..]),
            );
            pending.push(queued.map_err(|(e, _)| e));
        }
        let mut results = Vec::with_capacity(records.len());
        for queued in pending {
            let outcome = match queued {
                Ok(delivery) => match delivery.await {
                    Ok(Ok(d)) => Ok(Placed {
                        shard: shard_id(d.partition),
                        sequence: d.offset.to_string(),
                    }),
                    Ok(Err((e, _))) => Err(put_failure(e)),
                    Err(_) => Err(PutFailure {
                        code: "InternalFailure".into(),
                        message: "the producer was dropped before the broker answered".into(),
                        retryable: true,
                    }),
                },
                Err(e) => Err(put_failure(e)),
            };
            results.push(outcome);
        }
        Ok(results)
    }
}

/// A record the brokers did not take, in the shape of a Kinesis per-record failure.
fn put_failure(e: KafkaError) -> PutFailure {
    let code = e.rdkafka_error_code();
    let throttled = matches!(
        code,
        Some(RDKafkaErrorCode::QueueFull | RDKafkaErrorCode::ThrottlingQuotaExceeded)
    );
    let retryable = throttled
        || !matches!(
            code,
            Some(
                RDKafkaErrorCode::MessageSizeTooLarge
                    | RDKafkaErrorCode::InvalidMessageSize
                    | RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::TopicAuthorizationFailed
            )
        );
    PutFailure {
        code: if throttled {
            "ProvisionedThroughputExceededException".into()
        } else {
            "InternalFailure".into()
        },
        message: e.to_string(),
        retryable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let url = KafkaUrl::parse("kafka://127.0.0.1:9092,b2:19092/churn.in-1")
            .unwrap()
            .unwrap();
        assert_eq!(url.brokers, "127.0.0.1:9092,b2:19092");
        assert_eq!(url.topic, "churn.in-1");
        assert_eq!(
            url.to_string(),
            "kafka://127.0.0.1:9092,b2:19092/churn.in-1"
        );
        assert!(KafkaUrl::parse("churn").is_none());
        for bad in [
            "kafka://",
            "kafka:///t",
            "kafka://h/t",
            "kafka://h:x/t",
            "kafka://h:9092",
            "kafka://h:9092/",
            "kafka://h:9092/a/b",
            "kafka://h:9092/..",
        ] {
            let err = KafkaUrl::parse(bad).unwrap().unwrap_err();
            assert!(err.contains("kafka://HOST:PORT"), "{bad}: {err}");
        }
        assert_eq!(short_name("kafka://h:1/churn"), "churn");
        assert_eq!(short_name("churn"), "churn");
    }

    #[test]
    fn positions() {
        let url = KafkaUrl::parse("kafka://h:1/t").unwrap().unwrap();
        assert_eq!(partition_of(&url, &shard_id(7)).unwrap(), 7);
        assert!(partition_of(&url, "shardId-000000000000").is_err());
        assert!(partition_of(&url, "partition--1").is_err());
        assert_eq!(offset_of(&url, "42").unwrap(), 42);
        assert!(
            offset_of(
                &url,
                "49590338271490256608559692538361571095921575989136588898"
            )
            .is_err()
        );
    }
}
