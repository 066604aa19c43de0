//! Why a model predicted what it did: per-record contributions of each raw input column to the
//! model's margin, which add up with a base value to that margin exactly.
//!
//! - **Trees** (boosting, forests): exact path-dependent TreeSHAP ([`treeshap`]), with the
//!   training rows that reached each leaf as its cover.
//! - **Linear models:** exact, `w·(x − mean)`, the means being the training part's.
//! - **The ensemble:** each member is explained in its own space (a boosted or linear model's
//!   raw score, a forest's probability), carried into the space the ensemble averages in
//!   (log-odds for binary, log-probabilities for multiclass, the value for regression) by the
//!   one factor that keeps the member's sum exact, then weighted as the ensemble weights it.
//!   For boosted and linear members of a binary model the factor is 1 (a log-odds is their raw
//!   score); for forests it is the secant of the logit between the base and the prediction.
//! - **Folded back** from engineered features (one-hot columns, spline bases, derived columns) to
//!   the raw input columns the user sent ([`lineage`]), so an explanation names `Contract`, not
//!   `Contract_Two year`.
//!
//! The margin explained: the log-odds of the positive class (binary), the averaged
//! log-probability score of the predicted class (multiclass; the softmax of these scores over
//! the classes is the prediction), or the prediction (regression).

pub mod lineage;
pub(crate) mod treeshap;

use millrace_wrangle::{Frame, Rows};

use crate::ensemble::Blend;
use crate::error::AutoMlError;
use crate::linear::{Linear, Loss, Matrix};
use crate::model::{FittedModel, ModelArtifact, Predictions, family_matrix};
use crate::objective::argmax_rows;
use crate::problem::Task;
use crate::trees::{Forest, Gbdt};

/// One record's explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The model's margin knowing nothing of the record.
    pub base_value: f64,
    /// The margin for this record: `base_value + Σ contributions`.
    pub margin: f64,
    /// Per raw input column the model reads (in the model's input order), its contribution.
    pub contributions: Vec<(String, f64)>,
    /// The class whose margin is explained (multiclass: the predicted one).
    pub class: Option<String>,
}

impl Explanation {
    /// The `k` largest contributions by magnitude (all with `None`), largest first.
    pub fn top(&self, k: Option<usize>) -> Vec<(&str, f64)> {
        let mut all: Vec<(&str, f64)> = self
            .contributions
            .iter()
            .map(|(c, v)| (c.as_str(), *v))
            .collect();
        all.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(b.0)));
        if let Some(k) = k {
            all.truncate(k);
        }
        all
    }

    /// What the margin is, in words a report can print.
    pub fn space(task: &Task) -> &'static str {
        match task {
            Task::Binary { .. } => "log_odds",
            Task::Multiclass { .. } => "log_probability",
            Task::Regression => "value",
        }
    }
}

/// How much of an explanation to report: the K largest contributions by magnitude, or every
/// input column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Top(usize),
    All,
}

impl Detail {
    pub fn limit(self) -> Option<usize> {
        match self {
            Detail::Top(k) => Some(k),
            Detail::All => None,
        }
    }
}

impl std::str::FromStr for Detail {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "all" => Ok(Detail::All),
            n => match n.parse::<usize>() {
                Ok(k) if k >= 1 => Ok(Detail::Top(k)),
                _ => Err(format!(
                    "explain = {s:?}: expected a count of contributions (1 or more) or `all`"
                )),
            },
        }
    }
}

impl Explanation {
    /// `{"base_value", "margin", "space", "contributions": {column: value, …}}` (largest
    /// first; a waterfall from the base to the margin), and `"class"` for multiclass.
    pub fn to_json(&self, task: &Task, detail: Detail) -> serde_json::Value {
        let contributions: serde_json::Map<String, serde_json::Value> = self
            .top(detail.limit())
            .into_iter()
            .map(|(c, v)| (c.to_owned(), serde_json::json!(v)))
            .collect();
        let mut out = serde_json::json!({
            "base_value": self.base_value,
            "margin": self.margin,
            "space": Explanation::space(task),
            "contributions": contributions,
        });
        if let Some(c) = &self.class {
            out["class"] = serde_json::json!(c);
        }
        out
    }
}

