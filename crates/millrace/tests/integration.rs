//! The crate's integration tests, built as one test binary: one link and one binary on
//! disk instead of one per file (CI's disk and build time). Each file stays a module named
//! for what it checks; run one with `cargo test -p millrace --test integration FILE::`.

mod api_validation;
mod batch;
mod cli;
mod common;
mod console;
mod crash;
mod delivery_crash;
mod durable_writes;
mod endpoint;
mod firehose_produce;
mod kafka;
mod lake_keys;
mod lake_partitions;
mod large_records;
mod monitor;
mod nonfinite_inputs;
mod reshard_scoring;
mod server_limits;
mod store_limits;
mod wide_inputs;
