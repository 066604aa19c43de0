//! What kind of problem a target column poses, and its rows as labels.
//!
//! - Two distinct values → binary. The positive class is the one that reads as "yes" (`yes`,
//!   `true`, `1`, `y`, `positive`, case and spaces ignored), else the rarer class (ties: the
//!   later in sort order) — `millrace_wrangle::stats::positive_class`, the rule the
//!   data-quality report and target encoding use too — and it is printed so a user can
//!   override it.
//! - Text with 3 to `MAX_CLASSES` values → multiclass (classes sorted).
//! - Numbers (or text that is numbers, as a CSV of strings gives them) with more than two
//!   values → regression.
//!
//! Rows whose target is missing cannot be learnt from and are left out (and counted).

use serde::{Deserialize, Serialize};

use millrace_wrangle::Column;
use millrace_wrangle::frame::{coerce_str, format_num};
use millrace_wrangle::stats::positive_class;

use crate::error::AutoMlError;

/// More distinct text values than this is not a classification target.
pub const MAX_CLASSES: usize = 100;

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
    let want = match want {
        Want::Auto if distinct.len() == 2 => Want::Binary,
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
            })
        }
        Want::Multiclass => {
            if distinct.len() > MAX_CLASSES {
                return Err(err(format!(
                    "{} classes; at most {MAX_CLASSES} are supported",
                    distinct.len()
                )));
            }
            let classes: Vec<String> = distinct.iter().map(|(v, _)| v.clone()).collect();
            let class: Vec<usize> = rows
                .iter()
                .map(|i| {
                    let v = text[*i].as_deref().unwrap_or_default();
                    classes.binary_search_by(|c| c.as_str().cmp(v)).unwrap_or(0)
                })
                .collect();
            let y = class.iter().map(|c| *c as f64).collect();
            Ok(Target {
                task: Task::Multiclass { classes },
                rows,
                class,
                y,
                missing,
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
}
