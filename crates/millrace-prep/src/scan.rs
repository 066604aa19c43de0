//! `LakeScanExec`: the physical scan of a [`crate::table::LakeTable`], one partition per group
//! of objects (or one newest-first partition for `latest_by`).
//!
//! It is its own plan node, not DataFusion's streaming table, so that it can be written out and
//! read back ([`LakeScanExec::to_bytes`], [`LakeScanExec::from_bytes`]): a Ballista scheduler
//! plans a job and ships its scans to executors in other processes, which run the same decoders
//! on the same objects. Nothing secret travels: the lake is named by URL and S3 endpoint, and
//! each process reads its credentials from its own environment.
//!
//! A scan that runs in another process cannot move the client's progress counters, so a
//! distributed run names a report folder: each partition, when it has read all its objects,
//! writes its counters and bad records there ([`ScanReport`]), one object per run of a
//! partition, and the client adds up one run of each partition.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use millrace_lake::{Lake, ObjectInfo, S3Options};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::format::InputFormat;
use crate::json::BadRecord;
use crate::table::{
    OnBadRecord, OutColumn, Planned, ScanProgress, ScanShared, ScanStream, latest_stream,
    objects_stream,
};

/// What a scan's partitions read.
#[derive(Debug, Clone)]
pub(crate) enum ScanPlan {
    /// One partition per group, each in key order, `ahead` objects fetched and decoded at
    /// once.
    Objects {
        groups: Vec<Vec<Planned>>,
        ahead: usize,
    },
    /// One partition over every object, newest first, decoding `parallel` at a time.
    Latest {
        objects: Arc<Vec<ObjectInfo>>,
        key_pos: usize,
        parallel: usize,
    },
}

/// Where the partitions of a distributed scan leave their counters: a folder of the scanned
/// lake, and this scan's id (two scans of one table in a plan report apart).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportTo {
    pub prefix: String,
    pub scan_id: String,
}

/// One partition's counters, written by a distributed scan.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScanReport {
    pub objects: u64,
    pub bytes: u64,
    pub rows: u64,
    pub bad_count: u64,
    pub bad: Vec<BadRecord>,
}

#[derive(Debug)]
pub struct LakeScanExec {
    shared: Arc<ScanShared>,
    plan: ScanPlan,
    limit: Option<usize>,
    report: Option<ReportTo>,
    properties: Arc<PlanProperties>,
}

impl LakeScanExec {
    pub(crate) fn new(
        shared: Arc<ScanShared>,
        plan: ScanPlan,
        limit: Option<usize>,
        report: Option<ReportTo>,
    ) -> Self {
        let partitions = match &plan {
            ScanPlan::Objects { groups, .. } => groups.len().max(1),
            ScanPlan::Latest { .. } => 1,
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(shared.out_schema.clone()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            shared,
            plan,
            limit,
            report,
            properties,
        }
    }

    /// The scan as bytes another process can run ([`Self::from_bytes`]). A `memory://` lake
    /// exists only in this process and is refused.
    pub fn to_bytes(&self) -> DfResult<Vec<u8>> {
        let s = &self.shared;
        let wire = WireScan {
            lake: WireLake::of(&s.lake)?,
            folder: s.folder.clone(),
            format: s.format,
            file_schema: schema_to_hex(&s.full_file_schema)?,
            file_cols: s.file_cols.clone(),
            out_schema: schema_to_hex(&s.out_schema)?,
            columns: s.columns.clone(),
            on_bad_record: s.on_bad_record,
            batch_size: s.batch_size,
            plan: match &self.plan {
                ScanPlan::Objects { groups, ahead } => WirePlan::Objects {
                    groups: groups
                        .iter()
                        .map(|g| {
                            g.iter()
                                .map(|p| (p.ordinal, WireObject::of(&p.info)))
                                .collect()
                        })
                        .collect(),
                    ahead: *ahead,
                },
                ScanPlan::Latest {
                    objects,
                    key_pos,
                    parallel,
                } => WirePlan::Latest {
                    objects: objects.iter().map(WireObject::of).collect(),
                    key_pos: *key_pos,
                    parallel: *parallel,
                },
            },
            limit: self.limit,
            report: self.report.clone(),
        };
        serde_json::to_vec(&wire).map_err(|e| DataFusionError::External(Box::new(e)))
    }

    /// Reads back a scan written by [`Self::to_bytes`], with counters of its own.
    pub fn from_bytes(bytes: &[u8]) -> DfResult<Self> {
        let wire: WireScan =
            serde_json::from_slice(bytes).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let full_file_schema = schema_from_hex(&wire.file_schema)?;
        let decode_schema = Arc::new(full_file_schema.project(&wire.file_cols)?);
        let shared = Arc::new(ScanShared {
            lake: wire.lake.open()?,
            folder: wire.folder,
            format: wire.format,
            full_file_schema,
            file_cols: wire.file_cols,
            decode_schema,
            out_schema: schema_from_hex(&wire.out_schema)?,
            columns: wire.columns,
            on_bad_record: wire.on_bad_record,
            progress: Arc::new(ScanProgress::default()),
            batch_size: wire.batch_size,
        });
        let plan = match wire.plan {
            WirePlan::Objects { groups, ahead } => ScanPlan::Objects {
                groups: groups
                    .into_iter()
                    .map(|g| {
                        g.into_iter()
                            .map(|(ordinal, o)| Planned {
                                ordinal,
                                info: o.into_info(),
                            })
                            .collect()
                    })
                    .collect(),
                ahead,
            },
            WirePlan::Latest {
                objects,
                key_pos,
                parallel,
            } => ScanPlan::Latest {
                objects: Arc::new(objects.into_iter().map(WireObject::into_info).collect()),
                key_pos,
                parallel,
            },
        };
        Ok(Self::new(shared, plan, wire.limit, wire.report))
    }

    /// The progress counters of scans run in this process.
    pub fn progress(&self) -> Arc<ScanProgress> {
        self.shared.progress.clone()
    }

    fn objects(&self) -> usize {
        match &self.plan {
            ScanPlan::Objects { groups, .. } => groups.iter().map(Vec::len).sum(),
            ScanPlan::Latest { objects, .. } => objects.len(),
        }
    }
}

impl DisplayAs for LakeScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "LakeScanExec: lake={}/{}, objects={}, latest_by={}",
                self.shared.lake.url(),
                self.shared.folder,
                self.objects(),
                matches!(self.plan, ScanPlan::Latest { .. })
            ),
            DisplayFormatType::TreeRender => write!(f, "objects={}", self.objects()),
        }
    }
}

