//! Where batch-scored rows go: one file (local, through a temporary file renamed into place,
//! or an S3 multipart upload) or a lake folder of part files committed by prep's dataset writer
//! (`millrace_prep::DatasetWriter`: parts, manifest, history, sweep), as prep jobs commit
//! theirs. Nothing is visible at the target until `Sink::finish`; `Sink::abort` removes what a
//! failed run wrote.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use millrace_common::layout::DataDir;
use millrace_lake::{Lake, S3Options};
use millrace_prep::DatasetWriter;
use millrace_prep::manifest::{InputObject, Manifest};

use super::{FileFormat, OutputEncoder, temp_path};

/// Where scored rows go, and the local folders this run creates for them (removed again if
/// it fails).
#[derive(Debug, Clone)]
pub struct OutputTarget {
    pub output: Output,
    /// The deepest folder of the output and the topmost one of it that did not exist.
    fresh: Option<(PathBuf, PathBuf)>,
}

#[derive(Debug, Clone)]
pub enum Output {
    /// One file, local or s3://, in the format its extension names.
    File {
        spec: String,
        format: FileFormat,
        place: FilePlace,
    },
    /// A folder of part files committed by `_manifest.json`, as prep writes datasets.
    Dataset {
        lake: Lake,
        /// `prefix/` inside the lake ("" for its root).
        folder: String,
        format: FileFormat,
    },
}

#[derive(Debug, Clone)]
pub enum FilePlace {
    Local(PathBuf),
    Remote { lake: Lake, key: String },
}

impl OutputTarget {
    /// Reads `spec`: a name ending in .csv/.parquet/.ndjson (.json, .jsonl) is one file; a
    /// path ending in `/`, an existing folder, or a name without an extension is a dataset
    /// folder. Like an input, a relative path that does not exist here is a prefix of the data
    /// dir's lake, so `--input` and `millrace query` find it under the same name.
    pub fn parse(
        data_dir: &Path,
        spec: &str,
        format: Option<FileFormat>,
        s3: &S3Options,
    ) -> anyhow::Result<Self> {
        let mut fresh = None;
        let output = Output::parse(data_dir, spec, format, s3, &mut fresh)?;
        Ok(Self { output, fresh })
    }

    /// Where it is, for messages.
    pub fn display(&self) -> String {
        match &self.output {
            Output::File { spec, .. } => spec.clone(),
            Output::Dataset { lake, folder, .. } => format!("{}/{folder}", lake.url()),
        }
    }

    /// Removes the folders this run created, if they are empty (after a failure).
    pub fn remove_fresh_dirs(&self) {
        let Some((deepest, top)) = &self.fresh else {
            return;
        };
        let mut dir = Some(deepest.as_path());
        while let Some(d) = dir {
            if !d.starts_with(top) || std::fs::remove_dir(d).is_err() {
                return;
            }
            dir = d.parent();
        }
    }
}

/// `(dir, the topmost missing folder of dir)` when `dir` does not exist yet.
fn missing(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let dir = std::path::absolute(dir).ok()?;
    let mut top = None;
    let mut d = Some(dir.as_path());
    while let Some(p) = d.filter(|p| !p.exists()) {
        top = Some(p.to_path_buf());
        d = p.parent();
    }
    top.map(|t| (dir.clone(), t))
}

