//! The open connections of one server, capped. At the cap a new connection takes the place of
//! the one idle the longest — between two requests, or still sending its first headers — so a
//! crowd of idle or half-open sockets never locks out a client with a request to make. Only
//! when every connection has a request in flight is a new one refused.
//!
//! "Idle" is exact: a connection is busy from the moment its request reaches the service until
//! its response body is sent, and eviction claims an idle connection with a compare-and-swap
//! that a request starting at the same moment makes fail.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// `busy` of a connection chosen for eviction: no request may start on it any more.
const EVICTED: usize = usize::MAX / 2;

pub(crate) struct Connections {
    max: usize,
    epoch: Instant,
    open: Mutex<Open>,
    /// Woken whenever a connection closes, for shutdown to wait on.
    closed: Notify,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    by_id: HashMap<u64, Arc<ConnState>>,
}

pub(crate) struct ConnState {
    /// Requests in flight (request received, response not yet sent), or [`EVICTED`].
    busy: AtomicUsize,
    /// Milliseconds since the table's epoch at which the connection last became idle.
    idle_since_ms: AtomicU64,
    /// Streaming responses being sent (SubscribeToShard's event streams). They do not make the
    /// connection busy — at the cap or on shutdown it may be closed under them, which ends the
    /// stream as a server ending a subscription does — but it is closed after idle ones.
    streams: AtomicUsize,
    /// Cancelled when the connection is evicted: its task drops it.
    pub(crate) evict: CancellationToken,
}

/// A connection's place in the table; dropping it frees the place.
pub(crate) struct Slot {
    id: u64,
    handle: SlotHandle,
}

/// What a connection's request handler needs of its slot (the slot itself stays with the
/// connection task).
#[derive(Clone)]
pub(crate) struct SlotHandle {
    pub(crate) state: Arc<ConnState>,
    table: Arc<Connections>,
}

/// One request in flight on a connection; dropping it marks the end of that request.
pub(crate) struct Busy {
    state: Arc<ConnState>,
    table: Arc<Connections>,
}

