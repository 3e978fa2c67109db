//! `exact_count`, `exact_sum`, `exact_mean`, `exact_min`, `exact_max`,
//! `exact_var`, `exact_stddev`: plain aggregates with the window functions'
//! semantics, for tumbling tables:
//!
//! ```sql
//! SELECT origin, date_bin(INTERVAL '1 hour', sched_dep) AS hour, exact_mean(dep_delay) …
//! GROUP BY origin, date_bin(INTERVAL '1 hour', sched_dep)
//! ```
//!
//! A bucket's values equal those of the `'hopping'` window functions for the
//! same bucket (`window_mean(v, ts, INTERVAL '1 hour', INTERVAL '1 hour',
//! 'hopping')` at any t of the next hour): the same skipping (NULL and
//! non-finite values), the same exact sums and the same finalization
//! ([`Agg::of_moments`]). DataFusion's `sum`/`avg`/`var_pop` depend on the
//! order of the values; these do not.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::cast::{as_float64_array, as_uint64_array};
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use super::coerce_numeric;
use super::moments::{partials_scalar, sum_at};
use super::state::{f64_field, list_field, u64_field};
use crate::kernel::stats;
use crate::kernel::window::{Agg, WindowValue};

/// Every `exact_*` aggregate: the window aggregates but `last` (which needs
/// a time) and `distinct_count`, in the window functions' order.
pub fn functions() -> Vec<Arc<AggregateUDF>> {
    Agg::ALL
        .into_iter()
        .filter(|agg| !matches!(agg, Agg::Last | Agg::DistinctCount))
        .map(|agg| Arc::new(AggregateUDF::from(ExactAggregate::new(agg))))
        .collect()
}

/// `exact_AGG(x)`.
#[derive(Debug)]
pub struct ExactAggregate {
    agg: Agg,
    name: String,
    signature: Signature,
    doc: Documentation,
}

impl PartialEq for ExactAggregate {
    fn eq(&self, other: &Self) -> bool {
        self.agg == other.agg
    }
}
impl Eq for ExactAggregate {}
impl std::hash::Hash for ExactAggregate {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.agg.hash(state);
    }
}

impl ExactAggregate {
    pub fn new(agg: Agg) -> Self {
        let name = agg.name().replacen("window_", "exact_", 1);
        let doc = documentation(agg, &name);
        Self {
            agg,
            name,
            signature: Signature::user_defined(Volatility::Immutable),
            doc,
        }
    }
}

impl AggregateUDFImpl for ExactAggregate {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [x] = arg_types else {
            return plan_err!(
                "{} takes (x), got {} argument(s)",
                self.name,
                arg_types.len()
            );
        };
        Ok(vec![coerce_numeric(&self.name, "x", x)?])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(if self.agg == Agg::Count {
            DataType::Int64
        } else {
            DataType::Float64
        })
    }

    fn is_nullable(&self) -> bool {
        self.agg != Agg::Count
    }

    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        match self.agg {
            Agg::Count => Ok(ScalarValue::Int64(Some(0))),
            _ => ScalarValue::try_from(data_type),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            u64_field(args.name, "count"),
            // The exact sums as their partials (see `ExactSum::partials`).
            list_field(args.name, "sum", DataType::Float64),
            list_field(args.name, "sum_squares", DataType::Float64),
            f64_field(args.name, "min"),
            f64_field(args.name, "max"),
        ])
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ExactAccumulator {
            agg: self.agg,
            moments: stats::Moments::default(),
            min_max: stats::MinMax::default(),
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&self.doc)
    }
}

/// Count and exact sums of the finite values, or their min/max (only the
/// half the aggregate needs is kept).
#[derive(Debug)]
struct ExactAccumulator {
    agg: Agg,
    moments: stats::Moments,
    min_max: stats::MinMax,
}

impl ExactAccumulator {
    fn is_min_max(&self) -> bool {
        matches!(self.agg, Agg::Min | Agg::Max)
    }
}

