//! Helpers shared by prep's integration tests: the shared data files, a local lake, and
//! running SQL against tables.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use millrace_lake::{Lake, S3Options};
use millrace_prep::{EngineOptions, InputFormat, LakeTable, Location, TableOptions};

pub fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

pub fn lake(dir: &Path) -> Lake {
    Lake::open(dir.to_str().unwrap(), &S3Options::default()).unwrap()
}

/// Registers `tables` (name, location spec, format) and runs `sql`.
pub async fn query(
    lake: Option<&Lake>,
    tables: &[(&str, &str, Option<InputFormat>)],
    options: &TableOptions,
    sql: &str,
) -> Result<(Vec<RecordBatch>, Vec<Arc<LakeTable>>), String> {
    let ctx = millrace_prep::context(&EngineOptions::default()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (name, spec, format) in tables {
        let loc =
            Location::resolve(spec, lake, &S3Options::default()).map_err(|e| e.to_string())?;
        let t = Arc::new(
            LakeTable::open(name, &loc, *format, None, options)
                .await
                .map_err(|e| e.to_string())?,
        );
        ctx.register_table(*name, t.clone()).unwrap();
        out.push(t);
    }
    let (df, _) = millrace_prep::run_statements(&ctx, sql, "test", 1)
        .await
        .map_err(|e| e.to_string())?;
    let batches = df.unwrap().collect().await.map_err(|e| e.to_string())?;
    Ok((batches, out))
}

/// The rows of a concatenated-JSON object, parsed independently with serde_json.
pub fn json_values(bytes: &[u8]) -> Vec<serde_json::Map<String, serde_json::Value>> {
    serde_json::Deserializer::from_slice(bytes)
        .into_iter::<serde_json::Value>()
        .map(|v| match v.unwrap() {
            serde_json::Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        })
        .collect()
}
