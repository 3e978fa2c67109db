//! The fitted forms of the stratified functions, which skewless's fit
//! writes with the statistic inlined:
//!
//! - `stratified_split_with(key, stratum, strata, thresholds, names)`: the
//!   split of a row from its key's hash and its stratum's thresholds;
//! - `sample_with(key, stratum, seed, strata, base, thresholds)`: how many
//!   copies of a row a sample takes.
//!
//! Hashes are written as BIGINTs holding their 64 bits (two's complement),
//! so that the fitted SQL reads them back exactly.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Builder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};

use super::args;
use super::coerce_text_or_integer;
use crate::kernel::sample::Copies;
use crate::kernel::split::split_by_threshold;

/// Which fitted function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StratifiedKind {
    Split,
    Sample,
}

/// `stratified_split_with(…)` → Utf8 or `sample_with(…)` → Int64.
#[derive(Debug)]
pub struct StratifiedWith {
    kind: StratifiedKind,
    signature: Signature,
    /// The spec of the last literal arguments seen, with those arguments
    /// (held, so that their lists cannot be freed and their addresses
    /// reused): every batch of a query passes the very same list literals,
    /// and reading them costs as much as there are strata.
    cache: std::sync::Mutex<Option<(Vec<ScalarValue>, Arc<Spec>)>>,
}

impl PartialEq for StratifiedWith {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl Eq for StratifiedWith {}

impl std::hash::Hash for StratifiedWith {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
    }
}

/// The same literal: list literals by identity (the same allocation),
/// other values by value.
fn same_literal(a: &ScalarValue, b: &ScalarValue) -> bool {
    match (a, b) {
        (ScalarValue::List(a), ScalarValue::List(b)) => Arc::ptr_eq(a, b),
        (ScalarValue::LargeList(a), ScalarValue::LargeList(b)) => Arc::ptr_eq(a, b),
        (ScalarValue::FixedSizeList(a), ScalarValue::FixedSizeList(b)) => Arc::ptr_eq(a, b),
        _ => a == b,
    }
}

impl StratifiedWith {
    pub fn split() -> Self {
        Self::new(StratifiedKind::Split)
    }

    pub fn sample() -> Self {
        Self::new(StratifiedKind::Sample)
    }

    fn new(kind: StratifiedKind) -> Self {
        Self {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
            cache: std::sync::Mutex::new(None),
        }
    }

    /// The spec of evaluated arguments, from the cache when the literals
    /// are the same as last time.
    fn cached_spec(&self, args: &[ColumnarValue]) -> Result<Arc<Spec>> {
        let literals: Vec<ScalarValue> = args
            .iter()
            .skip(2)
            .filter_map(|a| match a {
                ColumnarValue::Scalar(s) => Some(s.clone()),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, spec)) = cache.as_ref()
            && seen.len() == literals.len()
            && seen.iter().zip(&literals).all(|(a, b)| same_literal(a, b))
        {
            return Ok(Arc::clone(spec));
        }
        let spec = Arc::new(self.spec(&args::scalar_values(args))?);
        *cache = Some((literals, Arc::clone(&spec)));
        Ok(spec)
    }

    fn syntax(&self) -> &'static str {
        match self.kind {
            StratifiedKind::Split => "(key, stratum, strata, thresholds, names)",
            StratifiedKind::Sample => "(key, stratum, seed, strata, base, thresholds)",
        }
    }
}

