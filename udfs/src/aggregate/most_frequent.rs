//! `most_frequent(x)`: the mode of a column, ties broken by the smallest
//! value.

use std::sync::LazyLock;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use super::counts::{CountKey, CountsState};
use crate::kernel::stats::Finite;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The most frequent value of a column (its mode), ties broken by the smallest value \
         (byte order for strings, numeric order for numbers): the fill value of \
         most-frequent imputation. Strings give a string, integers a BIGINT, floats and \
         decimals a DOUBLE. NULLs and, for floats, non-finite values (NaN, +inf, -inf) are \
         skipped; -0.0 counts as 0.0. NULL when no value remains.",
        "most_frequent(x)",
    )
    .with_argument("x", "A string, integer, float or decimal expression.")
    .with_sql_example(
        "```sql
> SELECT most_frequent(x) AS mode, most_frequent(s) AS s_mode
  FROM (VALUES (5, 'b'), (3, 'a'), (5, 'b'), (3, 'c'), (NULL, NULL)) t(x, s);
+------+--------+
| mode | s_mode |
+------+--------+
| 3    | b      |
+------+--------+
```",
    )
    .build()
});

/// `most_frequent(x)` → the type of `x` (Utf8, Int64 or Float64).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MostFrequent {
    signature: Signature,
}

impl Default for MostFrequent {
    fn default() -> Self {
        Self::new()
    }
}

impl MostFrequent {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Strings keep their string type, integers become Int64, floats and
/// decimals Float64; dictionaries are unpacked and a NULL literal counts as
/// a string.
fn coerce(arg: &DataType) -> Result<DataType> {
    match arg {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(arg.clone()),
        DataType::Null => Ok(DataType::Utf8),
        DataType::Dictionary(_, value) => coerce(value),
        t if t.is_integer() => Ok(DataType::Int64),
        t if t.is_numeric() => Ok(DataType::Float64),
        other => plan_err!(
            "most_frequent: x must be a string or a number, got {other}; \
             cast it first, e.g. CAST(x AS VARCHAR)"
        ),
    }
}

/// The type of the result (and of the values in the state) for a coerced
/// argument type.
fn value_type(x: &DataType) -> Result<DataType> {
    match x {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(DataType::Utf8),
        DataType::Int64 | DataType::Float64 => Ok(x.clone()),
        other => internal_err!("most_frequent: unexpected coerced argument type {other}"),
    }
}

impl AggregateUDFImpl for MostFrequent {
    fn name(&self) -> &str {
        "most_frequent"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [x] = arg_types else {
            return plan_err!(
                "most_frequent expects 1 argument (x), got {}",
                arg_types.len()
            );
        };
        Ok(vec![coerce(x)?])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        value_type(&arg_types[0])
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(match value_type(args.input_fields[0].data_type())? {
            DataType::Int64 => CountsState::<i64>::fields(args.name),
            DataType::Float64 => CountsState::<Finite>::fields(args.name),
            _ => CountsState::<String>::fields(args.name),
        })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(match value_type(args.expr_fields[0].data_type())? {
            DataType::Int64 => Box::new(MostFrequentAccumulator::<i64>::default()),
            DataType::Float64 => Box::new(MostFrequentAccumulator::<Finite>::default()),
            _ => Box::new(MostFrequentAccumulator::<String>::default()),
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// Counts every value exactly; the mode is picked when evaluating.
#[derive(Debug)]
struct MostFrequentAccumulator<K: CountKey> {
    counts: CountsState<K>,
}

impl<K: CountKey> Default for MostFrequentAccumulator<K> {
    fn default() -> Self {
        Self {
            counts: CountsState::default(),
        }
    }
}

impl<K: CountKey> Accumulator for MostFrequentAccumulator<K> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.counts.update_batch(&values[0])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.counts.merge_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.counts.state())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(K::to_scalar(self.counts.counts.most_frequent().as_ref()))
    }

    fn size(&self) -> usize {
        self.counts.size()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::aggregate::test_util::{merged_through_state, run_sql, run_sql_err};
    use datafusion::arrow::array::{Float64Array, Int64Array, LargeStringArray};

    fn mode<K: CountKey>(values: ArrayRef) -> MostFrequentAccumulator<K> {
        let mut acc = MostFrequentAccumulator::<K>::default();
        acc.update_batch(&[values]).unwrap();
        acc
    }

    #[test]
    fn issue_example_and_ties() {
        let mut acc = mode::<i64>(Arc::new(Int64Array::from(vec![5, 3, 5, 3])));
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Int64(Some(3)));
        let strings =
            LargeStringArray::from(vec![Some("b"), None, Some("B"), Some("b"), Some("B")]);
        let mut acc = mode::<String>(Arc::new(strings));
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Utf8(Some("B".into())));
        assert_eq!(acc.counts.counts.skipped.nulls, 1);
    }

    #[test]
    fn floats_skip_non_finite_and_merge_signed_zeros() {
        let floats = Float64Array::from(vec![
            Some(f64::NAN),
            Some(f64::NAN),
            Some(f64::NAN),
            Some(2.5),
            Some(-0.0),
            None,
            Some(0.0),
            Some(f64::INFINITY),
            Some(2.5),
            Some(-7.0),
        ]);
        let mut acc = mode::<Finite>(Arc::new(floats));
        // 2.5 and 0.0 twice each: the smaller, 0.0, wins.
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(Some(0.0)));
        let skipped = acc.counts.counts.skipped;
        assert_eq!((skipped.nulls, skipped.non_finite), (1, 4));
        let mut none = mode::<Finite>(Arc::new(Float64Array::from(vec![f64::NAN])));
        assert_eq!(none.evaluate().unwrap(), ScalarValue::Float64(None));
    }

    #[test]
    fn merged_states_give_the_same_mode() {
        let mut a = mode::<i64>(Arc::new(Int64Array::from(vec![Some(9), Some(4), None])));
        let mut b = mode::<i64>(Arc::new(Int64Array::from(vec![4, 9, 9])));
        let mut empty = MostFrequentAccumulator::<i64>::default();
        let mut merged = merged_through_state(
            MostFrequentAccumulator::default(),
            [&mut a, &mut empty, &mut b],
        );
        assert_eq!(merged.evaluate().unwrap(), ScalarValue::Int64(Some(9)));
        assert_eq!(merged.counts.counts.skipped.nulls, 1);
        let mut nothing = merged_through_state(MostFrequentAccumulator::default(), [&mut empty]);
        assert_eq!(nothing.evaluate().unwrap(), ScalarValue::Int64(None));
        assert!(merged.size() > nothing.size());
    }

    #[tokio::test]
    async fn sql_over_values_groups_empty_and_one_row() {
        let rows = run_sql("SELECT most_frequent(x) FROM (VALUES (5), (3), (5), (3)) t(x)").await;
        assert_eq!(rows, ["3"]);
        let rows = run_sql(
            "SELECT arrow_typeof(most_frequent(x)), most_frequent(x) \
             FROM (SELECT CAST(d AS DECIMAL(3, 1)) AS x FROM (VALUES (2.5), (2.5), (1.0)) t(d))",
        )
        .await;
        assert_eq!(rows, ["Float64|2.5"]);
        // a: s b, a, a, b, a; i 5, 3, NULL, 3, 5; x 1, NULL, NaN, 5, 3.
        // b: s c, NULL, d; i 5, 7, 7; x -2.5, 10, +inf.
        let rows = run_sql(
            "SELECT g, most_frequent(s), most_frequent(i), most_frequent(x) \
             FROM parts GROUP BY g ORDER BY g",
        )
        .await;
        assert_eq!(rows, ["a|a|3|1.0", "b|c|7|-2.5"]);
        let rows = run_sql(
            "SELECT most_frequent(arrow_cast(s, 'Utf8View')), \
             most_frequent(arrow_cast(i, 'Dictionary(Int8, UInt16)')) FROM parts",
        )
        .await;
        assert_eq!(rows, ["a|5"]);
        let rows = run_sql(
            "SELECT most_frequent(s), most_frequent(i), most_frequent(x) FROM parts WHERE false",
        )
        .await;
        assert_eq!(rows, ["||"]);
        let rows = run_sql(
            "SELECT most_frequent(s), most_frequent(i), most_frequent(x) FROM parts WHERE x = 10",
        )
        .await;
        assert_eq!(rows, ["|7|10.0"]);
    }

    #[tokio::test]
    async fn sql_rejects_other_types() {
        let err = run_sql_err("SELECT most_frequent(x > 1) FROM parts").await;
        assert!(
            err.contains("most_frequent: x must be a string or a number, got Boolean"),
            "{err}"
        );
    }
}
