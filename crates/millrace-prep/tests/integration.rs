//! The crate's integration tests, built as one test binary: one link and one binary on
//! disk instead of one per file (CI's disk and build time). Each file stays a module named
//! for what it checks; run one with `cargo test -p millrace-prep --test integration FILE::`.

mod common;
mod concat_json;
mod fuzz_json;
mod golden;
mod jobs;
mod latest_by;
mod scan_wire;
