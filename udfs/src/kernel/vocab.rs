//! Vocabulary lookups: the instance-level half of `vocab_index` and `one_hot`.

use std::collections::HashMap;
use std::hash::Hash;

use super::packed::PackedTable;

/// A fitted vocabulary: each value's position, plus the out-of-vocabulary
/// rule.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::vocab::Vocabulary;
/// let v = Vocabulary::new(["HS-grad".to_string(), "Bachelors".to_string()], 1);
/// assert_eq!(v.index("Bachelors"), Some(1));
/// assert_eq!(v.index("Doctorate"), Some(2)); // unseen → V (one OOV bucket)
/// let strict = Vocabulary::new(["a".to_string()], 0);
/// assert_eq!(strict.index("z"), None); // no OOV buckets → NULL
/// ```
#[derive(Debug, Clone)]
pub struct Vocabulary<K: Eq + Hash> {
    /// foldhash: several times faster than SipHash on short keys; lookups
    /// need no protection against adversarial collisions here.
    positions: HashMap<K, i64, foldhash::fast::RandomState>,
    /// The positions of the keys of up to 15 bytes (most categories),
    /// packed into a `u128` ([`ShortKey`]): found without following a
    /// pointer to the key's bytes.
    short: PackedTable<i64>,
    size: i64,
    oov_buckets: u64,
}

/// A key that may pack into a `u128`: strings of up to 15 bytes (with
/// their length, so that no two pack alike).
pub trait ShortKey {
    fn packed(&self) -> Option<u128> {
        None
    }
}

impl ShortKey for str {
    #[inline]
    fn packed(&self) -> Option<u128> {
        super::packed::pack(self.as_bytes())
    }
}

impl ShortKey for String {
    #[inline]
    fn packed(&self) -> Option<u128> {
        self.as_str().packed()
    }
}

impl ShortKey for i64 {}

impl<K: Eq + Hash + ShortKey> Vocabulary<K> {
    /// A vocabulary of `values` in order (first → 0); a value listed twice
    /// keeps its first position.
    pub fn new(values: impl IntoIterator<Item = K>, oov_buckets: u64) -> Self {
        let mut positions = HashMap::with_hasher(foldhash::fast::RandomState::default());
        let mut short = PackedTable::default();
        let mut size = 0;
        for v in values {
            if let Some(p) = v.packed() {
                short.insert(p, size);
            }
            positions.entry(v).or_insert(size);
            size += 1;
        }
        Self {
            positions,
            short,
            size,
            oov_buckets,
        }
    }

    /// The number of values, V.
    pub fn len(&self) -> i64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The position of a value in the vocabulary, if present.
    #[inline]
    pub fn position<Q>(&self, value: &Q) -> Option<i64>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ShortKey + ?Sized,
    {
        match value.packed() {
            // Every short key is in `short`.
            Some(p) => self.short.get(p),
            None => self.positions.get(value).copied(),
        }
    }

    pub fn oov_buckets(&self) -> u64 {
        self.oov_buckets
    }

    /// The value at each position (`None` where a value listed twice left
    /// its later position empty).
    pub fn by_position(&self) -> Vec<Option<&K>> {
        let mut out = vec![None; self.size as usize];
        for (k, &p) in &self.positions {
            out[p as usize] = Some(k);
        }
        out
    }
}

impl Vocabulary<String> {
    /// `vocab_index` of a string: its position, or for an unseen value
    /// V + hash_bucket(value, oov_buckets), or `None` when there are no OOV
    /// buckets.
    #[inline]
    pub fn index(&self, value: &str) -> Option<i64> {
        self.lookup(value).0
    }

    /// [`Vocabulary::index`], and whether the vocabulary holds the value.
    #[inline]
    pub fn lookup(&self, value: &str) -> (Option<i64>, bool) {
        match self.position(value) {
            Some(p) => (Some(p), true),
            None if self.oov_buckets == 0 => (None, false),
            None => (
                Some(self.size + super::hash_bucket_bytes(value.as_bytes(), self.oov_buckets)),
                false,
            ),
        }
    }
}

impl Vocabulary<i64> {
    /// `vocab_index` of an integer; unseen integers hash as their decimal text.
    #[inline]
    pub fn index(&self, value: i64) -> Option<i64> {
        self.lookup(value).0
    }

    /// [`Vocabulary::index`], and whether the vocabulary holds the value.
    #[inline]
    pub fn lookup(&self, value: i64) -> (Option<i64>, bool) {
        match self.position(&value) {
            Some(p) => (Some(p), true),
            None if self.oov_buckets == 0 => (None, false),
            None => (
                Some(self.size + super::hash_bucket_i64(value, self.oov_buckets)),
                false,
            ),
        }
    }
}

/// The slot of `one_hot`: the value's position, or V for any unseen value.
#[inline]
pub fn one_hot_slot(position: Option<i64>, size: i64) -> usize {
    position.unwrap_or(size) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oov_buckets_follow_hash_bucket() {
        let v = Vocabulary::new(["x".to_string(), "y".to_string()], 11);
        assert_eq!(v.index("x"), Some(0));
        // Unseen 'Car' → 2 + hash_bucket('Car', 11) = 2 + 8.
        assert_eq!(v.index("Car"), Some(10));
        let ints = Vocabulary::new([7i64, 3], 1);
        assert_eq!((ints.index(3), ints.index(99)), (Some(1), Some(2)));
        assert_eq!(one_hot_slot(None, 2), 2);
        assert_eq!(one_hot_slot(Some(1), 2), 1);
    }

    #[test]
    fn duplicates_keep_first_position() {
        let v = Vocabulary::new(["a".to_string(), "a".to_string()], 0);
        assert_eq!(v.index("a"), Some(0));
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn short_and_long_keys_alike() {
        // Keys of 0, 14, 15, 16 and 17 bytes; lookups of each length, and
        // of a 15-byte key that is a prefix of a longer one.
        let keys = [
            "",
            "Prof-specialty",
            "Exec-managerial",
            "Transport-moving",
            "Machine-op-inspct",
        ];
        let v = Vocabulary::new(keys.map(String::from), 0);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(v.index(k), Some(i as i64), "{k:?}");
        }
        assert_eq!(v.index("Machine-op-insp"), None);
        assert_eq!(v.index("Transport-movin"), None);
        assert_eq!(v.index("Exec-managerial "), None);
        assert_eq!(v.index("e"), None);
    }
}
