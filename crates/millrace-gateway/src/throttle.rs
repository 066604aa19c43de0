//! Opt-in Kinesis per-shard throughput limits and fault injection.
//!
//! With `StoreOptions::enforce_limits` (or a stream's own `StreamMeta::enforce_limits`) each
//! shard gets token buckets, refilled continuously, with a burst of one second's worth:
//! writes 1 MiB/s (data and partition key bytes) and 1,000 records/s, reads 5 GetRecords
//! calls/s and 2 MiB/s. Over a limit, PutRecord and GetRecords answer
//! ProvisionedThroughputExceededException and PutRecords fails the record in its slot (the
//! others are stored), as Kinesis does. Read bytes are charged after the read, so one large
//! read puts the shard in debt and the next calls are refused until it is paid back (Kinesis:
//! a 10 MiB GetRecords blocks the shard's reads for the next 5 seconds). A write larger than a
//! whole bucket is admitted when the bucket is full, and also leaves it in debt.
//!
//! With `StoreOptions::fault_probability` > 0 that fraction of PutRecord and GetRecords calls
//! and of PutRecords records gets the same exception whatever the rate, for clients testing
//! their retries.
//!
//! Off (the default) the hot path reads the stream's flag and takes no lock of this module.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use millrace_stream::{
    PutInput, PutOutput, ReadBatch, StoreOptions, StreamHandle, hash_key_for_partition_key,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{ApiError, ErrorCode};

/// Kinesis's per-shard write limit in bytes (data plus partition key) per second.
pub const WRITE_BYTES_PER_SEC: f64 = 1024.0 * 1024.0;
/// Kinesis's per-shard write limit in records per second.
pub const WRITE_RECORDS_PER_SEC: f64 = 1000.0;
/// Kinesis's per-shard read limit in bytes per second.
pub const READ_BYTES_PER_SEC: f64 = 2.0 * 1024.0 * 1024.0;
/// Kinesis's per-shard limit of GetRecords calls per second.
pub const READ_CALLS_PER_SEC: f64 = 5.0;

/// Past this many shard bucket sets, sets idle long enough to be full again are dropped
/// (a deleted stream's shards, say).
const PRUNE_ABOVE: usize = 4096;

/// A token bucket holding at most one second of its rate.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    fn full(rate: f64, now: Instant) -> Self {
        Self {
            tokens: rate,
            rate,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        self.last = self.last.max(now);
    }

    /// Whether `n` tokens may be taken now: there are `n`, or, for a take larger than the
    /// whole bucket, the bucket is full. `refill` first.
    fn allows(&self, n: f64) -> bool {
        self.tokens >= n.min(self.rate)
    }
}

/// One shard's buckets.
#[derive(Debug, Clone, Copy)]
struct ShardBuckets {
    write_bytes: Bucket,
    write_records: Bucket,
    read_bytes: Bucket,
    read_calls: Bucket,
}

impl ShardBuckets {
    fn new(now: Instant) -> Self {
        Self {
            write_bytes: Bucket::full(WRITE_BYTES_PER_SEC, now),
            write_records: Bucket::full(WRITE_RECORDS_PER_SEC, now),
            read_bytes: Bucket::full(READ_BYTES_PER_SEC, now),
            read_calls: Bucket::full(READ_CALLS_PER_SEC, now),
        }
    }