impl Output {
    fn parse(
        data_dir: &Path,
        spec: &str,
        format: Option<FileFormat>,
        s3: &S3Options,
        fresh: &mut Option<(PathBuf, PathBuf)>,
    ) -> anyhow::Result<Self> {
        let local = spec.strip_prefix("file://").unwrap_or(spec);
        let is_s3 = spec.starts_with("s3://");
        let last = spec.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        let folder_like = spec.ends_with('/') || (!is_s3 && Path::new(local).is_dir());
        if !folder_like && last.contains('.') {
            let Some(named) = FileFormat::from_name(last) else {
                bail!(
                    "{spec}: name the output .parquet, .csv or .ndjson so the format is clear, \
                     or give a folder (ending in /) for part files and a manifest"
                );
            };
            if let Some(f) = format.filter(|f| *f != named) {
                bail!(
                    "--format {} does not match the output name {spec}",
                    f.extension()
                );
            }
            let place = match spec.strip_prefix("s3://") {
                Some(rest) => {
                    let Some((bucket, key)) = rest.split_once('/') else {
                        bail!("{spec}: expected s3://bucket/key");
                    };
                    FilePlace::Remote {
                        lake: Lake::open(&format!("s3://{bucket}"), s3)?,
                        key: key.to_owned(),
                    }
                }
                None => {
                    let path = PathBuf::from(local);
                    *fresh = path
                        .parent()
                        .filter(|d| !d.as_os_str().is_empty())
                        .and_then(missing);
                    FilePlace::Local(path)
                }
            };
            return Ok(Self::File {
                spec: spec.to_owned(),
                format: named,
                place,
            });
        }
        let format = format.unwrap_or(FileFormat::Parquet);
        if let Some(rest) = spec.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let prefix = prefix.trim_matches('/');
            return Ok(Self::Dataset {
                lake: Lake::open(&format!("s3://{bucket}"), s3)?,
                folder: if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                },
                format,
            });
        }
        let path = Path::new(local);
        let explicit = path.is_absolute()
            || path.exists()
            || local.starts_with("./")
            || local.starts_with("../");
        if explicit {
            *fresh = missing(path);
            let lake = Lake::open(local.trim_end_matches('/'), s3)
                .with_context(|| format!("--output {spec}"))?;
            return Ok(Self::Dataset {
                lake,
                folder: String::new(),
                format,
            });
        }
        let lake_dir = DataDir::new(data_dir).lake();
        *fresh = missing(&lake_dir.join(local.trim_matches('/')));
        let lake = Lake::open(&lake_dir.display().to_string(), s3)?;
        Ok(Self::Dataset {
            lake,
            folder: format!("{}/", local.trim_matches('/')),
            format,
        })
    }
}

/// What a batch run records in a dataset's manifest beside prep's fields.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TransformInfo {
    pub model: String,
    pub model_version: u32,
    pub model_path: String,
    /// `--input` as given.
    pub input: String,
    pub chunk_rows: usize,
    pub rows: u64,
    pub started_at: String,
    pub started_at_ms: i64,
    pub finished_at: String,
    pub finished_at_ms: i64,
    pub seconds: f64,
    pub rows_per_second: f64,
}

/// What a batch-transform manifest adds to prep's (so prep's readers and `millrace query` read
/// the folder through it): the model and timing.
#[derive(serde::Serialize)]
struct TransformExtension<'a> {
    transform: &'a TransformInfo,
}

/// A sink that scored batches are written into, in order; nothing is visible at the target
/// until `finish` (a file is renamed into place or its upload completed; a dataset's manifest
/// is committed), and `abort` removes what was written.
pub enum Sink {
    File(FileSink),
    Dataset(DatasetSink),
}

impl Sink {
    pub fn open(target: &OutputTarget, schema: SchemaRef) -> anyhow::Result<Self> {
        let handle = tokio::runtime::Handle::current();
        Ok(match &target.output {
            Output::File { format, place, .. } => {
                Self::File(FileSink::open(*format, place, schema, handle)?)
            }
            Output::Dataset {
                lake,
                folder,
                format,
            } => Self::Dataset(DatasetSink {
                dataset: DatasetWriter::new(
                    lake.clone(),
                    folder.clone(),
                    millrace_prep::dataset::run_id(),
                ),
                format: *format,
                part_rows: usize::MAX,
                schema,
                current: None,
                handle,
            }),
        })
    }

    /// Rows per part file of a dataset (ignored for a file).
    pub fn with_part_rows(mut self, rows: usize) -> Self {
        if let Self::Dataset(d) = &mut self {
            d.part_rows = rows.max(1);
        }
        self
    }

    /// Blocking: runs on a writer thread.
    pub fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        match self {
            Self::File(f) => f.write(batch),
            Self::Dataset(d) => d.write(batch),
        }
    }

    /// Blocking: makes the output visible (renames the file, completes the upload, or commits
    /// the dataset's manifest and removes the parts it replaces).
    pub fn finish(self, info: &TransformInfo, inputs: &[InputObject]) -> anyhow::Result<()> {
        match self {
            Self::File(f) => f.finish(),
            Self::Dataset(d) => d.finish(info, inputs),
        }
    }

    /// Blocking: removes everything written so far; best effort.
    pub fn abort(self) {
        match self {
            Self::File(f) => f.abort(),
            Self::Dataset(d) => d.abort(),
        }
    }
}

/// Encoded bytes on their way out: a local temporary file, or a buffer drained into an S3
/// multipart upload after every batch.
enum FileBytes {
    Local(std::io::BufWriter<std::fs::File>),
    /// Shared with the sink, which drains it (CSV writers do not lend their output).
    Remote(Arc<std::sync::Mutex<Vec<u8>>>),
}

