//! `millrace-queue`: Kinesis queues over a `millrace-stream` store.
//!
//! A queue reads one stream and hands its records to competing consumers with receipt
//! handles. A received record is invisible for its visibility timeout and handed out again if
//! it is not acknowledged in time; after `MaxReceiveCount` receives without an
//! acknowledgement it becomes a dead-letter record, which has its own receive, acknowledge,
//! visibility and restore. Acknowledgements are durable before they answer. A queue never
//! extends the stream's retention: a record the stream has trimmed is no longer delivered.
//!
//! - [`registry`]: [`Queues`], every queue of a store and their folders.
//! - [`queue`]: [`Queue`], receiving with long polling and the batch changes.
//! - [`state`] and [`journal`]: the delivery state and its durable journal.
//! - [`handle`]: signed receipt handles.
//!
//! Nothing here knows HTTP or AWS wire formats; the gateway maps [`QueueError`] and
//! [`EntryError`] onto the Kinesis API's errors.

pub mod config;
pub mod error;
pub mod handle;
pub mod journal;
pub mod queue;
pub mod registry;
pub mod state;

pub use config::{
    Attributes, DEFAULT_MAX_RECEIVE_COUNT, DEFAULT_VISIBILITY_TIMEOUT_S, DeadLetter, NewQueue,
    QueueConfig, StartKind, StartingPosition,
};
pub use error::{EntryError, EntryErrorCode, QueueError};
pub use handle::Side;
pub use queue::{Change, Delivered, Queue, QueueCounts, ReceiveOptions};
pub use registry::Queues;
