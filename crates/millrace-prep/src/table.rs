//! `LakeTable`: a DataFusion table over an exact list of lake objects.
//!
//! DataFusion's listing tables read NDJSON, CSV and Parquet, but not Firehose's concatenated
//! JSON, cannot keep the good rows of an object with one bad record, and decide for themselves
//! which files they read. Prep must know and record exactly which objects a job read (for the
//! manifest and incremental runs), so the table is built from a list of objects and reads them
//! itself: objects are spread over partitions by size, fetched one ahead of decoding, and
//! decoded on blocking threads. It also offers Hive partition columns and, on request, the
//! source columns `_object`, `_row` and `_seq` (an object's key, a row's index in it, and
//! arrival order), and `latest_by`, which keeps each key's last record in the scan itself
//! (objects read newest first; see [`crate::latest`]). A `latest_by` Parquet object is
//! decoded whole, like JSON and CSV, since its rows are marked last to first.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{
    ArrayRef, Int64Array, RecordBatch, RecordBatchOptions, StringArray, new_null_array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use millrace_lake::{Lake, ObjectInfo};
use parking_lot::Mutex;

use crate::error::{PrepError, Result};
use crate::format::{InputFormat, decompress};
use crate::json::{self, BadRecord};
use crate::latest;
use crate::latest_merge::{self, LatestMergeExec};
use crate::location::{Location, hive_partitions};
use crate::scan::{
    LakeScanExec, ReportTo, ScanPlan, WireLake, WireObject, schema_from_hex, schema_to_hex,
};

pub const OBJECT_COLUMN: &str = "_object";
pub const ROW_COLUMN: &str = "_row";
pub const SEQ_COLUMN: &str = "_seq";
const MAX_KEPT_BAD: usize = 1000;
const INFER_ROWS: usize = 1000;

/// What to do with a JSON value that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadRecord {
    /// Skip it, keep the object's other rows, and report it (object and byte offset).
    #[default]
    Skip,
    /// Fail the query.
    Fail,
}

#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    /// Add `_object` and `_row`.
    pub source_columns: bool,
    pub on_bad_record: OnBadRecord,
    /// Keep only the latest record (by arrival) of each value of this column; see
    /// [`crate::latest`].
    pub latest_by: Option<String>,
}

/// Counters a progress bar reads while a query runs, and the bad records it met.
#[derive(Debug, Default)]
pub struct ScanProgress {
    pub objects_total: AtomicU64,
    pub bytes_total: AtomicU64,
    pub objects_read: AtomicU64,
    pub bytes_read: AtomicU64,
    pub rows_read: AtomicU64,
    pub bad_count: AtomicU64,
    bad: Mutex<Vec<BadRecord>>,
}

impl ScanProgress {
    /// Counters for a scan of `objects`: their number and bytes as the totals, nothing read.
    fn for_objects(objects: &[ObjectInfo]) -> Self {
        let progress = Self::default();
        progress
            .objects_total
            .store(objects.len() as u64, Ordering::Relaxed);
        progress
            .bytes_total
            .store(objects.iter().map(|o| o.size).sum(), Ordering::Relaxed);
        progress
    }

    fn add_bad(&self, bad: Vec<BadRecord>) {
        if bad.is_empty() {
            return;
        }
        self.bad_count
            .fetch_add(bad.len() as u64, Ordering::Relaxed);
        let mut kept = self.bad.lock();
        for b in bad {
            if kept.len() < MAX_KEPT_BAD {
                tracing::warn!(object = %b.object, offset = b.offset, "skipped bad record: {}", b.error);
                kept.push(b);
            }
        }
    }

    /// The bad records seen so far (first 1,000).
    pub fn bad_records(&self) -> Vec<BadRecord> {
        self.bad.lock().clone()
    }
}

