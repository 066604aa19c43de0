//! `encode`: categories to numbers — one-hot columns (`one_hot`), positions in a category list
//! (`ordinal`), smoothed target means (`target`) or category shares (`frequency`). Numbers
//! count as categories by their text form.
//!
//! Target encoding gives the training rows out-of-fold values (a row's own target never shapes
//! its feature) and later data the full-data means.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::input::{Index, absent, category, counts, need};
use super::params::Params;
use super::{FittedStep, Step};
use crate::error::{StepError, StepSpecError};
use crate::frame::{Column, Frame, Name};
use crate::stats::positive_class;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encode {
    OneHot,
    Ordinal,
    Target,
    Frequency,
}

/// A fitted one-hot encoding of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneHot {
    pub column: String,
    pub categories: Vec<String>,
    /// Output names: one per category, then `{column}_other` when the rest have a column.
    pub names: Vec<String>,
    pub other: bool,
}

/// A value per category (target and frequency encodings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lookup {
    pub column: String,
    pub values: BTreeMap<String, f64>,
    /// Value for a category not in `values`.
    #[serde(with = "nan_as_null")]
    pub unknown: f64,
    /// Value for a missing category.
    #[serde(with = "nan_as_null")]
    pub missing: f64,
}

/// JSON has no NaN: a missing-value result is written as `null`.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_nan() {
            s.serialize_none()
        } else {
            s.serialize_f64(*x)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

pub fn parse(p: &mut Params) -> Result<Step, StepSpecError> {
    Ok(Step::Encode {
        columns: p.columns()?,
        method: p.choice(
            "method",
            &[
                ("one_hot", Encode::OneHot),
                ("ordinal", Encode::Ordinal),
                ("target", Encode::Target),
                ("frequency", Encode::Frequency),
            ],
            None,
        )?,
        max_categories: p.count("max_categories", 20, 1)?,
        other: p.flag("other", true)?,
        categories: match p.get("categories") {
            None => None,
            Some(_) => Some(p.strings("categories", true)?),
        },
        smoothing: p.float("smoothing", 10.0)?,
        folds: p.count("folds", 5, 2)?,
        seed: p.count("seed", 42, 0)? as u64,
    })
}

/// The `max_categories` most frequent categories of each column; the rest share
/// `{column}_other` when `other` (and there is a rest).
pub fn fit_one_hot(
    frame: &Frame,
    columns: &[String],
    max_categories: usize,
    other: bool,
) -> Result<FittedStep, StepError> {
    let mut out = Vec::new();
    for c in columns {
        let all = counts(need(frame, c)?);
        let rest = all.len() > max_categories;
        let cats: Vec<String> = all
            .into_iter()
            .take(max_categories)
            .map(|(c, _)| c)
            .collect();
        let mut names: Vec<String> = cats.iter().map(|v| format!("{c}_{v}")).collect();
        let other = other && rest;
        if other {
            names.push(format!("{c}_other"));
        }
        out.push(OneHot {
            column: c.clone(),
            categories: cats,
            names,
            other,
        });
    }
    Ok(FittedStep::OneHot { columns: out })
}

/// Positions in `categories` when given, else in the sorted categories seen.
pub fn fit_ordinal(
    frame: &Frame,
    columns: &[String],
    categories: Option<&[String]>,
) -> Result<FittedStep, StepError> {
    let mut out = Vec::new();
    for c in columns {
        let col = need(frame, c)?;
        let cats = match categories {
            Some(list) => list.to_vec(),
            None => {
                let mut v: Vec<String> = counts(col).into_iter().map(|(c, _)| c).collect();
                v.sort_unstable();
                v
            }
        };
        out.push((c.clone(), cats));
    }
    Ok(FittedStep::Ordinal { columns: out })
}

/// Each category's share of the rows; unseen categories get 0, missing values stay missing.
pub fn fit_frequency(frame: &Frame, columns: &[String]) -> Result<FittedStep, StepError> {
    let mut out = Vec::new();
    for c in columns {
        let col = need(frame, c)?;
        let n = col.len().max(1) as f64;
        out.push(Lookup {
            column: c.clone(),
            values: counts(col)
                .into_iter()
                .map(|(k, m)| (k, m as f64 / n))
                .collect(),
            unknown: 0.0,
            missing: f64::NAN,
        });
    }
    Ok(FittedStep::Lookup { columns: out })
}

/// Fits target encoding and writes the training rows' out-of-fold values into `frame`
/// (unlike other steps, whose training output is their fitted form applied).
pub fn fit_target(
    frame: &mut Frame,
    columns: &[String],
    target: Option<&str>,
    smoothing: f64,
    k: usize,
    seed: u64,
) -> Result<FittedStep, StepError> {
    let y = target_values(frame, target)?;
    let fold = folds(frame.rows(), k, seed);
    let mut out = Vec::new();
    let mut oof_cols = Vec::new();
    for c in columns {
        if Some(c.as_str()) == target {
            return Err(StepError::EncodesTarget { column: c.clone() });
        }
        let col = need(frame, c)?;
        let (full, oof) = target_encode(col, &y, &fold, k, smoothing);
        out.push(Lookup {
            column: c.clone(),
            values: full.0,
            unknown: full.1,
            missing: full.1,
        });
        oof_cols.push((c.clone(), oof));
    }
    // Training rows get out-of-fold values; later data gets the full-data means.
    for (c, v) in oof_cols {
        frame.set(Name::from(c.as_str()), Column::Num(v));
    }
    Ok(FittedStep::Lookup { columns: out })
}

/// Fold of each row: a seeded shuffle dealt round-robin, so folds differ in size by at most one.
pub fn folds(rows: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows).collect();
    crate::rng::Rng::new(seed).shuffle(&mut order);
    let mut fold = vec![0; rows];
    for (pos, row) in order.into_iter().enumerate() {
        fold[row] = pos % k;
    }
    fold
}

