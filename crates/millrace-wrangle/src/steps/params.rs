//! Reading one `[[step]]` table key by key, remembering which keys were read so that a
//! leftover (usually misspelt) key is an error naming the keys the step does take.

use crate::error::{StepAt, StepSpecError};
use crate::expr::Expr;

/// How a TOML value is quoted in errors: strings as written, anything else with its type.
pub(crate) fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        other => format!("{} {other}", other.type_str()),
    }
}

/// One step's table and the keys read from it so far.
pub struct Params<'a> {
    t: &'a toml::Table,
    at: StepAt,
    used: Vec<&'static str>,
}

type Result<T> = std::result::Result<T, StepSpecError>;

impl<'a> Params<'a> {
    pub fn new(t: &'a toml::Table, at: StepAt) -> Self {
        Self {
            t,
            at,
            used: Vec::new(),
        }
    }

    /// Where the step is, for errors the caller builds.
    pub fn at(&self) -> StepAt {
        self.at
    }

    pub fn get(&mut self, key: &'static str) -> Option<&'a toml::Value> {
        self.used.push(key);
        self.t.get(key)
    }

    pub fn bad(&self, key: &'static str, expected: &str, v: &toml::Value) -> StepSpecError {
        StepSpecError::BadValue {
            at: self.at,
            key,
            expected: expected.to_owned(),
            got: describe(v),
        }
    }

    pub fn missing(&self, key: &'static str, expected: &str) -> StepSpecError {
        StepSpecError::MissingKey {
            at: self.at,
            key,
            expected: expected.to_owned(),
        }
    }

    /// `columns`, which may be absent (then empty: "every column").
    pub fn columns_opt(&mut self) -> Result<Vec<String>> {
        self.strings("columns", false)
    }

    /// `columns`, required and not empty.
    pub fn columns(&mut self) -> Result<Vec<String>> {
        self.strings("columns", true)
    }

    /// A list of names (one string counts as a list of one).
    pub fn strings(&mut self, key: &'static str, required: bool) -> Result<Vec<String>> {
        let what = "a list of column names";
        match self.get(key) {
            None if required => Err(self.missing(key, what)),
            None => Ok(Vec::new()),
            Some(toml::Value::String(s)) => Ok(vec![s.clone()]),
            Some(v @ toml::Value::Array(a)) => {
                let list: Option<Vec<String>> =
                    a.iter().map(|v| v.as_str().map(str::to_owned)).collect();
                match list {
                    Some(l) if !l.is_empty() || !required => Ok(l),
                    _ => Err(self.bad(key, what, v)),
                }
            }
            Some(v) => Err(self.bad(key, what, v)),
        }
    }

    /// A required, non-blank string.
    pub fn string(&mut self, key: &'static str) -> Result<String> {
        match self.get(key) {
            None => Err(self.missing(key, "a string")),
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(v) => Err(self.bad(key, "a non-empty string", v)),
        }
    }

    /// One of named options; `default` when absent (required when there is none).
    pub fn choice<T: Copy>(
        &mut self,
        key: &'static str,
        options: &[(&str, T)],
        default: Option<T>,
    ) -> Result<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let what = format!("one of {}", names.join(", "));
        match self.get(key) {
            None => default.ok_or_else(|| self.missing(key, &what)),
            Some(v) => v
                .as_str()
                .and_then(|s| options.iter().find(|(n, _)| *n == s).map(|(_, t)| *t))
                .ok_or_else(|| self.bad(key, &what, v)),
        }
    }

    pub fn float(&mut self, key: &'static str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(toml::Value::Float(x)) if x.is_finite() => Ok(*x),
            Some(toml::Value::Integer(i)) => Ok(*i as f64),
            Some(v) => Err(self.bad(key, "a number", v)),
        }
    }

    /// An integer of at least `min`.
    pub fn count(&mut self, key: &'static str, default: usize, min: usize) -> Result<usize> {
        match self.get(key) {
            None => Ok(default),
            Some(toml::Value::Integer(i)) if *i >= min as i64 => Ok(*i as usize),
            Some(v) => Err(self.bad(key, &format!("an integer ≥ {min}"), v)),
        }
    }

    pub fn flag(&mut self, key: &'static str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(self.bad(key, "true or false", v)),
        }
    }

    /// An expression and its text.
    pub fn expr(&mut self, key: &'static str) -> Result<(Expr, String)> {
        let text = self.string(key)?;
        let e = Expr::parse(&text).map_err(|e| StepSpecError::BadExpression {
            at: self.at,
            key,
            message: e.to_string(),
        })?;
        Ok((e, text))
    }

    /// Fails on the first key (alphabetically) that no reader asked for.
    pub fn finish(self) -> Result<()> {
        let mut unknown: Vec<&str> = self
            .t
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "op" && !self.used.contains(k))
            .collect();
        unknown.sort_unstable();
        match unknown.first() {
            None => Ok(()),
            Some(k) => {
                let mut takes = self.used.clone();
                takes.sort_unstable();
                takes.dedup();
                Err(StepSpecError::UnknownKey {
                    at: self.at,
                    key: (*k).to_owned(),
                    takes,
                })
            }
        }
    }
}
