//! Kafka consumer groups: several millrace processes (on any machines) that read one topic
//! under one group name share its partitions, and keep their checkpoints in the group.
//!
//! [`KafkaGroup`] is a member of the group: a consumer subscribed to the topic with the
//! cooperative-sticky assignor (a rebalance moves only the partitions that change hands),
//! paused so it fetches nothing itself; its partitions are read by [`crate::KafkaSource`]'s
//! own consumers, which ask [`KafkaGroup::owns`] before every read.
//!
//! Checkpoints ([`SharedCheckpoints`]) are the group's committed offsets: the offset after the
//! last record done (what `kafka-consumer-groups --describe` shows as the position and lag)
//! and, as the commit's metadata, the reader's checkpoint JSON (delivery's pending range, the
//! scorer's output marks), so the member that reads a partition next continues exactly where
//! the last one stopped, even after a kill -9.
//!
//! Handing a partition over: when the group takes a partition away, the member stops storing
//! its checkpoint and waits (up to [`HANDOVER`]) until the reader of that partition comes back
//! for its next read, which then fails with [`IoError::NotOwned`]: everything the reader did
//! with the records it had (objects written, predictions put) is done before the new owner
//! loads the checkpoint. A member that dies is replaced once the group's session times out
//! ([`SESSION_TIMEOUT`]); a member cut off from the brokers has its commits refused by them
//! (its generation is stale).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::checkpoint::SharedCheckpoints;
use crate::kafka::{CALL_TIMEOUT, KafkaUrl, base_config, kafka_error, partition_of, shard_id};
use crate::{IoError, Result};

/// How long the group waits for a member it no longer hears from before giving its partitions
/// to the others (librdkafka's default is 45 s; brokers accept 6 s and more by default).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a member that loses a partition waits for its reader to let go of it.
pub const HANDOVER: Duration = Duration::from_secs(60);

/// How long the first join may take before a reader sees the partitions it got.
const FIRST_JOIN: Duration = Duration::from_secs(30);

/// What Kafka keeps with a commit by default (`offset.metadata.max.bytes`).
const METADATA_MAX_BYTES: usize = 4096;

/// Tries of a commit that fails while a rebalance or a coordinator move is under way.
const COMMIT_ATTEMPTS: u32 = 8;

/// Commit errors that pass once the group settles.
fn retriable_commit(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::RebalanceInProgress
                | C::NotCoordinator
                | C::CoordinatorNotAvailable
                | C::CoordinatorLoadInProgress
                | C::RequestTimedOut
                | C::OperationTimedOut
                | C::BrokerTransportFailure
        )
    )
}

/// A committed offset's metadata; empty when it is not text (another client's bytes:
/// rdkafka's accessor would panic on them).
fn metadata_of(e: &rdkafka::topic_partition_list::TopicPartitionListElem<'_>) -> String {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| e.metadata().to_owned()))
        .unwrap_or_default()
}

/// What the rebalance callbacks and the readers share.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// Set when the member is being closed: revocations then do not wait for readers.
    closing: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    /// Partitions the group gave this member and has not taken back.
    owned: BTreeSet<i32>,
    /// How many times each partition was assigned to this member: a reader that saw another
    /// count lost the partition in between (it went to another member and came back), so
    /// what it holds is stale.
    epochs: HashMap<i32, u64>,
    /// Partitions whose reader holds records it read (it has not come back for more).
    busy: HashSet<i32>,
    /// Partitions whose checkpoint is being committed now.
    committing: HashSet<i32>,
    /// True once the group assigned this member partitions (a newcomer's first assignment
    /// may be empty while a dead member's session runs out).
    joined: bool,
}

/// The consumer context: keeps [`State`] in step with the group's assignment.
struct Member {
    shared: Arc<Shared>,
    group: String,
}

impl ClientContext for Member {}

impl ConsumerContext for Member {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let revoked: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
        let mut state = self.shared.state.lock();
        for p in &revoked {
            state.owned.remove(p);
        }
        self.shared.changed.notify_all();
        tracing::info!(group = %self.group, partitions = ?revoked, "partitions handed back to the group");
        let deadline = Instant::now() + HANDOVER;
        while !self.shared.closing.load(Ordering::Acquire)
            && revoked
                .iter()
                .any(|p| state.busy.contains(p) || state.committing.contains(p))
        {
            if self
                .shared
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                tracing::warn!(group = %self.group, "a reader kept a revoked partition past the handover time");
                break;
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                // The member only holds the partitions: its readers fetch them.
                if let Err(e) = consumer.pause(tpl) {
                    tracing::warn!(group = %self.group, error = %e, "pausing the member's partitions");
                }
                let mut state = self.shared.state.lock();
                let added: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                for p in &added {
                    state.owned.insert(*p);
                    *state.epochs.entry(*p).or_default() += 1;
                }
                state.joined |= !state.owned.is_empty();
                self.shared.changed.notify_all();
                tracing::info!(group = %self.group, partitions = ?added, "partitions assigned by the group");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => {
                tracing::warn!(group = %self.group, error = %e, "consumer group rebalance failed")
            }
        }
    }
}