impl ExecutionPlan for LakeScanExec {
    fn name(&self) -> &'static str {
        "LakeScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        _ctx: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        // A reported partition counts on its own, so its report holds only its objects.
        let shared = match &self.report {
            Some(_) => Arc::new(ScanShared {
                progress: Arc::new(ScanProgress::default()),
                ..(*self.shared).clone()
            }),
            None => self.shared.clone(),
        };
        let stream = match &self.plan {
            ScanPlan::Objects { groups, ahead } => {
                let objects = match groups.get(partition) {
                    Some(g) => g.clone(),
                    None if groups.is_empty() && partition == 0 => Vec::new(),
                    None => {
                        return Err(DataFusionError::Internal(format!(
                            "LakeScanExec has no partition {partition}"
                        )));
                    }
                };
                objects_stream(shared.clone(), objects, *ahead)
            }
            ScanPlan::Latest {
                objects,
                key_pos,
                parallel,
            } => {
                if partition != 0 {
                    return Err(DataFusionError::Internal(format!(
                        "LakeScanExec (latest_by) has no partition {partition}"
                    )));
                }
                latest_stream(shared.clone(), objects.clone(), *key_pos, *parallel)
            }
        };
        let stream = match self.limit {
            Some(limit) => limit_rows(stream, limit),
            None => stream,
        };
        let stream = match &self.report {
            Some(to) => report_at_end(stream, shared.clone(), to.clone(), partition),
            None => stream,
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.shared.out_schema.clone(),
            stream,
        )))
    }
}

/// Ends the stream once `limit` rows have passed (the last batch cut to fit).
fn limit_rows(stream: ScanStream, limit: usize) -> ScanStream {
    stream
        .scan(limit, |left, batch| {
            let out = match batch {
                Err(e) => Some(Err(e)),
                Ok(_) if *left == 0 => None,
                Ok(b) => {
                    let b = if b.num_rows() > *left {
                        b.slice(0, *left)
                    } else {
                        b
                    };
                    *left -= b.num_rows();
                    Some(Ok(b))
                }
            };
            futures::future::ready(out)
        })
        .boxed()
}

/// Writes the partition's [`ScanReport`] when its last batch has gone (not on an error: the
/// query fails then, and the client reads no report).
fn report_at_end(
    stream: ScanStream,
    shared: Arc<ScanShared>,
    to: ReportTo,
    partition: usize,
) -> ScanStream {
    let finish = futures::stream::once(async move {
        let p = &shared.progress;
        let report = ScanReport {
            objects: p.objects_read.load(Ordering::Relaxed),
            bytes: p.bytes_read.load(Ordering::Relaxed),
            rows: p.rows_read.load(Ordering::Relaxed),
            bad_count: p.bad_count.load(Ordering::Relaxed),
            bad: p.bad_records(),
        };
        // One object per run of the partition: a task that runs twice (retried, or run
        // twice by the cluster) writes two, and `collect_reports` keeps one of them.
        let key = format!(
            "{}/{}-{partition}-{:08x}.json",
            to.prefix.trim_end_matches('/'),
            to.scan_id,
            rand::random::<u32>()
        );
        let body = serde_json::to_vec(&report).map_err(|e| DataFusionError::External(e.into()))?;
        shared
            .lake
            .put(&key, body.into())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok::<_, DataFusionError>(())
    })
    .filter_map(|r| futures::future::ready(r.err().map(Err)));
    stream.chain(finish).boxed()
}

