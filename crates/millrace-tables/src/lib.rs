//! `millrace-tables`: Apache Iceberg tables written from stream records, for Kinesis channels
//! into S3 Tables (work in progress; see docs/notes/iceberg-channels.md).
//!
//! A [`TableWriter`] owns one table in a warehouse folder. The table's current metadata file is
//! named by `metadata/version-hint.text` (what DuckDB and pyiceberg's static tables read), so a
//! restart finds it again; each append is one Iceberg snapshot whose summary carries, per
//! source shard, the last sequence number it holds (`millrace.shard.<id>`), so a writer that
//! crashed between its commit and its own checkpoint can tell a range is already in the table.

mod rows;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use millrace_common::durable;

use iceberg::memory::{MEMORY_CATALOG_WAREHOUSE, MemoryCatalogBuilder};
use iceberg::spec::{
    DataFileFormat, Literal, NestedField, PartitionKey, PrimitiveType, Schema, Struct, Transform,
    Type, UnboundPartitionSpec,
};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation, TableIdent};

pub use rows::RowError;

/// Snapshot summary key prefix of the per-shard marks.
const MARK_PREFIX: &str = "millrace.shard.";
const HINT: &str = "version-hint.text";

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("iceberg: {0}")]
    Iceberg(#[from] iceberg::Error),
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Schema(String),
    #[error("a blocking task failed: {0}")]
    Task(String),
}

pub type Result<T, E = TableError> = std::result::Result<T, E>;

/// A column's type, as a JSON Schema names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    String,
    Long,
    Double,
    Boolean,
    /// An RFC 3339 string or epoch milliseconds; stored as `timestamptz` (microseconds, UTC).
    Timestamptz,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: ColumnKind,
    pub required: bool,
}

/// The table a channel writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub namespace: String,
    pub table: String,
    pub columns: Vec<Column>,
    /// A `timestamptz` column partitioned by hour (`TIME_HOUR`).
    pub hour_partition: Option<String>,
    /// The data files' Parquet compression (`S3TablesCompressionType`).
    pub compression: TableCompression,
}

/// `S3TablesCompressionType`: how the Parquet data files are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableCompression {
    None,
    #[default]
    Zstd,
    Snappy,
}

impl TableCompression {
    /// `NONE`, `ZSTD` or `SNAPPY`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "NONE" => Some(Self::None),
            "ZSTD" => Some(Self::Zstd),
            "SNAPPY" => Some(Self::Snappy),
            _ => None,
        }
    }

    fn parquet(self) -> parquet_58::basic::Compression {
        use parquet_58::basic::Compression;
        match self {
            Self::None => Compression::UNCOMPRESSED,
            Self::Zstd => Compression::ZSTD(Default::default()),
            Self::Snappy => Compression::SNAPPY,
        }
    }
}

impl TableSpec {
    fn schema(&self) -> Result<Schema> {
        let fields = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let ty = Type::Primitive(match c.kind {
                    ColumnKind::String => PrimitiveType::String,
                    ColumnKind::Long => PrimitiveType::Long,
                    ColumnKind::Double => PrimitiveType::Double,
                    ColumnKind::Boolean => PrimitiveType::Boolean,
                    ColumnKind::Timestamptz => PrimitiveType::Timestamptz,
                });
                let id = i as i32 + 1;
                Arc::new(if c.required {
                    NestedField::required(id, &c.name, ty)
                } else {
                    NestedField::optional(id, &c.name, ty)
                })
            })
            .collect::<Vec<_>>();
        Ok(Schema::builder()
            .with_schema_id(0)
            .with_fields(fields)
            .build()?)
    }

    fn partition_column(&self) -> Result<Option<(i32, &Column)>> {
        let Some(name) = &self.hour_partition else {
            return Ok(None);
        };
        let (i, c) = self
            .columns
            .iter()
            .enumerate()
            .find(|(_, c)| &c.name == name)
            .ok_or_else(|| {
                TableError::Schema(format!("partition column {name} is not in the schema"))
            })?;
        if c.kind != ColumnKind::Timestamptz {
            return Err(TableError::Schema(format!(
                "partition column {name} must be a timestamptz column (TIME_HOUR)"
            )));
        }
        Ok(Some((i as i32 + 1, c)))
    }
}

/// One table, appended to by one writer.
pub struct TableWriter {
    catalog: iceberg::memory::MemoryCatalog,
    table: Table,
    spec: TableSpec,
    dir: PathBuf,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("dir", &self.dir)
            .finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TableError + '_ {
    move |source| TableError::Io {
        path: path.to_owned(),
        source,
    }
}

impl TableWriter {
    /// Opens `spec`'s table under `warehouse` (a local folder): the one its version hint
    /// names, or a new one.
    pub async fn open(warehouse: &Path, spec: TableSpec) -> Result<Self> {
        std::fs::create_dir_all(warehouse).map_err(io(warehouse))?;
        let catalog = MemoryCatalogBuilder::default()
            .with_storage_factory(Arc::new(iceberg::io::LocalFsStorageFactory))
            .load(
                "millrace",
                HashMap::from([(
                    MEMORY_CATALOG_WAREHOUSE.to_owned(),
                    warehouse.display().to_string(),
                )]),
            )
            .await?;
        let ns = NamespaceIdent::new(spec.namespace.clone());
        catalog.create_namespace(&ns, HashMap::new()).await?;
        let ident = TableIdent::new(ns.clone(), spec.table.clone());
        let dir = warehouse.join(&spec.namespace).join(&spec.table);
        let table = match read_hint(&dir)? {
            Some(location) => catalog.register_table(&ident, location).await?,
            None => {
                let mut partition = UnboundPartitionSpec::builder();
                if let Some((id, c)) = spec.partition_column()? {
                    partition = partition.add_partition_field(
                        id,
                        format!("{}_hour", c.name),
                        Transform::Hour,
                    )?;
                }
                let creation = TableCreation::builder()
                    .name(spec.table.clone())
                    .schema(spec.schema()?)
                    .partition_spec(partition.build())
                    .build();
                let t = catalog.create_table(&ns, creation).await?;
                write_hint(&dir, &t).await?;
                t
            }
        };
        Ok(Self {
            catalog,
            table,
            spec,
            dir,
        })
    }

