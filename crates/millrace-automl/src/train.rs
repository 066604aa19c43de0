//! The quick build, end to end: detect the problem, hold out a seeded stratified test part,
//! cross-validate every candidate on the training part (feature recipes refitted inside each
//! fold), select an ensemble over the out-of-fold predictions, tune the threshold on them,
//! refit on the whole training part, and report on the test part — which no choice looks at.
//!
//! Determinism: quick mode tries a fixed list, every fold and candidate is computed on its own
//! (threads only change the order work finishes, never a result), so the same data and seed
//! give the same model. `best` mode tries random configurations while its time budget lasts, so
//! how many it tries depends on the machine (`max_candidates` pins it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use millrace_wrangle::fitted::FieldSpec;
use millrace_wrangle::frame::{coerce_str, format_num};
use millrace_wrangle::{Column, Frame, Recipe, Rows};

use crate::baseline::Baseline;
use crate::ensemble;
use crate::error::AutoMlError;
use crate::features::{self, Columns, Family};
use crate::linear::{Linear, Loss, Matrix};
use crate::model::{FeatureSet, FittedModel, Lineage, Member, ModelArtifact};
use crate::objective::Objective;
use crate::problem::{self, Task, Want};
use crate::report::{self, Entry, Report};
use crate::rng::Rng;
use crate::search::{self, Algo, Candidate, Mode};
use crate::split;
use crate::trees::{Forest, Gbdt};

/// The default [`Options::max_columns`]: feature handling and the candidates grow faster than
/// linearly with the column count (about 25 s for 1,000 columns and 300 rows on 2 cores).
pub const DEFAULT_MAX_COLUMNS: usize = 2_000;

#[derive(Debug, Clone)]
pub struct Options {
    pub target: String,
    pub want: Want,
    /// `--objective`; the task's default when `None`.
    pub objective: Option<String>,
    pub test_fraction: f64,
    pub folds: usize,
    pub seed: u64,
    pub mode: Mode,
    /// `best` mode searches until this much time has passed.
    pub time_budget: Duration,
    /// `best` mode: stop after this many candidates even with time left (reproducible runs).
    pub max_candidates: Option<usize>,
    /// The user's recipe, fitted on the training part and applied before automatic features.
    pub recipe: Option<Recipe>,
    pub threads: usize,
    /// Most columns (target included) a table may have; wider ones are refused up front.
    pub max_columns: usize,
    /// (train, test) row indices among the rows that have a target, instead of the seeded
    /// split: the seam tests use to change the test part and nothing else.
    pub split: Option<(Vec<usize>, Vec<usize>)>,
    /// After the test part has been scored, refit the chosen ensemble's members on every
    /// labelled row (training and test parts) for the saved model: a quarter more data for the
    /// model that is used, while the reported figures stay those of the same recipe fitted on
    /// the training part alone. `false` keeps the model the test figures were measured on.
    pub refit_all: bool,
    /// Nodes an explanation of one row may walk before the ensemble's largest members are
    /// left out where that costs no more than the folds' noise ([`ensemble::simplify`]);
    /// `None` keeps every member selected.
    pub explain_budget: Option<usize>,
}

/// The default [`Options::explain_budget`]: about a millisecond of one core per explained
/// row at the ~50 ns a node the walk takes (`explain::treeshap`'s `walk_speed`).
pub const DEFAULT_EXPLAIN_BUDGET: usize = 20_000;

impl Options {
    pub fn new(target: &str) -> Self {
        Self {
            target: target.to_owned(),
            want: Want::Auto,
            objective: None,
            test_fraction: 0.2,
            folds: 5,
            seed: 42,
            mode: Mode::Quick,
            time_budget: Duration::from_secs(60),
            max_candidates: None,
            recipe: None,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_columns: DEFAULT_MAX_COLUMNS,
            split: None,
            refit_all: true,
            explain_budget: Some(DEFAULT_EXPLAIN_BUDGET),
        }
    }
}

/// Progress, as it happens.
#[derive(Debug, Clone)]
pub enum Event {
    /// A line for the user.
    Info(String),
    /// The metric candidates are compared on, once the problem is known (before any
    /// [`Event::Evaluated`]): its name and whether a higher figure is better.
    Objective {
        name: &'static str,
        higher_is_better: bool,
    },
    /// The number of candidates planned (grows in `best` mode).
    Planned(usize),
    /// A candidate was cross-validated.
    Evaluated {
        done: usize,
        name: String,
        cv: f64,
        seconds: f64,
    },
}

