//! Correlation matrices on the row sample: Pearson and Spearman among numeric columns, Cramér's
//! V among categorical columns with few enough categories.

use super::columns::{DecodedColumn, MISSING};
use super::stats::{average_ranks, par_map, pearson};
use super::{ColumnKind, ColumnProfile, Correlations};

/// Categorical columns with more categories than this are left out of Cramér's V (the table
/// grows quadratically and V drifts up with many sparse cells).
pub const MAX_CRAMERS_CATEGORIES: usize = 100;

type Matrix = Vec<Vec<Option<f64>>>;

/// Symmetric matrix of `f` over all pairs (rows computed in parallel).
fn symmetric<T: Sync>(items: &[T], f: impl Fn(&T, &T) -> Option<f64> + Sync) -> Matrix {
    let idx: Vec<usize> = (0..items.len()).collect();
    let upper: Vec<Vec<Option<f64>>> = par_map(&idx, |&i| {
        (i..items.len()).map(|j| f(&items[i], &items[j])).collect()
    });
    let n = items.len();
    let mut m = vec![vec![None; n]; n];
    for i in 0..n {
        for j in i..n {
            let v = upper[i][j - i];
            m[i][j] = v;
            m[j][i] = v;
        }
    }
    m
}

pub fn correlations(
    cols: &[DecodedColumn],
    profiles: &[ColumnProfile],
    id_like: &[bool],
    sample: &[usize],
) -> Correlations {
    let numeric: Vec<usize> = (0..cols.len())
        .filter(|&i| cols[i].kind == ColumnKind::Numeric && !id_like[i])
        .collect();
    let values: Vec<Vec<f64>> = numeric
        .iter()
        .map(|&c| sample.iter().map(|&r| cols[c].num[r]).collect())
        .collect();
    let pearson_m = symmetric(&values, |a, b| pearson(a, b));
    let ranks: Vec<Vec<f64>> = par_map(&values, |v| average_ranks(v));
    let spearman_m = symmetric(&ranks, |a, b| pearson(a, b));

    let categorical: Vec<usize> = (0..cols.len())
        .filter(|&i| {
            cols[i].kind == ColumnKind::Categorical
                && !id_like[i]
                && profiles[i].unique <= MAX_CRAMERS_CATEGORIES
        })
        .collect();
    let codes: Vec<(Vec<u32>, usize)> = categorical
        .iter()
        .map(|&c| {
            (
                sample.iter().map(|&r| cols[c].cat[r]).collect(),
                cols[c].labels.len(),
            )
        })
        .collect();
    let cramers = symmetric(&codes, |a, b| cramers_v(&a.0, a.1, &b.0, b.1));

    Correlations {
        numeric_columns: numeric.iter().map(|&i| cols[i].name.clone()).collect(),
        pearson: pearson_m,
        spearman: spearman_m,
        categorical_columns: categorical.iter().map(|&i| cols[i].name.clone()).collect(),
        cramers_v: cramers,
    }
}

/// Cramér's V (no bias correction) over rows where both codes are present.
pub fn cramers_v(x: &[u32], nx: usize, y: &[u32], ny: usize) -> Option<f64> {
    let mut table = vec![0u64; nx * ny];
    let (mut rows, mut cols) = (vec![0u64; nx], vec![0u64; ny]);
    let mut n = 0u64;
    for (&a, &b) in x.iter().zip(y) {
        if a == MISSING || b == MISSING {
            continue;
        }
        table[a as usize * ny + b as usize] += 1;
        rows[a as usize] += 1;
        cols[b as usize] += 1;
        n += 1;
    }
    let r = rows.iter().filter(|&&c| c > 0).count();
    let c = cols.iter().filter(|&&c| c > 0).count();
    if n == 0 || r < 2 || c < 2 {
        return None;
    }
    let nf = n as f64;
    let mut chi2 = 0.0;
    for a in 0..nx {
        if rows[a] == 0 {
            continue;
        }
        for b in 0..ny {
            if cols[b] == 0 {
                continue;
            }
            let e = rows[a] as f64 * cols[b] as f64 / nf;
            let d = table[a * ny + b] as f64 - e;
            chi2 += d * d / e;
        }
    }
    Some((chi2 / (nf * (r.min(c) - 1) as f64)).sqrt().min(1.0))
}