/// What a member's own explanation is in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Space {
    /// Raw scores through a sigmoid (one output) or softmax (several).
    Score,
    /// Probabilities or values as predicted.
    Output,
}

impl Space {
    /// Boosted and linear models explain raw scores, except for regression, whose score is
    /// the prediction.
    fn of(loss: Loss) -> Space {
        if matches!(loss, Loss::Squared) {
            Space::Output
        } else {
            Space::Score
        }
    }
}

/// One member's explanation of a batch in its own space.
struct Native {
    space: Space,
    width: usize,
    cols: usize,
    /// Per output.
    base: Vec<f64>,
    /// rows × width: the member's value in its space.
    value: Vec<f64>,
    /// rows × cols × width.
    phi: Vec<f64>,
}

impl Native {
    fn new(space: Space, width: usize, x: &Matrix) -> Self {
        Self {
            space,
            width,
            cols: x.cols,
            base: vec![0.0; width],
            value: vec![0.0; x.rows * width],
            phi: vec![0.0; x.rows * x.cols * width],
        }
    }

    fn row_phi(&mut self, r: usize) -> &mut [f64] {
        let n = self.cols * self.width;
        &mut self.phi[r * n..(r + 1) * n]
    }
}

fn no_cover() -> AutoMlError {
    AutoMlError::Data(
        "this model was trained before explanations existed (its trees keep no cover): \
         train it again to explain its predictions"
            .into(),
    )
}

fn gbdt(m: &Gbdt, x: &Matrix, explained: &[usize]) -> Result<Native, AutoMlError> {
    let k = m.loss().outputs().max(1);
    let space = Space::of(m.loss());
    let mut n = Native::new(space, k, x);
    n.base.copy_from_slice(m.init());
    let explainers = m.explainers(1).ok_or_else(no_cover)?;
    for (t, e) in explainers.iter().enumerate() {
        let mut b = [0.0];
        e.expected(&mut b);
        n.base[t % k] += b[0];
    }
    let mut one = vec![0.0; x.cols];
    let mut paths = treeshap::Scratch::default();
    for r in 0..x.rows {
        let row = x.row(r);
        n.value[r * k..(r + 1) * k].copy_from_slice(m.init());
        for (t, (tree, e)) in m.trees().iter().zip(&explainers).enumerate() {
            n.value[r * k + t % k] += tree.values.get(tree.leaf(row)).copied().unwrap_or(0.0);
            if k > 1 && explained.get(r) != Some(&(t % k)) {
                continue; // another class's tree: only the explained class's values are read
            }
            one.fill(0.0);
            e.add_shap(row, None, 1.0, &mut one, &mut paths);
            let phi = n.row_phi(r);
            for (f, v) in one.iter().enumerate() {
                phi[f * k + t % k] += v;
            }
        }
    }
    Ok(n)
}

fn forest(m: &Forest, x: &Matrix, explained: &[usize]) -> Result<Native, AutoMlError> {
    let w = m.loss().outputs().max(1);
    let mut n = Native::new(Space::Output, w, x);
    if m.trees().is_empty() {
        n.base.copy_from_slice(m.prior());
        for r in 0..x.rows {
            n.value[r * w..(r + 1) * w].copy_from_slice(m.prior());
        }
        return Ok(n);
    }
    let scale = 1.0 / m.trees().len() as f64;
    let explainers = m.explainers(w).ok_or_else(no_cover)?;
    let mut b = vec![0.0; w];
    for e in &explainers {
        e.expected(&mut b);
    }
    for (o, v) in b.iter().enumerate() {
        n.base[o] = v * scale;
    }
    let mut paths = treeshap::Scratch::default();
    for r in 0..x.rows {
        let row = x.row(r);
        let mut acc = vec![0.0; w];
        for (tree, e) in m.trees().iter().zip(&explainers) {
            let l = tree.leaf(row);
            if let Some(v) = tree.values.get(l * w..(l + 1) * w) {
                for (a, b) in acc.iter_mut().zip(v) {
                    *a += b;
                }
            }
            let output = explained.get(r).copied();
            e.add_shap(row, output, scale, n.row_phi(r), &mut paths);
        }
        for (o, a) in acc.iter().enumerate() {
            n.value[r * w + o] = a * scale;
        }
    }
    Ok(n)
}