/// A table over a fixed list of objects of one format.
#[derive(Debug)]
pub struct LakeTable {
    name: String,
    lake: Lake,
    /// Folder the objects' Hive partitions are relative to.
    folder: String,
    format: InputFormat,
    objects: Arc<Vec<ObjectInfo>>,
    file_schema: SchemaRef,
    partition_cols: Vec<String>,
    on_bad_record: OnBadRecord,
    /// Index of the `latest_by` column in `file_schema`.
    latest_by: Option<usize>,
    schema: SchemaRef,
    progress: Arc<ScanProgress>,
    /// Set for a distributed run: the folder of the lake where scans in other processes
    /// leave their counters ([`crate::scan`]).
    report_prefix: Option<String>,
}

impl LakeTable {
    /// Builds a table over `objects` of `location` (all of its objects when `None`); the
    /// format comes from `format` or the first object's name, the schema from a sample.
    pub async fn open(
        name: &str,
        location: &Location,
        format: Option<InputFormat>,
        objects: Option<Vec<ObjectInfo>>,
        options: &TableOptions,
    ) -> Result<Self> {
        let mut objects = match objects {
            Some(o) => o,
            None => location.list().await?,
        };
        // Key order is arrival order for delivery's names; `_seq` counts in it.
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        let input_err = |message: String| PrepError::Input {
            table: name.to_owned(),
            message,
        };
        let first = objects
            .first()
            .ok_or_else(|| input_err(format!("no data objects under {}", location.display())))?;
        let format = format.unwrap_or_else(|| InputFormat::from_key(&first.key));
        let file_schema = infer_schema(&location.lake, format, &objects)
            .await
            .map_err(|e| input_err(format!("cannot infer a schema: {e}")))?;
        let folder = location.folder();
        let partition_cols: Vec<String> =
            hive_partitions(first.key.strip_prefix(&folder).unwrap_or(&first.key))
                .into_iter()
                .map(|(k, _)| k)
                .filter(|k| file_schema.field_with_name(k).is_err())
                .collect();
        let latest_by = match &options.latest_by {
            None => None,
            Some(col) => Some(file_schema.index_of(col).map_err(|_| {
                let names: Vec<&str> = file_schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                input_err(format!(
                    "latest_by: no column {col:?} in the objects (columns: {})",
                    names.join(", ")
                ))
            })?),
        };
        let mut fields: Vec<Field> = file_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        fields.extend(
            partition_cols
                .iter()
                .map(|c| Field::new(c, DataType::Utf8, true)),
        );
        if options.source_columns {
            fields.push(Field::new(OBJECT_COLUMN, DataType::Utf8, false));
            fields.push(Field::new(ROW_COLUMN, DataType::Int64, false));
            fields.push(Field::new(SEQ_COLUMN, DataType::Int64, false));
        }
        let progress = Arc::new(ScanProgress::for_objects(&objects));
        Ok(Self {
            name: name.to_owned(),
            lake: location.lake.clone(),
            folder,
            format,
            objects: Arc::new(objects),
            file_schema: Arc::new(Schema::new(
                file_schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect::<Vec<_>>(),
            )),
            partition_cols,
            on_bad_record: options.on_bad_record,
            latest_by,
            schema: Arc::new(Schema::new(fields)),
            progress,
            report_prefix: None,
        })
    }

    /// Scans of this table will run in other processes (a Ballista cluster): each of their
    /// partitions leaves its counters and bad records under `prefix` of the table's lake (read
    /// back with [`crate::scan::collect_reports`]), and a scan without `latest_by` is one
    /// partition that decodes several objects at once (see `scan`).
    pub fn report_to(&mut self, prefix: impl Into<String>) {
        self.report_prefix = Some(prefix.into());
    }

    pub fn report_prefix(&self) -> Option<&str> {
        self.report_prefix.as_deref()
    }

    /// After the query: the bad records its scans met (the first 1,000) and their count. For
    /// a table whose scans ran elsewhere ([`Self::report_to`]) their reports are read into
    /// this table's counters first, and deleted.
    pub async fn scanned_bad_records(&self) -> Result<(Vec<BadRecord>, u64)> {
        let p = &self.progress;
        if let Some(prefix) = &self.report_prefix {
            let r = crate::scan::collect_reports(&self.lake, prefix).await?;
            p.objects_read.fetch_add(r.objects, Ordering::Relaxed);
            p.bytes_read.fetch_add(r.bytes, Ordering::Relaxed);
            p.rows_read.fetch_add(r.rows, Ordering::Relaxed);
            return Ok((r.bad, r.bad_count));
        }
        Ok((p.bad_records(), p.bad_count.load(Ordering::Relaxed)))
    }

