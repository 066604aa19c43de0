//! Feature binning shared by boosting and forests: each column's values are cut into at most
//! `max_bins` ranges (one per distinct value when there are few), plus one bin for missing
//! values, and stored as a column-major `u8` matrix. Split search then works on small
//! histograms instead of sorted values, and the cuts are kept as `f64` thresholds so a fitted
//! tree predicts on raw rows without binning them again.

use crate::linear::Matrix;

/// Above this many rows the cuts are chosen from evenly spaced rows only: quantiles of 200k
/// values are as good as those of all of them, and sorting every column of a million-row table
/// is not free. Every row is still binned.
const CUT_SAMPLE: usize = 200_000;

/// The binned training matrix, holding only the usable features (those whose rows fall into at
/// least two bins; a constant column can never split, so it costs nothing later).
///
/// Value bin `b` of feature `k` holds the values `v` with `cuts[k][b - 1] < v <= cuts[k][b]`;
/// bin `cuts[k].len() + 1` holds the missing values (NaN). Infinities count as ±`f64::MAX`.
pub(crate) struct Binned {
    pub rows: usize,
    /// The matrix column of each usable feature.
    pub features: Vec<usize>,
    pub cuts: Vec<Vec<f64>>,
    /// `rows` bins per usable feature, feature after feature.
    data: Vec<u8>,
}

impl Binned {
    /// Bins the first `rows` rows of `x` (`max_bins` is clamped to 2..=255 so every bin,
    /// missing included, fits a `u8`).
    pub fn fit(x: &Matrix, rows: usize, max_bins: usize) -> Binned {
        let rows = rows.min(x.rows);
        let max_bins = max_bins.clamp(2, 255);
        let stride = rows.div_ceil(CUT_SAMPLE).max(1);
        let mut out = Binned {
            rows,
            features: Vec::new(),
            cuts: Vec::new(),
            data: Vec::new(),
        };
        let mut values = Vec::new();
        let mut column = vec![0u8; rows];
        for j in 0..x.cols {
            let at = |r: usize| x.data[r * x.cols + j];
            values.clear();
            values.extend((0..rows).step_by(stride).map(at).filter(|v| !v.is_nan()));
            let cuts = fit_cuts(&mut values, max_bins);
            let missing = (cuts.len() + 1) as u8;
            let mut seen = [false; 256];
            for (r, b) in column.iter_mut().enumerate() {
                let v = at(r);
                *b = if v.is_nan() {
                    missing
                } else {
                    bin_of(&cuts, v)
                };
                seen[*b as usize] = true;
            }
            if seen.iter().filter(|s| **s).count() >= 2 {
                out.features.push(j);
                out.cuts.push(cuts);
                out.data.extend_from_slice(&column);
            }
        }
        out
    }

    /// The bins of usable feature `k`, one per row.
    pub fn column(&self, k: usize) -> &[u8] {
        &self.data[k * self.rows..(k + 1) * self.rows]
    }

    /// Value bins of feature `k` (the missing bin is the next index).
    pub fn value_bins(&self, k: usize) -> usize {
        self.cuts[k].len() + 1
    }

    /// The raw-value threshold of "bin ≤ b goes left". The last value bin maps to `f64::MAX`,
    /// so "every value one way, missing the other" also sends unseen large values with the
    /// values.
    pub fn threshold(&self, k: usize, b: usize) -> f64 {
        self.cuts[k].get(b).copied().unwrap_or(f64::MAX)
    }

    /// Whether a row in bin `bin` goes left under the split (`b`, `missing_left`): the binned
    /// twin of `Tree::leaf`'s raw-value test.
    pub fn goes_left(&self, k: usize, bin: u8, b: usize, missing_left: bool) -> bool {
        if bin as usize == self.value_bins(k) {
            missing_left
        } else {
            bin as usize <= b
        }
    }
}

/// The bin of a non-missing value.
fn bin_of(cuts: &[f64], v: f64) -> u8 {
    cuts.partition_point(|c| *c < v) as u8
}

