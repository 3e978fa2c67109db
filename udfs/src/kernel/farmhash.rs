//! FarmHash `Fingerprint64`, the hash behind `hash_bucket` and feature crosses.
//!
//! This is a pure-Rust, allocation-free implementation of Google's FarmHash
//! `Fingerprint64` (identical to `farmhashna::Hash64` in the farmhash C++
//! library). Its output is a fingerprint and is therefore stable forever: it
//! never changes between versions, platforms or processes. It matches
//! BigQuery's `FARM_FINGERPRINT` (which returns the same 64 bits as a signed
//! `INT64`; reinterpret it as unsigned to compare) and TensorFlow's
//! `Fingerprint64`, the hash used by `tf.strings.to_hash_bucket_fast`.
//!
//! All multi-byte reads are little-endian and all arithmetic wraps modulo
//! 2^64, so the result is identical on every target.

const K0: u64 = 0xc3a5_c85c_97cb_3127;
const K1: u64 = 0xb492_b66f_be98_f273;
const K2: u64 = 0x9ae1_6a3b_2f90_404f;

/// Seed used by `farmhashna::Hash64` for inputs longer than 64 bytes.
const SEED: u64 = 81;

#[inline]
fn fetch64(s: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[i..i + 8]);
    u64::from_le_bytes(b)
}

#[inline]
fn fetch32(s: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&s[i..i + 4]);
    u64::from(u32::from_le_bytes(b))
}

#[inline]
fn shift_mix(v: u64) -> u64 {
    v ^ (v >> 47)
}

#[inline]
fn hash_len16(u: u64, v: u64, mul: u64) -> u64 {
    let mut a = (u ^ v).wrapping_mul(mul);
    a ^= a >> 47;
    let mut b = (v ^ a).wrapping_mul(mul);
    b ^= b >> 47;
    b.wrapping_mul(mul)
}

#[inline]
fn hash_len_0_to_16(s: &[u8]) -> u64 {
    let len = s.len();
    if len >= 8 {
        let mul = K2.wrapping_add(len as u64 * 2);
        let a = fetch64(s, 0).wrapping_add(K2);
        let b = fetch64(s, len - 8);
        let c = b.rotate_right(37).wrapping_mul(mul).wrapping_add(a);
        let d = a.rotate_right(25).wrapping_add(b).wrapping_mul(mul);
        return hash_len16(c, d, mul);
    }
    if len >= 4 {
        let mul = K2.wrapping_add(len as u64 * 2);
        let a = fetch32(s, 0);
        return hash_len16((len as u64).wrapping_add(a << 3), fetch32(s, len - 4), mul);
    }
    if len > 0 {
        // With len <= 3 and byte-sized inputs, y and z fit in 32 bits, so
        // widening to u64 up front is identical to farmhash's uint32 math.
        let a = u64::from(s[0]);
        let b = u64::from(s[len >> 1]);
        let c = u64::from(s[len - 1]);
        let y = a + (b << 8);
        let z = len as u64 + (c << 2);
        return shift_mix(y.wrapping_mul(K2) ^ z.wrapping_mul(K0)).wrapping_mul(K2);
    }
    K2
}

#[inline]
fn hash_len_17_to_32(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = fetch64(s, 0).wrapping_mul(K1);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    hash_len16(
        a.wrapping_add(b)
            .rotate_right(43)
            .wrapping_add(c.rotate_right(30))
            .wrapping_add(d),
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18))
            .wrapping_add(c),
        mul,
    )
}

#[inline]
fn hash_len_33_to_64(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = fetch64(s, 0).wrapping_mul(K2);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    let y = a
        .wrapping_add(b)
        .rotate_right(43)
        .wrapping_add(c.rotate_right(30))
        .wrapping_add(d);
    let z = hash_len16(
        y,
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18))
            .wrapping_add(c),
        mul,
    );
    let e = fetch64(s, 16).wrapping_mul(mul);
    let f = fetch64(s, 24);
    let g = y.wrapping_add(fetch64(s, len - 32)).wrapping_mul(mul);
    let h = z.wrapping_add(fetch64(s, len - 24)).wrapping_mul(mul);
    hash_len16(
        e.wrapping_add(f)
            .rotate_right(43)
            .wrapping_add(g.rotate_right(30))
            .wrapping_add(h),
        e.wrapping_add(f.wrapping_add(a).rotate_right(18))
            .wrapping_add(g),
        mul,
    )
}

