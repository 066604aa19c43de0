//! The recipe file: ordered `[[step]]` tables, validated at load.
//!
//! Steps are read key by key rather than through serde's derive so that every mistake names
//! the step number, its `op` and the key (`recipe churn.toml, step 4 (bin): key `bins` must be
//! a positive integer, got "ten"`), and an unknown key is an error instead of being ignored.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::WrangleError;
use crate::expr::Expr;
use crate::frame::Kind;

/// A value for `impute` with `strategy = "constant"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impute {
    Mean,
    Median,
    Mode,
    Constant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encode {
    OneHot,
    Ordinal,
    Target,
    Frequency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    Standard,
    MinMax,
    Robust,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clip {
    Quantile,
    Zscore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bin {
    Width,
    Quantile,
}

/// One step as written in the recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// Remove columns.
    Drop {
        columns: Vec<String>,
    },
    /// Keep only these columns (and the target), in this order.
    Keep {
        columns: Vec<String>,
    },
    /// `columns = { old = "new" }`.
    Rename {
        columns: BTreeMap<String, String>,
    },
    /// Keep rows where the predicate is true (a missing value makes it not true).
    Filter {
        predicate: Expr,
        text: String,
    },
    /// Drop rows with a missing value in `columns` (every column when empty).
    DropMissing {
        columns: Vec<String>,
    },
    /// Convert to numbers (unparsable text becomes missing) or to text.
    Cast {
        columns: Vec<String>,
        to: Kind,
    },
    Impute {
        columns: Vec<String>,
        strategy: Impute,
        value: Option<Scalar>,
    },
    Encode {
        columns: Vec<String>,
        method: Encode,
        /// one_hot: most frequent categories kept; the rest share one "other" column.
        max_categories: usize,
        /// one_hot: whether the rest get an `{column}_other` column (else they are all zeros).
        other: bool,
        /// ordinal: the order of categories (else sorted).
        categories: Option<Vec<String>>,
        /// target: weight of the overall mean, in rows.
        smoothing: f64,
        /// target: folds for the out-of-fold values the training rows get.
        folds: usize,
        seed: u64,
    },
    Scale {
        columns: Vec<String>,
        method: Scale,
    },
    /// sign(x)·ln(1 + |x|).
    Log {
        columns: Vec<String>,
    },
    /// sign(x)·|x|^exponent.
    Power {
        columns: Vec<String>,
        exponent: f64,
    },
    Clip {
        columns: Vec<String>,
        method: Clip,
        lower: f64,
        upper: f64,
        z: f64,
    },
    /// Replace values by their bin number (0-based).
    Bin {
        columns: Vec<String>,
        method: Bin,
        bins: usize,
    },
    /// Adds a cubic (by default) B-spline basis of each column beside it, `{column}_spline0`
    /// … `{column}_spline{knots + degree - 3}`, on knots at the training data's quantiles:
    /// smooth bends a linear model can weight, where `bin` gives it steps. A column with fewer
    /// than two distinct values gets no spline columns.
    Spline {
        columns: Vec<String>,
        knots: usize,
        degree: usize,
    },
    /// A new (or replaced) column from an expression.
    Derive {
        name: String,
        expr: Expr,
        text: String,
    },
    Text {
        columns: Vec<String>,
        lower: bool,
        trim: bool,
    },
    /// Drop repeated rows (all columns, or the listed ones), keeping the first.
    Dedupe {
        columns: Vec<String>,
    },
}

impl Step {
    pub fn op(&self) -> &'static str {
        match self {
            Step::Drop { .. } => "drop",
            Step::Keep { .. } => "keep",
            Step::Rename { .. } => "rename",
            Step::Filter { .. } => "filter",
            Step::DropMissing { .. } => "drop_missing",
            Step::Cast { .. } => "cast",
            Step::Impute { .. } => "impute",
            Step::Encode { .. } => "encode",
            Step::Scale { .. } => "scale",
            Step::Log { .. } => "log",
            Step::Power { .. } => "power",
            Step::Clip { .. } => "clip",
            Step::Bin { .. } => "bin",
            Step::Spline { .. } => "spline",
            Step::Derive { .. } => "derive",
            Step::Text { .. } => "text",
            Step::Dedupe { .. } => "dedupe",
        }
    }

    /// Whether the step removes rows (skipped when scoring records; see `Rows`).
    pub fn drops_rows(&self) -> bool {
        matches!(
            self,
            Step::Filter { .. } | Step::DropMissing { .. } | Step::Dedupe { .. }
        )
    }
}