impl Accumulator for ExactAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = as_float64_array(&values[0])?;
        let min_max = self.is_min_max();
        for v in values.iter() {
            if min_max {
                self.min_max.update(v);
            } else {
                self.moments.update(v);
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [count, sum, sum_squares, min, max] = states else {
            return internal_err!("{}: expected 5 state columns", self.agg.name());
        };
        let counts = as_uint64_array(count)?;
        let (mins, maxes) = (as_float64_array(min)?, as_float64_array(max)?);
        for row in 0..counts.len() {
            let n = if counts.is_null(row) {
                0
            } else {
                counts.value(row)
            };
            if self.is_min_max() {
                self.min_max.merge(&stats::MinMax {
                    count: n,
                    min: mins.value(row),
                    max: maxes.value(row),
                    skipped: stats::Skipped::default(),
                });
            } else {
                self.moments.merge(&stats::Moments {
                    count: n,
                    sum: sum_at(sum, row)?,
                    sum_squares: sum_at(sum_squares, row)?,
                    skipped: stats::Skipped::default(),
                });
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let count = if self.is_min_max() {
            self.min_max.count
        } else {
            self.moments.count
        };
        Ok(vec![
            ScalarValue::UInt64(Some(count)),
            partials_scalar(&self.moments.sum),
            partials_scalar(&self.moments.sum_squares),
            ScalarValue::Float64(Some(self.min_max.min)),
            ScalarValue::Float64(Some(self.min_max.max)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let m = &self.min_max;
        let result = match self.agg {
            Agg::Min => WindowValue::Value((m.count > 0).then_some(m.min)),
            Agg::Max => WindowValue::Value((m.count > 0).then_some(m.max)),
            agg => agg.of_moments(&self.moments),
        };
        Ok(match result {
            WindowValue::Count(n) => ScalarValue::Int64(Some(n)),
            WindowValue::Value(v) => ScalarValue::Float64(v),
        })
    }

    fn size(&self) -> usize {
        let partials =
            self.moments.sum.partials().len() + self.moments.sum_squares.partials().len();
        size_of_val(self) + partials * size_of::<f64>()
    }
}

fn documentation(agg: Agg, name: &str) -> Documentation {
    let what = match agg {
        Agg::Count => "the number of finite values",
        Agg::Sum => "the sum of the finite values, rounded once from the exact sum",
        Agg::Mean => "the mean of the finite values, from the exact sum",
        Agg::Min => "the smallest finite value",
        Agg::Max => "the largest finite value",
        Agg::Var => "the population variance (divisor n), rounded once from exact sums",
        Agg::Stddev => "the population standard deviation: the square root of exact_var",
        _ => "",
    };
    let empty = if agg == Agg::Count { "0" } else { "NULL" };
    Documentation::builder(
        crate::DOC_SECTION,
        format!(
            "An aggregate with the semantics of the window functions, for tumbling tables \
             (GROUP BY entity, date_bin(…)): {what}. NULL and non-finite values are skipped; no \
             value gives {empty}. The result does not depend on the order of the rows or the \
             partitioning, and equals the 'hopping' window function's over the same bucket."
        ),
        format!("{name}(x)"),
    )
    .with_argument("x", "A numeric expression (computed as DOUBLE).")
    .with_sql_example(example(agg, name))
    .build()
}

/// The documented example with its result: group a holds 1.0, 2.0 and a
/// NaN (skipped), group b only a NULL.
fn example(agg: Agg, name: &str) -> String {
    let (a, b) = match agg {
        Agg::Count => ("2", "0"),
        Agg::Sum => ("3.0", ""),
        Agg::Mean => ("1.5", ""),
        Agg::Min => ("1.0", ""),
        Agg::Max => ("2.0", ""),
        Agg::Var => ("0.25", ""),
        _ => ("0.5", ""),
    };
    let header = format!("{name}(t.x)");
    let width = header.len();
    let line = format!("+---+-{}-+", "-".repeat(width));
    format!(
        "```sql
> SELECT g, {name}(x) FROM (VALUES ('a', 1.0), ('a', 2.0), ('a', 'NaN'), ('b', NULL)) t(g, x)
  GROUP BY g ORDER BY g;
{line}
| g | {header} |
{line}
| a | {a:width$} |
| b | {b:width$} |
{line}
```"
    )
}

#[cfg(test)]
mod tests {
    use crate::aggregate::test_util::run_sql;

    #[tokio::test]
    async fn buckets_skip_and_merge_exactly() {
        // `parts` (test_util): partition-split groups; x of a: 1, NULL, NaN,
        // 5, 3; of b: -2.5, 10, +inf.
        let out = run_sql(
            "SELECT g, exact_count(x), exact_sum(x), exact_mean(x), exact_min(x), \
             exact_max(x), exact_var(x), exact_stddev(x) FROM parts GROUP BY g ORDER BY g",
        )
        .await;
        // a: {1, 5, 3}: mean 3, var (4 + 4 + 0)/3 = 8/3; b: {-2.5, 10}: mean
        // 3.75, var 6.25² = 39.0625.
        assert_eq!(
            out,
            [
                "a|3|9.0|3.0|1.0|5.0|2.6666666666666665|1.632993161855452",
                "b|2|7.5|3.75|-2.5|10.0|39.0625|6.25"
            ]
        );
        let out = run_sql("SELECT exact_count(x), exact_mean(x) FROM parts WHERE false").await;
        assert_eq!(out, ["0|"]);
        assert_eq!((8.0f64 / 3.0).sqrt(), 1.632993161855452);
    }
}
