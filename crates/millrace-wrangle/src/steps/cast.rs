//! `cast`: columns to numbers (unparsable text becomes missing) or to text, in place.

use super::input::need_all;
use super::params::Params;
use super::{FittedStep, Step};
use crate::error::{StepError, StepSpecError};
use crate::frame::{Frame, Kind};

pub fn parse(p: &mut Params) -> Result<Step, StepSpecError> {
    Ok(Step::Cast {
        columns: p.columns()?,
        to: p.choice(
            "to",
            &[("number", Kind::Number), ("string", Kind::String)],
            None,
        )?,
    })
}

pub fn fit(frame: &Frame, columns: &[String], to: Kind) -> Result<FittedStep, StepError> {
    need_all(frame, columns)?;
    Ok(FittedStep::Cast {
        columns: columns.to_vec(),
        to,
    })
}

pub fn apply(frame: &mut Frame, columns: &[String], to: Kind) {
    for c in columns {
        if let Some(i) = frame.index(c) {
            let name = frame.names()[i].clone();
            if let Some(col) = frame.remove(c) {
                frame.insert_at(i, name, col.coerce(to));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fit;
    use super::super::testing::{one_step, recipe_error, texts};
    use crate::frame::Column;

    #[test]
    fn text_becomes_numbers_in_place() {
        let mut f = texts(&[
            ("a", &[Some("1.5"), Some(" "), Some("x")]),
            ("b", &[None; 3]),
        ]);
        let s = one_step("[[step]]\nop = \"cast\"\ncolumns = \"a\"\nto = \"number\"\n");
        fit(&s, &mut f, None).unwrap();
        assert_eq!(&*f.names()[0], "a");
        let Some(Column::Num(v)) = f.column("a") else {
            panic!()
        };
        assert_eq!(v[0], 1.5);
        assert!(v[1].is_nan() && v[2].is_nan());
        let e = recipe_error("[[step]]\nop = \"cast\"\ncolumns = \"a\"\n");
        assert!(
            e.contains("step 1 (cast): missing key `to` (one of number, string)"),
            "{e}"
        );
    }
}