pub const OPS: &[&str] = &[
    "drop",
    "keep",
    "rename",
    "filter",
    "drop_missing",
    "cast",
    "impute",
    "encode",
    "scale",
    "log",
    "power",
    "clip",
    "bin",
    "spline",
    "derive",
    "text",
    "dedupe",
];

/// A recipe: what to learn from training data and how to turn rows into features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub name: Option<String>,
    /// The column to predict: never transformed unless a step names it, and what target
    /// encoding learns from.
    pub target: Option<String>,
    pub steps: Vec<Step>,
}

impl Recipe {
    pub fn load(path: &Path) -> Result<Recipe, WrangleError> {
        let text = std::fs::read_to_string(path).map_err(|e| WrangleError::Recipe {
            origin: format!("recipe {}", path.display()),
            message: format!("cannot read: {e}"),
        })?;
        Recipe::parse(&text, &format!("recipe {}", path.display()))
    }

    /// Parses and validates recipe text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Recipe, WrangleError> {
        let err = |message: String| WrangleError::Recipe {
            origin: origin.to_owned(),
            message,
        };
        let doc: toml::Table = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let mut name = None;
        let mut target = None;
        let mut steps = Vec::new();
        for (key, value) in &doc {
            match key.as_str() {
                "name" => {
                    name = Some(
                        as_str(value).ok_or_else(|| err("key `name` must be a string".into()))?,
                    )
                }
                "target" => {
                    target = Some(
                        as_str(value).ok_or_else(|| err("key `target` must be a string".into()))?,
                    )
                }
                "step" => {
                    let list = value.as_array().ok_or_else(|| {
                        err("`step` must be an array of tables: write each as [[step]]".into())
                    })?;
                    for (i, v) in list.iter().enumerate() {
                        let t = v.as_table().ok_or_else(|| {
                            err(format!("step {}: must be a table ([[step]])", i + 1))
                        })?;
                        steps.push(parse_step(t, i + 1).map_err(&err)?);
                    }
                }
                other => {
                    return Err(err(format!(
                        "unknown key `{other}` (a recipe has `name`, `target` and [[step]] tables)"
                    )));
                }
            }
        }
        Ok(Recipe {
            name,
            target,
            steps,
        })
    }
}

fn as_str(v: &toml::Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        other => format!("{} {other}", other.type_str()),
    }
}

/// Reads one step's keys, remembering which were used so leftovers are reported.
struct Params<'a> {
    t: &'a toml::Table,
    at: String,
    used: Vec<&'static str>,
}

