//! SubscribeToShard: enhanced fan-out. The reply is an event stream (see `eventstream.rs`):
//! `initial-response`, then `SubscribeToShardEvent`s pushed as records become visible (the
//! task waits on the shard's tip watch, never on a timer), an empty one after 5 seconds
//! without records, and at a closed shard's end one with `ChildShards`, which ends it. A
//! subscription ends after 5 minutes.
//!
//! One subscription per consumer and shard: a second one within 5 seconds of the first is
//! refused with ResourceInUseException; later, it takes over, and the first ends with a
//! ResourceInUseException event (Kinesis's documented behaviour). A consumer deregistered
//! meanwhile ends its subscriptions with ResourceNotFoundException.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use millrace_stream::{SequenceNumber, Shard, StreamHandle};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::consumers::{self, check_consumer_arn};
use super::get_shard_iterator::{check_shard_id, not_in_the_future};
use super::shards::child_shards_out;
use crate::error::{ApiError, ErrorCode};
use crate::eventstream;
use crate::protocol::{Out, Protocol};
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// How long a subscription lasts.
pub const SUBSCRIPTION_TTL: Duration = Duration::from_secs(300);
/// The longest a subscriber waits for an event: an empty one is sent when nothing came.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A second subscription this soon after the first is refused instead of taking over.
const TAKEOVER_AFTER: Duration = Duration::from_secs(5);
/// Records and bytes in one event.
const EVENT_MAX_RECORDS: usize = 10_000;
const EVENT_MAX_BYTES: usize = 1 << 20;

const STARTING_TYPES: [&str; 5] = [
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
    "LATEST",
    "AT_TIMESTAMP",
];

/// The active subscriptions, by store, consumer ARN and shard: when each began, and the sender
/// whose drop tells it that it was taken over.
type Key = (usize, String, u32);
struct Active {
    id: u64,
    started: Instant,
    _taken_over: oneshot::Sender<()>,
}
static ACTIVE: LazyLock<Mutex<(u64, HashMap<Key, Active>)>> =
    LazyLock::new(|| Mutex::new((0, HashMap::new())));

/// The reply body: the frames the subscription task sends, in order.
pub struct EventStreamBody {
    rx: mpsc::Receiver<Bytes>,
}

