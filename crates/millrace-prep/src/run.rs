//! Running a job: resolve inputs (all objects, or only new ones for an incremental job),
//! register them as tables, run the statements, write each output and commit it with its
//! manifest through the one dataset writer ([`crate::dataset`]), which then removes the parts
//! the manifest does not list.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use millrace_lake::{Lake, ObjectInfo, S3Options};

use crate::dataset::{self, DatasetWriter};
use crate::engine::{self, EngineOptions};
use crate::error::{PrepError, Result, asks_to_run_again};
use crate::job::Job;
use crate::location::Location;
use crate::manifest::{InputObject, MANIFEST, Manifest};
use crate::output::ResultWriter;
use crate::table::{LakeTable, ScanProgress, TableOptions};

/// Where a job's relative paths resolve and how S3 is reached.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The lake used when the job names none.
    pub default_lake: Option<String>,
    pub s3: S3Options,
    /// Overrides the job's `memory_limit_mib`.
    pub memory_limit_mib: Option<u64>,
    pub target_partitions: Option<usize>,
    /// The scans run in other processes (a Ballista cluster): they report their counters and
    /// bad records through the input's lake instead of this process's memory.
    pub distributed: bool,
}

/// Where a distributed run's scans leave their reports, in each input's lake.
fn report_prefix(run_id: &str) -> String {
    format!("_millrace/prep-reports/{run_id}")
}

#[derive(Debug, Clone)]
pub struct InputReport {
    pub table: String,
    pub location: String,
    pub objects: usize,
    pub bytes: u64,
    /// Objects skipped because an earlier run read them (incremental jobs).
    pub already_read: usize,
}

#[derive(Debug, Clone)]
pub struct OutputReport {
    pub location: String,
    pub rows: u64,
    pub files: usize,
    pub bytes: u64,
    pub manifest: String,
    pub dataset_rows: u64,
}

#[derive(Debug, Clone)]
pub struct JobReport {
    pub job: String,
    pub run_id: String,
    pub inputs: Vec<InputReport>,
    pub outputs: Vec<OutputReport>,
    pub bad_records: u64,
    pub elapsed: Duration,
    /// Set when an incremental job found nothing new and wrote nothing.
    pub up_to_date: bool,
}

/// A job with its inputs resolved, ready to execute; its progress counters can be watched.
pub struct JobRun {
    job: Job,
    origin: String,
    lake: Lake,
    inputs: Vec<(Arc<LakeTable>, InputReport)>,
    outputs: Vec<(Location, Option<Manifest>)>,
    engine: EngineOptions,
    up_to_date: bool,
    started: Instant,
    run_id: String,
    distributed: bool,
}

impl JobRun {
    pub async fn prepare(job: Job, job_path: &str, opts: &RunOptions) -> Result<Self> {
        let started = Instant::now();
        let run_id = dataset::run_id();
        let origin = format!("job {job_path}");
        let lake_url = job
            .lake
            .clone()
            .or_else(|| opts.default_lake.clone())
            .ok_or_else(|| PrepError::Job {
                path: job_path.into(),
                message: "no lake: set `lake` in the job or pass --lake".into(),
            })?;
        let lake = Lake::open(&lake_url, &opts.s3)?;
        let mut outputs = Vec::new();
        for o in &job.outputs {
            let loc = Location::resolve(&o.path, Some(&lake), &opts.s3)?;
            let prev = Manifest::latest(&loc.lake, &loc.folder()).await?;
            outputs.push((loc, prev));
        }
        // What earlier runs read, from the first output's manifest (all outputs of a job are
        // committed together, so any one of them knows).
        let seen: HashSet<String> = match (job.incremental, outputs.first()) {
            (true, Some((_, Some(m)))) => m
                .inputs
                .values()
                .flatten()
                .map(|o| o.object.clone())
                .collect(),
            _ => HashSet::new(),
        };
        let mut inputs = Vec::new();
        let mut anything_new = false;
        for input in &job.inputs {
            let loc = Location::resolve(&input.path, Some(&lake), &opts.s3)?;
            let all = loc.list().await?;
            let total = all.len();
            let fresh: Vec<ObjectInfo> = all
                .iter()
                .filter(|o| !seen.contains(&format!("{}/{}", loc.lake.url(), o.key)))
                .cloned()
                .collect();
            anything_new |= !fresh.is_empty();
            let already_read = total - fresh.len();
            let table = if fresh.is_empty() && total > 0 {
                // Nothing new: the table keeps its columns (inferred from what exists) and
                // reads nothing.
                let mut t = LakeTable::open(
                    &input.table,
                    &loc,
                    input.format,
                    Some(all.clone()),
                    &table_options(input),
                )
                .await?;
                t.clear_objects();
                t
            } else {
                LakeTable::open(
                    &input.table,
                    &loc,
                    input.format,
                    Some(fresh.clone()),
                    &table_options(input),
                )
                .await?
            };
            let mut table = table;
            if opts.distributed {
                table.report_to(report_prefix(&run_id));
            }
            let report = InputReport {
                table: input.table.clone(),
                location: loc.display(),
                objects: fresh.len(),
                bytes: fresh.iter().map(|o| o.size).sum(),
                already_read,
            };
            inputs.push((Arc::new(table), report));
        }
        let engine = EngineOptions {
            memory_limit_mib: opts
                .memory_limit_mib
                .or(job.memory_limit_mib)
                .unwrap_or_else(engine::default_memory_limit_mib),
            target_partitions: opts.target_partitions,
        };
        let up_to_date = job.incremental && !anything_new && !seen.is_empty();
        Ok(Self {
            job,
            origin,
            lake,
            inputs,
            outputs,
            engine,
            up_to_date,
            started,
            run_id,
            distributed: opts.distributed,
        })
    }

