//! Drift monitoring (SageMaker Model Monitor's data-quality check, in small): the last N scored
//! records of a model, kept as bucket counts per feature, compared with the training baseline
//! saved in the model (`millrace_automl::baseline`) by the population stability index.
//!
//! A [`DriftWindow`] sits on the scoring path: adding a record bins its values (no allocation
//! for a small batch) and then, under a mutex held for a few counter updates, evicts the
//! oldest record's buckets from a ring and adds the new ones — O(features) per record. A
//! [`DriftReport`] is computed on demand (`/metrics`, the periodic save) and saved atomically
//! to `<data-dir>/state/monitor/NAME.json`, where `millrace monitor NAME` reads it. Each save
//! also appends the features' PSI to `NAME.history.ndjson` (the console's drift-over-time
//! chart), trimmed to its newest half past [`HISTORY_BYTES`].

use millrace_common::layout::DataDir;
use millrace_common::time::now_ms;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use millrace_automl::baseline::{Baseline, psi};
use millrace_automl::model::ModelArtifact;
use millrace_wrangle::Frame;
use serde::{Deserialize, Serialize};

use crate::error::ServeError;
use crate::input::Record;

/// Records in the window unless configured otherwise.
pub const DEFAULT_WINDOW: usize = 1000;
/// Fewer records than this never count as drifting: a handful of records says little.
pub const DEFAULT_MIN_RECORDS: usize = 200;
/// PSI at or above this on any feature marks the model as drifting (the usual cut for a
/// significant shift; 0.1–0.2 is read as moderate).
pub const DEFAULT_THRESHOLD: f64 = 0.2;

/// How a window judges drift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftOptions {
    /// The most recent records kept (at least 1).
    pub window: usize,
    /// Records needed before the model can be flagged.
    pub min_records: usize,
    /// PSI at or above which a feature has drifted.
    pub threshold: f64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            window: DEFAULT_WINDOW,
            min_records: DEFAULT_MIN_RECORDS,
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

/// One feature's drift over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub feature: String,
    pub psi: f64,
    /// The bucket whose share moved most: its label, training share and window share.
    #[serde(default)]
    pub moved: Option<BucketShift>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketShift {
    pub bucket: String,
    pub expected: f64,
    pub actual: f64,
}

/// The window compared with the baseline at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub model: String,
    pub version: u32,
    /// When the report was made, in ms since the Unix epoch.
    pub at_ms: i64,
    /// The window's capacity.
    pub window: usize,
    /// Records in the window now (at most `window`).
    pub window_records: usize,
    /// Records observed since the window started (this version's first score).
    pub observed_records: u64,
    pub min_records: usize,
    pub threshold: f64,
    /// At least `min_records` records and some feature's PSI at or above `threshold`.
    pub drifting: bool,
    /// Every baseline feature, largest PSI first.
    pub features: Vec<FeatureDrift>,
}

impl DriftReport {
    /// The feature with the largest PSI.
    pub fn max(&self) -> Option<&FeatureDrift> {
        self.features.first()
    }

    /// `drifting: yes (max PSI 0.53 on MonthlyCharges, threshold 0.2, 1000 records)`.
    pub fn summary(&self) -> String {
        let max = match self.max() {
            Some(f) => format!("max PSI {:.3} on {}", f.psi, f.feature),
            None => "no features".to_owned(),
        };
        let few = if self.window_records < self.min_records {
            format!("; fewer than the {} needed to judge", self.min_records)
        } else {
            String::new()
        };
        format!(
            "drifting: {} ({max}, threshold {}, {} records{few})",
            if self.drifting { "yes" } else { "no" },
            self.threshold,
            self.window_records
        )
    }

