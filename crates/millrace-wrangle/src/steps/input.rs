//! How steps read their columns: by name (an absent one is `StepError::UnknownColumn`), as
//! numbers, or as categories (numbers by their text form).

use std::borrow::Cow;
use std::collections::HashMap;

use crate::error::StepError;
use crate::frame::{Column, Frame, format_num};

/// The column `name`, which fitting requires.
pub fn need<'a>(frame: &'a Frame, name: &str) -> Result<&'a Column, StepError> {
    frame.column(name).ok_or_else(|| StepError::UnknownColumn {
        column: name.to_owned(),
        available: frame.names().iter().map(|n| n.to_string()).collect(),
    })
}

/// The column `name` as numbers (a text column is an error saying to cast it).
pub fn need_num<'a>(frame: &'a Frame, name: &str) -> Result<&'a [f64], StepError> {
    match need(frame, name)? {
        Column::Num(v) => Ok(v),
        Column::Str(_) => Err(StepError::NeedsNumbers {
            column: name.to_owned(),
            hint: "this step needs numbers (add a `cast` step with to = \"number\" first)",
        }),
    }
}

/// Fails unless every column in `columns` exists.
pub fn need_all<'a>(
    frame: &Frame,
    columns: impl IntoIterator<Item = &'a String>,
) -> Result<(), StepError> {
    for c in columns {
        need(frame, c)?;
    }
    Ok(())
}

/// A fitted step's column, where it is missing only if the state file was damaged.
pub fn absent(name: &str) -> StepError {
    StepError::UnknownColumn {
        column: name.to_owned(),
        available: Vec::new(),
    }
}

/// The numbers of column `name`, to transform in place.
pub fn num_mut<'a>(frame: &'a mut Frame, name: &str) -> Result<&'a mut Vec<f64>, StepError> {
    match frame.column_mut(name) {
        Some(Column::Num(v)) => Ok(v),
        Some(Column::Str(_)) => Err(StepError::WrongKind {
            column: name.to_owned(),
            found: "text",
            expected: "expected numbers",
        }),
        None => Err(absent(name)),
    }
}

/// A value as a category (numbers by their text form).
pub fn category(col: &Column, row: usize) -> Option<Cow<'_, str>> {
    match col {
        Column::Str(v) => v[row].as_deref().map(Cow::Borrowed),
        Column::Num(v) => format_num(v[row]).map(Cow::Owned),
    }
}

/// Category counts, most frequent first (ties by text), for deterministic order.
pub fn counts(col: &Column) -> Vec<(String, usize)> {
    let mut m: HashMap<String, usize> = HashMap::new();
    for i in 0..col.len() {
        if let Some(c) = category(col, i) {
            match m.get_mut(c.as_ref()) {
                Some(n) => *n += 1,
                None => {
                    m.insert(c.into_owned(), 1);
                }
            }
        }
    }
    let mut v: Vec<(String, usize)> = m.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Finds `s` in `cats`: a scan for the short lists encoders keep, a map for long ones.
pub struct Index<'a> {
    cats: &'a [String],
    map: Option<HashMap<&'a str, usize>>,
}

impl<'a> Index<'a> {
    pub fn new(cats: &'a [String]) -> Self {
        let map = (cats.len() > 32).then(|| {
            cats.iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i))
                .collect()
        });
        Self { cats, map }
    }

    pub fn get(&self, s: &str) -> Option<usize> {
        match &self.map {
            Some(m) => m.get(s).copied(),
            None => self.cats.iter().position(|c| c == s),
        }
    }
}