/// A trained model with its report, and the test part's predictions (for checks).
#[derive(Debug, Clone)]
pub struct Trained {
    /// The model to save: with [`Options::refit_all`], refitted on every labelled row, so its
    /// predictions on the test part are no longer `test_values`.
    pub model: ModelArtifact,
    pub report: Report,
    /// Rows of the input (after the user recipe, if any) that formed the test part.
    pub test_frame: Frame,
    pub test_y: Vec<f64>,
    /// The test predictions of the ensemble fitted on the training part alone (the figures
    /// the report and the promotion gate use), as `ModelArtifact::predict` gave them.
    pub test_values: Vec<f64>,
}

/// Rows with labels: the frame and per row the label value (0/1, class index, or value).
struct Part {
    frame: Frame,
    y: Vec<f64>,
}

fn loss_of(task: &Task) -> Loss {
    match task {
        Task::Binary { .. } => Loss::Logistic,
        Task::Multiclass { classes } => Loss::Softmax {
            classes: classes.len(),
        },
        Task::Regression => Loss::Squared,
    }
}

fn width_of(task: &Task) -> usize {
    match task {
        Task::Multiclass { classes } => classes.len(),
        _ => 1,
    }
}

/// The label of every row of a target column under an already detected task (`None`: missing
/// or a value the task does not know).
fn labels(task: &Task, column: &Column) -> Vec<Option<f64>> {
    let text = |i: usize| -> Option<String> {
        match column {
            Column::Str(v) => v[i]
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            Column::Num(v) => format_num(v[i]),
        }
    };
    (0..column.len())
        .map(|i| {
            let t = text(i)?;
            match task {
                Task::Binary { positive, negative } => {
                    if &t == positive {
                        Some(1.0)
                    } else if &t == negative {
                        Some(0.0)
                    } else {
                        None
                    }
                }
                Task::Multiclass { classes } => {
                    classes.iter().position(|c| *c == t).map(|c| c as f64)
                }
                Task::Regression => Some(coerce_str(Some(&t))).filter(|v| !v.is_nan()),
            }
        })
        .collect()
}

/// Keeps the rows of `frame` whose target is known under `task`.
fn part(frame: Frame, task: &Task, target: &str) -> Result<Part, AutoMlError> {
    let column = frame.column(target).ok_or_else(|| AutoMlError::Target {
        column: target.to_owned(),
        message: "the recipe removed it; keep the target column".into(),
    })?;
    let l = labels(task, column);
    let keep: Vec<usize> = (0..l.len()).filter(|i| l[*i].is_some()).collect();
    let y = keep.iter().map(|i| l[*i].unwrap_or_default()).collect();
    let frame = if keep.len() == frame.rows() {
        frame
    } else {
        frame.take_rows(&keep)
    };
    Ok(Part { frame, y })
}

/// Runs `f(0..n)` on up to `threads` threads; results in index order.
fn par_map<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 {
        return (0..n).map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let v = f(i);
                    out.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(v);
                }
            });
        }
    });
    out.into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|v| v.expect("every index computed"))
        .collect()
}

/// Fits one candidate; with `valid`, also the validation loss per boosting round.
fn fit_algo(
    algo: &Algo,
    x: &Matrix,
    y: &[f64],
    loss: Loss,
    valid: Option<(&Matrix, &[f64])>,
) -> (FittedModel, Vec<f64>) {
    match algo {
        Algo::Linear(p) => (FittedModel::Linear(Linear::fit(x, y, loss, p)), Vec::new()),
        Algo::Gbdt(p) => {
            let (m, curve) = Gbdt::fit(x, y, loss, p, valid);
            (FittedModel::Gbdt(m), curve)
        }
        Algo::Forest(p) => (FittedModel::Forest(Forest::fit(x, y, loss, p)), Vec::new()),
    }
}

/// One fold's matrices for one family.
struct FoldData {
    fit_x: Matrix,
    val_x: Matrix,
}

struct Cv {
    /// Per fold: the rows (indices into the training part) fitted on and validated on.
    fit_rows: Vec<Vec<usize>>,
    val_rows: Vec<Vec<usize>>,
    /// Per fold, per family (0 linear, 1 trees).
    data: Vec<[FoldData; 2]>,
    y: Vec<f64>,
}