static SPLIT_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The fitted form of stratified_split, written by skewless's fit: the row's stratum \
         is looked up in strata, and its key's hash (FarmHash Fingerprint64 of the key's \
         text) against that stratum's thresholds (k - 1 per stratum for k splits, hashes as \
         BIGINTs holding their 64 bits, NULL for a split no row reaches) gives the split: \
         the number of thresholds at or below the hash, compared as unsigned. A NULL key or \
         stratum, or a stratum not in strata, gives NULL. Training only.",
        "stratified_split_with(key, stratum, strata, thresholds, names)",
    )
    .with_argument("key", "A string or integer expression identifying the row.")
    .with_argument(
        "stratum",
        "A string or integer expression: the row's stratum.",
    )
    .with_argument("strata", "A list literal of the strata's names (text).")
    .with_argument(
        "thresholds",
        "A list literal of BIGINT hashes, k - 1 per stratum in the order of strata.",
    )
    .with_argument("names", "A list literal of the k split names.")
    .with_sql_example(
        "```sql
> SELECT k, stratified_split_with(k, s, ['x'], [-5528939962900187677], ['train', 'eval']) AS split
  FROM (VALUES ('a', 'x'), ('b', 'x'), ('c', 'z')) t(k, s);
+---+-------+
| k | split |
+---+-------+
| a | eval  |
| b | train |
| c |       |
+---+-------+
```",
    )
    .build()
});

static SAMPLE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The fitted form of stratified_sample, undersample and oversample, written by \
         skewless's fit: the number of copies of the row in the sample. The row's stratum \
         is looked up in strata; its key's hash salted by the seed (fmix64 of FarmHash \
         Fingerprint64 XOR fmix64(seed)) gets base copies, plus one if it is below the \
         stratum's threshold (compared as unsigned; hashes as BIGINTs holding their 64 \
         bits). A NULL key or stratum, or a stratum not in strata, gives NULL. Training only.",
        "sample_with(key, stratum, seed, strata, base, thresholds)",
    )
    .with_argument("key", "A string or integer expression identifying the row.")
    .with_argument(
        "stratum",
        "A string or integer expression: the row's stratum.",
    )
    .with_argument("seed", "An integer literal.")
    .with_argument("strata", "A list literal of the strata's names (text).")
    .with_argument(
        "base",
        "A list literal of each stratum's copies for every row.",
    )
    .with_argument(
        "thresholds",
        "A list literal of each stratum's threshold hash.",
    )
    .with_sql_example(
        "```sql
> SELECT k, sample_with(k, s, 7, ['x'], [0], [-842389321745964561]) AS copies
  FROM (VALUES ('a', 'x'), ('b', 'x')) t(k, s);
+---+--------+
| k | copies |
+---+--------+
| a | 1      |
| b | 0      |
+---+--------+
```",
    )
    .build()
});

/// The checked literal arguments.
#[derive(Debug)]
struct Spec {
    /// Stratum name → its index.
    strata: foldhash::HashMap<String, usize>,
    seed: Option<u64>,
    /// Per stratum: the split thresholds, or the sample's copies.
    thresholds: Vec<Vec<Option<u64>>>,
    copies: Vec<Copies>,
    names: Vec<String>,
}

impl StratifiedWith {
    fn spec(&self, literals: &[Option<&ScalarValue>]) -> Result<Spec> {
        let name = self.name();
        let expected = match self.kind {
            StratifiedKind::Split => 5,
            StratifiedKind::Sample => 6,
        };
        if literals.len() != expected {
            return plan_err!(
                "{name} takes {}, got {} argument(s)",
                self.syntax(),
                literals.len()
            );
        }
        let rest = match self.kind {
            StratifiedKind::Split => &literals[2..],
            StratifiedKind::Sample => &literals[3..],
        };
        let strata = text_list(name, "strata", rest[0])?;
        let index = strata
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i))
            .collect::<foldhash::HashMap<_, _>>();
        if index.len() != strata.len() {
            return plan_err!("{name}: strata must not repeat a name");
        }
        let mut spec = Spec {
            strata: index,
            seed: None,
            thresholds: Vec::new(),
            copies: Vec::new(),
            names: Vec::new(),
        };
        match self.kind {
            StratifiedKind::Split => {
                let thresholds = int_list(name, "thresholds", rest[1])?;
                spec.names = text_list(name, "names", rest[2])?;
                let per = spec.names.len().saturating_sub(1);
                if spec.names.is_empty() || thresholds.len() != per * strata.len() {
                    return plan_err!(
                        "{name}: thresholds must hold {per} hashes per stratum ({} strata, {} \
                         splits), got {}",
                        strata.len(),
                        spec.names.len(),
                        thresholds.len()
                    );
                }
                spec.thresholds = thresholds
                    .chunks(per.max(1))
                    .take(strata.len())
                    .map(|c| c[..per].iter().map(|t| t.map(|t| t as u64)).collect())
                    .collect();
                if per == 0 {
                    spec.thresholds = vec![Vec::new(); strata.len()];
                }
            }
            StratifiedKind::Sample => {
                spec.seed = Some(seed(name, literals[2])?);
                let base = int_list(name, "base", rest[1])?;
                let thresholds = int_list(name, "thresholds", rest[2])?;
                if base.len() != strata.len() || thresholds.len() != strata.len() {
                    return plan_err!(
                        "{name}: base and thresholds must hold one value per stratum ({}), got \
                         {} and {}",
                        strata.len(),
                        base.len(),
                        thresholds.len()
                    );
                }
                spec.copies = base
                    .iter()
                    .zip(&thresholds)
                    .map(|(b, t)| match (b, t) {
                        (Some(b), Some(t)) if *b >= 0 => Ok(Copies {
                            base: *b as u64,
                            threshold: *t as u64,
                        }),
                        _ => plan_err!(
                            "{name}: base must be non-negative and neither list may hold NULL"
                        ),
                    })
                    .collect::<Result<_>>()?;
            }
        }
        Ok(spec)
    }
}

/// A seed: an integer literal (negative ones as their two's complement).
pub(crate) fn seed(function: &str, value: Option<&ScalarValue>) -> Result<u64> {
    match value {
        Some(v) if v.data_type().is_integer() && !v.is_null() => {
            match v.cast_to(&DataType::Int64) {
                Ok(ScalarValue::Int64(Some(n))) => Ok(n as u64),
                // UInt64 beyond i64::MAX.
                _ => match v {
                    ScalarValue::UInt64(Some(n)) => Ok(*n),
                    other => plan_err!("{function}: seed must be an integer literal, got {other}"),
                },
            }
        }
        Some(other) => plan_err!(
            "{function}: seed must be an integer literal, got {other} of type {}",
            other.data_type()
        ),
        None => {
            plan_err!("{function}: seed must be an integer literal, not a column or expression")
        }
    }
}

fn text_list(function: &str, argument: &str, value: Option<&ScalarValue>) -> Result<Vec<String>> {
    let values = args::list_array(function, argument, value)?;
    if values.data_type().is_null() {
        return Ok(Vec::new());
    }
    let values = cast(&values, &DataType::Utf8)?;
    values
        .as_string::<i32>()
        .iter()
        .map(|v| match v {
            Some(v) => Ok(v.to_string()),
            None => plan_err!("{function}: {argument} must not contain NULL"),
        })
        .collect()
}

fn int_list(
    function: &str,
    argument: &str,
    value: Option<&ScalarValue>,
) -> Result<Vec<Option<i64>>> {
    let values = args::list_array(function, argument, value)?;
    if !values.data_type().is_integer() && !values.data_type().is_null() {
        return plan_err!(
            "{function}: {argument} must be a list of integers, got a list of {}",
            values.data_type()
        );
    }
    let values = cast(&values, &DataType::Int64)?;
    Ok(values.as_primitive::<Int64Type>().iter().collect())
}

impl ScalarUDFImpl for StratifiedWith {
    fn name(&self) -> &str {
        match self.kind {
            StratifiedKind::Split => "stratified_split_with",
            StratifiedKind::Sample => "sample_with",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() < 2 {
            return plan_err!(
                "{} takes {}, got {} argument(s)",
                self.name(),
                self.syntax(),
                arg_types.len()
            );
        }
        let mut out = arg_types.to_vec();
        out[0] = coerce_text_or_integer(self.name(), &arg_types[0])?;
        out[1] = match &arg_types[1] {
            DataType::Boolean => DataType::Utf8,
            t => coerce_text_or_integer(self.name(), t)?,
        };
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            StratifiedKind::Split => DataType::Utf8,
            StratifiedKind::Sample => DataType::Int64,
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        // The key and stratum are columns; the rest are literals.
        let first_literal = 2;
        if args.scalar_arguments.len() > first_literal
            && args.scalar_arguments[first_literal..]
                .iter()
                .all(Option::is_some)
        {
            self.spec(args.scalar_arguments)?;
        }
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(Arc::new(Field::new(
            self.name(),
            self.return_type(&types)?,
            true,
        )))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.spec(&args::literals(&args))?;
        Ok(ExprSimplifyResult::Original(args))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let spec = self.cached_spec(&args.args)?;
        let rows = args.number_rows;
        let key = args.args[0].to_array(rows)?;
        let stratum = args.args[1].to_array(rows)?;
        let name = self.name();
        let hashes = crate::keys::hashes(name, &key, spec.seed)?;
        let out: ArrayRef = match self.kind {
            StratifiedKind::Split => {
                let mut out = StringBuilder::with_capacity(rows, rows * 5);
                crate::keys::each_text(name, &stratum, |i, s| {
                    match (s.and_then(|s| spec.strata.get(s)), hashes[i]) {
                        (Some(j), Some(h)) => out
                            .append_value(&spec.names[split_by_threshold(h, &spec.thresholds[*j])]),
                        _ => out.append_null(),
                    }
                })?;
                Arc::new(out.finish())
            }
            StratifiedKind::Sample => {
                let mut out = Int64Builder::with_capacity(rows);
                crate::keys::each_text(name, &stratum, |i, s| {
                    match (s.and_then(|s| spec.strata.get(s)), hashes[i]) {
                        (Some(j), Some(h)) => out.append_value(spec.copies[*j].of(h) as i64),
                        _ => out.append_null(),
                    }
                })?;
                Arc::new(out.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(match self.kind {
            StratifiedKind::Split => &SPLIT_DOC,
            StratifiedKind::Sample => &SAMPLE_DOC,
        })
    }
}
