//! The statistics that recipes, the data-quality report and the AutoML trainer must agree on,
//! defined once: quantiles (numpy's default), mean and spread, ROC AUC, and which class of a
//! binary target is the positive one.
//!
//! One definition each, because the same figure computed two ways drifts apart: a profile that
//! calls "Yes" the positive class while the trainer calls it "No" reports an AUC the model
//! never had.

/// Sorted non-missing values (NaN is missing).
pub fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    s.sort_unstable_by(f64::total_cmp);
    s
}

/// Quantile `q` (clamped to [0, 1]) of sorted values, linear between the closest ranks at
/// position `q · (n − 1)`: numpy's default (`method="linear"`). NaN for no values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Mean, population standard deviation and count of the non-missing values (NaN, NaN, 0 when
/// there are none).
pub fn mean_std(v: &[f64]) -> (f64, f64, usize) {
    let (mut n, mut sum) = (0usize, 0.0);
    for x in v.iter().filter(|x| !x.is_nan()) {
        n += 1;
        sum += x;
    }
    if n == 0 {
        return (f64::NAN, f64::NAN, 0);
    }
    let mean = sum / n as f64;
    let var = v
        .iter()
        .filter(|x| !x.is_nan())
        .map(|x| (x - mean) * (x - mean))
        .sum::<f64>()
        / n as f64;
    (mean, var.sqrt(), n)
}

/// ROC AUC of `scores` for `labels` (`true` = positive), in scikit-learn's argument order
/// (`roc_auc_score(y_true, y_score)`): the Mann-Whitney U with tied scores sharing their
/// average rank, so a tie between a positive and a negative counts a half. Rows with a NaN
/// score are left out. `None` when either class is absent.
pub fn auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len().min(labels.len()))
        .filter(|i| !scores[*i].is_nan())
        .collect();
    let pos = order.iter().filter(|i| labels[**i]).count();
    let neg = order.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    order.sort_unstable_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    // Ranks i+1 ..= j+1 share their mean; every rank is a half-integer, so the sum is exact.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|k| labels[**k]).count() as f64 * avg;
        i = j + 1;
    }
    Some((rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos as f64 * neg as f64))
}

/// Whether a class label reads as "yes": `yes`, `true`, `1`, `y`, `positive` or `1.0`, case
/// and surrounding spaces ignored.
pub fn is_positive_label(label: &str) -> bool {
    matches!(
        label.trim().to_ascii_lowercase().as_str(),
        "yes" | "true" | "1" | "y" | "positive" | "1.0"
    )
}

/// The positive class of a binary target, given its classes with their row counts (in any
/// order): the class that reads as "yes" (`is_positive_label`; if both do, the first in text
/// order), else the rarer class, and on equal counts the later in text order. A single class
/// is its own positive; `None` for no classes or more than two.
pub fn positive_class<S: AsRef<str>>(classes: &[(S, usize)]) -> Option<usize> {
    match classes {
        [] => None,
        [_] => Some(0),
        [a, b] => {
            let (first, second) = if a.0.as_ref() <= b.0.as_ref() {
                (0, 1)
            } else {
                (1, 0)
            };
            let yes = |i: usize| is_positive_label(classes[i].0.as_ref());
            Some(
                if yes(first) || (!yes(second) && classes[second].1 > classes[first].1) {
                    first
                } else {
                    second
                },
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy_linear() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert!((quantile(&v, 0.25) - 1.75).abs() < 1e-12);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert!(quantile(&[], 0.5).is_nan());
        // An exact rank does not touch its neighbour, so an infinite one cannot spoil it.
        assert_eq!(quantile(&[1.0, f64::INFINITY], 0.0), 1.0);
    }

    #[test]
    fn mean_and_population_std_skip_missing() {
        let (m, s, n) = mean_std(&[1.0, f64::NAN, 3.0]);
        assert_eq!((m, s, n), (2.0, 1.0, 2));
        assert!(mean_std(&[f64::NAN]).0.is_nan());
        assert_eq!(sorted(&[3.0, f64::NAN, 1.0]), vec![1.0, 3.0]);
    }

    #[test]
    fn auc_matches_hand_computed_values_with_ties() {
        // scikit-learn: roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) = 0.75
        assert_eq!(
            auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]),
            Some(0.75)
        );
        assert_eq!(
            auc(&[false, false, true, true], &[0.1, 0.2, 0.8, 0.9]),
            Some(1.0)
        );
        // A tie between a positive and a negative counts a half.
        assert_eq!(auc(&[false, true], &[0.5, 0.5]), Some(0.5));
        assert_eq!(auc(&[false, true, true], &[0.2, 0.2, 0.9]), Some(0.75));
        assert_eq!(auc(&[true, true], &[0.1, 0.2]), None);
        // Missing scores are left out.
        assert_eq!(auc(&[false, true, true], &[0.1, f64::NAN, 0.9]), Some(1.0));
    }

    #[test]
    fn the_positive_class_reads_as_yes_or_is_the_rarer() {
        assert_eq!(positive_class(&[("No", 5), ("Yes ", 9)]), Some(1));
        assert_eq!(positive_class(&[("TRUE", 9), ("false", 1)]), Some(0));
        assert_eq!(positive_class(&[("cat", 1), ("dog", 2)]), Some(0));
        // Equal counts: the later in text order, whatever the order given.
        assert_eq!(positive_class(&[("b", 2), ("a", 2)]), Some(0));
        assert_eq!(positive_class(&[("a", 2), ("b", 2)]), Some(1));
        // Both read as yes: the first in text order.
        assert_eq!(positive_class(&[("yes", 1), ("1", 5)]), Some(1));
        assert_eq!(positive_class(&[("only", 3)]), Some(0));
        assert_eq!(positive_class::<&str>(&[]), None);
        assert_eq!(positive_class(&[("a", 1), ("b", 1), ("c", 1)]), None);
    }
}
