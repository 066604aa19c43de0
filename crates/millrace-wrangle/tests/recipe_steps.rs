//! Every recipe step: fitted state and outputs checked against values computed here, by plain
//! code, and the batch path checked against the one-record path bit for bit (records arrive as
//! strings, the batch has typed columns).

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use millrace_wrangle::steps::{FittedStep, Rows};
use millrace_wrangle::{Column, FittedRecipe, Frame, Recipe};
use serde_json::{Map, Value, json};

const N: usize = 300;

struct Raw {
    id: String,
    tenure: Option<f64>,
    charges: Option<String>,
    contract: String,
    gender: String,
    churn: String,
}

fn raw() -> Vec<Raw> {
    (0..N)
        .map(|i| {
            let contract = match i % 10 {
                0..=4 => "Month-to-month".to_string(),
                5..=7 => "One year".to_string(),
                8 => "Two year".to_string(),
                _ => format!("rare{}", i % 7),
            };
            Raw {
                id: format!("C{i:04}"),
                tenure: (i % 17 != 3).then_some(((i * 7) % 73) as f64),
                charges: Some(if i % 29 == 5 {
                    " ".to_string()
                } else {
                    format!("{:.2}", 18.25 + ((i * 37) % 1000) as f64 / 10.0)
                }),
                contract,
                gender: if i % 3 == 0 {
                    " Male".into()
                } else {
                    "female ".into()
                },
                churn: if (i * 13) % 7 < 2 || i % 10 == 0 {
                    "Yes".into()
                } else {
                    "No".into()
                },
            }
        })
        .collect()
}

/// The training batch: typed tenure (Float64), everything else text as a CSV would give it.
fn batch(rows: &[Raw]) -> (Schema, RecordBatch) {
    let schema = Schema::new(vec![
        Field::new("customerID", DataType::Utf8, true),
        Field::new("tenure", DataType::Float64, true),
        Field::new("TotalCharges", DataType::Utf8, true),
        Field::new("Contract", DataType::Utf8, true),
        Field::new("gender", DataType::Utf8, true),
        Field::new("Churn", DataType::Utf8, true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.id.as_str()),
        )),
        Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.tenure))),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.charges.as_deref()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.contract.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.gender.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.churn.as_str()),
        )),
    ];
    let b = RecordBatch::try_new(Arc::new(schema.clone()), cols).unwrap();
    (schema, b)
}

/// The same row as a producer sends it: every value a string, a missing tenure left out.
fn record(r: &Raw) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("customerID".into(), json!(r.id));
    if let Some(t) = r.tenure {
        m.insert("tenure".into(), json!(format!("{t}")));
    }
    m.insert("TotalCharges".into(), json!(r.charges));
    m.insert("Contract".into(), json!(r.contract));
    m.insert("gender".into(), json!(r.gender));
    m.insert("Churn".into(), json!(r.churn));
    m
}

