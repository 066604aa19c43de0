//! `scale`: `(x − center) / spread` per column — standard (mean, standard deviation), min-max
//! (minimum, range) or robust (median, interquartile range). A constant column keeps its
//! spread (1) rather than dividing by zero.

use serde::{Deserialize, Serialize};

use super::input::{need_num, num_mut};
use super::params::Params;
use super::{FittedStep, Step};
use crate::error::{StepError, StepSpecError};
use crate::frame::Frame;
use crate::stats::{mean_std, quantile, sorted};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    Standard,
    MinMax,
    Robust,
}

pub fn parse(p: &mut Params) -> Result<Step, StepSpecError> {
    Ok(Step::Scale {
        columns: p.columns()?,
        method: p.choice(
            "method",
            &[
                ("standard", Scale::Standard),
                ("min_max", Scale::MinMax),
                ("minmax", Scale::MinMax),
                ("robust", Scale::Robust),
            ],
            Some(Scale::Standard),
        )?,
    })
}

pub fn fit(frame: &Frame, columns: &[String], method: Scale) -> Result<FittedStep, StepError> {
    let mut out = Vec::new();
    for c in columns {
        let v = need_num(frame, c)?;
        let (center, scale) = match method {
            Scale::Standard => {
                let (m, s, _) = mean_std(v);
                (m, s)
            }
            Scale::MinMax => {
                let s = sorted(v);
                match (s.first(), s.last()) {
                    (Some(lo), Some(hi)) => (*lo, hi - lo),
                    _ => (f64::NAN, f64::NAN),
                }
            }
            Scale::Robust => {
                let s = sorted(v);
                (quantile(&s, 0.5), quantile(&s, 0.75) - quantile(&s, 0.25))
            }
        };
        if center.is_nan() {
            return Err(StepError::NoValues {
                column: c.clone(),
                purpose: "to fit on",
            });
        }
        // A constant column would divide by zero: leave its spread alone.
        let scale = if scale > 0.0 && scale.is_finite() {
            scale
        } else {
            1.0
        };
        out.push((c.clone(), center, scale));
    }
    Ok(FittedStep::Affine { columns: out })
}

pub fn apply(frame: &mut Frame, columns: &[(String, f64, f64)]) -> Result<(), StepError> {
    for (c, center, scale) in columns {
        for x in num_mut(frame, c)? {
            *x = (*x - center) / scale;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{numbers, one_step, recipe_error};
    use super::super::{FittedStep, fit};

    #[test]
    fn centers_and_spreads_by_method() {
        let data: &[f64] = &[1.0, 2.0, 3.0, 4.0, f64::NAN];
        for (method, center, spread) in [
            ("standard", 2.5, 1.25f64.sqrt()),
            ("min_max", 1.0, 3.0),
            ("robust", 2.5, 1.5),
        ] {
            let s = one_step(&format!(
                "[[step]]\nop = \"scale\"\ncolumns = \"x\"\nmethod = \"{method}\"\n"
            ));
            let fitted = fit(&s, &mut numbers(&[("x", data)]), None).unwrap();
            assert_eq!(
                fitted,
                FittedStep::Affine {
                    columns: vec![("x".into(), center, spread)]
                },
                "{method}"
            );
        }
        // Constant: spread 1.
        let s = one_step("[[step]]\nop = \"scale\"\ncolumns = \"x\"\n");
        let fitted = fit(&s, &mut numbers(&[("x", &[5.0, 5.0])]), None).unwrap();
        assert_eq!(
            fitted,
            FittedStep::Affine {
                columns: vec![("x".into(), 5.0, 1.0)]
            }
        );
    }

    #[test]
    fn missing_and_unknown_keys_are_named() {
        let e = recipe_error("[[step]]\nop = \"scale\"\ncolums = [\"a\"]\n");
        assert!(e.contains("step 1 (scale): missing key `columns`"), "{e}");
        let e = recipe_error(
            "[[step]]\nop = \"scale\"\ncolumns = [\"a\"]\nmethod = \"standard\"\nextra = 1\n",
        );
        assert!(e.contains("step 1 (scale): unknown key `extra`"), "{e}");
    }
}
