//! Short byte keys packed into a `u128`, and a table of them.
//!
//! Most categories and entity ids are under 16 bytes. Packed with their
//! length they compare as one integer, and a table of them holds the keys
//! themselves: a lookup reads one slot, with no pointer to follow to the
//! key's bytes. Vocabulary lookups ([`super::vocab`]) and the entity ids of
//! window steps (`window::exec`) use it.

/// `key` (under 16 bytes) packed with its length plus one in the last
/// byte, so that no two keys pack alike and none packs to 0 (the table's
/// empty slot); `None` for longer keys.
///
/// The bytes are read as two overlapping fixed-size loads per half rather
/// than copied by length (a call to `memcpy`, a fifth of a vocabulary
/// lookup): the result is the key's bytes in order, zeros after them.
#[inline]
pub fn pack(key: &[u8]) -> Option<u128> {
    let n = key.len();
    if n >= 16 {
        return None;
    }
    let (lo, hi) = if n >= 8 {
        let lo = u64::from_le_bytes(key[..8].try_into().unwrap());
        // Bytes 8..n: the top n - 8 bytes of the 8 ending at n.
        let tail = u64::from_le_bytes(key[n - 8..].try_into().unwrap());
        let hi = if n == 8 { 0 } else { tail >> (8 * (16 - n)) };
        (lo, hi)
    } else {
        (short(key), 0)
    };
    Some(u128::from(lo) | (u128::from(hi | ((n as u64 + 1) << 56)) << 64))
}

/// The bytes of `key` (under 8 bytes) as a little-endian integer: two
/// loads that overlap, OR-ed (the shared bytes are equal).
#[inline]
fn short(key: &[u8]) -> u64 {
    let n = key.len();
    if n >= 4 {
        let a = u32::from_le_bytes(key[..4].try_into().unwrap());
        let b = u32::from_le_bytes(key[n - 4..].try_into().unwrap());
        u64::from(a) | (u64::from(b) << (8 * (n - 4)))
    } else if n >= 2 {
        let a = u16::from_le_bytes(key[..2].try_into().unwrap());
        let b = u16::from_le_bytes(key[n - 2..].try_into().unwrap());
        u64::from(a) | (u64::from(b) << (8 * (n - 2)))
    } else if n == 1 {
        u64::from(key[0])
    } else {
        0
    }
}

/// Values by packed key: an open-addressing table, at most half full,
/// probed linearly from a multiplicative hash.
#[derive(Debug, Clone, Default)]
pub struct PackedTable<V: Copy> {
    /// (key halves, value); key `[0, 0]` is an empty slot. Two `u64`s
    /// rather than a `u128` keep a slot 8-byte aligned (24 bytes for a
    /// `u32` value, not 32).
    slots: Vec<([u64; 2], V)>,
    len: usize,
    shift: u32,
}

impl<V: Copy + Default> PackedTable<V> {
    #[inline]
    fn slot(&self, key: u128) -> usize {
        let h = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
        (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: u128) -> Option<V> {
        if self.slots.is_empty() {
            return None;
        }
        let key = halves(key);
        let mask = self.slots.len() - 1;
        let mut i = self.slot(whole(key));
        loop {
            match &self.slots[i] {
                (k, v) if *k == key => return Some(*v),
                ([0, 0], _) => return None,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Sets `key`'s value unless it has one (a key given twice keeps its
    /// first value).
    pub fn insert(&mut self, key: u128, value: V) {
        if 2 * (self.len + 1) > self.slots.len() {
            let size = (2 * self.slots.len()).max(8);
            let old = std::mem::replace(&mut self.slots, vec![([0, 0], V::default()); size]);
            self.shift = 64 - size.trailing_zeros();
            self.len = 0;
            for (k, v) in old {
                if k != [0, 0] {
                    self.insert(whole(k), v);
                }
            }
        }
        let mask = self.slots.len() - 1;
        let mut i = self.slot(key);
        let key = halves(key);
        loop {
            match &self.slots[i] {
                (k, _) if *k == key => return,
                ([0, 0], _) => break,
                _ => i = (i + 1) & mask,
            }
        }
        self.slots[i] = (key, value);
        self.len += 1;
    }

    /// Asks the CPU to fetch `key`'s first slot, for a lookup about to come
    /// (a hint; nothing on architectures other than x86-64).
    #[inline]
    pub fn prefetch(&self, key: u128) {
        if !self.slots.is_empty() {
            prefetch(&self.slots[self.slot(key)]);
        }
    }
}

#[inline]
fn halves(key: u128) -> [u64; 2] {
    [key as u64, (key >> 64) as u64]
}

#[inline]
fn whole(halves: [u64; 2]) -> u128 {
    u128::from(halves[0]) | (u128::from(halves[1]) << 64)
}

/// Asks the CPU to bring `value` into its cache (a hint, for reads about to
/// come; nothing on architectures other than x86-64).
#[inline]
pub fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache, and `value` is a reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (value as *const T).cast::<i8>(),
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_key_is_its_bytes_then_zeros_then_its_length() {
        let bytes: Vec<u8> = (1..=16).map(|i| i * 15).collect();
        for n in 0..16 {
            let mut expected = [0u8; 16];
            expected[..n].copy_from_slice(&bytes[..n]);
            expected[15] = n as u8 + 1;
            assert_eq!(
                pack(&bytes[..n]),
                Some(u128::from_le_bytes(expected)),
                "length {n}"
            );
        }
        // Bytes of 0 and 0xFF inside and at the ends.
        for key in [
            &b"\0"[..],
            b"\xff\0\xff",
            b"\0\0\0\0\0\0\0\xff\xff",
            b"ab\0",
        ] {
            let mut expected = [0u8; 16];
            expected[..key.len()].copy_from_slice(key);
            expected[15] = key.len() as u8 + 1;
            assert_eq!(pack(key), Some(u128::from_le_bytes(expected)));
        }
    }

    #[test]
    fn keys_of_every_short_length_stay_apart() {
        // Lengths 0 to 15 pack; 16 does not.
        let keys: Vec<Vec<u8>> = (0..16).map(|n| vec![b'a'; n]).collect();
        assert_eq!(pack(&[b'a'; 16]), None);
        let mut table = PackedTable::default();
        for (i, k) in keys.iter().enumerate() {
            table.insert(pack(k).unwrap(), i as u32);
        }
        // Given twice: the first value stays.
        table.insert(pack(b"aa").unwrap(), 99);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(table.get(pack(k).unwrap()), Some(i as u32));
        }
        assert_eq!(table.get(pack(b"b").unwrap()), None);
        assert_eq!(table.get(pack(b"a\0").unwrap()), None);
        // Grown well past its first size, nothing lost.
        for i in 0..10_000u32 {
            table.insert(pack(format!("e{i}").as_bytes()).unwrap(), 100 + i);
        }
        assert_eq!(table.get(pack(b"e9999").unwrap()), Some(10_099));
        assert_eq!(table.get(pack(b"").unwrap()), Some(0));
        assert_eq!(PackedTable::<u32>::default().get(pack(b"x").unwrap()), None);
    }
}