    /// Writes the report to [`report_path`] atomically and durably (temporary file, fsync,
    /// rename, fsync of the folder): a reader sees the old report or the new one. Then appends
    /// its point to the history ([`DriftReport::history`]).
    pub fn save(&self, data_dir: &Path, name: &str) -> Result<PathBuf, ServeError> {
        let path = report_path(data_dir, name);
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| ServeError::Internal(format!("{}: {e}", path.display())))?;
        bytes.push(b'\n');
        millrace_common::durable::write_file(&path, &bytes).map_err(|e| io(&path, e))?;
        self.append_history(data_dir, name)?;
        Ok(path)
    }

    /// Appends this report's point to `NAME.history.ndjson` (fdatasync'd); past
    /// [`HISTORY_BYTES`] the file is replaced by its newer half.
    fn append_history(&self, data_dir: &Path, name: &str) -> Result<(), ServeError> {
        use std::io::Write;
        let path = history_path(data_dir, name);
        let point = DriftPoint {
            at_ms: self.at_ms,
            version: self.version,
            window_records: self.window_records,
            drifting: self.drifting,
            psi: self
                .features
                .iter()
                .map(|f| (f.feature.clone(), f.psi))
                .collect(),
        };
        let mut line = serde_json::to_vec(&point)
            .map_err(|e| ServeError::Internal(format!("{}: {e}", path.display())))?;
        line.push(b'\n');
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        file.write_all(&line).map_err(|e| io(&path, e))?;
        file.sync_data().map_err(|e| io(&path, e))?;
        let len = file.metadata().map_err(|e| io(&path, e))?.len();
        if len > HISTORY_BYTES {
            let text = fs::read(&path).map_err(|e| io(&path, e))?;
            let half = text.len() - text.len() / 2;
            let start = text[half..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(text.len(), |i| half + i + 1);
            millrace_common::durable::write_file(&path, &text[start..])
                .map_err(|e| io(&path, e))?;
        }
        Ok(())
    }

    /// The points saved for `name`, oldest first (an unreadable line is skipped).
    pub fn history(data_dir: &Path, name: &str) -> Result<Vec<DriftPoint>, ServeError> {
        let path = history_path(data_dir, name);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path, e)),
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// The report last saved for `name`, or `None` when there is none.
    pub fn load(data_dir: &Path, name: &str) -> Result<Option<DriftReport>, ServeError> {
        let path = report_path(data_dir, name);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ServeError::Corrupt {
                path: path.display().to_string(),
                problem: format!("not a drift report: {e}"),
            })
    }
}

/// Bytes of drift history kept per model (about 4,000 points of 20 features).
pub const HISTORY_BYTES: u64 = 4 << 20;

/// One saved report, as the history keeps it: every feature's PSI, largest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftPoint {
    pub at_ms: i64,
    pub version: u32,
    pub window_records: usize,
    pub drifting: bool,
    pub psi: Vec<(String, f64)>,
}

/// `<data-dir>/state/monitor/NAME.history.ndjson`.
pub fn history_path(data_dir: &Path, name: &str) -> PathBuf {
    DataDir::new(data_dir)
        .monitor_state()
        .join(format!("{name}.history.ndjson"))
}

/// `<data-dir>/state/monitor/NAME.json`.
pub fn report_path(data_dir: &Path, name: &str) -> PathBuf {
    DataDir::new(data_dir)
        .monitor_state()
        .join(format!("{name}.json"))
}

fn io(path: &Path, source: std::io::Error) -> ServeError {
    ServeError::Io {
        path: path.display().to_string(),
        source,
    }
}

struct State {
    /// `capacity × features` bucket indices, row-major; slot `next` is overwritten next.
    ring: Vec<u16>,
    len: usize,
    next: usize,
    /// Per feature, per bucket, records in the window (feature `j` starts at `offsets[j]`).
    counts: Vec<u64>,
    observed: u64,
    /// Records arrived since the last `take_changed`.
    changed: bool,
}

/// A sliding window over the last `options.window` scored records of one model version.
/// Thread-safe; share it by reference (it lives in the endpoint's loaded model).
pub struct DriftWindow {
    model: String,
    version: u32,
    baseline: Baseline,
    options: DriftOptions,
    offsets: Vec<usize>,
    state: Mutex<State>,
}

/// Small batches are binned into a buffer on the stack.
const STACK_BUCKETS: usize = 256;

impl DriftWindow {
    pub fn new(model: &str, version: u32, baseline: Baseline, options: DriftOptions) -> Self {
        let options = DriftOptions {
            window: options.window.max(1),
            ..options
        };
        let mut offsets = Vec::with_capacity(baseline.features.len());
        let mut total = 0;
        for f in &baseline.features {
            offsets.push(total);
            total += f.buckets();
        }
        let width = baseline.features.len();
        DriftWindow {
            model: model.to_owned(),
            version,
            state: Mutex::new(State {
                ring: vec![0; options.window * width],
                len: 0,
                next: 0,
                counts: vec![0; total],
                observed: 0,
                changed: false,
            }),
            baseline,
            options,
            offsets,
        }
    }

