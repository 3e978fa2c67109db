//! Shared pieces of the aggregates: partial states as plain Arrow values,
//! the summary structs they return, and literal arguments.
//!
//! States are made only of UInt64, Float64 and lists of Float64, UInt64,
//! Int64 or Utf8, so that a partial state can travel as Arrow IPC between
//! machines (Ballista shuffles) and be merged there.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::cast::as_uint64_array;
use datafusion::common::scalar::ScalarStructBuilder;
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::utils::format_state_name;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr_common::physical_expr::fmt_sql;

use crate::kernel::stats::Skipped;

/// A UInt64 state column.
pub(crate) fn u64_field(function: &str, state: &str) -> FieldRef {
    Arc::new(Field::new(
        format_state_name(function, state),
        DataType::UInt64,
        false,
    ))
}

/// A Float64 state column (never NULL).
pub(crate) fn f64_field(function: &str, state: &str) -> FieldRef {
    Arc::new(Field::new(
        format_state_name(function, state),
        DataType::Float64,
        false,
    ))
}

/// A `List<item>` state column.
pub(crate) fn list_field(function: &str, state: &str, item: DataType) -> FieldRef {
    Arc::new(Field::new(
        format_state_name(function, state),
        DataType::new_list(item, true),
        true,
    ))
}

/// The two state columns of a [`Skipped`]: `nulls` and `non_finite`.
pub(crate) fn skipped_fields(function: &str) -> [FieldRef; 2] {
    [
        u64_field(function, "nulls"),
        u64_field(function, "non_finite"),
    ]
}

/// A [`Skipped`] as the values of [`skipped_fields`].
pub(crate) fn skipped_state(skipped: &Skipped) -> [ScalarValue; 2] {
    [
        ScalarValue::UInt64(Some(skipped.nulls)),
        ScalarValue::UInt64(Some(skipped.non_finite)),
    ]
}

/// Adds the skipped counts of every partial state in `nulls` and
/// `non_finite` (two [`skipped_fields`] columns) to `skipped`.
pub(crate) fn merge_skipped(
    skipped: &mut Skipped,
    nulls: &ArrayRef,
    non_finite: &ArrayRef,
) -> Result<()> {
    skipped.merge(&Skipped {
        nulls: sum_u64(nulls)?,
        non_finite: sum_u64(non_finite)?,
    });
    Ok(())
}

/// The sum of a UInt64 state column (NULL rows count as 0).
pub(crate) fn sum_u64(array: &ArrayRef) -> Result<u64> {
    Ok(as_uint64_array(array)?.iter().flatten().sum())
}

/// One row of a `List<…>` state column holding `values`.
pub(crate) fn list_scalar(values: ArrayRef) -> ScalarValue {
    SingleRowListArrayBuilder::new(values).build_list_scalar()
}

/// The struct fields of a summary: `count`, `nulls` and `non_finite`
/// (Int64, never NULL), then one nullable Float64 per name in `statistics`.
pub(crate) fn summary_fields(statistics: &[&str]) -> Fields {
    let counts = ["count", "nulls", "non_finite"]
        .into_iter()
        .map(|name| Field::new(name, DataType::Int64, false));
    let stats = statistics
        .iter()
        .map(|&name| Field::new(name, DataType::Float64, true));
    counts.chain(stats).collect()
}

/// A summary struct (see [`summary_fields`]). The statistics are NULL when
/// no value was counted (the kernels return NaN or ±inf placeholders then).
pub(crate) fn summary_scalar(
    fields: &Fields,
    count: u64,
    skipped: &Skipped,
    statistics: &[f64],
) -> Result<ScalarValue> {
    let counts =
        [count, skipped.nulls, skipped.non_finite].map(|n| ScalarValue::Int64(Some(count_i64(n))));
    let stats = statistics
        .iter()
        .map(|&v| ScalarValue::Float64((count > 0).then_some(v)));
    fields
        .iter()
        .zip(counts.into_iter().chain(stats))
        .fold(ScalarStructBuilder::new(), |b, (field, value)| {
            b.with_scalar(field, value)
        })
        .build()
}