/// A member of a consumer group for one topic.
pub struct KafkaGroup {
    stream: KafkaUrl,
    group: String,
    consumer: Arc<BaseConsumer<Member>>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    poller: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for KafkaGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaGroup")
            .field("stream", &self.stream.to_string())
            .field("group", &self.group)
            .finish()
    }
}

impl KafkaGroup {
    /// Joins `group` for the topic of `stream` (the join itself completes in the background).
    pub fn join(stream: &KafkaUrl, group: &str) -> Result<Self> {
        let shared = Arc::new(Shared::default());
        let context = Member {
            shared: shared.clone(),
            group: group.to_owned(),
        };
        let op = || format!("joining group {group} on {stream}");
        let consumer: BaseConsumer<Member> = base_config(stream)
            .set("group.id", group)
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set(
                "session.timeout.ms",
                SESSION_TIMEOUT.as_millis().to_string(),
            )
            .set("heartbeat.interval.ms", "1000")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // The member fetches nothing of its own (its partitions are paused): small buffers.
            .set("queued.max.messages.kbytes", "1024")
            .create_with_context(context)
            .map_err(|e| kafka_error(op(), e))?;
        consumer
            .subscribe(&[&stream.topic])
            .map_err(|e| kafka_error(op(), e))?;
        let consumer = Arc::new(consumer);
        let stop = Arc::new(AtomicBool::new(false));
        // Rebalances are served by polling the member; anything it fetched is dropped.
        let poller = {
            let (consumer, stop) = (consumer.clone(), stop.clone());
            std::thread::Builder::new()
                .name("kafka-group".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
                            tracing::debug!(error = %e, "consumer group member");
                        }
                    }
                })
                .map_err(|e| IoError::task(op(), e))?
        };
        Ok(Self {
            stream: stream.clone(),
            group: group.to_owned(),
            consumer,
            shared,
            stop,
            poller: Some(poller),
        })
    }

    pub fn name(&self) -> &str {
        &self.group
    }

    /// The partitions this member holds now, after waiting (up to 30 s) for the group to give
    /// it some.
    pub fn owned(&self) -> Vec<i32> {
        let deadline = Instant::now() + FIRST_JOIN;
        let mut state = self.shared.state.lock();
        while !state.joined {
            if self
                .shared
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                break;
            }
        }
        state.owned.iter().copied().collect()
    }

    fn not_owned(&self, partition: i32) -> IoError {
        IoError::NotOwned {
            stream: self.stream.to_string(),
            shard: shard_id(partition),
            group: self.group.clone(),
        }
    }

    /// A reader is about to read `partition`: it let go of what it read before. Gives the
    /// partition's assignment count, which the reader keeps; fails with
    /// [`IoError::NotOwned`] when the group took the partition away, or when `epoch` (the
    /// count the reader saw before) is not the current one: the partition went to another
    /// member and came back, and the reader must start again from the checkpoint.
    pub fn begin_read(&self, partition: i32, epoch: Option<u64>) -> Result<u64> {
        let mut state = self.shared.state.lock();
        state.busy.remove(&partition);
        self.shared.changed.notify_all();
        let current = state.epochs.get(&partition).copied().unwrap_or_default();
        if state.owned.contains(&partition) && epoch.is_none_or(|e| e == current) {
            Ok(current)
        } else {
            Err(self.not_owned(partition))
        }
    }

    /// A read returns records: the reader holds them until its next read. Fails (and the
    /// records must be dropped) when the group took the partition away meanwhile.
    pub fn end_read(&self, partition: i32, epoch: u64) -> Result<()> {
        let mut state = self.shared.state.lock();
        let current = state.epochs.get(&partition).copied().unwrap_or_default();
        if state.owned.contains(&partition) && epoch == current {
            state.busy.insert(partition);
            Ok(())
        } else {
            Err(self.not_owned(partition))
        }
    }

    /// True while the group lets this member read `partition`.
    pub fn owns(&self, partition: i32) -> bool {
        self.shared.state.lock().owned.contains(&partition)
    }

    fn committed(&self, partitions: &[i32]) -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(&self.stream.topic, *p);
        }
        self.consumer
            .committed_offsets(tpl, CALL_TIMEOUT)
            .map_err(|e| kafka_error(format!("reading the offsets of group {}", self.group), e))
    }

    /// The checkpoint JSON in a committed offset's metadata; `None` when nothing is
    /// committed; an error when another client committed without one.
    fn checkpoint_of(
        &self,
        partition: i32,
        offset: Offset,
        metadata: &str,
    ) -> Result<Option<Vec<u8>>> {
        match (offset, metadata.is_empty()) {
            (Offset::Offset(_), false) => Ok(Some(metadata.as_bytes().to_vec())),
            (Offset::Offset(o), true) => Err(IoError::Failed {
                op: format!(
                    "reading the checkpoint of {} from {}",
                    shard_id(partition),
                    self.describe()
                ),
                message: format!(
                    "offset {o} is committed without a millrace checkpoint in its metadata: \
                     another client committed it (give this reader a name of its own, or delete \
                     the group's offsets), or the broker does not keep commit metadata (tansu \
                     0.6.0 drops it; Apache Kafka, Redpanda and MSK keep it)"
                ),
                transient: false,
            }),
            _ => Ok(None),
        }
    }
}