    /// The table as bytes another process can plan with ([`Self::from_bytes`]): a Ballista
    /// scheduler receives a job's plans with the tables in them. A `memory://` lake is refused.
    pub fn to_bytes(&self) -> datafusion::error::Result<Vec<u8>> {
        let wire = WireTable {
            name: self.name.clone(),
            lake: WireLake::of(&self.lake)?,
            folder: self.folder.clone(),
            format: self.format,
            objects: self.objects.iter().map(WireObject::of).collect(),
            file_schema: schema_to_hex(&self.file_schema)?,
            partition_cols: self.partition_cols.clone(),
            on_bad_record: self.on_bad_record,
            latest_by: self.latest_by,
            schema: schema_to_hex(&self.schema)?,
            report_prefix: self.report_prefix.clone(),
        };
        serde_json::to_vec(&wire).map_err(|e| DataFusionError::External(Box::new(e)))
    }

    /// Reads back a table written by [`Self::to_bytes`], with counters of its own.
    pub fn from_bytes(bytes: &[u8]) -> datafusion::error::Result<Self> {
        let wire: WireTable =
            serde_json::from_slice(bytes).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let objects: Vec<ObjectInfo> = wire.objects.into_iter().map(|o| o.into_info()).collect();
        let progress = Arc::new(ScanProgress::for_objects(&objects));
        Ok(Self {
            name: wire.name,
            lake: wire.lake.open()?,
            folder: wire.folder,
            format: wire.format,
            objects: Arc::new(objects),
            file_schema: schema_from_hex(&wire.file_schema)?,
            partition_cols: wire.partition_cols,
            on_bad_record: wire.on_bad_record,
            latest_by: wire.latest_by,
            schema: schema_from_hex(&wire.schema)?,
            progress,
            report_prefix: wire.report_prefix,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keeps the columns but reads no objects (an incremental input with nothing new).
    pub fn clear_objects(&mut self) {
        self.objects = Arc::new(Vec::new());
        self.progress.objects_total.store(0, Ordering::Relaxed);
        self.progress.bytes_total.store(0, Ordering::Relaxed);
    }

    pub fn format(&self) -> InputFormat {
        self.format
    }

    pub fn objects(&self) -> &[ObjectInfo] {
        &self.objects
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    pub fn progress(&self) -> Arc<ScanProgress> {
        self.progress.clone()
    }
}

#[async_trait]
impl TableProvider for LakeTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        let projection = projection.unwrap_or(&all).clone();
        let projected = Arc::new(self.schema.project(&projection)?);
        let nfile = self.file_schema.fields().len();
        let mut file_cols: Vec<usize> = projection.iter().copied().filter(|i| *i < nfile).collect();
        // The key is decoded even when the query does not ask for it.
        let key_pos = self.latest_by.map(|k| {
            file_cols.iter().position(|c| *c == k).unwrap_or_else(|| {
                file_cols.push(k);
                file_cols.len() - 1
            })
        });
        let decode_schema = Arc::new(self.file_schema.project(&file_cols)?);
        let columns: Vec<OutColumn> = projection
            .iter()
            .map(|&i| {
                if i < nfile {
                    OutColumn::File(file_cols.iter().position(|c| *c == i).unwrap_or(0))
                } else if i < nfile + self.partition_cols.len() {
                    OutColumn::Partition(self.partition_cols[i - nfile].clone())
                } else if self.schema.field(i).name() == OBJECT_COLUMN {
                    OutColumn::Object
                } else if self.schema.field(i).name() == ROW_COLUMN {
                    OutColumn::Row
                } else {
                    OutColumn::Seq
                }
            })
            .collect();
        let target = state.config().target_partitions().max(1);
        let batch_size =
            rows_per_batch(state.config().batch_size(), self.file_schema.fields().len());
        let shared = Arc::new(ScanShared {
            lake: self.lake.clone(),
            folder: self.folder.clone(),
            format: self.format,
            full_file_schema: self.file_schema.clone(),
            file_cols,
            decode_schema,
            out_schema: projected.clone(),
            columns,
            on_bad_record: self.on_bad_record,
            progress: self.progress.clone(),
            batch_size,
        });
        let distributed = self.report_prefix.is_some();
        let plan = match key_pos {
            // On a cluster: groups, each keeping its own objects' latest records, merged by
            // key after a shuffle (`latest_merge.rs`).
            Some(key_pos) if distributed => ScanPlan::Latest {
                groups: spread(&self.objects, target),
                key_pos,
                parallel: 1,
            },
            // One stream, newest object first; it decodes `target` objects at a time itself,
            // and DataFusion spreads its batches over threads for what comes after.
            Some(key_pos) => ScanPlan::Latest {
                groups: vec![planned_in_order(&self.objects)],
                key_pos,
                parallel: target,
            },
            // Fetch the next object while this one decodes. On a cluster the groups are
            // spread over tasks (the scan's group index, in `scan.rs`).
            None => ScanPlan::Objects {
                groups: spread(&self.objects, target),
                ahead: 2,
            },
        };
        let report = self.report_prefix.as_ref().map(|prefix| ReportTo {
            prefix: prefix.clone(),
            scan_id: format!("{:016x}", rand::random::<u64>()),
        });
        if let (true, Some(key_pos)) = (distributed, key_pos) {
            // Each group's candidates carry their compared key and arrival order; the merge
            // keeps one per key and drops the two columns. No limit on a group: a row it
            // keeps may still lose to another group's.
            let mut shared = (*shared).clone();
            shared
                .columns
                .extend([OutColumn::LatestKey(key_pos), OutColumn::Seq]);
            let mut fields: Vec<Field> = projected.fields().iter().map(|f| (**f).clone()).collect();
            fields.extend(latest_merge::extra_fields());
            shared.out_schema = Arc::new(Schema::new(fields));
            let scan = LakeScanExec::new(Arc::new(shared), plan, None, report)?;
            return Ok(Arc::new(LatestMergeExec::try_new(Arc::new(scan))?));
        }
        Ok(Arc::new(LakeScanExec::new(shared, plan, limit, report)?))
    }
}

/// A [`LakeTable`] as bytes.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct WireTable {
    name: String,
    lake: WireLake,
    folder: String,
    format: InputFormat,
    objects: Vec<WireObject>,
    file_schema: String,
    partition_cols: Vec<String>,
    on_bad_record: OnBadRecord,
    latest_by: Option<usize>,
    schema: String,
    report_prefix: Option<String>,
}

/// Objects spread over `n` partitions so each gets about the same number of bytes; each keeps
/// its objects in key order.
fn spread(objects: &[ObjectInfo], n: usize) -> Vec<Vec<Planned>> {
    let n = n.min(objects.len()).max(1);
    let mut order: Vec<usize> = (0..objects.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(objects[i].size));
    let mut load = vec![0u64; n];
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in order {
        let g = (0..n).min_by_key(|&g| load[g]).unwrap_or(0);
        load[g] += objects[i].size.max(1);
        groups[g].push(i);
    }
    groups
        .into_iter()
        .map(|mut g| {
            g.sort_unstable();
            g.into_iter()
                .map(|i| Planned {
                    ordinal: i,
                    info: objects[i].clone(),
                })
                .collect()
        })
        .collect()
}

/// Every object in key order, as one group.
fn planned_in_order(objects: &[ObjectInfo]) -> Vec<Planned> {
    objects
        .iter()
        .enumerate()
        .map(|(ordinal, info)| Planned {
            ordinal,
            info: info.clone(),
        })
        .collect()
}

/// An object and its position in the table's key order (for `_seq`).
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) ordinal: usize,
    pub(crate) info: ObjectInfo,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum OutColumn {
    /// Index into the decoded (projected) file columns.
    File(usize),
    Partition(String),
    Object,
    Row,
    /// Arrival order within the scan: the object's ordinal in key order, then the row.
    Seq,
    /// A `latest_by` key as compared (text, spaces trimmed), by index into the decoded
    /// columns: what a split scan's groups are merged by.
    LatestKey(usize),
}

