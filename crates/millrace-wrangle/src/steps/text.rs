//! `text`: tidy text columns — trim surrounding spaces (on by default), lower-case (off).

use super::input::need;
use super::params::Params;
use super::{FittedStep, Step};
use crate::error::{StepError, StepSpecError};
use crate::frame::{Column, Frame};

pub fn parse(p: &mut Params) -> Result<Step, StepSpecError> {
    Ok(Step::Text {
        columns: p.columns()?,
        lower: p.flag("lower", false)?,
        trim: p.flag("trim", true)?,
    })
}

pub fn fit(
    frame: &Frame,
    columns: &[String],
    lower: bool,
    trim: bool,
) -> Result<FittedStep, StepError> {
    for c in columns {
        if let Column::Num(_) = need(frame, c)? {
            return Err(StepError::NeedsText { column: c.clone() });
        }
    }
    Ok(FittedStep::Text {
        columns: columns.to_vec(),
        lower,
        trim,
    })
}

/// Number columns (a record may bring one) are left alone.
pub fn apply(frame: &mut Frame, columns: &[String], lower: bool, trim: bool) {
    for c in columns {
        if let Some(Column::Str(v)) = frame.column_mut(c) {
            for s in v.iter_mut().flatten() {
                if trim && s.trim().len() != s.len() {
                    *s = s.trim().to_owned();
                }
                if lower && s.chars().any(char::is_uppercase) {
                    *s = s.to_lowercase();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fit;
    use super::super::testing::{numbers, one_step, texts};
    use crate::error::StepError;
    use crate::frame::Column;

    #[test]
    fn trims_and_lowers_text_only() {
        let mut f = texts(&[("t", &[Some(" Male"), None, Some("female ")])]);
        let s = one_step("[[step]]\nop = \"text\"\ncolumns = \"t\"\nlower = true\n");
        fit(&s, &mut f, None).unwrap();
        assert_eq!(
            f.column("t"),
            Some(&Column::Str(vec![
                Some("male".into()),
                None,
                Some("female".into())
            ]))
        );
        let e = fit(&s, &mut numbers(&[("t", &[1.0])]), None).unwrap_err();
        assert_eq!(e, StepError::NeedsText { column: "t".into() });
    }
}
