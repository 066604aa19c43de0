//! The histogram trees on synthetic data: boosting and both forest kinds must learn separable,
//! interaction (XOR), regression, multiclass and missing-value signals; the validation curve
//! must support picking a round count; fits must be deterministic and survive JSON; degenerate
//! inputs must not panic. One ignored test times a Telco-size fit.

use millrace_automl::linear::{self, Linear, Loss, Matrix};
use millrace_automl::metrics;
use millrace_automl::rng::Rng;
use millrace_automl::trees::{Forest, ForestParams, Gbdt, GbdtParams};

fn normal(rng: &mut Rng) -> f64 {
    // Box-Muller.
    let (u, v) = (rng.unit().max(1e-12), rng.unit());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// `n` rows of `cols` features from `row`, which fills the features and returns the target.
fn make(
    n: usize,
    cols: usize,
    rng: &mut Rng,
    mut row: impl FnMut(&mut Rng, &mut [f64]) -> f64,
) -> (Matrix, Vec<f64>) {
    let mut data = vec![0.0; n * cols];
    let mut y = Vec::with_capacity(n);
    for r in data.chunks_exact_mut(cols.max(1)).take(n) {
        y.push(row(rng, r));
    }
    (Matrix::new(n, cols, data), y)
}

fn gbdt(rounds: usize) -> GbdtParams {
    GbdtParams {
        rounds,
        learning_rate: 0.1,
        ..GbdtParams::default()
    }
}

fn extra(trees: usize) -> ForestParams {
    ForestParams {
        trees,
        ..ForestParams::default()
    }
}

fn random_forest(trees: usize) -> ForestParams {
    ForestParams {
        trees,
        extra: false,
        bootstrap: true,
        min_leaf: 1,
        ..ForestParams::default()
    }
}

fn labels(y: &[f64]) -> Vec<bool> {
    y.iter().map(|v| *v == 1.0).collect()
}

fn accuracy(y: &[f64], p: &[f64]) -> f64 {
    metrics::Confusion::of(&labels(y), &metrics::at(p, 0.5)).accuracy()
}

fn argmax_rows(p: &[f64], k: usize) -> Vec<usize> {
    p.chunks_exact(k)
        .map(|r| (0..k).max_by(|a, b| r[*a].total_cmp(&r[*b])).unwrap())
        .collect()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Two Gaussian blobs apart on two features, plus four noise features.
fn blobs(n: usize, rng: &mut Rng) -> (Matrix, Vec<f64>) {
    make(n, 6, rng, |rng, r| {
        let c = (rng.below(2)) as f64;
        for v in r.iter_mut() {
            *v = normal(rng);
        }
        r[0] += 4.0 * c;
        r[3] -= 4.0 * c;
        c
    })
}

#[test]
fn separable_binary_data_is_learned_by_every_family() {
    let mut rng = Rng::new(1);
    let (x, y) = blobs(2000, &mut rng);
    let (tx, ty) = blobs(1000, &mut rng);
    let (g, _) = Gbdt::fit(&x, &y, Loss::Logistic, &gbdt(100), None);
    let acc = accuracy(&ty, &g.predict(&tx));
    println!("gbdt accuracy {acc}");
    assert!(acc >= 0.97, "gbdt accuracy {acc}");
    let imp = g.importance();
    assert_eq!(imp.len(), 6);
    assert!(
        imp[0] + imp[3] > 10.0 * (imp[1] + imp[2] + imp[4] + imp[5]),
        "{imp:?}"
    );
    for (name, p) in [("extra", extra(100)), ("rf", random_forest(100))] {
        let f = Forest::fit(&x, &y, Loss::Logistic, &p);
        let acc = accuracy(&ty, &f.predict(&tx));
        println!("{name} accuracy {acc}");
        assert!(acc >= 0.97, "{name} accuracy {acc}");
        let imp = f.importance();
        assert!(
            imp[0] + imp[3] > imp[1] + imp[2] + imp[4] + imp[5],
            "{name} {imp:?}"
        );
    }
}

/// y = (x0 > 0) xor (x1 > 0), with three noise features.
fn xor(n: usize, rng: &mut Rng) -> (Matrix, Vec<f64>) {
    make(n, 5, rng, |rng, r| {
        for v in r.iter_mut() {
            *v = rng.unit() * 2.0 - 1.0;
        }
        ((r[0] > 0.0) != (r[1] > 0.0)) as u8 as f64
    })
}

#[test]
fn xor_interaction_is_learned_where_a_linear_model_fails() {
    let mut rng = Rng::new(2);
    let (x, y) = xor(2000, &mut rng);
    let (tx, ty) = xor(1000, &mut rng);
    let yb = labels(&ty);
    let lin = Linear::fit(&x, &y, Loss::Logistic, &linear::Params::default());
    let auc = metrics::auc(&yb, &lin.predict(&tx));
    println!("linear AUC {auc}");
    assert!(auc < 0.6, "linear AUC {auc}");
    let (g, _) = Gbdt::fit(&x, &y, Loss::Logistic, &gbdt(200), None);
    let auc = metrics::auc(&yb, &g.predict(&tx));
    println!("gbdt AUC {auc}");
    assert!(auc >= 0.95, "gbdt AUC {auc}");
    for (name, p) in [("extra", extra(100)), ("rf", random_forest(100))] {
        let f = Forest::fit(&x, &y, Loss::Logistic, &p);
        let auc = metrics::auc(&yb, &f.predict(&tx));
        println!("{name} AUC {auc}");
        assert!(auc >= 0.95, "{name} AUC {auc}");
    }
}

/// y = sin(x0) + 0.5·x1 + small noise, with two noise features.
fn wave(n: usize, rng: &mut Rng) -> (Matrix, Vec<f64>) {
    make(n, 4, rng, |rng, r| {
        r[0] = rng.unit() * 6.0 - 3.0;
        r[1] = normal(rng);
        r[2] = normal(rng);
        r[3] = rng.unit();
        r[0].sin() + 0.5 * r[1] + 0.05 * normal(rng)
    })
}

#[test]
fn regression_fits_a_smooth_nonlinear_target() {
    let mut rng = Rng::new(3);
    let (x, y) = wave(2000, &mut rng);
    let (tx, ty) = wave(1000, &mut rng);
    let (g, _) = Gbdt::fit(&x, &y, Loss::Squared, &gbdt(300), None);
    let r2 = metrics::r2(&ty, &g.predict(&tx));
    println!("gbdt R² {r2}");
    assert!(r2 >= 0.9, "gbdt R² {r2}");
    for (name, p) in [("extra", extra(100)), ("rf", random_forest(100))] {
        let f = Forest::fit(&x, &y, Loss::Squared, &p);
        let r2 = metrics::r2(&ty, &f.predict(&tx));
        println!("{name} R² {r2}");
        assert!(r2 >= 0.8, "{name} R² {r2}");
    }
}

/// Three Gaussian blobs in the plane, plus one noise feature.
fn three_blobs(n: usize, rng: &mut Rng) -> (Matrix, Vec<f64>) {
    make(n, 3, rng, |rng, r| {
        let c = rng.below(3);
        let (cx, cy) = [(0.0, 0.0), (4.0, 0.0), (0.0, 4.0)][c];
        r[0] = cx + normal(rng);
        r[1] = cy + normal(rng);
        r[2] = normal(rng);
        c as f64
    })
}

#[test]
fn multiclass_blobs_are_separated_and_probabilities_sum_to_one() {
    let mut rng = Rng::new(4);
    let (x, y) = three_blobs(1500, &mut rng);
    let (tx, ty) = three_blobs(900, &mut rng);
    let class: Vec<usize> = ty.iter().map(|v| *v as usize).collect();
    let loss = Loss::Softmax { classes: 3 };
    let (g, _) = Gbdt::fit(&x, &y, loss, &gbdt(100), None);
    assert_eq!(g.rounds(), 100);
    let pg = g.predict(&tx);
    let pe = Forest::fit(&x, &y, loss, &extra(100)).predict(&tx);
    let pr = Forest::fit(&x, &y, loss, &random_forest(100)).predict(&tx);
    for (name, p) in [("gbdt", pg), ("extra", pe), ("rf", pr)] {
        assert_eq!(p.len(), 900 * 3);
        let acc = metrics::accuracy_multi(&class, &argmax_rows(&p, 3));
        println!("{name} accuracy {acc}");
        assert!(acc >= 0.9, "{name} accuracy {acc}");
        for row in p.chunks_exact(3) {
            assert!(
                (row.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                "{name} {row:?}"
            );
            assert!(row.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
}

/// y = 1 exactly when x0 is missing; x0's present values carry nothing.
fn missing_signal(n: usize, rng: &mut Rng) -> (Matrix, Vec<f64>) {
    make(n, 3, rng, |rng, r| {
        let c = rng.below(2) as f64;
        r[0] = if c == 1.0 { f64::NAN } else { normal(rng) };
        r[1] = normal(rng);
        r[2] = normal(rng);
        c
    })
}

#[test]
fn missingness_itself_is_learned() {
    let mut rng = Rng::new(5);
    let (x, y) = missing_signal(1000, &mut rng);
    let (tx, ty) = missing_signal(500, &mut rng);
    let yb = labels(&ty);
    let (g, _) = Gbdt::fit(&x, &y, Loss::Logistic, &gbdt(50), None);
    let auc = metrics::auc(&yb, &g.predict(&tx));
    println!("gbdt AUC {auc}");
    assert!(auc >= 0.95, "gbdt AUC {auc}");
    for (name, p) in [("extra", extra(50)), ("rf", random_forest(50))] {
        let auc = metrics::auc(&yb, &Forest::fit(&x, &y, Loss::Logistic, &p).predict(&tx));
        println!("{name} AUC {auc}");
        assert!(auc >= 0.95, "{name} AUC {auc}");
    }
}

/// A weak signal under heavy label noise, so big trees overfit after a while.
fn noisy(n: usize, rng: &mut Rng) -> (Matrix, Vec<f64>) {
    make(n, 6, rng, |rng, r| {
        for v in r.iter_mut() {
            *v = normal(rng);
        }
        let p = 1.0 / (1.0 + (-r[0]).exp());
        (rng.unit() < p) as u8 as f64
    })
}

#[test]
fn validation_curve_turns_up_and_truncation_equals_a_shorter_fit() {
    let mut rng = Rng::new(6);
    let (x, y) = noisy(600, &mut rng);
    let (vx, vy) = noisy(600, &mut rng);
    let p = GbdtParams {
        rounds: 150,
        learning_rate: 0.2,
        max_leaves: 31,
        max_depth: 0,
        min_leaf: 3,
        ..GbdtParams::default()
    };
    let (mut m, curve) = Gbdt::fit(&x, &y, Loss::Logistic, &p, Some((&vx, &vy)));
    assert_eq!(curve.len(), 150);
    assert_eq!(m.rounds(), 150);
    let best = (0..curve.len())
        .min_by(|a, b| curve[*a].total_cmp(&curve[*b]))
        .unwrap();
    println!(
        "best round {best}: {:.4} {:.4} {:.4}",
        curve[0], curve[best], curve[149]
    );
    assert!(best < 100, "best round {best} of {curve:?}");
    assert!(
        curve[0] > curve[best] && curve[149] > curve[best] + 0.05,
        "{curve:?}"
    );
    // The curve is the loss of the model's own predictions.
    let pv = m.predict(&vx);
    let ll = metrics::log_loss(&labels(&vy), &pv);
    assert!((ll - curve[149]).abs() < 1e-9, "{ll} vs {}", curve[149]);

    let k = best + 1;
    m.truncate(k);
    assert_eq!(m.rounds(), k);
    let fresh = Gbdt::fit(&x, &y, Loss::Logistic, &GbdtParams { rounds: k, ..p }, None).0;
    assert_eq!(bits(&m.predict(&vx)), bits(&fresh.predict(&vx)));
    assert_eq!(m, fresh);

    // Softmax truncation too (several trees per round).
    let (bx, by) = three_blobs(300, &mut rng);
    let loss = Loss::Softmax { classes: 3 };
    let (mut a, curve) = Gbdt::fit(&bx, &by, loss, &gbdt(40), Some((&bx, &by)));
    assert_eq!(curve.len(), 40);
    assert!(curve[39] < curve[0]);
    a.truncate(17);
    let b = Gbdt::fit(&bx, &by, loss, &gbdt(17), None).0;
    assert_eq!(bits(&a.predict(&bx)), bits(&b.predict(&bx)));
}

#[test]
fn fits_are_deterministic_and_survive_json() {
    let mut rng = Rng::new(7);
    let (mut x, y) = noisy(800, &mut rng);
    // Missing and infinite values must round-trip too.
    for i in (0..800).step_by(7) {
        x.data[i * 6 + 1] = f64::NAN;
    }
    x.data[5 * 6 + 2] = f64::INFINITY;
    x.data[9 * 6 + 2] = f64::NEG_INFINITY;
    let (tx, _) = noisy(300, &mut rng);
    let p = gbdt(60);
    let a = Gbdt::fit(&x, &y, Loss::Logistic, &p, None).0;
    let b = Gbdt::fit(&x, &y, Loss::Logistic, &p, None).0;
    assert_eq!(a, b);
    let pa = a.predict(&tx);
    assert_eq!(bits(&pa), bits(&b.predict(&tx)));
    let c = Gbdt::fit(&x, &y, Loss::Logistic, &GbdtParams { seed: 9, ..p }, None).0;
    assert_ne!(bits(&pa), bits(&c.predict(&tx)), "the seed must matter");
    let json = serde_json::to_string(&a).unwrap();
    let back: Gbdt = serde_json::from_str(&json).unwrap();
    assert_eq!(back, a);
    assert_eq!(bits(&back.predict(&tx)), bits(&pa));

    for fp in [extra(30), random_forest(30)] {
        let f = Forest::fit(&x, &y, Loss::Logistic, &fp);
        let g = Forest::fit(&x, &y, Loss::Logistic, &fp);
        assert_eq!(f, g);
        let pf = f.predict(&tx);
        let other = Forest::fit(&x, &y, Loss::Logistic, &ForestParams { seed: 3, ..fp });
        assert_ne!(bits(&pf), bits(&other.predict(&tx)), "the seed must matter");
        let back: Forest = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        assert_eq!(bits(&back.predict(&tx)), bits(&pf));
    }
    // Params round-trip as well (they are stored with candidates).
    let back: GbdtParams = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
}

#[test]
fn degenerate_inputs_do_not_panic() {
    let losses = [
        Loss::Logistic,
        Loss::Squared,
        Loss::Softmax { classes: 3 },
        Loss::Softmax { classes: 1 },
        Loss::Softmax { classes: 0 },
    ];
    let g = gbdt(5);
    let fp = extra(5);
    let rf = random_forest(5);
    let probe = Matrix::new(
        3,
        2,
        vec![0.0, 1.0, f64::NAN, f64::NAN, f64::INFINITY, -1e300],
    );
    let check = |loss: Loss, x: &Matrix, y: &[f64]| {
        let k = match loss {
            Loss::Softmax { classes } => classes,
            _ => 1,
        };
        let (m, curve) = Gbdt::fit(x, y, loss, &g, Some((x, y)));
        let p = m.predict(&probe);
        assert_eq!(p.len(), 3 * k, "{loss:?}");
        assert!(p.iter().all(|v| v.is_finite()), "{loss:?} {p:?}");
        assert!(curve.len() == m.rounds());
        let _ = m.importance();
        // Fewer columns than trained on: the absent ones count as missing.
        let narrow = Matrix::new(2, 1, vec![1.0, f64::NAN]);
        assert_eq!(m.predict(&narrow).len(), 2 * k);
        for params in [&fp, &rf] {
            let f = Forest::fit(x, y, loss, params);
            let p = f.predict(&probe);
            assert_eq!(p.len(), 3 * k, "{loss:?}");
            assert!(p.iter().all(|v| v.is_finite()), "{loss:?} {p:?}");
            assert_eq!(f.predict(&narrow).len(), 2 * k);
            let _ = f.importance();
        }
    };
    for loss in losses {
        // No rows: the prior.
        let empty = Matrix::new(0, 2, Vec::new());
        check(loss, &empty, &[]);
        let (m, curve) = Gbdt::fit(&empty, &[], loss, &g, None);
        assert_eq!((m.rounds(), curve.len()), (0, 0));
        if loss == Loss::Logistic {
            assert_eq!(m.predict(&probe), vec![0.5; 3]);
            let f = Forest::fit(&empty, &[], loss, &fp);
            assert_eq!(f.predict(&probe), vec![0.5; 3]);
        }
        // One row.
        check(loss, &Matrix::new(1, 2, vec![1.0, 2.0]), &[0.0]);
        // Constant target, an all-missing column, a constant column, infinities.
        let n = 50;
        let mut data = Vec::new();
        for i in 0..n {
            let v = match i % 10 {
                0 => f64::INFINITY,
                1 => f64::NEG_INFINITY,
                _ => i as f64,
            };
            data.extend([f64::NAN, 7.0, v]);
        }
        let x = Matrix::new(n, 3, data);
        check(loss, &x, &vec![0.0; n]);
        // Mixed target on the same awkward matrix.
        let y: Vec<f64> = (0..n).map(|i| (i % 2) as f64).collect();
        check(loss, &x, &y);
        // No columns at all.
        check(loss, &Matrix::new(4, 0, Vec::new()), &[0.0, 1.0, 0.0, 1.0]);
    }
    // A constant target is predicted as such.
    let x = Matrix::new(30, 1, (0..30).map(|i| i as f64).collect());
    let (m, _) = Gbdt::fit(&x, &[1.0; 30], Loss::Logistic, &gbdt(50), None);
    assert!(m.predict(&x).iter().all(|p| *p > 0.99));
    let f = Forest::fit(&x, &[2.5; 30], Loss::Squared, &fp);
    assert!(f.predict(&x).iter().all(|p| *p == 2.5));
    // Zero rounds / trees: the prior.
    let (m, _) = Gbdt::fit(&x, &[1.0; 30], Loss::Squared, &gbdt(0), None);
    assert_eq!(m.predict(&x), vec![1.0; 30]);
}

/// Roughly the Telco shape: 5,600 rows, 45 features (mostly 0/1 indicators, a few numbers with
/// many values, one with gaps), binary target.
fn telco_like(rng: &mut Rng) -> (Matrix, Vec<f64>) {
    make(5600, 45, rng, |rng, r| {
        for v in r[..40].iter_mut() {
            *v = (rng.unit() < 0.3) as u8 as f64;
        }
        r[40] = (rng.unit() * 72.0).round();
        r[41] = 20.0 + rng.unit() * 100.0;
        r[42] = if rng.unit() < 0.01 {
            f64::NAN
        } else {
            r[40] * r[41]
        };
        r[43] = normal(rng);
        r[44] = rng.below(4) as f64;
        let z = -1.0 + 1.5 * r[0] - r[1] + 0.8 * r[2] * r[3] - r[40] / 30.0 + r[41] / 80.0;
        (rng.unit() < 1.0 / (1.0 + (-z).exp())) as u8 as f64
    })
}

/// The public Telco file, one-hot encoded by hand (numbers stay numbers, blanks are missing).
fn telco() -> Option<(Matrix, Vec<f64>)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/telco-customer-churn.csv"
    );
    let mut r = csv::Reader::from_path(path).ok()?;
    let header: Vec<String> = r.headers().ok()?.iter().map(str::to_owned).collect();
    let rows: Vec<Vec<String>> = r
        .records()
        .map(|rec| rec.map(|rec| rec.iter().map(str::to_owned).collect()))
        .collect::<Result<_, _>>()
        .ok()?;
    let target = header.iter().position(|h| h == "Churn")?;
    let mut cols: Vec<Vec<f64>> = Vec::new();
    for (j, h) in header.iter().enumerate() {
        if j == target || h == "customerID" {
            continue;
        }
        let numeric = rows
            .iter()
            .all(|r| r[j].trim().is_empty() || r[j].trim().parse::<f64>().is_ok());
        if numeric {
            cols.push(
                rows.iter()
                    .map(|r| r[j].trim().parse().unwrap_or(f64::NAN))
                    .collect(),
            );
        } else {
            let mut levels: Vec<&str> = rows.iter().map(|r| r[j].as_str()).collect();
            levels.sort_unstable();
            levels.dedup();
            for l in levels {
                cols.push(rows.iter().map(|r| (r[j] == l) as u8 as f64).collect());
            }
        }
    }
    let n = rows.len();
    let mut data = Vec::with_capacity(n * cols.len());
    for i in 0..n {
        data.extend(cols.iter().map(|c| c[i]));
    }
    let y = rows
        .iter()
        .map(|r| (r[target] == "Yes") as u8 as f64)
        .collect();
    Some((Matrix::new(n, cols.len(), data), y))
}

#[test]
#[ignore = "timing; run with --release -- --ignored --nocapture"]
fn time_telco_size_fits() {
    use std::time::Instant;
    let mut rng = Rng::new(8);
    let (x, y) = telco_like(&mut rng);
    let p = GbdtParams {
        rounds: 300,
        ..GbdtParams::default()
    };
    for _ in 0..2 {
        let t = Instant::now();
        let (m, _) = Gbdt::fit(&x, &y, Loss::Logistic, &p, None);
        println!(
            "gbdt synthetic 5600x45, 300 rounds: {:.3} s",
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let _ = m.predict(&x);
        println!("  predict 5600 rows: {:.3} s", t.elapsed().as_secs_f64());
    }
    for (name, fp) in [("extra", extra(300)), ("rf", random_forest(300))] {
        let t = Instant::now();
        let _ = Forest::fit(&x, &y, Loss::Logistic, &fp);
        println!(
            "{name} synthetic 5600x45, 300 trees: {:.3} s",
            t.elapsed().as_secs_f64()
        );
    }

    let Some((x, y)) = telco() else {
        println!("telco file not found; skipped");
        return;
    };
    // 60% train, 20% validation (to pick the round count), 20% test.
    let mut idx: Vec<usize> = (0..x.rows).collect();
    Rng::new(42).shuffle(&mut idx);
    let (a, b) = (x.rows * 6 / 10, x.rows * 8 / 10);
    let part = |s: &[usize]| (x.take(s), s.iter().map(|i| y[*i]).collect::<Vec<f64>>());
    let ((trx, tr_y), (vx, vy), (tx, ty)) = (part(&idx[..a]), part(&idx[a..b]), part(&idx[b..]));
    let p = GbdtParams {
        rounds: 1000,
        ..GbdtParams::default()
    };
    let t = Instant::now();
    let (mut m, curve) = Gbdt::fit(&trx, &tr_y, Loss::Logistic, &p, Some((&vx, &vy)));
    let took = t.elapsed().as_secs_f64();
    let best = (0..curve.len())
        .min_by(|i, j| curve[*i].total_cmp(&curve[*j]))
        .unwrap();
    m.truncate(best + 1);
    let auc = metrics::auc(&labels(&ty), &m.predict(&tx));
    println!(
        "telco {}x{}: 1000 rounds in {took:.3} s, best round {}, test AUC {auc:.4}",
        trx.rows,
        x.cols,
        best + 1
    );
    for (name, fp) in [("extra", extra(300)), ("rf", random_forest(300))] {
        let t = Instant::now();
        let f = Forest::fit(&trx, &tr_y, Loss::Logistic, &fp);
        let auc = metrics::auc(&labels(&ty), &f.predict(&tx));
        println!(
            "telco {name}: {:.3} s, test AUC {auc:.4}",
            t.elapsed().as_secs_f64()
        );
    }
}
