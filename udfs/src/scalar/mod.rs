//! Instance-level functions: each output value depends on its own row only.
//!
//! One function per file, each in the same order: documentation, the struct
//! (only a `Signature`), `new()`, the `ScalarUDFImpl`, then tests.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::ScalarUDF;

mod hash_bucket;

pub use hash_bucket::HashBucket;

/// Every scalar function of this crate.
pub fn functions() -> Vec<Arc<ScalarUDF>> {
    vec![Arc::new(ScalarUDF::from(HashBucket::new()))]
}

/// Reads a "positive integer literal" argument at planning time, with an error
/// naming the function and the argument otherwise.
pub(crate) fn positive_int_literal(
    function: &str,
    argument: &str,
    value: Option<&ScalarValue>,
) -> Result<u64> {
    let Some(value) = value else {
        return plan_err!(
            "{function}: {argument} must be a positive integer literal, not a column or expression"
        );
    };
    let n = match value {
        ScalarValue::Int8(Some(v)) => i64::from(*v),
        ScalarValue::Int16(Some(v)) => i64::from(*v),
        ScalarValue::Int32(Some(v)) => i64::from(*v),
        ScalarValue::Int64(Some(v)) => *v,
        ScalarValue::UInt8(Some(v)) => i64::from(*v),
        ScalarValue::UInt16(Some(v)) => i64::from(*v),
        ScalarValue::UInt32(Some(v)) => i64::from(*v),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).unwrap_or(-1),
        other => {
            return plan_err!(
                "{function}: {argument} must be a positive integer literal, got {other} of type {}",
                other.data_type()
            );
        }
    };
    if n <= 0 {
        return plan_err!("{function}: {argument} must be a positive integer, got {n}");
    }
    Ok(n as u64)
}

/// The type a "text or integer" argument is computed as: strings keep their
/// string type, signed integers become Int64, unsigned ones UInt64,
/// dictionaries are unpacked. Anything else is a planning error naming the
/// function.
pub(crate) fn coerce_text_or_integer(function: &str, arg: &DataType) -> Result<DataType> {
    Ok(match arg {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => arg.clone(),
        DataType::Null => DataType::Utf8,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => DataType::Int64,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => DataType::Int64,
        DataType::UInt64 => DataType::UInt64,
        DataType::Dictionary(_, value) => coerce_text_or_integer(function, value)?,
        other => {
            return plan_err!(
                "{function}: expected a string or integer argument, got {other}; \
                 cast it first, e.g. CAST(x AS VARCHAR)"
            );
        }
    })
}