impl Write for FileBytes {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Local(w) => w.write(buf),
            Self::Remote(v) => {
                v.lock().expect("buffer lock").extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Local(w) => w.flush(),
            Self::Remote(_) => Ok(()),
        }
    }
}

pub struct FileSink {
    encoder: Option<OutputEncoder<FileBytes>>,
    dest: FileDest,
    handle: tokio::runtime::Handle,
}

enum FileDest {
    Local {
        path: PathBuf,
        tmp: PathBuf,
    },
    Remote {
        spec: String,
        buffer: Arc<std::sync::Mutex<Vec<u8>>>,
        upload: Option<object_store::WriteMultipart>,
    },
}

impl FileSink {
    fn open(
        format: FileFormat,
        place: &FilePlace,
        schema: SchemaRef,
        handle: tokio::runtime::Handle,
    ) -> anyhow::Result<Self> {
        let (bytes, dest) = match place {
            FilePlace::Local(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                let tmp = temp_path(path);
                let f = std::fs::File::create(&tmp)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                (
                    FileBytes::Local(std::io::BufWriter::with_capacity(1 << 20, f)),
                    FileDest::Local {
                        path: path.clone(),
                        tmp,
                    },
                )
            }
            FilePlace::Remote { lake, key } => {
                let spec = format!("{}/{key}", lake.url());
                let store = lake.store();
                let location = lake.path(key);
                let upload = handle
                    .block_on(object_store::ObjectStoreExt::put_multipart(
                        store.as_ref(),
                        &location,
                    ))
                    .with_context(|| format!("starting the upload of {spec}"))?;
                let buffer = Arc::new(std::sync::Mutex::new(Vec::new()));
                (
                    FileBytes::Remote(buffer.clone()),
                    FileDest::Remote {
                        spec,
                        buffer,
                        upload: Some(object_store::WriteMultipart::new(upload)),
                    },
                )
            }
        };
        let mut sink = Self {
            encoder: None,
            dest,
            handle,
        };
        match OutputEncoder::new(format, schema, bytes) {
            Ok(e) => sink.encoder = Some(e),
            Err(e) => {
                sink.abort();
                return Err(e);
            }
        }
        Ok(sink)
    }

    fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        let enc = self.encoder.as_mut().context("output already closed")?;
        enc.write(batch)?;
        if let FileDest::Remote {
            spec,
            buffer,
            upload: Some(upload),
        } = &mut self.dest
        {
            let bytes = std::mem::take(&mut *buffer.lock().expect("buffer lock"));
            if !bytes.is_empty() {
                upload.put(Bytes::from(bytes));
                self.handle
                    .block_on(upload.wait_for_capacity(2))
                    .with_context(|| format!("uploading {spec}"))?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        let enc = self.encoder.take().context("output already closed")?;
        let bytes = match enc.finish() {
            Ok(b) => b,
            Err(e) => {
                self.abort();
                return Err(e);
            }
        };
        let result = match (&mut self.dest, bytes) {
            (FileDest::Local { path, tmp }, FileBytes::Local(w)) => {
                commit_local(w, tmp, path).with_context(|| format!("writing {}", path.display()))
            }
            (
                FileDest::Remote {
                    spec,
                    buffer,
                    upload,
                },
                FileBytes::Remote(_),
            ) => {
                let mut upload = upload.take().context("upload already closed")?;
                let rest = std::mem::take(&mut *buffer.lock().expect("buffer lock"));
                upload.put(Bytes::from(rest));
                self.handle
                    .block_on(upload.finish())
                    .map(|_| ())
                    .with_context(|| format!("uploading {spec}"))
            }
            _ => unreachable!("a sink's bytes go where its destination is"),
        };
        if result.is_err() {
            self.abort();
        }
        result
    }

    fn abort(mut self) {
        self.encoder = None;
        match &mut self.dest {
            FileDest::Local { tmp, .. } => {
                let _ = std::fs::remove_file(&*tmp);
            }
            FileDest::Remote { upload, .. } => {
                if let Some(u) = upload.take() {
                    let _ = self.handle.block_on(u.abort());
                }
            }
        }
    }
}

/// flush → fsync → rename over the destination → fsync the folder.
fn commit_local(
    w: std::io::BufWriter<std::fs::File>,
    tmp: &Path,
    path: &Path,
) -> anyhow::Result<()> {
    let f = w.into_inner().map_err(|e| e.into_error())?;
    millrace_common::durable::commit(f, tmp, path)
        .with_context(|| format!("writing {}", path.display()))
}

/// Scored batches cut into parts of `part_rows` rows, encoded here and put and committed by
/// prep's dataset writer.
pub struct DatasetSink {
    dataset: DatasetWriter,
    format: FileFormat,
    part_rows: usize,
    schema: SchemaRef,
    /// The part being encoded and its rows.
    current: Option<(OutputEncoder<Vec<u8>>, usize)>,
    handle: tokio::runtime::Handle,
}

impl DatasetSink {
    fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        let mut offset = 0;
        loop {
            if self.current.is_none() {
                self.current = Some((
                    OutputEncoder::new(self.format, self.schema.clone(), Vec::new())?,
                    0,
                ));
            }
            let Some((enc, rows)) = self.current.as_mut() else {
                unreachable!("a part is open")
            };
            let take = (self.part_rows - *rows).min(batch.num_rows() - offset);
            if take > 0 {
                enc.write(&batch.slice(offset, take))?;
                *rows += take;
                offset += take;
            }
            if *rows == self.part_rows {
                self.put_part()?;
            }
            if offset == batch.num_rows() {
                return Ok(());
            }
        }
    }

