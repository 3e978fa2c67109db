//! Deterministic splits: a row's split from a hash of its key.
//!
//! The key's text is hashed with FarmHash Fingerprint64 (as `hash_bucket`
//! does) and the 64-bit hash, read as a fraction of 2^64, falls into one of
//! the splits' cumulative ranges. A row's split depends on its key only:
//! the same on every run, machine and partitioning, and unchanged when rows
//! are appended.

/// Cumulative split boundaries on the 64-bit hash space.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits {
    /// `bounds[i]`: hashes below it (and not below `bounds[i - 1]`) are in
    /// split `i`; the last split takes every hash from the last bound on.
    bounds: Vec<u64>,
}

/// How far the proportions may sum from 1 (float literals such as 0.7 +
/// 0.2 + 0.1 do not add up to exactly 1.0).
pub const SUM_TOLERANCE: f64 = 1e-9;

impl Splits {
    /// Splits with the given proportions: each in [0, 1], summing to 1
    /// within [`SUM_TOLERANCE`]. The error says which proportion is wrong.
    ///
    /// # Example
    /// ```
    /// use skewless_udfs::kernel::split::Splits;
    /// let s = Splits::new(&[0.7, 0.2, 0.1]).unwrap();
    /// assert_eq!(s.index(0), 0);
    /// assert_eq!(s.index(u64::MAX), 2);
    /// assert_eq!(s.index((0.75 * 18446744073709551616.0) as u64), 1);
    /// assert!(Splits::new(&[0.7, 0.2]).is_err());
    /// ```
    pub fn new(proportions: &[f64]) -> Result<Self, String> {
        if proportions.is_empty() {
            return Err("at least one split is needed".into());
        }
        for (i, p) in proportions.iter().enumerate() {
            if !(0.0..=1.0).contains(p) {
                return Err(format!("proportion {} must be in [0, 1], got {p}", i + 1));
            }
        }
        let sum: f64 = proportions.iter().sum();
        if (sum - 1.0).abs() > SUM_TOLERANCE {
            return Err(format!("proportions must sum to 1, got {sum}"));
        }
        let mut bounds = Vec::with_capacity(proportions.len() - 1);
        let mut cumulative = 0.0;
        for p in &proportions[..proportions.len() - 1] {
            cumulative += p;
            // 2^64 · cumulative, saturating at u64::MAX for cumulative ≥ 1.
            bounds.push((cumulative * 18_446_744_073_709_551_616.0) as u64);
        }
        Ok(Self { bounds })
    }

    /// The split of a hash.
    #[inline]
    pub fn index(&self, hash: u64) -> usize {
        self.bounds.partition_point(|b| *b <= hash)
    }

    /// The split of a key's text (a string's UTF-8 bytes, an integer's
    /// decimal digits).
    #[inline]
    pub fn index_of_bytes(&self, bytes: &[u8]) -> usize {
        self.index(super::farmhash::fingerprint64(bytes))
    }

    /// The split of a signed integer key (its decimal text).
    #[inline]
    pub fn index_of_i64(&self, value: i64) -> usize {
        let mut buf = [0u8; 20];
        self.index_of_bytes(super::hash::format_i64(value, &mut buf))
    }

    /// The split of an unsigned integer key (its decimal text).
    #[inline]
    pub fn index_of_u64(&self, value: u64) -> usize {
        let mut buf = [0u8; 20];
        self.index_of_bytes(super::hash::format_u64(value, &mut buf))
    }
}

