//! Target analysis (problem type, classes, positive class, imbalance) and each feature's
//! single-column power for the target: AUC, mutual information, |Spearman|.

use super::columns::{DecodedColumn, MISSING, fmt_num};
use super::stats::{
    FxHashMap, Rng, mutual_information_bits, par_map, quantile_bin_codes, spearman,
};
use super::{ClassCount, ColumnKind, ColumnProfile, FeaturePower, ProblemType, TargetAnalysis};
use crate::stats::{auc, positive_class};

/// Folds for the out-of-fold category target rates.
pub const OOF_FOLDS: usize = 5;
/// Quantile bins for numerics (and a regression target) in mutual information.
pub const MI_BINS: usize = 10;
/// Categories kept by name in mutual information (the rest are one "other" code).
pub const MI_TOP_CATEGORIES: usize = 20;
/// Classes kept apart in mutual information; rarer ones share one code, so a target with very
/// many classes cannot blow up the contingency tables.
pub const MI_MAX_CLASSES: usize = 50;

pub fn analyse_target(col: &DecodedColumn, profile: &ColumnProfile) -> Option<TargetAnalysis> {
    if profile.count == 0 {
        return None;
    }
    let rows = profile.count;
    let mut t = TargetAnalysis {
        column: col.name.clone(),
        problem_type: ProblemType::Regression,
        rows,
        missing: profile.missing,
        classes: Vec::new(),
        positive_class: None,
        positive_rate: None,
        minority_share: None,
        imbalance_ratio: None,
        mean: None,
        std: None,
    };
    let classes: Vec<(String, usize)> = match col.kind {
        ColumnKind::Categorical => (0..col.labels.len())
            .filter(|&c| col.cat_counts[c] > 0)
            .map(|c| (col.labels[c].clone(), col.cat_counts[c]))
            .collect(),
        ColumnKind::Numeric if profile.unique <= 2 => {
            let mut counts: Vec<(f64, usize)> = Vec::new();
            for &v in col.num.iter().filter(|v| !v.is_nan()) {
                match counts.iter_mut().find(|(x, _)| *x == v) {
                    Some(e) => e.1 += 1,
                    None => counts.push((v, 1)),
                }
            }
            counts.into_iter().map(|(v, n)| (fmt_num(v), n)).collect()
        }
        ColumnKind::Numeric => {
            let s = profile.numeric.as_ref()?;
            t.mean = Some(s.mean);
            t.std = s.std;
            return Some(t);
        }
    };
    let mut classes = classes;
    classes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    t.problem_type = if classes.len() <= 2 {
        ProblemType::Binary
    } else {
        ProblemType::Multiclass
    };
    t.classes = classes
        .iter()
        .map(|(v, n)| ClassCount {
            value: v.clone(),
            count: *n,
            share: *n as f64 / rows as f64,
        })
        .collect();
    let (max, min) = (classes[0].1, classes[classes.len() - 1].1);
    t.minority_share = Some(min as f64 / rows as f64);
    t.imbalance_ratio = Some(max as f64 / min as f64);
    if t.problem_type == ProblemType::Binary {
        let pos = &classes[positive_class(&classes).unwrap_or(classes.len() - 1)];
        t.positive_class = Some(pos.0.clone());
        t.positive_rate = Some(pos.1 as f64 / rows as f64);
    }
    Some(t)
}

/// The target on the sampled rows where it is present.
pub struct TargetEnc {
    /// Row indices (into the full data).
    pub rows: Vec<usize>,
    /// Binary: 1.0 for the positive class else 0.0; multiclass: class index; regression: value.
    pub y: Vec<f64>,
    /// Discrete target for mutual information: class index, or quantile bin for regression.
    pub class: Vec<u32>,
    pub n_classes: usize,
    /// Fold (0..OOF_FOLDS) per entry of `rows`, seeded.
    pub fold: Vec<u8>,
}

impl TargetEnc {
    pub fn labels(&self) -> Vec<bool> {
        self.y.iter().map(|&v| v == 1.0).collect()
    }
}

