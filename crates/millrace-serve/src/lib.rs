//! millrace-serve: the last stage — models in use.
//!
//! `registry` keeps each model's versions and which one is in production (promotion and
//! rollback are one atomic file replace); `endpoint` serves a registry's models over HTTP with
//! the SageMaker inference container contract (`/ping`, `/invocations`), swapping in a newly
//! promoted version without failing a request; `input` turns request bodies (JSON, JSON lines,
//! CSV) into records and says which record and field is wrong; `score` scores a stream on
//! arrival onto an output stream, exactly once per input across crashes.
//! `monitor` compares the records scored lately with the model's training baseline (drift,
//! by PSI per feature).

pub mod endpoint;
pub mod error;
pub mod input;
pub mod metrics;
pub mod monitor;
pub mod registry;
pub mod score;

pub use error::ServeError;
