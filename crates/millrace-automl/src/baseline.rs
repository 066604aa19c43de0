//! The training data's feature distributions, saved with the model so drift can be measured
//! later: per input column, the share of training rows in each bucket. Numbers (and text that
//! is numbers, as records on the stream arrive: `"29.85"`) get decile bins plus a missing
//! bucket; categories get the most frequent ones, an "other" bucket and a missing bucket.
//!
//! Scoring-time values are bucketed by the same rules from a raw JSON record
//! ([`Baseline::bin_record`]) or a frame ([`Baseline::bin_frame`]), so a record's `"58"` and a
//! file's `58` land in the same bucket; [`psi`] compares the bucket shares. This module only
//! describes and compares distributions; the sliding window over scored records lives with the
//! endpoint (`millrace_serve::monitor`).

use millrace_wrangle::frame::{coerce_str, format_num};
use millrace_wrangle::{Column, Frame};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Numeric bins: at most this many (deciles), fewer when values repeat.
pub const NUMERIC_BINS: usize = 10;
/// Categorical columns keep this many most frequent categories; the rest share "other".
pub const TOP_CATEGORIES: usize = 20;
/// A text column is numeric when at least this share of its non-blank values parse as numbers.
pub const NUMERIC_TEXT_SHARE: f64 = 0.95;
/// Bucket shares are floored at this before PSI's logarithm, so an empty bucket on one side
/// counts as a large (finite) shift rather than an infinite one.
pub const PSI_EPSILON: f64 = 1e-4;

/// How one feature's values map to buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Bins {
    /// Bucket `i` holds values in `(edges[i-1], edges[i]]` (the first from -∞, the last,
    /// `edges.len()`, above every edge); then the missing bucket.
    Numeric { edges: Vec<f64> },
    /// Bucket `i` holds `categories[i]`; then "other" (any category not listed, including
    /// ones training never saw); then the missing bucket.
    Categorical { categories: Vec<String> },
}

/// One feature's training distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBaseline {
    pub name: String,
    pub bins: Bins,
    /// Share of training rows in each bucket (sums to 1); the missing bucket is last.
    pub expected: Vec<f64>,
    /// A numeric feature's smallest and largest training values (absent for categories, for
    /// a column with no numbers, and in models trained before it was kept). The console's
    /// what-if form shows it beside the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<(f64, f64)>,
}

/// The training part's distributions of the model's input columns (the target and ID-like
/// columns left out).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Baseline {
    /// Training rows described.
    pub rows: usize,
    pub features: Vec<FeatureBaseline>,
}

/// Text that counts as a missing value: absent or blank.
fn blank(s: Option<&str>) -> bool {
    s.is_none_or(|s| s.trim().is_empty())
}

impl FeatureBaseline {
    /// Buckets of this feature, the missing one included.
    pub fn buckets(&self) -> usize {
        self.expected.len()
    }

    /// The index of the missing bucket (always the last).
    pub fn missing_bucket(&self) -> u16 {
        (self.expected.len() - 1) as u16
    }

    /// The bucket of a number (NaN is missing). For a categorical feature, the number's text.
    pub fn bucket_num(&self, x: f64) -> u16 {
        match &self.bins {
            Bins::Numeric { edges } => {
                if x.is_nan() {
                    self.missing_bucket()
                } else {
                    edges.partition_point(|e| *e < x) as u16
                }
            }
            Bins::Categorical { .. } => self.bucket_str(format_num(x).as_deref()),
        }
    }

    /// The bucket of a text value (`None` or blank is missing). For a numeric feature the text
    /// is parsed as a number; text that is not one is missing, as the model's recipes read it.
    pub fn bucket_str(&self, s: Option<&str>) -> u16 {
        match &self.bins {
            Bins::Numeric { .. } => self.bucket_num(coerce_str(s)),
            Bins::Categorical { categories } => match s {
                _ if blank(s) => self.missing_bucket(),
                Some(s) => categories
                    .iter()
                    .position(|c| c == s)
                    .unwrap_or(categories.len()) as u16,
                None => self.missing_bucket(),
            },
        }
    }

