//! `LakeScanExec`: the physical scan of a [`crate::table::LakeTable`], one partition per group
//! of objects (on one machine, a `latest_by` scan is one newest-first group).
//!
//! It is its own plan node, not DataFusion's streaming table, so that it can be written out and
//! read back ([`LakeScanExec::to_bytes`], [`LakeScanExec::from_bytes`]): a Ballista scheduler
//! plans a job and ships its scans to executors in other processes, which run the same decoders
//! on the same objects. Nothing secret travels: the lake is named by URL and S3 endpoint, and
//! each process reads its credentials from its own environment.
//!
//! On a cluster the scan's partitions are spread over tasks. Ballista gives each task its
//! share of a leaf's partitions only for the leaves it knows (files, memory tables, shuffles);
//! any other leaf runs whole in every task. So a distributed scan has one child, the *group
//! index*: a memory table whose partition `i` holds the number `i`. Ballista cuts that child
//! down to the task's partitions, and each partition of the scan reads the group its index
//! names, so every group is read by exactly one task.
//!
//! A scan that runs in another process cannot move the client's progress counters, so a
//! distributed run names a report folder: each partition, when it has read all its objects,
//! writes its counters and bad records there ([`ScanReport`]), one object per run of a
//! partition, and the client adds up one run of each partition.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{Array, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::memory::MemorySourceConfig;
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
use futures::{StreamExt, TryStreamExt};
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
    /// One partition per group, each over its objects newest first (decoding `parallel` at a
    /// time) keeping the latest record of each key. On one machine there is one group; on a
    /// cluster each group's rows go on to a [`crate::latest_merge::LatestMergeExec`].
    Latest {
        groups: Vec<Vec<Planned>>,
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
    scan: Arc<PartScan>,
    /// A distributed scan's group index (see the module's notes): partition `k` of the scan
    /// reads the group named in partition `k` of this child.
    index: Option<Arc<dyn ExecutionPlan>>,
    properties: Arc<PlanProperties>,
}

/// What every partition of a scan shares, and how one group is read.
#[derive(Debug)]
struct PartScan {
    shared: Arc<ScanShared>,
    plan: ScanPlan,
    limit: Option<usize>,
    report: Option<ReportTo>,
}

impl LakeScanExec {
    /// A scan; one that reports (a distributed run) and reads groups of objects gets a group
    /// index, so that a cluster can spread its groups over tasks.
    pub(crate) fn new(
        shared: Arc<ScanShared>,
        plan: ScanPlan,
        limit: Option<usize>,
        report: Option<ReportTo>,
    ) -> DfResult<Self> {
        let index = match report {
            Some(_) => Some(group_index(plan.groups().len().max(1))?),
            None => None,
        };
        Ok(Self::with_index(
            PartScan {
                shared,
                plan,
                limit,
                report,
            },
            index,
        ))
    }

    fn with_index(scan: PartScan, index: Option<Arc<dyn ExecutionPlan>>) -> Self {
        let partitions = match &index {
            Some(index) => index.properties().output_partitioning().partition_count(),
            None => scan.plan.groups().len().max(1),
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(scan.shared.out_schema.clone()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            scan: Arc::new(scan),
            index,
            properties,
        }
    }

    /// The scan as bytes another process can run ([`Self::from_bytes`]). A `memory://` lake
    /// exists only in this process and is refused.
    pub fn to_bytes(&self) -> DfResult<Vec<u8>> {
        let s = &self.scan.shared;
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
            plan: match &self.scan.plan {
                ScanPlan::Objects { groups, ahead } => WirePlan::Objects {
                    groups: wire_groups(groups),
                    ahead: *ahead,
                },
                ScanPlan::Latest {
                    groups,
                    key_pos,
                    parallel,
                } => WirePlan::Latest {
                    groups: wire_groups(groups),
                    key_pos: *key_pos,
                    parallel: *parallel,
                },
            },
            limit: self.scan.limit,
            report: self.scan.report.clone(),
        };
        serde_json::to_vec(&wire).map_err(|e| DataFusionError::External(Box::new(e)))
    }

    /// Reads back a scan written by [`Self::to_bytes`], with counters of its own; `children`
    /// are the plan's inputs as read back (a distributed scan's group index, cut down to a
    /// task's partitions).
    pub fn from_bytes(bytes: &[u8], children: &[Arc<dyn ExecutionPlan>]) -> DfResult<Self> {
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
                groups: planned_groups(groups),
                ahead,
            },
            WirePlan::Latest {
                groups,
                key_pos,
                parallel,
            } => ScanPlan::Latest {
                groups: planned_groups(groups),
                key_pos,
                parallel,
            },
        };
        let scan = PartScan {
            shared,
            plan,
            limit: wire.limit,
            report: wire.report,
        };
        Ok(Self::with_index(scan, children.first().cloned()))
    }

    /// The progress counters of scans run in this process.
    pub fn progress(&self) -> Arc<ScanProgress> {
        self.scan.shared.progress.clone()
    }

    /// Whether this scan's partitions are named by a group index (a distributed scan).
    pub fn is_split(&self) -> bool {
        self.index.is_some()
    }

    fn objects(&self) -> usize {
        self.scan.plan.groups().iter().map(Vec::len).sum()
    }
}