    /// One progress handle per input table, in job order.
    pub fn progress(&self) -> Vec<Arc<ScanProgress>> {
        self.inputs.iter().map(|(t, _)| t.progress()).collect()
    }

    pub fn inputs(&self) -> Vec<InputReport> {
        self.inputs.iter().map(|(_, r)| r.clone()).collect()
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// Runs the job on a local engine ([`engine::context`]).
    pub async fn execute(self) -> Result<JobReport> {
        let ctx = engine::context(&self.engine)?;
        self.execute_on(ctx).await
    }

    /// The engine options the job asked for (memory pool, partitions).
    pub fn engine_options(&self) -> &EngineOptions {
        &self.engine
    }

    /// Runs the job in `ctx`, which may plan and run it anywhere (a Ballista cluster's
    /// context, with `distributed` set when the job was prepared).
    pub async fn execute_on(self, ctx: datafusion::prelude::SessionContext) -> Result<JobReport> {
        let result = self.run_in(ctx).await;
        if result.is_err() && self.distributed {
            // Reports of partitions that finished before the failure.
            for (t, _) in &self.inputs {
                let _ = crate::scan::collect_reports(t.lake(), &report_prefix(&self.run_id)).await;
            }
        }
        result
    }

    async fn run_in(&self, ctx: datafusion::prelude::SessionContext) -> Result<JobReport> {
        let run_id = self.run_id.clone();
        let job_name = self.job.name.clone().unwrap_or_default();
        if self.up_to_date {
            return Ok(JobReport {
                job: job_name,
                run_id,
                inputs: self.inputs(),
                outputs: Vec::new(),
                bad_records: 0,
                elapsed: self.started.elapsed(),
                up_to_date: true,
            });
        }
        for (t, _) in &self.inputs {
            ctx.register_table(t.name(), t.clone())
                .map_err(PrepError::df(format!(
                    "{}: registering table {}",
                    self.origin,
                    t.name()
                )))?;
        }
        let mut n = 1;
        for sql in &self.job.sql {
            let (_, count) = engine::run_statements(&ctx, sql, &self.origin, n).await?;
            n += count;
        }
        let mut written = Vec::new();
        if let Err(e) = self.write_outputs(&ctx, &run_id, &mut written).await {
            // Nothing of a failed run stays behind: the parts it put are deleted, in every
            // output.
            for d in written {
                d.abort().await;
            }
            return Err(e);
        }
        // Every output is written; now commit them, each with its manifest.
        let (bad, bad_count) = self.bad_records().await?;
        let mut run_inputs: BTreeMap<String, Vec<InputObject>> = BTreeMap::new();
        for (t, _) in &self.inputs {
            run_inputs.insert(
                t.name().to_owned(),
                t.objects()
                    .iter()
                    .map(|o| InputObject::new(t.lake(), o))
                    .collect(),
            );
        }
        let created_ms = millrace_common::time::now_ms();
        let mut outputs = Vec::new();
        for ((o, (loc, prev)), mut dataset) in
            self.job.outputs.iter().zip(&self.outputs).zip(written)
        {
            let folder = loc.folder();
            let files = dataset.files().to_vec();
            let append = self.job.incremental;
            let mut all_files = if append {
                prev.as_ref().map(|m| m.files.clone()).unwrap_or_default()
            } else {
                Vec::new()
            };
            let run_rows: u64 = files.iter().map(|f| f.rows).sum();
            let run_bytes: u64 = files.iter().map(|f| f.bytes).sum();
            let nfiles = files.len();
            all_files.extend(files);
            let mut inputs = if append {
                prev.as_ref().map(|m| m.inputs.clone()).unwrap_or_default()
            } else {
                BTreeMap::new()
            };
            for (table, objs) in &run_inputs {
                inputs
                    .entry(table.clone())
                    .or_default()
                    .extend(objs.iter().cloned());
            }
            let m = Manifest {
                format_version: 1,
                dataset: loc.display(),
                run_id: run_id.clone(),
                previous_run_id: prev.as_ref().map(|m| m.run_id.clone()),
                job: Some(self.origin.trim_start_matches("job ").to_owned()),
                mode: if append { "append" } else { "overwrite" }.into(),
                created_at: millrace_common::time::rfc3339(created_ms),
                created_at_ms: created_ms,
                statements: self.job.sql.clone(),
                query: o.sql(),
                inputs,
                run_inputs: run_inputs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.len()))
                    .collect(),
                rows: all_files.iter().map(|f| f.rows).sum(),
                run_rows,
                files: all_files,
                partition_by: o.partition_by.clone(),
                bad_records: bad.clone(),
                bad_record_count: bad_count,
            };
            dataset.commit(&m).await?;
            outputs.push(OutputReport {
                location: loc.display(),
                rows: run_rows,
                files: nfiles,
                bytes: run_bytes,
                manifest: format!("{}/{folder}{MANIFEST}", loc.lake.url()),
                dataset_rows: m.rows,
            });
        }
        Ok(JobReport {
            job: job_name,
            run_id,
            inputs: self.inputs(),
            outputs,
            bad_records: bad_count,
            elapsed: self.started.elapsed(),
            up_to_date: false,
        })
    }
}

