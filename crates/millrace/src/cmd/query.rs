//! `millrace query`: ad-hoc SQL over lake prefixes, files and s3:// URLs.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use datafusion::arrow::array::RecordBatch;
use millrace_common::layout::DataDir;
use millrace_prep::{InputFormat, LakeTable, Location, OnBadRecord, TableOptions};

use crate::cli::S3Args;
use crate::cmd::prep::ScanBar;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryFormat {
    /// Aligned text table.
    Table,
    Csv,
    /// One JSON object per line.
    Json,
    /// Parquet file (needs --out).
    Parquet,
}

#[derive(Debug, Args)]
// `--s3-endpoint-url` is the shared flag; only its help says "tables", as it always did.
#[command(mut_arg("s3_endpoint_url", |a| {
    a.help("S3-compatible endpoint for s3:// tables (MinIO, moto, ...)")
}))]
pub struct QueryArgs {
    /// SQL text; several statements separated by `;` run in order and the last one's result
    /// is printed.
    pub sql: String,
    /// NAME=PATH_OR_URL[:FORMAT]: a local file or folder, s3://bucket/prefix, or a prefix of
    /// the data dir's lake. FORMAT is json, ndjson, concat, csv or parquet (default: from the
    /// object names, JSON when they say nothing). Repeatable.
    #[arg(long = "table", value_name = "NAME=PATH[:FORMAT]")]
    pub tables: Vec<String>,
    /// Also register every delivery of this millrace.toml as a table named after it.
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: QueryFormat,
    /// Write the result to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Add `_object` (the object's key), `_row` (the row's index in it) and `_seq` (arrival
    /// order in the scan: object key order, then row) to every table.
    #[arg(long)]
    pub source_columns: bool,
    /// TABLE=COLUMN: read TABLE as current state, keeping only the record that arrived last
    /// (object key order, then position in the object) for each value of COLUMN. Values are
    /// compared after trimming spaces; rows with a NULL or blank COLUMN are all kept.
    /// Repeatable.
    #[arg(long = "latest-by", value_name = "TABLE=COLUMN")]
    pub latest_by: Vec<String>,
    /// Fail on the first unreadable JSON value instead of skipping and reporting it.
    #[arg(long)]
    pub strict: bool,
    /// Query engine memory pool in MiB; sorts, aggregations and joins spill to disk beyond it
    /// (default: half the machine's memory, 1 to 16 GiB).
    #[arg(long)]
    pub memory_limit_mib: Option<u64>,
    /// Where the query runs: `local` (this process) or `ballista://HOST:PORT`, a Ballista
    /// scheduler started with `millrace ballista scheduler`.
    #[arg(long, default_value = "local", value_parser = crate::engine::parse_flag)]
    pub engine: crate::engine::Engine,
    #[command(flatten)]
    pub s3: S3Args,
}

