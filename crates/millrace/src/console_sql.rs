//! The console's SQL box over a running `up`: the configuration's deliveries as tables (as
//! `millrace query -c` names them), the query's own lake folders beside them, one read-only
//! statement planned by prep's engine, its rows cut at the query's limit and stopped at its
//! time limit. At most [`AT_ONCE`] queries run at a time, with a memory pool of their own, so
//! a heavy query slows the console, not the pipeline.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use millrace_common::layout::DataDir;
use millrace_console::{Download, QueryTable, SourceError, SqlQuery, TableInfo};
use millrace_lake::{Lake, S3Options};
use millrace_prep::{LakeTable, Location, OnBadRecord, TableOptions};
use tokio::sync::Semaphore;

use crate::cmd::query::TableSpec;

/// Console queries running at once; the next waits its turn.
const AT_ONCE: usize = 2;
/// The engine's memory pool for one console query (sorts and joins spill beyond it).
const MEMORY_MIB: u64 = 1024;

/// What the SQL box reads, and the turn each query waits for.
pub struct SqlTables {
    specs: Vec<TableSpec>,
    lake_dir: std::path::PathBuf,
    s3: S3Options,
    turns: Semaphore,
}

/// A query's result: its schema, its rows (at most the query's limit) and what it skipped.
pub struct Ran {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    more: bool,
    elapsed_ms: u64,
    skipped: u64,
    skipped_first: String,
}

impl SqlTables {
    pub fn new(specs: Vec<TableSpec>, data_dir: &DataDir, s3: S3Options) -> SqlTables {
        SqlTables {
            specs,
            lake_dir: data_dir.lake(),
            s3,
            turns: Semaphore::new(AT_ONCE),
        }
    }

    pub fn infos(&self) -> Vec<TableInfo> {
        self.specs
            .iter()
            .map(|(name, location, format)| TableInfo {
                name: name.clone(),
                location: location.clone(),
                format: format.map(|f| f.to_string()).unwrap_or_default(),
            })
            .collect()
    }

    /// Runs `q`: the first `q.max_rows` rows (and whether more followed).
    pub async fn run(&self, q: &SqlQuery) -> Result<Ran, SourceError> {
        let _turn = self
            .turns
            .acquire()
            .await
            .map_err(|_| SourceError::Failed("the console is stopping".into()))?;
        let started = Instant::now();
        let ctx = millrace_prep::context(&millrace_prep::EngineOptions {
            memory_limit_mib: MEMORY_MIB.min(millrace_prep::engine::default_memory_limit_mib()),
            target_partitions: Some(
                std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            ),
        })
        .map_err(failed)?;
        let lake = Lake::open(&self.lake_dir.display().to_string(), &self.s3).map_err(failed)?;
        let mut tables: Vec<Arc<LakeTable>> = Vec::new();
        let options = TableOptions {
            source_columns: false,
            on_bad_record: OnBadRecord::Skip,
            latest_by: None,
        };
        let mut register = async |name: &str, loc: Location, format| {
            let table = LakeTable::open(name, &loc, format, None, &options)
                .await
                .map_err(|e| invalid(format!("table {name}: {e}")))?;
            let table = Arc::new(table);
            ctx.register_table(name, table.clone())
                .map_err(|e| invalid(format!("table {name}: {e}")))?;
            tables.push(table);
            Ok::<_, SourceError>(())
        };
        for (name, folder) in &q.tables {
            let loc = Location::in_lake(&lake, folder).map_err(|e| invalid(e.to_string()))?;
            self.stays_in_lake(&self.lake_dir.join(&loc.prefix), name)?;
            register(name, loc, None).await?;
        }
        for (name, path, format) in &self.specs {
            if q.tables.iter().any(|(n, _)| n == name) || !q.sql.contains(name.as_str()) {
                continue; // the query's own table of that name wins; unnamed ones are not listed
            }
            if Path::new(path).starts_with(&self.lake_dir) {
                self.stays_in_lake(Path::new(path), name)?;
            }
            let loc = Location::resolve(path, Some(&lake), &self.s3)
                .map_err(|e| invalid(format!("table {name}: {e}")))?;
            register(name, loc, *format).await?;
        }
        let df = millrace_prep::read_only(&ctx, &q.sql)
            .await
            .map_err(|e| invalid(e.to_string()))?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let df = df
            .limit(0, Some(q.max_rows + 1))
            .map_err(|e| invalid(e.to_string()))?;
        let batches = match tokio::time::timeout(q.time_limit, df.collect()).await {
            Ok(b) => b.map_err(|e| invalid(format!("running the query: {e}")))?,
            Err(_) => {
                return Err(invalid(format!(
                    "the query was stopped after {} s: narrow it with WHERE or LIMIT",
                    q.time_limit.as_secs()
                )));
            }
        };
        let (batches, more) = cut(batches, q.max_rows);
        let bad: Vec<_> = tables
            .iter()
            .flat_map(|t| t.progress().bad_records())
            .collect();
        Ok(Ran {
            schema,
            batches,
            more,
            elapsed_ms: started.elapsed().as_millis() as u64,
            skipped: tables
                .iter()
                .map(|t| t.progress().bad_count.load(Ordering::Relaxed))
                .sum(),
            skipped_first: bad
                .first()
                .map(|b| format!("{} at byte {}: {}", b.object, b.offset, b.error))
                .unwrap_or_default(),
        })
    }
}