/// A count as an Int64 value (counts beyond i64::MAX cannot occur in
/// practice; they saturate).
pub(crate) fn count_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads the positive integer literal passed as argument `index` (0-based)
/// when the accumulator is made; `None` when the call has no such argument.
///
/// # Errors
/// A planning error naming the function and the argument when the argument
/// is not a literal, is NULL, or is not a positive integer.
pub(crate) fn positive_literal(
    args: &AccumulatorArgs,
    function: &str,
    index: usize,
    argument: &str,
) -> Result<Option<u64>> {
    let Some(expr) = args.exprs.get(index) else {
        return Ok(None);
    };
    let Some(literal) = expr.downcast_ref::<Literal>() else {
        return plan_err!(
            "{function}: {argument} must be a positive integer literal, got the expression {}",
            fmt_sql(expr.as_ref())
        );
    };
    let value = match literal.value() {
        ScalarValue::Int8(Some(v)) => i128::from(*v),
        ScalarValue::Int16(Some(v)) => i128::from(*v),
        ScalarValue::Int32(Some(v)) => i128::from(*v),
        ScalarValue::Int64(Some(v)) => i128::from(*v),
        ScalarValue::UInt8(Some(v)) => i128::from(*v),
        ScalarValue::UInt16(Some(v)) => i128::from(*v),
        ScalarValue::UInt32(Some(v)) => i128::from(*v),
        ScalarValue::UInt64(Some(v)) => i128::from(*v),
        other => {
            return plan_err!(
                "{function}: {argument} must be a positive integer literal, got {other}"
            );
        }
    };
    match u64::try_from(value) {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => plan_err!("{function}: {argument} must be a positive integer literal, got {value}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::UInt64Array;
    use datafusion::arrow::datatypes::Schema;
    use datafusion::physical_expr::PhysicalExpr;
    use datafusion::physical_expr::expressions::{Column, lit};

    fn read(expr: Arc<dyn PhysicalExpr>) -> Result<Option<u64>> {
        let schema = Schema::new(vec![Field::new("k", DataType::Int64, true)]);
        let exprs = [Arc::new(Column::new("k", 0)) as Arc<dyn PhysicalExpr>, expr];
        let fields = [
            Arc::new(Field::new("k", DataType::Int64, true)),
            Arc::new(Field::new("k", DataType::Int64, true)),
        ];
        let args = AccumulatorArgs {
            return_field: Arc::new(Field::new("f", DataType::Int64, true)),
            schema: &schema,
            ignore_nulls: false,
            order_bys: &[],
            is_reversed: false,
            name: "f(k)",
            is_distinct: false,
            exprs: &exprs,
            expr_fields: &fields,
        };
        assert_eq!(positive_literal(&args, "f", 2, "absent")?, None);
        positive_literal(&args, "f", 1, "n")
    }

    #[test]
    fn literals_must_be_positive_integers() {
        assert_eq!(read(lit(3i64)).unwrap(), Some(3));
        assert_eq!(read(lit(7u8)).unwrap(), Some(7));
        for (bad, shown) in [
            (lit(-1i64), "got -1"),
            (lit(0i32), "got 0"),
            (lit(ScalarValue::Int64(None)), "got NULL"),
            (lit(ScalarValue::Null), "got NULL"),
            (lit(2.5), "got 2.5"),
            (Arc::new(Column::new("k", 0)) as _, "got the expression k"),
        ] {
            let err = read(bad).unwrap_err().to_string();
            assert!(
                err.contains("f: n must be a positive integer literal, ") && err.contains(shown),
                "{err}"
            );
        }
    }

    #[test]
    fn skipped_counts_round_trip() -> Result<()> {
        let mut s = Skipped::default();
        let nulls: ArrayRef = Arc::new(UInt64Array::from(vec![Some(2), None, Some(3)]));
        let non_finite: ArrayRef = Arc::new(UInt64Array::from(vec![1, 0, 4]));
        merge_skipped(&mut s, &nulls, &non_finite)?;
        assert_eq!(
            s,
            Skipped {
                nulls: 5,
                non_finite: 5
            }
        );
        let [n, f] = skipped_state(&s);
        assert_eq!(
            (n, f),
            (ScalarValue::UInt64(Some(5)), ScalarValue::UInt64(Some(5)))
        );
        Ok(())
    }
}
