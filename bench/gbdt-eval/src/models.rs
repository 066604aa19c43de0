//! Model configurations under test.

#[allow(unused_imports)]
use crate::data::Dataset;
#[allow(unused_imports)]
use crate::eval::{Fitted, Spec};

#[allow(dead_code)]
fn col_major(x: &[f64], p: usize) -> Vec<f64> {
    let n = x.len() / p;
    let mut c = vec![0.0; x.len()];
    for i in 0..n {
        for j in 0..p {
            c[j * n + i] = x[i * p + j];
        }
    }
    c
}

#[allow(dead_code)]
fn bits_equal(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// perpetual: same API in 2.3.0 and 3.0.0-rc.2, so one macro serves both.
#[allow(unused_macros)]
macro_rules! perpetual_model {
    ($modname:ident, $krate:ident) => {
        pub mod $modname {
            use super::{bits_equal, col_major};
            use crate::eval::Fitted;
            use $krate::booster::config::BoosterIO;
            use $krate::objective::Objective;
            use $krate::{Matrix, PerpetualBooster};
            use std::collections::HashSet;

            pub struct M(pub PerpetualBooster);

            fn predict_with(b: &PerpetualBooster, x: &[f64], p: usize) -> Vec<f64> {
                let n = x.len() / p;
                let c = col_major(x, p);
                let m = Matrix::new(&c, n, p);
                b.predict_proba(&m, true, false)
            }

            impl Fitted for M {
                fn predict(&self, x: &[f64], p: usize) -> Vec<f64> {
                    predict_with(&self.0, x, p)
                }
                fn roundtrip(&self, x: &[f64], p: usize) -> (usize, bool) {
                    let s = self.0.json_dump().expect("json_dump");
                    let b2 = PerpetualBooster::from_json(&s).expect("from_json");
                    (s.len(), bits_equal(&self.predict(x, p), &predict_with(&b2, x, p)))
                }
            }

            pub fn fit(x: &[f64], y: &[f64], p: usize, seed: u64, budget: f32, cats: Option<&[usize]>) -> Box<dyn Fitted> {
                let n = y.len();
                let c = col_major(x, p);
                let m = Matrix::new(&c, n, p);
                let mut b = PerpetualBooster::default()
                    .set_objective(Objective::LogLoss)
                    .set_budget(budget)
                    .set_seed(seed);
                if let Some(cs) = cats {
                    b = b.set_categorical_features(Some(cs.iter().copied().collect::<HashSet<usize>>()));
                }
                b.fit(&m, y, None, None).expect("perpetual fit");
                Box::new(M(b))
            }
        }
    };
}

#[cfg(feature = "perp")]
perpetual_model!(perp2, perpetual);
#[cfg(feature = "perp3")]
perpetual_model!(perp3m, perpetual3);

#[cfg(feature = "lgbm")]
pub mod lgbm {
    use super::bits_equal;
    use crate::eval::Fitted;
    use crate::rng::stratified_split;
    use lightgbm3::{Booster, Dataset};
    use serde_json::{json, Value};

    pub struct M(pub Booster);

    impl Fitted for M {
        fn predict(&self, x: &[f64], p: usize) -> Vec<f64> {
            self.0.predict(x, p as i32, true).expect("lgbm predict")
        }
        fn roundtrip(&self, x: &[f64], p: usize) -> (usize, bool) {
            let s = self.0.save_string().expect("save_string");
            let b2 = Booster::from_string(&s).expect("from_string");
            (s.len(), bits_equal(&self.predict(x, p), &b2.predict(x, p as i32, true).unwrap()))
        }
    }

    fn f32s(y: &[f64]) -> Vec<f32> {
        y.iter().map(|&v| v as f32).collect()
    }

    /// LightGBM defaults (100 rounds, lr 0.1, 31 leaves) + objective/seed/quiet.
    pub fn fit_default(x: &[f64], y: &[f64], p: usize, seed: u64) -> Box<dyn Fitted> {
        let ds = Dataset::from_slice(x, &f32s(y), p as i32, true).expect("dataset");
        let params = json! {{"objective": "binary", "seed": seed, "verbose": -1}};
        Box::new(M(Booster::train(ds, &params).expect("train")))
    }

    pub fn small_params(seed: u64) -> Value {
        json! {{
            "objective": "binary", "seed": seed, "verbose": -1,
            "learning_rate": 0.05, "num_leaves": 15, "num_iterations": 300,
            "early_stopping_rounds": 30, "metric": "binary_logloss"
        }}
    }

    /// Validation fold for early stopping: stratified 15% of the *given* training rows.
    pub fn carve(x: &[f64], y: &[f64], p: usize, seed: u64) -> ((Vec<f64>, Vec<f64>), (Vec<f64>, Vec<f64>)) {
        let (a, b) = stratified_split(y, 0.15, seed.wrapping_add(1000));
        (crate::eval::sub(x, y, p, &a), crate::eval::sub(x, y, p, &b))
    }

    /// lr 0.05, 31->15 leaves, up to 300 rounds, early stopping (30) on a validation
    /// fold carved from the training rows only.
    pub fn fit_small(x: &[f64], y: &[f64], p: usize, seed: u64) -> Box<dyn Fitted> {
        let ((xa, ya), (xv, yv)) = carve(x, y, p, seed);
        let tr = Dataset::from_slice(&xa, &f32s(&ya), p as i32, true).expect("dataset");
        let va = Dataset::from_slice_with_reference(&xv, &f32s(&yv), p as i32, true, Some(&tr)).expect("valid");
        let b = Booster::train_with_valid(tr, Some(va), &small_params(seed)).expect("train");
        Box::new(M(b))
    }

    /// Native categorical features. lightgbm3 1.0.11 hard-codes the Dataset parameter
    /// string to "" (dataset.rs), so `categorical_feature` cannot be passed through the
    /// safe API; this trains through the raw lightgbm3-sys C API, then hands the model
    /// string to the safe `Booster::from_string` for prediction.
    pub fn fit_raw_cat(x: &[f64], y: &[f64], p: usize, seed: u64, cats: &[usize], small: bool) -> Box<dyn Fitted> {
        use lightgbm3_sys as s;
        use std::ffi::{c_void, CString};
        let cat_str = cats.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
        let ds_params = CString::new(format!("categorical_feature={cat_str} verbose=-1")).unwrap();
        let label = CString::new("label").unwrap();
        unsafe fn mk(x: &[f64], y: &[f32], p: usize, params: &CString, label: &CString, r: s::DatasetHandle) -> s::DatasetHandle {
            let mut h = std::ptr::null_mut();
            let n = y.len();
            assert_eq!(
                s::LGBM_DatasetCreateFromMat(x.as_ptr() as *const c_void, s::C_API_DTYPE_FLOAT64 as i32, n as i32, p as i32, 1, params.as_ptr(), r, &mut h),
                0
            );
            assert_eq!(s::LGBM_DatasetSetField(h, label.as_ptr(), y.as_ptr() as *const c_void, n as i32, s::C_API_DTYPE_FLOAT32 as i32), 0);
            h
        }
        let params: Value = if small {
            small_params(seed)
        } else {
            json! {{"objective": "binary", "seed": seed, "verbose": -1}}
        };
        let num_iter = params["num_iterations"].as_i64().unwrap_or(100);
        let es = params["early_stopping_rounds"].as_i64();
        let pstr = CString::new(
            params.as_object().unwrap().iter().filter(|(k, _)| *k != "early_stopping_rounds")
                .map(|(k, v)| format!("{}={}", k, v.to_string().trim_matches('"'))).collect::<Vec<_>>().join(" "),
        )
        .unwrap();
        unsafe {
            let (tr, va) = if small {
                let ((xa, ya), (xv, yv)) = carve(x, y, p, seed);
                let tr = mk(&xa, &f32s(&ya), p, &ds_params, &label, std::ptr::null_mut());
                let va = mk(&xv, &f32s(&yv), p, &ds_params, &label, tr);
                (tr, Some(va))
            } else {
                (mk(x, &f32s(y), p, &ds_params, &label, std::ptr::null_mut()), None)
            };
            let mut bh = std::ptr::null_mut();
            assert_eq!(s::LGBM_BoosterCreate(tr, pstr.as_ptr(), &mut bh), 0);
            if let Some(v) = va {
                assert_eq!(s::LGBM_BoosterAddValidData(bh, v), 0);
            }
            let (mut best, mut since) = (f64::INFINITY, 0i64);
            for it in 1..=num_iter {
                let mut fin = 0;
                assert_eq!(s::LGBM_BoosterUpdateOneIter(bh, &mut fin), 0);
                if fin != 0 {
                    break;
                }
                if let (Some(_), Some(es)) = (va, es) {
                    let mut out_len = 0;
                    let mut res = [0.0f64; 8];
                    assert_eq!(s::LGBM_BoosterGetEval(bh, 1, &mut out_len, res.as_mut_ptr()), 0);
                    if res[0] < best {
                        best = res[0];
                        since = 0;
                    } else {
                        since += 1;
                        if since >= es {
                            for _ in 0..since.min(it) {
                                assert_eq!(s::LGBM_BoosterRollbackOneIter(bh), 0);
                            }
                            break;
                        }
                    }
                }
            }
            let mut out_len: i64 = 0;
            let mut buf = vec![0u8; 4 << 20];
            assert_eq!(
                s::LGBM_BoosterSaveModelToString(bh, 0, -1, s::C_API_FEATURE_IMPORTANCE_SPLIT as i32, buf.len() as i64, &mut out_len, buf.as_mut_ptr() as *mut _),
                0
            );
            assert!((out_len as usize) <= buf.len(), "model string larger than buffer");
            let model = std::ffi::CStr::from_ptr(buf.as_ptr() as *const _).to_str().unwrap().to_string();
            s::LGBM_BoosterFree(bh);
            s::LGBM_DatasetFree(tr);
            if let Some(v) = va {
                s::LGBM_DatasetFree(v);
            }
            Box::new(M(Booster::from_string(&model).expect("from_string")))
        }
    }
}

pub fn all_specs(ds: &Dataset) -> Vec<Spec> {
    #[allow(unused_mut)]
    let mut v: Vec<Spec> = Vec::new();
    #[allow(unused_variables)]
    let cats = ds.categorical.clone();
    #[cfg(feature = "lgbm")]
    {
        v.push(Spec { name: "lightgbm3 defaults (ordinal)".into(), fit: Box::new(lgbm::fit_default) });
        v.push(Spec { name: "lightgbm3 small+ES (ordinal)".into(), fit: Box::new(lgbm::fit_small) });
        let c1 = cats.clone();
        v.push(Spec {
            name: "lightgbm3 defaults (native cat, raw FFI)".into(),
            fit: Box::new(move |x, y, p, s| lgbm::fit_raw_cat(x, y, p, s, &c1, false)),
        });
        let c2 = cats.clone();
        v.push(Spec {
            name: "lightgbm3 small+ES (native cat, raw FFI)".into(),
            fit: Box::new(move |x, y, p, s| lgbm::fit_raw_cat(x, y, p, s, &c2, true)),
        });
    }
    macro_rules! perp_specs {
        ($m:ident, $label:expr) => {
            for budget in [0.5f32, 1.0] {
                v.push(Spec {
                    name: format!("{} budget {budget:.1} (ordinal)", $label),
                    fit: Box::new(move |x, y, p, s| $m::fit(x, y, p, s, budget, None)),
                });
                let c = cats.clone();
                v.push(Spec {
                    name: format!("{} budget {budget:.1} (native cat)", $label),
                    fit: Box::new(move |x, y, p, s| $m::fit(x, y, p, s, budget, Some(&c))),
                });
            }
        };
    }
    #[cfg(feature = "perp")]
    perp_specs!(perp2, "perpetual 2.3.0");
    #[cfg(feature = "perp3")]
    perp_specs!(perp3m, "perpetual 3.0.0-rc.2");
    v
}
