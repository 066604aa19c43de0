//! `clip`: hold values inside bounds learnt on the training data — its `lower` and `upper`
//! quantiles, or `z` standard deviations around the mean.

use serde::{Deserialize, Serialize};

use super::input::{need_num, num_mut};
use super::params::Params;
use super::{FittedStep, Step};
use crate::error::{StepError, StepSpecError};
use crate::frame::Frame;
use crate::stats::{mean_std, quantile, sorted};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clip {
    Quantile,
    Zscore,
}

/// Needs 0 ≤ lower < upper ≤ 1 and z > 0 (checked whichever method is used).
pub fn parse(p: &mut Params) -> Result<Step, StepSpecError> {
    let columns = p.columns()?;
    let method = p.choice(
        "method",
        &[("quantile", Clip::Quantile), ("zscore", Clip::Zscore)],
        Some(Clip::Quantile),
    )?;
    let lower = p.float("lower", 0.01)?;
    let upper = p.float("upper", 0.99)?;
    let z = p.float("z", 3.0)?;
    if !(0.0..=1.0).contains(&lower) || !(0.0..=1.0).contains(&upper) || lower >= upper || z <= 0.0
    {
        return Err(StepSpecError::ClipBounds {
            at: p.at(),
            lower,
            upper,
            z,
        });
    }
    Ok(Step::Clip {
        columns,
        method,
        lower,
        upper,
        z,
    })
}

pub fn fit(
    frame: &Frame,
    columns: &[String],
    method: Clip,
    (lower, upper): (f64, f64),
    z: f64,
) -> Result<FittedStep, StepError> {
    let mut out = Vec::new();
    for c in columns {
        let v = need_num(frame, c)?;
        let (lo, hi) = match method {
            Clip::Quantile => {
                let s = sorted(v);
                (quantile(&s, lower), quantile(&s, upper))
            }
            Clip::Zscore => {
                let (m, s, _) = mean_std(v);
                (m - z * s, m + z * s)
            }
        };
        if lo.is_nan() {
            return Err(StepError::NoValues {
                column: c.clone(),
                purpose: "to fit on",
            });
        }
        out.push((c.clone(), lo, hi));
    }
    Ok(FittedStep::Clip { columns: out })
}

/// Missing values stay missing.
pub fn apply(frame: &mut Frame, columns: &[(String, f64, f64)]) -> Result<(), StepError> {
    for (c, lo, hi) in columns {
        for x in num_mut(frame, c)? {
            if !x.is_nan() {
                *x = x.clamp(*lo, *hi);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{numbers, one_step, recipe_error};
    use super::super::{FittedStep, fit};
    use crate::error::StepError;

    #[test]
    fn bounds_come_from_quantiles_or_z_scores() {
        let data: &[f64] = &[0.0, 1.0, 2.0, 3.0, 4.0];
        let s = one_step("[[step]]\nop = \"clip\"\ncolumns = \"x\"\nlower = 0.25\nupper = 0.5\n");
        let mut f = numbers(&[("x", data)]);
        let fitted = fit(&s, &mut f, None).unwrap();
        assert_eq!(
            fitted,
            FittedStep::Clip {
                columns: vec![("x".into(), 1.0, 2.0)]
            }
        );
        let s = one_step("[[step]]\nop = \"clip\"\ncolumns = \"x\"\nmethod = \"zscore\"\nz = 1\n");
        let fitted = fit(&s, &mut numbers(&[("x", data)]), None).unwrap();
        let r = 2f64.sqrt();
        assert_eq!(
            fitted,
            FittedStep::Clip {
                columns: vec![("x".into(), 2.0 - r, 2.0 + r)]
            }
        );
        let s = one_step("[[step]]\nop = \"clip\"\ncolumns = \"x\"\n");
        let e = fit(&s, &mut numbers(&[("x", &[f64::NAN])]), None).unwrap_err();
        assert!(matches!(e, StepError::NoValues { .. }), "{e}");
    }

    #[test]
    fn bounds_out_of_order_are_refused() {
        let e =
            recipe_error("[[step]]\nop = \"clip\"\ncolumns = \"x\"\nlower = 0.9\nupper = 0.1\n");
        assert_eq!(
            e,
            "recipe r.toml: step 1 (clip): need 0 ≤ lower < upper ≤ 1 (quantiles) and z > 0, got lower = 0.9, upper = 0.1, z = 3"
        );
    }
}
