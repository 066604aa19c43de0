//! Job files: inputs (table name → lake prefix and format), SQL statements, outputs.
//!
//! ```toml
//! name = "churn"
//! sql = ["CREATE VIEW typed AS SELECT ...", "..."]   # top-level keys before any [[table]]
//!
//! [[input]]
//! table = "raw_churn"
//! path = "raw/churn"        # a lake prefix, a local path or an s3:// URL
//! format = "json"           # json | ndjson | concat | csv | parquet (default: from names)
//! source_columns = true     # adds _object, _row and _seq
//! latest_by = "customerID"  # keep each customer's latest record only (by arrival)
//!
//! [[output]]
//! path = "curated/churn"
//! query = "SELECT * FROM typed"   # or: table = "typed"
//! format = "parquet"              # parquet | csv
//! partition_by = ["Contract"]
//! ```

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::error::{PrepError, Result};
use crate::format::InputFormat;
use crate::table::OnBadRecord;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Defaults to the file name.
    pub name: Option<String>,
    /// Lake the relative paths are in (default: the data dir's lake).
    pub lake: Option<String>,
    /// DataFusion memory pool; beyond it sorts and aggregates spill to disk.
    pub memory_limit_mib: Option<u64>,
    /// Read only objects not in the last manifest, and append to the outputs.
    #[serde(default)]
    pub incremental: bool,
    #[serde(rename = "input", default)]
    pub inputs: Vec<JobInput>,
    #[serde(default)]
    pub sql: Vec<String>,
    #[serde(rename = "output", default)]
    pub outputs: Vec<JobOutput>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobInput {
    pub table: String,
    pub path: String,
    pub format: Option<InputFormat>,
    #[serde(default)]
    pub source_columns: bool,
    #[serde(default)]
    pub on_bad_record: OnBadRecord,
    /// Keep only the latest record (by arrival) of each value of this column.
    pub latest_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Parquet,
    Csv,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobOutput {
    pub path: String,
    pub query: Option<String>,
    pub table: Option<String>,
    #[serde(default)]
    pub format: OutputFormat,
    #[serde(default)]
    pub partition_by: Vec<String>,
}

impl JobOutput {
    /// The SQL whose result this output is.
    pub fn sql(&self) -> String {
        match (&self.query, &self.table) {
            (Some(q), _) => q.clone(),
            (None, Some(t)) => format!("SELECT * FROM \"{}\"", t.replace('"', "\"\"")),
            (None, None) => String::new(),
        }
    }
}

impl Job {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| PrepError::Job {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("job");
        Self::parse(&text, &path.display().to_string(), name)
    }

    /// Parses and validates job text; `origin` names it in errors, `default_name` is used when
    /// the job sets no `name`.
    pub fn parse(text: &str, origin: &str, default_name: &str) -> Result<Self> {
        let err = |message: String| PrepError::Job {
            path: origin.to_owned(),
            message,
        };
        let mut job: Job = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        if job.name.is_none() {
            job.name = Some(default_name.to_owned());
        }
        job.validate().map_err(err)?;
        Ok(job)
    }

    /// Checks what the TOML parser cannot, naming the key.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.inputs.is_empty() {
            return Err("no [[input]]: a job reads at least one table".into());
        }
        let mut tables = HashSet::new();
        for (i, input) in self.inputs.iter().enumerate() {
            if input.table.trim().is_empty() {
                return Err(format!("input[{i}].table is empty"));
            }
            if !tables.insert(input.table.as_str()) {
                return Err(format!(
                    "input[{i}].table: {:?} is named twice",
                    input.table
                ));
            }
            if input.path.trim().is_empty() {
                return Err(format!("input[{i}].path is empty"));
            }
            if input
                .latest_by
                .as_deref()
                .is_some_and(|c| c.trim().is_empty())
            {
                return Err(format!("input[{i}].latest_by is empty"));
            }
        }
        for (i, s) in self.sql.iter().enumerate() {
            if s.trim().is_empty() {
                return Err(format!("sql[{i}] is empty"));
            }
        }
        if self.outputs.is_empty() {
            return Err("no [[output]]: a job writes at least one dataset".into());
        }
        let mut paths = HashSet::new();
        for (i, o) in self.outputs.iter().enumerate() {
            match (&o.query, &o.table) {
                (Some(_), Some(_)) => {
                    return Err(format!("output[{i}]: set `query` or `table`, not both"));
                }
                (None, None) => return Err(format!("output[{i}]: set `query` or `table`")),
                _ => {}
            }
            if o.path.trim_matches('/').is_empty() {
                return Err(format!("output[{i}].path is empty"));
            }
            if !paths.insert(o.path.trim_matches('/')) {
                return Err(format!("output[{i}].path: {:?} is written twice", o.path));
            }
            if o.partition_by.iter().any(|c| c.trim().is_empty()) {
                return Err(format!("output[{i}].partition_by has an empty column name"));
            }
        }
        if self.memory_limit_mib == Some(0) {
            return Err("memory_limit_mib must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> std::result::Result<Job, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.toml");
        std::fs::write(&p, s).unwrap();
        Job::load(&p).map_err(|e| e.to_string())
    }

    const OK: &str = r#"
sql = ["CREATE VIEW v AS SELECT * FROM raw"]
[[input]]
table = "raw"
path = "raw/churn"
format = "concat"
[[output]]
path = "curated/x"
table = "v"
"#;

    #[test]
    fn loads_and_names_bad_keys() {
        let j = parse(OK).unwrap();
        assert_eq!(j.name.as_deref(), Some("j"));
        assert_eq!(j.inputs[0].format, Some(InputFormat::Concat));
        assert_eq!(j.outputs[0].sql(), "SELECT * FROM \"v\"");
        let e = parse(&OK.replace("concat", "xml")).unwrap_err();
        assert!(e.contains("format") && e.contains("xml"), "{e}");
        let e = parse(&OK.replace("table = \"v\"", "")).unwrap_err();
        assert!(e.contains("output[0]"), "{e}");
        let e = parse(&OK.replace("path = \"raw/churn\"", "path = \"raw\"\npaht = 1")).unwrap_err();
        assert!(e.contains("paht"), "{e}");
        let j = parse(&OK.replace("format = \"concat\"", "latest_by = \"id\"")).unwrap();
        assert_eq!(j.inputs[0].latest_by.as_deref(), Some("id"));
        let e = parse(&OK.replace("format = \"concat\"", "latest_by = \" \"")).unwrap_err();
        assert!(e.contains("input[0].latest_by"), "{e}");
    }
}
