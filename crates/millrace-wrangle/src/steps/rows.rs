//! The steps that remove rows — `filter`, `drop_missing` and `dedupe` — and so only act while
//! preparing data (`Rows::Drop`): a record sent for scoring is always scored.

use std::collections::HashSet;

use super::input::{need, need_all};
use super::params::Params;
use super::{FittedStep, Step};
use crate::error::{StepError, StepSpecError};
use crate::expr::Expr;
use crate::frame::{Column, Frame};

/// `where = "<SQL predicate>"`.
pub fn parse_filter(p: &mut Params) -> Result<Step, StepSpecError> {
    let (predicate, text) = p.expr("where")?;
    Ok(Step::Filter { predicate, text })
}

pub fn parse_drop_missing(p: &mut Params) -> Result<Step, StepSpecError> {
    Ok(Step::DropMissing {
        columns: p.columns_opt()?,
    })
}

pub fn parse_dedupe(p: &mut Params) -> Result<Step, StepSpecError> {
    Ok(Step::Dedupe {
        columns: p.columns_opt()?,
    })
}

pub fn fit_filter(frame: &Frame, predicate: &Expr) -> Result<FittedStep, StepError> {
    for c in predicate.columns() {
        need(frame, &c)?;
    }
    Ok(FittedStep::Filter {
        predicate: predicate.clone(),
    })
}

/// No columns listed means every column the frame has at fit time.
pub fn fit_drop_missing(frame: &Frame, columns: &[String]) -> Result<FittedStep, StepError> {
    need_all(frame, columns)?;
    Ok(FittedStep::DropMissing {
        columns: if columns.is_empty() {
            frame.names().iter().map(|n| n.to_string()).collect()
        } else {
            columns.to_vec()
        },
    })
}

pub fn fit_dedupe(frame: &Frame, columns: &[String]) -> Result<FittedStep, StepError> {
    need_all(frame, columns)?;
    Ok(FittedStep::Dedupe {
        columns: columns.to_vec(),
    })
}

pub fn apply_filter(frame: &mut Frame, predicate: &Expr) -> Result<(), StepError> {
    let keep = predicate.mask(frame).map_err(StepError::Expr)?;
    frame.retain_rows(&keep);
    Ok(())
}

pub fn apply_drop_missing(frame: &mut Frame, columns: &[String]) {
    let mut keep = vec![true; frame.rows()];
    for c in columns {
        if let Some(col) = frame.column(c) {
            for (i, k) in keep.iter_mut().enumerate() {
                *k = *k && !col.is_missing(i);
            }
        }
    }
    frame.retain_rows(&keep);
}

/// Keeps the first of rows equal in `columns` (every column when empty).
pub fn apply_dedupe(frame: &mut Frame, columns: &[String]) {
    let cols: Vec<&Column> = if columns.is_empty() {
        frame.columns().map(|(_, c)| c).collect()
    } else {
        columns.iter().filter_map(|c| frame.column(c)).collect()
    };
    let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(frame.rows());
    let keep: Vec<bool> = (0..frame.rows())
        .map(|i| {
            let mut key = Vec::new();
            for c in &cols {
                row_key(c, i, &mut key);
            }
            seen.insert(key)
        })
        .collect();
    frame.retain_rows(&keep);
}

/// Appends row `i` of `c` to a key that two rows share exactly when their values are equal.
fn row_key(c: &Column, i: usize, key: &mut Vec<u8>) {
    match c {
        Column::Num(v) => {
            // All NaNs are one "missing" value.
            let x = if v[i].is_nan() { f64::NAN } else { v[i] };
            key.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Column::Str(v) => match &v[i] {
            Some(s) => {
                key.push(1);
                key.extend_from_slice(&(s.len() as u64).to_le_bytes());
                key.extend_from_slice(s.as_bytes());
            }
            None => key.push(0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{numbers, one_step, recipe_error};
    use super::super::{Rows, fit};

    #[test]
    fn row_steps_remove_rows_only_when_preparing_data() {
        let data: &[f64] = &[1.0, f64::NAN, 1.0, 3.0];
        for (recipe, kept) in [
            ("op = \"filter\"\nwhere = \"x > 1\"\n", 1),
            ("op = \"drop_missing\"\n", 3),
            ("op = \"dedupe\"\n", 3),
        ] {
            let s = one_step(&format!("[[step]]\n{recipe}"));
            let mut f = numbers(&[("x", data)]);
            let fitted = fit(&s, &mut f, None).unwrap();
            assert_eq!(f.rows(), kept, "{recipe}");
            let mut g = numbers(&[("x", data)]);
            fitted.apply(&mut g, Rows::Keep).unwrap();
            assert_eq!(g.rows(), 4, "{recipe}");
        }
    }

    #[test]
    fn a_bad_predicate_names_the_key() {
        let e = recipe_error("[[step]]\nop = \"filter\"\nwhere = \"tenure >\"\n");
        assert!(
            e.contains("step 1 (filter): key `where`: expression `tenure >`"),
            "{e}"
        );
    }
}