impl<'a> Params<'a> {
    fn get(&mut self, key: &'static str) -> Option<&'a toml::Value> {
        self.used.push(key);
        self.t.get(key)
    }

    fn fail(&self, key: &str, what: &str, v: &toml::Value) -> String {
        format!(
            "{}: key `{key}` must be {what}, got {}",
            self.at,
            describe(v)
        )
    }

    fn missing(&self, key: &str, what: &str) -> String {
        format!("{}: missing key `{key}` ({what})", self.at)
    }

    fn columns_opt(&mut self) -> Result<Vec<String>, String> {
        self.strings("columns", false)
    }

    fn columns(&mut self) -> Result<Vec<String>, String> {
        self.strings("columns", true)
    }

    fn strings(&mut self, key: &'static str, required: bool) -> Result<Vec<String>, String> {
        let what = "a list of column names";
        match self.get(key) {
            None if required => Err(self.missing(key, what)),
            None => Ok(Vec::new()),
            Some(toml::Value::String(s)) => Ok(vec![s.clone()]),
            Some(v @ toml::Value::Array(a)) => {
                let list: Option<Vec<String>> = a.iter().map(as_str).collect();
                match list {
                    Some(l) if !l.is_empty() || !required => Ok(l),
                    _ => Err(self.fail(key, what, v)),
                }
            }
            Some(v) => Err(self.fail(key, what, v)),
        }
    }

    fn string(&mut self, key: &'static str) -> Result<String, String> {
        match self.get(key) {
            None => Err(self.missing(key, "a string")),
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(v) => Err(self.fail(key, "a non-empty string", v)),
        }
    }

    fn choice<T: Copy>(
        &mut self,
        key: &'static str,
        options: &[(&str, T)],
        default: Option<T>,
    ) -> Result<T, String> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let what = format!("one of {}", names.join(", "));
        match self.get(key) {
            None => default.ok_or_else(|| self.missing(key, &what)),
            Some(v) => v
                .as_str()
                .and_then(|s| options.iter().find(|(n, _)| *n == s).map(|(_, t)| *t))
                .ok_or_else(|| self.fail(key, &what, v)),
        }
    }

    fn float(&mut self, key: &'static str, default: f64) -> Result<f64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(toml::Value::Float(x)) if x.is_finite() => Ok(*x),
            Some(toml::Value::Integer(i)) => Ok(*i as f64),
            Some(v) => Err(self.fail(key, "a number", v)),
        }
    }

    fn count(&mut self, key: &'static str, default: usize, min: usize) -> Result<usize, String> {
        match self.get(key) {
            None => Ok(default),
            Some(toml::Value::Integer(i)) if *i >= min as i64 => Ok(*i as usize),
            Some(v) => Err(self.fail(key, &format!("an integer ≥ {min}"), v)),
        }
    }

    fn flag(&mut self, key: &'static str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(self.fail(key, "true or false", v)),
        }
    }

    fn expr(&mut self, key: &'static str) -> Result<(Expr, String), String> {
        let text = self.string(key)?;
        let e = Expr::parse(&text).map_err(|e| format!("{}: key `{key}`: {e}", self.at))?;
        Ok((e, text))
    }

    fn finish(self) -> Result<(), String> {
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
                let mut known = self.used.clone();
                known.sort_unstable();
                known.dedup();
                Err(format!(
                    "{}: unknown key `{k}` (this step takes: {})",
                    self.at,
                    known.join(", ")
                ))
            }
        }
    }
}