impl http_body::Body for EventStreamBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|m| m.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// Checks the request, claims the subscription and starts its task; errors before the stream
/// starts are ordinary error replies.
pub async fn start(gw: &Gateway, req: Request) -> Result<EventStreamBody, ApiError> {
    let mut c = Checks::new();
    let arn = c.required("ConsumerARN", req.opt_str("ConsumerARN")?);
    if let Some(a) = arn {
        check_consumer_arn(&mut c, a);
    }
    let shard_id = c.required("ShardId", req.opt_str("ShardId")?);
    if let Some(id) = shard_id {
        check_shard_id(&mut c, "ShardId", id);
    }
    let pos = c.required("StartingPosition", req.opt_object("StartingPosition")?);
    let mut kind = None;
    let mut seq = None;
    let mut ts = None;
    if let Some(p) = pos {
        kind = c.required(
            "StartingPosition.Type",
            p.get("Type").and_then(|v| v.as_str()),
        );
        if let Some(k) = kind {
            c.one_of("StartingPosition.Type", k, &STARTING_TYPES);
        }
        seq = p.get("SequenceNumber").and_then(|v| v.as_str());
        if let Some(s) = seq {
            c.sequence_number("StartingPosition.SequenceNumber", s);
        }
        if let Some(v) = p.get("Timestamp") {
            ts = Some(req.timestamp_ms("StartingPosition.Timestamp", v)?);
        }
    }
    c.finish()?;
    let (arn, shard_id, kind) = (
        arn.expect("checked"),
        shard_id.expect("checked"),
        kind.expect("checked"),
    );
    let found = consumers::by_arn(gw, arn)?;
    let stream = found.stream.clone();
    let shard = stream.shard_by_id(shard_id)?;
    if seq.is_some() && matches!(kind, "TRIM_HORIZON" | "LATEST" | "AT_TIMESTAMP") {
        return Err(ApiError::invalid(format!(
            "Request specified {kind} and also a SequenceNumber. Only one of these may be \
             specified."
        )));
    }
    let created = stream.created_ms();
    let from_sequence = || -> Result<u64, ApiError> {
        let s = seq.ok_or_else(|| {
            ApiError::invalid(format!(
                "SequenceNumber must be specified for StartingPosition type {kind}"
            ))
        })?;
        match SequenceNumber::parse(s) {
            Some(n)
                if n.stream_created_ms == created.rem_euclid(10_i64.pow(13))
                    && n.shard == shard.index()
                    && n.counter <= shard.tip() =>
            {
                Ok(n.counter)
            }
            _ => Err(ApiError::invalid(format!(
                "StartingSequenceNumber {s} used in SubscribeToShard on shard {shard_id} in \
                 stream {} is invalid because it did not come from this stream.",
                found.stream_name
            ))),
        }
    };
    let counter = match kind {
        "TRIM_HORIZON" => shard.trim_horizon(),
        "LATEST" => shard.tip(),
        "AT_SEQUENCE_NUMBER" => from_sequence()?,
        "AFTER_SEQUENCE_NUMBER" => from_sequence()? + 1,
        "AT_TIMESTAMP" => {
            let ms = ts.ok_or_else(|| {
                ApiError::invalid(
                    "Must specify timestampInMillis parameter for StartingPosition type \
                     AT_TIMESTAMP.",
                )
            })?;
            not_in_the_future(ms)?;
            let sh = shard.clone();
            gw.blocking(move |_| sh.counter_at_time(ms).map_err(ApiError::from))
                .await?
        }
        other => unreachable!("starting position {other} passed the enum check"),
    };

    let key: Key = (
        Arc::as_ptr(&gw.store) as usize,
        found.arn.clone(),
        shard.index(),
    );
    let (taken_tx, taken_rx) = oneshot::channel();
    let id = {
        let mut active = ACTIVE.lock().expect("subscriptions");
        if let Some(a) = active.1.get(&key)
            && a.started.elapsed() < TAKEOVER_AFTER
        {
            return Err(ApiError::new(
                ErrorCode::ResourceInUse,
                format!(
                    "Another active subscription exists for consumer {} on shard {shard_id}.",
                    found.arn
                ),
            ));
        }
        active.0 += 1;
        let id = active.0;
        // Replacing the entry drops the old sender: the old subscription ends.
        active.1.insert(
            key.clone(),
            Active {
                id,
                started: Instant::now(),
                _taken_over: taken_tx,
            },
        );
        id
    };
    let (tx, rx) = mpsc::channel(4);
    let sub = Subscription {
        gw: gw.clone(),
        protocol: req.protocol(),
        stream,
        shard,
        consumer: found.consumer.name.clone(),
        consumer_created_ms: found.consumer.created_ms,
        arn: found.arn,
        pos: counter,
        tx,
    };
    tokio::spawn(async move {
        sub.run(taken_rx).await;
        let mut active = ACTIVE.lock().expect("subscriptions");
        if active.1.get(&key).is_some_and(|a| a.id == id) {
            active.1.remove(&key);
        }
    });
    Ok(EventStreamBody { rx })
}

struct Subscription {
    gw: Gateway,
    protocol: Protocol,
    stream: Arc<StreamHandle>,
    shard: Arc<Shard>,
    consumer: String,
    consumer_created_ms: i64,
    arn: String,
    /// The next counter to send.
    pos: u64,
    tx: mpsc::Sender<Bytes>,
}

/// Why the send loop stopped early.
struct Gone;

impl Subscription {
    async fn send(&self, frame: Bytes) -> Result<(), Gone> {
        self.tx.send(frame).await.map_err(|_| Gone)
    }

    async fn run(mut self, mut taken_over: oneshot::Receiver<()>) {
        let _ = self.stream_events(&mut taken_over).await;
    }

