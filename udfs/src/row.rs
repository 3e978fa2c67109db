//! skewless's instance-level functions on one row at a time: what the
//! serving evaluator calls instead of the Arrow drivers.
//!
//! [`RowFunction::compile`] reads a call's literal arguments with the same
//! checks as planning does, once; evaluating then calls the same kernels as
//! the Arrow drivers in [`crate::scalar`], so a value computed here is the
//! value the batch path computes, bit for bit. Nothing here allocates per
//! call except [`RowFunction::one_hot`]'s list.

use std::cell::RefCell;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};

use crate::kernel::scale;
use crate::kernel::vocab::one_hot_slot;
use crate::kernel::{CrossBuffer, bucket, hash_bucket_bytes, hash_bucket_i64, hash_bucket_u64};
use crate::scalar::vocab_index_with::Lookup;
use crate::scalar::{Bucketize, ScaleKind, ScaleWith, VocabWith};

/// A string or integer argument of a hashing or vocabulary function, as the
/// function sees it after coercion (strings, Int64 or UInt64).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Key<'a> {
    Str(&'a str),
    Int(i64),
    UInt(u64),
}

/// One of skewless's instance-level functions with its literal arguments
/// read and checked.
#[derive(Debug)]
pub enum RowFunction {
    /// The scalers: Float64 → Float64.
    MinMax {
        min: f64,
        max: f64,
    },
    MinMaxTo {
        min: f64,
        max: f64,
        lo: f64,
        hi: f64,
    },
    ZScore {
        mean: f64,
        scale: f64,
    },
    MaxAbs {
        max_abs: f64,
    },
    Robust {
        median: f64,
        iqr: f64,
    },
    /// Float64 → Int64.
    Bucketize(Vec<f64>),
    /// Key → Int64.
    HashBucket(u64),
    /// Key → Int64 (NULL when unseen and without OOV buckets).
    VocabIndex(VocabLookup),
    /// Key → List(Float32).
    OneHot(VocabLookup),
    /// Keys → Int64.
    Cross(u64),
}

/// A vocabulary ready for lookups (strings or integers).
#[derive(Debug)]
pub struct VocabLookup(Lookup);

/// What a [`RowFunction`] takes: which leading arguments are per-row values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowArgs {
    /// The first argument is a Float64 value; the rest are literals.
    Float,
    /// The first argument is a key; the rest are literals.
    Key,
    /// All arguments but the last are keys; the last is a literal.
    Keys,
}

thread_local! {
    static CROSS: RefCell<CrossBuffer> = RefCell::new(CrossBuffer::default());
}

impl RowFunction {
    /// The function `name` called with arguments of `arg_types` (after
    /// coercion) whose literal values are `literals` (None where an argument
    /// is not a literal). `Ok(None)` when `name` is not one of skewless's
    /// instance-level functions; an error when its literal arguments are
    /// missing or invalid, with the same message as planning gives.
    pub fn compile(
        name: &str,
        arg_types: &[DataType],
        literals: &[Option<&ScalarValue>],
    ) -> Result<Option<Self>> {
        let kind = match name {
            "min_max_scale_with" => Some(ScaleKind::MinMax),
            "z_score_with" => Some(ScaleKind::ZScore),
            "max_abs_scale_with" => Some(ScaleKind::MaxAbs),
            "robust_scale_with" => Some(ScaleKind::Robust),
            _ => None,
        };
        if let Some(kind) = kind {
            let p = ScaleWith::new(kind).params(literals, true)?;
            return Ok(Some(match (kind, p.as_slice()) {
                (ScaleKind::MinMax, &[min, max]) => Self::MinMax { min, max },
                (ScaleKind::MinMax, &[min, max, lo, hi]) => Self::MinMaxTo { min, max, lo, hi },
                (ScaleKind::ZScore, &[mean, scale]) => Self::ZScore { mean, scale },
                (ScaleKind::MaxAbs, &[max_abs]) => Self::MaxAbs { max_abs },
                (ScaleKind::Robust, &[median, iqr]) => Self::Robust { median, iqr },
                _ => return plan_err!("{name}: wrong number of arguments ({})", literals.len()),
            }));
        }
        Ok(Some(match name {
            "bucketize" => {
                Self::Bucketize(Bucketize::new().boundaries(literals.get(1).copied().flatten())?)
            }
            "hash_bucket" => Self::HashBucket(crate::scalar::args::positive_int(
                name,
                "n",
                literals.get(1).copied().flatten(),
            )?),
            "feature_cross" => Self::Cross(crate::scalar::args::positive_int(
                name,
                "n",
                literals.last().copied().flatten(),
            )?),
            "vocab_index_with" | "one_hot_with" => {
                let one_hot = name == "one_hot_with";
                let udf = if one_hot {
                    VocabWith::one_hot()
                } else {
                    VocabWith::index()
                };
                let Some(x_type) = arg_types.first() else {
                    return plan_err!("{name}: missing argument x");
                };
                let lookup = udf
                    .lookup(x_type, literals, true)?
                    .expect("strict lookups always resolve");
                if one_hot {
                    Self::OneHot(VocabLookup(lookup))
                } else {
                    Self::VocabIndex(VocabLookup(lookup))
                }
            }
            _ => return Ok(None),
        }))
    }

