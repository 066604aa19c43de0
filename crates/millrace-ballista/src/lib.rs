//! `millrace-ballista` runs prep on Apache DataFusion Ballista: the same job SQL, the same lake
//! table (its JSON decoder, concatenated-JSON splitting and `latest_by` run on the executors),
//! the same outputs and manifests.
//!
//! - [`codec`]: how the lake table, its scan and prep's `TRIM` travel in Ballista's plans.
//! - [`cluster`]: the scheduler and executor roles (`millrace ballista scheduler|executor`):
//!   Ballista's own servers with those codecs and prep's session rules.
//! - [`client`]: a session whose queries run on a cluster (`--engine ballista://HOST:PORT`).
//! - [`results`]: the client's check on a job's result list before its rows are used (and the
//!   job run again when the scheduler lists a partition twice or on a lost executor).

pub mod client;
pub mod cluster;
pub mod codec;
pub mod error;
pub mod results;

pub use client::{SCHEME, context, scheduler_of};
pub use cluster::{ExecutorOptions, SchedulerOptions, executor, scheduler};
pub use error::{ClusterError, Result};
