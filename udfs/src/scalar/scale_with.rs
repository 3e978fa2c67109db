//! `min_max_scale_with`, `z_score_with`, `max_abs_scale_with`,
//! `robust_scale_with`: the scalers with their statistics given as literals.
//!
//! These are the instance-level halves of the full-pass scalers: fitting
//! `min_max_scale(x)` computes min and max once and turns the call into
//! `min_max_scale_with(x, min, max)`. They are ordinary functions too, for
//! statistics known in advance.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};

use super::args::{self, check_arity, coerce_numeric};
use super::map_float;
use crate::kernel::scale;

/// Which scaler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScaleKind {
    MinMax,
    ZScore,
    MaxAbs,
    Robust,
}

impl ScaleKind {
    fn name(self) -> &'static str {
        match self {
            Self::MinMax => "min_max_scale_with",
            Self::ZScore => "z_score_with",
            Self::MaxAbs => "max_abs_scale_with",
            Self::Robust => "robust_scale_with",
        }
    }

    /// Parameter names after x.
    fn params(self) -> &'static [&'static str] {
        match self {
            Self::MinMax => &["min", "max", "lo", "hi"],
            Self::ZScore => &["mean", "scale"],
            Self::MaxAbs => &["max_abs"],
            Self::Robust => &["median", "iqr"],
        }
    }

    fn syntax(self) -> &'static str {
        match self {
            Self::MinMax => "(x, min, max [, lo, hi])",
            Self::ZScore => "(x, mean, scale)",
            Self::MaxAbs => "(x, max_abs)",
            Self::Robust => "(x, median, iqr)",
        }
    }

    /// Allowed argument counts, x included.
    fn arity(self) -> std::ops::RangeInclusive<usize> {
        match self {
            Self::MinMax => 3..=5,
            k => k.params().len() + 1..=k.params().len() + 1,
        }
    }
}

