//! The plan codecs every role uses: Ballista's own, plus the lake table (client → scheduler),
//! its scan and the merge of a split `latest_by` scan (scheduler → executors) and prep's `TRIM`.
//!
//! Ballista's codecs cannot be extended, so these wrap them: what the lake adds is written
//! with a leading [`LAKE`] byte, everything else with [`BALLISTA`] and handed to Ballista's.
//! The client, the scheduler and every executor must use these (the roles in this crate do).

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use millrace_prep::{LakeScanExec, LakeTable, LatestMergeExec};

const BALLISTA: u8 = 0;
const LAKE: u8 = 1;
const LATEST_MERGE: u8 = 2;
/// The `fun_definition` of prep's copy-sparing `btrim` (DataFusion's has none).
const SPARE_TRIM: &[u8] = b"millrace:spare_btrim";

fn split(buf: &[u8]) -> Result<(u8, &[u8])> {
    buf.split_first()
        .map(|(tag, rest)| (*tag, rest))
        .ok_or_else(|| DataFusionError::Internal("empty plan node from a Ballista peer".into()))
}

fn tagged(
    tag: u8,
    buf: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    buf.push(tag);
    write(buf)
}

fn decode_udf(name: &str, buf: &[u8]) -> Option<Arc<ScalarUDF>> {
    (buf == SPARE_TRIM).then(|| {
        let _ = name;
        Arc::new(millrace_prep::trim::spare_btrim())
    })
}

fn encode_udf(node: &ScalarUDF, buf: &mut Vec<u8>) -> bool {
    let ours = millrace_prep::trim::is_spare(node);
    if ours {
        buf.extend_from_slice(SPARE_TRIM);
    }
    ours
}

/// Logical plans: the lake table, then Ballista's.
#[derive(Debug, Default)]
pub struct LogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        let (_, rest) = split(buf)?;
        self.ballista.try_decode(rest, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        tagged(BALLISTA, buf, |b| self.ballista.try_encode(node, b))
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match split(buf)? {
            (LAKE, rest) => Ok(Arc::new(LakeTable::from_bytes(rest)?)),
            (_, rest) => self
                .ballista
                .try_decode_table_provider(rest, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(table) = node.downcast_ref::<LakeTable>() {
            return tagged(LAKE, buf, |b| {
                b.extend(table.to_bytes()?);
                Ok(())
            });
        }
        tagged(BALLISTA, buf, |b| {
            self.ballista.try_encode_table_provider(table_ref, node, b)
        })
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn datafusion::datasource::file_format::FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn datafusion::datasource::file_format::FileFormatFactory>,
    ) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match decode_udf(name, buf) {
            Some(udf) => Ok(udf),
            None => self.ballista.try_decode_udf(name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if encode_udf(node, buf) {
            return Ok(());
        }
        self.ballista.try_encode_udf(node, buf)
    }
}

/// Physical plans: the lake scan, then Ballista's (shuffles and the rest).
#[derive(Debug, Default)]
pub struct PhysicalCodec {
    ballista: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match split(buf)? {
            (LAKE, rest) => Ok(Arc::new(LakeScanExec::from_bytes(rest, inputs)?)),
            (LATEST_MERGE, rest) => Ok(Arc::new(LatestMergeExec::from_bytes(rest, inputs)?)),
            (_, rest) => self.ballista.try_decode(rest, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(scan) = node.downcast_ref::<LakeScanExec>() {
            return tagged(LAKE, buf, |b| {
                b.extend(scan.to_bytes()?);
                Ok(())
            });
        }
        if let Some(merge) = node.downcast_ref::<LatestMergeExec>() {
            return tagged(LATEST_MERGE, buf, |b| {
                b.extend(merge.to_bytes()?);
                Ok(())
            });
        }
        tagged(BALLISTA, buf, |b| {
            self.ballista.try_encode(node, b, proto_converter)
        })
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match decode_udf(name, buf) {
            Some(udf) => Ok(udf),
            None => self.ballista.try_decode_udf(name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if encode_udf(node, buf) {
            return Ok(());
        }
        self.ballista.try_encode_udf(node, buf)
    }
}

/// The two codecs, shared.
pub fn logical() -> Arc<dyn LogicalExtensionCodec> {
    Arc::new(LogicalCodec::default())
}

pub fn physical() -> Arc<dyn PhysicalExtensionCodec> {
    Arc::new(PhysicalCodec::default())
}
