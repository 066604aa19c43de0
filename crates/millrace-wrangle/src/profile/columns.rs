//! Decoding Arrow columns into the report's two views (numbers with NaN for missing, or
//! dictionary codes), type inference for strings that hold numbers, per-column statistics and
//! duplicate-row counting.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;

use super::stats::FxHashMap;
use super::{
    CategoryCounts, ColumnKind, ColumnProfile, Histogram, NumericStats, ProfileError, Quantiles,
    ValueCount,
};
use crate::stats::quantile;

/// Code for a missing value in `DecodedColumn::cat` and `DecodedColumn::raw_codes`.
pub const MISSING: u32 = u32::MAX;
/// A string column is numeric when at least this share of its non-blank values parse.
pub const NUMERIC_PARSE_SHARE: f64 = 0.95;
/// Categories listed by name in a column's profile (the rest go to "other").
pub const TOP_K_CATEGORIES: usize = 20;
/// Equal-width histogram bins for numeric columns.
pub const HISTOGRAM_BINS: usize = 20;

/// One decoded column (all rows).
pub struct DecodedColumn {
    pub name: String,
    pub arrow_type: String,
    pub kind: ColumnKind,
    /// Numeric view (numeric columns): NaN where missing or mismatched.
    pub num: Vec<f64>,
    /// Categorical view (categorical columns): code into `labels`, `MISSING` where missing.
    pub cat: Vec<u32>,
    pub labels: Vec<String>,
    /// Rows per code of `cat`.
    pub cat_counts: Vec<usize>,
    /// Dictionary codes of the raw strings (string columns; NULL = `MISSING`), for exact
    /// duplicate detection where the views conflate values (" " and NULL both missing).
    pub raw_codes: Option<Vec<u32>>,
    pub nulls: usize,
    pub blank: usize,
    pub mismatched: usize,
    pub mismatched_examples: Vec<String>,
}

impl DecodedColumn {
    /// Whether row `i` has a value in the column's view.
    pub fn present(&self, i: usize) -> bool {
        match self.kind {
            ColumnKind::Numeric => !self.num[i].is_nan(),
            ColumnKind::Categorical => self.cat[i] != MISSING,
        }
    }
}

fn string_iter<'a>(a: &'a dyn Array) -> Option<Box<dyn Iterator<Item = Option<&'a str>> + 'a>> {
    match a.data_type() {
        DataType::Utf8 => Some(Box::new(a.as_string::<i32>().iter())),
        DataType::LargeUtf8 => Some(Box::new(a.as_string::<i64>().iter())),
        DataType::Utf8View => Some(Box::new(a.as_string_view().iter())),
        _ => None,
    }
}

/// Decodes one column from its per-batch arrays.
pub fn decode(
    name: &str,
    data_type: &DataType,
    arrays: &[ArrayRef],
    rows: usize,
) -> Result<DecodedColumn, ProfileError> {
    let arrow_err = |source| ProfileError::Arrow {
        column: name.to_string(),
        source,
    };
    let mut col = DecodedColumn {
        name: name.to_string(),
        arrow_type: data_type.to_string(),
        kind: ColumnKind::Categorical,
        num: Vec::new(),
        cat: Vec::new(),
        labels: Vec::new(),
        cat_counts: Vec::new(),
        raw_codes: None,
        nulls: 0,
        blank: 0,
        mismatched: 0,
        mismatched_examples: Vec::new(),
    };
    if data_type.is_numeric() {
        col.kind = ColumnKind::Numeric;
        col.num.reserve(rows);
        for a in arrays {
            let f = arrow::compute::cast(a, &DataType::Float64).map_err(arrow_err)?;
            let f = f.as_primitive::<arrow::datatypes::Float64Type>();
            for v in f.iter() {
                // NaN in a float column counts as missing, like NULL.
                let v = v.unwrap_or(f64::NAN);
                if v.is_nan() {
                    col.nulls += 1;
                }
                col.num.push(v);
            }
        }
        return Ok(col);
    }
    if *data_type == DataType::Boolean {
        col.labels = vec!["false".to_string(), "true".to_string()];
        col.cat_counts = vec![0, 0];
        col.cat.reserve(rows);
        for a in arrays {
            for v in a.as_boolean().iter() {
                let c = match v {
                    Some(b) => b as u32,
                    None => {
                        col.nulls += 1;
                        col.cat.push(MISSING);
                        continue;
                    }
                };
                col.cat_counts[c as usize] += 1;
                col.cat.push(c);
            }
        }
        return Ok(col);
    }
    // Everything else is read as strings (dates, dictionaries, ... are cast to Utf8).
    let is_string = matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    );
    let owned: Vec<ArrayRef> = if is_string {
        arrays.to_vec()
    } else {
        arrays
            .iter()
            .map(|a| arrow::compute::cast(a, &DataType::Utf8))
            .collect::<Result<_, _>>()
            .map_err(arrow_err)?
    };
    decode_strings(&mut col, &owned, rows);
    Ok(col)
}