pub async fn run(data_dir: &DataDir, args: QueryArgs) -> anyhow::Result<()> {
    if args.format == QueryFormat::Parquet && args.out.is_none() {
        bail!("--format parquet writes a file: add --out FILE");
    }
    let config = match &args.config {
        Some(path) => Some(crate::config::Config::load(path)?),
        None => None,
    };
    // --s3-endpoint-url wins; otherwise the config's [lake] settings apply.
    let s3 = match (&args.s3.s3_endpoint_url, &config) {
        (Some(_), _) => args.s3.options(),
        (None, Some(c)) => c.lake.s3_options(),
        (None, None) => millrace_lake::S3Options::default(),
    };
    let lake_dir = data_dir.lake();
    let default_lake = if lake_dir.is_dir() {
        Some(millrace_lake::Lake::open(
            &lake_dir.display().to_string(),
            &s3,
        )?)
    } else {
        None
    };
    let mut specs: Vec<TableSpec> = Vec::new();
    for t in &args.tables {
        specs.push(parse_table(t)?);
    }
    if let Some(config) = &config {
        for spec in delivery_tables(config, data_dir) {
            if !specs.iter().any(|(n, _, _)| *n == spec.0) {
                specs.push(spec);
            }
        }
    }
    let ctx = args
        .engine
        .context(&millrace_prep::EngineOptions {
            memory_limit_mib: args
                .memory_limit_mib
                .unwrap_or_else(millrace_prep::engine::default_memory_limit_mib),
            target_partitions: None,
        })
        .await?;
    // Scans on a cluster report their bad records through the lake, under this run's folder.
    let report_prefix = format!(
        "_millrace/query-reports/{}",
        millrace_prep::dataset::run_id()
    );
    let mut latest_by = std::collections::HashMap::new();
    for spec in &args.latest_by {
        let (table, column) = spec
            .split_once('=')
            .filter(|(t, c)| !t.is_empty() && !c.is_empty())
            .with_context(|| format!("--latest-by {spec}: expected TABLE=COLUMN"))?;
        if !specs.iter().any(|(n, _, _)| n == table) {
            bail!("--latest-by {spec}: no table named {table:?} (name it with --table)");
        }
        latest_by.insert(table.to_owned(), column.to_owned());
    }
    let mut tables = Vec::new();
    for (name, path, format) in specs {
        let options = TableOptions {
            source_columns: args.source_columns,
            on_bad_record: if args.strict {
                OnBadRecord::Fail
            } else {
                OnBadRecord::Skip
            },
            latest_by: latest_by.get(&name).cloned(),
        };
        let loc = Location::resolve(&path, default_lake.as_ref(), &s3)
            .with_context(|| format!("--table {name}={path}"))?;
        let mut table = LakeTable::open(&name, &loc, format, None, &options)
            .await
            .with_context(|| format!("--table {name}={path}"))?;
        if args.engine.distributed() {
            table.report_to(report_prefix.clone());
        }
        let table = Arc::new(table);
        ctx.register_table(name.as_str(), table.clone())?;
        tables.push(table);
    }
    let (df, _) = millrace_prep::run_statements(&ctx, &args.sql, "query", 1).await?;
    let Some(df) = df else { return Ok(()) };
    let bar = match &args.engine {
        crate::engine::Engine::Local => {
            ScanBar::start(tables.iter().map(|t| t.progress()).collect())
        }
        engine => ScanBar::remote(engine),
    };
    let batches = df.collect().await;
    bar.finish();
    let mut bad = 0;
    let mut first = None;
    for t in &tables {
        let (b, n) = t.scanned_bad_records().await?;
        bad += n;
        first = first.or(b.into_iter().next());
    }
    let batches = batches.context("running the query")?;
    if bad > 0
        && let Some(b) = first
    {
        eprintln!(
            "warning: skipped {bad} unreadable JSON value(s); first: {} at byte {}: {}",
            b.object, b.offset, b.error
        );
    }
    write_result(&args, &batches)
}

/// A table of a query: its name, where its objects are (a path or an `s3://` URL) and their
/// format.
pub type TableSpec = (String, String, Option<InputFormat>);

/// A table for each delivery of `config`, named after it (`-` and `.` as `_`): the fixed part
/// of its prefix in its lake, in its format.
pub fn delivery_tables(config: &crate::config::Config, data_dir: &DataDir) -> Vec<TableSpec> {
    let mut specs: Vec<TableSpec> = Vec::new();
    for d in &config.deliveries {
        let lake = crate::config::lake_url(data_dir, &d.lake);
        let template = d.prefix_template();
        let fixed = template.split("!{").next().unwrap_or("");
        let fixed = &fixed[..fixed.rfind('/').map(|i| i + 1).unwrap_or(0)];
        let format = match d.format {
            millrace_delivery::Format::Ndjson | millrace_delivery::Format::Lines => {
                InputFormat::Ndjson
            }
            millrace_delivery::Format::Concat => InputFormat::Concat,
            millrace_delivery::Format::Parquet => InputFormat::Parquet,
        };
        let name = d.name.replace(['-', '.'], "_");
        if !specs.iter().any(|(n, _, _)| *n == name) {
            specs.push((
                name,
                format!("{}/{fixed}", lake.trim_end_matches('/')),
                Some(format),
            ));
        }
    }
    specs
}