static DOCS: LazyLock<[Documentation; 4]> = LazyLock::new(|| {
    let x = "A numeric expression; integers are computed as Float64.";
    [
        Documentation::builder(
            crate::DOC_SECTION,
            "Min-max scaling with given statistics: (x - min) / (max - min), or with a target \
             range lo + (x - min) / (max - min) * (hi - lo). max = min gives x - min (+ lo). \
             No clipping. NULL gives NULL, NaN gives NaN. The fitted form of min_max_scale.",
            "min_max_scale_with(x, min, max [, lo, hi])",
        )
        .with_argument("x", x)
        .with_argument(
            "min, max",
            "Numeric literals: the fitted minimum and maximum.",
        )
        .with_argument(
            "lo, hi",
            "Optional numeric literals, lo < hi: the target range.",
        )
        .with_sql_example(
            "```sql
> SELECT min_max_scale_with(x, 1, 5) AS s FROM (VALUES (1), (3), (6)) t(x);
+------+
| s    |
+------+
| 0.0  |
| 0.5  |
| 1.25 |
+------+
```",
        )
        .build(),
        Documentation::builder(
            crate::DOC_SECTION,
            "Standardization with given statistics: (x - mean) * scale, where scale is 1/σ \
             (1 when σ = 0). NULL gives NULL, NaN gives NaN. The fitted form of z_score.",
            "z_score_with(x, mean, scale)",
        )
        .with_argument("x", x)
        .with_argument("mean", "Numeric literal: the fitted mean.")
        .with_argument(
            "scale",
            "Numeric literal: 1/σ, rounded once (1 when σ = 0).",
        )
        .with_sql_example(
            "```sql
> SELECT z_score_with(x, 1.5, 2.0) AS z FROM (VALUES (1), (2)) t(x);
+------+
| z    |
+------+
| -1.0 |
| 1.0  |
+------+
```",
        )
        .build(),
        Documentation::builder(
            crate::DOC_SECTION,
            "Max-abs scaling with a given statistic: x / max_abs (x when max_abs = 0). \
             NULL gives NULL, NaN gives NaN. The fitted form of max_abs_scale.",
            "max_abs_scale_with(x, max_abs)",
        )
        .with_argument("x", x)
        .with_argument("max_abs", "Numeric literal: the fitted max |x|.")
        .with_sql_example(
            "```sql
> SELECT max_abs_scale_with(x, 5) AS s FROM (VALUES (-3), (1)) t(x);
+------+
| s    |
+------+
| -0.6 |
| 0.2  |
+------+
```",
        )
        .build(),
        Documentation::builder(
            crate::DOC_SECTION,
            "Robust scaling with given statistics: (x - median) / iqr (x - median when \
             iqr = 0). NULL gives NULL, NaN gives NaN. The fitted form of robust_scale.",
            "robust_scale_with(x, median, iqr)",
        )
        .with_argument("x", x)
        .with_argument("median", "Numeric literal: the fitted median.")
        .with_argument("iqr", "Numeric literal: the fitted q75 - q25.")
        .with_sql_example(
            "```sql
> SELECT robust_scale_with(x, 2.5, 1.5) AS s FROM (VALUES (1), (4)) t(x);
+------+
| s    |
+------+
| -1.0 |
| 1.0  |
+------+
```",
        )
        .build(),
    ]
});

/// One of the four `*_with` scalers.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ScaleWith {
    kind: ScaleKind,
    signature: Signature,
}

impl ScaleWith {
    pub fn new(kind: ScaleKind) -> Self {
        Self {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    /// Reads and checks the literal parameters; `strict` requires every one
    /// to be a literal (after constant folding), otherwise missing ones are
    /// skipped.
    pub(crate) fn params(
        &self,
        literals: &[Option<&datafusion::common::ScalarValue>],
        strict: bool,
    ) -> Result<Vec<f64>> {
        let name = self.kind.name();
        let mut out = Vec::new();
        for (value, param) in literals.iter().skip(1).zip(self.kind.params()) {
            if value.is_none() && !strict {
                return Ok(Vec::new());
            }
            out.push(args::float(name, param, *value)?);
        }
        if self.kind == ScaleKind::MinMax && out.len() == 4 && out[2] >= out[3] {
            return plan_err!(
                "{name}: lo must be below hi, got lo = {} and hi = {}",
                out[2],
                out[3]
            );
        }
        Ok(out)
    }
}

impl ScalarUDFImpl for ScaleWith {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.kind.name();
        check_arity(name, self.kind.syntax(), arg_types.len(), self.kind.arity())?;
        let names = std::iter::once("x").chain(self.kind.params().iter().copied());
        arg_types
            .iter()
            .zip(names)
            .map(|(t, arg)| coerce_numeric(name, arg, t))
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.params(args.scalar_arguments, false)?;
        let nullable = args.arg_fields[0].is_nullable();
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Float64,
            nullable,
        )))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.params(&args::literals(&args), true)?;
        Ok(ExprSimplifyResult::Original(args))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let literals = args::scalar_values(&args.args);
        let p = self.params(&literals, true)?;
        let x = &args.args[0];
        match (self.kind, p.as_slice()) {
            (ScaleKind::MinMax, &[min, max]) => map_float(x, |v| scale::min_max_scale(v, min, max)),
            (ScaleKind::MinMax, &[min, max, lo, hi]) => {
                map_float(x, |v| scale::min_max_scale_to(v, min, max, lo, hi))
            }
            (ScaleKind::ZScore, &[mean, s]) => map_float(x, |v| scale::z_score(v, mean, s)),
            (ScaleKind::MaxAbs, &[m]) => map_float(x, |v| scale::max_abs_scale(v, m)),
            (ScaleKind::Robust, &[median, iqr]) => {
                map_float(x, |v| scale::robust_scale(v, median, iqr))
            }
            _ => plan_err!("{} takes {}", self.name(), self.kind.syntax()),
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCS[self.kind as usize])
    }
}