fn linear(m: &Linear, x: &Matrix) -> Native {
    let k = m.loss.outputs().max(1);
    let space = Space::of(m.loss);
    let mut n = Native::new(space, k, x);
    let cols = m.cols;
    let mean = |j: usize| m.means.get(j).copied().unwrap_or(0.0);
    for o in 0..k {
        let w = &m.weights[o * (cols + 1)..(o + 1) * (cols + 1)];
        n.base[o] = w[cols] + (0..cols).map(|j| w[j] * mean(j)).sum::<f64>();
    }
    for r in 0..x.rows {
        let row = x.row(r);
        for o in 0..k {
            let w = &m.weights[o * (cols + 1)..(o + 1) * (cols + 1)];
            let mut z = w[cols];
            for j in 0..cols.min(row.len()) {
                let v = if row[j].is_nan() { 0.0 } else { row[j] };
                z += w[j] * v;
                n.phi[(r * x.cols + j) * k + o] = w[j] * (v - mean(j));
            }
            n.value[r * k + o] = z;
        }
    }
    n
}

/// A member's explanation of every row: values and base for every output, contributions for
/// the output `explained[row]` (the others stay 0 where skipping them saves work).
fn native(model: &FittedModel, x: &Matrix, explained: &[usize]) -> Result<Native, AutoMlError> {
    match model {
        FittedModel::Gbdt(m) => gbdt(m, x, explained),
        FittedModel::Forest(m) => forest(m, x, explained),
        FittedModel::Linear(m) => Ok(linear(m, x)),
    }
}

/// A member's value(s) in its own space → its output → the ensemble's space, for output `o`.
fn blended(task: &Task, blend: Blend, space: Space, values: &[f64], o: usize) -> f64 {
    let output = |vals: &[f64]| -> Vec<f64> {
        match (space, vals.len()) {
            (Space::Output, _) => vals.to_vec(),
            (Space::Score, 1) => vec![crate::linear::sigmoid(vals[0])],
            (Space::Score, _) => {
                let mut p = vals.to_vec();
                crate::linear::softmax(&mut p);
                p
            }
        }
    };
    blend.to_space(task, &output(values))[o]
}

impl ModelArtifact {
    /// Predictions and explanations of every row of `frame` (raw rows, as for `predict`).
    pub fn explain(&self, frame: &Frame) -> Result<(Predictions, Vec<Explanation>), AutoMlError> {
        let prepared = match &self.recipe {
            Some(r) => r
                .transform(frame.clone(), Rows::Keep)
                .map_err(|e| AutoMlError::Data(format!("recipe: {e}")))?,
            None => frame.clone(),
        };
        self.explain_prepared(&prepared)
    }