impl SqlTables {
    fn stays_in_lake(&self, dir: &Path, table: &str) -> Result<(), SourceError> {
        stays_in_lake(&self.lake_dir, dir, &format!("table {table}"))
    }
}

/// Refuses a folder that holds a symbolic link out of the lake: the lake's reader follows
/// links, and the console never shows what is outside the lake. `what` names the folder.
pub fn stays_in_lake(lake_dir: &Path, dir: &Path, what: &str) -> Result<(), SourceError> {
    let Ok(root) = lake_dir.canonicalize() else {
        return Ok(()); // no lake folder yet: nothing to read
    };
    match link_out_of(&root, dir) {
        Some(link) => Err(invalid(format!(
            "{what}: {} links out of the lake; the console reads only the lake",
            link.strip_prefix(lake_dir).unwrap_or(&link).display()
        ))),
        None => Ok(()),
    }
}

/// The columns of a local lake folder, as a query reads them.
pub async fn columns(dir: &Path) -> Result<Vec<String>, SourceError> {
    use datafusion::catalog::TableProvider;
    let loc = Location::resolve(&dir.display().to_string(), None, &S3Options::default())
        .map_err(|e| invalid(e.to_string()))?;
    let table = LakeTable::open("data", &loc, None, None, &TableOptions::default())
        .await
        .map_err(|e| invalid(e.to_string()))?;
    Ok(table
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

/// The first symbolic link under `dir` (or `dir` itself) that resolves outside `root`,
/// following links that stay inside (each folder walked once).
fn link_out_of(root: &Path, dir: &Path) -> Option<PathBuf> {
    let mut todo = vec![dir.to_path_buf()];
    let mut seen = std::collections::HashSet::new();
    while let Some(at) = todo.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&at) else {
            continue; // gone while we looked
        };
        let real = if meta.file_type().is_symlink() {
            match at.canonicalize() {
                Ok(r) if r.starts_with(root) => r,
                Ok(_) => return Some(at),
                Err(_) => continue, // a broken link is skipped by listing too
            }
        } else {
            at.clone()
        };
        if !real.is_dir() || !seen.insert(real.clone()) {
            continue;
        }
        for e in std::fs::read_dir(&real).into_iter().flatten().flatten() {
            todo.push(e.path());
        }
    }
    None
}

