//! What kind of problem a target column poses, and its rows as labels.
//!
//! - Two distinct values → binary. The positive class is the one that reads as "yes" (`yes`,
//!   `true`, `1`, `y`, `positive`, case and spaces ignored), else the rarer class (ties: the
//!   later in sort order) — `millrace_wrangle::stats::positive_class`, the rule the
//!   data-quality report and target encoding use too — and it is printed so a user can
//!   override it.
//! - Text with 3 to `MAX_CLASSES` values → multiclass (classes sorted).
//! - Whole numbers with few distinct values → multiclass (ordered classes such as quality
//!   scores 3–8 or star ratings): at least 3 and at most [`MAX_INTEGER_CLASSES`] distinct
//!   values, and no more than 10% of the rows (5% from 1,000 rows on), as AutoGluon decides.
//!   `--problem regression` overrides it.
//! - Other numbers (or text that is numbers, as a CSV of strings gives them) with more than two
//!   values → regression (`--problem multiclass` overrides it).
//!
//! The rule that decided is kept in [`Target::rule`], for training to print.
//!
//! Rows whose target is missing cannot be learnt from and are left out (and counted).

use serde::{Deserialize, Serialize};

use millrace_wrangle::Column;
use millrace_wrangle::frame::{coerce_str, format_num};
use millrace_wrangle::stats::positive_class;

use crate::error::AutoMlError;

/// More distinct text values than this is not a classification target.
pub const MAX_CLASSES: usize = 100;

/// Whole-number targets with more distinct values than this are regression targets.
pub const MAX_INTEGER_CLASSES: usize = 30;

/// The share of rows a whole-number target's distinct values may be and still be classes:
/// 10% under 1,000 rows, 5% from 1,000 on.
fn integer_class_share(rows: usize) -> f64 {
    if rows < 1000 { 0.10 } else { 0.05 }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    Binary { positive: String, negative: String },
    Multiclass { classes: Vec<String> },
    Regression,
}

/// A requested problem type (`--problem`), or `Auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Want {
    #[default]
    Auto,
    Binary,
    Multiclass,
    Regression,
}

/// The target, ready to learn: per kept row, the class index (0 = negative for binary) or the
/// value.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub task: Task,
    /// Rows of the input that have a target, in order.
    pub rows: Vec<usize>,
    /// Class index per kept row (classification); empty for regression.
    pub class: Vec<usize>,
    /// Value per kept row (regression; 0/1 for binary; class index for multiclass).
    pub y: Vec<f64>,
    pub missing: usize,
    /// Why the task is what it is, with the flag that overrides it (printed by training).
    pub rule: String,
}

impl Task {
    pub fn classes(&self) -> Vec<String> {
        match self {
            Task::Binary { positive, negative } => vec![negative.clone(), positive.clone()],
            Task::Multiclass { classes } => classes.clone(),
            Task::Regression => Vec::new(),
        }
    }
}