/// What every partition of one scan shares: where and how to decode, and the counters.
#[derive(Debug, Clone)]
pub(crate) struct ScanShared {
    pub(crate) lake: Lake,
    pub(crate) folder: String,
    pub(crate) format: InputFormat,
    pub(crate) full_file_schema: SchemaRef,
    pub(crate) file_cols: Vec<usize>,
    pub(crate) decode_schema: SchemaRef,
    pub(crate) out_schema: SchemaRef,
    pub(crate) columns: Vec<OutColumn>,
    pub(crate) on_bad_record: OnBadRecord,
    pub(crate) progress: Arc<ScanProgress>,
    pub(crate) batch_size: usize,
}

pub(crate) type ScanStream = BoxStream<'static, datafusion::error::Result<RecordBatch>>;

/// One partition's objects in order, `ahead` of them fetched and decoded at once.
pub(crate) fn objects_stream(
    shared: Arc<ScanShared>,
    objects: Vec<Planned>,
    ahead: usize,
) -> ScanStream {
    futures::stream::iter(objects)
        .map(move |object| {
            let shared = shared.clone();
            async move { read_object(shared, object).await }
        })
        .buffered(ahead.max(1))
        .try_flatten()
        .boxed()
}

/// The `latest_by` scan: objects newest first, each decoded whole on a blocking thread
/// (`parallel` at a time, results taken in order), then its stale rows marked against the
/// keys of every newer object, one object after another, and dropped. The marking is the only
/// sequential step (under 0.1 µs per row: 0.4 s of CPU for 5M rows in the churn job's
/// profile); the filtering runs beside it.
pub(crate) fn latest_stream(
    shared: Arc<ScanShared>,
    objects: Vec<Planned>,
    key_pos: usize,
    parallel: usize,
) -> ScanStream {
    let seen: latest::SharedKeySet = Default::default();
    let mut newest_first = objects;
    newest_first.sort_unstable_by_key(|p| std::cmp::Reverse(p.ordinal));
    let decode = shared.clone();
    let finish_shared = shared;
    let total_bytes: u64 = newest_first.iter().map(|p| p.info.size).sum();
    futures::stream::iter(newest_first)
        .map(move |planned| {
            let shared = decode.clone();
            async move {
                let batches = decode_object(&shared, &planned).await?;
                Ok::<_, DataFusionError>((planned, batches))
            }
        })
        .buffered(parallel.max(1) + 1)
        .and_then(move |(planned, batches)| {
            let seen = seen.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let mut seen = seen.lock();
                    let first = seen.is_empty();
                    let masks = latest::mark_latest(&mut seen, &batches, key_pos)?;
                    if first {
                        seen.size_for_scan(planned.info.size, total_bytes);
                    }
                    Ok::<_, DataFusionError>((planned, batches, masks))
                })
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
            }
        })
        .map_ok(move |(planned, batches, masks)| {
            let shared = finish_shared.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let mut out = Vec::with_capacity(batches.len());
                    let mut row = 0i64;
                    for (b, mask) in batches.into_iter().zip(masks) {
                        let n = b.num_rows() as i64;
                        let b = finish_batch(&shared, &planned, b, row)?;
                        row += n;
                        let b = latest::apply(b, mask.as_ref())?;
                        if b.num_rows() > 0 {
                            out.push(Ok(b));
                        }
                    }
                    Ok::<_, DataFusionError>(futures::stream::iter(out))
                })
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
            }
        })
        .try_buffer_unordered(parallel.max(1))
        .try_flatten()
        .boxed()
}