/// The sizes of the splits of a stratum of `n` rows: the integers nearest to
/// `n · p` for each proportion, summing to `n` (the largest-remainder
/// method; equal remainders favour the earlier split).
///
/// Proportions count as the decimals they are written as: `0.7` is 7/10,
/// not the binary double nearest to it, so 7,841 × 0.7 = 5,488.7 rounds to
/// 5,489 and 24,720 × 0.7 is exactly 17,304. Decimals beyond 24 places
/// are rounded away.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::split::allocate;
/// assert_eq!(allocate(7_841, &[0.7, 0.3]), [5_489, 2_352]);
/// assert_eq!(allocate(24_720, &[0.7, 0.3]), [17_304, 7_416]);
/// assert_eq!(allocate(10, &[0.7, 0.2, 0.1]), [7, 2, 1]);
/// ```
pub fn allocate(n: u64, proportions: &[f64]) -> Vec<u64> {
    const MAX_PLACES: usize = 24;
    // Each proportion as digits / 10^places, from its shortest round-trip text.
    let decimals: Vec<(u128, usize)> = proportions
        .iter()
        .map(|p| {
            let text = format!("{}", p.max(0.0));
            let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
            let frac = &frac[..frac.len().min(MAX_PLACES)];
            let digits: u128 = format!("{int}{frac}").parse().unwrap_or(0);
            (digits, frac.len())
        })
        .collect();
    let places = decimals.iter().map(|d| d.1).max().unwrap_or(0);
    let denominator = 10u128.pow(places as u32);
    let n128 = u128::from(n);
    let mut sizes = Vec::with_capacity(proportions.len());
    let mut remainders = Vec::with_capacity(proportions.len());
    for (digits, p) in &decimals {
        let quota = n128 * digits * 10u128.pow((places - p) as u32);
        sizes.push((quota / denominator) as u64);
        remainders.push(quota % denominator);
    }
    let assigned: u64 = sizes.iter().sum();
    if assigned < n && !sizes.is_empty() {
        let mut order: Vec<usize> = (0..sizes.len()).collect();
        // Largest remainder first; the earlier split on ties.
        order.sort_by(|a, b| remainders[*b].cmp(&remainders[*a]).then(a.cmp(b)));
        for k in 0..(n - assigned) as usize {
            sizes[order[k % order.len()]] += 1;
        }
    }
    sizes
}

/// The statistic of an exact stratified split: per stratum, the key hashes
/// seen, then the hash thresholds that cut the stratum's rows, ranked by
/// hash, into splits of the [`allocate`]d sizes.
///
/// Mergeable (partial states from partitions are concatenated) and
/// order-independent: the thresholds depend only on the multiset of
/// hashes. Only the narrow (stratum, hash) pairs are kept, never the rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StratumHashes {
    hashes: std::collections::BTreeMap<String, Vec<u64>>,
}

impl StratumHashes {
    /// Records one row.
    pub fn push(&mut self, stratum: &str, hash: u64) {
        match self.hashes.get_mut(stratum) {
            Some(v) => v.push(hash),
            None => {
                self.hashes.insert(stratum.to_string(), vec![hash]);
            }
        }
    }

    /// Adds another partial state.
    pub fn merge(&mut self, other: StratumHashes) {
        for (stratum, mut hashes) in other.hashes {
            self.hashes.entry(stratum).or_default().append(&mut hashes);
        }
    }

    /// Each stratum (in order) with its row count and its split thresholds:
    /// `thresholds[i]` is the smallest hash of split `i + 1`, so a row is in
    /// the first split whose threshold is above its hash, or the last. Rows
    /// with equal hashes (equal keys) share a split; the sizes are exact
    /// when no such tie straddles a threshold.
    pub fn thresholds(mut self, proportions: &[f64]) -> Vec<(String, u64, Vec<u64>)> {
        let mut out = Vec::with_capacity(self.hashes.len());
        for (stratum, hashes) in std::mem::take(&mut self.hashes) {
            let mut hashes = hashes;
            hashes.sort_unstable();
            let n = hashes.len() as u64;
            let sizes = allocate(n, proportions);
            let mut thresholds = Vec::with_capacity(sizes.len().saturating_sub(1));
            let mut rank = 0usize;
            for size in &sizes[..sizes.len().saturating_sub(1)] {
                rank += *size as usize;
                // Past the last row: nothing reaches the later splits.
                thresholds.push(hashes.get(rank).copied().unwrap_or(u64::MAX));
            }
            out.push((stratum, n, thresholds));
        }
        out
    }
}