    /// Encodes the open part's footer and puts it under its final name. Not yet part of the
    /// dataset: only the manifest makes it so.
    fn put_part(&mut self) -> anyhow::Result<()> {
        let Some((enc, rows)) = self.current.take() else {
            return Ok(());
        };
        let bytes = enc.finish()?;
        let ext = self.format.extension();
        let key = self.dataset.next_key("", ext);
        let d = &mut self.dataset;
        let place = format!("{}/{}{key}", d.lake().url(), d.folder());
        self.handle
            .block_on(d.put_part("", ext, bytes, rows as u64))
            .with_context(|| format!("writing {place}"))?;
        Ok(())
    }

    fn finish(mut self, info: &TransformInfo, inputs: &[InputObject]) -> anyhow::Result<()> {
        let result = self.commit(info, inputs);
        if result.is_err() {
            self.abort();
        }
        result
    }

    fn commit(&mut self, info: &TransformInfo, inputs: &[InputObject]) -> anyhow::Result<()> {
        // The last part; an empty result is still a dataset with a schema.
        let open_rows = self.current.as_ref().map_or(0, |(_, r)| *r);
        if open_rows > 0 || self.dataset.files().is_empty() {
            if self.current.is_none() {
                self.current = Some((
                    OutputEncoder::new(self.format, self.schema.clone(), Vec::new())?,
                    0,
                ));
            }
            self.put_part()?;
        }
        let d = &mut self.dataset;
        let previous = self
            .handle
            .block_on(Manifest::latest(d.lake(), d.folder()))
            .ok()
            .flatten();
        let files = d.files().to_vec();
        let rows = files.iter().map(|f| f.rows).sum();
        let m = Manifest {
            format_version: 1,
            dataset: format!("{}/{}", d.lake().url(), d.folder().trim_end_matches('/')),
            run_id: d.run_id().to_owned(),
            previous_run_id: previous.map(|p| p.run_id),
            job: None,
            mode: "overwrite".into(),
            created_at: info.finished_at.clone(),
            created_at_ms: info.finished_at_ms,
            statements: Vec::new(),
            query: String::new(),
            inputs: [("input".to_owned(), inputs.to_vec())].into(),
            run_inputs: [("input".to_owned(), inputs.len())].into(),
            files,
            rows,
            run_rows: rows,
            partition_by: Vec::new(),
            bad_records: Vec::new(),
            bad_record_count: 0,
        };
        self.handle
            .block_on(d.commit_with(&m, &TransformExtension { transform: info }))?;
        Ok(())
    }