    /// Takes one record of `bytes` if both write buckets allow it.
    fn write(&mut self, bytes: usize, now: Instant) -> bool {
        self.write_bytes.refill(now);
        self.write_records.refill(now);
        let bytes = bytes as f64;
        if self.write_bytes.allows(bytes) && self.write_records.allows(1.0) {
            self.write_bytes.tokens -= bytes;
            self.write_records.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes one GetRecords call if the call bucket has one and the byte bucket is not in
    /// debt; the bytes are charged once known ([`ShardBuckets::read_bytes`]).
    fn read_call(&mut self, now: Instant) -> bool {
        self.read_calls.refill(now);
        self.read_bytes.refill(now);
        if self.read_calls.allows(1.0) && self.read_bytes.tokens > 0.0 {
            self.read_calls.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn read_bytes(&mut self, bytes: usize, now: Instant) {
        self.read_bytes.refill(now);
        self.read_bytes.tokens -= bytes as f64;
    }

    /// Untouched long enough that every bucket is full again: dropping it changes nothing.
    fn idle(&self, now: Instant) -> bool {
        let newest = self
            .write_bytes
            .last
            .max(self.write_records.last)
            .max(self.read_bytes.last)
            .max(self.read_calls.last);
        // The deepest debt is a 10 MiB read: 5 s at 2 MiB/s.
        now.saturating_duration_since(newest) > Duration::from_secs(10)
    }
}

/// The injected faults: a probability and the generator drawing against it.
struct Faults {
    probability: f64,
    rng: Mutex<StdRng>,
}

impl Faults {
    fn hit(&self) -> bool {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.random::<f64>() < self.probability
    }
}

/// A GetRecords call admitted under enforced limits: where to charge the bytes it read.
#[derive(Debug, Clone, Copy)]
pub struct ReadCharge {
    key: (i64, u32),
}

/// Per-shard token buckets of every enforced stream, keyed by (stream creation ms, shard
/// index) so a recreated stream starts afresh, and the fault injector. One per [`Gateway`].
///
/// [`Gateway`]: crate::Gateway
pub struct Throttle {
    account_id: String,
    faults: Option<Faults>,
    buckets: Mutex<HashMap<(i64, u32), ShardBuckets>>,
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field(
                "fault_probability",
                &self.faults.as_ref().map_or(0.0, |x| x.probability),
            )
            .finish_non_exhaustive()
    }
}

impl Throttle {
    pub fn new(opts: &StoreOptions) -> Self {
        let faults = (opts.fault_probability > 0.0).then(|| Faults {
            probability: opts.fault_probability,
            rng: Mutex::new(match opts.fault_seed {
                Some(seed) => StdRng::seed_from_u64(seed),
                None => StdRng::from_os_rng(),
            }),
        });
        Self {
            account_id: opts.account_id.clone(),
            faults,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Kinesis's words for a shard over its throughput.
    fn exceeded(&self, stream: &str, shard: u32) -> ApiError {
        ApiError::new(
            ErrorCode::ProvisionedThroughputExceeded,
            format!(
                "Rate exceeded for shard shardId-{shard:012} in stream {stream} under account {}.",
                self.account_id
            ),
        )
    }

    fn fault(&self) -> bool {
        self.faults.as_ref().is_some_and(Faults::hit)
    }

    fn with_buckets<T>(&self, f: impl FnOnce(&mut HashMap<(i64, u32), ShardBuckets>) -> T) -> T {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > PRUNE_ABOVE {
            let now = Instant::now();
            map.retain(|_, b| !b.idle(now));
        }
        f(&mut map)
    }

    /// Appends `inputs` to `stream` as [`StreamHandle::put`] does, except that records over
    /// their shard's write limit (when enforced) or hit by an injected fault are refused in
    /// their slot with ProvisionedThroughputExceededException and not stored.
    pub async fn put(
        &self,
        stream: &StreamHandle,
        inputs: Vec<PutInput>,
    ) -> Vec<Result<PutOutput, ApiError>> {
        let enforce = stream.enforce_limits();
        if !enforce && self.faults.is_none() {
            return stream
                .put(inputs)
                .await
                .into_iter()
                .map(|r| r.map_err(ApiError::from))
                .collect();
        }
        let name = stream.name();
        let shards: Vec<u32> = inputs
            .iter()
            .map(|i| {
                stream.route(
                    i.explicit_hash_key
                        .unwrap_or_else(|| hash_key_for_partition_key(&i.partition_key)),
                )
            })
            .collect();
        let mut refused: Vec<bool> = shards.iter().map(|_| self.fault()).collect();
        if enforce {
            let created = stream.created_ms();
            let now = Instant::now();
            self.with_buckets(|map| {
                for ((input, &shard), refused) in inputs.iter().zip(&shards).zip(&mut refused) {
                    if *refused {
                        continue;
                    }
                    let b = map
                        .entry((created, shard))
                        .or_insert_with(|| ShardBuckets::new(now));
                    *refused = !b.write(input.data.len() + input.partition_key.len(), now);
                }
            });
        }
        let admitted: Vec<PutInput> = inputs
            .into_iter()
            .zip(&refused)
            .filter(|(_, r)| !**r)
            .map(|(i, _)| i)
            .collect();
        let mut stored = stream.put(admitted).await.into_iter();
        shards
            .iter()
            .zip(refused)
            .map(|(&shard, refused)| {
                if refused {
                    Err(self.exceeded(&name, shard))
                } else {
                    stored
                        .next()
                        .expect("one result per admitted record")
                        .map_err(ApiError::from)
                }
            })
            .collect()
    }

    /// Admits one GetRecords call at `shard`, or refuses it with
    /// ProvisionedThroughputExceededException (over 5 calls/s, the shard's read bytes in debt,
    /// or an injected fault). Pass the result to [`Throttle::charge_read`] with what was read.
    pub fn admit_read(
        &self,
        stream: &StreamHandle,
        shard: u32,
    ) -> Result<Option<ReadCharge>, ApiError> {
        let enforce = stream.enforce_limits();
        if !enforce && self.faults.is_none() {
            return Ok(None);
        }
        if self.fault() {
            return Err(self.exceeded(&stream.name(), shard));
        }
        if !enforce {
            return Ok(None);
        }
        let key = (stream.created_ms(), shard);
        let now = Instant::now();
        let ok = self.with_buckets(|map| {
            map.entry(key)
                .or_insert_with(|| ShardBuckets::new(now))
                .read_call(now)
        });
        if ok {
            Ok(Some(ReadCharge { key }))
        } else {
            Err(self.exceeded(&stream.name(), shard))
        }
    }

    /// Charges the bytes (data and partition keys) of an admitted read to its shard.
    pub fn charge_read(&self, charge: Option<ReadCharge>, batch: &ReadBatch) {
        let Some(ReadCharge { key }) = charge else {
            return;
        };
        let bytes: usize = batch
            .records
            .iter()
            .map(|r| r.data.len() + r.partition_key.len())
            .sum();
        let now = Instant::now();
        self.with_buckets(|map| {
            map.entry(key)
                .or_insert_with(|| ShardBuckets::new(now))
                .read_bytes(bytes, now);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_take_a_second_of_burst_then_refill() {
        let t0 = Instant::now();
        let mut b = ShardBuckets::new(t0);
        let taken = (0..1500).filter(|_| b.write(10, t0)).count();
        assert_eq!(taken, 1000, "a burst of one second of records");
        assert!(!b.write(10, t0 + Duration::from_millis(0)));
        // 100 ms refills 100 records.
        let t1 = t0 + Duration::from_millis(100);
        let taken = (0..500).filter(|_| b.write(10, t1)).count();
        assert_eq!(taken, 100);
        // Refill stops at one second's worth.
        let t2 = t1 + Duration::from_secs(60);
        let taken = (0..5000).filter(|_| b.write(10, t2)).count();
        assert_eq!(taken, 1000);
    }

    #[test]
    fn write_bytes_limit_and_a_record_larger_than_the_bucket() {
        let t0 = Instant::now();
        let mut b = ShardBuckets::new(t0);
        // 1 MiB of 100 KiB records: 10 fit, the 11th does not.
        let taken = (0..20).filter(|_| b.write(100 * 1024, t0)).count();
        assert_eq!(taken, 10);
        // A 2 MiB record is admitted once the bucket is full, then leaves it in debt.
        let t1 = t0 + Duration::from_secs(1);
        assert!(b.write(2 * 1024 * 1024, t1));
        assert!(!b.write(1, t1 + Duration::from_millis(900)));
        assert!(b.write(1, t1 + Duration::from_millis(1100)));
    }

    #[test]
    fn reads_five_calls_and_byte_debt() {
        let t0 = Instant::now();
        let mut b = ShardBuckets::new(t0);
        assert_eq!((0..6).filter(|_| b.read_call(t0)).count(), 5);
        assert!(b.read_call(t0 + Duration::from_millis(200)));
        // 10 MiB read: the shard's reads wait until the debt is paid (4 s past 2 MiB).
        let t1 = t0 + Duration::from_secs(2);
        assert!(b.read_call(t1));
        b.read_bytes(10 * 1024 * 1024, t1);
        assert!(!b.read_call(t1 + Duration::from_secs(3)));
        assert!(b.read_call(t1 + Duration::from_millis(4100)));
    }

    #[test]
    fn faults_follow_the_probability() {
        let opts = |p| StoreOptions {
            fault_probability: p,
            fault_seed: Some(7),
            ..StoreOptions::default()
        };
        let t = Throttle::new(&opts(0.0));
        assert!((0..1000).all(|_| !t.fault()));
        let t = Throttle::new(&opts(1.0));
        assert!((0..1000).all(|_| t.fault()));
        let t = Throttle::new(&opts(0.25));
        let hits = (0..10_000).filter(|_| t.fault()).count();
        assert!((2000..3000).contains(&hits), "{hits}");
    }
}
