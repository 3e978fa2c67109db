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
}

/// The sizes of the splits of a stratum of `n` rows: the integers nearest to
/// `n · p` for each proportion, summing to `n` (the largest-remainder
/// method; equal remainders favour the earlier split).
///
/// Proportions count as the decimals they are written as: `0.7` is 7/10,
/// not the binary double nearest to it, so 7,841 × 0.7 = 5,488.7 rounds to
/// 5,489 and 24,720 × 0.7 is exactly 17,304. Decimals beyond 18 places
/// are dropped (truncated), which keeps `n · p` within 128 bits.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::split::allocate;
/// assert_eq!(allocate(7_841, &[0.7, 0.3]), [5_489, 2_352]);
/// assert_eq!(allocate(24_720, &[0.7, 0.3]), [17_304, 7_416]);
/// assert_eq!(allocate(10, &[0.7, 0.2, 0.1]), [7, 2, 1]);
/// ```
pub fn allocate(n: u64, proportions: &[f64]) -> Vec<u64> {
    let (numerators, places) = decimals(proportions, 18);
    largest_remainder(n, &numerators, 10u128.pow(places as u32))
}

/// Each number (non-negative, below 10^20) as an integer numerator over the
/// common denominator 10^places, from its shortest round-trip decimal text,
/// keeping at most `max_places` decimals (the rest are truncated).
pub(crate) fn decimals(values: &[f64], max_places: usize) -> (Vec<u128>, usize) {
    let parts: Vec<(u128, usize)> = values
        .iter()
        .map(|p| {
            let text = format!("{}", p.max(0.0));
            let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
            let frac = &frac[..frac.len().min(max_places)];
            let digits: u128 = format!("{int}{frac}").parse().unwrap_or(0);
            (digits, frac.len())
        })
        .collect();
    let places = parts.iter().map(|d| d.1).max().unwrap_or(0);
    let numerators = parts
        .iter()
        .map(|(digits, p)| digits * 10u128.pow((places - p) as u32))
        .collect();
    (numerators, places)
}

/// `floor(n · num_i / den)` for each share, then the rows left over to the
/// largest remainders (the earlier share on ties, round robin if more are
/// left than there are shares), so that the shares sum to `n`.
pub(crate) fn largest_remainder(n: u64, numerators: &[u128], denominator: u128) -> Vec<u64> {
    let n128 = u128::from(n);
    let mut sizes = Vec::with_capacity(numerators.len());
    let mut remainders = Vec::with_capacity(numerators.len());
    for num in numerators {
        let quota = n128 * num;
        sizes.push((quota / denominator) as u64);
        remainders.push(quota % denominator);
    }
    let assigned: u64 = sizes.iter().sum();
    if assigned < n && !sizes.is_empty() {
        let mut order: Vec<usize> = (0..sizes.len()).collect();
        // Largest remainder first; the earlier share on ties.
        order.sort_by(|a, b| remainders[*b].cmp(&remainders[*a]).then(a.cmp(b)));
        for k in 0..(n - assigned) as usize {
            sizes[order[k % order.len()]] += 1;
        }
    }
    sizes
}

/// A row's hash under a seed: MurmurHash3's 64-bit finalizer (`fmix64`) of
/// the key's hash XOR `fmix64(seed)`. A bijection for each seed, so equal
/// keys still tie and distinct hashes stay distinct, while different seeds
/// rank the rows in unrelated orders.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::split::salt;
/// assert_ne!(salt(1, 42), salt(2, 42));
/// assert_ne!(salt(1, 42), salt(1, 43));
/// assert_eq!(salt(0, 0), 0);
/// ```
#[inline]
pub fn salt(hash: u64, seed: u64) -> u64 {
    fmix64(hash ^ fmix64(seed))
}

#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// The statistic of a stratified split or sample, while it is computed: per
/// stratum, the key hashes seen.
///
/// Mergeable (partial states from partitions are concatenated) and
/// order-independent: what is derived from it depends only on the multiset
/// of hashes. Only the narrow (stratum, hash) pairs are kept, never the rows.
#[derive(Debug, Clone, Default)]
pub struct StratumHashes {
    entries: Vec<(String, Vec<u64>)>,
    index: foldhash::HashMap<String, usize>,
    /// The entry of the last row: consecutive rows often share a stratum.
    last: usize,
}

impl StratumHashes {
    /// The hashes of `stratum`, made empty if new.
    #[inline]
    fn entry(&mut self, stratum: &str) -> &mut Vec<u64> {
        if self
            .entries
            .get(self.last)
            .is_none_or(|(s, _)| s != stratum)
        {
            self.last = match self.index.get(stratum) {
                Some(i) => *i,
                None => {
                    self.index.insert(stratum.to_string(), self.entries.len());
                    self.entries.push((stratum.to_string(), Vec::new()));
                    self.entries.len() - 1
                }
            };
        }
        &mut self.entries[self.last].1
    }

    /// Records one row.
    #[inline]
    pub fn push(&mut self, stratum: &str, hash: u64) {
        self.entry(stratum).push(hash);
    }

    /// Records many rows of one stratum.
    pub fn extend(&mut self, stratum: &str, hashes: &[u64]) {
        self.entry(stratum).extend_from_slice(hashes);
    }

