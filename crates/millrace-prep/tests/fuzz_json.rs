//! Fuzzing the JSON reader behind `query`, `prep` and the lake tables with proptest (bounded:
//! `PROPTEST_CASES`, 256 by default): arbitrary bytes never panic in any layout; Firehose's
//! concatenated objects (`{…}{…}`, strings full of braces, quotes and escapes) split back into
//! exactly the records that were written; and garbage between records never invents a row or
//! reorders the good ones.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use millrace_prep::format::JsonLayout;
use millrace_prep::json::decode;
use proptest::prelude::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]))
}

const LAYOUTS: [JsonLayout; 3] = [
    JsonLayout::Auto,
    JsonLayout::Lines,
    JsonLayout::Concatenated,
];

/// The ids of every decoded row, in order.
fn ids(bytes: &[u8], layout: JsonLayout) -> Vec<i64> {
    let decoded = decode("fuzz", bytes, layout, &schema(), 7).expect("decoding");
    decoded
        .batches
        .iter()
        .flat_map(|b| {
            let a = b.column(0).as_primitive::<Int64Type>();
            (0..a.len()).map(|i| a.value(i)).collect::<Vec<_>>()
        })
        .collect()
}

/// Strings a splitter can trip on.
fn tricky() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{0,20}", "[{}\\[\\]\"\\\\:, \n]{0,12}"]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..600)) {
        for layout in LAYOUTS {
            let _ = decode("fuzz", &body, layout, &schema(), 7);
        }
    }

    #[test]
    fn concatenated_records_split_back_exactly(
        strings in prop::collection::vec(tricky(), 1..40),
        separators in prop::collection::vec(prop::sample::select(vec!["", "", "\n", " ", "\r\n"]), 40),
    ) {
        let mut body = Vec::new();
        for (i, s) in strings.iter().enumerate() {
            body.extend_from_slice(serde_json::json!({"id": i, "s": s}).to_string().as_bytes());
            body.extend_from_slice(separators[i].as_bytes());
        }
        let want: Vec<i64> = (0..strings.len() as i64).collect();
        prop_assert_eq!(ids(&body, JsonLayout::Concatenated), want.clone());
        prop_assert_eq!(ids(&body, JsonLayout::Auto), want);
    }

    #[test]
    fn garbage_never_invents_or_reorders_rows(
        count in 1usize..30,
        garbage in prop::collection::vec(
            (0usize..30, prop::sample::select(vec!["xyz", "{\"id\": }", "]", "{]", "nul", "{\"id\":\"x\"}", "\u{0}"])),
            1..4,
        ),
    ) {
        let mut body = Vec::new();
        for i in 0..count {
            for (at, g) in &garbage {
                if *at == i {
                    body.extend_from_slice(g.as_bytes());
                }
            }
            body.extend_from_slice(format!("{{\"id\":{i},\"s\":\"v{i}\"}}\n").as_bytes());
        }
        for layout in LAYOUTS {
            let Ok(decoded) = decode("fuzz", &body, layout, &schema(), 7) else { continue };
            let got: Vec<i64> = decoded
                .batches
                .iter()
                .flat_map(|b| {
                    let a = b.column(0).as_primitive::<Int64Type>();
                    (0..a.len()).filter(|i| a.is_valid(*i)).map(|i| a.value(i)).collect::<Vec<_>>()
                })
                .collect();
            prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "{:?}: {:?}", layout, got);
            prop_assert!(got.iter().all(|i| (0..count as i64).contains(i)), "{:?}: {:?}", layout, got);
        }
    }
}