/// The first `max` rows of `batches`, and whether there were more.
fn cut(batches: Vec<RecordBatch>, max: usize) -> (Vec<RecordBatch>, bool) {
    let mut kept = Vec::new();
    let mut left = max;
    let mut more = false;
    for b in batches {
        if left == 0 {
            more |= b.num_rows() > 0;
            continue;
        }
        if b.num_rows() > left {
            kept.push(b.slice(0, left));
            more = true;
            left = 0;
        } else {
            left -= b.num_rows();
            kept.push(b);
        }
    }
    (kept, more)
}

impl Ran {
    /// The rows as text, as the page shows them (a NULL is empty).
    pub fn table(&self) -> Result<QueryTable, SourceError> {
        let mut rows = Vec::new();
        for b in &self.batches {
            let formatters = b
                .columns()
                .iter()
                .map(|c| {
                    datafusion::arrow::util::display::ArrayFormatter::try_new(
                        c.as_ref(),
                        &Default::default(),
                    )
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(failed)?;
            for r in 0..b.num_rows() {
                rows.push(formatters.iter().map(|f| f.value(r).to_string()).collect());
            }
        }
        Ok(QueryTable {
            columns: self
                .schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
            rows,
            more: self.more,
            elapsed_ms: self.elapsed_ms,
            skipped: self.skipped,
            skipped_first: self.skipped_first.clone(),
        })
    }

    /// The rows as a file, as `millrace query --format csv|parquet` writes them.
    pub fn file(&self, format: Download) -> Result<Vec<u8>, SourceError> {
        let mut out = Vec::new();
        match format {
            Download::Csv => crate::cmd::query::write_csv(&mut out, &self.batches),
            Download::Parquet => {
                crate::cmd::query::parquet_to(&mut out, self.schema.clone(), &self.batches)
            }
        }
        .map_err(|e| SourceError::Failed(format!("writing the result: {e:#}")))?;
        Ok(out)
    }
}

fn invalid(m: String) -> SourceError {
    SourceError::Invalid(m)
}

fn failed(e: impl std::fmt::Display) -> SourceError {
    SourceError::Failed(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn a_link_out_of_the_lake_is_found_wherever_it_hides() {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        std::fs::create_dir_all(lake.join("raw/day=1")).unwrap();
        std::fs::create_dir_all(lake.join("other")).unwrap();
        std::fs::write(lake.join("raw/day=1/a.json"), "{}").unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        let root = lake.canonicalize().unwrap();
        assert_eq!(link_out_of(&root, &lake.join("raw")), None);
        // A link to a folder inside is followed; a link out of it is found there (named by
        // its real path).
        std::os::unix::fs::symlink(lake.join("other"), lake.join("raw/in")).unwrap();
        assert_eq!(link_out_of(&root, &lake.join("raw")), None);
        std::os::unix::fs::symlink(dir.path().join("secret"), lake.join("other/s")).unwrap();
        assert_eq!(
            link_out_of(&root, &lake.join("raw")),
            Some(root.join("other/s"))
        );
        // The folder itself a link out.
        std::os::unix::fs::symlink(dir.path(), lake.join("up")).unwrap();
        assert_eq!(link_out_of(&root, &lake.join("up")), Some(lake.join("up")));
        // A cycle ends.
        std::os::unix::fs::symlink(lake.join("raw"), lake.join("raw/day=1/loop")).unwrap();
        std::fs::remove_file(lake.join("other/s")).unwrap();
        assert_eq!(link_out_of(&root, &lake.join("raw")), None);
    }

    #[test]
    fn results_are_cut_at_the_limit_and_say_more_followed() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = |n: i64| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from_iter_values(0..n))],
            )
            .unwrap()
        };
        let rows = |b: &[RecordBatch]| b.iter().map(|b| b.num_rows()).sum::<usize>();
        let (b, more) = cut(vec![batch(3), batch(3)], 4);
        assert_eq!((rows(&b), more), (4, true));
        let (b, more) = cut(vec![batch(3), batch(1)], 4);
        assert_eq!((rows(&b), more), (4, false));
        let (b, more) = cut(vec![batch(2), batch(0)], 2);
        assert_eq!((rows(&b), more), (2, false));
    }
}
