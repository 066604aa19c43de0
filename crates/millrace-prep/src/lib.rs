//! `millrace-prep` owns the SQL stage: Apache DataFusion over lake prefixes (the EMR Spark /
//! Athena step).
//!
//! - [`table::LakeTable`] reads an exact list of objects — NDJSON, Firehose's concatenated
//!   JSON, CSV, Parquet, gzip/zstd, local or S3 — with Hive partition columns and optional
//!   `_object`/`_row` source columns; a bad JSON value is skipped and reported by object and
//!   byte offset instead of failing the object.
//! - [`job::Job`] is a job file (inputs, statements, outputs); [`run::JobRun`] runs it, writes
//!   outputs as Parquet or CSV and commits each with a [`manifest::Manifest`] recording the
//!   input objects (size, etag), the SQL, rows and time. Incremental jobs read only objects no
//!   earlier manifest lists.
//! - [`dataset::DatasetWriter`] is the one way a dataset changes, for prep jobs and for
//!   `millrace predict` alike: parts under new names, then the manifest (history copy first),
//!   then the `part-*` files the new manifest does not list are deleted.
//! - [`engine`] builds the session: bounded memory pool with spilling, statement-numbered
//!   errors; [`trim`] is its `TRIM` that skips the copy when nothing needs trimming.

pub mod dataset;
pub mod engine;
pub mod error;
pub mod format;
pub mod job;
pub mod json;
pub mod latest;
pub mod latest_merge;
pub mod location;
pub mod manifest;
pub mod output;
pub mod run;
pub mod scan;
pub mod table;
pub mod trim;

pub use dataset::DatasetWriter;
pub use engine::{EngineOptions, context, read_only, run_statements};
pub use error::{PrepError, Result, RunAgain, asks_to_run_again};
pub use format::InputFormat;
pub use job::Job;
pub use latest_merge::LatestMergeExec;
pub use location::Location;
pub use run::{JobReport, JobRun, RunOptions};
pub use scan::{LakeScanExec, ScanReport};
pub use table::{LakeTable, OnBadRecord, ScanProgress, TableOptions};
