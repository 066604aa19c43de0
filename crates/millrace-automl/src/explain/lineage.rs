//! Which raw input columns each engineered feature comes from, read off the fitted recipes'
//! steps (last step first): a one-hot or spline column is its source column's, a renamed
//! column its old name's, a derived column shared equally by the columns its expression reads;
//! every other step keeps names. Through the family's recipe, then the user's.

use millrace_wrangle::{FittedRecipe, FittedStep};

use crate::model::{FeatureSet, ModelArtifact};

/// The columns an explanation names: the model's inputs, less the target and ID columns.
pub fn explained_columns(model: &ModelArtifact) -> Vec<String> {
    model
        .input
        .iter()
        .map(|f| f.name.clone())
        .filter(|n| *n != model.target && !model.id_columns.contains(n))
        .collect()
}

/// For each matrix column of `set`: the raw columns it comes from, with the share of its
/// contribution each takes (shares sum to 1; never empty).
pub fn origins(model: &ModelArtifact, set: &FeatureSet) -> Vec<Vec<(String, f64)>> {
    set.names
        .iter()
        .map(|name| {
            let mut sources = back(&set.recipe, vec![(name.clone(), 1.0)]);
            if let Some(user) = &model.recipe {
                sources = back(user, sources);
            }
            merge(sources)
        })
        .collect()
}

/// Walks `recipe` backwards from output names (with shares) to its input names.
fn back(recipe: &FittedRecipe, mut names: Vec<(String, f64)>) -> Vec<(String, f64)> {
    for step in recipe.steps.iter().rev() {
        names = names
            .into_iter()
            .flat_map(|(name, share)| {
                sources(step, &name)
                    .into_iter()
                    .map(move |(n, s)| (n, s * share))
            })
            .collect();
    }
    names
}

/// The names `name` came from through one step.
fn sources(step: &FittedStep, name: &str) -> Vec<(String, f64)> {
    let one = |n: &str| vec![(n.to_owned(), 1.0)];
    match step {
        FittedStep::OneHot { columns } => columns
            .iter()
            .find(|c| c.names.iter().any(|n| n == name))
            .map_or_else(|| one(name), |c| one(&c.column)),
        FittedStep::Spline { columns } => columns
            .iter()
            .find(|b| b.names.iter().any(|n| n == name))
            .map_or_else(|| one(name), |b| one(&b.column)),
        FittedStep::Rename { columns } => columns
            .iter()
            .find(|(_, new)| new.as_str() == name)
            .map_or_else(|| one(name), |(old, _)| one(old)),
        FittedStep::Derive {
            name: derived,
            expr,
        } if derived == name => {
            let read = expr.columns();
            if read.is_empty() {
                one(name)
            } else {
                let share = 1.0 / read.len() as f64;
                read.into_iter().map(|c| (c, share)).collect()
            }
        }
        _ => one(name),
    }
}

/// Sums the shares of repeated names.
fn merge(sources: Vec<(String, f64)>) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for (n, s) in sources {
        match out.iter_mut().find(|(o, _)| *o == n) {
            Some((_, t)) => *t += s,
            None => out.push((n, s)),
        }
    }
    out
}