/// All batches of one object, decoded (before partition and source columns are added), with
/// the progress counters moved on.
async fn decode_object(
    shared: &Arc<ScanShared>,
    planned: &Planned,
) -> datafusion::error::Result<Vec<RecordBatch>> {
    let object = &planned.info;
    let raw = shared
        .lake
        .get(&object.key)
        .await
        .map_err(PrepError::from)?;
    let s = shared.clone();
    let o = object.clone();
    let batches = tokio::task::spawn_blocking(move || {
        if s.format == InputFormat::Parquet {
            let name = format!("{}/{}", s.lake.url(), o.key);
            parquet_reader(&s, &name, raw)?
                .map(|b| {
                    let b = b.map_err(|e| decode_error(&name, &e))?;
                    align(&b, &s.decode_schema).map_err(|e| decode_error(&name, &e))
                })
                .collect()
        } else {
            decode_bytes(&s, &o, raw)
        }
    })
    .await
    .map_err(|e| DataFusionError::External(Box::new(e)))??;
    let p = &shared.progress;
    p.objects_read.fetch_add(1, Ordering::Relaxed);
    p.bytes_read.fetch_add(object.size, Ordering::Relaxed);
    p.rows_read.fetch_add(
        batches.iter().map(|b| b.num_rows() as u64).sum(),
        Ordering::Relaxed,
    );
    Ok(batches)
}