/// Mixes the 32 bytes at `s[i..i + 32]` with seeds `a` and `b`, returning a
/// pair of 64-bit values (farmhash's `WeakHashLen32WithSeeds`).
#[inline]
fn weak_hash_len32_with_seeds(s: &[u8], i: usize, a: u64, b: u64) -> (u64, u64) {
    let w = fetch64(s, i);
    let x = fetch64(s, i + 8);
    let y = fetch64(s, i + 16);
    let z = fetch64(s, i + 24);
    let mut a = a.wrapping_add(w);
    let mut b = b.wrapping_add(a).wrapping_add(z).rotate_right(21);
    let c = a;
    a = a.wrapping_add(x).wrapping_add(y);
    b = b.wrapping_add(a.rotate_right(44));
    (a.wrapping_add(z), b.wrapping_add(c))
}

/// FarmHash Fingerprint64 of `bytes` (`farmhashna::Hash64`).
///
/// The value is stable forever and platform-independent. It equals
/// BigQuery's `FARM_FINGERPRINT(bytes)` reinterpreted as `u64`, and
/// TensorFlow's `Fingerprint64`, which backs
/// `tf.strings.to_hash_bucket_fast` (bucket = `fingerprint64(s) % n`).
/// Never allocates.
///
/// # Example
///
/// ```
/// use skewless_udfs::kernel::farmhash::fingerprint64;
///
/// assert_eq!(fingerprint64(b"hello world"), 6_381_520_714_923_946_011);
/// assert_eq!(fingerprint64("Car".as_bytes()) % 11, 8);
/// ```
#[must_use]
pub fn fingerprint64(bytes: &[u8]) -> u64 {
    let s = bytes;
    let len = s.len();
    if len <= 16 {
        return hash_len_0_to_16(s);
    }
    if len <= 32 {
        return hash_len_17_to_32(s);
    }
    if len <= 64 {
        return hash_len_33_to_64(s);
    }

    // For inputs longer than 64 bytes, hash 64-byte blocks while keeping 56
    // bytes of state: v, w, x, y and z.
    let mut x = SEED;
    let mut y = SEED.wrapping_mul(K1).wrapping_add(113);
    let mut z = shift_mix(y.wrapping_mul(K2).wrapping_add(113)).wrapping_mul(K2);
    let mut v = (0u64, 0u64);
    let mut w = (0u64, 0u64);
    x = x.wrapping_mul(K2).wrapping_add(fetch64(s, 0));

    // Every full block before the last (possibly overlapping) 64 bytes.
    let end = ((len - 1) / 64) * 64;
    let last64 = len - 64;
    let mut i = 0;
    loop {
        x = x
            .wrapping_add(y)
            .wrapping_add(v.0)
            .wrapping_add(fetch64(s, i + 8))
            .rotate_right(37)
            .wrapping_mul(K1);
        y = y
            .wrapping_add(v.1)
            .wrapping_add(fetch64(s, i + 48))
            .rotate_right(42)
            .wrapping_mul(K1);
        x ^= w.1;
        y = y.wrapping_add(v.0).wrapping_add(fetch64(s, i + 40));
        z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(K1);
        v = weak_hash_len32_with_seeds(s, i, v.1.wrapping_mul(K1), x.wrapping_add(w.0));
        w = weak_hash_len32_with_seeds(
            s,
            i + 32,
            z.wrapping_add(w.1),
            y.wrapping_add(fetch64(s, i + 16)),
        );
        core::mem::swap(&mut z, &mut x);
        i += 64;
        if i == end {
            break;
        }
    }

    let mul = K1.wrapping_add((z & 0xff) << 1);
    let i = last64;
    w.0 = w.0.wrapping_add(((len - 1) & 63) as u64);
    v.0 = v.0.wrapping_add(w.0);
    w.0 = w.0.wrapping_add(v.0);
    x = x
        .wrapping_add(y)
        .wrapping_add(v.0)
        .wrapping_add(fetch64(s, i + 8))
        .rotate_right(37)
        .wrapping_mul(mul);
    y = y
        .wrapping_add(v.1)
        .wrapping_add(fetch64(s, i + 48))
        .rotate_right(42)
        .wrapping_mul(mul);
    x ^= w.1.wrapping_mul(9);
    y = y
        .wrapping_add(v.0.wrapping_mul(9))
        .wrapping_add(fetch64(s, i + 40));
    z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(mul);
    v = weak_hash_len32_with_seeds(s, i, v.1.wrapping_mul(mul), x.wrapping_add(w.0));
    w = weak_hash_len32_with_seeds(
        s,
        i + 32,
        z.wrapping_add(w.1),
        y.wrapping_add(fetch64(s, i + 16)),
    );
    core::mem::swap(&mut z, &mut x);
    hash_len16(
        hash_len16(v.0, w.0, mul)
            .wrapping_add(shift_mix(y).wrapping_mul(K0))
            .wrapping_add(z),
        hash_len16(v.1, w.1, mul).wrapping_add(x),
        mul,
    )
}

