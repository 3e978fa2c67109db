//! Reading and checking literal arguments (bucket counts, boundaries,
//! vocabularies, fitted statistics) at planning time.
//!
//! DataFusion shows a UDF its literal arguments twice during planning: in
//! `return_field_from_args` (only arguments that are literals as written)
//! and in `simplify` (after constant folding, so `[2, 5, 10]` or `-1` are
//! literals by then). Functions check what they can in the first and
//! require literals in the second, so misuse fails before any data is read.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{ColumnarValue, Expr};

/// The literal value of an argument expression, if it is one.
pub(crate) fn literal_of(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(v, _) => Some(v),
        _ => None,
    }
}

/// The scalar values of evaluated arguments (None where an array).
pub(crate) fn scalar_values(args: &[ColumnarValue]) -> Vec<Option<&ScalarValue>> {
    args.iter()
        .map(|a| match a {
            ColumnarValue::Scalar(s) => Some(s),
            ColumnarValue::Array(_) => None,
        })
        .collect()
}

/// The literal values of all arguments (None where not a literal).
pub(crate) fn literals(args: &[Expr]) -> Vec<Option<&ScalarValue>> {
    args.iter().map(literal_of).collect()
}

fn not_literal<T>(function: &str, argument: &str, what: &str) -> Result<T> {
    plan_err!("{function}: {argument} must be {what}, not a column or expression")
}

/// A positive integer literal (n, top_k, …).
pub(crate) fn positive_int(
    function: &str,
    argument: &str,
    value: Option<&ScalarValue>,
) -> Result<u64> {
    let n = int_literal(function, argument, value, "a positive integer literal")?;
    if n <= 0 {
        return plan_err!("{function}: {argument} must be a positive integer, got {n}");
    }
    Ok(n as u64)
}

/// A non-negative integer literal (num_oov_buckets).
pub(crate) fn non_negative_int(
    function: &str,
    argument: &str,
    value: Option<&ScalarValue>,
) -> Result<u64> {
    let n = int_literal(function, argument, value, "a non-negative integer literal")?;
    if n < 0 {
        return plan_err!("{function}: {argument} must be a non-negative integer, got {n}");
    }
    Ok(n as u64)
}

fn int_literal(
    function: &str,
    argument: &str,
    value: Option<&ScalarValue>,
    what: &str,
) -> Result<i64> {
    let Some(value) = value else {
        return not_literal(function, argument, what);
    };
    let n = match value {
        ScalarValue::Int8(Some(v)) => i64::from(*v),
        ScalarValue::Int16(Some(v)) => i64::from(*v),
        ScalarValue::Int32(Some(v)) => i64::from(*v),
        ScalarValue::Int64(Some(v)) => *v,
        ScalarValue::UInt8(Some(v)) => i64::from(*v),
        ScalarValue::UInt16(Some(v)) => i64::from(*v),
        ScalarValue::UInt32(Some(v)) => i64::from(*v),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).unwrap_or(i64::MAX),
        other => {
            return plan_err!(
                "{function}: {argument} must be {what}, got {other} of type {}",
                other.data_type()
            );
        }
    };
    Ok(n)
}

/// A numeric literal (a fitted statistic, a range end), as f64.
pub(crate) fn float(function: &str, argument: &str, value: Option<&ScalarValue>) -> Result<f64> {
    let Some(value) = value else {
        return not_literal(function, argument, "a numeric literal");
    };
    if value.is_null() || !value.data_type().is_numeric() {
        return plan_err!(
            "{function}: {argument} must be a numeric literal, got {value} of type {}",
            value.data_type()
        );
    }
    match value.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(Some(v)) => Ok(v),
        other => plan_err!("{function}: {argument} must be a numeric literal, got {other}"),
    }
}

/// A string literal (a strategy name).
pub(crate) fn string(
    function: &str,
    argument: &str,
    value: Option<&ScalarValue>,
) -> Result<String> {
    match value {
        Some(ScalarValue::Utf8(Some(s)))
        | Some(ScalarValue::LargeUtf8(Some(s)))
        | Some(ScalarValue::Utf8View(Some(s))) => Ok(s.clone()),
        Some(other) => plan_err!("{function}: {argument} must be a string literal, got {other}"),
        None => not_literal(function, argument, "a string literal"),
    }
}

/// The elements of a list literal, or an error naming the argument.
fn list_values(function: &str, argument: &str, value: Option<&ScalarValue>) -> Result<ArrayRef> {
    let values = list_array(function, argument, value)?;
    if values.null_count() > 0 {
        return plan_err!("{function}: {argument} must not contain NULL");
    }
    Ok(values)
}

