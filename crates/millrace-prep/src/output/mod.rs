//! Writing a query result into a lake folder as Parquet (zstd) or CSV files, optionally split
//! into Hive partition folders. Files are encoded on blocking threads and each is put as one
//! atomic object through the dataset's [`DatasetWriter`]; the dataset itself changes only when
//! the caller commits the manifest.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, UInt32Array};
use arrow::datatypes::SchemaRef;
use datafusion::prelude::DataFrame;
use futures::StreamExt;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::dataset::DatasetWriter;
use crate::error::{PrepError, Result};
use crate::job::OutputFormat;
use crate::location::{NULL_PARTITION, escape};

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

/// How a query result is laid out in files.
pub struct ResultWriter {
    pub format: OutputFormat,
    pub partition_by: Vec<String>,
}

impl ResultWriter {
    /// Streams `df` into parts of `dataset` (listed by `dataset.files()`, not yet part of the
    /// dataset).
    pub async fn write(&self, df: DataFrame, dataset: &mut DatasetWriter) -> Result<()> {
        let path = format!("{}/{}", dataset.lake().url(), dataset.folder());
        let out_err = |message: String| PrepError::Output {
            path: path.clone(),
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
                    self.put_file(dataset, &dir, file).await?;
                } else {
                    open.insert(dir, file);
                }
            }
        }
        if open.is_empty() && dataset.files().is_empty() && part_idx.is_empty() {
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
            self.put_file(dataset, &dir, file).await?;
        }
        Ok(())
    }

    async fn put_file(&self, dataset: &mut DatasetWriter, dir: &str, file: OpenFile) -> Result<()> {
        let rows = file.rows;
        let bytes = tokio::task::spawn_blocking(move || file.encoder.finish())
            .await
            .map_err(|e| PrepError::Output {
                path: dataset.folder().to_owned(),
                message: e.to_string(),
            })??;
        let ext = match self.format {
            OutputFormat::Parquet => "parquet",
            OutputFormat::Csv => "csv",
        };
        dataset.put_part(dir, ext, bytes, rows).await?;
        Ok(())
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