fn nums(f: &Frame, name: &str) -> Vec<f64> {
    match f.column(name) {
        Some(Column::Num(v)) => v.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

fn strs(f: &Frame, name: &str) -> Vec<Option<String>> {
    match f.column(name) {
        Some(Column::Str(v)) => v.clone(),
        other => panic!("{name}: {other:?}"),
    }
}

fn same_bits(a: &Column, b: &Column, row: usize) -> bool {
    match (a, b) {
        (Column::Num(x), Column::Num(y)) => x[row].to_bits() == y[0].to_bits(),
        (Column::Str(x), Column::Str(y)) => x[row] == y[0],
        _ => false,
    }
}

/// Fits `recipe` on the batch and checks that every row transformed alone, from its raw
/// record, gives the same values to the bit as the batch (both without row removal). Returns
/// the fitted recipe and the batch output.
fn fit_and_compare(recipe: &str) -> (FittedRecipe, Frame) {
    let rows = raw();
    let (schema, b) = batch(&rows);
    let recipe = Recipe::parse(recipe, "test recipe").unwrap();
    let frame = Frame::from_batches(&schema, &[b]).unwrap();
    let (fitted, _) = recipe.fit(frame.clone()).unwrap();
    let out = fitted.transform(frame, Rows::Keep).unwrap();
    assert_eq!(out.rows(), N);
    for (i, r) in rows.iter().enumerate() {
        let one = fitted.transform_record(&record(r)).unwrap();
        assert_eq!(one.names(), out.names());
        for ((name, a), (_, b)) in out.columns().zip(one.columns()) {
            assert!(
                same_bits(a, b, i),
                "row {i} column {name}: batch {a:?} vs record {b:?}",
                a = match a {
                    Column::Num(v) => format!("{:?}", v[i]),
                    Column::Str(v) => format!("{:?}", v[i]),
                }
            );
        }
    }
    // A saved and reloaded recipe transforms identically.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    fitted.save(&path).unwrap();
    let back = FittedRecipe::load(&path).unwrap();
    assert_eq!(back.to_json(), fitted.to_json());
    let (schema, b) = batch(&rows);
    let again = back
        .transform(Frame::from_batches(&schema, &[b]).unwrap(), Rows::Keep)
        .unwrap();
    for ((_, a), (_, b)) in out.columns().zip(again.columns()) {
        for i in 0..N {
            match (a, b) {
                (Column::Num(x), Column::Num(y)) => assert_eq!(x[i].to_bits(), y[i].to_bits()),
                (Column::Str(x), Column::Str(y)) => assert_eq!(x[i], y[i]),
                _ => panic!("kinds differ"),
            }
        }
    }
    (fitted, out)
}

fn charges(r: &Raw) -> f64 {
    r.charges
        .as_deref()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

/// numpy-style linear quantile, written independently of the crate's.
fn q(values: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let h = (v.len() - 1) as f64 * p;
    let (lo, frac) = (h.floor() as usize, h - h.floor());
    if lo + 1 < v.len() {
        v[lo] * (1.0 - frac) + v[lo + 1] * frac
    } else {
        v[lo]
    }
}

fn tenures() -> Vec<f64> {
    raw().iter().map(|r| r.tenure.unwrap_or(f64::NAN)).collect()
}

#[test]
fn drop_keep_rename() {
    let (_, out) = fit_and_compare(
        r#"target = "Churn"
[[step]]
op = "drop"
columns = ["customerID"]
[[step]]
op = "rename"
columns = { tenure = "months", gender = "sex" }
[[step]]
op = "keep"
columns = ["sex", "months"]
"#,
    );
    let names: Vec<&str> = out.names().iter().map(|n| &**n).collect();
    assert_eq!(names, ["sex", "months", "Churn"]);
    assert_eq!(nums(&out, "months")[1], 7.0);
}

#[test]
fn filter_drop_missing_and_dedupe_remove_rows_only_when_preparing_data() {
    let recipe = r#"
[[step]]
op = "cast"
columns = ["TotalCharges"]
to = "number"
[[step]]
op = "drop_missing"
[[step]]
op = "filter"
where = "tenure > 10 AND Contract <> 'Two year'"
[[step]]
op = "dedupe"
columns = ["tenure", "Contract"]
"#;
    let (fitted, keep) = fit_and_compare(recipe);
    assert_eq!(keep.rows(), N);
    let rows = raw();
    let (schema, b) = batch(&rows);
    let out = fitted
        .transform(Frame::from_batches(&schema, &[b]).unwrap(), Rows::Drop)
        .unwrap();
    // Independently: complete rows, the predicate, then first of each (tenure, Contract).
    let mut seen = std::collections::HashSet::new();
    let expected: Vec<&Raw> = rows
        .iter()
        .filter(|r| r.tenure.is_some() && !charges(r).is_nan())
        .filter(|r| r.tenure.unwrap() > 10.0 && r.contract != "Two year")
        .filter(|r| seen.insert((r.tenure.unwrap() as i64, r.contract.clone())))
        .collect();
    assert_eq!(out.rows(), expected.len());
    assert!(out.rows() > 50 && out.rows() < N);
    let ids = strs(&out, "customerID");
    for (got, want) in ids.iter().zip(&expected) {
        assert_eq!(got.as_deref(), Some(want.id.as_str()));
    }
    assert_eq!(fitted.rows_in, N);
    assert_eq!(fitted.rows_out, expected.len());
}

#[test]
fn cast_and_impute() {
    let (fitted, out) = fit_and_compare(
        r#"
[[step]]
op = "cast"
columns = ["TotalCharges"]
to = "number"
[[step]]
op = "derive"
name = "t2"
expr = "tenure"
[[step]]
op = "derive"
name = "t3"
expr = "tenure"
[[step]]
op = "impute"
columns = ["tenure"]
strategy = "mean"
[[step]]
op = "impute"
columns = ["TotalCharges"]
strategy = "median"
[[step]]
op = "impute"
columns = ["t2"]
strategy = "mode"
[[step]]
op = "impute"
columns = ["t3"]
strategy = "constant"
value = -1
"#,
    );
    let rows = raw();
    let t = tenures();
    let present: Vec<f64> = t.iter().copied().filter(|x| !x.is_nan()).collect();
    let mean = present.iter().sum::<f64>() / present.len() as f64;
    let c: Vec<f64> = rows.iter().map(charges).collect();
    let median = q(&c, 0.5);
    // Mode: most frequent tenure, smallest on ties.
    let mut freq = std::collections::BTreeMap::new();
    for x in &present {
        *freq.entry(*x as i64).or_insert(0) += 1;
    }
    let top = *freq.values().max().unwrap();
    let mode = *freq.iter().find(|(_, n)| **n == top).unwrap().0 as f64;
    let (tn, cn, t2, t3) = (
        nums(&out, "tenure"),
        nums(&out, "TotalCharges"),
        nums(&out, "t2"),
        nums(&out, "t3"),
    );
    for i in 0..N {
        let want_t = if t[i].is_nan() { mean } else { t[i] };
        assert!(close(tn[i], want_t), "row {i}");
        assert!(close(cn[i], if c[i].is_nan() { median } else { c[i] }));
        assert_eq!(t2[i], if t[i].is_nan() { mode } else { t[i] });
        assert_eq!(t3[i], if t[i].is_nan() { -1.0 } else { t[i] });
    }
    assert!(
        c.iter().filter(|x| x.is_nan()).count() >= 10,
        "blank charges exist"
    );
    assert!(matches!(&fitted.steps[0], FittedStep::Cast { .. }));
}

#[test]
fn one_hot_with_a_cap_and_an_other_bucket() {
    let (fitted, out) = fit_and_compare(
        r#"
[[step]]
op = "encode"
columns = ["Contract"]
method = "one_hot"
max_categories = 3
"#,
    );
    let FittedStep::OneHot { columns } = &fitted.steps[0] else {
        panic!()
    };
    assert_eq!(
        columns[0].categories,
        ["Month-to-month", "One year", "Two year"]
    );
    let rows = raw();
    for (name, cat) in [
        ("Contract_Month-to-month", Some("Month-to-month")),
        ("Contract_One year", Some("One year")),
        ("Contract_Two year", Some("Two year")),
        ("Contract_other", None),
    ] {
        let v = nums(&out, name);
        for (i, r) in rows.iter().enumerate() {
            let want = match cat {
                Some(c) => r.contract == c,
                None => r.contract.starts_with("rare"),
            };
            assert_eq!(v[i], if want { 1.0 } else { 0.0 }, "{name} row {i}");
        }
    }
    // Unknown category → other; missing → all zero.
    let mut rec = record(&rows[1]);
    rec.insert("Contract".into(), json!("Three year"));
    let one = fitted.transform_record(&rec).unwrap();
    assert_eq!(nums(&one, "Contract_other"), [1.0]);
    rec.remove("Contract");
    let one = fitted.transform_record(&rec).unwrap();
    for n in &columns[0].names {
        assert_eq!(nums(&one, n), [0.0]);
    }
}

#[test]
fn ordinal_and_frequency() {
    let (fitted, out) = fit_and_compare(
        r#"
[[step]]
op = "derive"
name = "c2"
expr = "Contract"
[[step]]
op = "encode"
columns = ["Contract"]
method = "ordinal"
categories = ["Month-to-month", "One year", "Two year"]
[[step]]
op = "encode"
columns = ["c2"]
method = "frequency"
"#,
    );
    let rows = raw();
    let (ord, freq) = (nums(&out, "Contract"), nums(&out, "c2"));
    for (i, r) in rows.iter().enumerate() {
        let want = match r.contract.as_str() {
            "Month-to-month" => 0.0,
            "One year" => 1.0,
            "Two year" => 2.0,
            _ => f64::NAN,
        };
        assert!(close(ord[i], want), "row {i}");
        let n = rows.iter().filter(|x| x.contract == r.contract).count();
        assert_eq!(freq[i], n as f64 / N as f64);
    }
    let mut rec = record(&rows[0]);
    rec.insert("c2".into(), json!("never seen"));
    rec.insert("Contract".into(), json!("never seen"));
    let one = fitted.transform_record(&rec).unwrap();
    assert!(nums(&one, "Contract")[0].is_nan());
    // c2 is derived from Contract, so the record's own c2 is ignored: unknown → 0.
    assert_eq!(nums(&one, "c2"), [0.0]);
}

#[test]
fn target_encoding_is_out_of_fold_for_training_rows() {
    let recipe = r#"target = "Churn"
[[step]]
op = "encode"
columns = ["Contract", "customerID"]
method = "target"
smoothing = 5
folds = 5
seed = 7
"#;
    let (fitted, out) = fit_and_compare(recipe);
    let rows = raw();
    let y: Vec<f64> = rows
        .iter()
        .map(|r| f64::from(u8::from(r.churn == "Yes")))
        .collect();
    let prior = y.iter().sum::<f64>() / N as f64;
    // Full-data means (what new data gets).
    for c in ["Month-to-month", "One year"] {
        let idx: Vec<usize> = (0..N).filter(|i| rows[*i].contract == c).collect();
        let sum: f64 = idx.iter().map(|i| y[*i]).sum();
        let want = (sum + prior * 5.0) / (idx.len() as f64 + 5.0);
        let got = nums(&out, "Contract")[idx[0]];
        assert!(close(got, want), "{c}: {got} vs {want}");
    }
    // An ID column: every category is seen once, so new data gets prior-shrunk values.
    let FittedStep::Lookup { columns } = &fitted.steps[0] else {
        panic!()
    };
    assert!(close(columns[1].unknown, prior));
    // Training rows: out-of-fold. For the ID column a row's own target must not leak: its
    // value is the prior of the other folds, identical for Yes and No rows of one fold.
    let recipe = Recipe::parse(recipe, "t").unwrap();
    let (schema, b) = batch(&rows);
    let (_, train) = recipe
        .fit(Frame::from_batches(&schema, &[b]).unwrap())
        .unwrap();
    let ids = nums(&train, "customerID");
    let folds = millrace_wrangle::steps::folds(N, 5, 7);
    for f in 0..5 {
        let rest: Vec<usize> = (0..N).filter(|i| folds[*i] != f).collect();
        let prior_f = rest.iter().map(|i| y[*i]).sum::<f64>() / rest.len() as f64;
        for i in (0..N).filter(|i| folds[*i] == f) {
            assert!(close(ids[i], prior_f), "row {i}: {} vs {prior_f}", ids[i]);
        }
    }
    // And the Contract value of a training row uses only other folds' rows.
    let cont = nums(&train, "Contract");
    let i = 10;
    let others: Vec<usize> = (0..N)
        .filter(|j| folds[*j] != folds[i] && rows[*j].contract == rows[i].contract)
        .collect();
    let rest: Vec<usize> = (0..N).filter(|j| folds[*j] != folds[i]).collect();
    let prior_f = rest.iter().map(|j| y[*j]).sum::<f64>() / rest.len() as f64;
    let want =
        (others.iter().map(|j| y[*j]).sum::<f64>() + prior_f * 5.0) / (others.len() as f64 + 5.0);
    assert!(close(cont[i], want), "{} vs {want}", cont[i]);
}

#[test]
fn scaling_log_power() {
    let (_, out) = fit_and_compare(
        r#"
[[step]]
op = "derive"
name = "mm"
expr = "tenure"
[[step]]
op = "derive"
name = "rb"
expr = "tenure"
[[step]]
op = "derive"
name = "lg"
expr = "tenure - 20"
[[step]]
op = "derive"
name = "pw"
expr = "tenure - 20"
[[step]]
op = "scale"
columns = ["tenure"]
method = "standard"
[[step]]
op = "scale"
columns = ["mm"]
method = "min_max"
[[step]]
op = "scale"
columns = ["rb"]
method = "robust"
[[step]]
op = "log"
columns = ["lg"]
[[step]]
op = "power"
columns = ["pw"]
exponent = 0.5
"#,
    );
    let t = tenures();
    let p: Vec<f64> = t.iter().copied().filter(|x| !x.is_nan()).collect();
    let mean = p.iter().sum::<f64>() / p.len() as f64;
    let sd = (p.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / p.len() as f64).sqrt();
    let (lo, hi) = (
        p.iter().cloned().fold(f64::INFINITY, f64::min),
        p.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    let (med, iqr) = (q(&t, 0.5), q(&t, 0.75) - q(&t, 0.25));
    let (s, mm, rb, lg, pw) = (
        nums(&out, "tenure"),
        nums(&out, "mm"),
        nums(&out, "rb"),
        nums(&out, "lg"),
        nums(&out, "pw"),
    );
    for i in 0..N {
        assert!(close(s[i], (t[i] - mean) / sd), "standard row {i}");
        assert!(close(mm[i], (t[i] - lo) / (hi - lo)));
        assert!(close(rb[i], (t[i] - med) / iqr));
        let x = t[i] - 20.0;
        let want_log = if x < 0.0 {
            -(1.0 - x).ln()
        } else {
            (1.0 + x).ln()
        };
        assert!(
            close(lg[i], want_log),
            "log row {i}: {} vs {want_log}",
            lg[i]
        );
        let want_pw = if x < 0.0 { -(-x).sqrt() } else { x.sqrt() };
        assert!(close(pw[i], want_pw));
    }
    assert!(s.iter().any(|x| x.is_nan()), "missing stays missing");
}

#[test]
fn clipping_and_binning() {
    let (fitted, out) = fit_and_compare(
        r#"
[[step]]
op = "cast"
columns = ["TotalCharges"]
to = "number"
[[step]]
op = "derive"
name = "z"
expr = "TotalCharges"
[[step]]
op = "derive"
name = "bw"
expr = "tenure"
[[step]]
op = "derive"
name = "bq"
expr = "tenure"
[[step]]
op = "clip"
columns = ["TotalCharges"]
method = "quantile"
lower = 0.05
upper = 0.9
[[step]]
op = "clip"
columns = ["z"]
method = "zscore"
z = 1.5
[[step]]
op = "bin"
columns = ["bw"]
method = "width"
bins = 4
[[step]]
op = "bin"
columns = ["bq"]
method = "quantile"
bins = 4
"#,
    );
    let rows = raw();
    let c: Vec<f64> = rows.iter().map(charges).collect();
    let (lo, hi) = (q(&c, 0.05), q(&c, 0.9));
    let p: Vec<f64> = c.iter().copied().filter(|x| !x.is_nan()).collect();
    let mean = p.iter().sum::<f64>() / p.len() as f64;
    let sd = (p.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / p.len() as f64).sqrt();
    let t = tenures();
    let (tlo, thi) = (0.0, 72.0);
    let (q1, q2, q3) = (q(&t, 0.25), q(&t, 0.5), q(&t, 0.75));
    let (cq, cz, bw, bq) = (
        nums(&out, "TotalCharges"),
        nums(&out, "z"),
        nums(&out, "bw"),
        nums(&out, "bq"),
    );
    for i in 0..N {
        assert!(
            close(
                cq[i],
                if c[i].is_nan() {
                    f64::NAN
                } else {
                    c[i].max(lo).min(hi)
                }
            ),
            "row {i}"
        );
        let zc = c[i].max(mean - 1.5 * sd).min(mean + 1.5 * sd);
        assert!(close(cz[i], if c[i].is_nan() { f64::NAN } else { zc }));
        if t[i].is_nan() {
            assert!(bw[i].is_nan() && bq[i].is_nan());
            continue;
        }
        let w = (thi - tlo) / 4.0;
        let want_w = [tlo + w, tlo + 2.0 * w, tlo + 3.0 * w]
            .iter()
            .filter(|e| **e <= t[i])
            .count();
        assert_eq!(bw[i], want_w as f64, "width bin row {i} t={}", t[i]);
        let want_q = [q1, q2, q3].iter().filter(|e| **e <= t[i]).count();
        assert_eq!(bq[i], want_q as f64);
    }
    assert!(matches!(&fitted.steps[6], FittedStep::Bin { columns } if columns[0].1.len() == 3));
}

/// B-spline N_{i,p}(x) by its recursive definition, written independently of the crate's
/// de Boor evaluation.
fn bspline(t: &[f64], i: usize, p: usize, x: f64) -> f64 {
    if p == 0 {
        return if t[i] <= x && x < t[i + 1] { 1.0 } else { 0.0 };
    }
    let a = (x - t[i]) / (t[i + p] - t[i]) * bspline(t, i, p - 1, x);
    let b = (t[i + p + 1] - x) / (t[i + p + 1] - t[i + 1]) * bspline(t, i + 1, p - 1, x);
    a + b
}

#[test]
fn splines_sit_beside_their_column() {
    let (fitted, out) = fit_and_compare(
        r#"
[[step]]
op = "spline"
columns = ["tenure"]
knots = 5
"#,
    );
    // Cubic on 5 quantile knots: 5 + 3 - 2 = 6 columns (the last function is left out),
    // right after tenure, which stays as it was.
    let names: Vec<String> = out.names().iter().map(|n| n.to_string()).collect();
    let at = names.iter().position(|n| n == "tenure").unwrap();
    let want: Vec<String> = (0..6).map(|j| format!("tenure_spline{j}")).collect();
    assert_eq!(&names[at + 1..at + 7], &want[..]);
    let t = tenures();
    assert_eq!(nums(&out, "tenure").len(), t.len());
    let base: Vec<f64> = (0..5).map(|i| q(&t, i as f64 / 4.0)).collect();
    let (d0, d1) = (base[1] - base[0], base[4] - base[3]);
    let mut knots: Vec<f64> = (0..3).map(|i| base[0] - (3 - i) as f64 * d0).collect();
    knots.extend(&base);
    knots.extend((1..=3).map(|i| base[4] + i as f64 * d1));
    assert!(
        matches!(&fitted.steps[0], FittedStep::Spline { columns } if columns[0].knots.iter().zip(&knots).all(|(a, b)| close(*a, *b)))
    );
    let cols: Vec<Vec<f64>> = want.iter().map(|n| nums(&out, n)).collect();
    for (i, x) in t.iter().enumerate() {
        for (j, col) in cols.iter().enumerate() {
            if x.is_nan() {
                assert!(
                    col[i].is_nan(),
                    "row {i}: missing tenure, spline{j} {}",
                    col[i]
                );
                continue;
            }
            // The top of the range belongs to the last piece; the basis is continuous there.
            let at = x.min(base[4] - 1e-9);
            let want = bspline(&knots, j, 3, at);
            assert!(
                (col[i] - want).abs() < 1e-6,
                "row {i} tenure {x} spline{j}: {} against {want}",
                col[i]
            );
        }
    }
    // A value past the training range takes the edge's values; a constant column gets none.
    let f = fitted
        .transform_record(&serde_json::from_value(json!({"tenure": 500})).unwrap())
        .unwrap();
    let edge = fitted
        .transform_record(&serde_json::from_value(json!({"tenure": base[4]})).unwrap())
        .unwrap();
    for n in &want {
        assert_eq!(nums(&f, n), nums(&edge, n), "{n}");
    }
    let recipe =
        Recipe::parse("[[step]]\nop = \"spline\"\ncolumns = [\"k\"]\n", "constant").unwrap();
    let frame = Frame::from_batches(
        &Schema::new(vec![Field::new("k", DataType::Float64, true)]),
        &[RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("k", DataType::Float64, true)])),
            vec![Arc::new(Float64Array::from(vec![3.0; 20])) as ArrayRef],
        )
        .unwrap()],
    )
    .unwrap();
    let (_, constant) = recipe.fit(frame).unwrap();
    assert_eq!(constant.names().len(), 1);
    // Bad settings name the key.
    let err = Recipe::parse(
        "[[step]]\nop = \"spline\"\ncolumns = [\"k\"]\nknots = 1\n",
        "r",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("knots"), "{err}");
}