/// Detects the task of `column` (named `name`) and labels its rows.
pub fn detect(name: &str, column: &Column, want: Want) -> Result<Target, AutoMlError> {
    let err = |message: String| AutoMlError::Target {
        column: name.to_owned(),
        message,
    };
    // Every value as trimmed text (numbers in their shortest form) and as a number.
    let text: Vec<Option<String>> = match column {
        Column::Str(v) => v
            .iter()
            .map(|s| {
                s.as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            })
            .collect(),
        Column::Num(v) => v.iter().map(|x| format_num(*x)).collect(),
    };
    let rows: Vec<usize> = (0..text.len()).filter(|i| text[*i].is_some()).collect();
    let missing = text.len() - rows.len();
    if rows.is_empty() {
        return Err(err("every value is missing".into()));
    }
    let mut distinct: Vec<(String, usize)> = Vec::new();
    {
        let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for i in &rows {
            *counts
                .entry(text[*i].as_deref().unwrap_or_default())
                .or_default() += 1;
        }
        distinct.extend(counts.into_iter().map(|(k, n)| (k.to_owned(), n)));
        distinct.sort();
    }
    if distinct.len() < 2 {
        return Err(err(format!(
            "has a single value ({:?}); there is nothing to predict",
            distinct[0].0
        )));
    }
    let numeric = rows
        .iter()
        .all(|i| !coerce_str(text[*i].as_deref()).is_nan());
    let integers = numeric
        && rows.iter().all(|i| {
            let v = coerce_str(text[*i].as_deref());
            v.fract() == 0.0 && v.abs() < 1e15
        });
    let k = distinct.len();
    let share = integer_class_share(rows.len());
    let few = k <= MAX_INTEGER_CLASSES && (k as f64) <= share * rows.len() as f64;
    let rule = match want {
        Want::Auto if k == 2 => "two distinct values → binary".to_owned(),
        Want::Auto if integers && few => format!(
            "whole numbers with {k} distinct values in {} rows (at most {MAX_INTEGER_CLASSES}              and {:.0}% of the rows) → multiclass; --problem regression to predict a number",
            rows.len(),
            share * 100.0
        ),
        Want::Auto if numeric => format!(
            "numbers with {k} distinct values in {} rows → regression; --problem multiclass to \
             treat them as classes",
            rows.len()
        ),
        Want::Auto => format!("text with {k} distinct values → multiclass"),
        w => format!("--problem {w:?} as asked").to_lowercase(),
    };
    let want = match want {
        Want::Auto if distinct.len() == 2 => Want::Binary,
        Want::Auto if integers && few => Want::Multiclass,
        Want::Auto if numeric => Want::Regression,
        Want::Auto if distinct.len() <= MAX_CLASSES => Want::Multiclass,
        Want::Auto => {
            return Err(err(format!(
                "has {} distinct text values: too many for classes, and not numbers for regression",
                distinct.len()
            )));
        }
        w => w,
    };
    match want {
        Want::Binary => {
            if distinct.len() != 2 {
                return Err(err(format!(
                    "binary needs exactly two values, found {}",
                    distinct.len()
                )));
            }
            let positive = positive_class(&distinct).unwrap_or(1);
            let task = Task::Binary {
                positive: distinct[positive].0.clone(),
                negative: distinct[1 - positive].0.clone(),
            };
            let class: Vec<usize> = rows
                .iter()
                .map(|i| usize::from(text[*i].as_deref() == Some(distinct[positive].0.as_str())))
                .collect();
            let y = class.iter().map(|c| *c as f64).collect();
            Ok(Target {
                task,
                rows,
                class,
                y,
                missing,
                rule,
            })
        }
        Want::Multiclass => {
            if distinct.len() > MAX_CLASSES {
                return Err(err(format!(
                    "{} classes; at most {MAX_CLASSES} are supported",
                    distinct.len()
                )));
            }
            let mut classes: Vec<String> = distinct.iter().map(|(v, _)| v.clone()).collect();
            if numeric {
                // Ordered classes in their numeric order: 3, 8, 10, not 10, 3, 8.
                classes.sort_by(|a, b| coerce_str(Some(a)).total_cmp(&coerce_str(Some(b))));
            }
            let index: std::collections::HashMap<&str, usize> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i))
                .collect();
            let class: Vec<usize> = rows
                .iter()
                .map(|i| {
                    let v = text[*i].as_deref().unwrap_or_default();
                    index.get(v).copied().unwrap_or(0)
                })
                .collect();
            let y = class.iter().map(|c| *c as f64).collect();
            Ok(Target {
                task: Task::Multiclass { classes },
                rows,
                class,
                y,
                missing,
                rule,
            })
        }
        Want::Regression => {
            if !numeric {
                let bad = rows
                    .iter()
                    .find_map(|i| text[*i].as_deref().filter(|s| coerce_str(Some(s)).is_nan()))
                    .unwrap_or_default();
                return Err(err(format!(
                    "regression needs numbers; found {bad:?} (use a classification problem, or \
                     clean the column)"
                )));
            }
            let y = rows
                .iter()
                .map(|i| coerce_str(text[*i].as_deref()))
                .collect();
            Ok(Target {
                task: Task::Regression,
                rows,
                class: Vec::new(),
                y,
                missing,
                rule,
            })
        }
        Want::Auto => unreachable!("resolved above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Column {
        Column::Str(
            v.iter()
                .map(|s| (!s.is_empty()).then(|| s.to_string()))
                .collect(),
        )
    }

    #[test]
    fn binary_positive_is_yes_or_the_rarer_class() {
        let t = detect("Churn", &strs(&["No", "Yes ", "No", ""]), Want::Auto).unwrap();
        assert_eq!(
            t.task,
            Task::Binary {
                positive: "Yes".into(),
                negative: "No".into()
            }
        );
        assert_eq!(
            (t.rows, t.class, t.missing),
            (vec![0, 1, 2], vec![0, 1, 0], 1)
        );
        let t = detect("k", &strs(&["cat", "dog", "dog"]), Want::Auto).unwrap();
        assert!(matches!(t.task, Task::Binary { ref positive, .. } if positive == "cat"));
        let t = detect("k", &Column::Num(vec![0.0, 1.0, 1.0, 1.0]), Want::Auto).unwrap();
        assert!(matches!(t.task, Task::Binary { ref positive, .. } if positive == "1"));
    }

    #[test]
    fn multiclass_regression_and_errors() {
        let t = detect("c", &strs(&["b", "a", "c", "a"]), Want::Auto).unwrap();
        assert_eq!(t.task.classes(), ["a", "b", "c"]);
        assert_eq!(t.class, [1, 0, 2, 0]);
        // Numbers given as text (a CSV of strings) are still numbers.
        let t = detect("p", &strs(&["1.5", " 2", "10"]), Want::Auto).unwrap();
        assert_eq!((t.task, t.y), (Task::Regression, vec![1.5, 2.0, 10.0]));
        let e = detect("p", &strs(&["x", "x", ""]), Want::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("target `p`: has a single value"), "{e}");
        let e = detect("p", &strs(&["", ""]), Want::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("every value is missing"), "{e}");
        let e = detect("p", &strs(&["a", "b", "c"]), Want::Regression)
            .unwrap_err()
            .to_string();
        assert!(e.contains("regression needs numbers; found \"a\""), "{e}");
        let e = detect("p", &strs(&["a", "b", "c"]), Want::Binary)
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly two values"), "{e}");
    }

    /// Quality scores 3–8 on 1,600 rows: six ordered classes, in numeric order, and the rule
    /// says so; the same scores asked as regression stay numbers; many distinct whole numbers,
    /// or fractions, are regression.
    #[test]
    fn few_whole_numbers_are_classes_and_the_rule_is_said() {
        let scores: Vec<f64> = (0..1600)
            .map(|i| [5.0, 6.0, 5.0, 7.0, 4.0, 8.0, 3.0, 6.0][i % 8])
            .collect();
        let t = detect("quality", &Column::Num(scores.clone()), Want::Auto).unwrap();
        assert_eq!(t.task.classes(), ["3", "4", "5", "6", "7", "8"]);
        assert_eq!(t.class[..3], [2, 3, 2]);
        assert!(
            t.rule.contains("6 distinct values in 1600 rows")
                && t.rule.contains("--problem regression"),
            "{}",
            t.rule
        );
        let t = detect("quality", &Column::Num(scores), Want::Regression).unwrap();
        assert_eq!(t.task, Task::Regression);
        // 10 as a class sorts after 9, as a number.
        let t = detect(
            "r",
            &strs(&["10", "9", "8", "9", "10", "8", "9", "10", "8", "9"].repeat(10)),
            Want::Auto,
        )
        .unwrap();
        assert_eq!(t.task.classes(), ["8", "9", "10"]);
        // 40 distinct whole numbers are more than 30: regression.
        let many: Vec<f64> = (0..4000).map(|i| (i % 40) as f64).collect();
        let t = detect("n", &Column::Num(many), Want::Auto).unwrap();
        assert_eq!(t.task, Task::Regression);
        assert!(t.rule.contains("--problem multiclass"), "{}", t.rule);
        // Few values but a fraction among them: regression.
        let frac: Vec<f64> = (0..100).map(|i| [1.0, 2.0, 2.5][i % 3]).collect();
        assert_eq!(
            detect("f", &Column::Num(frac), Want::Auto).unwrap().task,
            Task::Regression
        );
        // Few rows: 5 classes need at least 50 rows.
        let small: Vec<f64> = (0..40).map(|i| (i % 5) as f64).collect();
        assert_eq!(
            detect("s", &Column::Num(small), Want::Auto).unwrap().task,
            Task::Regression
        );
    }
}
