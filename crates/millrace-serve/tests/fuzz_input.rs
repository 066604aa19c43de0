//! Fuzzing the endpoint's input side with proptest (bounded: `PROPTEST_CASES`, 256 by
//! default): arbitrary bytes as a JSON, JSON-lines or CSV body never panic, and records with
//! arbitrary values (numbers as text, `inf`, `1e999`, huge numbers, booleans, nulls, unknown
//! fields) always score to a finite probability, never NaN or null.

use std::sync::OnceLock;

use millrace_automl::train::{Options, train};
use millrace_serve::checks::InputChecks;
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
        // By default a record missing more than half the inputs is refused, naming it.
        match loaded.score(&parsed, None) {
            Ok(scored) => prop_assert_eq!(scored.len(), records.len()),
            Err(millrace_serve::error::ServeError::Invalid(m)) => prop_assert!(
                m.starts_with("record ") && m.contains("missing or unreadable"),
                "{}", m
            ),
            Err(e) => prop_assert!(false, "{}", e),
        }
        // Told to score whatever comes, every record gets a finite probability.
        let lenient = Loaded::new("fuzz", 1, loaded.model.clone()).checked(InputChecks {
            max_missing: 1.0,
            strict: false,
        });
        let scored = lenient.score(&parsed, None).unwrap();
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

/// Per-record warnings and refusals: a value that is not a number is read as missing and said
/// so, an unknown category and an extra column are named, a record missing most inputs is
/// refused naming the fields, and strict mode refuses any coercion.
#[test]
fn odd_inputs_get_warnings_and_mostly_missing_records_are_refused() {
    let loaded = model();
    let score = |l: &Loaded, body: &str| {
        let parsed = parse(BodyFormat::Json, body.as_bytes(), &l.columns).unwrap();
        l.score(&parsed, None)
    };
    let out = score(
        loaded,
        r#"{"tenure": "abc", "charges": "55.5", "contract": "Biennial", "color": "red"}"#,
    )
    .unwrap();
    let warnings: Vec<&str> = out[0]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("`tenure`: \"abc\" is not a number; read as missing")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("`contract`: \"Biennial\" is a category the model never saw")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("ignored: color")),
        "{warnings:?}"
    );
    let clean = score(
        loaded,
        r#"{"tenure": 5, "charges": "55.5", "contract": "Month"}"#,
    )
    .unwrap();
    assert!(clean[0].get("warnings").is_none(), "{}", clean[0]);
    // Two of three inputs gone: refused, naming them.
    let e = score(
        loaded,
        r#"[{"tenure": 5, "charges": "1", "contract": "Month"}, {"tenure": "abc"}]"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("record 1: 3 of the model's 3 inputs are missing or unreadable (charges, contract, tenure)"), "{e}");
    let strict = Loaded::new("fuzz", 1, loaded.model.clone()).checked(InputChecks {
        max_missing: 0.5,
        strict: true,
    });
    let e = score(
        &strict,
        r#"{"tenure": "abc", "charges": "55.5", "contract": "Month"}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("record 0: `tenure`: \"abc\" is not a number") && e.contains("strict"),
        "{e}"
    );
}
