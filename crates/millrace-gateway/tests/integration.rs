//! The crate's integration tests, built as one test binary: one link and one binary on
//! disk instead of one per file (CI's disk and build time). Each file stays a module named
//! for what it checks; run one with `cargo test -p millrace-gateway --test integration FILE::`.

mod auth;
mod bad_input;
mod channels;
mod common;
mod fanout;
mod fuzz;
mod queues;
mod record_distribution;
mod reshard_api;
mod sdk;
mod settings_ops;
mod throttling;
mod wire;
