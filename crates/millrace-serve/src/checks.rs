//! Honest about odd inputs: what in a record the model cannot read as sent. Per record, the
//! warnings a prediction carries (a value that is not a number read as missing, a category the
//! model never saw, missing input columns, columns the model does not read), and the records
//! refused outright: those missing more than a share of the model's inputs (default half), or,
//! in strict mode, any value that would be coerced.

use std::collections::{HashMap, HashSet};

use millrace_automl::features::Family;
use millrace_automl::model::ModelArtifact;
use millrace_wrangle::frame::{coerce_str, format_num};
use millrace_wrangle::{Column, FittedStep, Frame, Kind};
use serde_json::Value;

use crate::input::Record;

/// How odd inputs are treated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputChecks {
    /// A record missing (or unreadable in) more than this share of the model's inputs is
    /// refused, naming the fields.
    pub max_missing: f64,
    /// Refuse any value that would be coerced (text where a number is read).
    pub strict: bool,
}

impl Default for InputChecks {
    fn default() -> Self {
        InputChecks {
            max_missing: 0.5,
            strict: false,
        }
    }
}

/// One model input as the checks see it.
#[derive(Debug)]
struct Input {
    name: String,
    /// Read as a number (a numeric column, or text the recipe casts).
    number: bool,
    /// The categories training saw (text columns the trees read as categories).
    categories: Option<HashSet<String>>,
}

/// What the model expects of a record.
#[derive(Debug)]
pub struct Expected {
    inputs: Vec<Input>,
    /// Every column name the model knows (target and ID columns included).
    known: HashSet<String>,
}

/// What was odd about one record: warnings, and why it is refused (if it is).
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    pub warnings: Vec<String>,
    pub refused: Option<String>,
}

impl Expected {
    pub fn for_model(model: &ModelArtifact) -> Expected {
        let mut cast: HashSet<String> = HashSet::new();
        let mut categories: HashMap<String, HashSet<String>> = HashMap::new();
        for set in model.features.iter().filter(|s| s.family == Family::Trees) {
            for step in &set.recipe.steps {
                match step {
                    FittedStep::Cast { columns, to } if *to == Kind::Number => {
                        cast.extend(columns.iter().cloned());
                    }
                    FittedStep::Ordinal { columns } => {
                        for (c, cats) in columns {
                            categories.insert(c.clone(), cats.iter().cloned().collect());
                        }
                    }
                    _ => {}
                }
            }
        }
        let inputs = model
            .input
            .iter()
            .filter(|f| f.name != model.target && !model.id_columns.contains(&f.name))
            .map(|f| Input {
                number: f.kind == Kind::Number || cast.contains(&f.name),
                categories: categories.remove(&f.name),
                name: f.name.clone(),
            })
            .collect();
        Expected {
            inputs,
            known: model.input.iter().map(|f| f.name.clone()).collect(),
        }
    }

    /// Checks one record.
    pub fn check(&self, record: &Record, checks: InputChecks) -> Findings {
        self.check_with(
            |name| value_text(record.get(name)),
            record.keys().map(String::as_str),
            checks,
        )
    }

    /// Checks row `row` of a frame (a batch's chunk).
    pub fn check_row(&self, frame: &Frame, row: usize, checks: InputChecks) -> Findings {
        self.check_with(
            |name| match frame.column(name) {
                Some(Column::Num(v)) => format_num(v[row]),
                Some(Column::Str(v)) => v[row].clone().filter(|s| !s.trim().is_empty()),
                None => None,
            },
            frame.names().iter().map(|n| &**n),
            checks,
        )
    }

    fn check_with<'a>(
        &self,
        value: impl Fn(&str) -> Option<String>,
        present: impl Iterator<Item = &'a str>,
        checks: InputChecks,
    ) -> Findings {
        let mut f = Findings::default();
        let mut missing: Vec<&str> = Vec::new();
        let mut unreadable: Vec<&str> = Vec::new();
        for input in &self.inputs {
            let Some(text) = value(&input.name) else {
                missing.push(&input.name);
                continue;
            };
            if input.number {
                if coerce_str(Some(&text)).is_nan() {
                    f.warnings.push(format!(
                        "`{}`: {text:?} is not a number; read as missing",
                        input.name
                    ));
                    unreadable.push(&input.name);
                }
            } else if let Some(cats) = &input.categories
                && !cats.contains(text.trim())
            {
                f.warnings.push(format!(
                    "`{}`: {text:?} is a category the model never saw",
                    input.name
                ));
            }
        }
        if !missing.is_empty() {
            f.warnings.push(format!(
                "missing input column(s), read as missing: {}",
                missing.join(", ")
            ));
        }
        let mut unexpected: Vec<&str> = present.filter(|k| !self.known.contains(*k)).collect();
        unexpected.sort_unstable();
        if !unexpected.is_empty() {
            f.warnings.push(format!(
                "column(s) the model does not read, ignored: {}",
                unexpected.join(", ")
            ));
        }
        let gone = missing.len() + unreadable.len();
        let total = self.inputs.len();
        if checks.strict && !unreadable.is_empty() {
            f.refused = Some(format!(
                "{} (strict: no value is coerced)",
                f.warnings
                    .iter()
                    .find(|w| w.contains("is not a number"))
                    .cloned()
                    .unwrap_or_default()
            ));
        } else if total > 0 && gone as f64 > checks.max_missing * total as f64 {
            let mut named: Vec<&str> = missing.iter().chain(&unreadable).copied().collect();
            named.sort_unstable();
            f.refused = Some(format!(
                "{gone} of the model's {total} inputs are missing or unreadable ({}); at most \
                 {:.0}% may be",
                named.join(", "),
                checks.max_missing * 100.0
            ));
        }
        f
    }
}

/// A field's value as text; `None` when absent, null or blank.
fn value_text(v: Option<&Value>) -> Option<String> {
    let text = match v? {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    };
    (!text.trim().is_empty()).then_some(text)
}
