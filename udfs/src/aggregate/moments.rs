//! `moments(x)`: count, skipped values, mean, standard deviation and its
//! inverse, from exact sums.

use std::sync::LazyLock;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array};
use datafusion::arrow::datatypes::{DataType, FieldRef, Fields};
use datafusion::common::cast::{as_float64_array, as_list_array, as_uint64_array};
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use super::coerce_numeric;
use super::state::{
    list_field, list_scalar, merge_skipped, skipped_fields, skipped_state, summary_fields,
    summary_scalar, u64_field,
};
use crate::kernel::exact::ExactSum;
use crate::kernel::stats;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Counts the values of a numeric column and computes their mean, population standard \
         deviation (divisor n) and 1/stddev: the statistics of z-score scaling. Sums are kept \
         exactly, so the results do not depend on how the data is partitioned or ordered; \
         each is rounded once. `inv_stddev` is +inf when all values are equal. NULLs and \
         non-finite values (NaN, +inf, -inf) are skipped and counted in `nulls` and \
         `non_finite`; `mean`, `stddev` and `inv_stddev` are NULL when no finite value remains.",
        "moments(x)",
    )
    .with_argument(
        "x",
        "A numeric expression (any integer, float or decimal type, computed as DOUBLE).",
    )
    .with_sql_example(
        "```sql
> SELECT moments(x) AS m FROM (VALUES (1), (2), (3), (4), (5), (NULL)) t(x);
+------------------------------------------------------------------------------------------------------------+
| m                                                                                                          |
+------------------------------------------------------------------------------------------------------------+
| {count: 5, nulls: 1, non_finite: 0, mean: 3.0, stddev: 1.4142135623730951, inv_stddev: 0.7071067811865476} |
+------------------------------------------------------------------------------------------------------------+
```",
    )
    .build()
});

/// `moments(x)` → Struct{count, nulls, non_finite, mean, stddev, inv_stddev}.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Moments {
    signature: Signature,
}

impl Default for Moments {
    fn default() -> Self {
        Self::new()
    }
}

impl Moments {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The fields of the result struct.
fn result_fields() -> Fields {
    summary_fields(&["mean", "stddev", "inv_stddev"])
}

impl AggregateUDFImpl for Moments {
    fn name(&self) -> &str {
        "moments"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [x] = arg_types else {
            return plan_err!("moments expects 1 argument (x), got {}", arg_types.len());
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
            // The exact sums as their partials (see `ExactSum::partials`).
            list_field(args.name, "sum", DataType::Float64),
            list_field(args.name, "sum_squares", DataType::Float64),
        ])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(MomentsAccumulator::default()))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// Drives a [`stats::Moments`] over Float64 arrays.
#[derive(Debug, Default)]
struct MomentsAccumulator {
    stats: stats::Moments,
}

/// The partials of an exact sum as one state row.
pub(crate) fn partials_scalar(sum: &ExactSum) -> ScalarValue {
    list_scalar(std::sync::Arc::new(Float64Array::from(
        sum.partials().to_vec(),
    )))
}

/// The exact sum held by row `row` of a `List<Float64>` state column.
pub(crate) fn sum_at(column: &ArrayRef, row: usize) -> Result<ExactSum> {
    let list = as_list_array(column)?;
    if list.is_null(row) {
        return Ok(ExactSum::default());
    }
    let partials = list.value(row);
    let partials = as_float64_array(&partials)?;
    // Partials are finite unless a sum overflowed f64; those pass through so
    // that a split input gives what one accumulator would.
    if partials.null_count() > 0 {
        return internal_err!("moments: NULL in a partial sum {partials:?}");
    }
    Ok(ExactSum::from_partials(partials.values().iter().copied()))
}

impl Accumulator for MomentsAccumulator {
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
        let [count, nulls, non_finite, sum, sum_squares] = states else {
            return internal_err!("moments: expected 5 state columns, got {}", states.len());
        };
        let counts = as_uint64_array(count)?;
        for row in 0..counts.len() {
            let other = stats::Moments {
                count: if counts.is_null(row) {
                    0
                } else {
                    counts.value(row)
                },
                sum: sum_at(sum, row)?,
                sum_squares: sum_at(sum_squares, row)?,
                skipped: stats::Skipped::default(),
            };
            self.stats.merge(&other);
        }
        merge_skipped(&mut self.stats.skipped, nulls, non_finite)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let [nulls, non_finite] = skipped_state(&self.stats.skipped);
        Ok(vec![
            ScalarValue::UInt64(Some(self.stats.count)),
            nulls,
            non_finite,
            partials_scalar(&self.stats.sum),
            partials_scalar(&self.stats.sum_squares),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let s = &self.stats;
        let statistics = [s.mean(), s.stddev(), s.inv_stddev()];
        summary_scalar(&result_fields(), s.count, &s.skipped, &statistics)
    }

    fn size(&self) -> usize {
        let partials = self.stats.sum.partials().len() + self.stats.sum_squares.partials().len();
        size_of_val(self) + partials * size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::aggregate::test_util::{merged_through_state, run_sql, run_sql_err};

    fn accumulate(values: &[Option<f64>]) -> MomentsAccumulator {
        let mut acc = MomentsAccumulator::default();
        acc.update_batch(&[Arc::new(Float64Array::from(values.to_vec())) as ArrayRef])
            .unwrap();
        acc
    }

    fn result(acc: &mut MomentsAccumulator) -> String {
        acc.evaluate().unwrap().to_string()
    }

    #[test]
    fn issue_examples() {
        let mut acc = accumulate(&[1.0, 2.0, 3.0, 4.0, 5.0].map(Some));
        assert_eq!(
            result(&mut acc),
            "{count:5,nulls:0,non_finite:0,mean:3.0,stddev:1.4142135623730951,\
             inv_stddev:0.7071067811865476}"
        );
        let mut acc = accumulate(&[1.0, 1.0, 2.0, 2.0].map(Some));
        assert_eq!(
            result(&mut acc),
            "{count:4,nulls:0,non_finite:0,mean:1.5,stddev:0.5,inv_stddev:2.0}"
        );
    }

    #[test]
    fn skips_counts_and_constant_and_empty_inputs() {
        let mut acc = accumulate(&[
            Some(7.5),
            None,
            Some(f64::NAN),
            Some(f64::NEG_INFINITY),
            Some(7.5),
        ]);
        assert_eq!(
            result(&mut acc),
            "{count:2,nulls:1,non_finite:2,mean:7.5,stddev:0.0,inv_stddev:inf}"
        );
        let mut acc = accumulate(&[None, Some(f64::INFINITY)]);
        assert_eq!(
            result(&mut acc),
            "{count:0,nulls:1,non_finite:1,mean:,stddev:,inv_stddev:}"
        );
    }

    #[test]
    fn merge_is_exact_whatever_the_split() {
        // Values whose naive sums lose digits; split and merged in any order,
        // the results equal those of one accumulator, bit for bit.
        let values: Vec<Option<f64>> = (0..300)
            .map(|i| Some((f64::from(i) * 0.37).sin() * 1e3 + 1e9))
            .collect();
        let mut whole = accumulate(&values);
        let mut a = accumulate(&values[200..]);
        let mut b = accumulate(&values[..50]);
        let mut c = accumulate(&values[50..200]);
        let mut empty = MomentsAccumulator::default();
        let mut merged = merged_through_state(
            MomentsAccumulator::default(),
            [&mut a, &mut empty, &mut c, &mut b],
        );
        assert_eq!(result(&mut merged), result(&mut whole));
        // A state merged alone into a fresh accumulator gives the same result.
        let mut again = merged_through_state(MomentsAccumulator::default(), [&mut whole]);
        assert_eq!(result(&mut again), result(&mut whole));
        let mut nothing = merged_through_state(MomentsAccumulator::default(), [&mut empty]);
        assert_eq!(
            result(&mut nothing),
            "{count:0,nulls:0,non_finite:0,mean:,stddev:,inv_stddev:}"
        );
    }

    #[test]
    fn overflowing_sums_merge_like_one_accumulator() {
        let values = [1e200, -3e200, 1e300].map(Some);
        let mut whole = accumulate(&values);
        let mut a = accumulate(&values[..1]);
        let mut b = accumulate(&values[1..]);
        let mut merged = merged_through_state(MomentsAccumulator::default(), [&mut a, &mut b]);
        assert_eq!(result(&mut merged), result(&mut whole));
    }

    #[test]
    fn size_counts_the_partials() {
        let small = accumulate(&[Some(1.0)]);
        let big = accumulate(&[1e300, 1.0, 1e-300, 3.0].map(Some));
        assert!(big.size() > small.size());
    }

    #[tokio::test]
    async fn sql_over_values_groups_empty_and_one_row() {
        let rows = run_sql("SELECT moments(x) FROM (VALUES (1), (2), (3), (4), (5)) t(x)").await;
        assert_eq!(
            rows,
            [
                "{count: 5, nulls: 0, non_finite: 0, mean: 3.0, stddev: 1.4142135623730951, \
              inv_stddev: 0.7071067811865476}"
            ]
        );
        let rows = run_sql(
            "SELECT moments(x)['mean'], moments(x)['stddev'] FROM (VALUES (1), (1), (2), (2)) t(x)",
        )
        .await;
        assert_eq!(rows, ["1.5|0.5"]);
        // a: 1, NULL, NaN, 5, 3; b: -2.5, 10, +inf.
        // numpy.std([1, 5, 3]) = 1.632993161855452; sqrt(3/8) = 0.612372435695794524…
        let rows = run_sql("SELECT g, moments(x) FROM parts GROUP BY g ORDER BY g").await;
        assert_eq!(
            rows,
            [
                "a|{count: 3, nulls: 1, non_finite: 1, mean: 3.0, stddev: 1.632993161855452, \
                 inv_stddev: 0.6123724356957945}",
                "b|{count: 2, nulls: 0, non_finite: 1, mean: 3.75, stddev: 6.25, inv_stddev: 0.16}",
            ]
        );
        let rows = run_sql("SELECT moments(x) FROM parts WHERE false").await;
        assert_eq!(
            rows,
            ["{count: 0, nulls: 0, non_finite: 0, mean: , stddev: , inv_stddev: }"]
        );
        let rows = run_sql("SELECT moments(x) FROM parts WHERE x = 10").await;
        assert_eq!(
            rows,
            ["{count: 1, nulls: 0, non_finite: 0, mean: 10.0, stddev: 0.0, inv_stddev: inf}"]
        );
    }

    #[tokio::test]
    async fn sql_rejects_non_numeric_input() {
        let err = run_sql_err("SELECT moments(s) FROM parts").await;
        assert!(
            err.contains("moments: x must be numeric, got Utf8"),
            "{err}"
        );
        let err = run_sql_err("SELECT moments(true)").await;
        assert!(
            err.contains("moments: x must be numeric, got Boolean"),
            "{err}"
        );
    }
}