    /// The bucket of a raw JSON value (absent and `null` are missing; `true`/`false` are 1/0
    /// for numbers and their text for categories), with the coercions `Frame::from_record`
    /// applies.
    pub fn bucket_json(&self, v: Option<&Value>) -> u16 {
        let numeric = matches!(self.bins, Bins::Numeric { .. });
        match v {
            None | Some(Value::Null) => self.missing_bucket(),
            Some(Value::String(s)) => self.bucket_str(Some(s)),
            Some(Value::Number(n)) if numeric => self.bucket_num(n.as_f64().unwrap_or(f64::NAN)),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if n.is_f64() => self.bucket_num(x),
                _ => self.bucket_str(Some(&n.to_string())),
            },
            Some(Value::Bool(b)) if numeric => self.bucket_num(f64::from(u8::from(*b))),
            Some(Value::Bool(b)) => self.bucket_str(Some(if *b { "true" } else { "false" })),
            Some(other) => self.bucket_str(Some(&other.to_string())),
        }
    }

    /// A short label per bucket, for reports: `≤ 29.85`, `(29.85, 45.1]`, `> 70.35`,
    /// `Month-to-month`, `(other)`, `(missing)`.
    pub fn bucket_labels(&self) -> Vec<String> {
        let mut out: Vec<String> = match &self.bins {
            Bins::Numeric { edges } => {
                let mut v: Vec<String> = edges
                    .iter()
                    .enumerate()
                    .map(|(i, e)| match i {
                        0 => format!("≤ {e}"),
                        _ => format!("({}, {e}]", edges[i - 1]),
                    })
                    .collect();
                v.push(match edges.last() {
                    Some(e) => format!("> {e}"),
                    None => "any".to_owned(),
                });
                v
            }
            Bins::Categorical { categories } => {
                let mut v = categories.clone();
                v.push("(other)".to_owned());
                v
            }
        };
        out.push("(missing)".to_owned());
        out
    }

    /// The distribution of one training column.
    fn fit(name: &str, column: &Column) -> FeatureBaseline {
        let rows = column.len();
        let numbers: Option<Vec<f64>> = match column {
            Column::Num(v) => Some(v.clone()),
            Column::Str(v) => {
                let present = v.iter().filter(|s| !blank(s.as_deref())).count();
                let parsed: Vec<f64> = v.iter().map(|s| coerce_str(s.as_deref())).collect();
                let numeric = parsed.iter().filter(|x| !x.is_nan()).count();
                (present > 0 && numeric as f64 >= NUMERIC_TEXT_SHARE * present as f64)
                    .then_some(parsed)
            }
        };
        let mut range = None;
        let bins = match numbers {
            Some(values) => {
                let mut sorted: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
                sorted.sort_unstable_by(f64::total_cmp);
                let n = sorted.len();
                range = sorted.first().zip(sorted.last()).map(|(a, b)| (*a, *b));
                let mut edges: Vec<f64> = Vec::with_capacity(NUMERIC_BINS);
                if n > 0 {
                    // The value at or below which i/10 of the values lie.
                    for i in 1..NUMERIC_BINS {
                        let at = (i * n).div_ceil(NUMERIC_BINS).max(1) - 1;
                        let e = sorted[at];
                        if edges.last() != Some(&e) {
                            edges.push(e);
                        }
                    }
                }
                Bins::Numeric { edges }
            }
            None => {
                let Column::Str(v) = column else {
                    unreachable!("numbers are always numeric")
                };
                let mut counts: std::collections::HashMap<&str, usize> =
                    std::collections::HashMap::new();
                for s in v.iter().flatten() {
                    if !blank(Some(s)) {
                        *counts.entry(s.as_str()).or_default() += 1;
                    }
                }
                let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
                // Most frequent first; ties by name, so the order never depends on hashing.
                ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                ranked.truncate(TOP_CATEGORIES);
                Bins::Categorical {
                    categories: ranked.into_iter().map(|(c, _)| c.to_owned()).collect(),
                }
            }
        };
        let mut f = FeatureBaseline {
            name: name.to_owned(),
            expected: vec![
                0.0;
                match &bins {
                    Bins::Numeric { edges } => edges.len() + 2,
                    Bins::Categorical { categories } => categories.len() + 2,
                }
            ],
            bins,
            range,
        };
        let mut counts = vec![0usize; f.expected.len()];
        for row in 0..rows {
            counts[usize::from(column_bucket(&f, column, row))] += 1;
        }
        f.expected = counts
            .iter()
            .map(|c| {
                if rows == 0 {
                    0.0
                } else {
                    *c as f64 / rows as f64
                }
            })
            .collect();
        f
    }
}