    /// A window for `model`, or `None` when it was trained before baselines existed.
    pub fn for_model(
        name: &str,
        version: u32,
        model: &ModelArtifact,
        options: DriftOptions,
    ) -> Option<Self> {
        model
            .baseline
            .as_ref()
            .map(|b| Self::new(name, version, b.clone(), options))
    }

    pub fn baseline(&self) -> &Baseline {
        &self.baseline
    }

    pub fn options(&self) -> DriftOptions {
        self.options
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds raw records (as the endpoint receives them) to the window.
    pub fn observe(&self, records: &[Record]) {
        let width = self.baseline.features.len();
        let n = records.len() * width;
        let mut stack = [0u16; STACK_BUCKETS];
        let mut heap = Vec::new();
        let buf: &mut [u16] = if n <= STACK_BUCKETS {
            &mut stack[..n]
        } else {
            heap.resize(n, 0);
            &mut heap
        };
        if width > 0 {
            for (r, out) in records.iter().zip(buf.chunks_exact_mut(width)) {
                self.baseline.bin_record_into(r, out);
            }
        }
        self.observe_buckets(buf, records.len());
    }

    /// Adds every row of `frame` (columns named as the model's input) to the window.
    pub fn observe_frame(&self, frame: &Frame) {
        let buckets = self.baseline.bin_frame(frame);
        self.observe_buckets(&buckets, frame.rows());
    }

    /// Adds `rows` records already binned by [`Baseline::bin_record_into`] or
    /// [`Baseline::bin_frame`] (row-major, one bucket per feature).
    pub fn observe_buckets(&self, buckets: &[u16], rows: usize) {
        let width = self.baseline.features.len();
        debug_assert_eq!(buckets.len(), rows * width);
        let cap = self.options.window;
        // Only the last `cap` rows can stay in the window.
        let skip = rows.saturating_sub(cap);
        let mut s = self.lock();
        s.observed += rows as u64;
        s.changed |= rows > 0;
        for r in skip..rows {
            let row = &buckets[r * width..(r + 1) * width];
            let slot = s.next * width;
            let State {
                ring, counts, len, ..
            } = &mut *s;
            if *len == cap {
                for (j, b) in ring[slot..slot + width].iter().enumerate() {
                    counts[self.offsets[j] + usize::from(*b)] -= 1;
                }
            } else {
                *len += 1;
            }
            for (j, b) in row.iter().enumerate() {
                counts[self.offsets[j] + usize::from(*b)] += 1;
            }
            ring[slot..slot + width].copy_from_slice(row);
            s.next = (s.next + 1) % cap;
        }
    }

    /// Whether records arrived since the last call (for periodic saving).
    pub fn take_changed(&self) -> bool {
        std::mem::take(&mut self.lock().changed)
    }

    /// The window against the baseline now.
    pub fn report(&self) -> DriftReport {
        let (counts, len, observed) = {
            let s = self.lock();
            (s.counts.clone(), s.len, s.observed)
        };
        let mut features: Vec<FeatureDrift> = self
            .baseline
            .features
            .iter()
            .zip(&self.offsets)
            .map(|(f, at)| {
                let c = &counts[*at..*at + f.buckets()];
                let total: u64 = c.iter().sum();
                let moved = (total > 0)
                    .then(|| {
                        f.expected
                            .iter()
                            .zip(c)
                            .enumerate()
                            .map(|(i, (e, n))| (i, *e, *n as f64 / total as f64))
                            .max_by(|a, b| (a.2 - a.1).abs().total_cmp(&(b.2 - b.1).abs()))
                    })
                    .flatten()
                    .map(|(i, expected, actual)| BucketShift {
                        bucket: f.bucket_labels().swap_remove(i),
                        expected,
                        actual,
                    });
                FeatureDrift {
                    feature: f.name.clone(),
                    psi: psi(&f.expected, c),
                    moved,
                }
            })
            .collect();
        features.sort_by(|a, b| b.psi.total_cmp(&a.psi).then(a.feature.cmp(&b.feature)));
        let drifting = len >= self.options.min_records
            && features
                .first()
                .is_some_and(|f| f.psi >= self.options.threshold);
        DriftReport {
            model: self.model.clone(),
            version: self.version,
            at_ms: now_ms(),
            window: self.options.window,
            window_records: len,
            observed_records: observed,
            min_records: self.options.min_records,
            threshold: self.options.threshold,
            drifting,
            features,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use millrace_wrangle::Column;
    use serde_json::json;

    /// A baseline of `x` uniform over 0..100 and `c` two thirds "a", one third "b".
    fn baseline() -> Baseline {
        let mut f = Frame::new(300);
        f.set(
            "x".into(),
            Column::Num((0..300).map(|i| f64::from(i % 100)).collect()),
        );
        f.set(
            "c".into(),
            Column::Str(
                (0..300)
                    .map(|i| Some(if i % 3 == 2 { "b" } else { "a" }.to_owned()))
                    .collect(),
            ),
        );
        Baseline::fit(&f, &[])
    }

    fn record(x: f64, c: &str) -> Record {
        json!({"x": x.to_string(), "c": c})
            .as_object()
            .cloned()
            .unwrap()
    }

    fn opts(window: usize) -> DriftOptions {
        DriftOptions {
            window,
            min_records: 50,
            threshold: 0.2,
        }
    }

    #[test]
    fn the_same_distribution_is_not_drifting_and_a_shift_is() {
        let w = DriftWindow::new("m", 1, baseline(), opts(300));
        let same: Vec<Record> = (0..300)
            .map(|i| record(f64::from(i % 100), if i % 3 == 2 { "b" } else { "a" }))
            .collect();
        w.observe(&same);
        let r = w.report();
        assert!(!r.drifting, "{r:?}");
        assert!(r.features.iter().all(|f| f.psi < 1e-9), "{r:?}");
        assert_eq!((r.window_records, r.observed_records), (300, 300));

        // Shift x up; `c` unchanged. One record at a time, as the endpoint adds them.
        for i in 0..300 {
            w.observe(&[record(
                f64::from(i % 100) + 60.0,
                if i % 3 == 2 { "b" } else { "a" },
            )]);
        }
        let r = w.report();
        assert!(r.drifting, "{r:?}");
        assert_eq!(r.max().unwrap().feature, "x");
        assert!(r.features[1].psi < 1e-9, "c did not move: {r:?}");
        assert_eq!(r.window_records, 300);
        assert_eq!(r.observed_records, 600);
        let moved = r.max().unwrap().moved.as_ref().unwrap();
        assert!(moved.actual > moved.expected, "{moved:?}");
        assert!(
            r.summary().starts_with("drifting: yes (max PSI"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn each_save_adds_a_point_to_the_history_and_it_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let w = DriftWindow::new("m", 1, baseline(), opts(100));
        let mix = |i: i32| if i % 3 == 2 { "b" } else { "a" };
        for i in 0..100 {
            w.observe(&[record(f64::from(i), mix(i))]);
        }
        let calm = w.report();
        calm.save(dir.path(), "m").unwrap();
        for i in 0..100 {
            w.observe(&[record(f64::from(i) + 60.0, mix(i))]);
        }
        let shifted = w.report();
        shifted.save(dir.path(), "m").unwrap();
        let h = DriftReport::history(dir.path(), "m").unwrap();
        assert_eq!(h.len(), 2);
        assert!(!h[0].drifting && h[1].drifting, "{h:?}");
        assert_eq!(h[1].psi[0].0, shifted.features[0].feature);
        assert_eq!(h[1].psi[0].1, shifted.features[0].psi);
        assert_eq!(
            DriftReport::load(dir.path(), "m").unwrap(),
            Some(shifted.clone())
        );

        // Past the bound, the older half goes; the newest point stays last and whole.
        let path = history_path(dir.path(), "m");
        let line = std::fs::read_to_string(&path).unwrap();
        let first = line.lines().next().unwrap().to_owned() + "\n";
        let filler = first.repeat((HISTORY_BYTES as usize / first.len()) + 1);
        std::fs::write(&path, filler).unwrap();
        shifted.save(dir.path(), "m").unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len <= HISTORY_BYTES / 2 + 2 * first.len() as u64, "{len}");
        let h = DriftReport::history(dir.path(), "m").unwrap();
        assert!(h.len() > 100 && h.last().unwrap().drifting, "{}", h.len());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().lines().count(),
            h.len(),
            "every line whole"
        );
    }

    #[test]
    fn unseen_and_missing_values_count_as_drift() {
        let w = DriftWindow::new("m", 1, baseline(), opts(100));
        let rs: Vec<Record> = (0..100)
            .map(|i| {
                let mut r = record(f64::from(i), if i % 2 == 0 { "zzz" } else { "a" });
                if i % 2 == 0 {
                    r.remove("x");
                }
                r
            })
            .collect();
        w.observe(&rs);
        let r = w.report();
        assert!(r.drifting);
        let c = r.features.iter().find(|f| f.feature == "c").unwrap();
        assert!(c.psi > 1.0, "{c:?}");
        assert_eq!(c.moved.as_ref().unwrap().bucket, "(other)");
        let x = r.features.iter().find(|f| f.feature == "x").unwrap();
        assert_eq!(x.moved.as_ref().unwrap().bucket, "(missing)");
    }

    #[test]
    fn the_window_keeps_only_the_latest_records() {
        let w = DriftWindow::new("m", 1, baseline(), opts(3));
        w.observe(&[record(99.0, "zzz"), record(99.0, "zzz")]);
        w.observe(&[record(1.0, "a"), record(2.0, "a"), record(3.0, "b")]);
        let s = w.lock();
        assert_eq!(s.len, 3);
        assert_eq!(s.observed, 5);
        let b = &w.baseline;
        // Every feature's counts sum to the window, and the evicted "zzz" left no trace.
        for (j, f) in b.features.iter().enumerate() {
            let c = &s.counts[w.offsets[j]..w.offsets[j] + f.buckets()];
            assert_eq!(c.iter().sum::<u64>(), 3);
        }
        let c = &b.features[1];
        let other = w.offsets[1] + usize::from(c.bucket_str(Some("zzz")));
        assert_eq!(s.counts[other], 0);
        assert_eq!(
            s.counts[w.offsets[1] + usize::from(c.bucket_str(Some("a")))],
            2
        );
        drop(s);
        // A batch larger than the window keeps its last rows.
        let many: Vec<Record> = (0..10).map(|i| record(f64::from(i), "b")).collect();
        w.observe(&many);
        let s = w.lock();
        assert_eq!((s.len, s.observed), (3, 15));
        assert_eq!(
            s.counts[w.offsets[1] + usize::from(c.bucket_str(Some("b")))],
            3
        );
    }

    #[test]
    fn few_records_never_drift_and_frames_count_like_records() {
        let w = DriftWindow::new("m", 1, baseline(), opts(100));
        w.observe(&[record(1e9, "zzz")]);
        let r = w.report();
        assert!(!r.drifting && r.max().unwrap().psi > 1.0);
        assert!(
            r.summary().contains("fewer than the 50 needed"),
            "{}",
            r.summary()
        );
        assert!(w.take_changed());
        assert!(!w.take_changed());

        let a = DriftWindow::new("m", 1, baseline(), opts(100));
        let b = DriftWindow::new("m", 1, baseline(), opts(100));
        let rs: Vec<Record> = (0..80)
            .map(|i| record(f64::from(i * 3 % 120), ["a", "b", "q"][i as usize % 3]))
            .collect();
        let mut frame = Frame::new(rs.len());
        frame.set(
            "x".into(),
            Column::Str(
                rs.iter()
                    .map(|r| r["x"].as_str().map(str::to_owned))
                    .collect(),
            ),
        );
        frame.set(
            "c".into(),
            Column::Str(
                rs.iter()
                    .map(|r| r["c"].as_str().map(str::to_owned))
                    .collect(),
            ),
        );
        a.observe(&rs);
        b.observe_frame(&frame);
        let (ra, mut rb) = (a.report(), b.report());
        rb.at_ms = ra.at_ms;
        assert_eq!(ra, rb);
    }

    #[test]
    fn reports_save_atomically_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(DriftReport::load(dir.path(), "m").unwrap(), None);
        let w = DriftWindow::new("m", 3, baseline(), opts(10));
        w.observe(&[record(5.0, "a")]);
        let r = w.report();
        let path = r.save(dir.path(), "m").unwrap();
        assert_eq!(path, dir.path().join("state/monitor/m.json"));
        assert_eq!(DriftReport::load(dir.path(), "m").unwrap(), Some(r));
        let mut left: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        // No temporary file left: the report and its history only.
        assert_eq!(left, ["m.history.ndjson", "m.json"]);
    }
}
