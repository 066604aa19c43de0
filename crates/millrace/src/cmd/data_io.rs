//! Reading tables from a file, folder, lake prefix or s3:// URL (through prep's lake tables,
//! so every format and compression `millrace query` reads works here) and writing them to a
//! file (atomically), an s3:// URL, or a lake folder committed by a manifest.
//!
//! Two ways to read: whole (`read_table`, `read_frame`, for training and profiling) or a chunk
//! at a time (`open_chunks`, for batch scoring with bounded memory). A local CSV file is read
//! the same way by both, every column as text, so a chunked read equals a whole read row for
//! row. Writing goes through one `OutputEncoder` per format, fed batch by batch; `output` puts the
//! encoded rows in a file or a lake folder with a manifest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use futures::StreamExt;
use millrace_common::layout::DataDir;
use millrace_lake::{Lake, S3Options};
use millrace_prep::manifest::InputObject;
use millrace_prep::{InputFormat, LakeTable, Location, OnBadRecord, ScanProgress, TableOptions};
use millrace_wrangle::{Column, Frame};
use tokio::sync::mpsc;

mod output;
pub use output::{OutputTarget, Sink, TransformInfo};

/// `PATH[:FORMAT]` → the path and the format its suffix names, if any.
fn split_spec(spec: &str) -> (&str, Option<InputFormat>) {
    match spec.rsplit_once(':') {
        Some((p, f)) if !f.contains('/') => match f.parse::<InputFormat>() {
            Ok(fmt) => (p, Some(fmt)),
            Err(_) => (spec, None),
        },
        _ => (spec, None),
    }
}

/// The lake table over `spec` (a file, folder, prefix of the data dir's lake or s3:// URL).
async fn open_table(
    data_dir: &Path,
    spec: &str,
    s3: &S3Options,
    options: &TableOptions,
    flag: &str,
) -> anyhow::Result<Arc<LakeTable>> {
    let (path, format) = split_spec(spec);
    let lake_dir = DataDir::new(data_dir).lake();
    let default_lake = if lake_dir.is_dir() {
        Some(Lake::open(&lake_dir.display().to_string(), s3)?)
    } else {
        None
    };
    let loc = Location::resolve(path, default_lake.as_ref(), s3)
        .with_context(|| format!("{flag} {spec}"))?;
    let table = LakeTable::open("data", &loc, format, None, options)
        .await
        .with_context(|| format!("{flag} {spec}"))?;
    Ok(Arc::new(table))
}

/// `PATH[:FORMAT]` → every row of it.
pub async fn read_table(
    data_dir: &Path,
    spec: &str,
    s3: &S3Options,
) -> anyhow::Result<(SchemaRef, Vec<RecordBatch>)> {
    let table = open_table(data_dir, spec, s3, &TableOptions::default(), "--data").await?;
    let ctx = millrace_prep::context(&millrace_prep::EngineOptions {
        memory_limit_mib: millrace_prep::engine::default_memory_limit_mib(),
        target_partitions: None,
    })?;
    ctx.register_table("data", table.clone())?;
    let df = ctx.table("data").await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df
        .collect()
        .await
        .with_context(|| format!("reading {spec}"))?;
    let bad = table.progress().bad_count.load(Ordering::Relaxed);
    if bad > 0 {
        eprintln!("warning: skipped {bad} unreadable JSON value(s) in {spec}");
    }
    Ok((schema, batches))
}

/// `PATH` → a frame. A local CSV file is read with every column as text, exactly as it is in
/// the file (an empty field is missing): deciding that "29.85" is a number is the consumer's
/// job (the trainer's automatic features, or a recipe's cast), and guessing here could turn an
/// ID like "0042" into 42. Anything else goes through `read_table`.
pub async fn read_frame(data_dir: &Path, spec: &str, s3: &S3Options) -> anyhow::Result<Frame> {
    if let Some(local) = local_csv(spec) {
        return tokio::task::spawn_blocking(move || -> anyhow::Result<Frame> {
            CsvChunks::open(&local)?.next_chunk(usize::MAX)
        })
        .await?;
    }
    let (schema, batches) = read_table(data_dir, spec, s3).await?;
    Ok(tokio::task::spawn_blocking(move || Frame::from_batches(&schema, &batches)).await??)
}

