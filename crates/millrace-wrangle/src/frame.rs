//! `Frame`: the column store every recipe step works on, for a million rows or for one record.
//!
//! Two column kinds are enough for features: numbers (`f64`, NaN = missing) and strings
//! (`None` = missing). A batch from Arrow and a single JSON record both become a `Frame` through
//! the same coercion rules ([`coerce_str`], [`format_num`]), so a record's `"58"` and a
//! batch's `58` reach the steps as the same `58.0`, and the steps then run the very same code.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use crate::error::WrangleError;

/// A column name, shared cheaply between a fitted recipe and the frames it produces.
pub type Name = Arc<str>;

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Number,
    String,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Number => "number",
            Kind::String => "string",
        })
    }
}

/// A column of a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// NaN is a missing value.
    Num(Vec<f64>),
    Str(Vec<Option<String>>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Num(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn kind(&self) -> Kind {
        match self {
            Column::Num(_) => Kind::Number,
            Column::Str(_) => Kind::String,
        }
    }

    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            Column::Num(v) => v[row].is_nan(),
            Column::Str(v) => v[row].is_none(),
        }
    }

    /// A column of `rows` missing values.
    pub fn missing(kind: Kind, rows: usize) -> Self {
        match kind {
            Kind::Number => Column::Num(vec![f64::NAN; rows]),
            Kind::String => Column::Str(vec![None; rows]),
        }
    }

    /// The column as `kind`, with the same rules a raw record's values go through.
    pub fn coerce(self, kind: Kind) -> Self {
        match (self, kind) {
            (c @ Column::Num(_), Kind::Number) | (c @ Column::Str(_), Kind::String) => c,
            (Column::Str(v), Kind::Number) => {
                Column::Num(v.iter().map(|s| coerce_str(s.as_deref())).collect())
            }
            (Column::Num(v), Kind::String) => {
                Column::Str(v.iter().map(|x| format_num(*x)).collect())
            }
        }
    }

    fn take(&self, keep: &[bool]) -> Self {
        match self {
            Column::Num(v) => Column::Num(
                v.iter()
                    .zip(keep)
                    .filter(|(_, k)| **k)
                    .map(|(x, _)| *x)
                    .collect(),
            ),
            Column::Str(v) => Column::Str(
                v.iter()
                    .zip(keep)
                    .filter(|(_, k)| **k)
                    .map(|(x, _)| x.clone())
                    .collect(),
            ),
        }
    }
}

/// A string as a number: surrounding whitespace ignored; blank, unparsable or non-finite text
/// (`inf`, `-Infinity`, `NaN`, `1e999`) is missing (NaN), so no model ever sees an infinity.
pub fn coerce_str(s: Option<&str>) -> f64 {
    s.and_then(|s| s.trim().parse::<f64>().ok())
        .map_or(f64::NAN, finite_or_missing)
}

/// `x` if finite, else missing (NaN): the one rule for infinities wherever numbers come in.
pub fn finite_or_missing(x: f64) -> f64 {
    if x.is_finite() { x } else { f64::NAN }
}

/// A number as a string: Rust's shortest round-trip form (`58`, `29.85`); NaN is missing.
pub fn format_num(x: f64) -> Option<String> {
    if x.is_nan() {
        None
    } else {
        Some(x.to_string())
    }
}

/// Named columns of equal length, with a name → position index so that looking a column up
/// costs the same in a frame of 20 columns and of 100,000 (a linear search made whole-frame
/// work quadratic in the column count).
#[derive(Debug, Clone, Default)]
pub struct Frame {
    names: Vec<Name>,
    cols: Vec<Column>,
    rows: usize,
    /// The first position of each name.
    positions: HashMap<Name, usize>,
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names && self.cols == other.cols && self.rows == other.rows
    }
}

impl Frame {
    pub fn new(rows: usize) -> Self {
        Self {
            names: Vec::new(),
            cols: Vec::new(),
            rows,
            positions: HashMap::new(),
        }
    }

    /// Appends a column (a duplicate name is kept, but lookups find the first).
    fn push(&mut self, name: Name, col: Column) {
        self.positions
            .entry(name.clone())
            .or_insert(self.names.len());
        self.names.push(name);
        self.cols.push(col);
    }

    /// Moves every indexed position at or after `from` by one (up for an insertion, down for a
    /// removal): integer updates only, no hashing, so encoders that insert and remove columns
    /// one at a time stay cheap on wide frames.
    fn shift_positions(&mut self, from: usize, up: bool) {
        for p in self.positions.values_mut() {
            if *p >= from {
                *p = if up { *p + 1 } else { *p - 1 };
            }
        }
    }

