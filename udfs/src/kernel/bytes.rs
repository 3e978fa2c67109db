//! A small binary codec for states that are saved and read back (serving's
//! window state): little-endian fixed-width numbers and length-prefixed
//! bytes. Writing is infallible; reading checks every length and gives
//! `None` on truncated or malformed input, never panics.

/// Appends values to a byte buffer.
pub trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_i64(&mut self, v: i64);
    fn put_f64(&mut self, v: f64);
    /// The length (u64) and then the bytes.
    fn put_bytes(&mut self, v: &[u8]);
}

impl Put for Vec<u8> {
    #[inline]
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    #[inline]
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    #[inline]
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    #[inline]
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    #[inline]
    fn put_f64(&mut self, v: f64) {
        self.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    fn put_bytes(&mut self, v: &[u8]) {
        self.put_u64(v.len() as u64);
        self.extend_from_slice(v);
    }
}

/// Reads values back from the front of a byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).map(|b| b.try_into().expect("N bytes"))
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|b| b[0])
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    pub fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }

    pub fn f64(&mut self) -> Option<f64> {
        self.u64().map(f64::from_bits)
    }

    /// A count of items that follow, each at least `min_item_bytes` long:
    /// `None` if the input cannot hold that many (so a corrupt count never
    /// makes a reader allocate more than the input's size).
    pub fn count(&mut self, min_item_bytes: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n.checked_mul(min_item_bytes.max(1))? <= self.rest.len()).then_some(n)
    }

    /// Length-prefixed bytes ([`Put::put_bytes`]).
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.count(1)?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written_and_truncation_is_none() {
        let mut out = Vec::new();
        out.put_u8(7);
        out.put_u32(0xDEAD_BEEF);
        out.put_i64(-5);
        out.put_f64(-0.1);
        out.put_bytes(b"abc");
        // 1 + 4 + 8 + 8 + 8 + 3 bytes.
        assert_eq!(out.len(), 32);
        let mut r = Reader::new(&out);
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.u32(), Some(0xDEAD_BEEF));
        assert_eq!(r.i64(), Some(-5));
        assert_eq!(r.f64().map(f64::to_bits), Some((-0.1f64).to_bits()));
        assert_eq!(r.bytes(), Some(&b"abc"[..]));
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.u8(), None);
        // A length past the end is refused, not allocated.
        let mut lie = Vec::new();
        lie.put_u64(u64::MAX);
        assert_eq!(Reader::new(&lie).bytes(), None);
        assert_eq!(Reader::new(&out[..31]).clone().take(32), None);
    }
}