/// The target as numbers for target encoding: numeric as is; two-class text as 1 for the
/// positive class (`stats::positive_class`: the one that reads as "yes", else the rarer) and 0
/// for the other.
fn target_values(frame: &Frame, target: Option<&str>) -> Result<Vec<f64>, StepError> {
    let name = target.ok_or(StepError::NoTarget)?;
    let col = need(frame, name).map_err(|_| StepError::UnknownTarget {
        column: name.to_owned(),
        available: frame.names().iter().map(|n| n.to_string()).collect(),
    })?;
    match col {
        Column::Num(v) => Ok(v.clone()),
        Column::Str(v) => {
            let classes = counts(col);
            let positive = match positive_class(&classes) {
                Some(i) if classes.len() == 2 => classes[i].0.clone(),
                _ => {
                    return Err(StepError::TargetClasses {
                        column: name.to_owned(),
                        classes: classes.len(),
                    });
                }
            };
            Ok(v.iter()
                .map(|s| match s {
                    Some(s) => f64::from(u8::from(*s == positive)),
                    None => f64::NAN,
                })
                .collect())
        }
    }
}

/// Smoothed per-category target means: the full-data map (and the prior for unknowns), and
/// each row's out-of-fold value.
#[allow(clippy::type_complexity)]
fn target_encode(
    col: &Column,
    y: &[f64],
    fold: &[usize],
    k: usize,
    m: f64,
) -> ((BTreeMap<String, f64>, f64), Vec<f64>) {
    // Per category: (sum, count) overall and per fold.
    let mut stats: HashMap<String, (f64, f64, Vec<(f64, f64)>)> = HashMap::new();
    let mut total = (0.0, 0.0);
    let mut per_fold = vec![(0.0, 0.0); k];
    for i in 0..col.len() {
        if y[i].is_nan() {
            continue;
        }
        total.0 += y[i];
        total.1 += 1.0;
        per_fold[fold[i]].0 += y[i];
        per_fold[fold[i]].1 += 1.0;
        if let Some(c) = category(col, i) {
            let e = stats
                .entry(c.into_owned())
                .or_insert_with(|| (0.0, 0.0, vec![(0.0, 0.0); k]));
            e.0 += y[i];
            e.1 += 1.0;
            e.2[fold[i]].0 += y[i];
            e.2[fold[i]].1 += 1.0;
        }
    }
    let prior = if total.1 > 0.0 {
        total.0 / total.1
    } else {
        0.0
    };
    let smooth = |sum: f64, n: f64, prior: f64| (sum + prior * m) / (n + m);
    let full: BTreeMap<String, f64> = stats
        .iter()
        .map(|(c, (s, n, _))| (c.clone(), smooth(*s, *n, prior)))
        .collect();
    let oof = (0..col.len())
        .map(|i| {
            let f = fold[i];
            let rest = (total.0 - per_fold[f].0, total.1 - per_fold[f].1);
            let prior_f = if rest.1 > 0.0 { rest.0 / rest.1 } else { prior };
            match category(col, i).and_then(|c| stats.get(c.as_ref())) {
                Some((s, n, folds)) => smooth(s - folds[f].0, n - folds[f].1, prior_f),
                None => prior_f,
            }
        })
        .collect();
    ((full, prior), oof)
}

/// Replaces each column by its one-hot columns, in its place.
pub fn apply_one_hot(frame: &mut Frame, columns: &[OneHot]) -> Result<(), StepError> {
    for oh in columns {
        let Some(at) = frame.index(&oh.column) else {
            return Err(absent(&oh.column));
        };
        let col = frame.remove(&oh.column).unwrap_or(Column::Num(Vec::new()));
        let n = frame.rows();
        let index = Index::new(&oh.categories);
        let mut outs: Vec<Vec<f64>> = vec![vec![0.0; n]; oh.names.len()];
        #[allow(clippy::needless_range_loop)] // `i` indexes the input and every output
        for i in 0..n {
            if let Some(c) = category(&col, i) {
                match index.get(&c) {
                    Some(j) => outs[j][i] = 1.0,
                    None if oh.other => outs[oh.categories.len()][i] = 1.0,
                    None => {}
                }
            }
        }
        for (j, (name, v)) in oh.names.iter().zip(outs).enumerate() {
            frame.insert_at(at + j, Name::from(name.as_str()), Column::Num(v));
        }
    }
    Ok(())
}