fn family_index(f: Family) -> usize {
    match f {
        Family::Linear => 0,
        Family::Trees => 1,
    }
}

const FAMILIES: [Family; 2] = [Family::Linear, Family::Trees];

/// Fits the automatic recipe of `family` on `rows` of `frame`; the fitted set and the matrix
/// of those rows.
fn fit_features(
    frame: &Frame,
    cols: &Columns,
    target: &str,
    family: Family,
) -> Result<(FeatureSet, Matrix), AutoMlError> {
    let recipe = features::recipe(cols, target, family);
    let (fitted, out) = recipe
        .fit(frame.clone())
        .map_err(|e| AutoMlError::Data(format!("automatic features: {e}")))?;
    let names: Vec<String> = fitted
        .features()
        .filter(|f| f.kind == millrace_wrangle::Kind::Number)
        .map(|f| f.name.clone())
        .collect();
    let x = features::matrix_named(&out, &names);
    Ok((
        FeatureSet {
            family,
            recipe: fitted,
            names,
        },
        x,
    ))
}

fn build_cv(
    train: &Part,
    cols: &Columns,
    target: &str,
    fold: &[usize],
    k: usize,
    threads: usize,
) -> Result<Cv, AutoMlError> {
    let n = train.y.len();
    let fit_rows: Vec<Vec<usize>> = (0..k)
        .map(|f| (0..n).filter(|i| fold[*i] != f).collect())
        .collect();
    let val_rows: Vec<Vec<usize>> = (0..k)
        .map(|f| (0..n).filter(|i| fold[*i] == f).collect())
        .collect();
    let data = par_map(k, threads, |f| -> Result<[FoldData; 2], AutoMlError> {
        let fit_frame = train.frame.take_rows(&fit_rows[f]);
        let val_frame = train.frame.take_rows(&val_rows[f]);
        let mut out = Vec::with_capacity(2);
        for family in FAMILIES {
            let (set, fit_x) = fit_features(&fit_frame, cols, target, family)?;
            let val_x = crate::model::family_matrix(&set, &val_frame)?;
            out.push(FoldData { fit_x, val_x });
        }
        let trees = out.pop().expect("two families");
        let linear = out.pop().expect("two families");
        Ok([linear, trees])
    })
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    Ok(Cv {
        fit_rows,
        val_rows,
        data,
        y: train.y.clone(),
    })
}

/// A cross-validated candidate.
struct Evaluated {
    candidate: Candidate,
    oof: Vec<f64>,
    cv: f64,
    threshold: f64,
    seconds: f64,
    /// The fold models' mean [`FittedModel::size`].
    size: usize,
}

/// Cross-validates `c` on the folds listed in `folds` (all of them for a full evaluation);
/// rows of other folds keep 0 in the out-of-fold vector.
fn evaluate(
    c: &Candidate,
    task: &Task,
    objective: Objective,
    cv: &Cv,
    folds: &[usize],
    threads: usize,
) -> Evaluated {
    let started = Instant::now();
    let loss = loss_of(task);
    let width = width_of(task);
    let fam = family_index(c.family());
    let fits = par_map(folds.len(), threads, |j| {
        let f = folds[j];
        let d = &cv.data[f][fam];
        let y_fit: Vec<f64> = cv.fit_rows[f].iter().map(|i| cv.y[*i]).collect();
        let y_val: Vec<f64> = cv.val_rows[f].iter().map(|i| cv.y[*i]).collect();
        fit_algo(&c.algo, &d.fit_x, &y_fit, loss, Some((&d.val_x, &y_val)))
    });
    let mut candidate = c.clone();
    // Boosting: one round count for every fold (the minimum of the summed validation
    // curves), as the refit on all training rows will use.
    let rounds = if let Algo::Gbdt(p) = &mut candidate.algo {
        let len = fits.iter().map(|(_, c)| c.len()).min().unwrap_or(0);
        let mut best = (usize::MAX, f64::INFINITY);
        for r in 0..len {
            let s: f64 = fits.iter().map(|(_, c)| c[r]).sum();
            if s < best.1 {
                best = (r + 1, s);
            }
        }
        if best.0 != usize::MAX {
            p.rounds = best.0;
        }
        Some(p.rounds)
    } else {
        None
    };
    let mut oof = vec![0.0; cv.y.len() * width];
    let mut size = 0;
    for (&f, (model, _)) in folds.iter().zip(fits) {
        let model = match (model, rounds) {
            (FittedModel::Gbdt(mut m), Some(r)) => {
                m.truncate(r);
                FittedModel::Gbdt(m)
            }
            (m, _) => m,
        };
        size += model.size();
        let p = model.predict(&cv.data[f][fam].val_x);
        for (j, i) in cv.val_rows[f].iter().enumerate() {
            oof[i * width..(i + 1) * width].copy_from_slice(&p[j * width..(j + 1) * width]);
        }
    }
    let threshold = threshold_for(task, objective, &cv.y, &oof);
    let score = objective.score(task, &cv.y, &oof, threshold);
    Evaluated {
        candidate,
        oof,
        cv: score,
        threshold,
        seconds: started.elapsed().as_secs_f64(),
        size: size / folds.len().max(1),
    }
}

