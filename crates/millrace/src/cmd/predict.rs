//! `millrace predict`: batch transform. Scores a file, folder, lake prefix or s3:// URL with a
//! saved model and writes one output row per input row, in input order, to a file or a lake
//! folder committed by a manifest.
//!
//! Three stages joined by bounded channels, so memory holds a few chunks whatever the input's
//! size: a reader (a blocking CSV reader, or a DataFusion stream) cuts the input into frames of
//! `--chunk-rows` rows; scorer threads run `ModelArtifact::predict` on them (the code the
//! endpoint runs); one writer thread puts the scored chunks back in order and encodes them
//! into the output. The output becomes visible only when everything succeeded.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use millrace_automl::Task;
use millrace_automl::explain::Detail;
use millrace_automl::model::ModelArtifact;
use millrace_common::time::{now_ms, rfc3339};
use millrace_serve::checks::{Expected, Findings, InputChecks};
use millrace_wrangle::{Column, Frame};
use tokio::sync::mpsc;

use crate::cmd::data_io::{self, FileFormat, OutputTarget, ReadProgress, Sink, TransformInfo};

use crate::cli::S3Args;
use clap::{Args, ValueEnum};

/// The format of a folder output's part files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PartFormat {
    Parquet,
    Csv,
    Ndjson,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// NAME (latest version), NAME:vN, or a model folder / model.json path.
    #[arg(long)]
    pub model: String,
    /// Rows to score: CSV, Parquet or JSON, a folder, a lake prefix or an s3:// URL.
    #[arg(long, value_name = "FILE_OR_URL")]
    pub input: String,
    /// Where to write: a .csv, .parquet or .ndjson file, or a folder / lake prefix / s3://
    /// prefix (ending in /) for part files and a manifest.
    #[arg(long, value_name = "FILE_OR_FOLDER")]
    pub output: String,
    /// Format of the part files of a folder output (a file's name gives its own).
    #[arg(long, value_enum)]
    pub format: Option<PartFormat>,
    /// Rows read and scored at a time (memory holds a few chunks per core; larger chunks
    /// are not faster).
    #[arg(long, default_value_t = 4096)]
    pub chunk_rows: usize,
    /// Rows per part file of a folder output.
    #[arg(long, default_value_t = 1_000_000)]
    pub part_rows: usize,
    /// Also explain each prediction: adds `base_value` and `contributions`, a JSON object from
    /// input column to its contribution to the model's margin (log-odds for binary, the
    /// predicted class's log-probability score for multiclass, the value for regression): the K
    /// largest by magnitude, or every input column with `all`. base_value plus the
    /// contributions is the margin. Exact TreeSHAP for trees, exact for linear models.
    #[arg(long, value_name = "K|all")]
    pub explain: Option<millrace_automl::explain::Detail>,
    /// A row missing or unreadable in more than this share of the model's inputs gets no
    /// prediction, only an `error` naming the fields. Every row's `warnings` column says what
    /// was read as missing, unknown categories and columns the model does not read.
    #[arg(long, default_value_t = 0.5, value_name = "SHARE")]
    pub max_missing: f64,
    /// Refuse rows with a value that would be coerced (text where a number is read).
    #[arg(long)]
    pub strict: bool,
    /// Scoring threads (0: one per core).
    #[arg(long, default_value_t = 0, hide = true)]
    pub threads: usize,
    /// No progress bar and no closing line (the console's batch prediction).
    #[arg(long, hide = true)]
    pub quiet: bool,
    #[command(flatten)]
    pub s3: S3Args,
}

impl PredictArgs {
    /// The arguments `millrace predict --model MODEL --input INPUT --output OUTPUT` would
    /// have, every other flag at its default: one place for the defaults.
    pub fn for_files(model: &str, input: &Path, output: &Path) -> anyhow::Result<PredictArgs> {
        use clap::FromArgMatches;
        let command = <PredictArgs as Args>::augment_args(clap::Command::new("predict"));
        let matches = command.try_get_matches_from([
            "predict".as_ref(),
            "--model".as_ref(),
            model.as_ref(),
            "--input".as_ref(),
            input.as_os_str(),
            "--output".as_ref(),
            output.as_os_str(),
            "--quiet".as_ref(),
        ] as [&std::ffi::OsStr; 8])?;
        Ok(PredictArgs::from_arg_matches(&matches)?)
    }
}

