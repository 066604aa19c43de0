//! Sign-preserving power transforms that tame skew: `log` (sign(x)·ln(1 + |x|)) and `power`
//! (sign(x)·|x|^exponent; a result that is not finite becomes missing).

use super::input::{need_num, num_mut};
use super::params::Params;
use super::{FittedStep, Step};
use crate::error::{StepError, StepSpecError};
use crate::frame::Frame;

pub fn parse_log(p: &mut Params) -> Result<Step, StepSpecError> {
    Ok(Step::Log {
        columns: p.columns()?,
    })
}

/// `exponent` is required.
pub fn parse_power(p: &mut Params) -> Result<Step, StepSpecError> {
    let columns = p.columns()?;
    match p.get("exponent") {
        None => Err(p.missing("exponent", "a number, e.g. 0.5")),
        Some(_) => Ok(Step::Power {
            columns,
            exponent: p.float("exponent", 1.0)?,
        }),
    }
}

fn need_numbers(frame: &Frame, columns: &[String]) -> Result<(), StepError> {
    for c in columns {
        need_num(frame, c)?;
    }
    Ok(())
}

pub fn fit_log(frame: &Frame, columns: &[String]) -> Result<FittedStep, StepError> {
    need_numbers(frame, columns)?;
    Ok(FittedStep::Log {
        columns: columns.to_vec(),
    })
}

pub fn fit_power(
    frame: &Frame,
    columns: &[String],
    exponent: f64,
) -> Result<FittedStep, StepError> {
    need_numbers(frame, columns)?;
    Ok(FittedStep::Power {
        columns: columns.to_vec(),
        exponent,
    })
}

pub fn apply_log(frame: &mut Frame, columns: &[String]) -> Result<(), StepError> {
    for c in columns {
        for x in num_mut(frame, c)? {
            *x = x.signum() * x.abs().ln_1p();
        }
    }
    Ok(())
}

pub fn apply_power(frame: &mut Frame, columns: &[String], exponent: f64) -> Result<(), StepError> {
    for c in columns {
        for x in num_mut(frame, c)? {
            let y = x.signum() * x.abs().powf(exponent);
            *x = if y.is_finite() { y } else { f64::NAN };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fit;
    use super::super::testing::{numbers, one_step, recipe_error, texts};
    use crate::error::StepError;
    use crate::frame::Column;

    #[test]
    fn signs_are_kept_and_infinities_become_missing() {
        let mut f = numbers(&[("x", &[-4.0, 0.0, 9.0])]);
        let s = one_step("[[step]]\nop = \"power\"\ncolumns = \"x\"\nexponent = 0.5\n");
        fit(&s, &mut f, None).unwrap();
        assert_eq!(f.column("x"), Some(&Column::Num(vec![-2.0, 0.0, 3.0])));
        let mut f = numbers(&[("x", &[0.0])]);
        let s = one_step("[[step]]\nop = \"power\"\ncolumns = \"x\"\nexponent = -1\n");
        fit(&s, &mut f, None).unwrap();
        assert!(matches!(f.column("x"), Some(Column::Num(v)) if v[0].is_nan()));
        let mut f = numbers(&[("x", &[-(1f64.exp() - 1.0)])]);
        let s = one_step("[[step]]\nop = \"log\"\ncolumns = \"x\"\n");
        fit(&s, &mut f, None).unwrap();
        assert!(matches!(f.column("x"), Some(Column::Num(v)) if (v[0] + 1.0).abs() < 1e-12));
    }

    #[test]
    fn text_columns_and_a_missing_exponent_are_refused() {
        let s = one_step("[[step]]\nop = \"log\"\ncolumns = \"t\"\n");
        let e = fit(&s, &mut texts(&[("t", &[Some("a")])]), None).unwrap_err();
        assert!(matches!(e, StepError::NeedsNumbers { .. }), "{e}");
        let e = recipe_error("[[step]]\nop = \"power\"\ncolumns = \"x\"\n");
        assert!(e.contains("step 1 (power): missing key `exponent`"), "{e}");
    }
}