/// The path of `spec` when it is a local CSV file (read as text by `CsvChunks`).
fn local_csv(spec: &str) -> Option<PathBuf> {
    let local = Path::new(spec.strip_prefix("file://").unwrap_or(spec));
    let is_csv = local
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        && local.is_file();
    is_csv.then(|| local.to_path_buf())
}

/// A local CSV file read a chunk of rows at a time, every field as text (empty = missing).
pub struct CsvChunks {
    path: PathBuf,
    reader: csv::Reader<std::fs::File>,
    header: Vec<String>,
    record: csv::StringRecord,
    /// Data rows read so far (for messages: row 1 is the first after the header).
    rows: usize,
}

impl CsvChunks {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(path)
            .with_context(|| format!("reading {}", path.display()))?;
        let header: Vec<String> = reader
            .headers()
            .with_context(|| format!("reading the header of {}", path.display()))?
            .iter()
            .map(str::to_owned)
            .collect();
        let mut seen = std::collections::HashSet::new();
        for h in &header {
            if !seen.insert(h.as_str()) {
                bail!(
                    "{}: column `{h}` appears twice in the header",
                    path.display()
                );
            }
        }
        Ok(Self {
            path: path.to_owned(),
            reader,
            header,
            record: csv::StringRecord::new(),
            rows: 0,
        })
    }

    /// Bytes of the file consumed so far.
    pub fn position(&self) -> u64 {
        self.reader.position().byte()
    }

    /// The next `max_rows` rows (fewer at the end of the file; none after it).
    pub fn next_chunk(&mut self, max_rows: usize) -> anyhow::Result<Frame> {
        let mut cols: Vec<Vec<Option<String>>> = vec![Vec::new(); self.header.len()];
        let mut n = 0;
        while n < max_rows {
            let more = self
                .reader
                .read_record(&mut self.record)
                .with_context(|| format!("{}: row {}", self.path.display(), self.rows + 1))?;
            if !more {
                break;
            }
            self.rows += 1;
            if self.record.len() != self.header.len() {
                bail!(
                    "{}: row {} has {} fields, the header has {}",
                    self.path.display(),
                    self.rows,
                    self.record.len(),
                    self.header.len()
                );
            }
            for (c, v) in cols.iter_mut().zip(self.record.iter()) {
                c.push((!v.is_empty()).then(|| v.to_owned()));
            }
            n += 1;
        }
        let mut f = Frame::new(n);
        for (h, c) in self.header.iter().zip(cols) {
            f.set(h.as_str().into(), Column::Str(c));
        }
        Ok(f)
    }
}

/// How far reading has got, for a progress bar.
pub enum ReadProgress {
    Csv { total: u64, read: Arc<AtomicU64> },
    Scan(Arc<ScanProgress>),
}

impl ReadProgress {
    pub fn bytes_total(&self) -> u64 {
        match self {
            Self::Csv { total, .. } => *total,
            Self::Scan(p) => p.bytes_total.load(Ordering::Relaxed),
        }
    }

    pub fn bytes_read(&self) -> u64 {
        match self {
            Self::Csv { read, .. } => read.load(Ordering::Relaxed),
            Self::Scan(p) => p.bytes_read.load(Ordering::Relaxed),
        }
    }
}

/// An input being read in chunks on its own task: frames of `chunk_rows` rows (the last one
/// shorter; one empty frame for an empty input), numbered in input order, through a bounded
/// channel, so at most a few chunks are in memory whatever the input's size.
pub struct InputChunks {
    pub chunks: mpsc::Receiver<(u64, Frame)>,
    /// The reader: the number of chunks it sent, or why it stopped.
    pub reader: tokio::task::JoinHandle<anyhow::Result<u64>>,
    pub progress: ReadProgress,
    /// Every object (or file) the input consists of, for a manifest.
    pub objects: Vec<InputObject>,
}