fn threshold_for(task: &Task, objective: Objective, y: &[f64], p: &[f64]) -> f64 {
    match task {
        Task::Binary { .. } => {
            let yb: Vec<bool> = y.iter().map(|v| *v == 1.0).collect();
            objective.threshold(&yb, p)
        }
        _ => 0.5,
    }
}

/// The folds for this many rows and classes: at most `wanted`, at least 2, and no more than
/// the smallest class has rows.
fn fold_count(task: &Task, y: &[f64], wanted: usize) -> Result<usize, AutoMlError> {
    let mut k = wanted.max(2).min(y.len());
    if let Task::Binary { .. } | Task::Multiclass { .. } = task {
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for v in y {
            *counts.entry(v.to_bits()).or_default() += 1;
        }
        let smallest = counts.values().copied().min().unwrap_or(0);
        if smallest < 2 {
            return Err(AutoMlError::Data(format!(
                "a class has {smallest} row(s) in the training part; cross-validation needs at \
                 least 2 per class (collect more rows, or merge rare classes)"
            )));
        }
        k = k.min(smallest);
    }
    if k < 2 {
        return Err(AutoMlError::Data(format!(
            "{} training row(s): too few to cross-validate",
            y.len()
        )));
    }
    Ok(k)
}

/// Refits `model`'s feature recipes and members on `all` (every labelled row), keeping each
/// member's candidate settings (boosting rounds as cross-validation chose them), weight,
/// the blend and the threshold.
fn refit_all(
    model: &mut ModelArtifact,
    algos: &[Algo],
    all: &Part,
    cols: &Columns,
    threads: usize,
) -> Result<(), AutoMlError> {
    let target = model.target.clone();
    let sets = par_map(2, threads, |f| {
        fit_features(&all.frame, cols, &target, FAMILIES[f])
    })
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let loss = loss_of(&model.task);
    let fits = par_map(model.members.len(), threads, |i| {
        let fam = model.members[i].features;
        fit_algo(&algos[i], &sets[fam].1, &all.y, loss, None).0
    });
    for (member, fit) in model.members.iter_mut().zip(fits) {
        member.model = fit;
    }
    model.features = sets.into_iter().map(|(s, _)| s).collect();
    model.lineage.refit_all = true;
    Ok(())
}

/// The first names of a list, for messages: `a, b, … and 980 more`.
fn some_names(names: &[millrace_wrangle::frame::Name]) -> String {
    const SHOWN: usize = 20;
    let head = names
        .iter()
        .take(SHOWN)
        .map(|n| &**n)
        .collect::<Vec<_>>()
        .join(", ");
    match names.len().saturating_sub(SHOWN) {
        0 => head,
        more => format!("{head}, … and {more} more"),
    }
}

