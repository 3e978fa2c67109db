//! A small per-batch memo for functions of string columns read from
//! Parquet. DataFusion reads Parquet strings as `Utf8View`, and a
//! dictionary-encoded column gives equal values equal views: the same
//! 16 bytes (length, prefix and either the inlined text or a buffer and
//! offset). Within one array, equal views mean equal strings, so a result can
//! be looked up by the view — one multiply and a 16-byte compare — instead
//! of hashing and comparing the text. Only valid for one batch: views point
//! into that array's buffers.

/// A direct-mapped memo of `SLOTS` entries keyed by up to `K` views.
pub(crate) struct ViewMemo<V: Copy, const K: usize> {
    slots: Vec<Option<([u128; K], V)>>,
}

const SLOTS: usize = 512;

impl<V: Copy, const K: usize> ViewMemo<V, K> {
    pub(crate) fn new() -> Self {
        Self {
            slots: vec![None; SLOTS],
        }
    }

    /// The value for `key`, computed by `f` when not memoized (or evicted).
    #[inline]
    pub(crate) fn get(&mut self, key: [u128; K], f: impl FnOnce() -> V) -> V {
        let mut h = 0u64;
        for k in key {
            h = (h ^ (k as u64) ^ ((k >> 64) as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
        let slot = &mut self.slots[(h >> (64 - SLOTS.trailing_zeros())) as usize];
        match slot {
            Some((k, v)) if *k == key => *v,
            _ => {
                let v = f();
                *slot = Some((key, v));
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, StringViewBuilder};

    use super::*;

    #[test]
    fn equal_views_are_equal_strings_and_distinct_ones_are_not_confused() {
        // Short (inlined) and long (buffered) strings, repeated.
        let long = "a string longer than twelve bytes";
        let values: Vec<Option<&str>> = (0..5000)
            .map(|i| match i % 5 {
                0 => Some("Private"),
                1 => Some(long),
                2 => None,
                3 => Some("Self-emp-not-inc"),
                _ => Some(if i % 10 == 4 { "x" } else { "y" }),
            })
            .collect();
        // Deduplicated as the Parquet reader's dictionary decoding does: equal
        // long strings share their bytes, so their views are equal too.
        let mut builder = StringViewBuilder::new().with_deduplicate_strings();
        builder.extend(values.iter().copied());
        let a = builder.finish();
        let mut memo = ViewMemo::<usize, 1>::new();
        let mut computed = 0;
        for (i, expected) in values.iter().enumerate() {
            if a.is_null(i) {
                continue;
            }
            let got = memo.get([a.views()[i]], || {
                computed += 1;
                a.value(i).len()
            });
            assert_eq!(got, expected.unwrap().len());
        }
        // Five distinct values: computed once each unless two share a slot.
        assert!(computed < 100, "{computed}");
    }
}