#[test]
fn derive_and_text() {
    let (_, out) = fit_and_compare(
        r#"
[[step]]
op = "text"
columns = ["gender"]
lower = true
[[step]]
op = "derive"
name = "tenure_years"
expr = "round(tenure / 12, 2)"
[[step]]
op = "derive"
name = "stage"
expr = "CASE WHEN tenure IS NULL THEN 'unknown' WHEN tenure < 12 THEN 'new' ELSE 'settled' END"
"#,
    );
    let rows = raw();
    let (g, y, st) = (
        strs(&out, "gender"),
        nums(&out, "tenure_years"),
        strs(&out, "stage"),
    );
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            g[i].as_deref(),
            Some(r.gender.trim().to_lowercase().as_str())
        );
        match r.tenure {
            Some(t) => {
                assert!(close(y[i], (t / 12.0 * 100.0).round() / 100.0));
                assert_eq!(
                    st[i].as_deref(),
                    Some(if t < 12.0 { "new" } else { "settled" })
                );
            }
            None => {
                assert!(y[i].is_nan());
                assert_eq!(st[i].as_deref(), Some("unknown"));
            }
        }
    }
}

#[test]
fn fit_errors_name_the_step_and_the_column() {
    let rows = raw();
    let (schema, b) = batch(&rows);
    let frame = Frame::from_batches(&schema, &[b]).unwrap();
    let fit_err = |text: &str| {
        Recipe::parse(text, "r")
            .unwrap()
            .fit(frame.clone())
            .unwrap_err()
            .to_string()
    };
    let e = fit_err(
        "[[step]]\nop = \"drop\"\ncolumns = [\"customerID\"]\n[[step]]\nop = \"scale\"\ncolumns = [\"tenur\"]\n",
    );
    assert!(
        e.starts_with("step 2 (scale): column `tenur` not found"),
        "{e}"
    );
    let e = fit_err("[[step]]\nop = \"scale\"\ncolumns = [\"TotalCharges\"]\n");
    assert!(
        e.contains("step 1 (scale): column `TotalCharges` holds text"),
        "{e}"
    );
    let e = fit_err("[[step]]\nop = \"encode\"\ncolumns = [\"Contract\"]\nmethod = \"target\"\n");
    assert!(e.contains("needs the recipe's `target`"), "{e}");
    let e = fit_err("target = \"nope\"\n");
    assert!(e.contains("target column `nope` not found"), "{e}");
}