pub async fn run(data_dir: &Path, args: PredictArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let started_ms = now_ms();
    anyhow::ensure!(args.chunk_rows >= 1, "--chunk-rows must be at least 1");
    anyhow::ensure!(args.part_rows >= 1, "--part-rows must be at least 1");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.max_missing),
        "--max-missing {}: must be a share between 0 and 1",
        args.max_missing
    );
    // A bare NAME is the production version (the latest when none is promoted).
    let registry = crate::registry::open(data_dir);
    let (file, name, version) = registry.resolve(&args.model)?;
    let (model, _) = registry.load(&args.model)?;
    let model = Arc::new(model);
    let s3 = args.s3.options();
    let format = args.format.map(|f| match f {
        PartFormat::Parquet => FileFormat::Parquet,
        PartFormat::Csv => FileFormat::Csv,
        PartFormat::Ndjson => FileFormat::Ndjson,
    });
    let target = OutputTarget::parse(data_dir, &args.output, format, &s3)
        .with_context(|| format!("--output {}", args.output))?;
    let model_path = file.canonicalize().unwrap_or(file).display().to_string();
    let result = transform(
        data_dir,
        &args,
        &s3,
        &target,
        model,
        (&name, version, model_path),
        (started, started_ms),
    )
    .await;
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => {
            target.remove_fresh_dirs();
            return Err(e);
        }
    };
    let secs = started.elapsed().as_secs_f64();
    if args.quiet {
        return Ok(());
    }
    eprintln!(
        "scored {rows} rows with {name} v{version} in {secs:.2} s ({:.0} rows/s) → {}",
        rows as f64 / secs.max(1e-9),
        target.display()
    );
    Ok(())
}