    async fn stream_events(&mut self, taken_over: &mut oneshot::Receiver<()>) -> Result<(), Gone> {
        self.send(eventstream::initial_response(self.protocol))
            .await?;
        let ends = Instant::now() + SUBSCRIPTION_TTL;
        let mut tip = self.shard.watch_tip();
        let mut last_event = Instant::now();
        loop {
            let visible = *tip.borrow_and_update();
            if self.pos < visible {
                self.send_records().await?;
                last_event = Instant::now();
                continue;
            }
            if let Some(end) = self.stream.shard_end(self.shard.index())
                && self.pos >= end
            {
                let children = child_shards_out(&self.stream.meta(), self.shard.index());
                let event = self.event(Vec::new(), 0, Some(children));
                self.send(event).await?;
                return Ok(());
            }
            tokio::select! {
                changed = tip.changed() => {
                    if changed.is_err() {
                        // The shard is gone (stream deleted).
                        return self.fail(ErrorCode::ResourceNotFound, "The shard is no longer available.").await;
                    }
                }
                _ = tokio::time::sleep_until(last_event + HEARTBEAT) => {
                    if !self.consumer_registered() {
                        return self.fail(
                            ErrorCode::ResourceNotFound,
                            &format!("Consumer {} was deregistered.", self.arn),
                        ).await;
                    }
                    let event = self.event(Vec::new(), 0, None);
                    self.send(event).await?;
                    last_event = Instant::now();
                }
                _ = tokio::time::sleep_until(ends) => return Ok(()),
                _ = &mut *taken_over => {
                    return self.fail(
                        ErrorCode::ResourceInUse,
                        &format!(
                            "Another subscription for consumer {} on shard {} took over this one.",
                            self.arn, self.shard.id()
                        ),
                    ).await;
                }
                _ = self.tx.closed() => return Err(Gone),
            }
            // A closed shard's end is checked at the loop's top; the tip watch does not
            // change when a reshard closes the shard, so check it whenever woken.
        }
    }

    fn consumer_registered(&self) -> bool {
        self.stream
            .meta()
            .consumer(&self.consumer)
            .is_some_and(|c| c.created_ms == self.consumer_created_ms)
    }

    async fn fail(&self, code: ErrorCode, message: &str) -> Result<(), Gone> {
        let e = ApiError::new(code, message);
        self.send(eventstream::exception(self.protocol, &e)).await
    }

    /// Reads what is visible from `pos` and sends it as one event.
    async fn send_records(&mut self) -> Result<(), Gone> {
        let shard = self.shard.clone();
        let from = self.pos;
        let batch = match self
            .gw
            .blocking(move |_| {
                shard
                    .read(from, EVENT_MAX_RECORDS, EVENT_MAX_BYTES)
                    .map_err(ApiError::from)
            })
            .await
        {
            Ok(b) => b,
            Err(e) => {
                self.send(eventstream::exception(self.protocol, &e)).await?;
                return Err(Gone);
            }
        };
        let now = millrace_stream::now_ms();
        let behind = if batch.next >= batch.tip {
            0
        } else {
            batch
                .next_arrival_ms
                .map_or(0, |arrival| (now - arrival).max(0))
        };
        let index = self.shard.index();
        let records: Vec<Out> = batch
            .records
            .into_iter()
            .map(|r| {
                Out::map([
                    (
                        "SequenceNumber",
                        Out::str(self.stream.sequence(index, r.counter).to_string()),
                    ),
                    ("ApproximateArrivalTimestamp", Out::Time(r.arrival_ms)),
                    ("Data", Out::Blob(r.data)),
                    ("PartitionKey", Out::Str(r.partition_key)),
                ])
            })
            .collect();
        // Past the trim horizon the read starts later than asked.
        self.pos = batch.next.max(self.pos);
        let event = self.event(records, behind, None);
        self.send(event).await
    }

    /// A `SubscribeToShardEvent`; `ContinuationSequenceNumber` is the last record sent (the
    /// shard's starting number before any), to resume with AFTER_SEQUENCE_NUMBER.
    fn event(&self, records: Vec<Out>, behind: i64, children: Option<Out>) -> Bytes {
        let last = self.pos.saturating_sub(1);
        let continuation = self.stream.sequence(self.shard.index(), last).to_string();
        let mut fields = vec![
            ("Records", Out::List(records)),
            ("ContinuationSequenceNumber", Out::str(continuation)),
            ("MillisBehindLatest", Out::Int(behind)),
        ];
        if let Some(c) = children {
            fields.push(("ChildShards", c));
        }
        eventstream::event(self.protocol, "SubscribeToShardEvent", &Out::Map(fields))
    }
}
