//! Choosing and naming columns: `drop`, `keep` (the target is always kept) and `rename`.

use std::collections::BTreeMap;

use super::input::{need, need_all};
use super::params::Params;
use super::{FittedStep, Step};
use crate::error::{StepError, StepSpecError};
use crate::frame::{Column, Frame, Kind, Name};

pub fn parse_drop(p: &mut Params) -> Result<Step, StepSpecError> {
    Ok(Step::Drop {
        columns: p.columns()?,
    })
}

pub fn parse_keep(p: &mut Params) -> Result<Step, StepSpecError> {
    Ok(Step::Keep {
        columns: p.columns()?,
    })
}

/// `columns = { old = "new", … }`, not empty.
pub fn parse_rename(p: &mut Params) -> Result<Step, StepSpecError> {
    const WHAT: &str = "a table of old = \"new\" names";
    let columns = match p.get("columns") {
        Some(v @ toml::Value::Table(m)) => m
            .iter()
            .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
            .collect::<Option<BTreeMap<_, _>>>()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| p.bad("columns", WHAT, v))?,
        Some(v) => return Err(p.bad("columns", WHAT, v)),
        None => return Err(p.missing("columns", WHAT)),
    };
    Ok(Step::Rename { columns })
}

pub fn fit_drop(frame: &Frame, columns: &[String]) -> Result<FittedStep, StepError> {
    need_all(frame, columns)?;
    Ok(FittedStep::Drop {
        columns: columns.to_vec(),
    })
}

pub fn fit_keep(
    frame: &Frame,
    columns: &[String],
    target: Option<&str>,
) -> Result<FittedStep, StepError> {
    need_all(frame, columns)?;
    let mut columns = columns.to_vec();
    if let Some(t) = target
        && frame.index(t).is_some()
        && !columns.iter().any(|c| c == t)
    {
        columns.push(t.to_owned());
    }
    Ok(FittedStep::Keep { columns })
}

pub fn fit_rename(
    frame: &Frame,
    columns: &BTreeMap<String, String>,
) -> Result<FittedStep, StepError> {
    for c in columns.keys() {
        need(frame, c)?;
    }
    Ok(FittedStep::Rename {
        columns: columns.clone(),
    })
}

pub fn apply_drop(frame: &mut Frame, columns: &[String]) {
    for c in columns {
        frame.remove(c);
    }
}

/// The listed columns in order; an absent one comes back as missing text.
pub fn apply_keep(frame: &mut Frame, columns: &[String]) {
    let kinds: Vec<(Name, Kind)> = columns
        .iter()
        .map(|c| {
            let k = frame.column(c).map_or(Kind::String, Column::kind);
            (Name::from(c.as_str()), k)
        })
        .collect();
    *frame = std::mem::take(frame).select(&kinds);
}

/// All at once (by position), so `a -> b, b -> a` swaps.
pub fn apply_rename(frame: &mut Frame, columns: &BTreeMap<String, String>) {
    let idx: Vec<(usize, &String)> = columns
        .iter()
        .filter_map(|(from, to)| frame.index(from).map(|i| (i, to)))
        .collect();
    for (i, to) in idx {
        frame.rename_at(i, Name::from(to.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{numbers, one_step, recipe_error};
    use super::super::{Rows, fit};
    use crate::error::StepError;

    #[test]
    fn keep_adds_the_target_and_rename_swaps() {
        let mut f = numbers(&[("a", &[1.0]), ("b", &[2.0]), ("y", &[0.0])]);
        let s = one_step("[[step]]\nop = \"keep\"\ncolumns = [\"b\"]\n");
        fit(&s, &mut f, Some("y")).unwrap();
        assert_eq!(f.names().len(), 2);
        assert_eq!((&*f.names()[0], &*f.names()[1]), ("b", "y"));
        let s = one_step("[[step]]\nop = \"rename\"\ncolumns = { b = \"y\", y = \"b\" }\n");
        let fitted = fit(&s, &mut f, None).unwrap();
        assert_eq!((&*f.names()[0], &*f.names()[1]), ("y", "b"));
        fitted.apply(&mut f, Rows::Keep).unwrap();
        assert_eq!((&*f.names()[0], &*f.names()[1]), ("b", "y"));
    }

    #[test]
    fn unknown_columns_and_bad_tables_are_named() {
        let mut f = numbers(&[("a", &[1.0])]);
        let s = one_step("[[step]]\nop = \"drop\"\ncolumns = \"zz\"\n");
        let e = fit(&s, &mut f, None).unwrap_err();
        assert_eq!(
            e,
            StepError::UnknownColumn {
                column: "zz".into(),
                available: vec!["a".into()]
            }
        );
        assert_eq!(e.to_string(), "column `zz` not found (columns: a)");
        let e = recipe_error("[[step]]\nop = \"rename\"\ncolumns = [\"a\"]\n");
        assert!(
            e.contains("step 1 (rename): key `columns` must be a table of old = \"new\" names"),
            "{e}"
        );
    }
}