/// The bucket of `column[row]` under `f`'s rules.
fn column_bucket(f: &FeatureBaseline, column: &Column, row: usize) -> u16 {
    match column {
        Column::Num(v) => f.bucket_num(v[row]),
        Column::Str(v) => f.bucket_str(v[row].as_deref()),
    }
}

impl Baseline {
    /// Describes every column of `frame` (the training part, as read) except those named in
    /// `skip` (the target, ID-like columns), in the frame's column order.
    pub fn fit(frame: &Frame, skip: &[&str]) -> Baseline {
        Baseline {
            rows: frame.rows(),
            features: frame
                .columns()
                .filter(|(n, _)| !skip.contains(&&***n))
                .map(|(n, c)| FeatureBaseline::fit(n, c))
                .collect(),
        }
    }

    /// Writes the bucket of each feature of one raw record into `out` (one per feature, in
    /// `features` order). A field the record lacks is missing. Allocates nothing for string and
    /// number values, so it can sit on a request path.
    pub fn bin_record_into(&self, record: &Map<String, Value>, out: &mut [u16]) {
        for (f, o) in self.features.iter().zip(out.iter_mut()) {
            *o = f.bucket_json(record.get(&f.name));
        }
    }

    /// The buckets of one raw record, one per feature.
    pub fn bin_record(&self, record: &Map<String, Value>) -> Vec<u16> {
        let mut out = vec![0; self.features.len()];
        self.bin_record_into(record, &mut out);
        out
    }

    /// The buckets of every row of `frame`, row-major: row `r`'s buckets are
    /// `out[r * features.len()..(r + 1) * features.len()]`. A feature the frame lacks is
    /// missing in every row.
    pub fn bin_frame(&self, frame: &Frame) -> Vec<u16> {
        let width = self.features.len();
        let mut out = vec![0u16; frame.rows() * width];
        for (j, f) in self.features.iter().enumerate() {
            match frame.column(&f.name) {
                Some(c) => {
                    for row in 0..frame.rows() {
                        out[row * width + j] = column_bucket(f, c, row);
                    }
                }
                None => {
                    for row in 0..frame.rows() {
                        out[row * width + j] = f.missing_bucket();
                    }
                }
            }
        }
        out
    }
}

