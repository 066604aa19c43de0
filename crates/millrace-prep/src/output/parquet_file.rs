//! One Parquet file encoded a column at a time on several threads.
//!
//! `ArrowWriter` encodes a batch's columns one after another on the caller's thread, and
//! encoding (dictionaries, zstd) is the larger part of writing a wide table: for the churn job it
//! was a whole core while the query left the other one idle. Columns are independent until
//! they are appended to a row group, so each batch's columns are spread over threads and the
//! file is otherwise written exactly as `ArrowWriter` would (same properties, Arrow schema in
//! the footer, row groups of `max_row_group_size` rows).

use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parking_lot::Mutex;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

pub struct ParallelParquet {
    schema: SchemaRef,
    file: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    /// One writer per leaf column of the row group being written; a mutex each so threads can
    /// claim columns as they go (their costs differ tenfold).
    columns: Vec<Mutex<ArrowColumnWriter>>,
    row_groups: usize,
    rows_in_group: usize,
    max_rows_per_group: usize,
    threads: usize,
}

impl ParallelParquet {
    pub fn try_new(schema: &SchemaRef, props: WriterProperties) -> Result<Self, ParquetError> {
        // Row groups are bounded by rows only; unlimited is taken as ArrowWriter's default.
        let max_rows_per_group = props
            .max_row_group_row_count()
            .unwrap_or(1024 * 1024)
            .max(1);
        let (file, factory) = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))?
            .into_serialized_writer()?;
        let columns = factory
            .create_column_writers(0)?
            .into_iter()
            .map(Mutex::new)
            .collect();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        Ok(Self {
            schema: schema.clone(),
            file,
            factory,
            columns,
            row_groups: 0,
            rows_in_group: 0,
            max_rows_per_group,
            threads,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ParquetError> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let room = self.max_rows_per_group - self.rows_in_group;
            let n = room.min(batch.num_rows() - offset);
            self.encode(&batch.slice(offset, n))?;
            offset += n;
            self.rows_in_group += n;
            if self.rows_in_group == self.max_rows_per_group {
                self.flush_row_group()?;
            }
        }
        Ok(())
    }

    fn encode(&mut self, batch: &RecordBatch) -> Result<(), ParquetError> {
        let mut leaves: Vec<ArrowLeafColumn> = Vec::with_capacity(self.columns.len());
        for (field, array) in self.schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, array)?);
        }
        let next = AtomicUsize::new(0);
        let work = || -> Result<(), ParquetError> {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(leaf) = leaves.get(i) else {
                    return Ok(());
                };
                self.columns[i].lock().write(leaf)?;
            }
        };
        let threads = self.threads.min(leaves.len()).max(1);
        if threads == 1 || batch.num_rows() < 1024 {
            return work();
        }
        std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
            let mine = work();
            helpers
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .chain([mine])
                .collect::<Result<Vec<()>, _>>()
                .map(|_| ())
        })
    }

    fn flush_row_group(&mut self) -> Result<(), ParquetError> {
        if self.rows_in_group == 0 {
            return Ok(());
        }
        self.row_groups += 1;
        let fresh: Vec<Mutex<ArrowColumnWriter>> = self
            .factory
            .create_column_writers(self.row_groups)?
            .into_iter()
            .map(Mutex::new)
            .collect();
        let done = std::mem::replace(&mut self.columns, fresh);
        let mut group = self.file.next_row_group()?;
        for column in done {
            column
                .into_inner()
                .close()?
                .append_to_row_group(&mut group)?;
        }
        group.close()?;
        self.rows_in_group = 0;
        Ok(())
    }

    /// Bytes written so far plus an estimate of the row group in progress.
    pub fn size(&self) -> usize {
        self.file.bytes_written()
            + self
                .columns
                .iter()
                .map(|c| c.lock().get_estimated_total_bytes())
                .sum::<usize>()
    }

    pub fn finish(mut self) -> Result<Vec<u8>, ParquetError> {
        self.flush_row_group()?;
        self.file.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::sync::Arc;

    #[test]
    fn reads_back_as_written_across_row_groups() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(2500))
            .build();
        let mut w = ParallelParquet::try_new(&schema, props).unwrap();
        let mut batches = Vec::new();
        for b in 0..4 {
            let n: Vec<i64> = (b * 1500..(b + 1) * 1500).collect();
            let s: Vec<Option<String>> = n
                .iter()
                .map(|i| (i % 7 != 0).then(|| format!("v{}", i % 100)))
                .collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(s)) as ArrayRef,
                    Arc::new(Int64Array::from(n)),
                ],
            )
            .unwrap();
            w.write(&batch).unwrap();
            batches.push(batch);
        }
        assert!(w.size() > 0);
        let bytes = bytes::Bytes::from(w.finish().unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 3);
        assert_eq!(reader.schema().as_ref(), schema.as_ref());
        let read: Vec<RecordBatch> = reader.build().unwrap().map(|b| b.unwrap()).collect();
        assert_eq!(
            arrow::compute::concat_batches(&schema, &read).unwrap(),
            arrow::compute::concat_batches(&schema, &batches).unwrap()
        );
    }
}