fn decode_strings(col: &mut DecodedColumn, arrays: &[ArrayRef], rows: usize) {
    let mut dict: FxHashMap<&str, u32> = FxHashMap::default();
    let mut labels: Vec<&str> = Vec::new();
    let mut counts: Vec<usize> = Vec::new();
    let mut raw = Vec::with_capacity(rows);
    for a in arrays {
        let Some(it) = string_iter(a.as_ref()) else {
            continue;
        };
        for v in it {
            let Some(s) = v else {
                col.nulls += 1;
                raw.push(MISSING);
                continue;
            };
            let code = match dict.get(s) {
                Some(&c) => c,
                None => {
                    let c = labels.len() as u32;
                    dict.insert(s, c);
                    labels.push(s);
                    counts.push(0);
                    c
                }
            };
            counts[code as usize] += 1;
            raw.push(code);
        }
    }
    // Classify each distinct value once rather than each row.
    let blank: Vec<bool> = labels.iter().map(|s| s.trim().is_empty()).collect();
    let parsed: Vec<Option<f64>> = labels
        .iter()
        .map(|s| s.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    let (mut non_blank, mut parse_ok) = (0usize, 0usize);
    for c in 0..labels.len() {
        if blank[c] {
            col.blank += counts[c];
        } else {
            non_blank += counts[c];
            if parsed[c].is_some() {
                parse_ok += counts[c];
            }
        }
    }
    let numeric = non_blank > 0 && parse_ok as f64 >= NUMERIC_PARSE_SHARE * non_blank as f64;
    if numeric {
        col.kind = ColumnKind::Numeric;
        col.mismatched = non_blank - parse_ok;
        let mut examples: Vec<(usize, &str)> = (0..labels.len())
            .filter(|&c| !blank[c] && parsed[c].is_none())
            .map(|c| (counts[c], labels[c]))
            .collect();
        examples.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        col.mismatched_examples = examples
            .iter()
            .take(5)
            .map(|(_, s)| s.to_string())
            .collect();
        let table: Vec<f64> = parsed.iter().map(|p| p.unwrap_or(f64::NAN)).collect();
        col.num = raw
            .iter()
            .map(|&c| {
                if c == MISSING {
                    f64::NAN
                } else {
                    table[c as usize]
                }
            })
            .collect();
    } else {
        col.kind = ColumnKind::Categorical;
        let mut remap = vec![MISSING; labels.len()];
        for c in 0..labels.len() {
            if !blank[c] {
                remap[c] = col.labels.len() as u32;
                col.labels.push(labels[c].to_string());
                col.cat_counts.push(counts[c]);
            }
        }
        col.cat = raw
            .iter()
            .map(|&c| {
                if c == MISSING {
                    MISSING
                } else {
                    remap[c as usize]
                }
            })
            .collect();
    }
    col.raw_codes = Some(raw);
}

/// Formats a number for display: integers without a fraction.
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The column's statistics (all rows).
pub fn column_profile(col: &DecodedColumn) -> ColumnProfile {
    let rows = match col.kind {
        ColumnKind::Numeric => col.num.len(),
        ColumnKind::Categorical => col.cat.len(),
    };
    let missing = col.nulls + col.blank;
    let mut p = ColumnProfile {
        name: col.name.clone(),
        arrow_type: col.arrow_type.clone(),
        inferred_type: col.kind,
        count: 0,
        missing,
        missing_pct: pct(missing, rows),
        nulls: col.nulls,
        blank: col.blank,
        mismatched: col.mismatched,
        mismatched_examples: col.mismatched_examples.clone(),
        unique: 0,
        unique_ratio: 0.0,
        mode: None,
        mode_count: 0,
        numeric: None,
        categories: None,
    };
    match col.kind {
        ColumnKind::Numeric => {
            let mut v: Vec<f64> = col.num.iter().copied().filter(|x| !x.is_nan()).collect();
            v.sort_unstable_by(f64::total_cmp);
            p.count = v.len();
            // Distinct values and the mode from runs of the sorted values.
            let (mut unique, mut best, mut best_len) = (0usize, f64::NAN, 0usize);
            let mut i = 0;
            while i < v.len() {
                let mut j = i + 1;
                while j < v.len() && v[j] == v[i] {
                    j += 1;
                }
                unique += 1;
                if j - i > best_len {
                    best_len = j - i;
                    best = v[i];
                }
                i = j;
            }
            p.unique = unique;
            if best_len > 0 {
                p.mode = Some(fmt_num(best));
                p.mode_count = best_len;
            }
            p.numeric = numeric_stats(&v);
        }
        ColumnKind::Categorical => {
            p.count = col.cat_counts.iter().sum();
            p.unique = col.cat_counts.iter().filter(|&&c| c > 0).count();
            let mut order: Vec<usize> = (0..col.labels.len())
                .filter(|&c| col.cat_counts[c] > 0)
                .collect();
            order.sort_by(|&a, &b| {
                col.cat_counts[b]
                    .cmp(&col.cat_counts[a])
                    .then(col.labels[a].cmp(&col.labels[b]))
            });
            if let Some(&m) = order.first() {
                p.mode = Some(col.labels[m].clone());
                p.mode_count = col.cat_counts[m];
            }
            let top: Vec<ValueCount> = order
                .iter()
                .take(TOP_K_CATEGORIES)
                .map(|&c| ValueCount {
                    value: col.labels[c].clone(),
                    count: col.cat_counts[c],
                })
                .collect();
            let other_count = order
                .iter()
                .skip(TOP_K_CATEGORIES)
                .map(|&c| col.cat_counts[c])
                .sum();
            p.categories = Some(CategoryCounts {
                top,
                other_count,
                other_categories: order.len().saturating_sub(TOP_K_CATEGORIES),
            });
        }
    }
    p.unique_ratio = if p.count > 0 {
        p.unique as f64 / p.count as f64
    } else {
        0.0
    };
    p
}

fn pct(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// Statistics of sorted, non-missing values; None when there are none.
fn numeric_stats(v: &[f64]) -> Option<NumericStats> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let mean = v.iter().sum::<f64>() / nf;
    let (mut m2, mut m3) = (0.0, 0.0);
    for &x in v {
        let d = x - mean;
        m2 += d * d;
        m3 += d * d * d;
    }
    let std = (n > 1).then(|| (m2 / (nf - 1.0)).sqrt());
    let skewness = if n > 2 && m2 > 0.0 {
        let (m2n, m3n) = (m2 / nf, m3 / nf);
        let g1 = m3n / m2n.powf(1.5);
        Some(g1 * (nf * (nf - 1.0)).sqrt() / (nf - 2.0))
    } else {
        None
    };
    let q = |p| quantile(v, p);
    let quantiles = Quantiles {
        p1: q(0.01),
        p5: q(0.05),
        p25: q(0.25),
        p50: q(0.5),
        p75: q(0.75),
        p95: q(0.95),
        p99: q(0.99),
    };
    let iqr = quantiles.p75 - quantiles.p25;
    let (lower_fence, upper_fence) = (quantiles.p25 - 1.5 * iqr, quantiles.p75 + 1.5 * iqr);
    // Sorted: outliers are a prefix and a suffix.
    let outliers =
        v.partition_point(|&x| x < lower_fence) + (n - v.partition_point(|&x| x <= upper_fence));
    let (min, max) = (v[0], v[n - 1]);
    let histogram = if max > min {
        let width = (max - min) / HISTOGRAM_BINS as f64;
        let edges = (0..=HISTOGRAM_BINS)
            .map(|i| {
                if i == HISTOGRAM_BINS {
                    max
                } else {
                    min + width * i as f64
                }
            })
            .collect();
        let mut counts = vec![0u64; HISTOGRAM_BINS];
        for &x in v {
            let b = (((x - min) / width) as usize).min(HISTOGRAM_BINS - 1);
            counts[b] += 1;
        }
        Histogram { edges, counts }
    } else {
        Histogram {
            edges: vec![min, max],
            counts: vec![n as u64],
        }
    };
    Some(NumericStats {
        min,
        max,
        mean,
        std,
        quantiles,
        skewness,
        outliers,
        outlier_pct: pct(outliers, n),
        lower_fence,
        upper_fence,
        histogram,
    })
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Rows that repeat an earlier row exactly, by a 128-bit hash of each row's raw values.
pub fn count_duplicate_rows(cols: &[DecodedColumn], rows: usize) -> usize {
    let mut h1 = vec![0x243F_6A88_85A3_08D3u64; rows];
    let mut h2 = vec![0x1319_8A2E_0370_7344u64; rows];
    for (ci, col) in cols.iter().enumerate() {
        let salt = mix(ci as u64 + 1);
        let key = |i: usize| -> u64 {
            match &col.raw_codes {
                Some(raw) => raw[i] as u64,
                None => match col.kind {
                    // All NaNs/NULLs share one key.
                    ColumnKind::Numeric if col.num[i].is_nan() => u64::MAX,
                    ColumnKind::Numeric => col.num[i].to_bits(),
                    ColumnKind::Categorical => col.cat[i] as u64,
                },
            }
        };
        for i in 0..rows {
            let k = key(i);
            h1[i] = mix(h1[i] ^ k ^ salt);
            h2[i] = mix(h2[i]
                .rotate_left(17)
                .wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                ^ !salt);
        }
    }
    let mut seen: std::collections::HashSet<u128, super::stats::FxBuild> =
        std::collections::HashSet::with_capacity_and_hasher(rows, Default::default());
    let mut dups = 0;
    for i in 0..rows {
        if !seen.insert(((h1[i] as u128) << 64) | h2[i] as u128) {
            dups += 1;
        }
    }
    dups
}
