//! `latest_by` on a cluster: the second half of a split scan.
//!
//! On one machine a `latest_by` scan is one newest-first stream over every object (`latest.rs`).
//! On a Ballista cluster that would be one task, so a distributed scan splits the objects into
//! groups like any other scan, and each group keeps the latest record per key *of its own
//! objects*, with two more columns: the key as compared (trimmed text) and the record's arrival
//! order (`_seq`: object ordinal, then row). [`LatestMergeExec`] asks for its input hash-
//! partitioned by that key (DataFusion's distribution rule puts the repartition in, Ballista
//! makes it a shuffle), so all candidates of one key meet in one partition, and keeps the one
//! that arrived last. Rows whose key is NULL or blank are all kept, as on one machine. The
//! two columns are dropped on the way out, so the rows are the local scan's.

use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    Partitioning, PlanProperties,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

/// The name of the compared-key column a split `latest_by` scan adds.
pub const KEY_COLUMN: &str = "_millrace_latest_key";
/// The name of the arrival-order column a split `latest_by` scan adds.
pub const SEQ_COLUMN: &str = "_millrace_latest_seq";

/// The two columns a split `latest_by` scan adds after the query's own.
pub(crate) fn extra_fields() -> [Field; 2] {
    [
        Field::new(KEY_COLUMN, DataType::Utf8, true),
        Field::new(SEQ_COLUMN, DataType::Int64, false),
    ]
}

/// Keeps, of the rows sharing a key, the one that arrived last; see the module's notes.
#[derive(Debug)]
pub struct LatestMergeExec {
    input: Arc<dyn ExecutionPlan>,
    /// The output: the input's first `keep` columns.
    schema: SchemaRef,
    keep: usize,
    properties: Arc<PlanProperties>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    keep: usize,
}

impl LatestMergeExec {
    /// Over a split `latest_by` scan whose last two columns are [`KEY_COLUMN`] and
    /// [`SEQ_COLUMN`].
    pub fn try_new(input: Arc<dyn ExecutionPlan>) -> DfResult<Self> {
        let in_schema = input.schema();
        let n = in_schema.fields().len();
        let names_ok = n >= 2
            && in_schema.field(n - 2).name() == KEY_COLUMN
            && in_schema.field(n - 1).name() == SEQ_COLUMN;
        if !names_ok {
            return Err(DataFusionError::Internal(format!(
                "LatestMergeExec needs {KEY_COLUMN} and {SEQ_COLUMN} last, got {in_schema}"
            )));
        }
        let keep = n - 2;
        let schema = Arc::new(in_schema.project(&(0..keep).collect::<Vec<_>>())?);
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            // The key it is partitioned by is not in the output.
            Partitioning::UnknownPartitioning(input.output_partitioning().partition_count()),
            input.pipeline_behavior(),
            input.boundedness(),
        ));
        Ok(Self {
            input,
            schema,
            keep,
            properties,
        })
    }

    /// The node as bytes (its input travels as the plan's child).
    pub fn to_bytes(&self) -> DfResult<Vec<u8>> {
        serde_json::to_vec(&Wire { keep: self.keep })
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }

    /// Reads back [`Self::to_bytes`] over its child, read back.
    pub fn from_bytes(bytes: &[u8], children: &[Arc<dyn ExecutionPlan>]) -> DfResult<Self> {
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let [input] = children else {
            return Err(DataFusionError::Internal(format!(
                "LatestMergeExec has one child, read back {}",
                children.len()
            )));
        };
        let node = Self::try_new(input.clone())?;
        if node.keep != wire.keep {
            return Err(DataFusionError::Internal(format!(
                "LatestMergeExec keeps {} columns, its input gives {}",
                wire.keep, node.keep
            )));
        }
        Ok(node)
    }

    fn key_index(&self) -> usize {
        self.keep
    }
}

impl DisplayAs for LatestMergeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "LatestMergeExec: latest by {KEY_COLUMN}, {SEQ_COLUMN}")
    }
}