/// The batches of one object. JSON and CSV objects are decoded whole (objects are bounded by
/// their writer); Parquet is decoded a batch at a time as the consumer pulls, so a large file
/// costs its compressed bytes plus one batch, not its decoded size.
async fn read_object(
    shared: Arc<ScanShared>,
    planned: Planned,
) -> datafusion::error::Result<ScanStream> {
    if shared.format == InputFormat::Parquet {
        return read_parquet(shared, planned).await;
    }
    let batches = decode_object(&shared, &planned).await?;
    let out = finish(&shared, &planned, batches)?;
    Ok(futures::stream::iter(out.into_iter().map(Ok)).boxed())
}

/// Cells (rows × columns) one decoded batch may hold. Decoders reserve every column's buffers
/// for a whole batch up front, so a fixed row count would make memory grow with the column
/// count (8,192 rows × 100,000 columns is gigabytes): wide files get proportionally fewer rows.
const CELLS_PER_BATCH: usize = 1 << 20;

/// The batch size for a file of `columns` columns: the configured one, or fewer rows (at least
/// one) so that a batch stays within [`CELLS_PER_BATCH`].
fn rows_per_batch(configured: usize, columns: usize) -> usize {
    configured.min(CELLS_PER_BATCH / columns.max(1)).max(1)
}

/// Decodes a JSON or CSV object into batches of the decode schema.
fn decode_bytes(
    shared: &ScanShared,
    object: &ObjectInfo,
    raw: bytes::Bytes,
) -> datafusion::error::Result<Vec<RecordBatch>> {
    let name = format!("{}/{}", shared.lake.url(), object.key);
    let bytes = decompress(&name, raw)?;
    if let Some(layout) = shared.format.json_layout() {
        let decoded = json::decode(
            &name,
            &bytes,
            layout,
            &shared.decode_schema,
            shared.batch_size,
        )?;
        if !decoded.bad.is_empty() && shared.on_bad_record == OnBadRecord::Fail {
            let b = &decoded.bad[0];
            return Err(PrepError::Decode {
                object: b.object.clone(),
                offset: b.offset,
                message: b.error.clone(),
            }
            .into());
        }
        shared.progress.add_bad(decoded.bad);
        return Ok(decoded.batches);
    }
    // CSV: decode every column, then keep the projected ones (arrow-csv's projection keeps
    // file order, ours may not).
    let reader = arrow_csv::ReaderBuilder::new(shared.full_file_schema.clone())
        .with_header(true)
        .with_delimiter(csv_delimiter(&object.key))
        .with_batch_size(shared.batch_size)
        .build(std::io::Cursor::new(bytes))
        .map_err(|e| csv_error(&name, e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| csv_error(&name, e))?;
        out.push(batch.project(&shared.file_cols)?);
    }
    Ok(out)
}

fn csv_error(name: &str, e: arrow::error::ArrowError) -> DataFusionError {
    PrepError::Decode {
        object: name.to_owned(),
        offset: 0,
        message: e.to_string(),
    }
    .into()
}

