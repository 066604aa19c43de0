//! Fuzzing the endpoint's input side with proptest (bounded: `PROPTEST_CASES`, 256 by
//! default): arbitrary bytes as a JSON, JSON-lines or CSV body never panic, and records with
//! arbitrary values (numbers as text, `inf`, `1e999`, huge numbers, booleans, nulls, unknown
//! fields) always score to a finite probability, never NaN or null.

use std::sync::OnceLock;

use millrace_automl::train::{Options, train};
use millrace_serve::endpoint::Loaded;
use millrace_serve::input::{BodyFormat, parse};
use millrace_wrangle::frame::Name;
use millrace_wrangle::{Column, Frame};
use proptest::prelude::*;
use serde_json::{Map, Value};

const COLUMNS: [&str; 3] = ["tenure", "charges", "contract"];

/// A churn-like binary model on 400 synthetic rows, trained once (2 folds: seconds).
fn model() -> &'static Loaded {
    static MODEL: OnceLock<Loaded> = OnceLock::new();
    MODEL.get_or_init(|| {
        let n = 400;
        let tenure: Vec<f64> = (0..n).map(|i| (i % 72) as f64).collect();
        let charges: Vec<Option<String>> = (0..n)
            .map(|i| Some(format!("{:.2}", 20.0 + (i * 37 % 100) as f64)))
            .collect();
        let contract: Vec<Option<String>> = (0..n)
            .map(|i| Some(["Month", "One year", "Two year"][i % 3].to_owned()))
            .collect();
        let churn: Vec<Option<String>> = (0..n)
            .map(|i| {
                Some(
                    if (i % 72) < 20 && i % 3 == 0 {
                        "Yes"
                    } else {
                        "No"
                    }
                    .to_owned(),
                )
            })
            .collect();
        let mut f = Frame::new(n);
        f.set(Name::from("tenure"), Column::Num(tenure));
        f.set(Name::from("charges"), Column::Str(charges));
        f.set(Name::from("contract"), Column::Str(contract));
        f.set(Name::from("Churn"), Column::Str(churn));
        let opts = Options {
            folds: 2,
            ..Options::new("Churn")
        };
        let trained = train(&f, &opts, &|_| {}).expect("training the fuzz model");
        Loaded::new("fuzz", 1, trained.model)
    })
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        prop::sample::select(vec![
            "inf", "-inf", "Infinity", "NaN", "1e999", "-1e999", "", " ", "12", "One year",
            "Month",
        ])
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ]
}

fn record() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        prop_oneof![
            prop::sample::select(COLUMNS.to_vec()).prop_map(String::from),
            "[a-z]{1,6}",
        ],
        scalar(),
        0..5,
    )
    .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..600)) {
        let columns: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
        for format in [BodyFormat::Json, BodyFormat::JsonLines, BodyFormat::Csv] {
            let _ = parse(format, &body, &columns);
        }
    }

    #[test]
    fn every_record_scores_to_a_finite_probability(records in prop::collection::vec(record(), 1..8)) {
        let body = Value::Array(records.iter().cloned().map(Value::Object).collect()).to_string();
        let loaded = model();
        let parsed = parse(BodyFormat::Json, body.as_bytes(), &loaded.columns).unwrap();
        let scored = loaded.score(&parsed, None).unwrap();
        prop_assert_eq!(scored.len(), records.len());
        for (r, s) in records.iter().zip(&scored) {
            let p = s["probability"].as_f64();
            prop_assert!(
                p.is_some_and(|p| p.is_finite() && (0.0..=1.0).contains(&p)),
                "{:?} scored {}", r, s
            );
        }
    }
}

/// The streaming scorer's `explain`: each output record carries an explanation whose base and
/// contributions add up to the margin, the log-odds of the probability it carries.
#[test]
fn the_scorer_adds_explanations_that_add_up() {
    use millrace_automl::explain::Detail;
    let records: Vec<millrace_io::SourceRecord> = (0..5)
        .map(|i| millrace_io::SourceRecord {
            sequence: format!("{i}"),
            arrival_ms: 0,
            partition_key: "k".into(),
            data: bytes::Bytes::from(format!(
                r#"{{"tenure": {}, "charges": "55.5", "contract": "Month"}}"#,
                i * 10
            )),
        })
        .collect();
    let (outs, errs) =
        millrace_serve::score::score_records(model(), "s", "0", None, Some(Detail::All), &records);
    assert!(errs.is_empty());
    assert_eq!(outs.len(), 5);
    for o in outs {
        let v: Value = serde_json::from_slice(&o.data).unwrap();
        let e = &v["explanation"];
        let c = e["contributions"].as_object().unwrap();
        let mut names: Vec<&str> = c.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["charges", "contract", "tenure"]);
        let sum: f64 = c.values().map(|x| x.as_f64().unwrap()).sum();
        let margin = e["margin"].as_f64().unwrap();
        assert!((e["base_value"].as_f64().unwrap() + sum - margin).abs() < 1e-9);
        let p = v["probability"].as_f64().unwrap();
        assert!(
            (margin - (p / (1.0 - p)).ln()).abs() < 1e-6,
            "{margin} vs {p}"
        );
    }
}
