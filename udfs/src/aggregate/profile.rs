//! `numeric_profile(x, bins)` and `profile_slots(x, edges)`: a numeric
//! column's distribution as exact counts over slots (see
//! [`crate::kernel::profile`]). `fit` records the first for each served
//! numeric input; `skewless validate` counts new data with the second over
//! the recorded edges.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::cast::{as_float64_array, as_list_array, as_uint64_array};
use datafusion::common::scalar::ScalarStructBuilder;
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

use super::counts::CountsState;
use super::state::{count_i64, list_field, list_scalar, positive_literal, sum_u64, u64_field};
use super::{coerce_integer_literal, coerce_numeric};
use crate::kernel::profile::{edges, slot, slots};
use crate::kernel::stats::Finite;

static NUMERIC_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "A numeric column's profile, exactly: how many finite values, NULLs, NaNs, +inf and \
         -inf it holds, its minimum and maximum, and a histogram over fixed edges: the minimum, \
         the boundaries of `quantile_boundaries(x, bins)` strictly between minimum and maximum, \
         and the maximum. `slots` has the bins plus two: values below the minimum (first) and \
         above the maximum (last), both 0 over the data the edges come from. Bin k holds the \
         values from edge k (inclusive) to edge k+1 (exclusive); the last bin also holds the \
         maximum. The counts of any split of the data add up to the counts of the whole.",
        "numeric_profile(x, bins)",
    )
    .with_argument(
        "x",
        "A numeric expression (any integer, float or decimal type, computed as DOUBLE).",
    )
    .with_argument(
        "bins",
        "The number of quantile bins: a positive integer literal.",
    )
    .with_sql_example(
        "```sql
> SELECT p.edges AS edges, p.slots AS slots, p.nulls AS nulls, p.nan AS nan
  FROM (SELECT numeric_profile(x, 2) AS p
        FROM (VALUES (1.0), (2.0), (3.0), (4.0), (NULL), ('NaN')) t(x));
+-----------------+--------------+-------+-----+
| edges           | slots        | nulls | nan |
+-----------------+--------------+-------+-----+
| [1.0, 3.0, 4.0] | [0, 2, 2, 0] | 1     | 1   |
+-----------------+--------------+-------+-----+
```",
    )
    .build()
});

static SLOTS_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Counts a numeric column into the slots of fixed edges, as `numeric_profile` does with \
         the edges it computes: below the first edge, one slot per bin, above the last edge. \
         Also counts the finite values, NULLs, NaNs, +inf and -inf. This is how new data is \
         compared with a training profile.",
        "profile_slots(x, edges)",
    )
    .with_argument(
        "x",
        "A numeric expression (any integer, float or decimal type, computed as DOUBLE).",
    )
    .with_argument(
        "edges",
        "A list literal of ascending numbers, e.g. the `edges` of a `numeric_profile`.",
    )
    .with_sql_example(
        "```sql
> SELECT p.slots AS slots, p.count AS count
  FROM (SELECT profile_slots(x, [1.0, 3.0, 4.0]) AS p
        FROM (VALUES (0.5), (1.0), (3.0), (4.0), (9.0)) t(x));
+--------------+-------+
| slots        | count |
+--------------+-------+
| [1, 1, 2, 1] | 5     |
+--------------+-------+
```",
    )
    .build()
});

/// The counts both functions return, besides the slots.
const COUNTS: [&str; 5] = ["count", "nulls", "nan", "pos_inf", "neg_inf"];

fn result_fields(profile: bool) -> Fields {
    let counts = COUNTS
        .iter()
        .map(|n| Field::new(*n, DataType::Int64, false));
    let extremes = ["min", "max"]
        .iter()
        .map(|n| Field::new(*n, DataType::Float64, true));
    let edges = Field::new("edges", DataType::new_list(DataType::Float64, true), false);
    let slots = Field::new("slots", DataType::new_list(DataType::Int64, true), false);
    if profile {
        counts.chain(extremes).chain([edges, slots]).collect()
    } else {
        counts.chain([slots]).collect()
    }
}

/// `numeric_profile(x, bins)` → Struct.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NumericProfile {
    signature: Signature,
}

impl Default for NumericProfile {
    fn default() -> Self {
        Self::new()
    }
}

impl NumericProfile {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for NumericProfile {
    fn name(&self) -> &str {
        "numeric_profile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [x, bins] = arg_types else {
            return plan_err!(
                "numeric_profile expects 2 arguments (x, bins), got {}",
                arg_types.len()
            );
        };
        Ok(vec![
            coerce_numeric(self.name(), "x", x)?,
            coerce_integer_literal(self.name(), "bins", bins)?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(result_fields(true)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let mut fields = CountsState::<Finite>::fields(args.name);
        fields.push(u64_field(args.name, "nan"));
        fields.push(u64_field(args.name, "pos_inf"));
        Ok(fields)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let Some(bins) = positive_literal(&args, self.name(), 1, "bins")? else {
            return plan_err!("numeric_profile: bins is missing");
        };
        Ok(Box::new(ProfileAccumulator {
            counts: CountsState::default(),
            special: Special::default(),
            bins,
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&NUMERIC_DOC)
    }
}

/// NaN and +inf among the non-finite values (−inf is the rest).
#[derive(Debug, Default, Clone, Copy)]
struct Special {
    nan: u64,
    pos_inf: u64,
}

impl Special {
    fn update(&mut self, values: &Float64Array) {
        for v in values.iter().flatten() {
            if v.is_nan() {
                self.nan += 1;
            } else if v == f64::INFINITY {
                self.pos_inf += 1;
            }
        }
    }
}

/// Every finite value counted exactly; the edges and slots are read from
/// the sorted counts when evaluating.
#[derive(Debug)]
struct ProfileAccumulator {
    counts: CountsState<Finite>,
    special: Special,
    bins: u64,
}

impl Accumulator for ProfileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.counts.update_batch(&values[0])?;
        if values[0].data_type() == &DataType::Float64 {
            self.special.update(as_float64_array(&values[0])?);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [counts @ .., nan, pos_inf] = states else {
            return internal_err!("numeric_profile: a state has 6 columns");
        };
        self.counts.merge_batch(counts)?;
        self.special.nan += sum_u64(nan)?;
        self.special.pos_inf += sum_u64(pos_inf)?;
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut state = self.counts.state();
        state.push(ScalarValue::UInt64(Some(self.special.nan)));
        state.push(ScalarValue::UInt64(Some(self.special.pos_inf)));
        Ok(state)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let counts = &self.counts.counts;
        let sorted = counts.sorted();
        let n = sorted.len();
        let (min, max) = if n == 0 {
            (f64::NAN, f64::NAN)
        } else {
            (sorted.kth(0), sorted.kth(n - 1))
        };
        let edges = edges(min, &sorted.quantile_boundaries(self.bins), max);
        let mut slot_counts = vec![0u64; slots(edges.len())];
        for (v, &c) in &counts.counts {
            slot_counts[slot(&edges, v.get())] += c;
        }
        let skipped = &counts.skipped;
        let neg_inf = skipped.non_finite - self.special.nan - self.special.pos_inf;
        let values = [
            n,
            skipped.nulls,
            self.special.nan,
            self.special.pos_inf,
            neg_inf,
        ];
        let extremes = [min, max].map(|v| ScalarValue::Float64((n > 0).then_some(v)));
        build(
            &result_fields(true),
            values,
            extremes.into_iter().chain([
                list_scalar(Arc::new(Float64Array::from(edges))),
                slots_scalar(&slot_counts),
            ]),
        )
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.counts.size() - size_of::<CountsState<Finite>>()
    }
}

/// `profile_slots(x, edges)` → Struct.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ProfileSlots {
    signature: Signature,
}

impl Default for ProfileSlots {
    fn default() -> Self {
        Self::new()
    }
}

impl ProfileSlots {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for ProfileSlots {
    fn name(&self) -> &str {
        "profile_slots"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [x, edges] = arg_types else {
            return plan_err!(
                "profile_slots expects 2 arguments (x, edges), got {}",
                arg_types.len()
            );
        };
        // The edges stay as written; the accumulator reads them as numbers.
        Ok(vec![coerce_numeric(self.name(), "x", x)?, edges.clone()])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(result_fields(false)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let mut fields = vec![list_field(args.name, "slots", DataType::UInt64)];
        fields.extend(COUNTS.iter().map(|c| u64_field(args.name, c)));
        Ok(fields)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let value = args
            .exprs
            .get(1)
            .and_then(|e| e.downcast_ref::<Literal>())
            .map(Literal::value);
        let edges = crate::scalar::args::float_list(self.name(), "edges", value)?;
        if edges.iter().any(|e| !e.is_finite()) || edges.windows(2).any(|w| w[0] >= w[1]) {
            return plan_err!(
                "profile_slots: edges must be finite and strictly ascending, got {edges:?}"
            );
        }
        Ok(Box::new(SlotsAccumulator {
            slots: vec![0; slots(edges.len())],
            counts: [0; 5],
            edges,
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&SLOTS_DOC)
    }
}

#[derive(Debug)]
struct SlotsAccumulator {
    edges: Vec<f64>,
    slots: Vec<u64>,
    /// As [`COUNTS`] names them.
    counts: [u64; 5],
}

impl Accumulator for SlotsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = &values[0];
        if values.data_type() == &DataType::Null {
            self.counts[1] += values.len() as u64;
            return Ok(());
        }
        let values = as_float64_array(values)?;
        self.counts[1] += values.null_count() as u64;
        for v in values.iter().flatten() {
            if v.is_finite() {
                self.counts[0] += 1;
                self.slots[slot(&self.edges, v)] += 1;
            } else if v.is_nan() {
                self.counts[2] += 1;
            } else if v > 0.0 {
                self.counts[3] += 1;
            } else {
                self.counts[4] += 1;
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [slots, counts @ ..] = states else {
            return internal_err!("profile_slots: a state has 6 columns");
        };
        let slots = as_list_array(slots)?;
        for row in 0..slots.len() {
            if slots.is_null(row) {
                continue;
            }
            let row = slots.value(row);
            let row = as_uint64_array(&row)?;
            if row.len() != self.slots.len() {
                return internal_err!("profile_slots: a state of {} slots", row.len());
            }
            for (mine, &theirs) in self.slots.iter_mut().zip(row.values()) {
                *mine += theirs;
            }
        }
        for (mine, column) in self.counts.iter_mut().zip(counts) {
            *mine += sum_u64(column)?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut state = vec![list_scalar(Arc::new(UInt64Array::from(self.slots.clone())))];
        state.extend(self.counts.iter().map(|&c| ScalarValue::UInt64(Some(c))));
        Ok(state)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        build(
            &result_fields(false),
            self.counts,
            [slots_scalar(&self.slots)],
        )
    }

    fn size(&self) -> usize {
        size_of::<Self>() + 8 * (self.edges.capacity() + self.slots.capacity())
    }
}

fn slots_scalar(slots: &[u64]) -> ScalarValue {
    let values: Int64Array = slots.iter().map(|&n| count_i64(n)).collect();
    list_scalar(Arc::new(values))
}

/// The result struct: the five counts, then `rest` in field order.
fn build(
    fields: &Fields,
    counts: [u64; 5],
    rest: impl IntoIterator<Item = ScalarValue>,
) -> Result<ScalarValue> {
    let values = counts
        .into_iter()
        .map(|n| ScalarValue::Int64(Some(count_i64(n))))
        .chain(rest);
    fields
        .iter()
        .zip(values)
        .fold(ScalarStructBuilder::new(), |b, (field, value)| {
            b.with_scalar(field, value)
        })
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::test_util::{run_sql, run_sql_err};
    use datafusion::prelude::{SessionConfig, SessionContext};

    #[tokio::test]
    async fn the_issue_example_profiles_and_slots() {
        // 1..255 with B = 4: edges [1, 64, 128, 192, 255]; 1..500 counted
        // over them: 245 above the training maximum.
        let profile = run_sql(
            "SELECT p.edges, p.slots, p.count, p.min, p.max FROM (SELECT numeric_profile(x, 4) \
             AS p FROM (SELECT CAST(value AS DOUBLE) AS x FROM generate_series(1, 255)))",
        )
        .await;
        assert_eq!(
            profile,
            ["[1.0, 64.0, 128.0, 192.0, 255.0]|[0, 63, 64, 64, 64, 0]|255|1.0|255.0"]
        );
        let slots = run_sql(
            "SELECT p.slots, p.count FROM (SELECT profile_slots(value, [1.0, 64.0, 128.0, \
             192.0, 255.0]) AS p FROM generate_series(1, 500))",
        )
        .await;
        assert_eq!(slots, ["[0, 63, 64, 64, 64, 245]|500"]);
    }

    #[tokio::test]
    async fn special_values_are_counted_apart() {
        let sql = "SELECT p.count, p.nulls, p.nan, p.pos_inf, p.neg_inf, p.slots FROM (SELECT \
                   {f} AS p FROM (VALUES ('1.0'), (NULL), ('NaN'), ('inf'), ('-inf'), ('inf'), \
                   ('2.0')) t(x))";
        let profile = run_sql(&sql.replace("{f}", "numeric_profile(CAST(x AS DOUBLE), 10)")).await;
        // Edges [1, 2]: one bin, holding both finite values.
        assert_eq!(profile, ["2|1|1|2|1|[0, 2, 0]"]);
        let slots =
            run_sql(&sql.replace("{f}", "profile_slots(CAST(x AS DOUBLE), [0.0, 1.5, 3.0])")).await;
        assert_eq!(slots, ["2|1|1|2|1|[0, 1, 1, 0]"]);
    }

    #[tokio::test]
    async fn partitions_give_the_same_counts() -> Result<()> {
        // Merged partial states: the result of 1, 2 and 8 partitions alike.
        let sql = "SELECT numeric_profile(x, 3), profile_slots(x, [0.0, 10.0, 20.0]) FROM \
                   (SELECT CAST(value % 37 AS DOUBLE) * 0.5 AS x FROM generate_series(1, 5000))";
        let mut seen = Vec::new();
        for partitions in [1, 2, 8] {
            let mut ctx = SessionContext::new_with_config(
                SessionConfig::new().with_target_partitions(partitions),
            );
            crate::register_all(&mut ctx)?;
            let batches = ctx.sql(sql).await?.collect().await?;
            seen.push(
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string(),
            );
        }
        assert_eq!(seen[0], seen[1]);
        assert_eq!(seen[0], seen[2]);
        // Worked out in Python over the same values: boundaries v_1667 =
        // 6.0 and v_3334 = 12.0 of the sorted 5,000.
        assert!(
            seen[0].contains("edges: [0.0, 6.0, 12.0, 18.0], slots: [0, 1625, 1620, 1755, 0]"),
            "{}",
            seen[0]
        );
        assert!(seen[0].contains("slots: [0, 2705, 2295, 0]"), "{}", seen[0]);
        Ok(())
    }

    #[tokio::test]
    async fn edges_must_be_literal_and_ascending() {
        for (edges, shown) in [
            ("[3.0, 1.0]", "strictly ascending"),
            ("x", "must be a list literal"),
            ("['a']", "must be a list of numbers"),
        ] {
            let err = run_sql_err(&format!(
                "SELECT profile_slots(x, {edges}) FROM (VALUES (1.0)) t(x)"
            ))
            .await;
            assert!(
                err.contains("profile_slots") && err.contains(shown),
                "{err}"
            );
        }
    }
}