/// `NAME=PATH[:FORMAT]`; the format suffix is recognised only when it names a format, so
/// `s3://` URLs and Windows-style paths keep their colons.
fn parse_table(spec: &str) -> anyhow::Result<TableSpec> {
    let Some((name, rest)) = spec.split_once('=') else {
        bail!("--table {spec:?}: expected NAME=PATH[:FORMAT]");
    };
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("--table {spec:?}: NAME must be letters, digits and _");
    }
    if let Some((path, fmt)) = rest.rsplit_once(':')
        && !fmt.contains('/')
        && !fmt.is_empty()
    {
        if let Ok(f) = fmt.parse::<InputFormat>() {
            return Ok((name.to_owned(), path.to_owned(), Some(f)));
        }
        if !path.ends_with("s3") && !path.ends_with("file") {
            bail!(
                "--table {spec:?}: unknown format {fmt:?}; expected one of {}",
                InputFormat::NAMES
            );
        }
    }
    Ok((name.to_owned(), rest.to_owned(), None))
}

fn write_result(args: &QueryArgs, batches: &[RecordBatch]) -> anyhow::Result<()> {
    if args.format == QueryFormat::Parquet {
        return write_parquet(args, batches);
    }
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match args.format {
        QueryFormat::Table => {
            let table = datafusion::arrow::util::pretty::pretty_format_batches(batches)?;
            writeln!(out, "{table}")?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            eprintln!("{rows} row(s)");
        }
        QueryFormat::Csv => write_csv(&mut out, batches)?,
        QueryFormat::Json => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        QueryFormat::Parquet => unreachable!("written above"),
    }
    out.flush()?;
    Ok(())
}

fn write_parquet(args: &QueryArgs, batches: &[RecordBatch]) -> anyhow::Result<()> {
    let path = args
        .out
        .as_ref()
        .context("--format parquet needs --out FILE")?;
    let Some(first) = batches.first() else {
        bail!("the query returned no batches to write");
    };
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    parquet_to(file, first.schema(), batches)
}

/// A result as CSV with a header row.
pub fn write_csv(out: &mut impl Write, batches: &[RecordBatch]) -> anyhow::Result<()> {
    let mut w = arrow_csv::WriterBuilder::new().with_header(true).build(out);
    for b in batches {
        w.write(b)?;
    }
    Ok(())
}

/// A result as one zstd-compressed Parquet file of `schema`.
pub fn parquet_to(
    out: impl Write + Send,
    schema: datafusion::arrow::datatypes::SchemaRef,
    batches: &[RecordBatch],
) -> anyhow::Result<()> {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(out, schema, Some(props))?;
    for b in batches {
        w.write(b)?;
    }
    w.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_specs() {
        let (n, p, f) = parse_table("raw=lake/raw/churn:concat").unwrap();
        assert_eq!(
            (n.as_str(), p.as_str(), f),
            ("raw", "lake/raw/churn", Some(InputFormat::Concat))
        );
        let (_, p, f) = parse_table("t=s3://bucket/raw").unwrap();
        assert_eq!((p.as_str(), f), ("s3://bucket/raw", None));
        let (_, p, f) = parse_table("t=s3://bucket/raw:parquet").unwrap();
        assert_eq!(
            (p.as_str(), f),
            ("s3://bucket/raw", Some(InputFormat::Parquet))
        );
        assert!(
            parse_table("t=x:xml")
                .unwrap_err()
                .to_string()
                .contains("xml")
        );
        assert!(parse_table("no-equals").is_err());
        assert!(parse_table("bad name=x").is_err());
    }
}