/// Trains on `frame` (every column as read; the target among them).
pub fn train(
    frame: &Frame,
    opts: &Options,
    on: &(dyn Fn(Event) + Sync),
) -> Result<Trained, AutoMlError> {
    let started = Instant::now();
    let target_name = opts.target.as_str();
    if frame.names().len() > opts.max_columns {
        return Err(AutoMlError::TooWide {
            columns: frame.names().len(),
            limit: opts.max_columns,
        });
    }
    let column = frame
        .column(target_name)
        .ok_or_else(|| AutoMlError::Target {
            column: opts.target.clone(),
            message: format!("not in the data (columns: {})", some_names(frame.names())),
        })?;
    let target = problem::detect(target_name, column, opts.want)?;
    let task = target.task.clone();
    let objective = match &opts.objective {
        Some(name) => Objective::parse(name, &task)?,
        None => Objective::default_for(&task),
    };
    on(Event::Info(match &task {
        Task::Binary { positive, negative } => format!(
            "binary target `{target_name}`: positive class {positive:?} (negative {negative:?}); \
             objective {}",
            objective.name()
        ),
        Task::Multiclass { classes } => format!(
            "multiclass target `{target_name}`: {} classes; objective {}",
            classes.len(),
            objective.name()
        ),
        Task::Regression => format!(
            "regression target `{target_name}`; objective {}",
            objective.name()
        ),
    }));
    on(Event::Objective {
        name: objective.name(),
        higher_is_better: objective.higher_is_better(),
    });
    on(Event::Info(format!("problem type: {}", target.rule)));
    if target.missing > 0 {
        on(Event::Info(format!(
            "{} row(s) without a target left out",
            target.missing
        )));
    }
    let classification = !matches!(task, Task::Regression);
    let labelled = frame.take_rows(&target.rows);
    let (train_idx, test_idx) = match &opts.split {
        Some(s) => s.clone(),
        None => split::train_test(
            classification.then_some(&target.class[..]),
            target.rows.len(),
            opts.test_fraction,
            opts.seed,
        )?,
    };
    let input: Vec<FieldSpec> = frame
        .kinds()
        .into_iter()
        .map(|(n, kind)| FieldSpec {
            name: n.to_string(),
            kind,
        })
        .collect();
    let raw_train = labelled.take_rows(&train_idx);
    // Drift monitoring compares scored records with the raw training part (never the test
    // part), column by column as the model receives them.
    let mut baseline = Baseline::fit(&raw_train, &[target_name]);
    let raw_test = labelled.take_rows(&test_idx);
    let raw_all = opts.refit_all.then(|| {
        let idx: Vec<usize> = train_idx.iter().chain(&test_idx).copied().collect();
        labelled.take_rows(&idx)
    });
    let (train, test, user_recipe) = match &opts.recipe {
        None => (
            part(raw_train, &task, target_name)?,
            part(raw_test, &task, target_name)?,
            None,
        ),
        Some(r) => {
            let mut r = r.clone();
            match &r.target {
                Some(t) if t != target_name => {
                    return Err(AutoMlError::Data(format!(
                        "the recipe's target is `{t}` but --target is `{target_name}`"
                    )));
                }
                _ => r.target = Some(target_name.to_owned()),
            }
            let (fitted, out) = r
                .fit(raw_train)
                .map_err(|e| AutoMlError::Data(format!("recipe: {e}")))?;
            let test_out = fitted
                .transform(raw_test, Rows::Drop)
                .map_err(|e| AutoMlError::Data(format!("recipe: {e}")))?;
            (
                part(out, &task, target_name)?,
                part(test_out, &task, target_name)?,
                Some(fitted),
            )
        }
    };
    if test.y.is_empty() {
        return Err(AutoMlError::Data("the test part has no rows".into()));
    }
    let cols = features::inspect(&train.frame, target_name);
    for (c, why) in &cols.dropped {
        on(Event::Info(format!("column `{c}` not used: {why}")));
    }
    if cols.numeric.is_empty() && cols.numeric_text.is_empty() && cols.categorical.is_empty() {
        return Err(AutoMlError::Data(
            "no usable feature columns: every column other than the target is missing, \
             constant or an identifier"
                .into(),
        ));
    }
    let id_columns: Vec<String> = cols
        .dropped
        .iter()
        .filter(|(c, why)| why.starts_with("ID-like") && frame.index(c).is_some())
        .map(|(c, _)| c.clone())
        .collect();
    baseline.features.retain(|f| !id_columns.contains(&f.name));

    let k = fold_count(&task, &train.y, opts.folds)?;
    let fold_class: Option<Vec<usize>> =
        classification.then(|| train.y.iter().map(|v| *v as usize).collect());
    let fold = split::folds(fold_class.as_deref(), train.y.len(), k, opts.seed ^ 0x5EED);
    on(Event::Info(format!(
        "{} training rows ({k}-fold cross-validation), {} test rows held out; {} numeric, {} \
         categorical feature column(s)",
        train.y.len(),
        test.y.len(),
        cols.numeric.len() + cols.numeric_text.len(),
        cols.categorical.len()
    )));
    let cv = build_cv(&train, &cols, target_name, &fold, k, opts.threads)?;

    // Candidates.
    let mut planned = search::defaults(opts.seed, train.y.len());
    let defaults_len = planned.len();
    let mut pruned = 0usize;
    let width = width_of(&task);
    on(Event::Planned(planned.len()));
    let mut rng = Rng::new(opts.seed ^ 0xB357);
    let mut done: Vec<Evaluated> = Vec::new();
    let limit = opts.max_candidates.unwrap_or(usize::MAX);
    loop {
        let i = done.len();
        if i >= planned.len() {
            if opts.mode == Mode::Quick || i >= limit {
                break;
            }
            // Keep a fifth of the budget for the refit and the report.
            if started.elapsed() >= opts.time_budget.mul_f64(0.8) {
                break;
            }
            planned.push(search::random(&mut rng, i, opts.seed, train.y.len()));
            on(Event::Planned(planned.len()));
        }
        let all: Vec<usize> = (0..k).collect();
        if i >= defaults_len && k > 2 {
            // Successive halving, two rungs: a random configuration first runs on two folds
            // and goes on to all folds only if it beats the median of the finished candidates
            // on those folds' rows.
            let rung = [0usize, 1];
            let part = evaluate(&planned[i], &task, objective, &cv, &rung, opts.threads);
            let rows: Vec<usize> = cv.val_rows[0]
                .iter()
                .chain(&cv.val_rows[1])
                .copied()
                .collect();
            let sub = |v: &[f64]| -> Vec<f64> {
                rows.iter()
                    .flat_map(|r| v[r * width..(r + 1) * width].iter().copied())
                    .collect()
            };
            let y_sub: Vec<f64> = rows.iter().map(|r| cv.y[*r]).collect();
            let mut losses: Vec<f64> = done
                .iter()
                .map(|e| ensemble::loss(&task, &y_sub, &sub(&e.oof)))
                .collect();
            losses.sort_unstable_by(f64::total_cmp);
            let median = losses
                .get(losses.len() / 2)
                .copied()
                .unwrap_or(f64::INFINITY);
            let mine = ensemble::loss(&task, &y_sub, &sub(&part.oof));
            if mine.is_nan() || mine > median {
                pruned += 1;
                on(Event::Info(format!(
                    "{}: pruned after two folds (loss {mine:.4} > median {median:.4})",
                    planned[i].name
                )));
                planned.remove(i);
                on(Event::Planned(planned.len()));
                continue;
            }
        }
        let e = evaluate(&planned[i], &task, objective, &cv, &all, opts.threads);
        on(Event::Evaluated {
            done: i + 1,
            name: e.candidate.name.clone(),
            cv: e.cv,
            seconds: e.seconds,
        });
        done.push(e);
    }

    // Ensemble selection on out-of-fold predictions.
    let oofs: Vec<&[f64]> = done.iter().map(|e| e.oof.as_slice()).collect();
    let blend = ensemble::Blend::for_task(&task);
    let selected = ensemble::select(&task, blend, &cv.y, &oofs, ensemble::ROUNDS);
    let sizes: Vec<usize> = done.iter().map(|e| e.size).collect();
    let simple = ensemble::simplify(
        &task,
        blend,
        &cv.y,
        &oofs,
        selected,
        &sizes,
        opts.explain_budget.unwrap_or(usize::MAX),
    );
    if !simple.dropped.is_empty() {
        on(Event::Info(format!(
            "left out of the ensemble: {} (over the explanation budget of {} nodes; without \
             them the out-of-fold loss per row rises {:.5}, within its standard error {:.5})",
            simple
                .dropped
                .iter()
                .map(|j| format!("{} ({} nodes)", done[*j].candidate.name, sizes[*j]))
                .collect::<Vec<_>>()
                .join(", "),
            opts.explain_budget.unwrap_or(usize::MAX),
            simple.increase.0,
            simple.increase.1
        )));
    }
    let walked = simple.size;
    let weights = simple.weights;
    if let Some(budget) = opts.explain_budget.filter(|b| walked > *b) {
        on(Event::Info(format!(
            "the ensemble is {walked} nodes to explain, over the explanation budget of {budget}: \
             no more large members could be left out within one standard error of its \
             out-of-fold loss (explanations take longer; --explain-budget 0 silences this)"
        )));
    }
    if pruned > 0 {
        on(Event::Info(format!(
            "{} candidate(s) cross-validated, {pruned} pruned early",
            done.len()
        )));
    }
    let picked: Vec<(f64, &[f64])> = done
        .iter()
        .zip(&weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(e, w)| (*w, e.oof.as_slice()))
        .collect();
    let ens_oof = ensemble::combine(&task, blend, &picked);
    let threshold = threshold_for(&task, objective, &cv.y, &ens_oof);
    let ens_cv = objective.score(&task, &cv.y, &ens_oof, threshold);
    on(Event::Info(format!(
        "ensemble of {} model(s): cv {} {:.4}",
        weights.iter().filter(|w| **w > 0.0).count(),
        objective.name(),
        ens_cv
    )));

    // Refit every candidate on the whole training part (the leaderboard's test column needs
    // them all; the artifact keeps the ensemble's members).
    let sets = par_map(2, opts.threads, |f| {
        fit_features(&train.frame, &cols, target_name, FAMILIES[f])
    })
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let test_x: Vec<Matrix> = sets
        .iter()
        .map(|(s, _)| crate::model::family_matrix(s, &test.frame))
        .collect::<Result<_, _>>()?;
    let loss = loss_of(&task);
    let refits = par_map(done.len(), opts.threads, |i| {
        let t = Instant::now();
        let fam = family_index(done[i].candidate.family());
        let (m, _) = fit_algo(&done[i].candidate.algo, &sets[fam].1, &train.y, loss, None);
        let p = m.predict(&test_x[fam]);
        (m, p, t.elapsed().as_secs_f64())
    });
    let mut members = Vec::new();
    let mut member_algos = Vec::new();
    let mut leaderboard = Vec::new();
    for ((e, w), (m, p, fit_s)) in done.iter().zip(&weights).zip(refits) {
        let test_score = objective.score(&task, &test.y, &p, e.threshold);
        leaderboard.push(Entry {
            name: e.candidate.name.clone(),
            family: e.candidate.family(),
            algo: e.candidate.algo.clone(),
            cv: e.cv,
            test: test_score,
            threshold: matches!(task, Task::Binary { .. }).then_some(e.threshold),
            cv_seconds: e.seconds,
            fit_seconds: fit_s,
            weight: *w,
        });
        if *w > 0.0 {
            member_algos.push(e.candidate.algo.clone());
            members.push(Member {
                candidate: e.candidate.name.clone(),
                features: family_index(e.candidate.family()),
                weight: *w,
                model: m,
            });
        }
    }
    let model = ModelArtifact {
        format: crate::model::FORMAT.to_owned(),
        name: String::new(),
        version: 0,
        target: opts.target.clone(),
        task: task.clone(),
        objective,
        threshold,
        seed: opts.seed,
        input,
        id_columns,
        recipe: user_recipe,
        features: sets.into_iter().map(|(s, _)| s).collect(),
        members,
        blend,
        lineage: Lineage {
            rows: frame.rows(),
            train_rows: train.y.len(),
            test_rows: test.y.len(),
            ..Lineage::default()
        },
        baseline: Some(baseline),
    };
    // The ensemble's test predictions through the artifact's own path, so a saved model
    // scoring the same rows reproduces them exactly.
    let test_values = model.predict_prepared(&test.frame)?.values;
    let report = report::build(
        &model,
        &report::Inputs {
            columns: &cols,
            folds: k,
            mode: opts.mode,
            leaderboard,
            cv_y: &cv.y,
            cv_values: &ens_oof,
            cv_folds: &cv.val_rows,
            test_frame: &test.frame,
            test_y: &test.y,
            test_values: &test_values,
            seconds: started.elapsed().as_secs_f64(),
        },
    )?;
    let mut model = model;
    if let Some(raw_all) = raw_all {
        let all = match &model.recipe {
            None => part(raw_all, &task, target_name)?,
            Some(fitted) => part(
                fitted
                    .transform(raw_all, Rows::Drop)
                    .map_err(|e| AutoMlError::Data(format!("recipe: {e}")))?,
                &task,
                target_name,
            )?,
        };
        on(Event::Info(format!(
            "refitting the ensemble's {} member(s) on all {} labelled rows",
            model.members.len(),
            all.y.len()
        )));
        refit_all(&mut model, &member_algos, &all, &cols, opts.threads)?;
    }
    Ok(Trained {
        model,
        report,
        test_frame: test.frame,
        test_y: test.y,
        test_values,
    })
}