    /// The last sequence number per shard the table holds (from the current snapshot).
    pub fn committed(&self) -> BTreeMap<String, String> {
        self.table
            .metadata()
            .current_snapshot()
            .map(|s| {
                s.summary()
                    .additional_properties
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix(MARK_PREFIX)
                            .map(|s| (s.to_owned(), v.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The rows `append` would not write, with why (so a caller can put them aside first).
    pub fn check(&self, rows: &[serde_json::Value]) -> Result<Vec<(usize, RowError)>> {
        let partition = self.spec.partition_column()?.map(|(_, c)| c.name.clone());
        Ok(rows::group(&self.spec, partition.as_deref(), rows).1)
    }

    /// Appends `rows` (JSON objects) as one snapshot carrying `marks` (shard → last sequence
    /// number, merged with the marks already committed). Rows that do not fit the schema are
    /// returned, with why, and not written.
    pub async fn append(
        &mut self,
        rows: &[serde_json::Value],
        marks: &BTreeMap<String, String>,
    ) -> Result<Vec<(usize, RowError)>> {
        let schema = self.table.metadata().current_schema().clone();
        let arrow_schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(&schema)?);
        let partition = self.spec.partition_column()?.map(|(_, c)| c.name.clone());
        let (groups, rejected) = rows::group(&self.spec, partition.as_deref(), rows);
        let mut files = Vec::new();
        for (hour, members) in groups {
            let batch = rows::batch(&self.spec, arrow_schema.clone(), &members)?;
            let key = hour.map(|h| {
                PartitionKey::new(
                    self.table
                        .metadata()
                        .default_partition_spec()
                        .as_ref()
                        .clone(),
                    schema.clone(),
                    Struct::from_iter([Some(Literal::int(h))]),
                )
            });
            let location = DefaultLocationGenerator::new(self.table.metadata())?;
            let names = DefaultFileNameGenerator::new(
                "millrace".to_owned(),
                Some(uuid_like()),
                DataFileFormat::Parquet,
            );
            let parquet = ParquetWriterBuilder::new(
                parquet_58::file::properties::WriterProperties::builder()
                    .set_compression(self.spec.compression.parquet())
                    .build(),
                schema.clone(),
            );
            let rolling = RollingFileWriterBuilder::new_with_default_file_size(
                parquet,
                self.table.file_io().clone(),
                location,
                names,
            );
            let mut writer = DataFileWriterBuilder::new(rolling).build(key).await?;
            writer.write(batch).await?;
            files.extend(writer.close().await?);
        }
        let mut props: HashMap<String, String> = self
            .committed()
            .into_iter()
            .map(|(k, v)| (format!("{MARK_PREFIX}{k}"), v))
            .collect();
        props.extend(
            marks
                .iter()
                .map(|(k, v)| (format!("{MARK_PREFIX}{k}"), v.clone())),
        );
        let tx = Transaction::new(&self.table);
        let action = tx
            .fast_append()
            .with_check_duplicate(false)
            .add_data_files(files)
            .set_snapshot_properties(props);
        let tx = action.apply(tx)?;
        self.table = tx.commit(&self.catalog).await?;
        write_hint(&self.dir, &self.table).await?;
        Ok(rejected)
    }

    pub fn table(&self) -> &Table {
        &self.table
    }
}

/// A random name part for data files (the commit's identity is in the snapshot).
fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{n:x}")
}

/// The metadata file `metadata/version-hint.text` names, if the table exists.
fn read_hint(dir: &Path) -> Result<Option<String>> {
    let path = dir.join("metadata").join(HINT);
    match std::fs::read_to_string(&path) {
        Ok(stem) => Ok(Some(
            dir.join("metadata")
                .join(format!("{}.metadata.json", stem.trim()))
                .display()
                .to_string(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TableError::Io { path, source: e }),
    }
}

/// Points the version hint at `table`'s current metadata (the commit point). Iceberg's local
/// storage writes data and metadata files without fsync, so the file system is flushed first:
/// after a crash the hint never names a metadata file (or data file) that is not on disk. Runs
/// off the async threads (a flush can take a while).
async fn write_hint(dir: &Path, table: &Table) -> Result<()> {
    let location = table.metadata_location_result()?;
    let file = location.rsplit('/').next().unwrap_or(location);
    let stem = file
        .strip_suffix(".metadata.json")
        .unwrap_or(file)
        .to_owned();
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let path = dir.join("metadata").join(HINT);
        durable::sync_filesystem(&dir).map_err(io(&dir))?;
        durable::write_file(&path, stem.as_bytes()).map_err(io(&path))
    })
    .await
    .map_err(|e| TableError::Task(format!("writing the version hint: {e}")))?
}
