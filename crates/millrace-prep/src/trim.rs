//! `btrim` (SQL `TRIM(x)`) that hands back its input when no value has a leading or trailing
//! space. Lake records are mostly trimmed already, but a job cannot know that, so it trims
//! every text column: DataFusion's `btrim` copies every string of every batch into a new array
//! either way, about 4% of the churn job's time. Checking the first and last byte of each value
//! is a fraction of that, and anything else (other types, a second argument, a value that needs
//! trimming) goes to DataFusion's own function, so results are the same.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// The function to register in place of DataFusion's `btrim` (and its alias `trim`).
pub fn spare_btrim() -> ScalarUDF {
    ScalarUDF::new_from_impl(SpareTrim {
        inner: datafusion::functions::string::btrim(),
    })
}

/// Whether `udf` is this module's `btrim` (for the engine's test that it replaced DataFusion's).
pub fn is_spare(udf: &ScalarUDF) -> bool {
    let inner: &dyn std::any::Any = udf.inner().as_ref();
    inner.is::<SpareTrim>()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SpareTrim {
    inner: Arc<ScalarUDF>,
}

/// Whether any value of `a` starts or ends with a space (what `btrim` with one argument
/// removes). Null slots count too: trimming them changes nothing, so a false alarm only costs
/// the copy.
fn any_padded(a: &dyn Array) -> Option<bool> {
    let padded = |v: &[u8]| v.first() == Some(&b' ') || v.last() == Some(&b' ');
    match a.data_type() {
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            let (offsets, data) = (s.value_offsets(), s.value_data());
            Some(
                offsets
                    .windows(2)
                    .any(|w| padded(&data[w[0] as usize..w[1] as usize])),
            )
        }
        DataType::Utf8View => {
            let s = a.as_string_view();
            Some((0..s.len()).any(|i| padded(s.value(i).as_bytes())))
        }
        _ => None,
    }
}

impl ScalarUDFImpl for SpareTrim {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [ColumnarValue::Array(a)] = args.args.as_slice()
            && any_padded(a.as_ref()) == Some(false)
            && args.return_field.data_type() == a.data_type()
        {
            return Ok(ColumnarValue::Array(Arc::clone(a)));
        }
        self.inner.invoke_with_args(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, StringArray, StringViewArray};
    use arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;

    fn call(udf: &ScalarUDF, a: ArrayRef) -> ArrayRef {
        let args = ScalarFunctionArgs {
            args: vec![ColumnarValue::Array(a.clone())],
            arg_fields: vec![Arc::new(Field::new("a", a.data_type().clone(), true))],
            number_rows: a.len(),
            return_field: Arc::new(Field::new("r", a.data_type().clone(), true)),
            config_options: Arc::new(ConfigOptions::default()),
        };
        match udf.invoke_with_args(args).unwrap() {
            ColumnarValue::Array(a) => a,
            ColumnarValue::Scalar(_) => panic!("an array in, an array out"),
        }
    }

    #[test]
    fn same_results_as_btrim_and_no_copy_when_nothing_to_trim() {
        let ours = spare_btrim();
        let theirs = datafusion::functions::string::btrim();
        let cases: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some(""),
                Some("b c"),
            ])),
            Arc::new(StringArray::from(vec![
                Some(" a"),
                Some("b "),
                Some("  "),
                None,
            ])),
            Arc::new(StringArray::from(vec![
                Some("\ta\t"),
                Some("é"),
                Some("x  y"),
            ])),
            Arc::new(StringViewArray::from(vec![
                Some("long enough to not be inline"),
                None,
            ])),
            Arc::new(StringViewArray::from(vec![
                Some("a value long enough, padded "),
                None,
            ])),
        ];
        for a in cases {
            let got = call(&ours, a.clone());
            assert_eq!(&got, &call(&theirs, a.clone()), "{a:?}");
            let padded = any_padded(a.as_ref()).unwrap();
            // Unpadded input comes back as the very same array.
            assert_eq!(!padded, Arc::ptr_eq(&got, &a), "{a:?}");
        }
        assert_eq!(ours.name(), "btrim");
        assert!(ours.aliases().iter().any(|a| a == "trim"));
    }
}