    /// A `vocab_index`'s values in position order as text (integers in
    /// decimal; `None` at a position a value listed twice left empty): the
    /// value behind each index below V it gives. `None` for other functions.
    pub fn vocabulary_texts(&self) -> Option<Vec<Option<String>>> {
        match self {
            Self::VocabIndex(VocabLookup(lookup)) => Some(lookup.texts()),
            _ => None,
        }
    }

    /// The SQL name of the function.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MinMax { .. } | Self::MinMaxTo { .. } => "min_max_scale_with",
            Self::ZScore { .. } => "z_score_with",
            Self::MaxAbs { .. } => "max_abs_scale_with",
            Self::Robust { .. } => "robust_scale_with",
            Self::Bucketize(_) => "bucketize",
            Self::HashBucket(_) => "hash_bucket",
            Self::VocabIndex(_) => "vocab_index_with",
            Self::OneHot(_) => "one_hot_with",
            Self::Cross(_) => "feature_cross",
        }
    }

    /// Which arguments are per-row values.
    pub fn args(&self) -> RowArgs {
        match self {
            Self::MinMax { .. }
            | Self::MinMaxTo { .. }
            | Self::ZScore { .. }
            | Self::MaxAbs { .. }
            | Self::Robust { .. }
            | Self::Bucketize(_) => RowArgs::Float,
            Self::HashBucket(_) | Self::VocabIndex(_) | Self::OneHot(_) => RowArgs::Key,
            Self::Cross(_) => RowArgs::Keys,
        }
    }

    /// A scaler on one value (NaN for the functions that are not scalers).
    #[inline]
    pub fn float(&self, x: f64) -> f64 {
        match *self {
            Self::MinMax { min, max } => scale::min_max_scale(x, min, max),
            Self::MinMaxTo { min, max, lo, hi } => scale::min_max_scale_to(x, min, max, lo, hi),
            Self::ZScore { mean, scale } => scale::z_score(x, mean, scale),
            Self::MaxAbs { max_abs } => scale::max_abs_scale(x, max_abs),
            Self::Robust { median, iqr } => scale::robust_scale(x, median, iqr),
            _ => f64::NAN,
        }
    }

    /// What a serving evaluator counts of this function's values, if
    /// anything: `"unseen"` (a vocabulary's key it does not hold) or
    /// `"out_of_range"` (a number outside a min-max scaler's fitted min and
    /// max).
    pub fn watched(&self) -> Option<&'static str> {
        match self {
            Self::VocabIndex(_) | Self::OneHot(_) => Some("unseen"),
            Self::MinMax { .. } | Self::MinMaxTo { .. } => Some("out_of_range"),
            _ => None,
        }
    }

    /// [`RowFunction::index`], and whether the key was seen: false only
    /// for a key a vocabulary does not hold.
    #[inline]
    pub fn index_seen(&self, key: Key<'_>) -> (Option<i64>, bool) {
        match (self, key) {
            (Self::VocabIndex(lookup), key) => match (&lookup.0, key) {
                (Lookup::Strings(v), Key::Str(s)) => v.lookup(s),
                (Lookup::Integers(v), Key::Int(i)) => v.lookup(i),
                _ => (None, false),
            },
            _ => (self.index(key), true),
        }
    }

    /// Whether a min-max scaler's input lies outside its fitted min and max.
    #[inline]
    pub fn out_of_range(&self, x: f64) -> bool {
        match *self {
            Self::MinMax { min, max } | Self::MinMaxTo { min, max, .. } => x < min || x > max,
            _ => false,
        }
    }

    /// `bucketize` on one value (0 for other functions).
    #[inline]
    pub fn bucket(&self, x: f64) -> i64 {
        match self {
            Self::Bucketize(b) => bucket::bucketize(x, b),
            _ => 0,
        }
    }

    /// `hash_bucket` or `vocab_index_with` on one key.
    #[inline]
    pub fn index(&self, key: Key<'_>) -> Option<i64> {
        match self {
            Self::HashBucket(n) => Some(match key {
                Key::Str(s) => hash_bucket_bytes(s.as_bytes(), *n),
                Key::Int(i) => hash_bucket_i64(i, *n),
                Key::UInt(u) => hash_bucket_u64(u, *n),
            }),
            Self::VocabIndex(lookup) => match (&lookup.0, key) {
                (Lookup::Strings(v), Key::Str(s)) => v.index(s),
                (Lookup::Integers(v), Key::Int(i)) => v.index(i),
                _ => None,
            },
            _ => None,
        }
    }

    /// `one_hot_with` on one key: the list's length and the slot set to 1.
    #[inline]
    pub fn one_hot(&self, key: Key<'_>) -> (usize, usize) {
        let Self::OneHot(lookup) = self else {
            return (0, 0);
        };
        let size = lookup.0.len();
        let position = match (&lookup.0, key) {
            (Lookup::Strings(v), Key::Str(s)) => v.position(s),
            (Lookup::Integers(v), Key::Int(i)) => v.position(&i),
            _ => None,
        };
        (size as usize + 1, one_hot_slot(position, size))
    }

    /// `feature_cross` of non-NULL keys.
    #[inline]
    pub fn cross<'a>(&self, keys: impl IntoIterator<Item = Key<'a>>) -> i64 {
        let Self::Cross(n) = self else {
            return 0;
        };
        CROSS.with(|cell| {
            let mut cross = cell.borrow_mut();
            cross.clear();
            for key in keys {
                match key {
                    Key::Str(s) => cross.push_str(s),
                    Key::Int(i) => cross.push_i64(i),
                    Key::UInt(u) => cross.push_u64(u),
                }
            }
            cross.bucket(*n)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, ListArray, StringArray};
    use datafusion::arrow::datatypes::Field;

    use super::*;
    use crate::kernel::hash_bucket_bytes;

    fn string_list(values: &[&str]) -> ScalarValue {
        let values = Arc::new(StringArray::from(values.to_vec()));
        ScalarValue::List(Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(DataType::Utf8, true)),
            datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]),
            values,
            None,
        )))
    }

    #[test]
    fn scalers_read_their_literals() {
        let f = RowFunction::compile(
            "min_max_scale_with",
            &[DataType::Float64, DataType::Float64, DataType::Float64],
            &[
                None,
                Some(&ScalarValue::Float64(Some(1.0))),
                Some(&ScalarValue::Float64(Some(5.0))),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.args(), RowArgs::Float);
        assert_eq!(f.float(3.0), 0.5);
        assert_eq!(f.float(6.0), 1.25);
    }

    #[test]
    fn vocabulary_and_cross() {
        let vocab = string_list(&["b", "a"]);
        let f = RowFunction::compile(
            "vocab_index_with",
            &[DataType::Utf8, vocab.data_type()],
            &[None, Some(&vocab)],
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.index(Key::Str("a")), Some(1));
        assert_eq!(f.index(Key::Str("z")), Some(2));
        let one_hot = RowFunction::compile(
            "one_hot_with",
            &[DataType::Utf8, vocab.data_type()],
            &[None, Some(&vocab)],
        )
        .unwrap()
        .unwrap();
        assert_eq!(one_hot.one_hot(Key::Str("b")), (3, 0));
        assert_eq!(one_hot.one_hot(Key::Str("?")), (3, 2));
        let n = ScalarValue::Int64(Some(1000));
        let cross = RowFunction::compile(
            "feature_cross",
            &[DataType::Utf8, DataType::Int64, DataType::Int64],
            &[None, None, Some(&n)],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            cross.cross([Key::Str("Bachelors"), Key::Int(39)]),
            hash_bucket_bytes(b"Bachelors_39", 1000)
        );
    }

    #[test]
    fn bad_literals_fail_like_planning() {
        let err = RowFunction::compile(
            "hash_bucket",
            &[DataType::Utf8, DataType::Int64],
            &[None, Some(&ScalarValue::Int64(Some(0)))],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("hash_bucket: n must be a positive integer, got 0")
        );
        assert!(
            RowFunction::compile("lower", &[DataType::Utf8], &[None])
                .unwrap()
                .is_none()
        );
    }
}