fn csv_delimiter(key: &str) -> u8 {
    if key.to_ascii_lowercase().contains(".tsv") {
        b'\t'
    } else {
        b','
    }
}

/// A Parquet object: fetched whole (compressed), then decoded with the projection applied, one
/// batch per pull on a blocking thread. Errors name the object.
async fn read_parquet(
    shared: Arc<ScanShared>,
    planned: Planned,
) -> datafusion::error::Result<ScanStream> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
    let name = format!("{}/{}", shared.lake.url(), planned.info.key);
    let named = decode_error;
    let raw = shared
        .lake
        .get(&planned.info.key)
        .await
        .map_err(PrepError::from)?;
    let s = shared.clone();
    let n = name.clone();
    let reader = tokio::task::spawn_blocking(move || parquet_reader(&s, &n, raw))
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))??;
    struct State {
        reader: ParquetRecordBatchReader,
        shared: Arc<ScanShared>,
        planned: Planned,
        name: String,
        row: i64,
    }
    let state = State {
        reader,
        shared,
        planned,
        name,
        row: 0,
    };
    let stream = futures::stream::try_unfold(state, move |st| async move {
        let (next, mut st) = tokio::task::spawn_blocking(move || {
            let mut st = st;
            let next = st.reader.next();
            (next, st)
        })
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let p = &st.shared.progress;
        let Some(batch) = next else {
            p.objects_read.fetch_add(1, Ordering::Relaxed);
            p.bytes_read
                .fetch_add(st.planned.info.size, Ordering::Relaxed);
            return Ok(None);
        };
        let batch = batch.map_err(|e| named(&st.name, &e))?;
        let batch = align(&batch, &st.shared.decode_schema).map_err(|e| named(&st.name, &e))?;
        let rows = batch.num_rows();
        p.rows_read.fetch_add(rows as u64, Ordering::Relaxed);
        let out = finish_batch(&st.shared, &st.planned, batch, st.row)?;
        st.row += rows as i64;
        Ok(Some((out, st)))
    });
    Ok(stream.boxed())
}

fn decode_error(name: &str, e: &dyn std::fmt::Display) -> DataFusionError {
    PrepError::Decode {
        object: name.to_owned(),
        offset: 0,
        message: e.to_string(),
    }
    .into()
}

/// A Parquet object's reader with the scan's projection and batch size.
fn parquet_reader(
    shared: &ScanShared,
    name: &str,
    raw: bytes::Bytes,
) -> datafusion::error::Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(raw).map_err(|e| decode_error(name, &e))?;
    let file_schema = builder.schema().clone();
    let roots: Vec<usize> = shared
        .decode_schema
        .fields()
        .iter()
        .filter_map(|f| file_schema.index_of(f.name()).ok())
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    builder
        .with_projection(mask)
        .with_batch_size(shared.batch_size)
        .build()
        .map_err(|e| decode_error(name, &e))
}

/// Reorders, casts and fills (with NULLs) a batch's columns to `schema`, by name.
fn align(batch: &RecordBatch, schema: &SchemaRef) -> datafusion::error::Result<RecordBatch> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| match batch.schema().index_of(f.name()) {
            Ok(i) if batch.column(i).data_type() == f.data_type() => Ok(batch.column(i).clone()),
            Ok(i) => arrow::compute::cast(batch.column(i), f.data_type()),
            Err(_) => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

/// Adds partition and source columns in the projection's order.
fn finish(
    shared: &ScanShared,
    planned: &Planned,
    batches: Vec<RecordBatch>,
) -> datafusion::error::Result<Vec<RecordBatch>> {
    let mut row = 0i64;
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let n = b.num_rows();
        out.push(finish_batch(shared, planned, b, row)?);
        row += n as i64;
    }
    Ok(out)
}