/// Runs of an output's query, the first included, while its engine asks for it to be run again
/// ([`crate::RunAgain`]: a cluster lost part of a finished job's result while it was read).
pub const QUERY_RUNS: usize = 3;

impl JobRun {
    /// Writes every output's parts (not yet committed) into `written`, one writer per output
    /// in job order, each pushed before it writes.
    async fn write_outputs(
        &self,
        ctx: &datafusion::prelude::SessionContext,
        run_id: &str,
        written: &mut Vec<DatasetWriter>,
    ) -> Result<()> {
        for (i, (o, (loc, _))) in self.job.outputs.iter().zip(&self.outputs).enumerate() {
            let context = format!("{}, output {} ({})", self.origin, i + 1, o.path);
            let sql = o.sql();
            let (df, _) = engine::run_statements(ctx, &sql, &context, 1).await?;
            let df = df.ok_or_else(|| PrepError::Job {
                path: self.origin.clone(),
                message: format!("output {} has no query", i + 1),
            })?;
            let writer = ResultWriter {
                format: o.format,
                partition_by: o.partition_by.clone(),
            };
            for run in 1..=QUERY_RUNS {
                written.push(DatasetWriter::new(
                    loc.lake.clone(),
                    loc.folder(),
                    run_id.to_owned(),
                ));
                let dataset = written.last_mut().expect("just pushed");
                match writer.write(df.clone(), dataset).await {
                    Ok(()) => break,
                    Err(PrepError::DataFusion { error, .. })
                        if run < QUERY_RUNS && asks_to_run_again(&error) =>
                    {
                        tracing::warn!(
                            "{context}: {error}; running its query again (run {} of \
                             {QUERY_RUNS})",
                            run + 1
                        );
                        written.pop().expect("just pushed").abort().await;
                    }
                    Err(PrepError::DataFusion { error, .. }) => {
                        return Err(PrepError::DataFusion { context, error });
                    }
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(())
    }

    /// The bad records every input's scans met (read from the executors' reports for a
    /// distributed run).
    async fn bad_records(&self) -> Result<(Vec<crate::json::BadRecord>, u64)> {
        let mut bad = Vec::new();
        let mut count = 0;
        for (t, _) in &self.inputs {
            let (b, n) = t.scanned_bad_records().await?;
            bad.extend(b);
            count += n;
        }
        Ok((bad, count))
    }
}

fn table_options(input: &crate::job::JobInput) -> TableOptions {
    TableOptions {
        source_columns: input.source_columns,
        on_bad_record: input.on_bad_record,
        latest_by: input.latest_by.clone(),
    }
}