/// Adds up the reports under `prefix` of `lake` (every distributed scan of a run), then
/// deletes them.
pub async fn collect_reports(lake: &Lake, prefix: &str) -> crate::Result<ScanReport> {
    let mut total = ScanReport::default();
    let folder = format!("{}/", prefix.trim_end_matches('/'));
    let mut seen = std::collections::HashSet::new();
    for o in lake.list_objects(&folder).await? {
        // `SCAN-PARTITION-RUN.json`: the first run of each partition counts.
        let name = o.key.rsplit('/').next().unwrap_or(&o.key);
        let partition = name.rsplit_once('-').map_or(name, |(p, _)| p).to_owned();
        if !seen.insert(partition) {
            lake.delete(&o.key).await?;
            continue;
        }
        let bytes = lake.get(&o.key).await?;
        let r: ScanReport =
            serde_json::from_slice(&bytes).map_err(|e| crate::PrepError::Input {
                table: o.key.clone(),
                message: format!("unreadable scan report: {e}"),
            })?;
        total.objects += r.objects;
        total.bytes += r.bytes;
        total.rows += r.rows;
        total.bad_count += r.bad_count;
        let room = 1000usize.saturating_sub(total.bad.len());
        total.bad.extend(r.bad.into_iter().take(room));
        lake.delete(&o.key).await?;
    }
    Ok(total)
}

#[derive(Debug, Serialize, Deserialize)]
struct WireScan {
    lake: WireLake,
    folder: String,
    format: InputFormat,
    file_schema: String,
    file_cols: Vec<usize>,
    out_schema: String,
    columns: Vec<OutColumn>,
    on_bad_record: OnBadRecord,
    batch_size: usize,
    plan: WirePlan,
    limit: Option<usize>,
    report: Option<ReportTo>,
}

#[derive(Debug, Serialize, Deserialize)]
enum WirePlan {
    Objects {
        groups: Vec<Vec<(usize, WireObject)>>,
        ahead: usize,
    },
    Latest {
        objects: Vec<WireObject>,
        key_pos: usize,
        parallel: usize,
    },
}

/// A lake as another process opens it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireLake {
    url: String,
    s3: S3Options,
}

impl WireLake {
    pub(crate) fn of(lake: &Lake) -> DfResult<Self> {
        if lake.is_in_memory() {
            return Err(DataFusionError::Plan(
                "a memory:// lake lives in one process; executors in other processes cannot \
                 read it (use a local folder they share or S3)"
                    .into(),
            ));
        }
        Ok(Self {
            url: lake.url().to_owned(),
            s3: lake.s3_options().clone(),
        })
    }

    /// The lake, opened once per process and shared by every scan of it.
    pub(crate) fn open(&self) -> DfResult<Lake> {
        static OPEN: std::sync::OnceLock<Mutex<HashMap<(String, S3Options), Lake>>> =
            std::sync::OnceLock::new();
        let mut open = OPEN.get_or_init(Default::default).lock();
        let key = (self.url.clone(), self.s3.clone());
        if let Some(lake) = open.get(&key) {
            return Ok(lake.clone());
        }
        let lake =
            Lake::open(&self.url, &self.s3).map_err(|e| DataFusionError::External(Box::new(e)))?;
        open.insert(key, lake.clone());
        Ok(lake)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireObject {
    key: String,
    size: u64,
    etag: Option<String>,
    modified_ms: i64,
}

impl WireObject {
    pub(crate) fn of(o: &ObjectInfo) -> Self {
        Self {
            key: o.key.clone(),
            size: o.size,
            etag: o.etag.clone(),
            modified_ms: o.last_modified_ms,
        }
    }

    pub(crate) fn into_info(self) -> ObjectInfo {
        ObjectInfo {
            key: self.key,
            size: self.size,
            etag: self.etag,
            last_modified_ms: self.modified_ms,
        }
    }
}

/// A schema as hex of an Arrow IPC stream with no batches (Arrow's own encoding of a schema,
/// every type included).
pub(crate) fn schema_to_hex(schema: &Schema) -> DfResult<String> {
    let mut buf = Vec::new();
    let mut w = datafusion::arrow::ipc::writer::StreamWriter::try_new(&mut buf, schema)?;
    w.finish()?;
    drop(w);
    Ok(hex::encode(buf))
}

pub(crate) fn schema_from_hex(text: &str) -> DfResult<SchemaRef> {
    let bytes = hex::decode(text).map_err(|e| DataFusionError::External(Box::new(e)))?;
    let reader =
        datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    Ok(reader.schema())
}
