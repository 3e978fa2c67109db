//! Instance-level functions: each output value depends on its own row only.
//!
//! One function per file, each in the same order: documentation, the struct
//! (only a `Signature`), `new()`, the `ScalarUDFImpl`, then tests.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};

use datafusion::logical_expr::ScalarUDF;

pub(crate) mod args;
mod bucketize;
mod feature_cross;
mod fullpass;
mod hash_bucket;
mod memo;
mod scale_with;
mod split_of;
pub(crate) mod stratified;
pub(crate) mod vocab_index_with;

pub use bucketize::Bucketize;
pub use feature_cross::FeatureCross;
pub use fullpass::{FullPass, FullPassCall, FullPassKind, ImputeStrategy};
pub use hash_bucket::HashBucket;
pub use scale_with::{ScaleKind, ScaleWith};
pub use split_of::SplitOf;
pub use stratified::{StratifiedKind, StratifiedWith};
pub use vocab_index_with::VocabWith;

/// Every scalar function of this crate: instance-level functions, then the
/// planning halves of the full-pass functions.
pub fn functions() -> Vec<Arc<ScalarUDF>> {
    let mut f = vec![
        Arc::new(ScalarUDF::from(HashBucket::new())),
        Arc::new(ScalarUDF::from(FeatureCross::new())),
        Arc::new(ScalarUDF::from(Bucketize::new())),
        Arc::new(ScalarUDF::from(VocabWith::index())),
        Arc::new(ScalarUDF::from(VocabWith::one_hot())),
        Arc::new(ScalarUDF::from(SplitOf::new())),
        Arc::new(ScalarUDF::from(StratifiedWith::split())),
        Arc::new(ScalarUDF::from(StratifiedWith::sample())),
    ];
    for kind in [
        ScaleKind::MinMax,
        ScaleKind::ZScore,
        ScaleKind::MaxAbs,
        ScaleKind::Robust,
    ] {
        f.push(Arc::new(ScalarUDF::from(ScaleWith::new(kind))));
    }
    for kind in FullPassKind::ALL {
        f.push(Arc::new(ScalarUDF::from(FullPass::new(kind))));
    }
    f
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

/// The Arrow driver of a Float64 → Float64 kernel: runs on every slot of a
/// Float64 array (NULL slots keep their NULL), or on a scalar.
pub(crate) fn map_float(
    x: &datafusion::logical_expr::ColumnarValue,
    f: impl Fn(f64) -> f64,
) -> Result<datafusion::logical_expr::ColumnarValue> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::compute::unary;
    use datafusion::arrow::datatypes::Float64Type;
    use datafusion::logical_expr::ColumnarValue;
    Ok(match x {
        ColumnarValue::Array(a) => {
            let out = unary::<_, _, Float64Type>(a.as_primitive::<Float64Type>(), f);
            ColumnarValue::Array(Arc::new(out))
        }
        ColumnarValue::Scalar(ScalarValue::Float64(v)) => {
            ColumnarValue::Scalar(ScalarValue::Float64(v.map(f)))
        }
        ColumnarValue::Scalar(other) => {
            return datafusion::common::exec_err!("expected a Float64 argument, got {other}");
        }
    })
}

/// The Arrow driver of a Float64 → Int64 kernel.
pub(crate) fn map_float_to_int(
    x: &datafusion::logical_expr::ColumnarValue,
    f: impl Fn(f64) -> i64,
) -> Result<datafusion::logical_expr::ColumnarValue> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::compute::unary;
    use datafusion::arrow::datatypes::{Float64Type, Int64Type};
    use datafusion::logical_expr::ColumnarValue;
    Ok(match x {
        ColumnarValue::Array(a) => {
            let out = unary::<_, _, Int64Type>(a.as_primitive::<Float64Type>(), f);
            ColumnarValue::Array(Arc::new(out))
        }
        ColumnarValue::Scalar(ScalarValue::Float64(v)) => {
            ColumnarValue::Scalar(ScalarValue::Int64(v.map(f)))
        }
        ColumnarValue::Scalar(other) => {
            return datafusion::common::exec_err!("expected a Float64 argument, got {other}");
        }
    })
}