    /// Points `name` at its first position, when names repeat (rare: a linear search).
    fn reindex_name(&mut self, name: &str) {
        match self.names.iter().position(|n| &**n == name) {
            Some(i) => {
                self.positions.insert(self.names[i].clone(), i);
            }
            None => {
                self.positions.remove(name);
            }
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn names(&self) -> &[Name] {
        &self.names
    }

    pub fn columns(&self) -> impl Iterator<Item = (&Name, &Column)> {
        self.names.iter().zip(&self.cols)
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.positions.get(name).copied()
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.index(name).map(|i| &self.cols[i])
    }

    pub fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        self.index(name).map(|i| &mut self.cols[i])
    }

    pub fn kinds(&self) -> Vec<(Name, Kind)> {
        self.columns().map(|(n, c)| (n.clone(), c.kind())).collect()
    }

    /// Replaces the column called `name`, or appends it.
    pub fn set(&mut self, name: Name, col: Column) {
        debug_assert_eq!(col.len(), self.rows);
        match self.index(&name) {
            Some(i) => self.cols[i] = col,
            None => self.push(name, col),
        }
    }

    /// Puts `col` where `at` was (or at the end when `at` is gone), for encoders that replace
    /// one column with several.
    pub fn insert_at(&mut self, at: usize, name: Name, col: Column) {
        debug_assert_eq!(col.len(), self.rows);
        let at = at.min(self.cols.len());
        if at == self.names.len() {
            return self.push(name, col);
        }
        self.shift_positions(at, true);
        match self.positions.get(&name) {
            Some(&first) if first < at => {}
            _ => {
                self.positions.insert(name.clone(), at);
            }
        }
        self.names.insert(at, name);
        self.cols.insert(at, col);
    }

    pub fn remove(&mut self, name: &str) -> Option<Column> {
        let i = self.index(name)?;
        self.names.remove(i);
        let col = self.cols.remove(i);
        self.positions.remove(name);
        self.shift_positions(i, false);
        if self.positions.len() < self.names.len() {
            self.reindex_name(name);
        }
        Some(col)
    }

    pub fn rename_at(&mut self, i: usize, to: Name) {
        let repeats = self.positions.len() < self.names.len();
        let from = std::mem::replace(&mut self.names[i], to.clone());
        if self.positions.get(&from) == Some(&i) {
            self.positions.remove(&from);
            if repeats {
                self.reindex_name(&from);
            }
        }
        match self.positions.get(&to) {
            Some(&first) if first < i => {}
            _ => {
                self.positions.insert(to, i);
            }
        }
    }

    pub fn rename(&mut self, from: &str, to: Name) -> bool {
        match self.index(from) {
            Some(i) => {
                self.rename_at(i, to);
                true
            }
            None => false,
        }
    }

    /// Keeps the rows whose flag is true.
    pub fn retain_rows(&mut self, keep: &[bool]) {
        debug_assert_eq!(keep.len(), self.rows);
        if keep.iter().all(|k| *k) {
            return;
        }
        self.cols = self.cols.iter().map(|c| c.take(keep)).collect();
        self.rows = keep.iter().filter(|k| **k).count();
    }

    /// The rows at `idx`, in that order.
    pub fn take_rows(&self, idx: &[usize]) -> Frame {
        let cols = self
            .cols
            .iter()
            .map(|c| match c {
                Column::Num(v) => Column::Num(idx.iter().map(|i| v[*i]).collect()),
                Column::Str(v) => Column::Str(idx.iter().map(|i| v[*i].clone()).collect()),
            })
            .collect();
        Frame {
            names: self.names.clone(),
            cols,
            rows: idx.len(),
            positions: self.positions.clone(),
        }
    }

    /// The columns named in `names`, in that order (absent ones as missing values of `kind`).
    pub fn select(mut self, fields: &[(Name, Kind)]) -> Frame {
        let mut out = Frame::new(self.rows);
        for (name, kind) in fields {
            let col = match self.index(name) {
                Some(i) => std::mem::replace(&mut self.cols[i], Column::Num(Vec::new())),
                None => Column::missing(*kind, self.rows),
            };
            out.push(name.clone(), col.coerce(*kind));
        }
        out
    }

    /// Arrow batches as a frame: numbers and booleans (as 1/0) become numbers, everything else
    /// is read as strings (dates and times in Arrow's text form).
    pub fn from_batches(schema: &Schema, batches: &[RecordBatch]) -> Result<Frame, WrangleError> {
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let mut frame = Frame::new(rows);
        for (i, field) in schema.fields().iter().enumerate() {
            let col = match arrow_kind(field.data_type()) {
                Kind::Number => {
                    let mut v = Vec::with_capacity(rows);
                    for b in batches {
                        append_numbers(&mut v, b.column(i), field)?;
                    }
                    Column::Num(v)
                }
                Kind::String => {
                    let mut v = Vec::with_capacity(rows);
                    for b in batches {
                        append_strings(&mut v, b.column(i), field)?;
                    }
                    Column::Str(v)
                }
            };
            frame.push(Name::from(field.name().as_str()), col);
        }
        Ok(frame)
    }

    /// The frame as one Arrow batch: numbers as Float64 (missing = NULL), strings as Utf8.
    pub fn to_batch(&self) -> Result<RecordBatch, WrangleError> {
        let fields: Vec<Field> = self
            .columns()
            .map(|(n, c)| {
                let t = match c {
                    Column::Num(_) => DataType::Float64,
                    Column::Str(_) => DataType::Utf8,
                };
                Field::new(&**n, t, true)
            })
            .collect();
        let arrays: Vec<ArrayRef> = self
            .cols
            .iter()
            .map(|c| -> ArrayRef {
                match c {
                    Column::Num(v) => Arc::new(Float64Array::from_iter(
                        v.iter().map(|x| (!x.is_nan()).then_some(*x)),
                    )),
                    Column::Str(v) => {
                        Arc::new(StringArray::from_iter(v.iter().map(|s| s.as_deref())))
                    }
                }
            })
            .collect();
        Ok(RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            arrays,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(self.rows)),
        )?)
    }

    /// One raw JSON record as a one-row frame of `fields`: values are coerced to each field's
    /// kind (`"58"` → 58, `58` → `"58"` for a string field, `true` → 1 / `"true"`); a field the
    /// record lacks, `null`, or a value that is not a number where one is expected is missing.
    /// Fields not in `fields` are ignored.
    pub fn from_record(
        record: &serde_json::Map<String, serde_json::Value>,
        fields: &[(Name, Kind)],
    ) -> Frame {
        let mut frame = Frame::new(1);
        frame.names.reserve(fields.len());
        frame.cols.reserve(fields.len());
        frame.positions.reserve(fields.len());
        for (name, kind) in fields {
            let v = record.get(&**name);
            let col = match kind {
                Kind::Number => Column::Num(vec![json_number(v)]),
                Kind::String => Column::Str(vec![json_string(v)]),
            };
            frame.push(name.clone(), col);
        }
        frame
    }

    /// Row `row` as a JSON object (missing values as `null`).
    pub fn record(&self, row: usize) -> serde_json::Map<String, serde_json::Value> {
        self.columns()
            .map(|(n, c)| {
                let v = match c {
                    Column::Num(v) => serde_json::Number::from_f64(v[row])
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null),
                    Column::Str(v) => v[row]
                        .as_ref()
                        .map(|s| serde_json::Value::String(s.clone()))
                        .unwrap_or(serde_json::Value::Null),
                };
                (n.to_string(), v)
            })
            .collect()
    }
}

