//! `hash_bucket(x, n)`: a stable hash of a value into `n` buckets.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::unary;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};

use super::args;
use super::coerce_text_or_integer;
use crate::kernel::{hash_bucket_bytes, hash_bucket_i64, hash_bucket_u64};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Hashes a value into one of n buckets: FarmHash Fingerprint64 of the UTF-8 text of x, \
         read as an unsigned 64-bit number, modulo n. Integers hash as their decimal text; \
         NULL gives NULL. Same buckets as BigQuery ML's ML.HASH_BUCKETIZE and TensorFlow's \
         tf.strings.to_hash_bucket_fast.",
        "hash_bucket(x, n)",
    )
    .with_argument("x", "A string or integer expression.")
    .with_argument("n", "The number of buckets: a positive integer literal.")
    .with_sql_example(
        "```sql
> SELECT v, hash_bucket(v, 3) AS bucket FROM (VALUES ('a'), ('b'), ('c'), ('d')) t(v);
+---+--------+
| v | bucket |
+---+--------+
| a | 0      |
| b | 1      |
| c | 1      |
| d | 2      |
+---+--------+
```",
    )
    .build()
});

/// `hash_bucket(x, n)` → Int64 in `0..n`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HashBucket {
    signature: Signature,
}

impl Default for HashBucket {
    fn default() -> Self {
        Self::new()
    }
}

impl HashBucket {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for HashBucket {
    fn name(&self) -> &str {
        "hash_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [x, n] = arg_types else {
            return plan_err!(
                "hash_bucket expects 2 arguments (x, n), got {}",
                arg_types.len()
            );
        };
        if !n.is_integer() && !n.is_null() {
            return plan_err!("hash_bucket: n must be a positive integer literal, got type {n}");
        }
        Ok(vec![
            coerce_text_or_integer(self.name(), x)?,
            DataType::Int64,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if let Some(n) = args.scalar_arguments[1] {
            args::positive_int(self.name(), "n", Some(n))?;
        }
        let nullable = args.arg_fields[0].is_nullable();
        Ok(Arc::new(Field::new(self.name(), DataType::Int64, nullable)))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        args::positive_int(self.name(), "n", args::literal_of(&args[1]))?;
        Ok(ExprSimplifyResult::Original(args))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = match &args.args[1] {
            ColumnarValue::Scalar(s) => args::positive_int(self.name(), "n", Some(s))?,
            ColumnarValue::Array(_) => {
                return exec_err!("hash_bucket: n must be a positive integer literal");
            }
        };
        match &args.args[0] {
            ColumnarValue::Array(array) => Ok(ColumnarValue::Array(hash_array(array, n)?)),
            ColumnarValue::Scalar(scalar) => {
                let array = hash_array(&scalar.to_array()?, n)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                    &array, 0,
                )?))
            }
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// The Arrow driver: the kernel over every non-NULL slot.
fn hash_array(array: &ArrayRef, n: u64) -> Result<ArrayRef> {
    let out: Int64Array = match array.data_type() {
        DataType::Utf8 => array
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|s| hash_bucket_bytes(s.as_bytes(), n)))
            .collect(),
        DataType::LargeUtf8 => array
            .as_string::<i64>()
            .iter()
            .map(|v| v.map(|s| hash_bucket_bytes(s.as_bytes(), n)))
            .collect(),
        DataType::Utf8View => array
            .as_string_view()
            .iter()
            .map(|v| v.map(|s| hash_bucket_bytes(s.as_bytes(), n)))
            .collect(),
        DataType::Int64 => unary(array.as_primitive::<Int64Type>(), |v| hash_bucket_i64(v, n)),
        DataType::UInt64 => unary(array.as_primitive::<UInt64Type>(), |v| {
            hash_bucket_u64(v, n)
        }),
        DataType::Null => Int64Array::new_null(array.len()),
        other => return exec_err!("hash_bucket: unsupported argument type {other}"),
    };
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray, StringViewArray};
    use datafusion::common::config::ConfigOptions;

    fn invoke(x: ArrayRef, n: i64) -> Result<Int64Array> {
        let udf = HashBucket::new();
        let len = x.len();
        let arg_fields = vec![
            Arc::new(Field::new("x", x.data_type().clone(), true)),
            Arc::new(Field::new("n", DataType::Int64, false)),
        ];
        let out = udf.invoke_with_args(ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Array(x),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(n))),
            ],
            arg_fields,
            number_rows: len,
            return_field: Arc::new(Field::new("hash_bucket", DataType::Int64, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })?;
        Ok(out.into_array(len)?.as_primitive::<Int64Type>().clone())
    }

    #[test]
    fn strings_of_every_layout_agree() -> Result<()> {
        let values = [Some("Car"), None, Some("Bus"), Some("Tree")];
        let expected = Int64Array::from(vec![Some(8), None, Some(4), Some(5)]);
        assert_eq!(
            invoke(Arc::new(StringArray::from(values.to_vec())), 11)?,
            expected
        );
        assert_eq!(
            invoke(Arc::new(StringViewArray::from(values.to_vec())), 11)?,
            expected
        );
        Ok(())
    }

    #[test]
    fn integers_hash_as_decimal_text() -> Result<()> {
        let ints = invoke(
            Arc::new(Int64Array::from(vec![Some(-12), None, Some(7)])),
            1000,
        )?;
        let text = invoke(
            Arc::new(StringArray::from(vec![Some("-12"), None, Some("7")])),
            1000,
        )?;
        assert_eq!(ints, text);
        Ok(())
    }

    #[test]
    fn n_must_be_a_positive_literal() {
        let udf = HashBucket::new();
        let fields = [
            Arc::new(Field::new("x", DataType::Utf8, true)),
            Arc::new(Field::new("n", DataType::Int64, true)),
        ];
        for bad in [
            Some(ScalarValue::Int64(Some(0))),
            Some(ScalarValue::Int64(Some(-3))),
            Some(ScalarValue::Int64(None)),
        ] {
            let err = udf
                .return_field_from_args(ReturnFieldArgs {
                    arg_fields: &fields,
                    scalar_arguments: &[None, bad.as_ref()],
                })
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("hash_bucket: n must be a positive integer"),
                "{err}"
            );
        }
        assert!(
            udf.coerce_types(&[DataType::Float64, DataType::Int64])
                .is_err()
        );
    }
}