/// Starts reading `spec` in chunks. A local CSV file is read as text (as `read_frame` does);
/// anything else streams through DataFusion with prep's memory pool, in object key order and
/// row order within each object (one partition: scoring, not decoding, is the slow part). A
/// value that cannot be read fails the input, naming the object and byte offset.
pub async fn open_chunks(
    data_dir: &Path,
    spec: &str,
    s3: &S3Options,
    chunk_rows: usize,
    depth: usize,
) -> anyhow::Result<InputChunks> {
    let (tx, rx) = mpsc::channel(depth.max(1));
    if let Some(local) = local_csv(spec) {
        let meta = std::fs::metadata(&local).with_context(|| format!("--input {spec}"))?;
        let abs = local.canonicalize().unwrap_or(local.clone());
        let mut csv = CsvChunks::open(&local).with_context(|| format!("--input {spec}"))?;
        let read = Arc::new(AtomicU64::new(0));
        let objects = vec![InputObject {
            object: abs.display().to_string(),
            size: meta.len(),
            etag: None,
            last_modified_ms: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64),
        }];
        let read_c = read.clone();
        let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
            let mut seq = 0u64;
            loop {
                let frame = csv.next_chunk(chunk_rows)?;
                read_c.store(csv.position(), Ordering::Relaxed);
                let last = frame.rows() < chunk_rows;
                if frame.rows() > 0 || seq == 0 {
                    if tx.blocking_send((seq, frame)).is_err() {
                        bail!("scoring stopped");
                    }
                    seq += 1;
                }
                if last {
                    return Ok(seq);
                }
            }
        });
        return Ok(InputChunks {
            chunks: rx,
            reader,
            progress: ReadProgress::Csv {
                total: meta.len(),
                read,
            },
            objects,
        });
    }
    let options = TableOptions {
        source_columns: false,
        on_bad_record: OnBadRecord::Fail,
        latest_by: None,
    };
    let table = open_table(data_dir, spec, s3, &options, "--input").await?;
    let objects = table
        .objects()
        .iter()
        .map(|o| InputObject::new(table.lake(), o))
        .collect();
    let ctx = millrace_prep::context(&millrace_prep::EngineOptions {
        memory_limit_mib: millrace_prep::engine::default_memory_limit_mib(),
        target_partitions: Some(1),
    })?;
    ctx.register_table("data", table.clone())?;
    let df = ctx.table("data").await?;
    let mut stream = df
        .execute_stream()
        .await
        .with_context(|| format!("reading {spec}"))?;
    let schema = stream.schema();
    let spec_c = spec.to_owned();
    let reader = tokio::spawn(async move {
        // Keeps the session (and its memory pool) alive while the stream runs.
        let _ctx = ctx;
        let mut chunker = Chunker {
            tx,
            schema,
            spec: spec_c,
            pending: Vec::new(),
            pending_rows: 0,
            first_row: 0,
            seq: 0,
        };
        while let Some(batch) = stream.next().await {
            let batch = batch
                .map_err(flat)
                .with_context(|| format!("reading {}", chunker.spec))?;
            let mut offset = 0;
            while offset < batch.num_rows() {
                let take = (chunk_rows - chunker.pending_rows).min(batch.num_rows() - offset);
                chunker.pending.push(batch.slice(offset, take));
                chunker.pending_rows += take;
                offset += take;
                if chunker.pending_rows == chunk_rows {
                    chunker.send().await?;
                }
            }
        }
        if chunker.pending_rows > 0 || chunker.seq == 0 {
            chunker.send().await?;
        }
        Ok(chunker.seq)
    });
    Ok(InputChunks {
        chunks: rx,
        reader,
        progress: ReadProgress::Scan(table.progress()),
        objects,
    })
}

/// A DataFusion error as one message: an external error's `Display` already includes its
/// cause, so reporting the chain would print it twice.
fn flat(e: datafusion::error::DataFusionError) -> anyhow::Error {
    match e {
        datafusion::error::DataFusionError::External(inner) => anyhow::anyhow!("{inner}"),
        other => anyhow::anyhow!("{}", other.strip_backtrace()),
    }
}

/// Gathers record batches into chunks of rows and sends each on as a frame.
struct Chunker {
    tx: mpsc::Sender<(u64, Frame)>,
    schema: SchemaRef,
    spec: String,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// Input rows before the pending ones.
    first_row: u64,
    seq: u64,
}