/// Population stability index of observed bucket counts against expected shares:
/// Σ (a − e) · ln(a / e) over buckets, with both shares floored at [`PSI_EPSILON`]. 0 for the
/// same distribution; below 0.1 is usually read as stable, 0.1–0.2 as a moderate shift, 0.2 and
/// above as a significant one. No counts at all give 0.
pub fn psi(expected: &[f64], actual_counts: &[u64]) -> f64 {
    let total: u64 = actual_counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    expected
        .iter()
        .zip(actual_counts)
        .map(|(e, c)| {
            let e = e.max(PSI_EPSILON);
            let a = (*c as f64 / total as f64).max(PSI_EPSILON);
            (a - e) * (a / e).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nums(v: &[f64]) -> Column {
        Column::Num(v.to_vec())
    }

    fn strs(v: &[Option<&str>]) -> Column {
        Column::Str(v.iter().map(|s| s.map(str::to_owned)).collect())
    }

    fn counts(f: &FeatureBaseline, buckets: &[u16]) -> Vec<u64> {
        let mut c = vec![0u64; f.buckets()];
        for b in buckets {
            c[usize::from(*b)] += 1;
        }
        c
    }

    #[test]
    fn deciles_split_numbers_evenly_and_text_numbers_bin_like_numbers() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let f = FeatureBaseline::fit("x", &nums(&values));
        let Bins::Numeric { edges } = &f.bins else {
            panic!("numeric")
        };
        assert_eq!(
            edges,
            &[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
        );
        assert_eq!(f.expected.len(), 11);
        for e in &f.expected[..10] {
            assert!((e - 0.1).abs() < 1e-12);
        }
        assert_eq!(f.expected[10], 0.0);
        assert_eq!(f.bucket_num(10.0), 0);
        assert_eq!(f.bucket_num(10.5), 1);
        assert_eq!(f.bucket_num(1000.0), 9);
        assert_eq!(f.bucket_num(f64::NAN), 10);
        let labels = f.bucket_labels();
        assert_eq!(
            [&labels[0], &labels[1], &labels[9], &labels[10]],
            ["≤ 10", "(10, 20]", "> 90", "(missing)"]
        );
        // Text, JSON numbers and JSON strings agree.
        let text: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
        let t = FeatureBaseline::fit(
            "x",
            &Column::Str(text.iter().map(|s| Some(s.clone())).collect()),
        );
        assert_eq!(t, f);
        assert_eq!(f.bucket_json(Some(&Value::from("29.5"))), 2);
        assert_eq!(f.bucket_json(Some(&serde_json::json!(29.5))), 2);
        assert_eq!(f.bucket_json(Some(&Value::from(" "))), 10);
        assert_eq!(f.bucket_json(Some(&Value::from("n/a"))), 10);
        assert_eq!(f.bucket_json(None), 10);
        assert_eq!(f.bucket_json(Some(&Value::Null)), 10);
    }

    #[test]
    fn repeated_values_give_fewer_bins_and_keep_every_value_apart() {
        // 0/1 flags: 80 zeros, 20 ones.
        let v: Vec<f64> = (0..100).map(|i| f64::from(u8::from(i >= 80))).collect();
        let f = FeatureBaseline::fit("flag", &nums(&v));
        assert_eq!(
            f.bins,
            Bins::Numeric {
                edges: vec![0.0, 1.0]
            }
        );
        assert_eq!(f.expected, vec![0.8, 0.2, 0.0, 0.0]);
        assert_eq!(f.range, Some((0.0, 1.0)));
    }

    #[test]
    fn categories_keep_the_most_frequent_and_unseen_ones_go_to_other() {
        let mut v: Vec<Option<&str>> = Vec::new();
        v.extend(std::iter::repeat_n(Some("b"), 50));
        v.extend(std::iter::repeat_n(Some("a"), 30));
        v.extend(std::iter::repeat_n(Some("c"), 10));
        v.extend(std::iter::repeat_n(None, 5));
        v.extend(std::iter::repeat_n(Some(" "), 5));
        let f = FeatureBaseline::fit("cat", &strs(&v));
        assert_eq!(
            f.bins,
            Bins::Categorical {
                categories: vec!["b".into(), "a".into(), "c".into()]
            }
        );
        assert_eq!(f.expected, vec![0.5, 0.3, 0.1, 0.0, 0.1]);
        assert_eq!(f.range, None, "categories have no range");
        assert_eq!(f.bucket_str(Some("zzz")), 3, "unseen → other");
        assert_eq!(f.bucket_str(None), 4);
        assert_eq!(f.bucket_json(Some(&serde_json::json!(7))), 3);
        assert_eq!(f.bucket_labels()[3], "(other)");
        // Many categories: only the top ones are kept, ties broken by name.
        let many: Vec<String> = (0..30).map(|i| format!("k{i:02}")).collect();
        let f = FeatureBaseline::fit(
            "id",
            &Column::Str(many.iter().map(|s| Some(s.clone())).collect()),
        );
        let Bins::Categorical { categories } = &f.bins else {
            panic!()
        };
        assert_eq!(categories.len(), TOP_CATEGORIES);
        assert_eq!(categories[0], "k00");
        assert!((f.expected[TOP_CATEGORIES] - 10.0 / 30.0).abs() < 1e-12);
    }

    #[test]
    fn mostly_numeric_text_is_numeric_and_mostly_words_are_categories() {
        let mut v: Vec<Option<&str>> = vec![Some("1.5"); 97];
        v.extend([Some("x"), Some(""), None]);
        let f = FeatureBaseline::fit("n", &strs(&v));
        assert!(matches!(f.bins, Bins::Numeric { .. }));
        // 3 unparsable or blank values are missing.
        assert!((f.expected[f.buckets() - 1] - 0.03).abs() < 1e-12);
        let mut w: Vec<Option<&str>> = vec![Some("1.5"); 90];
        w.extend(std::iter::repeat_n(Some("x"), 10));
        assert!(matches!(
            FeatureBaseline::fit("w", &strs(&w)).bins,
            Bins::Categorical { .. }
        ));
    }

    #[test]
    fn psi_is_zero_for_the_same_distribution_and_large_for_a_shift() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i % 100)).collect();
        let f = FeatureBaseline::fit("x", &nums(&values));
        let same: Vec<u16> = values.iter().map(|x| f.bucket_num(*x)).collect();
        assert!(psi(&f.expected, &counts(&f, &same)).abs() < 1e-9);
        // Half the values moved up by half the range.
        let shifted: Vec<u16> = values
            .iter()
            .enumerate()
            .map(|(i, x)| f.bucket_num(if i % 2 == 0 { x + 50.0 } else { *x }))
            .collect();
        let p = psi(&f.expected, &counts(&f, &shifted));
        assert!(p > 0.2, "{p}");
        // Everything beyond the training range or missing: huge, but finite.
        let out: Vec<u16> = values.iter().map(|_| f.bucket_num(1e9)).collect();
        let p = psi(&f.expected, &counts(&f, &out));
        assert!(p.is_finite() && p > 1.0, "{p}");
        let missing = vec![f.missing_bucket(); 10];
        assert!(psi(&f.expected, &counts(&f, &missing)) > 1.0);
        assert_eq!(psi(&f.expected, &vec![0; f.buckets()]), 0.0);
    }

    #[test]
    fn frames_and_records_bin_the_same_way() {
        let mut frame = Frame::new(4);
        frame.set("n".into(), nums(&[1.0, 2.0, f64::NAN, 4.0]));
        frame.set("c".into(), strs(&[Some("a"), Some("b"), Some("a"), None]));
        frame.set("y".into(), strs(&[Some("Yes"); 4]));
        let b = Baseline::fit(&frame, &["y"]);
        assert_eq!(b.rows, 4);
        let names: Vec<&str> = b.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["n", "c"]);
        let bins = b.bin_frame(&frame);
        for row in 0..4 {
            let rec = frame.record(row);
            assert_eq!(b.bin_record(&rec), bins[row * 2..row * 2 + 2], "row {row}");
        }
        // Raw stream records (every value a string) too.
        let rec: Map<String, Value> = serde_json::from_str(r#"{"n": "2", "c": "b"}"#).unwrap();
        assert_eq!(b.bin_record(&rec), bins[2..4]);
        // A frame without a feature: missing.
        let empty = Frame::new(1);
        let m = b.bin_frame(&empty);
        assert_eq!(
            m,
            vec![
                b.features[0].missing_bucket(),
                b.features[1].missing_bucket()
            ]
        );
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Baseline>(&json).unwrap(), b);
    }
}