    /// Adds another partial state.
    pub fn merge(&mut self, other: StratumHashes) {
        for (stratum, hashes) in other.entries {
            self.extend(&stratum, &hashes);
        }
    }

    /// The hashes of each stratum, as recorded (strata in first-seen order).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u64])> {
        self.entries.iter().map(|(s, h)| (s.as_str(), h.as_slice()))
    }

    /// Bytes held, roughly.
    pub fn size(&self) -> usize {
        self.entries
            .iter()
            .map(|(s, h)| 2 * s.capacity() + h.capacity() * 8 + 64)
            .sum()
    }

    /// The strata in byte order, each with its hashes sorted.
    pub fn into_sorted(self) -> Strata {
        let mut strata: Vec<(String, Vec<u64>)> = self
            .entries
            .into_iter()
            .map(|(s, mut h)| {
                h.sort_unstable();
                (s, h)
            })
            .collect();
        strata.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Strata { strata }
    }
}

/// The fitted statistic of a stratified split or sample: each stratum (in
/// byte order) with its rows' key hashes, sorted. A row's rank in its
/// stratum is the rank of its hash.
#[derive(Clone, Default, PartialEq)]
pub struct Strata {
    pub strata: Vec<(String, Vec<u64>)>,
}

impl std::fmt::Debug for Strata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hashes are many; their counts say what matters.
        f.debug_map()
            .entries(self.strata.iter().map(|(s, h)| (s, h.len())))
            .finish()
    }
}

impl Strata {
    /// Each stratum's row count.
    pub fn counts(&self) -> Vec<(&str, u64)> {
        self.strata
            .iter()
            .map(|(s, h)| (s.as_str(), h.len() as u64))
            .collect()
    }

    /// For each stratum, the thresholds that cut its rows, ranked by hash,
    /// into splits of the [`allocate`]d sizes: `thresholds[i]` is the
    /// smallest hash of split `i + 1`, or None when no row reaches it (see
    /// [`split_by_threshold`]); 0 when splits up to `i` are empty, so that
    /// rows of new data never land in them either. Rows with equal hashes
    /// (equal keys) share a split; the sizes are exact when no such tie
    /// straddles a threshold.
    pub fn split_thresholds(&self, proportions: &[f64]) -> Vec<Vec<Option<u64>>> {
        self.strata
            .iter()
            .map(|(_, hashes)| {
                split_thresholds_by(hashes.len() as u64, proportions, |rank| {
                    hashes[rank as usize]
                })
            })
            .collect()
    }
}

/// The thresholds of [`Strata::split_thresholds`] for one stratum of
/// `count` rows, reading its sorted hashes by rank through `hash_at` (called
/// only for ranks below `count`). The thresholds depend on the hashes at
/// these ranks alone, so an artifact that records them can be refitted.
pub fn split_thresholds_by(
    count: u64,
    proportions: &[f64],
    mut hash_at: impl FnMut(u64) -> u64,
) -> Vec<Option<u64>> {
    let sizes = allocate(count, proportions);
    let mut rank = 0u64;
    sizes[..sizes.len().saturating_sub(1)]
        .iter()
        .map(|size| {
            rank += *size;
            if rank == 0 {
                Some(0)
            } else if rank < count {
                Some(hash_at(rank))
            } else {
                None
            }
        })
        .collect()
}

/// The split of a hash given its stratum's thresholds (see
/// [`Strata::split_thresholds`]): the number of thresholds at or below it.
#[inline]
pub fn split_by_threshold(hash: u64, thresholds: &[Option<u64>]) -> usize {
    thresholds
        .iter()
        .take_while(|t| matches!(t, Some(t) if *t <= hash))
        .count()
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
        let strata = a.into_sorted();
        let t = strata.split_thresholds(&[0.7, 0.3]);
        assert_eq!(t.len(), 2);
        let count = |stratum: usize, hashes: &mut dyn Iterator<Item = u64>| {
            let mut sizes = [0u64; 2];
            for h in hashes {
                sizes[split_by_threshold(h, &t[stratum])] += 1;
            }
            sizes
        };
        // Strata come out in byte order, with their sizes.
        assert_eq!(strata.counts(), [("<=50K", 24_720), (">50K", 7_841)]);
        assert_eq!(
            count(1, &mut (0..7_841u64).map(|h| h * 1_000_003)),
            [5_489, 2_352]
        );
        assert_eq!(
            count(
                0,
                &mut (0..24_720u64).map(|h| h.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            ),
            [17_304, 7_416]
        );
        // A split no row reaches has no threshold, even past u64::MAX.
        let mut edge = StratumHashes::default();
        edge.push("s", u64::MAX);
        let t = edge.into_sorted().split_thresholds(&[1.0, 0.0]);
        assert_eq!(t, [vec![None]]);
        assert_eq!(split_by_threshold(u64::MAX, &t[0]), 0);
    }

    #[test]
    fn salt_is_murmur3_fmix64() {
        // fmix64(1), computed with a Python transcription of MurmurHash3's
        // finalizer.
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
        assert_eq!(salt(5, 0), fmix64(5));
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