impl ExecutionPlan for LatestMergeExec {
    fn name(&self) -> &'static str {
        "LatestMergeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        let key: Arc<dyn PhysicalExpr> = Arc::new(Column::new(KEY_COLUMN, self.key_index()));
        vec![Distribution::KeyPartitioned(vec![key])]
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
        let [input] = children.as_slice() else {
            return Err(DataFusionError::Internal(format!(
                "LatestMergeExec has one child, given {}",
                children.len()
            )));
        };
        Ok(Arc::new(Self::try_new(input.clone())?))
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
        // Every candidate of a key must come to this partition: refuse an input that is not
        // partitioned by the key (a plan that skipped DataFusion's distribution rule).
        let input_parts = self.input.output_partitioning();
        let by_key = match input_parts {
            Partitioning::Hash(exprs, _) => {
                exprs.len() == 1 && {
                    let c = exprs[0].downcast_ref::<Column>();
                    c.is_some_and(|c| c.index() == self.key_index())
                }
            }
            other => other.partition_count() == 1,
        };
        if !by_key {
            return Err(DataFusionError::Internal(format!(
                "LatestMergeExec needs its input hash-partitioned by {KEY_COLUMN}, got \
                 {input_parts}"
            )));
        }
        let input = self.input.execute(partition, ctx.clone())?;
        let keep = self.keep;
        let reservation = MemoryConsumer::new(format!("LatestMergeExec[{partition}]"))
            .register(ctx.memory_pool());
        let rows = futures::stream::once(async move {
            let mut batches = Vec::new();
            let mut input = input;
            while let Some(batch) = input.next().await {
                let batch = batch?;
                reservation
                    .try_grow(batch.get_array_memory_size())
                    .map_err(|e| {
                        DataFusionError::ResourcesExhausted(format!(
                            "latest_by on a cluster holds each key partition's candidates \
                             in memory; give the executors more memory or the job more \
                             partitions (target_partitions): {e}"
                        ))
                    })?;
                batches.push(batch);
            }
            let out = tokio::task::spawn_blocking(move || merge(&batches, keep))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))??;
            drop(reservation);
            Ok::<_, DataFusionError>(futures::stream::iter(out.into_iter().map(Ok)))
        })
        .map(|r| match r {
            Ok(s) => s.boxed(),
            Err(e) => futures::stream::once(async { Err(e) }).boxed(),
        })
        .flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            rows,
        )))
    }
}

/// The rows of `batches` that arrived last of their key (all rows with a NULL or blank key),
/// as their first `keep` columns. The key is column `keep`, the arrival order `keep + 1`.
fn merge(batches: &[RecordBatch], keep: usize) -> DfResult<Vec<RecordBatch>> {
    use std::hash::BuildHasher;
    let hasher = foldhash::fast::FixedState::default();
    // The winner so far of each key: (arrival, batch, row).
    let mut winners: hashbrown::HashTable<(i64, u32, u32)> = hashbrown::HashTable::new();
    let mut masks: Vec<Vec<bool>> = batches.iter().map(|b| vec![false; b.num_rows()]).collect();
    let keys: Vec<&StringArray> = batches
        .iter()
        .map(|b| b.column(keep).as_string::<i32>())
        .collect();
    let seqs: Vec<&Int64Array> = batches
        .iter()
        .map(|b| {
            b.column(keep + 1)
                .as_primitive::<arrow::datatypes::Int64Type>()
        })
        .collect();
    let key_of = |&(_, b, r): &(i64, u32, u32)| keys[b as usize].value(r as usize);
    for (b, ((k, s), mask)) in keys.iter().zip(&seqs).zip(masks.iter_mut()).enumerate() {
        for (r, keyless) in mask.iter_mut().enumerate() {
            if k.is_null(r) || k.value(r).is_empty() {
                *keyless = true;
                continue;
            }
            let key = k.value(r);
            let seq = s.value(r);
            let hash = hasher.hash_one(key);
            match winners.entry(hash, |e| key_of(e) == key, |e| hasher.hash_one(key_of(e))) {
                hashbrown::hash_table::Entry::Occupied(mut e) => {
                    if seq > e.get().0 {
                        *e.get_mut() = (seq, b as u32, r as u32);
                    }
                }
                hashbrown::hash_table::Entry::Vacant(e) => {
                    e.insert((seq, b as u32, r as u32));
                }
            }
        }
    }
    for &(_, b, r) in winners.iter() {
        masks[b as usize][r as usize] = true;
    }
    let columns: Vec<usize> = (0..keep).collect();
    let mut out = Vec::with_capacity(batches.len());
    for (batch, mask) in batches.iter().zip(masks) {
        let kept = filter_record_batch(&batch.project(&columns)?, &BooleanArray::from(mask))?;
        if kept.num_rows() > 0 {
            out.push(kept);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Schema;

    fn batch(rows: &[(Option<&str>, i64, &str)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Utf8, false),
            Field::new(KEY_COLUMN, DataType::Utf8, true),
            Field::new(SEQ_COLUMN, DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0))),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap()
    }

    #[test]
    fn the_last_arrival_of_each_key_wins_and_keyless_rows_stay() {
        let a = batch(&[
            (Some("a"), 5, "a@5"),
            (Some("b"), 9, "b@9"),
            (None, 1, "null@1"),
        ]);
        let b = batch(&[
            (Some("a"), 7, "a@7"),
            (Some("b"), 2, "b@2"),
            (Some(""), 3, "blank@3"),
            (None, 4, "null@4"),
            (Some("c"), 1, "c@1"),
        ]);
        let out = merge(&[a, b], 1).unwrap();
        let mut got: Vec<String> = out
            .iter()
            .flat_map(|b| {
                assert_eq!(b.num_columns(), 1);
                b.column(0)
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        got.sort();
        assert_eq!(got, ["a@7", "b@9", "blank@3", "c@1", "null@1", "null@4"]);
    }
}
