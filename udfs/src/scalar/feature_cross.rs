//! `feature_cross(x1, …, xk, n)`: hashed feature crosses.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Builder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};

use super::args;
use super::coerce_text_or_integer;
use crate::kernel::CrossBuffer;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Crosses two or more features into one of n buckets: hash_bucket of the values' \
         texts joined by '_' (x1 || '_' || x2 || ...). Integers are written in decimal. Any \
         NULL gives NULL.",
        "feature_cross(x1, x2, ..., n)",
    )
    .with_argument("x1, x2, ...", "Two or more string or integer expressions.")
    .with_argument("n", "The number of buckets: a positive integer literal.")
    .with_sql_example(
        "```sql
> SELECT feature_cross('Bachelors', 'Sales', 10000) = hash_bucket('Bachelors_Sales', 10000) AS same;
+------+
| same |
+------+
| true |
+------+
```",
    )
    .build()
});

/// `feature_cross(x1, …, xk, n)` → Int64 in `0..n`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FeatureCross {
    signature: Signature,
}

impl Default for FeatureCross {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureCross {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for FeatureCross {
    fn name(&self) -> &str {
        "feature_cross"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() < 3 {
            return plan_err!(
                "feature_cross takes two or more features and n, e.g. feature_cross(a, b, 1000); \
                 got {} argument(s)",
                arg_types.len()
            );
        }
        let (n, features) = arg_types.split_last().expect("checked above");
        if !n.is_integer() && !n.is_null() {
            return plan_err!("feature_cross: n must be a positive integer literal, got type {n}");
        }
        let mut out = features
            .iter()
            .map(|t| coerce_text_or_integer(self.name(), t))
            .collect::<Result<Vec<_>>>()?;
        out.push(DataType::Int64);
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let n = args.scalar_arguments.last().copied().flatten();
        args::positive_int(self.name(), "n", n)?;
        let (_, features) = args
            .arg_fields
            .split_last()
            .expect("checked by coerce_types");
        let nullable = features.iter().any(|f| f.is_nullable());
        Ok(Arc::new(Field::new(self.name(), DataType::Int64, nullable)))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        args::positive_int(self.name(), "n", args.last().and_then(args::literal_of))?;
        Ok(ExprSimplifyResult::Original(args))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (n, features) = args.args.split_last().expect("checked by coerce_types");
        let n = match n {
            ColumnarValue::Scalar(s) => args::positive_int(self.name(), "n", Some(s))?,
            ColumnarValue::Array(_) => args::positive_int(self.name(), "n", None)?,
        };
        let all_scalar = features
            .iter()
            .all(|f| matches!(f, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let arrays = features
            .iter()
            .map(|f| f.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let columns = arrays.iter().map(Column::new).collect::<Result<Vec<_>>>()?;
        let mut out = Int64Builder::with_capacity(rows);
        let mut cross = CrossBuffer::default();
        // Two string columns read from Parquet: memoize by their views.
        let views = match columns.as_slice() {
            [Column::Utf8View(a), Column::Utf8View(b)] => Some((a.views(), b.views())),
            _ => None,
        };
        let mut memo = super::memo::ViewMemo::<i64, 2>::new();
        for row in 0..rows {
            if arrays.iter().any(|a| a.is_null(row)) {
                out.append_null();
                continue;
            }
            let mut bucket = || {
                for c in &columns {
                    c.push(&mut cross, row);
                }
                cross.bucket(n)
            };
            let value = match views {
                Some((a, b)) => memo.get([a[row], b[row]], bucket),
                None => bucket(),
            };
            out.append_value(value);
        }
        let out: ArrayRef = Arc::new(out.finish());
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// A feature column with its type resolved once per batch.
enum Column<'a> {
    Utf8(&'a datafusion::arrow::array::StringArray),
    LargeUtf8(&'a datafusion::arrow::array::LargeStringArray),
    Utf8View(&'a datafusion::arrow::array::StringViewArray),
    Int64(&'a datafusion::arrow::array::Int64Array),
    UInt64(&'a datafusion::arrow::array::UInt64Array),
}

impl<'a> Column<'a> {
    fn new(array: &'a ArrayRef) -> Result<Self> {
        Ok(match array.data_type() {
            DataType::Utf8 => Self::Utf8(array.as_string::<i32>()),
            DataType::LargeUtf8 => Self::LargeUtf8(array.as_string::<i64>()),
            DataType::Utf8View => Self::Utf8View(array.as_string_view()),
            DataType::Int64 => Self::Int64(array.as_primitive::<Int64Type>()),
            DataType::UInt64 => Self::UInt64(array.as_primitive::<UInt64Type>()),
            other => return exec_err!("feature_cross: unsupported argument type {other}"),
        })
    }

    #[inline]
    fn push(&self, cross: &mut CrossBuffer, row: usize) {
        match self {
            Self::Utf8(a) => cross.push_str(a.value(row)),
            Self::LargeUtf8(a) => cross.push_str(a.value(row)),
            Self::Utf8View(a) => cross.push_str(a.value(row)),
            Self::Int64(a) => cross.push_i64(a.value(row)),
            Self::UInt64(a) => cross.push_u64(a.value(row)),
        }
    }
}
