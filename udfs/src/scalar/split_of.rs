//! `split_of(key, name1, p1, name2, p2, …)`: a deterministic split by a hash
//! of the key.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};

use super::args::{self, coerce_numeric};
use super::coerce_text_or_integer;
use crate::kernel::split::Splits;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Assigns a row to one of named splits by proportions, from a hash of its key: \
         FarmHash Fingerprint64 of the key's text (as hash_bucket), read as a fraction of \
         2^64, against the cumulative proportions. A row's split depends on its key only: \
         the same on every run and partitioning, and unchanged when rows are appended. \
         Proportions are approximate (each row draws independently); NULL keys give NULL. \
         For an independent second split of the same keys, salt the key: \
         split_of(concat(id, ':v2'), …). Training only: serving ignores outputs that use it.",
        "split_of(key, name1, p1 [, name2, p2, ...])",
    )
    .with_argument(
        "key",
        "A string or integer expression identifying the row (an id).",
    )
    .with_argument("name", "A string literal: the split's name.")
    .with_argument(
        "p",
        "A numeric literal in [0, 1]: the split's proportion; all proportions sum to 1.",
    )
    .with_sql_example(
        "```sql
> SELECT id, split_of(id, 'train', 0.5, 'eval', 0.5) AS split
  FROM (VALUES ('a'), ('b'), ('c'), ('d')) t(id);
+----+-------+
| id | split |
+----+-------+
| a  | eval  |
| b  | eval  |
| c  | eval  |
| d  | train |
+----+-------+
```",
    )
    .build()
});

/// `split_of(key, name1, p1, …)` → Utf8.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SplitOf {
    signature: Signature,
}

impl Default for SplitOf {
    fn default() -> Self {
        Self::new()
    }
}

/// The checked literal arguments: split names and their hash ranges.
pub(crate) struct SplitSpec {
    pub names: Vec<String>,
    pub proportions: Vec<f64>,
    pub splits: Splits,
}

impl SplitOf {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    /// Reads the (name, proportion) literals; with `strict` false, returns
    /// None while some are not literals yet.
    pub(crate) fn spec(
        literals: &[Option<&ScalarValue>],
        strict: bool,
    ) -> Result<Option<SplitSpec>> {
        const NAME: &str = "split_of";
        let pairs = &literals[1..];
        if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
            return plan_err!(
                "split_of takes (key, name1, p1 [, name2, p2, ...]): pairs of a split name and \
                 its proportion, got {} argument(s) after the key",
                pairs.len()
            );
        }
        if !strict && pairs.iter().any(Option::is_none) {
            return Ok(None);
        }
        split_pairs(NAME, pairs).map(Some)
    }
}

/// Reads (name, proportion) literal pairs: names unique, proportions in
/// [0, 1] summing to 1. Errors name `function` and the argument.
pub(crate) fn split_pairs(function: &str, pairs: &[Option<&ScalarValue>]) -> Result<SplitSpec> {
    let mut names = Vec::with_capacity(pairs.len() / 2);
    let mut proportions = Vec::with_capacity(pairs.len() / 2);
    for (i, pair) in pairs.chunks(2).enumerate() {
        let name = args::string(function, &format!("name {}", i + 1), pair[0])?;
        if names.contains(&name) {
            return plan_err!("{function}: split '{name}' is named twice");
        }
        let p = args::float(
            function,
            &format!("proportion of '{name}'"),
            pair.get(1).copied().flatten(),
        )?;
        if !(0.0..=1.0).contains(&p) {
            return plan_err!("{function}: proportion of '{name}' must be in [0, 1], got {p}");
        }
        names.push(name);
        proportions.push(p);
    }
    let splits = Splits::new(&proportions).map_err(|e| {
        let listed: Vec<String> = names
            .iter()
            .zip(&proportions)
            .map(|(n, p)| format!("{n} {p}"))
            .collect();
        datafusion::common::plan_datafusion_err!("{function}: {e} ({})", listed.join(" + "))
    })?;
    Ok(SplitSpec {
        names,
        proportions,
        splits,
    })
}

impl ScalarUDFImpl for SplitOf {
    fn name(&self) -> &str {
        "split_of"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let Some((key, pairs)) = arg_types.split_first() else {
            return plan_err!(
                "split_of takes (key, name1, p1 [, name2, p2, ...]), got no arguments"
            );
        };
        let mut out = vec![coerce_text_or_integer(self.name(), key)?];
        for (i, t) in pairs.iter().enumerate() {
            out.push(if i % 2 == 0 {
                DataType::Utf8
            } else {
                coerce_numeric(self.name(), "proportion", t)?
            });
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        Self::spec(args.scalar_arguments, false)?;
        let nullable = args.arg_fields[0].is_nullable();
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, nullable)))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        Self::spec(&args::literals(&args), true)?;
        Ok(ExprSimplifyResult::Original(args))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let spec = Self::spec(&args::scalar_values(&args.args), true)?
            .expect("strict specs always resolve");
        let (key, scalar) = match &args.args[0] {
            ColumnarValue::Array(a) => (Arc::clone(a), false),
            ColumnarValue::Scalar(s) => (s.to_array()?, true),
        };
        let out = split_array(&key, &spec)?;
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// The Arrow driver: the split name of every non-NULL key.
fn split_array(key: &ArrayRef, spec: &SplitSpec) -> Result<ArrayRef> {
    let mut out = StringBuilder::with_capacity(key.len(), key.len() * 5);
    for hash in crate::keys::hashes("split_of", key, None)? {
        match hash {
            Some(h) => out.append_value(&spec.names[spec.splits.index(h)]),
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}
