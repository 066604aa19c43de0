//! The few kernels every millrace crate needs and none of them owns: replacing a local file
//! durably (`durable`), reading and printing wall-clock time (`time`), the data directory's
//! layout (`layout`), the process's open-file limit (`fd`), random ids (`ids`) and the
//! base64 of record data on the wire (`base64`).
//!
//! Not for domain rules: anything that knows about streams, objects, datasets or models lives in
//! the crate of that stage. This crate depends on nothing of millrace's, so the lowest crates
//! (the log, the lake) can use it.

pub mod base64;
pub mod durable;
pub mod fd;
pub mod ids;
pub mod keys;
pub mod layout;
pub mod time;