/// Reads, scores and writes; the output is committed when this returns `Ok(rows)` and
/// removed when it returns an error.
async fn transform(
    data_dir: &Path,
    args: &PredictArgs,
    s3: &millrace_lake::S3Options,
    target: &OutputTarget,
    model: Arc<ModelArtifact>,
    (name, version, model_path): (&str, u32, String),
    (started, started_ms): (Instant, i64),
) -> anyhow::Result<u64> {
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let input = data_io::open_chunks(data_dir, &args.input, s3, args.chunk_rows, 2).await?;
    let data_io::InputChunks {
        chunks,
        reader,
        progress,
        objects,
    } = input;

    // Scorers share the chunk queue; each scored chunk goes to the writer with its number.
    let chunks = Arc::new(Mutex::new(chunks));
    let (scored_tx, scored_rx) = mpsc::channel::<(u64, anyhow::Result<RecordBatch>)>(threads + 1);
    let mut scorers = Vec::new();
    // What the model reads, worked out once for every chunk's input checks.
    let expected = Arc::new(Expected::for_model(&model));
    for _ in 0..threads {
        let chunks = chunks.clone();
        let expected = expected.clone();
        let tx = scored_tx.clone();
        let model = model.clone();
        let chunk_rows = args.chunk_rows;
        let explain = args.explain;
        let checks = InputChecks {
            max_missing: args.max_missing,
            strict: args.strict,
        };
        scorers.push(tokio::task::spawn_blocking(move || {
            loop {
                let next = chunks.lock().expect("queue lock").blocking_recv();
                let Some((seq, frame)) = next else { return };
                let first = seq * chunk_rows as u64 + 1;
                let scored =
                    score(&model, &frame, explain, (&expected, checks)).with_context(|| {
                        format!(
                            "scoring input rows {first}–{}",
                            first + frame.rows() as u64 - 1
                        )
                    });
                let failed = scored.is_err();
                if tx.blocking_send((seq, scored)).is_err() || failed {
                    return;
                }
            }
        }));
    }
    drop(scored_tx);
    // Only the scorers hold the queue now: when they stop, the reader's sends fail and it stops.
    drop(chunks);

    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let target = target.clone();
        let written = written.clone();
        let part_rows = args.part_rows;
        tokio::task::spawn_blocking(move || write_in_order(scored_rx, &target, part_rows, &written))
    };
    let bar = (!args.quiet).then(|| Bar::start(progress, written.clone()));

    let (sink, write_result) = writer.await?;
    let mut scorer_result = Ok(());
    for s in scorers {
        if let Err(e) = s.await {
            scorer_result = Err(anyhow::anyhow!("a scoring thread failed: {e}"));
        }
    }
    let read_result = reader.await.context("the reader failed");
    if let Some(bar) = bar {
        bar.finish();
    }
    // The first cause wins: a scoring or writing error stops the reader, not the reverse.
    let outcome = match (write_result, scorer_result, read_result) {
        (Err(e), _, _) | (Ok(_), Err(e), _) => Err(e),
        (Ok(_), Ok(()), Err(e)) | (Ok(_), Ok(()), Ok(Err(e))) => {
            Err(e.context(format!("--input {}", args.input)))
        }
        (Ok(done), Ok(()), Ok(Ok(sent))) if done != sent => Err(anyhow::anyhow!(
            "scored {done} of {sent} chunks; the output was not written"
        )),
        (Ok(_), Ok(()), Ok(Ok(_))) => Ok(()),
    };
    let rows = written.load(Ordering::Relaxed);
    let Some(sink) = sink else {
        // Nothing was opened, so nothing is left behind.
        return Err(outcome
            .err()
            .unwrap_or_else(|| anyhow::anyhow!("the reader sent nothing to write")));
    };
    if let Err(e) = outcome {
        tokio::task::spawn_blocking(move || sink.abort()).await?;
        return Err(e);
    }
    let secs = started.elapsed().as_secs_f64();
    let finished_ms = now_ms();
    let rate = rows as f64 / secs.max(1e-9);
    let info = TransformInfo {
        model: name.to_owned(),
        model_version: version,
        model_path,
        input: args.input.clone(),
        chunk_rows: args.chunk_rows,
        rows,
        started_at: rfc3339(started_ms),
        started_at_ms: started_ms,
        finished_at: rfc3339(finished_ms),
        finished_at_ms: finished_ms,
        seconds: secs,
        rows_per_second: rate,
    };
    tokio::task::spawn_blocking(move || sink.finish(&info, &objects))
        .await?
        .with_context(|| format!("--output {}", args.output))?;
    Ok(rows)
}

/// The writer thread: scored chunks arrive in any order from the scorers and are written in
/// input order. Returns the sink (to finish or abort; `None` if nothing arrived) and the
/// number of chunks written.
fn write_in_order(
    mut rx: mpsc::Receiver<(u64, anyhow::Result<RecordBatch>)>,
    target: &OutputTarget,
    part_rows: usize,
    written: &AtomicU64,
) -> (Option<Sink>, anyhow::Result<u64>) {
    let mut sink: Option<Sink> = None;
    let mut waiting: BTreeMap<u64, RecordBatch> = BTreeMap::new();
    let mut next = 0u64;
    while let Some((seq, scored)) = rx.blocking_recv() {
        let batch = match scored {
            Ok(b) => b,
            Err(e) => return (sink, Err(e)),
        };
        waiting.insert(seq, batch);
        while let Some(batch) = waiting.remove(&next) {
            if sink.is_none() {
                match Sink::open(target, batch.schema()) {
                    Ok(s) => sink = Some(s.with_part_rows(part_rows)),
                    Err(e) => return (None, Err(e)),
                }
            }
            if let Some(s) = sink.as_mut()
                && let Err(e) = s.write(&batch)
            {
                return (
                    sink,
                    Err(e.context(format!("writing {}", target.display()))),
                );
            }
            written.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            next += 1;
        }
    }
    (sink, Ok(next))
}