#[cfg(test)]
mod tests {
    use super::fingerprint64;

    /// Deterministic non-ASCII test pattern: byte `i` is `(31 * i + 7) % 251`.
    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 31 + 7) % 251) as u8).collect()
    }

    // Reference values below came from the PyPI binding `pyfarmhash` 0.5.1
    // (`farmhash.fingerprint64(bytes)`), an independent wrapper around
    // Google's C++ farmhash library.

    #[test]
    fn short_inputs_match_reference() {
        let cases: &[(&[u8], u64)] = &[
            (b"", 11_160_318_154_034_397_263),
            (b"a", 12_917_804_110_809_363_939),
            (b"b", 11_795_596_070_477_164_822),
            (b"c", 11_430_444_447_143_000_872),
            (b"d", 4_470_636_696_479_570_465),
            (b"ab", 12_289_600_257_749_001_502),
            (b"abc", 2_640_714_258_260_161_385),
            (b"Car", 10_668_287_882_508_038_494),
            (b"Bus", 6_645_254_183_153_430_695),
            (b"Tree", 15_712_382_100_044_595_157),
            (b"hello", 13_009_744_463_427_800_296),
            (b"abcdefgh", 18_368_443_631_171_807_497),
            (b"hello world", 6_381_520_714_923_946_011),
            (b"0123456789abcdef", 6_105_018_409_752_412_263),
            (b"0123456789abcdefg", 12_024_047_538_191_061_578),
            (b"The quick brown fox jump", 6_702_341_905_823_656_245),
            (
                b"0123456789abcdef0123456789ABCDEF",
                15_205_414_768_028_584_270,
            ),
            (&[200, 1], 1_924_070_192_404_156_019),
        ];
        for &(input, expected) in cases {
            assert_eq!(fingerprint64(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn utf8_input_matches_reference() {
        let s = "Zürich 東京";
        assert_eq!(s.len(), 14);
        assert_eq!(fingerprint64(s.as_bytes()), 5_932_924_173_880_376_439);
    }

    #[test]
    fn long_inputs_match_reference() {
        let cases: &[(usize, u64)] = &[
            (33, 1_072_928_522_818_970_108),
            (48, 4_511_257_955_736_116_064),
            (64, 7_240_171_158_262_197_935),
            (65, 5_657_966_536_927_318_432),
            (128, 3_713_188_649_558_406_716),
            (129, 1_491_411_452_700_441_556),
            (200, 5_341_905_616_176_888_759),
            (1000, 4_305_698_059_241_039_725),
        ];
        for &(n, expected) in cases {
            assert_eq!(fingerprint64(&pattern(n)), expected, "length {n}");
        }
    }

    #[test]
    fn hash_bucket_modulo_examples() {
        let mod3: Vec<u64> = [b"a", b"b", b"c", b"d"]
            .iter()
            .map(|s| fingerprint64(*s) % 3)
            .collect();
        assert_eq!(mod3, [0, 1, 1, 2]);
        let mod11: Vec<u64> = ["Car", "Bus", "Tree"]
            .iter()
            .map(|s| fingerprint64(s.as_bytes()) % 11)
            .collect();
        assert_eq!(mod11, [8, 4, 5]);
    }

    #[test]
    fn doc_example_values() {
        assert_eq!(fingerprint64(b"hello world"), 6_381_520_714_923_946_011);
        assert_eq!(fingerprint64("Car".as_bytes()) % 11, 8);
    }
}