impl Chunker {
    async fn send(&mut self) -> anyhow::Result<()> {
        let batches = std::mem::take(&mut self.pending);
        let rows = std::mem::take(&mut self.pending_rows) as u64;
        let schema = self.schema.clone();
        let frame = tokio::task::spawn_blocking(move || Frame::from_batches(&schema, &batches))
            .await?
            .with_context(|| {
                format!(
                    "{}: rows {}–{}",
                    self.spec,
                    self.first_row + 1,
                    self.first_row + rows
                )
            })?;
        self.first_row += rows;
        if self.tx.send((self.seq, frame)).await.is_err() {
            bail!("scoring stopped");
        }
        self.seq += 1;
        Ok(())
    }
}

/// The formats written: Parquet (zstd), CSV with a header, or one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    Csv,
    Ndjson,
}

impl FileFormat {
    /// The format a file name's extension names.
    pub fn from_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".parquet") {
            Some(Self::Parquet)
        } else if lower.ends_with(".csv") {
            Some(Self::Csv)
        } else if lower.ends_with(".json")
            || lower.ends_with(".ndjson")
            || lower.ends_with(".jsonl")
        {
            Some(Self::Ndjson)
        } else {
            None
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }
}

/// One output file being encoded, batch by batch, into `W`.
pub enum OutputEncoder<W: Write + Send> {
    Parquet(parquet::arrow::ArrowWriter<W>),
    Csv(arrow_csv::Writer<W>),
    Ndjson(arrow::json::LineDelimitedWriter<W>),
}

impl<W: Write + Send> OutputEncoder<W> {
    pub fn new(format: FileFormat, schema: SchemaRef, out: W) -> anyhow::Result<Self> {
        Ok(match format {
            FileFormat::Parquet => {
                // Row groups of 128Ki rows (DuckDB's size, about): the writer buffers one.
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                    .set_max_row_group_row_count(Some(128 * 1024))
                    .build();
                Self::Parquet(parquet::arrow::ArrowWriter::try_new(
                    out,
                    schema,
                    Some(props),
                )?)
            }
            FileFormat::Csv => {
                Self::Csv(arrow_csv::WriterBuilder::new().with_header(true).build(out))
            }
            FileFormat::Ndjson => Self::Ndjson(arrow::json::LineDelimitedWriter::new(out)),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        match self {
            Self::Parquet(w) => w.write(batch)?,
            Self::Csv(w) => w.write(batch)?,
            Self::Ndjson(w) => w.write(batch)?,
        }
        Ok(())
    }

    /// Writes what a format needs at the end (Parquet's footer) and returns the output.
    pub fn finish(self) -> anyhow::Result<W> {
        Ok(match self {
            Self::Parquet(w) => w.into_inner()?,
            Self::Csv(w) => w.into_inner(),
            Self::Ndjson(mut w) => {
                w.finish()?;
                w.into_inner()
            }
        })
    }
}

/// Encodes `batch` as the extension of `dest` says: .parquet (zstd), .csv, .json / .ndjson.
pub fn encode(dest: &str, batch: &RecordBatch) -> anyhow::Result<Vec<u8>> {
    let Some(format) = FileFormat::from_name(dest) else {
        bail!("{dest}: name the output .parquet, .csv or .ndjson so the format is clear");
    };
    let mut e = OutputEncoder::new(format, batch.schema(), Vec::new())?;
    e.write(batch)?;
    e.finish()
}

/// Writes bytes to a local path (temporary file, fsync, rename, fsync of the folder) or an
/// s3:// URL.
pub async fn write_bytes(dest: &str, bytes: Vec<u8>, s3: &S3Options) -> anyhow::Result<()> {
    if let Some(rest) = dest.strip_prefix("s3://") {
        let Some((bucket, key)) = rest.split_once('/') else {
            bail!("{dest}: expected s3://bucket/key");
        };
        let lake = Lake::open(&format!("s3://{bucket}"), s3)?;
        lake.put(key, Bytes::from(bytes))
            .await
            .with_context(|| format!("writing {dest}"))?;
        return Ok(());
    }
    let path = Path::new(dest.strip_prefix("file://").unwrap_or(dest)).to_path_buf();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        millrace_common::durable::write_file_staged(&path, &temp_path(&path), &bytes, None)
            .with_context(|| format!("writing {}", path.display()))
    })
    .await?
}

/// `scored.csv` → `scored.csv.tmp`, beside it (so the rename stays on one file system).
fn temp_path(path: &Path) -> PathBuf {
    path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ))
}