    /// As [`ModelArtifact::explain`], for rows already through the user's recipe.
    pub fn explain_prepared(
        &self,
        prepared: &Frame,
    ) -> Result<(Predictions, Vec<Explanation>), AutoMlError> {
        let predictions = self.predict_prepared(prepared)?;
        let rows = prepared.rows();
        let matrices = self
            .features
            .iter()
            .map(|s| family_matrix(s, prepared))
            .collect::<Result<Vec<_>, _>>()?;
        // Every matrix column of every family, as shares of raw columns; a column whose origin
        // is not an input (a derived constant) is named for itself, so nothing is lost.
        let mut columns = lineage::explained_columns(self);
        let origins: Vec<Vec<Vec<(usize, f64)>>> = self
            .features
            .iter()
            .map(|s| {
                lineage::origins(self, s)
                    .into_iter()
                    .map(|sources| {
                        sources
                            .into_iter()
                            .map(|(name, share)| {
                                let at =
                                    columns.iter().position(|c| *c == name).unwrap_or_else(|| {
                                        columns.push(name);
                                        columns.len() - 1
                                    });
                                (at, share)
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let explained: Vec<usize> = match &self.task {
            Task::Multiclass { .. } => argmax_rows(&predictions.values, predictions.width),
            _ => vec![0; rows],
        };
        let total: f64 = self.members.iter().map(|m| m.weight).sum();
        let mut out: Vec<Explanation> = (0..rows)
            .map(|r| Explanation {
                base_value: 0.0,
                margin: 0.0,
                contributions: columns.iter().map(|c| (c.clone(), 0.0)).collect(),
                class: match &self.task {
                    Task::Multiclass { classes } => classes.get(explained[r]).cloned(),
                    _ => None,
                },
            })
            .collect();
        for m in &self.members {
            let weight = m.weight / total;
            let n = native(&m.model, &matrices[m.features], &explained)?;
            let base_f = |o: usize| blended(&self.task, self.blend, n.space, &n.base, o);
            for (r, e) in out.iter_mut().enumerate() {
                let o = explained[r];
                let w = n.width;
                let value = &n.value[r * w..(r + 1) * w];
                let (f, b) = (value[o], n.base[o]);
                let (big_f, big_b) = (
                    blended(&self.task, self.blend, n.space, value, o),
                    base_f(o),
                );
                // The one factor that carries the member's exact sum into the blend space.
                let scale = if (f - b).abs() > 1e-12 {
                    (big_f - big_b) / (f - b)
                } else {
                    1.0
                };
                let phi = &n.phi[r * n.cols * w..(r + 1) * n.cols * w];
                let mut sum = 0.0;
                for (j, sources) in origins[m.features].iter().enumerate() {
                    let v = phi.get(j * w + o).copied().unwrap_or(0.0) * scale;
                    sum += v;
                    for &(c, share) in sources {
                        e.contributions[c].1 += weight * v * share;
                    }
                }
                // The base takes what is left, so that the sum is the margin exactly (it is
                // the member's expected margin up to rounding, unless the value equals the base).
                e.base_value += weight * (big_f - sum);
                e.margin += weight * big_f;
            }
        }
        Ok((predictions, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::Params;
    use crate::model::Member;
    use crate::train::{Options, train};
    use crate::trees::{ForestParams, GbdtParams};
    use millrace_wrangle::Column;

    /// 240 rows: two numbers (one with gaps), a category, and a target of `kind`.
    fn frame(kind: &str) -> Frame {
        let n = 240;
        let mut rng = crate::rng::Rng::new(7);
        let x1: Vec<f64> = (0..n)
            .map(|i| {
                if i % 17 == 0 {
                    f64::NAN
                } else {
                    rng.unit() * 4.0 - 2.0
                }
            })
            .collect();
        let x2: Vec<f64> = (0..n).map(|_| rng.unit() * 10.0).collect();
        let cats = ["a", "b", "c", "d"];
        let c: Vec<usize> = (0..n).map(|_| rng.below(4)).collect();
        let y: Vec<Option<String>> = (0..n)
            .map(|i| {
                let s = x1[i].max(-1.0) * 1.5 + x2[i] * 0.2 + c[i] as f64 * 0.7 + rng.unit();
                Some(match kind {
                    "binary" => if s > 2.0 { "yes" } else { "no" }.to_owned(),
                    "multiclass" => {
                        ["low", "mid", "high"][(s.clamp(0.0, 5.99) / 2.0) as usize].to_owned()
                    }
                    _ => format!("{s}"),
                })
            })
            .collect();
        let mut f = Frame::new(n);
        f.set("x1".into(), Column::Num(x1));
        f.set("x2".into(), Column::Num(x2));
        f.set(
            "c".into(),
            Column::Str(c.iter().map(|&i| Some(cats[i].to_owned())).collect()),
        );
        f.set("y".into(), Column::Str(y));
        f
    }

    /// The class index of each row's label under `task` (targets the fits below take).
    fn targets(model: &ModelArtifact, f: &Frame) -> Vec<f64> {
        let Some(Column::Str(y)) = f.column("y") else {
            panic!("target")
        };
        y.iter()
            .map(|v| {
                let v = v.as_deref().unwrap_or_default();
                match &model.task {
                    Task::Binary { positive, .. } => f64::from(u8::from(v == positive)),
                    Task::Multiclass { classes } => {
                        classes.iter().position(|c| c == v).unwrap() as f64
                    }
                    Task::Regression => v.parse().unwrap(),
                }
            })
            .collect()
    }

    /// The ensemble's margin for row `r`, class `o`, from the members' predictions alone.
    fn margin_of(model: &ModelArtifact, f: &Frame, r: usize, o: usize) -> f64 {
        let total: f64 = model.members.iter().map(|m| m.weight).sum();
        let w = model.width();
        model
            .members
            .iter()
            .map(|m| {
                let x = family_matrix(&model.features[m.features], f).unwrap();
                let p = m.model.predict(&x);
                m.weight / total * model.blend.to_space(&model.task, &p[r * w..(r + 1) * w])[o]
            })
            .sum()
    }

    fn check(model: &ModelArtifact, f: &Frame, what: &str) {
        let (p, explanations) = model.explain(f).unwrap();
        let explained = match &model.task {
            Task::Multiclass { .. } => argmax_rows(&p.values, p.width),
            _ => vec![0; p.rows],
        };
        for (r, e) in explanations.iter().enumerate() {
            let sum: f64 = e.contributions.iter().map(|(_, v)| v).sum();
            assert!(
                (e.base_value + sum - e.margin).abs() < 1e-9,
                "{what} row {r}: base {} + {sum} != margin {}",
                e.base_value,
                e.margin
            );
            let want = margin_of(model, f, r, explained[r]);
            assert!(
                (e.margin - want).abs() < 1e-9,
                "{what} row {r}: margin {} vs {want}",
                e.margin
            );
            let names: Vec<&str> = e.contributions.iter().map(|(c, _)| c.as_str()).collect();
            assert_eq!(names, ["x1", "x2", "c"], "{what}: raw columns only");
        }
        // Knowing the record moves the margin: not every contribution is zero.
        assert!(
            explanations
                .iter()
                .any(|e| e.contributions.iter().any(|(_, v)| v.abs() > 1e-6)),
            "{what}"
        );
    }

    #[test]
    fn contributions_and_base_add_up_to_the_margin_for_every_family_and_the_ensemble() {
        for kind in ["binary", "multiclass", "regression"] {
            let f = frame(kind);
            let mut opts = Options::new("y");
            opts.threads = 1;
            let trained = train(&f, &opts, &|_| {}).unwrap();
            let mut model = trained.model;
            check(&model, &f, &format!("{kind} as trained"));
            // One member of each family, then all three blended.
            let y = targets(&model, &f);
            let loss = match &model.task {
                Task::Binary { .. } => Loss::Logistic,
                Task::Multiclass { classes } => Loss::Softmax {
                    classes: classes.len(),
                },
                Task::Regression => Loss::Squared,
            };
            let set = |fam| model.features.iter().position(|s| s.family == fam).unwrap();
            let (lin, trees) = (
                set(crate::features::Family::Linear),
                set(crate::features::Family::Trees),
            );
            let xl = family_matrix(&model.features[lin], &f).unwrap();
            let xt = family_matrix(&model.features[trees], &f).unwrap();
            let members = vec![
                (
                    lin,
                    FittedModel::Linear(Linear::fit(&xl, &y, loss, &Params::default())),
                ),
                (
                    trees,
                    FittedModel::Gbdt(Gbdt::fit(&xt, &y, loss, &GbdtParams::default(), None).0),
                ),
                (
                    trees,
                    FittedModel::Forest(Forest::fit(&xt, &y, loss, &ForestParams::default())),
                ),
            ];
            let members: Vec<Member> = members
                .into_iter()
                .zip([0.5, 0.3, 0.2])
                .map(|((features, model), weight)| Member {
                    candidate: "t".into(),
                    features,
                    weight,
                    model,
                })
                .collect();
            for m in &members {
                model.members = vec![m.clone()];
                check(
                    &model,
                    &f,
                    &format!("{kind} {:?}", std::mem::discriminant(&m.model)),
                );
            }
            model.members = members;
            check(&model, &f, &format!("{kind} ensemble of three"));
        }
    }

    #[test]
    fn detail_parses_counts_and_all() {
        assert_eq!("3".parse::<Detail>(), Ok(Detail::Top(3)));
        assert_eq!("all".parse::<Detail>(), Ok(Detail::All));
        assert!("0".parse::<Detail>().is_err());
        assert!("many".parse::<Detail>().is_err());
    }
}