pub fn encode_target(
    col: &DecodedColumn,
    t: &TargetAnalysis,
    sample: &[usize],
    seed: u64,
) -> TargetEnc {
    let rows: Vec<usize> = sample.iter().copied().filter(|&r| col.present(r)).collect();
    let index: FxHashMap<&str, u32> = t
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.value.as_str(), i as u32))
        .collect();
    let class_of = |label: &str| index.get(label).copied().unwrap_or(0);
    let (y, class, n_classes): (Vec<f64>, Vec<u32>, usize) = match t.problem_type {
        ProblemType::Regression => {
            let y: Vec<f64> = rows.iter().map(|&r| col.num[r]).collect();
            let (codes, n) = quantile_bin_codes(&y, MI_BINS);
            (y, codes, n)
        }
        _ => {
            // Label code -> class index, computed once per distinct value.
            let class: Vec<u32> = match col.kind {
                ColumnKind::Categorical => {
                    let map: Vec<u32> = col.labels.iter().map(|l| class_of(l)).collect();
                    rows.iter().map(|&r| map[col.cat[r] as usize]).collect()
                }
                ColumnKind::Numeric => {
                    let labels: Vec<(f64, u32)> = t
                        .classes
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.value.parse().unwrap_or(f64::NAN), i as u32))
                        .collect();
                    rows.iter()
                        .map(|&r| {
                            labels
                                .iter()
                                .find(|(v, _)| *v == col.num[r])
                                .map(|x| x.1)
                                .unwrap_or(0)
                        })
                        .collect()
                }
            };
            let y = if t.problem_type == ProblemType::Binary {
                let pos = t.positive_class.as_deref().map(class_of).unwrap_or(1);
                class
                    .iter()
                    .map(|&c| if c == pos { 1.0 } else { 0.0 })
                    .collect()
            } else {
                class.iter().map(|&c| c as f64).collect()
            };
            // Classes are sorted by count, so the cap lumps the rarest.
            let class = class
                .into_iter()
                .map(|c| c.min(MI_MAX_CLASSES as u32))
                .collect();
            (y, class, t.classes.len().min(MI_MAX_CLASSES + 1))
        }
    };
    let mut order: Vec<usize> = (0..rows.len()).collect();
    Rng::new(seed ^ 0xF01D).shuffle(&mut order);
    let mut fold = vec![0u8; rows.len()];
    for (k, &i) in order.iter().enumerate() {
        fold[i] = (k % OOF_FOLDS) as u8;
    }
    TargetEnc {
        rows,
        y,
        class,
        n_classes,
        fold,
    }
}

/// Out-of-fold smoothed target mean of each row's category (missing is its own category):
/// rows in fold k get the mean learned on the other folds, so a value seen once carries no
/// information about its own row.
fn out_of_fold_means(codes: &[u32], n_codes: usize, enc: &TargetEnc) -> Vec<f64> {
    let n_codes = n_codes + 1;
    let code = |c: u32| {
        if c == MISSING {
            n_codes - 1
        } else {
            c as usize
        }
    };
    let mut sum = vec![0.0; n_codes * OOF_FOLDS];
    let mut cnt = vec![0.0; n_codes * OOF_FOLDS];
    let (mut fold_sum, mut fold_cnt) = ([0.0; OOF_FOLDS], [0.0; OOF_FOLDS]);
    for (i, &c) in codes.iter().enumerate() {
        let f = enc.fold[i] as usize;
        sum[code(c) * OOF_FOLDS + f] += enc.y[i];
        cnt[code(c) * OOF_FOLDS + f] += 1.0;
        fold_sum[f] += enc.y[i];
        fold_cnt[f] += 1.0;
    }
    let (all_sum, all_cnt): (f64, f64) = (fold_sum.iter().sum(), fold_cnt.iter().sum());
    codes
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let f = enc.fold[i] as usize;
            let k = code(c) * OOF_FOLDS;
            let (s, n) = (
                sum[k..k + OOF_FOLDS].iter().sum::<f64>() - sum[k + f],
                cnt[k..k + OOF_FOLDS].iter().sum::<f64>() - cnt[k + f],
            );
            let rest = all_cnt - fold_cnt[f];
            let prior = if rest > 0.0 {
                (all_sum - fold_sum[f]) / rest
            } else {
                0.0
            };
            // One pseudo-row at the prior keeps rare categories near it.
            (s + prior) / (n + 1.0)
        })
        .collect()
}

