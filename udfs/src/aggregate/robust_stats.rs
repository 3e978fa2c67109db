//! `robust_stats(x)`: count, skipped values, median and quartiles.

use std::sync::LazyLock;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, FieldRef, Fields};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use super::coerce_numeric;
use super::counts::CountsState;
use super::state::{summary_fields, summary_scalar};
use crate::kernel::stats::Finite;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Counts the values of a numeric column and computes, exactly (no sketch), their \
         median and first and third quartiles: the statistics of robust scaling. `median` \
         is numpy.median's (the mean of the two middle values for an even count); `q25` and \
         `q75` are numpy.percentile's with linear interpolation. NULLs and non-finite values \
         (NaN, +inf, -inf) are skipped and counted in `nulls` and `non_finite`; `median`, \
         `q25` and `q75` are NULL when no finite value remains. Returns a struct \
         {count, nulls, non_finite, median, q25, q75}.",
        "robust_stats(x)",
    )
    .with_argument(
        "x",
        "A numeric expression (any integer, float or decimal type, computed as DOUBLE).",
    )
    .with_sql_example(
        "```sql
> SELECT robust_stats(x) AS r FROM (VALUES (1), (2), (3), (4), ('inf'::DOUBLE)) t(x);
+------------------------------------------------------------------------+
| r                                                                      |
+------------------------------------------------------------------------+
| {count: 4, nulls: 0, non_finite: 1, median: 2.5, q25: 1.75, q75: 3.25} |
+------------------------------------------------------------------------+
```",
    )
    .build()
});

/// `robust_stats(x)` → Struct{count, nulls, non_finite, median, q25, q75}.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RobustStats {
    signature: Signature,
}

impl Default for RobustStats {
    fn default() -> Self {
        Self::new()
    }
}

impl RobustStats {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The fields of the result struct.
fn result_fields() -> Fields {
    summary_fields(&["median", "q25", "q75"])
}

impl AggregateUDFImpl for RobustStats {
    fn name(&self) -> &str {
        "robust_stats"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [x] = arg_types else {
            return plan_err!(
                "robust_stats expects 1 argument (x), got {}",
                arg_types.len()
            );
        };
        Ok(vec![coerce_numeric(self.name(), "x", x)?])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(result_fields()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(CountsState::<Finite>::fields(args.name))
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(RobustStatsAccumulator::default()))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// Counts every finite value exactly; the order statistics are read from
/// the sorted counts when evaluating.
#[derive(Debug, Default)]
struct RobustStatsAccumulator {
    counts: CountsState<Finite>,
}

impl Accumulator for RobustStatsAccumulator {
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
        let sorted = self.counts.counts.sorted();
        let statistics = [
            sorted.median(),
            sorted.percentile(0.25),
            sorted.percentile(0.75),
        ];
        let skipped = &self.counts.counts.skipped;
        summary_scalar(&result_fields(), sorted.len(), skipped, &statistics)
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
    use datafusion::arrow::array::Float64Array;

    fn accumulate(values: &[Option<f64>]) -> RobustStatsAccumulator {
        let mut acc = RobustStatsAccumulator::default();
        acc.update_batch(&[Arc::new(Float64Array::from(values.to_vec())) as ArrayRef])
            .unwrap();
        acc
    }

    fn result(acc: &mut RobustStatsAccumulator) -> String {
        acc.evaluate().unwrap().to_string()
    }

    #[test]
    fn issue_example_and_numpy_values() {
        let mut acc = accumulate(&[4.0, 1.0, 3.0, 2.0].map(Some));
        assert_eq!(
            result(&mut acc),
            "{count:4,nulls:0,non_finite:0,median:2.5,q25:1.75,q75:3.25}"
        );
        // numpy.percentile([-3, -3, -3, 1, 5, 10, 0.1], [25, 50, 75]) → -3, 0.1, 3
        let mut acc = accumulate(&[-3.0, -3.0, -3.0, 1.0, 5.0, 10.0, 0.1].map(Some));
        assert_eq!(
            result(&mut acc),
            "{count:7,nulls:0,non_finite:0,median:0.1,q25:-3.0,q75:3.0}"
        );
    }

    #[test]
    fn skips_counts_and_empty_inputs() {
        let mut acc = accumulate(&[
            Some(f64::NAN),
            Some(7.0),
            None,
            Some(f64::NEG_INFINITY),
            None,
        ]);
        assert_eq!(
            result(&mut acc),
            "{count:1,nulls:2,non_finite:2,median:7.0,q25:7.0,q75:7.0}"
        );
        assert_eq!(
            result(&mut accumulate(&[None, Some(f64::NAN)])),
            "{count:0,nulls:1,non_finite:1,median:,q25:,q75:}"
        );
    }

    #[test]
    fn merged_states_give_the_same_statistics() {
        let values: Vec<Option<f64>> = (0..=20)
            .map(|i| (i % 7 != 3).then(|| f64::from(i * i % 11) - 2.5))
            .collect();
        let mut whole = accumulate(&values);
        let mut a = accumulate(&values[..5]);
        let mut b = accumulate(&values[5..]);
        let mut empty = RobustStatsAccumulator::default();
        let mut merged = merged_through_state(
            RobustStatsAccumulator::default(),
            [&mut empty, &mut b, &mut a],
        );
        assert_eq!(result(&mut merged), result(&mut whole));
        let mut nothing = merged_through_state(RobustStatsAccumulator::default(), [&mut empty]);
        assert_eq!(
            result(&mut nothing),
            "{count:0,nulls:0,non_finite:0,median:,q25:,q75:}"
        );
    }

    #[tokio::test]
    async fn sql_over_values_groups_empty_and_one_row() {
        let rows = run_sql("SELECT robust_stats(x) FROM (VALUES (1), (2), (3), (4)) t(x)").await;
        assert_eq!(
            rows,
            ["{count: 4, nulls: 0, non_finite: 0, median: 2.5, q25: 1.75, q75: 3.25}"]
        );
        // a: 1, NULL, NaN, 5, 3; b: -2.5, 10, +inf.
        // numpy.percentile([1, 3, 5], [25, 50, 75]) → 2, 3, 4;
        // numpy.percentile([-2.5, 10], [25, 50, 75]) → 0.625, 3.75, 6.875.
        let rows = run_sql("SELECT g, robust_stats(x) FROM parts GROUP BY g ORDER BY g").await;
        assert_eq!(
            rows,
            [
                "a|{count: 3, nulls: 1, non_finite: 1, median: 3.0, q25: 2.0, q75: 4.0}",
                "b|{count: 2, nulls: 0, non_finite: 1, median: 3.75, q25: 0.625, q75: 6.875}",
            ]
        );
        let rows = run_sql("SELECT robust_stats(x) FROM parts WHERE false").await;
        assert_eq!(
            rows,
            ["{count: 0, nulls: 0, non_finite: 0, median: , q25: , q75: }"]
        );
        let rows = run_sql("SELECT robust_stats(i) FROM parts WHERE x = 10").await;
        assert_eq!(
            rows,
            ["{count: 1, nulls: 0, non_finite: 0, median: 7.0, q25: 7.0, q75: 7.0}"]
        );
    }

    #[tokio::test]
    async fn sql_rejects_non_numeric_input() {
        let err = run_sql_err("SELECT robust_stats(s) FROM parts").await;
        assert!(
            err.contains("robust_stats: x must be numeric, got Utf8"),
            "{err}"
        );
    }
}
