//! `bucketize(x, [b1, …, bk])`: the number of boundaries ≤ x.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_datafusion_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};

use super::args::{self, check_arity, coerce_numeric};
use super::map_float_to_int;
use crate::kernel::bucket::{bucketize, check_boundaries};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Buckets a number by literal boundaries: the number of boundaries <= x \
         (lower-inclusive buckets, as TensorFlow Transform's apply_buckets and BigQuery ML's \
         ML.BUCKETIZE), so k boundaries give buckets 0..k. NaN gives k, -inf gives 0, NULL \
         gives NULL. The boundaries must be finite and strictly ascending.",
        "bucketize(x, [b1, ..., bk])",
    )
    .with_argument("x", "A numeric expression.")
    .with_argument(
        "boundaries",
        "A list literal of finite, strictly ascending numbers.",
    )
    .with_sql_example(
        "```sql
> SELECT x, bucketize(x, [2, 5, 10]) AS b
  FROM (VALUES (4.0), ('NaN'::double), (1.0), ('-inf'::double), (7.5), (10.0)) t(x);
+------+---+
| x    | b |
+------+---+
| 4.0  | 1 |
| NaN  | 3 |
| 1.0  | 0 |
| -inf | 0 |
| 7.5  | 2 |
| 10.0 | 3 |
+------+---+
```",
    )
    .build()
});

/// `bucketize(x, boundaries)` → Int64.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Bucketize {
    signature: Signature,
}

impl Default for Bucketize {
    fn default() -> Self {
        Self::new()
    }
}

impl Bucketize {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    pub(crate) fn boundaries(&self, value: Option<&ScalarValue>) -> Result<Vec<f64>> {
        let b = args::float_list(self.name(), "boundaries", value)?;
        check_boundaries(&b).map_err(|e| plan_datafusion_err!("{}: {e}", self.name()))?;
        Ok(b)
    }
}

impl ScalarUDFImpl for Bucketize {
    fn name(&self) -> &str {
        "bucketize"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity(self.name(), "(x, [b1, ..., bk])", arg_types.len(), 2..=2)?;
        Ok(vec![
            coerce_numeric(self.name(), "x", &arg_types[0])?,
            arg_types[1].clone(),
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if let Some(b) = args.scalar_arguments[1] {
            self.boundaries(Some(b))?;
        }
        let nullable = args.arg_fields[0].is_nullable();
        Ok(Arc::new(Field::new(self.name(), DataType::Int64, nullable)))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.boundaries(args::literal_of(&args[1]))?;
        Ok(ExprSimplifyResult::Original(args))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let boundaries = match &args.args[1] {
            ColumnarValue::Scalar(s) => self.boundaries(Some(s))?,
            ColumnarValue::Array(_) => self.boundaries(None)?,
        };
        map_float_to_int(&args.args[0], |v| bucketize(v, &boundaries))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
