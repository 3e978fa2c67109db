//! Hash bucketing: `hash_bucket(x, n)` and (later) feature crosses.

use super::farmhash::fingerprint64;

/// The bucket of a byte string: FarmHash Fingerprint64 of the bytes, read as
/// an unsigned 64-bit number, modulo `num_buckets`.
///
/// This is BigQuery ML's `ML.HASH_BUCKETIZE` and TensorFlow's
/// `tf.strings.to_hash_bucket_fast`.
///
/// # Panics
/// If `num_buckets` is 0; callers validate it at planning time.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::hash_bucket_bytes;
/// let buckets: Vec<i64> = ["a", "b", "c", "d"]
///     .iter()
///     .map(|s| hash_bucket_bytes(s.as_bytes(), 3))
///     .collect();
/// assert_eq!(buckets, [0, 1, 1, 2]);
/// ```
#[inline]
pub fn hash_bucket_bytes(bytes: &[u8], num_buckets: u64) -> i64 {
    // The remainder is < num_buckets <= i64::MAX (checked at planning), so the
    // conversion is exact.
    (fingerprint64(bytes) % num_buckets) as i64
}

/// The bucket of a signed integer: the bucket of its decimal text, without
/// allocating.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::{hash_bucket_bytes, hash_bucket_i64};
/// assert_eq!(hash_bucket_i64(-42, 1000), hash_bucket_bytes(b"-42", 1000));
/// ```
#[inline]
pub fn hash_bucket_i64(value: i64, num_buckets: u64) -> i64 {
    let mut buf = [0u8; 20];
    hash_bucket_bytes(format_i64(value, &mut buf), num_buckets)
}

/// The bucket of an unsigned integer: the bucket of its decimal text.
#[inline]
pub fn hash_bucket_u64(value: u64, num_buckets: u64) -> i64 {
    let mut buf = [0u8; 20];
    hash_bucket_bytes(format_u64(value, &mut buf), num_buckets)
}

/// Writes the decimal text of `value` at the end of `buf` and returns it.
#[inline]
pub(crate) fn format_u64(mut value: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    &buf[start..]
}

/// Writes the decimal text of `value` (with a leading `-` when negative) at
/// the end of `buf` and returns it. 20 bytes hold `i64::MIN`.
#[inline]
pub(crate) fn format_i64(value: i64, buf: &mut [u8; 20]) -> &[u8] {
    let len = format_u64(value.unsigned_abs(), buf).len();
    if value < 0 {
        let start = buf.len() - len - 1;
        buf[start] = b'-';
        &buf[start..]
    } else {
        &buf[buf.len() - len..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_matches_std() {
        for v in [
            0,
            1,
            -1,
            9,
            10,
            -10,
            123_456_789,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            let mut buf = [0u8; 20];
            assert_eq!(format_i64(v, &mut buf), v.to_string().as_bytes());
        }
        for v in [0, 7, u64::MAX, 10_000_000_000_000_000_000] {
            let mut buf = [0u8; 20];
            assert_eq!(format_u64(v, &mut buf), v.to_string().as_bytes());
        }
    }

    #[test]
    fn documented_examples() {
        // TensorFlow's to_hash_bucket_fast docs: 'a','b','c','d' with 3 buckets.
        let got: Vec<i64> = ["a", "b", "c", "d"]
            .iter()
            .map(|s| hash_bucket_bytes(s.as_bytes(), 3))
            .collect();
        assert_eq!(got, [0, 1, 1, 2]);
        // BigQuery ML.HASH_BUCKETIZE docs: 'Car','Bus','Tree' with 11 buckets.
        let got: Vec<i64> = ["Car", "Bus", "Tree"]
            .iter()
            .map(|s| hash_bucket_bytes(s.as_bytes(), 11))
            .collect();
        assert_eq!(got, [8, 4, 5]);
    }

    #[test]
    fn integers_hash_as_their_text() {
        for v in [0i64, 5, -5, 39, i64::MIN, i64::MAX] {
            assert_eq!(
                hash_bucket_i64(v, 97),
                hash_bucket_bytes(v.to_string().as_bytes(), 97)
            );
        }
        assert_eq!(
            hash_bucket_u64(u64::MAX, 1_000_003),
            hash_bucket_bytes(u64::MAX.to_string().as_bytes(), 1_000_003)
        );
    }

    #[test]
    fn crosses_join_texts_with_underscores() {
        let mut c = CrossBuffer::default();
        c.push_str("");
        c.push_str("b");
        c.push_u64(7);
        assert_eq!(c.bucket(10_007), hash_bucket_bytes(b"_b_7", 10_007));
        c.push_i64(-1);
        c.push_str("x");
        assert_eq!(c.bucket(10_007), hash_bucket_bytes(b"-1_x", 10_007));
    }

    #[test]
    fn one_bucket_is_always_zero() {
        assert_eq!(hash_bucket_bytes(b"anything", 1), 0);
        assert_eq!(hash_bucket_i64(-7, 1), 0);
    }
}

/// A reusable buffer for feature crosses: the texts of the values joined by
/// `_`, hashed like [`hash_bucket_bytes`]. One buffer serves a whole batch,
/// so crossing allocates nothing per row.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::{CrossBuffer, hash_bucket_bytes};
/// let mut cross = CrossBuffer::default();
/// cross.push_str("Bachelors");
/// cross.push_i64(39);
/// assert_eq!(cross.bucket(1000), hash_bucket_bytes(b"Bachelors_39", 1000));
/// ```
#[derive(Debug, Default)]
pub struct CrossBuffer {
    bytes: Vec<u8>,
    /// Values pushed so far (an empty string is still a value).
    parts: usize,
}

impl CrossBuffer {
    /// Starts a new cross.
    #[inline]
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.parts = 0;
    }

    #[inline]
    fn separator(&mut self) {
        if self.parts > 0 {
            self.bytes.push(b'_');
        }
        self.parts += 1;
    }

    /// Appends a string value.
    #[inline]
    pub fn push_str(&mut self, value: &str) {
        self.separator();
        self.bytes.extend_from_slice(value.as_bytes());
    }

    /// Appends an integer value as its decimal text.
    #[inline]
    pub fn push_i64(&mut self, value: i64) {
        self.separator();
        let mut buf = [0u8; 20];
        self.bytes.extend_from_slice(format_i64(value, &mut buf));
    }

    /// Appends an unsigned integer value as its decimal text.
    #[inline]
    pub fn push_u64(&mut self, value: u64) {
        self.separator();
        let mut buf = [0u8; 20];
        self.bytes.extend_from_slice(format_u64(value, &mut buf));
    }

    /// The bucket of the joined text, then ready for the next cross.
    #[inline]
    pub fn bucket(&mut self, num_buckets: u64) -> i64 {
        let b = hash_bucket_bytes(&self.bytes, num_buckets);
        self.clear();
        b
    }
}
