//! The counting state shared by `vocabulary`, `most_frequent`,
//! `quantile_boundaries` and `robust_stats`: a [`Counts`] of strings,
//! integers or finite floats, driven over Arrow arrays.
//!
//! As a partial state it is four columns: the distinct values
//! (`List<Utf8 | Int64 | Float64>`), their counts (`List<UInt64>`, same
//! order), and the skipped `nulls` and `non_finite` (UInt64).

use std::borrow::Borrow;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, StringArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::cast::{as_float64_array, as_int64_array, as_list_array, as_uint64_array};
use datafusion::common::{Result, ScalarValue, exec_err, internal_err};

use super::state::{list_field, list_scalar, merge_skipped, skipped_fields, skipped_state};
use crate::kernel::stats::{Counts, Finite, NumericCounts};

/// A value type that can be counted: strings, integers and finite floats.
pub(crate) trait CountKey: Eq + Hash + Clone + Ord + Debug + Send + Sync + 'static {
    /// The Arrow type of the values in the state and in the results.
    const DATA_TYPE: DataType;

    /// Counts every value of an input array (of a type the signature coerced
    /// to), NULLs and non-finite values as skipped.
    fn update(state: &mut CountsState<Self>, values: &ArrayRef) -> Result<()>;

    /// Adds `counts[i]` occurrences of each value `values[i]` of a state row.
    fn merge(state: &mut CountsState<Self>, values: &ArrayRef, counts: &UInt64Array) -> Result<()>;

    /// The values as an Arrow array of [`Self::DATA_TYPE`].
    fn to_array<'a>(values: impl Iterator<Item = &'a Self>) -> ArrayRef;

    /// One value as a scalar of [`Self::DATA_TYPE`] (NULL for `None`).
    fn to_scalar(value: Option<&Self>) -> ScalarValue;

    /// Bytes the value owns on the heap.
    fn heap_size(&self) -> usize {
        0
    }
}

/// A [`Counts`] plus the heap bytes its keys own, kept up to date so that
/// `Accumulator::size` stays O(1).
#[derive(Debug)]
pub(crate) struct CountsState<K: CountKey> {
    pub counts: Counts<K>,
    key_bytes: usize,
}

impl<K: CountKey> Default for CountsState<K> {
    fn default() -> Self {
        Self {
            counts: Counts::default(),
            key_bytes: 0,
        }
    }
}

impl<K: CountKey> CountsState<K> {
    /// Adds `n` occurrences of `key`, copying it only when it is new.
    #[inline]
    pub fn add<Q>(&mut self, key: &Q, n: u64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(c) = self.counts.counts.get_mut(key) {
            *c += n;
        } else {
            let key = key.to_owned();
            self.key_bytes += key.heap_size();
            self.counts.counts.insert(key, n);
        }
    }

    /// Counts the values of an input array.
    pub fn update_batch(&mut self, values: &ArrayRef) -> Result<()> {
        K::update(self, values)
    }

    /// The state fields of a function named `function`.
    pub fn fields(function: &str) -> Vec<FieldRef> {
        let [nulls, non_finite] = skipped_fields(function);
        vec![
            list_field(function, "values", K::DATA_TYPE),
            list_field(function, "counts", DataType::UInt64),
            nulls,
            non_finite,
        ]
    }

    /// The partial state, as values of [`Self::fields`].
    pub fn state(&self) -> Vec<ScalarValue> {
        let values = K::to_array(self.counts.counts.keys());
        let counts: UInt64Array = self.counts.counts.values().copied().collect();
        let [nulls, non_finite] = skipped_state(&self.counts.skipped);
        vec![
            list_scalar(values),
            list_scalar(Arc::new(counts)),
            nulls,
            non_finite,
        ]
    }

    /// Merges partial states (columns as in [`Self::fields`]).
    pub fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, counts, nulls, non_finite] = states else {
            return internal_err!("a counts state has 4 columns, got {}", states.len());
        };
        let (values, counts) = (as_list_array(values)?, as_list_array(counts)?);
        for row in 0..values.len() {
            if values.is_null(row) || counts.is_null(row) {
                continue;
            }
            let (v, c) = (values.value(row), counts.value(row));
            let c = as_uint64_array(&c)?;
            if v.len() != c.len() || c.null_count() > 0 {
                return internal_err!("malformed counts state: {} values, {c:?} counts", v.len());
            }
            K::merge(self, &v, c)?;
        }
        merge_skipped(&mut self.counts.skipped, nulls, non_finite)
    }

    /// Bytes used: the struct, the hash table and the keys' heap data.
    pub fn size(&self) -> usize {
        let entry = size_of::<(K, u64)>() + 1; // + one control byte per slot
        size_of::<Self>() + self.counts.counts.capacity() * entry + self.key_bytes
    }
}

impl CountKey for String {
    const DATA_TYPE: DataType = DataType::Utf8;

    fn update(state: &mut CountsState<Self>, values: &ArrayRef) -> Result<()> {
        let mut count = |v: Option<&str>| match v {
            Some(s) => state.add(s, 1),
            None => state.counts.skipped.nulls += 1,
        };
        match values.data_type() {
            DataType::Utf8 => values.as_string::<i32>().iter().for_each(&mut count),
            DataType::LargeUtf8 => values.as_string::<i64>().iter().for_each(&mut count),
            DataType::Utf8View => values.as_string_view().iter().for_each(&mut count),
            DataType::Null => state.counts.skipped.nulls += values.len() as u64,
            other => return exec_err!("expected a string array, got {other}"),
        }
        Ok(())
    }

