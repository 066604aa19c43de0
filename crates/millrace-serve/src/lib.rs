//! millrace-serve: the last stage — models in use.
//!
//! `registry` keeps each model's versions (numbered under its lock, so concurrent trainers never
//! share one) and which one is in production (promotion and rollback are one atomic file
//! replace); `promotion` is the champion/challenger gate's verdict, a pure function;
//! `endpoint` serves a registry's models over HTTP with the SageMaker inference container
//! contract (`/ping`, `/invocations`), swapping in a newly promoted version without failing a
//! request; `input` turns request bodies (JSON, JSON lines,
//! CSV) into records and says which record and field is wrong; `score` scores a stream on
//! arrival onto an output stream, exactly once per input across crashes.
//! `monitor` compares the records scored lately with the model's training baseline (drift,
//! by PSI per feature). `sagemaker` is the SageMaker Runtime API on the same endpoint
//! (InvokeEndpoint, InvokeEndpointWithResponseStream, InvokeEndpointAsync into the lake).
//! `error` holds every failure as a variant a caller can act on, and its one mapping to HTTP
//! statuses (and to SageMaker's error types). `auth` checks signatures and policies on every
//! endpoint request under `[auth]` (`Endpoint::set_auth`).

mod auth;
pub mod checks;
pub mod endpoint;
pub mod error;
pub mod input;
pub mod metrics;
pub mod monitor;
pub mod promotion;
pub mod registry;
mod sagemaker;
pub mod score;

pub use error::ServeError;
pub use promotion::Verdict;
pub use registry::{NewVersion, Registry};
