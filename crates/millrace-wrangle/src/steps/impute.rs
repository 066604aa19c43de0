//! `impute`: fill missing values with the training mean, median, most frequent value, or a
//! constant.

use serde::{Deserialize, Serialize};

use super::input::{absent, counts, need};
use super::params::Params;
use super::{FittedStep, Step};
use crate::error::{StepError, StepSpecError};
use crate::frame::{Column, Frame, format_num};
use crate::stats::{mean_std, quantile, sorted};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impute {
    Mean,
    Median,
    Mode,
    Constant,
}

/// A value for `impute` with `strategy = "constant"`, and a fitted fill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Number(f64),
    Text(String),
}

pub fn parse(p: &mut Params) -> Result<Step, StepSpecError> {
    let columns = p.columns()?;
    let strategy = p.choice(
        "strategy",
        &[
            ("mean", Impute::Mean),
            ("median", Impute::Median),
            ("mode", Impute::Mode),
            ("constant", Impute::Constant),
        ],
        None,
    )?;
    let value = match p.get("value") {
        None => None,
        Some(toml::Value::Float(x)) => Some(Scalar::Number(*x)),
        Some(toml::Value::Integer(i)) => Some(Scalar::Number(*i as f64)),
        Some(toml::Value::String(s)) => Some(Scalar::Text(s.clone())),
        Some(v) => return Err(p.bad("value", "a number or a string", v)),
    };
    if strategy == Impute::Constant && value.is_none() {
        return Err(p.missing(
            "value",
            "strategy = \"constant\" needs the value to fill in",
        ));
    }
    Ok(Step::Impute {
        columns,
        strategy,
        value,
    })
}

pub fn fit(
    frame: &Frame,
    columns: &[String],
    strategy: Impute,
    value: Option<&Scalar>,
) -> Result<FittedStep, StepError> {
    let mut fills = Vec::new();
    for c in columns {
        let fill = fill_for(c, need(frame, c)?, strategy, value)?;
        if matches!(fill, Scalar::Number(x) if x.is_nan()) {
            return Err(StepError::NoValues {
                column: c.clone(),
                purpose: "to compute a fill from",
            });
        }
        fills.push((c.clone(), fill));
    }
    Ok(FittedStep::Impute { fills })
}

/// The fill of column `c` under `strategy`.
fn fill_for(
    c: &str,
    col: &Column,
    strategy: Impute,
    value: Option<&Scalar>,
) -> Result<Scalar, StepError> {
    Ok(match (strategy, col) {
        (Impute::Mean, Column::Num(v)) => Scalar::Number(mean_std(v).0),
        (Impute::Median, Column::Num(v)) => Scalar::Number(quantile(&sorted(v), 0.5)),
        (Impute::Mean | Impute::Median, Column::Str(_)) => {
            return Err(StepError::NeedsNumbers {
                column: c.to_owned(),
                hint: "mean and median need numbers (use strategy = \"mode\" or \"constant\")",
            });
        }
        (Impute::Mode, Column::Num(v)) => Scalar::Number(numeric_mode(v)),
        (Impute::Mode, Column::Str(_)) => match counts(col).into_iter().next() {
            Some((c, _)) => Scalar::Text(c),
            None => Scalar::Text(String::new()),
        },
        (Impute::Constant, col) => match (value, col) {
            (Some(Scalar::Number(x)), Column::Num(_)) => Scalar::Number(*x),
            (Some(Scalar::Number(x)), Column::Str(_)) => {
                Scalar::Text(format_num(*x).unwrap_or_default())
            }
            (Some(Scalar::Text(s)), Column::Str(_)) => Scalar::Text(s.clone()),
            (Some(Scalar::Text(s)), Column::Num(_)) => {
                return Err(StepError::TextConstant {
                    column: c.to_owned(),
                    value: s.clone(),
                });
            }
            (None, _) => return Err(StepError::MissingConstant),
        },
    })
}

/// The most frequent number (NaN when none); ties go to the smallest, as the text case goes to
/// the first text.
fn numeric_mode(v: &[f64]) -> f64 {
    let s = sorted(v);
    let mut best = (f64::NAN, 0usize);
    let mut i = 0;
    while i < s.len() {
        let j = s[i..].iter().take_while(|x| **x == s[i]).count();
        if j > best.1 {
            best = (s[i], j);
        }
        i += j;
    }
    best.0
}

pub fn apply(frame: &mut Frame, fills: &[(String, Scalar)]) -> Result<(), StepError> {
    for (c, fill) in fills {
        match (frame.column_mut(c), fill) {
            (Some(Column::Num(v)), Scalar::Number(x)) => {
                v.iter_mut().filter(|v| v.is_nan()).for_each(|v| *v = *x)
            }
            (Some(Column::Str(v)), Scalar::Text(s)) => v
                .iter_mut()
                .filter(|v| v.is_none())
                .for_each(|v| *v = Some(s.clone())),
            (Some(Column::Str(v)), Scalar::Number(x)) => {
                let s = format_num(*x);
                v.iter_mut()
                    .filter(|v| v.is_none())
                    .for_each(|v| *v = s.clone())
            }
            (Some(Column::Num(_)), Scalar::Text(_)) => {
                return Err(StepError::WrongKind {
                    column: c.clone(),
                    found: "numbers",
                    expected: "the fill is text",
                });
            }
            (None, _) => return Err(absent(c)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{numbers, one_step, recipe_error, texts};
    use super::super::{FittedStep, fit};
    use super::*;

    #[test]
    fn fills_by_strategy() {
        let data: &[f64] = &[1.0, f64::NAN, 2.0, 2.0, 9.0];
        for (strategy, want) in [("mean", 3.5), ("median", 2.0), ("mode", 2.0)] {
            let s = one_step(&format!(
                "[[step]]\nop = \"impute\"\ncolumns = \"x\"\nstrategy = \"{strategy}\"\n"
            ));
            let mut f = numbers(&[("x", data)]);
            let fitted = fit(&s, &mut f, None).unwrap();
            assert_eq!(
                fitted,
                FittedStep::Impute {
                    fills: vec![("x".into(), Scalar::Number(want))]
                }
            );
            assert_eq!(
                f.column("x"),
                Some(&Column::Num(vec![1.0, want, 2.0, 2.0, 9.0]))
            );
        }
    }

    #[test]
    fn text_columns_need_mode_or_a_text_constant() {
        let mut f = texts(&[("t", &[Some("a"), None, Some("b"), Some("b")])]);
        let s = one_step("[[step]]\nop = \"impute\"\ncolumns = \"t\"\nstrategy = \"mean\"\n");
        let e = fit(&s, &mut f.clone(), None).unwrap_err();
        assert!(matches!(e, StepError::NeedsNumbers { ref column, .. } if column == "t"));
        let s = one_step("[[step]]\nop = \"impute\"\ncolumns = \"t\"\nstrategy = \"mode\"\n");
        fit(&s, &mut f, None).unwrap();
        assert!(!f.column("t").unwrap().is_missing(1));
        let mut g = numbers(&[("x", &[f64::NAN])]);
        let s = one_step(
            "[[step]]\nop = \"impute\"\ncolumns = \"x\"\nstrategy = \"constant\"\nvalue = \"z\"\n",
        );
        let e = fit(&s, &mut g, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "column `x` holds numbers; the constant \"z\" is text"
        );
        let e =
            recipe_error("[[step]]\nop = \"impute\"\ncolumns = [\"a\"]\nstrategy = \"constant\"\n");
        assert!(e.contains("step 1 (impute): missing key `value`"), "{e}");
    }
}
