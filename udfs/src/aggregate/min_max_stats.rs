//! `min_max_stats(x)`: count, skipped values, minimum and maximum.

use std::sync::LazyLock;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute;
use datafusion::arrow::datatypes::{DataType, FieldRef, Fields};
use datafusion::common::cast::as_float64_array;
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use super::coerce_numeric;
use super::state::{
    f64_field, merge_skipped, skipped_fields, skipped_state, sum_u64, summary_fields,
    summary_scalar, u64_field,
};
use crate::kernel::stats::MinMax;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Counts the values of a numeric column and finds the smallest and largest. \
         NULLs and non-finite values (NaN, +inf, -inf) are skipped and counted in `nulls` \
         and `non_finite`; `min` and `max` are NULL when no finite value remains. \
         Returns a struct {count, nulls, non_finite, min, max}; the statistics of min-max \
         scaling.",
        "min_max_stats(x)",
    )
    .with_argument(
        "x",
        "A numeric expression (any integer, float or decimal type, computed as DOUBLE).",
    )
    .with_sql_example(
        "```sql
> SELECT min_max_stats(x) AS s
  FROM (VALUES (3.0), (-1.5), (NULL), ('NaN'::DOUBLE), (8.0)) t(x);
+----------------------------------------------------------+
| s                                                        |
+----------------------------------------------------------+
| {count: 3, nulls: 1, non_finite: 1, min: -1.5, max: 8.0} |
+----------------------------------------------------------+
```",
    )
    .build()
});

/// `min_max_stats(x)` → Struct{count, nulls, non_finite, min, max}.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MinMaxStats {
    signature: Signature,
}

impl Default for MinMaxStats {
    fn default() -> Self {
        Self::new()
    }
}

impl MinMaxStats {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The fields of the result struct.
fn result_fields() -> Fields {
    summary_fields(&["min", "max"])
}

impl AggregateUDFImpl for MinMaxStats {
    fn name(&self) -> &str {
        "min_max_stats"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [x] = arg_types else {
            return plan_err!(
                "min_max_stats expects 1 argument (x), got {}",
                arg_types.len()
            );
        };
        Ok(vec![coerce_numeric(self.name(), "x", x)?])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(result_fields()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let [nulls, non_finite] = skipped_fields(args.name);
        Ok(vec![
            u64_field(args.name, "count"),
            nulls,
            non_finite,
            // ±inf while nothing was counted, so that merging is plain min/max.
            f64_field(args.name, "min"),
            f64_field(args.name, "max"),
        ])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(MinMaxStatsAccumulator::default()))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// Drives a [`MinMax`] over Float64 arrays.
#[derive(Debug, Default)]
struct MinMaxStatsAccumulator {
    stats: MinMax,
}

impl Accumulator for MinMaxStatsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = as_float64_array(&values[0])?;
        if values.null_count() == 0 {
            values
                .values()
                .iter()
                .for_each(|&v| self.stats.update(Some(v)));
        } else {
            values.iter().for_each(|v| self.stats.update(v));
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [count, nulls, non_finite, min, max] = states else {
            return internal_err!(
                "min_max_stats: expected 5 state columns, got {}",
                states.len()
            );
        };
        let (min, max) = (as_float64_array(min)?, as_float64_array(max)?);
        let mut other = MinMax {
            count: sum_u64(count)?,
            ..MinMax::default()
        };
        merge_skipped(&mut other.skipped, nulls, non_finite)?;
        // States never hold NaN (rows whose count is 0 hold the ±inf
        // placeholders), so Arrow's min/max are the numeric ones.
        other.min = compute::min(min).unwrap_or(f64::INFINITY);
        other.max = compute::max(max).unwrap_or(f64::NEG_INFINITY);
        self.stats.merge(&other);
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let [nulls, non_finite] = skipped_state(&self.stats.skipped);
        Ok(vec![
            ScalarValue::UInt64(Some(self.stats.count)),
            nulls,
            non_finite,
            ScalarValue::Float64(Some(self.stats.min)),
            ScalarValue::Float64(Some(self.stats.max)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let s = &self.stats;
        summary_scalar(&result_fields(), s.count, &s.skipped, &[s.min, s.max])
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::aggregate::test_util::{merged_through_state, run_sql, run_sql_err};
    use datafusion::arrow::array::Float64Array;

    fn accumulate(values: Vec<Option<f64>>) -> MinMaxStatsAccumulator {
        let mut acc = MinMaxStatsAccumulator::default();
        acc.update_batch(&[Arc::new(Float64Array::from(values)) as ArrayRef])
            .unwrap();
        acc
    }

    fn result(acc: &mut MinMaxStatsAccumulator) -> String {
        acc.evaluate().unwrap().to_string()
    }

    #[test]
    fn skips_and_counts_nulls_and_non_finite() {
        let mut acc = accumulate(vec![
            Some(3.0),
            None,
            Some(f64::NAN),
            Some(-1.5),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(8.0),
        ]);
        assert_eq!(
            result(&mut acc),
            "{count:3,nulls:1,non_finite:3,min:-1.5,max:8.0}"
        );
    }

    #[test]
    fn nothing_counted_gives_null_min_and_max() {
        let mut acc = accumulate(vec![None, Some(f64::NAN)]);
        assert_eq!(result(&mut acc), "{count:0,nulls:1,non_finite:1,min:,max:}");
        assert_eq!(
            result(&mut MinMaxStatsAccumulator::default()),
            "{count:0,nulls:0,non_finite:0,min:,max:}"
        );
    }

    #[test]
    fn merges_partial_states_and_empty_states() {
        let mut a = accumulate(vec![Some(2.0), None]);
        let mut b = accumulate(vec![Some(-4.0), Some(f64::NAN), Some(1.0)]);
        let mut empty = MinMaxStatsAccumulator::default();
        let expected = "{count:3,nulls:1,non_finite:1,min:-4.0,max:2.0}";
        let mut merged = merged_through_state(
            MinMaxStatsAccumulator::default(),
            [&mut a, &mut empty, &mut b],
        );
        assert_eq!(result(&mut merged), expected);
        // Merging an empty state changes nothing; one state alone round-trips.
        let mut alone = merged_through_state(MinMaxStatsAccumulator::default(), [&mut a]);
        assert_eq!(
            result(&mut alone),
            "{count:1,nulls:1,non_finite:0,min:2.0,max:2.0}"
        );
        let mut nothing = merged_through_state(MinMaxStatsAccumulator::default(), [&mut empty]);
        assert_eq!(
            result(&mut nothing),
            "{count:0,nulls:0,non_finite:0,min:,max:}"
        );
    }

    #[tokio::test]
    async fn sql_over_values_groups_empty_and_one_row() {
        let rows =
            run_sql("SELECT min_max_stats(x) AS s FROM (VALUES (3), (-1), (NULL), (8)) t(x)").await;
        assert_eq!(
            rows,
            ["{count: 3, nulls: 1, non_finite: 0, min: -1.0, max: 8.0}"]
        );

        let rows =
            run_sql("SELECT g, min_max_stats(x) AS s FROM parts GROUP BY g ORDER BY g").await;
        assert_eq!(
            rows,
            [
                "a|{count: 3, nulls: 1, non_finite: 1, min: 1.0, max: 5.0}",
                "b|{count: 2, nulls: 0, non_finite: 1, min: -2.5, max: 10.0}",
            ]
        );

        let rows = run_sql("SELECT min_max_stats(x) FROM parts WHERE false").await;
        assert_eq!(rows, ["{count: 0, nulls: 0, non_finite: 0, min: , max: }"]);
        let rows =
            run_sql("SELECT min_max_stats(x) FROM (VALUES (CAST(2.5 AS DECIMAL(4, 1)))) t(x)")
                .await;
        assert_eq!(
            rows,
            ["{count: 1, nulls: 0, non_finite: 0, min: 2.5, max: 2.5}"]
        );
        let rows = run_sql("SELECT min_max_stats(x) FROM parts").await;
        assert_eq!(
            rows,
            ["{count: 5, nulls: 1, non_finite: 2, min: -2.5, max: 10.0}"]
        );
        let rows = run_sql("SELECT min_max_stats(x) FROM parts WHERE x = 10").await;
        assert_eq!(
            rows,
            ["{count: 1, nulls: 0, non_finite: 0, min: 10.0, max: 10.0}"]
        );
    }

    #[tokio::test]
    async fn sql_rejects_non_numeric_input() {
        let err = run_sql_err("SELECT min_max_stats(s) FROM (VALUES ('a')) t(s)").await;
        assert!(
            err.contains("min_max_stats: x must be numeric, got Utf8"),
            "{err}"
        );
        let err = run_sql_err("SELECT min_max_stats(1, 2)").await;
        assert!(err.contains("min_max_stats expects 1 argument"), "{err}");
    }
}