    fn abort(self) {
        self.handle.block_on(self.dataset.abort());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(ids: &[&str]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("p", DataType::Float64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(ids.to_vec())),
                Arc::new(Float64Array::from(vec![0.5; ids.len()])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn output_specs() {
        let dir = tempfile::tempdir().unwrap();
        let s3 = S3Options::default();
        let parse = |s: &str| OutputTarget::parse(dir.path(), s, None, &s3);
        assert!(matches!(
            parse("out/scored.csv").unwrap().output,
            Output::File {
                format: FileFormat::Csv,
                ..
            }
        ));
        let abs = dir.path().join("x/");
        match parse(&abs.display().to_string()).unwrap().output {
            Output::Dataset { folder, format, .. } => {
                assert_eq!((folder.as_str(), format), ("", FileFormat::Parquet));
            }
            other => panic!("{other:?}"),
        }
        match parse("scored/churn").unwrap().output {
            Output::Dataset { lake, folder, .. } => {
                assert_eq!(folder, "scored/churn/");
                assert!(lake.url().ends_with("/lake"), "{}", lake.url());
            }
            other => panic!("{other:?}"),
        }
        let nested = dir.path().join("a/b/c/");
        let t = parse(&nested.display().to_string()).unwrap();
        assert!(nested.is_dir());
        t.remove_fresh_dirs();
        assert!(!dir.path().join("a").exists() && dir.path().is_dir());
        assert!(
            parse("scored.txt")
                .unwrap_err()
                .to_string()
                .contains(".parquet, .csv or .ndjson")
        );
        let e = OutputTarget::parse(dir.path(), "a.csv", Some(FileFormat::Parquet), &s3);
        assert!(e.unwrap_err().to_string().contains("--format parquet"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_s3_file_is_uploaded_in_parts_and_aborted_cleanly() {
        let lake = Lake::open("memory://", &S3Options::default()).unwrap();
        let place = FilePlace::Remote {
            lake: lake.clone(),
            key: "out/s.csv".into(),
        };
        let target = OutputTarget {
            output: Output::File {
                spec: "s3://b/out/s.csv".into(),
                format: FileFormat::Csv,
                place,
            },
            fresh: None,
        };
        let l2 = lake.clone();
        tokio::task::spawn_blocking(move || {
            let mut sink = Sink::open(&target, batch(&[]).schema()).unwrap();
            sink.write(&batch(&["a", "b"])).unwrap();
            sink.write(&batch(&["c"])).unwrap();
            let listed = tokio::runtime::Handle::current().block_on(l2.list("out/"));
            assert!(listed.unwrap().is_empty(), "nothing visible before finish");
            let info = test_info();
            sink.finish(&info, &[]).unwrap();
            let mut sink = Sink::open(&target, batch(&[]).schema()).unwrap();
            sink.write(&batch(&["z"])).unwrap();
            sink.abort();
        })
        .await
        .unwrap();
        let got = lake.get("out/s.csv").await.unwrap();
        assert_eq!(&got[..], b"id,p\na,0.5\nb,0.5\nc,0.5\n");
    }

    fn test_info() -> TransformInfo {
        TransformInfo {
            model: "m".into(),
            model_version: 1,
            model_path: "m.json".into(),
            input: "in.csv".into(),
            chunk_rows: 2,
            rows: 0,
            started_at: String::new(),
            started_at_ms: 0,
            finished_at: String::new(),
            finished_at_ms: 0,
            seconds: 0.0,
            rows_per_second: 0.0,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dataset_rolls_parts_commits_last_and_replaces_the_old_version() {
        let dir = tempfile::tempdir().unwrap();
        let target = OutputTarget::parse(
            dir.path(),
            &format!("{}/", dir.path().join("out").display()),
            Some(FileFormat::Csv),
            &S3Options::default(),
        )
        .unwrap();
        let out = dir.path().join("out");
        let t = target.clone();
        let o = out.clone();
        tokio::task::spawn_blocking(move || {
            let mut sink = Sink::open(&t, batch(&[]).schema())
                .unwrap()
                .with_part_rows(2);
            sink.write(&batch(&["a", "b", "c"])).unwrap();
            sink.write(&batch(&["d", "e"])).unwrap();
            assert!(!o.join("_manifest.json").exists(), "manifest comes last");
            sink.finish(&test_info(), &[]).unwrap();
            // A failed run leaves the committed version as it was.
            let mut sink = Sink::open(&t, batch(&[]).schema())
                .unwrap()
                .with_part_rows(1);
            sink.write(&batch(&["x", "y"])).unwrap();
            sink.abort();
        })
        .await
        .unwrap();
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).unwrap()).unwrap();
        assert_eq!(m["rows"], 5);
        let rows: Vec<u64> = m["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rows"].as_u64().unwrap())
            .collect();
        assert_eq!(rows, [2, 2, 1]);
        assert_eq!(m["transform"]["model"], "m");
        let parts = |d: &Path| {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.starts_with("part-"))
                .collect();
            v.sort();
            v
        };
        assert_eq!(parts(&out).len(), 3);
        // A second run replaces the first one's parts once its manifest is in.
        let t = target.clone();
        tokio::task::spawn_blocking(move || {
            let mut sink = Sink::open(&t, batch(&[]).schema()).unwrap();
            sink.write(&batch(&["q"])).unwrap();
            sink.finish(&test_info(), &[]).unwrap();
        })
        .await
        .unwrap();
        assert_eq!(parts(&out).len(), 1);
        let m2: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).unwrap()).unwrap();
        assert_eq!(m2["previous_run_id"], m["run_id"]);
        assert_eq!(m2["rows"], 1);
    }
}