/// The split of a hash given its stratum's thresholds (see
/// [`StratumHashes::thresholds`]).
#[inline]
pub fn split_by_threshold(hash: u64, thresholds: &[u64]) -> usize {
    thresholds.partition_point(|t| *t <= hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_the_proportions() {
        let s = Splits::new(&[0.5, 0.5]).unwrap();
        assert_eq!(s.index(1 << 63), 1);
        assert_eq!(s.index((1 << 63) - 1), 0);
        let empty_middle = Splits::new(&[0.5, 0.0, 0.5]).unwrap();
        assert_eq!(empty_middle.index((1 << 63) - 1), 0);
        assert_eq!(empty_middle.index(1 << 63), 2);
        let one = Splits::new(&[1.0]).unwrap();
        assert_eq!(one.index(u64::MAX), 0);
        assert_eq!(Splits::new(&[0.7, 0.2, 0.1]).unwrap().bounds.len(), 2);
    }

    #[test]
    fn allocation_rounds_the_written_decimals() {
        // Census income brackets, 70/30 (the issue's example).
        assert_eq!(allocate(7_841, &[0.7, 0.3]), [5_489, 2_352]);
        assert_eq!(allocate(24_720, &[0.7, 0.3]), [17_304, 7_416]);
        // 5 × (0.45, 0.45, 0.1) = 2.25, 2.25, 0.5: one extra row, to the
        // largest remainder (0.5).
        assert_eq!(allocate(5, &[0.45, 0.45, 0.1]), [2, 2, 1]);
        // Equal remainders: the earlier split first.
        assert_eq!(allocate(3, &[0.5, 0.5]), [2, 1]);
        assert_eq!(allocate(0, &[0.7, 0.3]), [0, 0]);
        assert_eq!(allocate(1, &[0.0, 1.0]), [0, 1]);
        // Thirds written to 16 places sum to 0.9999999999999999: the sizes
        // still sum to n.
        let third = 1.0 / 3.0;
        assert_eq!(allocate(100, &[third, third, third]), [34, 33, 33]);
        assert_eq!(
            allocate(u64::from(u32::MAX), &[0.5, 0.5]),
            [2_147_483_648, 2_147_483_647]
        );
    }

    #[test]
    fn stratum_thresholds_cut_exact_sizes() {
        // Two strata with distinct hashes 0..n, pushed out of order over two
        // partial states.
        let mut a = StratumHashes::default();
        let mut b = StratumHashes::default();
        for h in (0..7_841u64).rev() {
            (if h % 2 == 0 { &mut a } else { &mut b }).push(">50K", h * 1_000_003);
        }
        for h in 0..24_720u64 {
            b.push("<=50K", h.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        a.merge(b);
        let t = a.clone().thresholds(&[0.7, 0.3]);
        assert_eq!(t.len(), 2);
        let count = |stratum: &str, hashes: &mut dyn Iterator<Item = u64>| {
            let (_, _, th) = t.iter().find(|(s, _, _)| s == stratum).unwrap();
            let mut sizes = [0u64; 2];
            for h in hashes {
                sizes[split_by_threshold(h, th)] += 1;
            }
            sizes
        };
        assert_eq!(
            count(">50K", &mut (0..7_841u64).map(|h| h * 1_000_003)),
            [5_489, 2_352]
        );
        assert_eq!(
            count(
                "<=50K",
                &mut (0..24_720u64).map(|h| h.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            ),
            [17_304, 7_416]
        );
        // Strata come out in order, with their sizes.
        assert_eq!(
            t.iter()
                .map(|(s, n, _)| (s.as_str(), *n))
                .collect::<Vec<_>>(),
            [("<=50K", 24_720), (">50K", 7_841)]
        );
    }

    #[test]
    fn bad_proportions_are_named() {
        assert_eq!(
            Splits::new(&[0.7, -0.1, 0.4]).unwrap_err(),
            "proportion 2 must be in [0, 1], got -0.1"
        );
        assert_eq!(
            Splits::new(&[0.7, 0.2]).unwrap_err(),
            "proportions must sum to 1, got 0.8999999999999999"
        );
        assert!(Splits::new(&[f64::NAN, 1.0]).is_err());
    }
}