/// Scores one chunk: the input's ID columns, then the model's outputs.
fn score(
    model: &ModelArtifact,
    frame: &Frame,
    explain: Option<Detail>,
    (expected, checks): (&Expected, InputChecks),
) -> anyhow::Result<RecordBatch> {
    let (p, explanations) = match explain {
        Some(_) => {
            let (p, e) = model.explain(frame)?;
            (p, Some(e))
        }
        None => (model.predict(frame)?, None),
    };
    // What each row's values were read as; a refused row gets no prediction, only its error.
    let findings: Vec<Findings> = (0..frame.rows())
        .map(|r| expected.check_row(frame, r, checks))
        .collect();
    let kept = |i: usize| findings[i].refused.is_none();
    let numbers = |v: Vec<f64>| -> ArrayRef {
        Arc::new(Float64Array::from(
            v.into_iter()
                .enumerate()
                .map(|(i, x)| kept(i).then_some(x))
                .collect::<Vec<_>>(),
        ))
    };
    let texts = |v: Vec<String>| -> ArrayRef {
        Arc::new(StringArray::from(
            v.into_iter()
                .enumerate()
                .map(|(i, x)| kept(i).then_some(x))
                .collect::<Vec<_>>(),
        ))
    };
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for id in &model.id_columns {
        if let Some(col) = frame.column(id) {
            let values: Vec<Option<String>> = match col {
                Column::Str(v) => v.clone(),
                Column::Num(v) => v
                    .iter()
                    .map(|x| millrace_wrangle::frame::format_num(*x))
                    .collect(),
            };
            fields.push(Field::new(id, DataType::Utf8, true));
            arrays.push(Arc::new(StringArray::from(values)));
        }
    }
    match &model.task {
        Task::Regression => {
            fields.push(Field::new("prediction", DataType::Float64, true));
            arrays.push(numbers(p.values.clone()));
        }
        Task::Binary { .. } => {
            fields.push(Field::new("predicted_label", DataType::Utf8, true));
            arrays.push(texts(p.labels(model)));
            fields.push(Field::new("probability", DataType::Float64, true));
            arrays.push(numbers(p.values.clone()));
        }
        Task::Multiclass { classes } => {
            fields.push(Field::new("predicted_label", DataType::Utf8, true));
            arrays.push(texts(p.labels(model)));
            for (j, c) in classes.iter().enumerate() {
                fields.push(Field::new(
                    format!("probability_{c}"),
                    DataType::Float64,
                    true,
                ));
                arrays.push(numbers(
                    (0..p.rows).map(|i| p.values[i * p.width + j]).collect(),
                ));
            }
        }
    }
    if let (Some(explanations), Some(detail)) = (explanations, explain) {
        fields.push(Field::new("base_value", DataType::Float64, true));
        arrays.push(numbers(explanations.iter().map(|e| e.base_value).collect()));
        fields.push(Field::new("contributions", DataType::Utf8, true));
        arrays.push(texts(
            explanations
                .iter()
                .map(|e| e.to_json(&model.task, detail)["contributions"].to_string())
                .collect(),
        ));
    }
    fields.push(Field::new("warnings", DataType::Utf8, true));
    arrays.push(Arc::new(StringArray::from(
        findings
            .iter()
            .map(|f| (!f.warnings.is_empty()).then(|| serde_json::json!(f.warnings).to_string()))
            .collect::<Vec<_>>(),
    )));
    fields.push(Field::new("error", DataType::Utf8, true));
    arrays.push(Arc::new(StringArray::from(
        findings
            .iter()
            .map(|f| f.refused.clone())
            .collect::<Vec<_>>(),
    )));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// Input bytes read, rows scored and rows/s on stderr (hidden when it is not a terminal).
struct Bar {
    bar: indicatif::ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Bar {
    fn start(progress: ReadProgress, rows: Arc<AtomicU64>) -> Self {
        let bar = indicatif::ProgressBar::new(progress.bytes_total());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} scoring [{bar:30}] {bytes}/{total_bytes} read, {msg} {elapsed}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        let b = bar.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                let n = rows.load(Ordering::Relaxed);
                b.set_position(progress.bytes_read());
                b.set_message(format!(
                    "{n} rows scored, {:.0} rows/s",
                    n as f64 / started.elapsed().as_secs_f64().max(1e-3)
                ));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { bar, task }
    }

    fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