    fn merge(state: &mut CountsState<Self>, values: &ArrayRef, counts: &UInt64Array) -> Result<()> {
        let Some(values) = values.as_string_opt::<i32>() else {
            return internal_err!(
                "expected Utf8 values in a state, got {}",
                values.data_type()
            );
        };
        for (v, &n) in values.iter().zip(counts.values()) {
            match v {
                Some(s) => state.add(s, n),
                None => return internal_err!("NULL value in a counts state"),
            }
        }
        Ok(())
    }

    fn to_array<'a>(values: impl Iterator<Item = &'a Self>) -> ArrayRef {
        Arc::new(values.map(Some).collect::<StringArray>())
    }

    fn to_scalar(value: Option<&Self>) -> ScalarValue {
        ScalarValue::Utf8(value.cloned())
    }

    fn heap_size(&self) -> usize {
        self.capacity()
    }
}

impl CountKey for i64 {
    const DATA_TYPE: DataType = DataType::Int64;

    fn update(state: &mut CountsState<Self>, values: &ArrayRef) -> Result<()> {
        if values.data_type() == &DataType::Null {
            state.counts.skipped.nulls += values.len() as u64;
            return Ok(());
        }
        for v in as_int64_array(values)? {
            match v {
                Some(v) => state.add(&v, 1),
                None => state.counts.skipped.nulls += 1,
            }
        }
        Ok(())
    }

    fn merge(state: &mut CountsState<Self>, values: &ArrayRef, counts: &UInt64Array) -> Result<()> {
        let values = as_int64_array(values)?;
        if values.null_count() > 0 {
            return internal_err!("NULL value in a counts state");
        }
        for (v, &n) in values.values().iter().zip(counts.values()) {
            state.add(v, n);
        }
        Ok(())
    }

    fn to_array<'a>(values: impl Iterator<Item = &'a Self>) -> ArrayRef {
        Arc::new(values.copied().collect::<Int64Array>())
    }

    fn to_scalar(value: Option<&Self>) -> ScalarValue {
        ScalarValue::Int64(value.copied())
    }
}

impl CountKey for Finite {
    const DATA_TYPE: DataType = DataType::Float64;

    fn update(state: &mut CountsState<Self>, values: &ArrayRef) -> Result<()> {
        let counts: &mut NumericCounts = &mut state.counts;
        if values.data_type() == &DataType::Null {
            counts.skipped.nulls += values.len() as u64;
            return Ok(());
        }
        let values = as_float64_array(values)?;
        if values.null_count() == 0 {
            values.values().iter().for_each(|&v| counts.update(Some(v)));
        } else {
            values.iter().for_each(|v| counts.update(v));
        }
        Ok(())
    }

    fn merge(state: &mut CountsState<Self>, values: &ArrayRef, counts: &UInt64Array) -> Result<()> {
        let values = as_float64_array(values)?;
        if values.null_count() > 0 {
            return internal_err!("NULL value in a counts state");
        }
        for (&v, &n) in values.values().iter().zip(counts.values()) {
            let Some(v) = Finite::new(v) else {
                return internal_err!("non-finite value {v} in a counts state");
            };
            state.add(&v, n);
        }
        Ok(())
    }

    fn to_array<'a>(values: impl Iterator<Item = &'a Self>) -> ArrayRef {
        Arc::new(values.map(|v| v.get()).collect::<Float64Array>())
    }

    fn to_scalar(value: Option<&Self>) -> ScalarValue {
        ScalarValue::Float64(value.map(|v| v.get()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringViewArray;

    fn strings(values: ArrayRef) -> CountsState<String> {
        let mut s = CountsState::default();
        s.update_batch(&values).unwrap();
        s
    }

    #[test]
    fn every_string_layout_counts_alike() {
        let values = vec![Some("a"), None, Some("bb"), Some("a")];
        let utf8 = strings(Arc::new(StringArray::from(values.clone())));
        let view = strings(Arc::new(StringViewArray::from(values)));
        assert_eq!(utf8.counts, view.counts);
        assert_eq!(utf8.counts.counts["a"], 2);
        assert_eq!(utf8.counts.skipped.nulls, 1);
        assert_eq!(utf8.key_bytes, view.key_bytes);
        assert!(utf8.key_bytes >= 3);
    }

    #[test]
    fn states_round_trip_and_merge_exactly() -> Result<()> {
        let mut a = CountsState::<Finite>::default();
        let mut b = CountsState::<Finite>::default();
        a.update_batch(
            &(Arc::new(Float64Array::from(vec![
                Some(1.5),
                None,
                Some(f64::NAN),
                Some(-0.0),
            ])) as ArrayRef),
        )?;
        b.update_batch(&(Arc::new(Float64Array::from(vec![0.0, 1.5, f64::INFINITY])) as ArrayRef))?;
        let columns: Vec<ArrayRef> = a
            .state()
            .into_iter()
            .zip(b.state())
            .map(|(x, y)| ScalarValue::iter_to_array([x, y]))
            .collect::<Result<_>>()?;
        let mut merged = CountsState::<Finite>::default();
        merged.merge_batch(&columns)?;
        let zero = Finite::new(0.0).unwrap();
        let one_half = Finite::new(1.5).unwrap();
        assert_eq!(merged.counts.counts.len(), 2);
        assert_eq!(
            (merged.counts.counts[&zero], merged.counts.counts[&one_half]),
            (2, 2)
        );
        assert_eq!(
            (
                merged.counts.skipped.nulls,
                merged.counts.skipped.non_finite
            ),
            (1, 2)
        );
        Ok(())
    }

    #[test]
    fn size_grows_with_the_keys() {
        let small = strings(Arc::new(StringArray::from(vec!["x"])));
        let long = "y".repeat(1000);
        let big = strings(Arc::new(StringArray::from(vec![long.as_str()])));
        assert!(big.size() >= small.size() + 999);
    }
}