fn json_number(v: Option<&serde_json::Value>) -> f64 {
    use serde_json::Value;
    match v {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => coerce_str(Some(s)),
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        _ => f64::NAN,
    }
}

fn json_string(v: Option<&serde_json::Value>) -> Option<String> {
    use serde_json::Value;
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        // Numbers keep the text a batch would show for them (58 → "58", 1.5 → "1.5").
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if n.is_f64() => format_num(x),
            _ => Some(n.to_string()),
        },
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(other) => Some(other.to_string()),
    }
}

/// Which kind an Arrow column becomes.
pub fn arrow_kind(t: &DataType) -> Kind {
    if t.is_numeric() || matches!(t, DataType::Boolean | DataType::Null) {
        Kind::Number
    } else {
        Kind::String
    }
}

fn append_numbers(out: &mut Vec<f64>, array: &ArrayRef, field: &Field) -> Result<(), WrangleError> {
    if let Some(b) = array.as_any().downcast_ref::<BooleanArray>() {
        out.extend(
            b.iter()
                .map(|x| x.map_or(f64::NAN, |x| f64::from(u8::from(x)))),
        );
        return Ok(());
    }
    if array.data_type() == &DataType::Null {
        out.extend(std::iter::repeat_n(f64::NAN, array.len()));
        return Ok(());
    }
    let cast = arrow::compute::cast(array, &DataType::Float64).map_err(|e| WrangleError::Data {
        message: format!("column `{}` ({}): {e}", field.name(), field.data_type()),
    })?;
    let f = cast.as_primitive::<arrow::datatypes::Float64Type>();
    out.extend(f.iter().map(|x| x.map_or(f64::NAN, finite_or_missing)));
    Ok(())
}