/// A threshold strictly between two distinct finite values `a < b` (their midpoint, so unseen
/// values in the gap go to the nearer side; `a` itself where rounding leaves no room).
fn cut_between(a: f64, b: f64) -> f64 {
    let m = a / 2.0 + b / 2.0;
    if a <= m && m < b { m } else { a }
}

/// Cuts for one column's non-missing values (the vector is sorted in place). Greedy
/// equal-count bins over the distinct values: a bin closes once it holds its share of the rows
/// still to place, a value heavy enough to fill a bin alone gets its own, and when the
/// distinct values left fit the bins left every value gets its own.
fn fit_cuts(values: &mut [f64], max_bins: usize) -> Vec<f64> {
    for v in values.iter_mut() {
        *v = v.clamp(-f64::MAX, f64::MAX);
    }
    values.sort_unstable_by(f64::total_cmp);
    // Distinct values with counts; `==` merges -0.0 with 0.0 as comparisons will.
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for &v in values.iter() {
        match distinct.last_mut() {
            Some((d, c)) if *d == v => *c += 1,
            _ => distinct.push((v, 1)),
        }
    }
    let m = distinct.len();
    let mut cuts = Vec::new();
    if m <= max_bins {
        for w in distinct.windows(2) {
            cuts.push(cut_between(w[0].0, w[1].0));
        }
        return cuts;
    }
    let mut rest = values.len();
    let mut acc = 0usize;
    for i in 0..m - 1 {
        acc += distinct[i].1;
        let bins_left = max_bins - cuts.len();
        let target = rest as f64 / bins_left as f64;
        let full = acc as f64 >= target;
        let heavy_next = distinct[i + 1].1 as f64 >= target;
        let room = m - 1 - i < bins_left;
        if full || heavy_next || room {
            cuts.push(cut_between(distinct[i].0, distinct[i + 1].0));
            rest -= acc;
            acc = 0;
            if cuts.len() + 1 == max_bins {
                break;
            }
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_get_one_bin_each_and_missing_its_own() {
        let x = Matrix::new(6, 1, vec![3.0, 1.0, f64::NAN, 2.0, 1.0, 3.0]);
        let b = Binned::fit(&x, 6, 255);
        assert_eq!(b.cuts[0], vec![1.5, 2.5]);
        assert_eq!(b.column(0), &[2, 0, 3, 1, 0, 2]);
        assert_eq!(b.threshold(0, 1), 2.5);
        assert_eq!(b.threshold(0, 2), f64::MAX);
    }

    #[test]
    fn many_values_are_cut_into_balanced_bins() {
        let n = 10_000;
        let x = Matrix::new(n, 1, (0..n).map(|i| (i * 7919 % n) as f64).collect());
        let b = Binned::fit(&x, n, 16);
        assert_eq!(b.value_bins(0), 16);
        let mut counts = [0usize; 17];
        for v in b.column(0) {
            counts[*v as usize] += 1;
        }
        assert!(
            counts[..16].iter().all(|c| (600..=650).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn constant_and_all_missing_columns_are_dropped_but_infinities_kept() {
        let x = Matrix::new(
            3,
            4,
            vec![
                1.0,
                f64::NAN,
                f64::NEG_INFINITY,
                5.0,
                1.0,
                f64::NAN,
                f64::INFINITY,
                f64::NAN,
                1.0,
                f64::NAN,
                0.0,
                5.0,
            ],
        );
        let b = Binned::fit(&x, 3, 255);
        assert_eq!(b.features, vec![2, 3]);
        assert!(b.cuts[0].iter().all(|c| c.is_finite()));
        assert_eq!(b.column(0), &[0, 2, 1]);
        // One value plus missing still splits (value vs missing).
        assert_eq!(b.column(1), &[0, 1, 0]);
    }

    #[test]
    fn a_heavy_value_gets_its_own_bin() {
        let mut v: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        v.extend(std::iter::repeat_n(500.0, 5000));
        let cuts = fit_cuts(&mut v, 10);
        let i = cuts.partition_point(|c| *c < 500.0);
        assert!(
            cuts[i] < 501.0 && (i == 0 || cuts[i - 1] > 499.0),
            "{cuts:?}"
        );
    }
}