impl SharedCheckpoints for KafkaGroup {
    fn load(&self, shard: &str) -> Result<Option<Vec<u8>>> {
        let partition = partition_of(&self.stream, shard)?;
        let tpl = self.committed(&[partition])?;
        let Some(e) = tpl.find_partition(&self.stream.topic, partition) else {
            return Ok(None);
        };
        if let Err(err) = e.error() {
            return Err(kafka_error(
                format!("reading the checkpoint of {shard} from {}", self.describe()),
                err,
            ));
        }
        self.checkpoint_of(partition, e.offset(), &metadata_of(&e))
    }

    fn store(&self, shard: &str, done: Option<&str>, json: &[u8]) -> Result<()> {
        let partition = partition_of(&self.stream, shard)?;
        let op = || {
            format!(
                "committing the checkpoint of {shard} to {}",
                self.describe()
            )
        };
        if json.len() > METADATA_MAX_BYTES {
            return Err(IoError::Failed {
                op: op(),
                message: format!(
                    "the checkpoint takes {} bytes, over the {METADATA_MAX_BYTES} Kafka keeps \
                     with a commit by default (offset.metadata.max.bytes)",
                    json.len()
                ),
                transient: false,
            });
        }
        // The next record to read: the offset a plain Kafka consumer of the group would
        // resume at.
        let next = match done {
            Some(s) => crate::kafka::offset_of(&self.stream, s)? + 1,
            None => 0,
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.stream.topic, partition, Offset::Offset(next))
            .map_err(|e| kafka_error(op(), e))?;
        if let Some(mut e) = tpl.find_partition(&self.stream.topic, partition) {
            e.set_metadata(String::from_utf8_lossy(json));
        }
        let mut pause = Duration::from_millis(100);
        for attempt in 1.. {
            {
                // Nothing is committed for a partition once it is revoked, and a revocation
                // waits for a commit under way (`committing`) to finish.
                let mut state = self.shared.state.lock();
                if !state.owned.contains(&partition) {
                    // The reader will not read again: let a revocation that waits go on.
                    state.busy.remove(&partition);
                    self.shared.changed.notify_all();
                    return Err(self.not_owned(partition));
                }
                state.committing.insert(partition);
            }
            let committed = self.consumer.commit(&tpl, CommitMode::Sync);
            {
                let mut state = self.shared.state.lock();
                state.committing.remove(&partition);
                self.shared.changed.notify_all();
            }
            match committed {
                Ok(()) => return Ok(()),
                // A rebalance or a coordinator move under way: the same commit goes through
                // once it settles (as long as the partition is still this member's).
                Err(e) if attempt < COMMIT_ATTEMPTS && retriable_commit(&e) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(kafka_error(op(), e)),
            }
        }
        unreachable!("the loop returns")
    }

    fn all(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let owned: Vec<i32> = self.shared.state.lock().owned.iter().copied().collect();
        let tpl = self.committed(&owned)?;
        let mut out = Vec::new();
        for e in tpl.elements() {
            if e.error().is_err() {
                continue;
            }
            if let Ok(Some(json)) = self.checkpoint_of(e.partition(), e.offset(), &metadata_of(&e))
            {
                out.push((shard_id(e.partition()), json));
            }
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("consumer group {} of {}", self.group, self.stream)
    }
}

impl Drop for KafkaGroup {
    fn drop(&mut self) {
        // Leaving: the readers have stopped, so revocations need not wait for them.
        {
            let _state = self.shared.state.lock();
            self.shared.closing.store(true, Ordering::Release);
            self.shared.changed.notify_all();
        }
        self.stop.store(true, Ordering::Release);
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
    }
}