fn append_strings(
    out: &mut Vec<Option<String>>,
    array: &ArrayRef,
    field: &Field,
) -> Result<(), WrangleError> {
    match array.data_type() {
        DataType::Utf8 => out.extend(
            array
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(str::to_owned)),
        ),
        DataType::LargeUtf8 => out.extend(
            array
                .as_string::<i64>()
                .iter()
                .map(|s| s.map(str::to_owned)),
        ),
        DataType::Utf8View => {
            out.extend(array.as_string_view().iter().map(|s| s.map(str::to_owned)))
        }
        _ => {
            let cast =
                arrow::compute::cast(array, &DataType::Utf8).map_err(|e| WrangleError::Data {
                    message: format!(
                        "column `{}` ({}) cannot be read as text: {e}",
                        field.name(),
                        field.data_type()
                    ),
                })?;
            out.extend(cast.as_string::<i32>().iter().map(|s| s.map(str::to_owned)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    /// The name index always agrees with a linear search, through insertions, removals and
    /// renames that make names repeat.
    #[test]
    fn the_name_index_matches_a_linear_search() {
        let pool: Vec<Name> = (0..6).map(|i| Name::from(format!("c{i}"))).collect();
        let mut f = Frame::new(1);
        let mut state = 7u64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize % n.max(1)
        };
        for _ in 0..2000 {
            let name = pool[next(pool.len())].clone();
            match next(5) {
                0 => f.set(name, Column::Num(vec![1.0])),
                1 => {
                    let at = next(f.names().len() + 1);
                    f.insert_at(at, name, Column::Num(vec![2.0]));
                }
                2 => {
                    f.remove(&name);
                }
                3 if !f.names().is_empty() => {
                    let i = next(f.names().len());
                    f.rename_at(i, name);
                }
                _ => {
                    f.rename(&name, pool[next(pool.len())].clone());
                }
            }
            for n in &pool {
                let linear = f.names().iter().position(|x| x == n);
                assert_eq!(f.index(n), linear, "{n} in {:?}", f.names());
            }
        }
    }
    use super::*;

    #[test]
    fn strings_and_numbers_coerce_the_same_way_from_batches_and_records() {
        assert_eq!(coerce_str(Some(" 58 ")), 58.0);
        assert!(coerce_str(Some(" ")).is_nan());
        assert!(coerce_str(Some("abc")).is_nan());
        for s in ["inf", "-inf", "Infinity", "NaN", "1e999"] {
            assert!(coerce_str(Some(s)).is_nan(), "{s}");
        }
        assert!(coerce_str(None).is_nan());
        assert_eq!(format_num(58.0).as_deref(), Some("58"));
        assert_eq!(format_num(29.85).as_deref(), Some("29.85"));
        let rec: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"a": "58", "b": 58, "c": true, "d": null, "e": 1.5}"#)
                .unwrap();
        let f: Vec<(Name, Kind)> = ["a", "b", "c", "d", "e", "z"]
            .iter()
            .map(|n| (Name::from(*n), Kind::Number))
            .collect();
        let fr = Frame::from_record(&rec, &f);
        let nums: Vec<f64> = fr
            .columns()
            .map(|(_, c)| match c {
                Column::Num(v) => v[0],
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(&nums[..3], &[58.0, 58.0, 1.0]);
        assert!(nums[3].is_nan() && nums[5].is_nan());
        let s: Vec<(Name, Kind)> = ["a", "b", "e"]
            .iter()
            .map(|n| (Name::from(*n), Kind::String))
            .collect();
        let fr = Frame::from_record(&rec, &s);
        let strs: Vec<Option<String>> = fr
            .columns()
            .map(|(_, c)| match c {
                Column::Str(v) => v[0].clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            strs,
            vec![Some("58".into()), Some("58".into()), Some("1.5".into())]
        );
    }
}
