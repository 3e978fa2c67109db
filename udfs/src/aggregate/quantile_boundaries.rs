//! `quantile_boundaries(x, n)`: the boundaries that split a numeric column
//! into `n` buckets of (nearly) equal counts.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, Float64Array};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use super::counts::CountsState;
use super::state::{list_scalar, positive_literal};
use super::{coerce_integer_literal, coerce_numeric};
use crate::kernel::stats::Finite;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The boundaries of n quantile buckets of a numeric column, exactly (no sketch): with \
         the N finite values sorted as v_1 ≤ … ≤ v_N, boundary i is v_(⌊i·N/n⌋+1) for \
         i = 1 … n−1, with repeated boundaries dropped (so heavily repeated values give fewer \
         buckets). Returns a list of DOUBLE in ascending order; bucket j holds the values \
         between boundaries j−1 (inclusive) and j (exclusive). NULLs and non-finite values \
         (NaN, +inf, -inf) are skipped; the list is empty, not NULL, when no finite value \
         remains.",
        "quantile_boundaries(x, n)",
    )
    .with_argument(
        "x",
        "A numeric expression (any integer, float or decimal type, computed as DOUBLE).",
    )
    .with_argument("n", "The number of buckets: a positive integer literal.")
    .with_sql_example(
        "```sql
> SELECT quantile_boundaries(x, 3) AS b3, quantile_boundaries(x, 2) AS b2
  FROM (VALUES (1), (2), (3), (4), (5), (NULL)) t(x);
+------------+-------+
| b3         | b2    |
+------------+-------+
| [2.0, 4.0] | [3.0] |
+------------+-------+
```",
    )
    .build()
});

/// `quantile_boundaries(x, n)` → List<Float64>.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct QuantileBoundaries {
    signature: Signature,
}

impl Default for QuantileBoundaries {
    fn default() -> Self {
        Self::new()
    }
}

impl QuantileBoundaries {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for QuantileBoundaries {
    fn name(&self) -> &str {
        "quantile_boundaries"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [x, n] = arg_types else {
            return plan_err!(
                "quantile_boundaries expects 2 arguments (x, n), got {}",
                arg_types.len()
            );
        };
        Ok(vec![
            coerce_numeric(self.name(), "x", x)?,
            coerce_integer_literal(self.name(), "n", n)?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::new_list(DataType::Float64, true))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(CountsState::<Finite>::fields(args.name))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let Some(buckets) = positive_literal(&args, self.name(), 1, "n")? else {
            return plan_err!("quantile_boundaries: n is missing");
        };
        Ok(Box::new(QuantileBoundariesAccumulator::new(buckets)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// Counts every finite value exactly; the boundaries are read from the
/// sorted counts when evaluating.
#[derive(Debug)]
struct QuantileBoundariesAccumulator {
    counts: CountsState<Finite>,
    buckets: u64,
}

impl QuantileBoundariesAccumulator {
    fn new(buckets: u64) -> Self {
        Self {
            counts: CountsState::default(),
            buckets,
        }
    }
}

impl Accumulator for QuantileBoundariesAccumulator {
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
        let boundaries = self
            .counts
            .counts
            .sorted()
            .quantile_boundaries(self.buckets);
        Ok(list_scalar(Arc::new(Float64Array::from(boundaries))))
    }

    fn size(&self) -> usize {
        size_of_val(self) - size_of_val(&self.counts) + self.counts.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::test_util::{merged_through_state, run_sql, run_sql_err};

    fn accumulate(values: &[Option<f64>], buckets: u64) -> QuantileBoundariesAccumulator {
        let mut acc = QuantileBoundariesAccumulator::new(buckets);
        acc.update_batch(&[Arc::new(Float64Array::from(values.to_vec())) as ArrayRef])
            .unwrap();
        acc
    }

    fn result(acc: &mut QuantileBoundariesAccumulator) -> String {
        acc.evaluate().unwrap().to_string()
    }

    #[test]
    fn issue_examples() {
        let mut acc = accumulate(&[5.0, 1.0, 4.0, 2.0, 3.0].map(Some), 3);
        assert_eq!(result(&mut acc), "[2.0, 4.0]");
        let mut acc = accumulate(&[1.0, 2.0, 3.0, 4.0].map(Some), 2);
        assert_eq!(result(&mut acc), "[3.0]");
    }

    #[test]
    fn skips_counts_and_repeats() {
        let mut acc = accumulate(
            &[
                Some(1.0),
                Some(f64::NAN),
                None,
                Some(1.0),
                Some(f64::INFINITY),
                Some(1.0),
                Some(1.0),
                Some(2.0),
            ],
            4,
        );
        // N = 5, n = 4: indices ⌊5/4⌋, ⌊10/4⌋, ⌊15/4⌋ = 1, 2, 3 → 1, 1, 1.
        assert_eq!(result(&mut acc), "[1.0]");
        let skipped = acc.counts.counts.skipped;
        assert_eq!((skipped.nulls, skipped.non_finite), (1, 2));
        assert_eq!(result(&mut accumulate(&[None], 4)), "[]");
        // More buckets than values: every value is a boundary once.
        assert_eq!(
            result(&mut accumulate(&[3.0, -1.0].map(Some), 10)),
            "[-1.0, 3.0]"
        );
    }

    #[test]
    fn merged_states_give_the_same_boundaries() {
        let values: Vec<Option<f64>> = (0..100).map(|i| Some(f64::from((i * 37) % 100))).collect();
        let mut whole = accumulate(&values, 4);
        let mut a = accumulate(&values[..30], 4);
        let mut b = accumulate(&values[30..], 4);
        let mut empty = QuantileBoundariesAccumulator::new(4);
        let mut merged = merged_through_state(
            QuantileBoundariesAccumulator::new(4),
            [&mut b, &mut empty, &mut a],
        );
        // 0..99 once each: ⌊25⌋, ⌊50⌋, ⌊75⌋ → 25, 50, 75.
        assert_eq!(result(&mut whole), "[25.0, 50.0, 75.0]");
        assert_eq!(result(&mut merged), "[25.0, 50.0, 75.0]");
        let mut nothing = merged_through_state(QuantileBoundariesAccumulator::new(4), [&mut empty]);
        assert_eq!(result(&mut nothing), "[]");
    }

    #[tokio::test]
    async fn sql_over_values_groups_empty_and_one_row() {
        let rows = run_sql(
            "SELECT quantile_boundaries(x, 3), quantile_boundaries(x, 2) \
             FROM (VALUES (1), (2), (3), (4), (5)) t(x)",
        )
        .await;
        assert_eq!(rows, ["[2.0, 4.0]|[3.0]"]);
        let rows =
            run_sql("SELECT quantile_boundaries(x, 2) FROM (VALUES (1), (2), (3), (4)) t(x)").await;
        assert_eq!(rows, ["[3.0]"]);
        // a: 1, 3, 5 (finite); b: -2.5, 10.
        let rows =
            run_sql("SELECT g, quantile_boundaries(x, 3) FROM parts GROUP BY g ORDER BY g").await;
        assert_eq!(rows, ["a|[3.0, 5.0]", "b|[-2.5, 10.0]"]);
        let rows = run_sql("SELECT quantile_boundaries(x, 4) FROM parts WHERE false").await;
        assert_eq!(rows, ["[]"]);
        let rows = run_sql("SELECT quantile_boundaries(x, 4) FROM parts WHERE x = 10").await;
        assert_eq!(rows, ["[10.0]"]);
        let rows = run_sql("SELECT quantile_boundaries(i, 2) FROM parts").await;
        assert_eq!(rows, ["[5.0]"]);
    }

    #[tokio::test]
    async fn sql_rejects_bad_types_and_literals() {
        for (sql, message) in [
            (
                "quantile_boundaries(s, 2)",
                "quantile_boundaries: x must be numeric, got Utf8",
            ),
            (
                "quantile_boundaries(x, -1)",
                "quantile_boundaries: n must be a positive integer literal, got -1",
            ),
            (
                "quantile_boundaries(x, i)",
                "quantile_boundaries: n must be a positive integer literal, got the expression i",
            ),
            (
                "quantile_boundaries(x)",
                "quantile_boundaries expects 2 arguments (x, n), got 1",
            ),
        ] {
            let err = run_sql_err(&format!("SELECT {sql} FROM parts")).await;
            assert!(err.contains(message), "{sql}: {err}");
        }
    }
}