pub fn apply_ordinal(
    frame: &mut Frame,
    columns: &[(String, Vec<String>)],
) -> Result<(), StepError> {
    for (c, cats) in columns {
        let Some(col) = frame.column(c) else {
            return Err(absent(c));
        };
        let index = Index::new(cats);
        let v: Vec<f64> = (0..col.len())
            .map(|i| {
                category(col, i)
                    .and_then(|s| index.get(&s))
                    .map_or(f64::NAN, |j| j as f64)
            })
            .collect();
        frame.set(Name::from(c.as_str()), Column::Num(v));
    }
    Ok(())
}

pub fn apply_lookup(frame: &mut Frame, columns: &[Lookup]) -> Result<(), StepError> {
    for l in columns {
        let Some(col) = frame.column(&l.column) else {
            return Err(absent(&l.column));
        };
        let v: Vec<f64> = (0..col.len())
            .map(|i| match category(col, i) {
                Some(s) => l.values.get(s.as_ref()).copied().unwrap_or(l.unknown),
                None => l.missing,
            })
            .collect();
        frame.set(Name::from(l.column.as_str()), Column::Num(v));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{one_step, recipe_error, texts};
    use super::super::{Rows, Step, fit};
    use super::*;

    #[test]
    fn defaults_fill_in_and_bad_methods_are_named() {
        let r = crate::recipe::Recipe::parse(
            "target = \"y\"\n[[step]]\nop = \"encode\"\ncolumns = \"c\"\nmethod = \"one_hot\"\n",
            "r",
        )
        .unwrap();
        assert_eq!(r.target.as_deref(), Some("y"));
        match &r.steps[0] {
            Step::Encode {
                columns,
                max_categories,
                other,
                ..
            } => {
                assert_eq!(columns, &vec!["c".to_string()]);
                assert_eq!((*max_categories, *other), (20, true));
            }
            s => panic!("{s:?}"),
        }
        let e = recipe_error("[[step]]\nop = \"encode\"\ncolumns = [\"a\"]\nmethod = \"hot\"\n");
        assert!(
            e.contains(
                "key `method` must be one of one_hot, ordinal, target, frequency, got \"hot\""
            ),
            "{e}"
        );
    }

    #[test]
    fn one_hot_keeps_the_frequent_and_pools_the_rest() {
        let v: &[Option<&str>] = &[Some("a"), Some("a"), Some("b"), Some("c"), None];
        let mut f = texts(&[("k", v)]);
        let s = one_step(
            "[[step]]\nop = \"encode\"\ncolumns = \"k\"\nmethod = \"one_hot\"\nmax_categories = 1\n",
        );
        let fitted = fit(&s, &mut f, None).unwrap();
        let names: Vec<&str> = f.names().iter().map(|n| &**n).collect();
        assert_eq!(names, ["k_a", "k_other"]);
        assert_eq!(
            f.column("k_other"),
            Some(&Column::Num(vec![0.0, 0.0, 1.0, 1.0, 0.0]))
        );
        let mut g = texts(&[("k", &[Some("zzz")])]);
        fitted.apply(&mut g, Rows::Keep).unwrap();
        assert_eq!(g.column("k_other"), Some(&Column::Num(vec![1.0])));
    }

    #[test]
    fn target_encoding_reads_yes_as_positive_and_refuses_many_classes() {
        let mut f = texts(&[
            ("k", &[Some("a"), Some("a"), Some("b"), Some("b")]),
            ("y", &[Some("yes"), Some("no"), Some("no"), Some("no")]),
        ]);
        assert_eq!(
            target_values(&f, Some("y")).unwrap(),
            vec![1.0, 0.0, 0.0, 0.0]
        );
        let s = one_step("[[step]]\nop = \"encode\"\ncolumns = \"y\"\nmethod = \"target\"\n");
        assert_eq!(
            fit(&s, &mut f.clone(), Some("y")).unwrap_err(),
            StepError::EncodesTarget { column: "y".into() }
        );
        f.set(
            "y".into(),
            Column::Str(vec![
                Some("p".into()),
                Some("q".into()),
                Some("r".into()),
                None,
            ]),
        );
        assert_eq!(
            target_values(&f, Some("y")).unwrap_err(),
            StepError::TargetClasses {
                column: "y".into(),
                classes: 3
            }
        );
    }

    #[test]
    fn folds_are_balanced_and_seeded() {
        let f = folds(11, 3, 7);
        assert_eq!(f, folds(11, 3, 7));
        for k in 0..3 {
            let n = f.iter().filter(|x| **x == k).count();
            assert!((3..=4).contains(&n), "{f:?}");
        }
    }
}
