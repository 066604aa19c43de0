//! Reading a whole table from a file, folder, lake prefix or s3:// URL (through prep's lake
//! tables, so every format and compression `millrace query` reads works here), and writing one
//! batch to a local file (atomically) or an s3:// URL, in the format its extension names.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use millrace_lake::{Lake, S3Options};
use millrace_prep::{InputFormat, LakeTable, Location, TableOptions};

/// `PATH[:FORMAT]` → every row of it.
pub async fn read_table(
    data_dir: &Path,
    spec: &str,
    s3: &S3Options,
) -> anyhow::Result<(SchemaRef, Vec<RecordBatch>)> {
    let (path, format) = match spec.rsplit_once(':') {
        Some((p, f)) if !f.contains('/') => match f.parse::<InputFormat>() {
            Ok(fmt) => (p, Some(fmt)),
            Err(_) => (spec, None),
        },
        _ => (spec, None),
    };
    let lake_dir = data_dir.join("lake");
    let default_lake = if lake_dir.is_dir() {
        Some(Lake::open(&lake_dir.display().to_string(), s3)?)
    } else {
        None
    };
    let loc = Location::resolve(path, default_lake.as_ref(), s3)
        .with_context(|| format!("--data {spec}"))?;
    let table = LakeTable::open("data", &loc, format, None, &TableOptions::default())
        .await
        .with_context(|| format!("--data {spec}"))?;
    let ctx = millrace_prep::context(&millrace_prep::EngineOptions {
        memory_limit_mib: millrace_prep::engine::default_memory_limit_mib(),
        target_partitions: None,
    })?;
    let table = Arc::new(table);
    ctx.register_table("data", table.clone())?;
    let df = ctx.table("data").await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df
        .collect()
        .await
        .with_context(|| format!("reading {spec}"))?;
    let bad = table
        .progress()
        .bad_count
        .load(std::sync::atomic::Ordering::Relaxed);
    if bad > 0 {
        eprintln!("warning: skipped {bad} unreadable JSON value(s) in {spec}");
    }
    Ok((schema, batches))
}

/// Encodes `batch` as the extension of `dest` says: .parquet (zstd), .csv, .json / .ndjson.
pub fn encode(dest: &str, batch: &RecordBatch) -> anyhow::Result<Vec<u8>> {
    let lower = dest.to_ascii_lowercase();
    let mut buf = Vec::new();
    if lower.ends_with(".parquet") {
        let props = parquet::file::properties::WriterProperties::builder()
            .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
        w.write(batch)?;
        w.close()?;
    } else if lower.ends_with(".csv") {
        let mut w = arrow_csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut buf);
        w.write(batch)?;
    } else if lower.ends_with(".json") || lower.ends_with(".ndjson") || lower.ends_with(".jsonl") {
        let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
        w.write(batch)?;
        w.finish()?;
    } else {
        bail!("{dest}: name the output .parquet, .csv or .ndjson so the format is clear");
    }
    Ok(buf)
}

/// Writes bytes to a local path (temporary file, fsync, rename) or an s3:// URL.
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
        use std::io::Write;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = path.with_extension(format!(
            "{}.tmp",
            path.extension().and_then(|e| e.to_str()).unwrap_or("")
        ));
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    })
    .await?
}

/// `PATH` → a frame. A local CSV file is read with every column as text, exactly as it is in
/// the file (an empty field is missing): deciding that "29.85" is a number is the consumer's
/// job (the trainer's automatic features, or a recipe's cast), and guessing here could turn an
/// ID like "0042" into 42. Anything else goes through `read_table`.
pub async fn read_frame(
    data_dir: &Path,
    spec: &str,
    s3: &S3Options,
) -> anyhow::Result<millrace_wrangle::Frame> {
    use millrace_wrangle::{Column, Frame};
    let local = Path::new(spec.strip_prefix("file://").unwrap_or(spec)).to_path_buf();
    let is_csv = local
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        && local.is_file();
    if is_csv {
        return tokio::task::spawn_blocking(move || -> anyhow::Result<Frame> {
            let mut r = csv::ReaderBuilder::new()
                .has_headers(true)
                .from_path(&local)
                .with_context(|| format!("reading {}", local.display()))?;
            let header: Vec<String> = r
                .headers()
                .with_context(|| format!("reading the header of {}", local.display()))?
                .iter()
                .map(str::to_owned)
                .collect();
            let mut seen = std::collections::HashSet::new();
            for h in &header {
                if !seen.insert(h.as_str()) {
                    bail!(
                        "{}: column `{h}` appears twice in the header",
                        local.display()
                    );
                }
            }
            let mut cols: Vec<Vec<Option<String>>> = vec![Vec::new(); header.len()];
            for (line, rec) in r.records().enumerate() {
                let rec = rec.with_context(|| format!("{}: row {}", local.display(), line + 1))?;
                if rec.len() != header.len() {
                    bail!(
                        "{}: row {} has {} fields, the header has {}",
                        local.display(),
                        line + 1,
                        rec.len(),
                        header.len()
                    );
                }
                for (c, v) in cols.iter_mut().zip(rec.iter()) {
                    c.push((!v.is_empty()).then(|| v.to_owned()));
                }
            }
            let rows = cols.first().map_or(0, Vec::len);
            let mut f = Frame::new(rows);
            for (h, c) in header.into_iter().zip(cols) {
                f.set(h.as_str().into(), Column::Str(c));
            }
            Ok(f)
        })
        .await?;
    }
    let (schema, batches) = read_table(data_dir, spec, s3).await?;
    Ok(tokio::task::spawn_blocking(move || {
        millrace_wrangle::Frame::from_batches(&schema, &batches)
    })
    .await??)
}