fn parse_step(t: &toml::Table, n: usize) -> Result<Step, String> {
    let op = match t.get("op") {
        Some(toml::Value::String(s)) => s.as_str(),
        Some(v) => {
            return Err(format!(
                "step {n}: key `op` must be a string, got {}",
                describe(v)
            ));
        }
        None => {
            return Err(format!(
                "step {n}: missing key `op` (one of {})",
                OPS.join(", ")
            ));
        }
    };
    if !OPS.contains(&op) {
        return Err(format!(
            "step {n}: unknown op `{op}` (one of {})",
            OPS.join(", ")
        ));
    }
    let mut p = Params {
        t,
        at: format!("step {n} ({op})"),
        used: Vec::new(),
    };
    let step = match op {
        "drop" => Step::Drop {
            columns: p.columns()?,
        },
        "keep" => Step::Keep {
            columns: p.columns()?,
        },
        "rename" => {
            let map = match p.get("columns") {
                Some(toml::Value::Table(m)) => m
                    .iter()
                    .map(|(k, v)| as_str(v).map(|v| (k.clone(), v)))
                    .collect::<Option<BTreeMap<_, _>>>()
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| {
                        p.fail(
                            "columns",
                            "a table of old = \"new\" names",
                            &toml::Value::Table(m.clone()),
                        )
                    })?,
                Some(v) => return Err(p.fail("columns", "a table of old = \"new\" names", v)),
                None => return Err(p.missing("columns", "a table of old = \"new\" names")),
            };
            Step::Rename { columns: map }
        }
        "filter" => {
            let (predicate, text) = p.expr("where")?;
            Step::Filter { predicate, text }
        }
        "drop_missing" => Step::DropMissing {
            columns: p.columns_opt()?,
        },
        "cast" => Step::Cast {
            columns: p.columns()?,
            to: p.choice(
                "to",
                &[("number", Kind::Number), ("string", Kind::String)],
                None,
            )?,
        },
        "impute" => {
            let columns = p.columns()?;
            let strategy = p.choice(
                "strategy",
                &[
                    ("mean", Impute::Mean),
                    ("median", Impute::Median),
                    ("mode", Impute::Mode),
                    ("constant", Impute::Constant),
                ],
                None,
            )?;
            let value = match p.get("value") {
                None => None,
                Some(toml::Value::Float(x)) => Some(Scalar::Number(*x)),
                Some(toml::Value::Integer(i)) => Some(Scalar::Number(*i as f64)),
                Some(toml::Value::String(s)) => Some(Scalar::Text(s.clone())),
                Some(v) => return Err(p.fail("value", "a number or a string", v)),
            };
            if strategy == Impute::Constant && value.is_none() {
                return Err(p.missing(
                    "value",
                    "strategy = \"constant\" needs the value to fill in",
                ));
            }
            Step::Impute {
                columns,
                strategy,
                value,
            }
        }
        "encode" => Step::Encode {
            columns: p.columns()?,
            method: p.choice(
                "method",
                &[
                    ("one_hot", Encode::OneHot),
                    ("ordinal", Encode::Ordinal),
                    ("target", Encode::Target),
                    ("frequency", Encode::Frequency),
                ],
                None,
            )?,
            max_categories: p.count("max_categories", 20, 1)?,
            other: p.flag("other", true)?,
            categories: match p.get("categories") {
                None => None,
                Some(_) => Some(p.strings("categories", true)?),
            },
            smoothing: p.float("smoothing", 10.0)?,
            folds: p.count("folds", 5, 2)?,
            seed: p.count("seed", 42, 0)? as u64,
        },
        "scale" => Step::Scale {
            columns: p.columns()?,
            method: p.choice(
                "method",
                &[
                    ("standard", Scale::Standard),
                    ("min_max", Scale::MinMax),
                    ("minmax", Scale::MinMax),
                    ("robust", Scale::Robust),
                ],
                Some(Scale::Standard),
            )?,
        },
        "log" => Step::Log {
            columns: p.columns()?,
        },
        "power" => {
            let columns = p.columns()?;
            match p.get("exponent") {
                None => return Err(p.missing("exponent", "a number, e.g. 0.5")),
                Some(_) => Step::Power {
                    columns,
                    exponent: p.float("exponent", 1.0)?,
                },
            }
        }
        "clip" => {
            let s = Step::Clip {
                columns: p.columns()?,
                method: p.choice(
                    "method",
                    &[("quantile", Clip::Quantile), ("zscore", Clip::Zscore)],
                    Some(Clip::Quantile),
                )?,
                lower: p.float("lower", 0.01)?,
                upper: p.float("upper", 0.99)?,
                z: p.float("z", 3.0)?,
            };
            if let Step::Clip {
                lower, upper, z, ..
            } = &s
                && (!(0.0..=1.0).contains(lower)
                    || !(0.0..=1.0).contains(upper)
                    || lower >= upper
                    || *z <= 0.0)
            {
                return Err(format!(
                    "{}: need 0 ≤ lower < upper ≤ 1 (quantiles) and z > 0, got lower = {lower}, upper = {upper}, z = {z}",
                    p.at
                ));
            }
            s
        }
        "bin" => Step::Bin {
            columns: p.columns()?,
            method: p.choice(
                "method",
                &[("width", Bin::Width), ("quantile", Bin::Quantile)],
                Some(Bin::Quantile),
            )?,
            bins: p.count("bins", 10, 2)?,
        },
        "spline" => {
            let s = Step::Spline {
                columns: p.columns()?,
                knots: p.count("knots", 10, 2)?,
                degree: p.count("degree", 3, 1)?,
            };
            if let Step::Spline { degree, .. } = &s
                && *degree > crate::spline::MAX_DEGREE
            {
                return Err(format!(
                    "{}: degree must be 1 to {}, got {degree}",
                    p.at,
                    crate::spline::MAX_DEGREE
                ));
            }
            s
        }
        "derive" => {
            let name = p.string("name")?;
            let (expr, text) = p.expr("expr")?;
            Step::Derive { name, expr, text }
        }
        "text" => Step::Text {
            columns: p.columns()?,
            lower: p.flag("lower", false)?,
            trim: p.flag("trim", true)?,
        },
        "dedupe" => Step::Dedupe {
            columns: p.columns_opt()?,
        },
        _ => unreachable!("op checked against OPS"),
    };
    p.finish()?;
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Recipe::parse(text, "recipe r.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn mistakes_name_the_step_and_key() {
        let e = err("[[step]]\nop = \"drop\"\ncolumns = [\"a\"]\n[[step]]\nop = \"frobnicate\"\n");
        assert!(
            e.starts_with("recipe r.toml: step 2: unknown op `frobnicate`"),
            "{e}"
        );
        let e = err("[[step]]\nop = \"bin\"\ncolumns = [\"a\"]\nbins = \"ten\"\n");
        assert_eq!(
            e,
            "recipe r.toml: step 1 (bin): key `bins` must be an integer ≥ 2, got \"ten\""
        );
        let e = err("[[step]]\nop = \"scale\"\ncolums = [\"a\"]\n");
        assert!(e.contains("step 1 (scale): missing key `columns`"), "{e}");
        let e =
            err("[[step]]\nop = \"scale\"\ncolumns = [\"a\"]\nmethod = \"standard\"\nextra = 1\n");
        assert!(e.contains("step 1 (scale): unknown key `extra`"), "{e}");
        let e = err("[[step]]\nop = \"filter\"\nwhere = \"tenure >\"\n");
        assert!(
            e.contains("step 1 (filter): key `where`: expression `tenure >`"),
            "{e}"
        );
        let e = err("[[step]]\nop = \"impute\"\ncolumns = [\"a\"]\nstrategy = \"constant\"\n");
        assert!(e.contains("step 1 (impute): missing key `value`"), "{e}");
        let e = err("[[step]]\nop = \"encode\"\ncolumns = [\"a\"]\nmethod = \"hot\"\n");
        assert!(
            e.contains(
                "key `method` must be one of one_hot, ordinal, target, frequency, got \"hot\""
            ),
            "{e}"
        );
        let e = err("targte = \"x\"\n");
        assert!(e.contains("unknown key `targte`"), "{e}");
    }

    #[test]
    fn defaults_fill_in() {
        let r = Recipe::parse(
            "target = \"y\"\n[[step]]\nop = \"encode\"\ncolumns = \"c\"\nmethod = \"one_hot\"\n",
            "r",
        )
        .unwrap();
        assert_eq!(r.target.as_deref(), Some("y"));
        match &r.steps[0] {
            Step::Encode {
                columns,
                max_categories,
                other,
                ..
            } => {
                assert_eq!(columns, &vec!["c".to_string()]);
                assert_eq!((*max_categories, *other), (20, true));
            }
            s => panic!("{s:?}"),
        }
    }
}