/// `finish` for one batch whose first row is row `row` of its object.
fn finish_batch(
    shared: &ScanShared,
    planned: &Planned,
    b: RecordBatch,
    row: i64,
) -> datafusion::error::Result<RecordBatch> {
    let object = &planned.info;
    let relative = object
        .key
        .strip_prefix(&shared.folder)
        .unwrap_or(&object.key);
    let parts = hive_partitions(relative);
    let n = b.num_rows();
    let cols = shared
        .columns
        .iter()
        .map(|c| -> datafusion::error::Result<ArrayRef> {
            Ok(match c {
                OutColumn::File(i) => b.column(*i).clone(),
                OutColumn::LatestKey(i) => latest::compared_keys(b.column(*i))?,
                OutColumn::Partition(name) => {
                    let v = parts
                        .iter()
                        .find(|(k, _)| k == name)
                        .and_then(|(_, v)| v.clone());
                    Arc::new(StringArray::from(vec![v; n]))
                }
                OutColumn::Object => Arc::new(StringArray::from(vec![object.key.as_str(); n])),
                OutColumn::Row => Arc::new(Int64Array::from_iter_values(row..row + n as i64)),
                OutColumn::Seq => {
                    let base = (planned.ordinal as i64) << 32;
                    Arc::new(Int64Array::from_iter_values(
                        base + row..base + row + n as i64,
                    ))
                }
            })
        })
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        shared.out_schema.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )?)
}

/// Reads a sample (first object, and the last for columns added later) to infer the schema.
async fn infer_schema(lake: &Lake, format: InputFormat, objects: &[ObjectInfo]) -> Result<Schema> {
    let mut sample: Vec<&ObjectInfo> = objects.iter().take(1).collect();
    if objects.len() > 1 {
        sample.push(&objects[objects.len() - 1]);
    }
    match format {
        InputFormat::Parquet => {
            let o = sample[0];
            let raw = lake.get(&o.key).await?;
            let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(raw)
                .map_err(|e| PrepError::Decode {
                    object: format!("{}/{}", lake.url(), o.key),
                    offset: 0,
                    message: e.to_string(),
                })?;
            Ok(b.schema().as_ref().clone())
        }
        InputFormat::Csv => {
            let o = sample[0];
            let name = format!("{}/{}", lake.url(), o.key);
            let bytes = decompress(&name, lake.get(&o.key).await?)?;
            let (schema, _) = arrow_csv::reader::Format::default()
                .with_header(true)
                .with_delimiter(csv_delimiter(&o.key))
                .infer_schema(std::io::Cursor::new(&bytes[..]), Some(INFER_ROWS))?;
            Ok(schema)
        }
        _ => {
            let mut bufs = Vec::new();
            for o in sample {
                let name = format!("{}/{}", lake.url(), o.key);
                bufs.push(decompress(&name, lake.get(&o.key).await?)?);
            }
            let refs: Vec<&[u8]> = bufs.iter().map(|b| &b[..]).collect();
            let schema = json::infer_schema(&refs, INFER_ROWS)?;
            if schema.fields().is_empty() {
                return Err(PrepError::Decode {
                    object: format!("{}/{}", lake.url(), objects[0].key),
                    offset: 0,
                    message: "no JSON objects found to infer columns from".into(),
                });
            }
            Ok(schema)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, size: u64) -> ObjectInfo {
        ObjectInfo {
            key: key.into(),
            size,
            etag: None,
            last_modified_ms: 0,
        }
    }

    #[test]
    fn spread_balances_bytes_and_keeps_key_order() {
        let objs = vec![obj("a", 10), obj("b", 1), obj("c", 9), obj("d", 2)];
        let g = spread(&objs, 2);
        assert_eq!(g.len(), 2);
        let sums: Vec<u64> = g
            .iter()
            .map(|g| g.iter().map(|o| o.info.size).sum())
            .collect();
        assert_eq!(sums.iter().sum::<u64>(), 22);
        assert!(sums.iter().all(|s| *s == 11), "{sums:?}");
        for group in &g {
            assert!(group.windows(2).all(|w| w[0].info.key < w[1].info.key));
            assert!(group.iter().all(|p| objs[p.ordinal].key == p.info.key));
        }
        assert_eq!(spread(&objs, 16).len(), 4);
    }
}
