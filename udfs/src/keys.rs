//! Reading key and stratum columns for the splitting and sampling functions:
//! a key's hash is FarmHash Fingerprint64 of its text (a string's UTF-8
//! bytes, an integer's decimal digits), as `hash_bucket` and `split_of`
//! compute it; a stratum is compared by its text.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, UInt64Type};
use datafusion::common::{Result, exec_err};

use crate::kernel::farmhash::fingerprint64;
use crate::kernel::split::salt;

/// The hash of every key (None for NULL), salted by `seed` if given.
pub(crate) fn hashes(
    function: &str,
    key: &ArrayRef,
    seed: Option<u64>,
) -> Result<Vec<Option<u64>>> {
    let finish = |h: u64| seed.map_or(h, |s| salt(h, s));
    let mut buf = [0u8; 20];
    Ok(match key.data_type() {
        DataType::Utf8 => key
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|v| finish(fingerprint64(v.as_bytes()))))
            .collect(),
        DataType::LargeUtf8 => key
            .as_string::<i64>()
            .iter()
            .map(|v| v.map(|v| finish(fingerprint64(v.as_bytes()))))
            .collect(),
        DataType::Utf8View => key
            .as_string_view()
            .iter()
            .map(|v| v.map(|v| finish(fingerprint64(v.as_bytes()))))
            .collect(),
        DataType::Int64 => key
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(|v| finish(fingerprint64(crate::kernel::format_i64(v, &mut buf)))))
            .collect(),
        DataType::UInt64 => key
            .as_primitive::<UInt64Type>()
            .iter()
            .map(|v| v.map(|v| finish(fingerprint64(crate::kernel::format_u64(v, &mut buf)))))
            .collect(),
        DataType::Null => vec![None; key.len()],
        other => return exec_err!("{function}: unsupported key type {other}"),
    })
}

/// Calls `f` with the index and text of every stratum value (None for
/// NULL). Integers are read as their decimal text.
pub(crate) fn each_text(
    function: &str,
    strata: &ArrayRef,
    mut f: impl FnMut(usize, Option<&str>),
) -> Result<()> {
    match strata.data_type() {
        DataType::Utf8 => strata
            .as_string::<i32>()
            .iter()
            .enumerate()
            .for_each(|(i, v)| f(i, v)),
        DataType::LargeUtf8 => strata
            .as_string::<i64>()
            .iter()
            .enumerate()
            .for_each(|(i, v)| f(i, v)),
        DataType::Utf8View => strata
            .as_string_view()
            .iter()
            .enumerate()
            .for_each(|(i, v)| f(i, v)),
        DataType::Null => (0..strata.len()).for_each(|i| f(i, None)),
        t if t.is_integer() => {
            let text = cast(strata, &DataType::Utf8)?;
            text.as_string::<i32>()
                .iter()
                .enumerate()
                .for_each(|(i, v)| f(i, v));
        }
        other => return exec_err!("{function}: unsupported stratum type {other}"),
    }
    Ok(())
}