/// Top categories by sample frequency keep their code, others share one, missing another.
fn capped_codes(codes: &[u32], n_labels: usize) -> (Vec<u32>, usize) {
    let mut counts = vec![0usize; n_labels];
    for &c in codes.iter().filter(|&&c| c != MISSING) {
        counts[c as usize] += 1;
    }
    let mut order: Vec<usize> = (0..n_labels).filter(|&c| counts[c] > 0).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let kept = order.len().min(MI_TOP_CATEGORIES);
    let mut map = vec![kept as u32; n_labels];
    for (k, &c) in order.iter().take(kept).enumerate() {
        map[c] = k as u32;
    }
    let missing = kept as u32 + 1;
    (
        codes
            .iter()
            .map(|&c| {
                if c == MISSING {
                    missing
                } else {
                    map[c as usize]
                }
            })
            .collect(),
        kept + 2,
    )
}

pub fn feature_power(
    cols: &[DecodedColumn],
    target_index: usize,
    t: &TargetAnalysis,
    enc: &TargetEnc,
) -> Vec<FeaturePower> {
    let labels = enc.labels();
    let features: Vec<usize> = (0..cols.len()).filter(|&i| i != target_index).collect();
    let mut out: Vec<FeaturePower> = par_map(&features, |&j| {
        let col = &cols[j];
        let (mut auc_v, mut rho) = (None, None);
        let mi = match col.kind {
            ColumnKind::Numeric => {
                let x: Vec<f64> = enc.rows.iter().map(|&r| col.num[r]).collect();
                match t.problem_type {
                    ProblemType::Binary => auc_v = auc(&labels, &x).map(|a| a.max(1.0 - a)),
                    ProblemType::Regression => rho = spearman(&x, &enc.y).map(f64::abs),
                    ProblemType::Multiclass => {}
                }
                let (codes, n) = quantile_bin_codes(&x, MI_BINS);
                mutual_information_bits(&codes, n, &enc.class, enc.n_classes)
            }
            ColumnKind::Categorical => {
                let codes: Vec<u32> = enc.rows.iter().map(|&r| col.cat[r]).collect();
                match t.problem_type {
                    ProblemType::Binary => {
                        auc_v = auc(&labels, &out_of_fold_means(&codes, col.labels.len(), enc));
                    }
                    ProblemType::Regression => {
                        rho = spearman(&out_of_fold_means(&codes, col.labels.len(), enc), &enc.y)
                            .map(f64::abs);
                    }
                    ProblemType::Multiclass => {}
                }
                let (codes, n) = capped_codes(&codes, col.labels.len());
                mutual_information_bits(&codes, n, &enc.class, enc.n_classes)
            }
        };
        let (power, metric) = match t.problem_type {
            ProblemType::Binary => (auc_v.unwrap_or(f64::NAN), "auc"),
            ProblemType::Multiclass => (mi, "mutual_information_bits"),
            ProblemType::Regression => (rho.unwrap_or(f64::NAN), "abs_spearman"),
        };
        FeaturePower {
            column: col.name.clone(),
            kind: col.kind,
            auc: auc_v,
            mutual_information_bits: Some(mi),
            abs_spearman: rho,
            power,
            metric: metric.to_string(),
        }
    });
    // Strongest first; undefined (NaN) last.
    out.sort_by(|a, b| {
        let key = |p: &FeaturePower| {
            if p.power.is_nan() {
                f64::NEG_INFINITY
            } else {
                p.power
            }
        };
        key(b).total_cmp(&key(a)).then(a.column.cmp(&b.column))
    });
    for p in &mut out {
        if p.power.is_nan() {
            p.power = 0.0;
        }
    }
    out
}