/// The elements of a list literal, NULLs included.
pub(crate) fn list_array(
    function: &str,
    argument: &str,
    value: Option<&ScalarValue>,
) -> Result<ArrayRef> {
    Ok(match value {
        Some(ScalarValue::List(a)) => a.value(0),
        Some(ScalarValue::LargeList(a)) => a.value(0),
        Some(ScalarValue::FixedSizeList(a)) => a.value(0),
        Some(other) => {
            return plan_err!(
                "{function}: {argument} must be a list literal such as [1, 2, 3], got {other}"
            );
        }
        None => return not_literal(function, argument, "a list literal such as [1, 2, 3]"),
    })
}

/// A list literal of numbers (bucket boundaries), as f64.
pub(crate) fn float_list(
    function: &str,
    argument: &str,
    value: Option<&ScalarValue>,
) -> Result<Vec<f64>> {
    let values = list_values(function, argument, value)?;
    if !values.data_type().is_numeric() && !values.data_type().is_null() {
        return plan_err!(
            "{function}: {argument} must be a list of numbers, got a list of {}",
            values.data_type()
        );
    }
    let values = cast(&values, &DataType::Float64)?;
    Ok(values.as_primitive::<Float64Type>().values().to_vec())
}

/// A vocabulary literal: a list of strings or of integers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VocabList {
    Strings(Vec<String>),
    Integers(Vec<i64>),
}

/// A list literal of strings or integers (a fitted vocabulary).
pub(crate) fn vocab_list(
    function: &str,
    argument: &str,
    value: Option<&ScalarValue>,
) -> Result<VocabList> {
    let values = list_values(function, argument, value)?;
    match values.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let values = cast(&values, &DataType::Utf8)?;
            Ok(VocabList::Strings(
                values
                    .as_string::<i32>()
                    .iter()
                    .map(|s| s.unwrap_or_default().to_string())
                    .collect(),
            ))
        }
        // An empty list literal has no element type.
        DataType::Null => Ok(VocabList::Strings(Vec::new())),
        t if t.is_integer() => {
            let values = cast(&values, &DataType::Int64)?;
            Ok(VocabList::Integers(
                values.as_primitive::<Int64Type>().values().to_vec(),
            ))
        }
        other => plan_err!(
            "{function}: {argument} must be a list of strings or integers, got a list of {other}"
        ),
    }
}

/// Coerces a numeric argument to Float64, or errors naming the function and
/// argument.
pub(crate) fn coerce_numeric(function: &str, argument: &str, t: &DataType) -> Result<DataType> {
    match t {
        t if t.is_numeric() || t.is_null() => Ok(DataType::Float64),
        DataType::Dictionary(_, v) => coerce_numeric(function, argument, v),
        other => plan_err!("{function}: {argument} must be numeric, got {other}"),
    }
}

/// Checks the argument count, with an error naming the function and its
/// syntax.
pub(crate) fn check_arity(
    function: &str,
    syntax: &str,
    got: usize,
    allowed: std::ops::RangeInclusive<usize>,
) -> Result<()> {
    if allowed.contains(&got) {
        Ok(())
    } else {
        plan_err!("{function} takes {syntax}, got {got} argument(s)")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int32Array, ListArray, StringArray};
    use datafusion::arrow::datatypes::Field;

    use super::*;

    fn list(values: ArrayRef) -> ScalarValue {
        let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
        let offsets = datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]);
        ScalarValue::List(Arc::new(ListArray::new(field, offsets, values, None)))
    }

    #[test]
    fn integers() {
        let v = ScalarValue::Int64(Some(3));
        assert_eq!(positive_int("f", "n", Some(&v)).unwrap(), 3);
        let err = positive_int("f", "n", Some(&ScalarValue::Int64(Some(0)))).unwrap_err();
        assert!(
            err.to_string()
                .contains("f: n must be a positive integer, got 0")
        );
        let err = positive_int("f", "n", None).unwrap_err();
        assert!(err.to_string().contains("not a column"));
        let err = positive_int("f", "n", Some(&ScalarValue::Float64(Some(2.5)))).unwrap_err();
        assert!(
            err.to_string()
                .contains("f: n must be a positive integer literal")
        );
        assert_eq!(
            non_negative_int("f", "oov", Some(&ScalarValue::Int32(Some(0)))).unwrap(),
            0
        );
    }

    #[test]
    fn lists() {
        let b = list(Arc::new(Int32Array::from(vec![2, 5, 10])));
        assert_eq!(float_list("f", "b", Some(&b)).unwrap(), [2.0, 5.0, 10.0]);
        let b = list(Arc::new(Float64Array::from(vec![Some(1.5), None])));
        assert!(float_list("f", "b", Some(&b)).is_err());
        let v = list(Arc::new(StringArray::from(vec!["a", "b"])));
        assert_eq!(
            vocab_list("f", "v", Some(&v)).unwrap(),
            VocabList::Strings(vec!["a".into(), "b".into()])
        );
        let v = list(Arc::new(Float64Array::from(vec![1.0])));
        assert!(vocab_list("f", "v", Some(&v)).is_err());
        assert!(float_list("f", "b", Some(&ScalarValue::Int64(Some(1)))).is_err());
    }
}