impl DisplayAs for LakeScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "LakeScanExec: lake={}/{}, objects={}, latest_by={}, split={}",
                self.scan.shared.lake.url(),
                self.scan.shared.folder,
                self.objects(),
                matches!(self.scan.plan, ScanPlan::Latest { .. }),
                self.is_split()
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
        self.index.iter().collect()
    }

    /// The group index must reach the scan as it is: one partition per group, never
    /// repartitioned or merged.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false; self.children().len()]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.len() != self.index.iter().len() {
            return Err(DataFusionError::Internal(format!(
                "LakeScanExec has {} children, given {}",
                self.index.iter().len(),
                children.len()
            )));
        }
        let index = children.into_iter().next();
        let properties_follow = Self::with_index(
            PartScan {
                shared: self.scan.shared.clone(),
                plan: self.scan.plan.clone(),
                limit: self.scan.limit,
                report: self.scan.report.clone(),
            },
            index,
        );
        Ok(Arc::new(properties_follow))
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
        ctx: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let stream = match &self.index {
            // Which group this partition reads is in the index; then it reads that group.
            Some(index) => {
                let names = index.execute(partition, ctx)?;
                let scan = self.scan.clone();
                futures::stream::once(async move {
                    let group = group_named(names, partition).await?;
                    scan.group_stream(group)
                })
                .try_flatten()
                .boxed()
            }
            None => self.scan.clone().group_stream(partition)?,
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.scan.shared.out_schema.clone(),
            stream,
        )))
    }
}

impl PartScan {
    /// The rows of group `group` (the `latest_by` scan has one, 0).
    fn group_stream(self: Arc<Self>, group: usize) -> DfResult<ScanStream> {
        // A reported group counts on its own, so its report holds only its objects.
        let shared = match &self.report {
            Some(_) => Arc::new(ScanShared {
                progress: Arc::new(ScanProgress::default()),
                ..(*self.shared).clone()
            }),
            None => self.shared.clone(),
        };
        let groups = self.plan.groups();
        let objects = match groups.get(group) {
            Some(g) => g.clone(),
            None if groups.is_empty() && group == 0 => Vec::new(),
            None => {
                return Err(DataFusionError::Internal(format!(
                    "LakeScanExec has no group {group}"
                )));
            }
        };
        let stream = match &self.plan {
            ScanPlan::Objects { ahead, .. } => objects_stream(shared.clone(), objects, *ahead),
            ScanPlan::Latest {
                key_pos, parallel, ..
            } => latest_stream(shared.clone(), objects, *key_pos, *parallel),
        };
        let stream = match self.limit {
            Some(limit) => limit_rows(stream, limit),
            None => stream,
        };
        Ok(match &self.report {
            Some(to) => report_at_end(stream, shared, to.clone(), group),
            None => stream,
        })
    }
}

/// The group index of a scan of `groups` groups: a memory table whose partition `i` is one
/// row holding `i`.
fn group_index(groups: usize) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "lake_group",
        DataType::UInt32,
        false,
    )]));
    let partitions = (0..groups)
        .map(|i| {
            let group = u32::try_from(i)
                .map_err(|_| DataFusionError::Plan(format!("too many scan groups: {groups}")))?;
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(UInt32Array::from(vec![group]))],
            )?;
            Ok(vec![batch])
        })
        .collect::<DfResult<Vec<_>>>()?;
    let exec: Arc<dyn ExecutionPlan> = MemorySourceConfig::try_new_exec(&partitions, schema, None)?;
    Ok(exec)
}

/// The group named by one partition of a group index.
async fn group_named(mut names: SendableRecordBatchStream, partition: usize) -> DfResult<usize> {
    while let Some(batch) = names.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        let col = batch.column(0).as_any().downcast_ref::<UInt32Array>();
        if let Some(col) = col.filter(|c| !c.is_null(0)) {
            return Ok(col.value(0) as usize);
        }
        break;
    }
    Err(DataFusionError::Internal(format!(
        "LakeScanExec: partition {partition} of its group index names no group"
    )))
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
        groups: Vec<Vec<(usize, WireObject)>>,
        key_pos: usize,
        parallel: usize,
    },
}

impl ScanPlan {
    /// The groups of objects, one per partition (no index) or per index entry.
    fn groups(&self) -> &[Vec<Planned>] {
        match self {
            ScanPlan::Objects { groups, .. } | ScanPlan::Latest { groups, .. } => groups,
        }
    }
}

fn wire_groups(groups: &[Vec<Planned>]) -> Vec<Vec<(usize, WireObject)>> {
    groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|p| (p.ordinal, WireObject::of(&p.info)))
                .collect()
        })
        .collect()
}

fn planned_groups(groups: Vec<Vec<(usize, WireObject)>>) -> Vec<Vec<Planned>> {
    groups
        .into_iter()
        .map(|g| {
            g.into_iter()
                .map(|(ordinal, o)| Planned {
                    ordinal,
                    info: o.into_info(),
                })
                .collect()
        })
        .collect()
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
