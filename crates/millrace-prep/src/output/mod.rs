//! Writing a query result into a lake folder as Parquet (zstd) or CSV files, optionally split
//! into Hive partition folders. Files are encoded on blocking threads and each is committed as
//! one atomic object; the dataset itself changes only when the caller commits the manifest.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, UInt32Array};
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use datafusion::prelude::DataFrame;
use futures::StreamExt;
use millrace_lake::Lake;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{PrepError, Result};
use crate::job::OutputFormat;
use crate::location::{NULL_PARTITION, escape};
use crate::manifest::DataFile;

mod parquet_file;
use parquet_file::ParallelParquet;

/// A file is closed and committed once its encoded size passes this.
const TARGET_FILE_BYTES: usize = 128 << 20;

enum Encoder {
    Parquet(Box<ParallelParquet>),
    /// CSV writers hide their buffer; the size is estimated from the batches written.
    Csv(Box<arrow_csv::Writer<Vec<u8>>>, usize),
}

impl Encoder {
    fn new(format: OutputFormat, schema: &SchemaRef) -> Result<Self> {
        Ok(match format {
            OutputFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .build();
                Self::Parquet(Box::new(ParallelParquet::try_new(schema, props)?))
            }
            OutputFormat::Csv => Self::Csv(
                Box::new(
                    arrow_csv::WriterBuilder::new()
                        .with_header(true)
                        .build(Vec::new()),
                ),
                0,
            ),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            Self::Parquet(w) => w.write(batch)?,
            Self::Csv(w, size) => {
                w.write(batch)?;
                *size += batch.get_array_memory_size();
            }
        }
        Ok(())
    }

    fn size(&self) -> usize {
        match self {
            Self::Parquet(w) => w.size(),
            Self::Csv(_, size) => *size,
        }
    }

    fn finish(self) -> Result<Vec<u8>> {
        Ok(match self {
            Self::Parquet(w) => w.finish()?,
            Self::Csv(w, _) => w.into_inner(),
        })
    }
}

struct OpenFile {
    encoder: Encoder,
    rows: u64,
}

/// Where files go and what they are called.
pub struct DatasetWriter {
    pub lake: Lake,
    /// `prefix/` of the dataset.
    pub folder: String,
    pub run_id: String,
    pub format: OutputFormat,
    pub partition_by: Vec<String>,
}

impl DatasetWriter {
    /// Streams `df` into files and returns them (not yet part of the dataset).
    pub async fn write(&self, df: DataFrame) -> Result<Vec<DataFile>> {
        let out_err = |message: String| PrepError::Output {
            path: format!("{}/{}", self.lake.url(), self.folder),
            message,
        };
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let mut part_idx = Vec::new();
        for c in &self.partition_by {
            part_idx.push(schema.index_of(c).map_err(|_| {
                out_err(format!(
                    "partition_by column {c:?} is not in the result (columns: {})",
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?);
        }
        let data_idx: Vec<usize> = (0..schema.fields().len())
            .filter(|i| !part_idx.contains(i))
            .collect();
        let data_schema: SchemaRef = Arc::new(schema.project(&data_idx)?);
        let task = Arc::new(df.task_ctx());
        let plan = df
            .create_physical_plan()
            .await
            .map_err(PrepError::df("planning the output query"))?;
        tracing::debug!(
            "physical plan:\n{}",
            datafusion::physical_plan::displayable(plan.as_ref()).indent(true)
        );
        let mut stream = datafusion::physical_plan::execute_stream(plan, task)
            .map_err(PrepError::df("running the output query"))?;
        let mut open: BTreeMap<String, OpenFile> = BTreeMap::new();
        let mut done = Vec::new();
        let mut seq = 0usize;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(PrepError::df("running the output query"))?;
            for (dir, rows) in split(&batch, &part_idx)? {
                let part = match rows {
                    Some(idx) => take(&batch, &idx)?,
                    None => batch.clone(),
                }
                .project(&data_idx)?;
                let file = match open.remove(&dir) {
                    Some(f) => f,
                    None => OpenFile {
                        encoder: Encoder::new(self.format, &data_schema)?,
                        rows: 0,
                    },
                };
                let file = tokio::task::spawn_blocking(move || -> Result<OpenFile> {
                    let mut file = file;
                    file.encoder.write(&part)?;
                    file.rows += part.num_rows() as u64;
                    Ok(file)
                })
                .await
                .map_err(|e| out_err(e.to_string()))??;
                if file.encoder.size() >= TARGET_FILE_BYTES {
                    done.push(self.commit_file(&dir, seq, file).await?);
                    seq += 1;
                } else {
                    open.insert(dir, file);
                }
            }
        }
        if open.is_empty() && done.is_empty() && part_idx.is_empty() {
            // An empty result is still a dataset with a schema.
            open.insert(
                String::new(),
                OpenFile {
                    encoder: Encoder::new(self.format, &data_schema)?,
                    rows: 0,
                },
            );
        }
        for (dir, file) in open {
            done.push(self.commit_file(&dir, seq, file).await?);
            seq += 1;
        }
        Ok(done)
    }

    async fn commit_file(&self, dir: &str, seq: usize, file: OpenFile) -> Result<DataFile> {
        let rows = file.rows;
        let bytes = tokio::task::spawn_blocking(move || file.encoder.finish())
            .await
            .map_err(|e| PrepError::Output {
                path: self.folder.clone(),
                message: e.to_string(),
            })??;
        let ext = match self.format {
            OutputFormat::Parquet => "parquet",
            OutputFormat::Csv => "csv",
        };
        let key = format!("{dir}part-{}-{seq:05}.{ext}", self.run_id);
        let size = bytes.len() as u64;
        self.lake
            .put(&format!("{}{key}", self.folder), Bytes::from(bytes))
            .await?;
        Ok(DataFile {
            key,
            rows,
            bytes: size,
            run_id: self.run_id.clone(),
        })
    }
}

/// Groups a batch's rows by partition folder (`col=value/…/`). `None` rows means all of them.
fn split(batch: &RecordBatch, part_idx: &[usize]) -> Result<Vec<(String, Option<Vec<u32>>)>> {
    if part_idx.is_empty() {
        return Ok(vec![(String::new(), None)]);
    }
    let schema = batch.schema();
    let formatters: Vec<_> = part_idx
        .iter()
        .map(|&i| {
            arrow::util::display::ArrayFormatter::try_new(
                batch.column(i).as_ref(),
                &Default::default(),
            )
        })
        .collect::<std::result::Result<_, _>>()?;
    let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for row in 0..batch.num_rows() {
        let mut dir = String::new();
        for (k, &i) in part_idx.iter().enumerate() {
            let col = batch.column(i);
            let v = if col.is_null(row) {
                NULL_PARTITION.to_owned()
            } else {
                let s = formatters[k].value(row).to_string();
                if s.is_empty() {
                    NULL_PARTITION.to_owned()
                } else {
                    escape(&s)
                }
            };
            dir.push_str(&format!("{}={v}/", escape(schema.field(i).name())));
        }
        groups.entry(dir).or_default().push(row as u32);
    }
    if groups.len() == 1 {
        return Ok(groups.into_keys().map(|d| (d, None)).collect());
    }
    Ok(groups.into_iter().map(|(d, r)| (d, Some(r))).collect())
}

fn take(batch: &RecordBatch, rows: &[u32]) -> Result<RecordBatch> {
    let idx = UInt32Array::from(rows.to_vec());
    let cols = batch
        .columns()
        .iter()
        .map(|c| arrow::compute::take(c.as_ref(), &idx, None))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(batch.schema(), cols)?)
}