impl Connections {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            epoch: Instant::now(),
            open: Mutex::new(Open::default()),
            closed: Notify::new(),
        })
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A place for a new connection: a free one, or the place of the connection idle the
    /// longest, which is told to close. `None` when all `max` connections are busy.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut open = self.open.lock().expect("connection table");
        if open.by_id.len() >= self.max {
            let victim = self.idlest(&open, Duration::ZERO)?;
            if let Some(state) = open.by_id.remove(&victim) {
                state.evict.cancel();
            }
            tracing::debug!(
                max = self.max,
                "connection cap reached: closed the idlest one"
            );
        }
        open.next_id += 1;
        let id = open.next_id;
        let state = Arc::new(ConnState {
            busy: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            streams: AtomicUsize::new(0),
            evict: CancellationToken::new(),
        });
        open.by_id.insert(id, state.clone());
        Some(Slot {
            id,
            handle: SlotHandle {
                state,
                table: self.clone(),
            },
        })
    }

    /// Closes the connection idle the longest, if one has been idle for `at_least` (to free a
    /// file descriptor). A connection idle for a moment is likely carrying the next request
    /// already, not yet read: closing it would fail that request, and a client that opened a
    /// second connection meanwhile would have it closed in turn, request after request.
    pub(crate) fn evict_one(&self, at_least: Duration) -> bool {
        let mut open = self.open.lock().expect("connection table");
        match self.idlest(&open, at_least) {
            Some(id) => {
                if let Some(state) = open.by_id.remove(&id) {
                    state.evict.cancel();
                }
                true
            }
            None => false,
        }
    }

    /// The idle connection idle the longest, for `at_least`, claimed for eviction (one only
    /// streaming a response after every one idle without).
    fn idlest(&self, open: &Open, at_least: Duration) -> Option<u64> {
        let since = self.now_ms().checked_sub(at_least.as_millis() as u64)?;
        let mut idle: Vec<(bool, u64, u64)> = open
            .by_id
            .iter()
            .filter(|(_, s)| s.busy.load(Ordering::Acquire) == 0)
            .filter(|(_, s)| s.idle_since_ms.load(Ordering::Relaxed) <= since)
            .map(|(id, s)| {
                let streaming = s.streams.load(Ordering::Acquire) > 0;
                (streaming, s.idle_since_ms.load(Ordering::Relaxed), *id)
            })
            .collect();
        idle.sort_unstable();
        idle.into_iter().map(|(_, _, id)| id).find(|id| {
            let state = &open.by_id[id];
            state
                .busy
                .compare_exchange(0, EVICTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    /// How many connections are open.
    pub(crate) fn len(&self) -> usize {
        self.open.lock().expect("connection table").by_id.len()
    }

    /// Waits until every connection admitted so far has closed.
    pub(crate) async fn drained(&self) {
        loop {
            let closed = self.closed.notified();
            if self.len() == 0 {
                return;
            }
            closed.await;
        }
    }
}

impl Slot {
    pub(crate) fn handle(&self) -> SlotHandle {
        self.handle.clone()
    }

    /// Cancelled when this connection is evicted.
    pub(crate) fn evicted(&self) -> &CancellationToken {
        &self.handle.state.evict
    }
}

impl SlotHandle {
    /// Claims the connection for closing if no request is in flight on it.
    pub(crate) fn claim_idle(&self) -> bool {
        self.state
            .busy
            .compare_exchange(0, EVICTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// How long the connection has been idle: no request in flight and no response streaming
    /// (`None` when it is not idle).
    pub(crate) fn idle_for(&self) -> Option<std::time::Duration> {
        let s = &self.state;
        if s.busy.load(Ordering::Acquire) != 0 || s.streams.load(Ordering::Acquire) != 0 {
            return None;
        }
        let since = s.idle_since_ms.load(Ordering::Relaxed);
        Some(std::time::Duration::from_millis(
            self.table.now_ms().saturating_sub(since),
        ))
    }

    /// Marks a streaming response on the connection until the guard drops.
    pub(crate) fn streaming(&self) -> Streaming {
        self.state.streams.fetch_add(1, Ordering::AcqRel);
        Streaming {
            state: self.state.clone(),
            table: self.table.clone(),
        }
    }

    /// Marks a request in flight, or `None` when the connection is being evicted.
    pub(crate) fn begin(&self) -> Option<Busy> {
        let before = self.state.busy.fetch_add(1, Ordering::AcqRel);
        if before >= EVICTED {
            self.state.busy.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Busy {
            state: self.state.clone(),
            table: self.table.clone(),
        })
    }
}

/// A streaming response being sent; dropping it marks its end.
pub(crate) struct Streaming {
    state: Arc<ConnState>,
    table: Arc<Connections>,
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.state
            .idle_since_ms
            .store(self.table.now_ms(), Ordering::Relaxed);
        self.state.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.state
            .idle_since_ms
            .store(self.table.now_ms(), Ordering::Relaxed);
        self.state.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let table = &self.handle.table;
        table
            .open
            .lock()
            .expect("connection table")
            .by_id
            .remove(&self.id);
        table.closed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_idlest_connection_makes_room_and_busy_ones_never_do() {
        let table = Connections::new(2);
        let a = table.admit().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = table.admit().unwrap();
        // Both idle: the older one (a) is evicted for c.
        let c = table.admit().unwrap();
        assert!(a.evicted().is_cancelled());
        assert!(
            a.handle().begin().is_none(),
            "no request starts on an evicted connection"
        );
        assert!(!b.evicted().is_cancelled());
        drop(a);
        assert_eq!(table.len(), 2);
        // Both busy: no room.
        let _rb = b.handle().begin().unwrap();
        let _rc = c.handle().begin().unwrap();
        assert!(table.admit().is_none());
        drop(_rb);
        let d = table.admit().unwrap();
        assert!(b.evicted().is_cancelled());
        assert!(!c.evicted().is_cancelled());
        drop((b, c, d));
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn out_of_descriptors_only_a_connection_idle_long_enough_is_closed() {
        let table = Connections::new(8);
        let a = table.admit().unwrap();
        let wait = Duration::from_millis(50);
        assert!(
            !table.evict_one(wait),
            "a connection idle for a moment stays"
        );
        assert!(!a.evicted().is_cancelled());
        std::thread::sleep(wait);
        let b = table.admit().unwrap();
        assert!(table.evict_one(wait), "idle long enough: closed");
        assert!(a.evicted().is_cancelled());
        assert!(!b.evicted().is_cancelled());
        assert!(!table.evict_one(wait));
    }
}
