//! `derive`: a new (or replaced) column from a SQL expression over the row's columns.

use super::input::need;
use super::params::Params;
use super::{FittedStep, Step};
use crate::error::{StepError, StepSpecError};
use crate::expr::Expr;
use crate::frame::{Frame, Name};

pub fn parse(p: &mut Params) -> Result<Step, StepSpecError> {
    let name = p.string("name")?;
    let (expr, text) = p.expr("expr")?;
    Ok(Step::Derive { name, expr, text })
}

pub fn fit(frame: &Frame, name: &str, expr: &Expr) -> Result<FittedStep, StepError> {
    for c in expr.columns() {
        need(frame, &c)?;
    }
    Ok(FittedStep::Derive {
        name: name.to_owned(),
        expr: expr.clone(),
    })
}

pub fn apply(frame: &mut Frame, name: &str, expr: &Expr) -> Result<(), StepError> {
    let col = expr.eval(frame).map_err(StepError::Expr)?;
    frame.set(Name::from(name), col);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fit;
    use super::super::testing::{numbers, one_step};
    use crate::error::StepError;
    use crate::frame::Column;

    #[test]
    fn computes_a_column_from_others() {
        let mut f = numbers(&[("a", &[1.0, 2.0]), ("b", &[10.0, f64::NAN])]);
        let s = one_step("[[step]]\nop = \"derive\"\nname = \"c\"\nexpr = \"a + b\"\n");
        fit(&s, &mut f, None).unwrap();
        let Some(Column::Num(v)) = f.column("c") else {
            panic!()
        };
        assert_eq!(v[0], 11.0);
        assert!(v[1].is_nan());
        let s = one_step("[[step]]\nop = \"derive\"\nname = \"c\"\nexpr = \"zz * 2\"\n");
        let e = fit(&s, &mut f, None).unwrap_err();
        assert!(
            matches!(e, StepError::UnknownColumn { ref column, .. } if column == "zz"),
            "{e}"
        );
    }
}
