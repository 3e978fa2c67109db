//! Stratified sampling with exact per-stratum counts, and over- and
//! undersampling, on the ranks of the rows' (salted) key hashes inside each
//! stratum.
//!
//! A sample is a number of *copies* per row: 0 or 1 without replacement,
//! any number with replacement. For a stratum of `n` rows whose target is
//! `t` rows, every row gets `t / n` copies and the `t % n` rows with the
//! smallest hashes one more. So the counts are exact (when keys are
//! distinct), the rows chosen depend only on the keys and the seed, and the
//! wide rows are never sorted: a narrow pass gathers the hashes, then each
//! row compares its hash with its stratum's threshold.

use super::split::{decimals, largest_remainder};

/// How large a sample is.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleSize {
    /// Exactly this many rows in all.
    Count(u64),
    /// This fraction of the rows (the nearest integer, halves up; the
    /// fraction as written).
    Fraction(f64),
    /// The largest sample with the requested shares that takes every
    /// stratum's rows at most once (undersampling).
    Largest,
    /// The smallest sample with the requested shares that takes every row
    /// of a stratum with a share at least once (oversampling).
    Smallest,
}

/// How a sample is shared out among the strata.
#[derive(Debug, Clone, PartialEq)]
pub enum Shares {
    /// In proportion to the strata's sizes.
    Proportional,
    /// The same number from every stratum.
    Balanced,
    /// In proportion to these weights, by stratum name; strata not listed
    /// are left out.
    Weights(Vec<(String, f64)>),
}

/// The number of rows to take from each stratum (`counts`: each stratum's
/// name and size, in order). With `replacement` false, no stratum may give
/// more rows than it has. Errors say which stratum or weight is wrong.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::sample::{SampleSize, Shares, targets};
/// let strata = [("Busan", 3_000), ("Daegu", 2_500), ("Seoul", 10_000)];
/// let weights = Shares::Weights(vec![
///     ("Seoul".into(), 9.0),
///     ("Daegu".into(), 2.0),
///     ("Busan".into(), 3.0),
/// ]);
/// assert_eq!(
///     targets(&strata, &SampleSize::Count(1_400), &weights, false).unwrap(),
///     [300, 200, 900]
/// );
/// // Balanced undersampling: every stratum cut to the smallest one.
/// assert_eq!(
///     targets(&strata, &SampleSize::Largest, &Shares::Balanced, false).unwrap(),
///     [2_500, 2_500, 2_500]
/// );
/// ```
pub fn targets(
    counts: &[(&str, u64)],
    size: &SampleSize,
    shares: &Shares,
    replacement: bool,
) -> Result<Vec<u64>, String> {
    if counts.is_empty() {
        // No rows (or every key or stratum NULL): an empty sample.
        return Ok(Vec::new());
    }
    let weights: Vec<f64> = match shares {
        Shares::Proportional => counts.iter().map(|(_, n)| *n as f64).collect(),
        Shares::Balanced => vec![1.0; counts.len()],
        Shares::Weights(listed) => {
            for (name, _) in listed {
                if !counts.iter().any(|(s, _)| s == name) {
                    let known: Vec<&str> = counts.iter().map(|(s, _)| *s).collect();
                    return Err(format!(
                        "stratum '{name}' has a weight but no rows (strata: {})",
                        known.join(", ")
                    ));
                }
            }
            counts
                .iter()
                .map(|(s, _)| {
                    listed
                        .iter()
                        .find(|(name, _)| name == s)
                        .map_or(0.0, |(_, w)| *w)
                })
                .collect()
        }
    };
    let too_large = || "the sample is too large to compute (check n and the weights)".to_string();
    let rows: u64 = counts.iter().map(|(_, n)| n).sum();
    // The weights as exact integers (the decimals as written, to 9 places;
    // weights are at most 1e9, counts are integers).
    let (w, _) = decimals(&weights, 9);
    let w_sum: u128 = w.iter().sum();
    if w_sum == 0 {
        return Err("every weight is 0".into());
    }
    let shared = |total: u64| -> Option<Vec<u64>> {
        // largest_remainder multiplies total by each weight.
        u128::from(total).checked_mul(w_sum)?;
        Some(largest_remainder(total, &w, w_sum))
    };
    let fits = |t: &[u64]| t.iter().zip(counts).all(|(t, (_, n))| t <= n);
    let covers = |t: &[u64]| {
        t.iter()
            .zip(counts)
            .zip(&w)
            .all(|((t, (_, n)), w)| *w == 0 || t >= n)
    };
    // Stratum s's share is its size at the total n_s · Σw / w_s.
    let at_size = || {
        counts
            .iter()
            .zip(&w)
            .filter(|(_, w)| **w > 0)
            .map(|((_, n), w)| (u128::from(*n) * w_sum, *w))
    };
    // The largest total whose shares fit every stratum.
    let largest = || -> Result<u64, String> {
        let bound = at_size().map(|(a, b)| a / b).min().unwrap_or(0);
        let mut total = u64::try_from(bound).unwrap_or(u64::MAX).min(rows);
        // Largest-remainder rounding may give a stratum one row too many.
        while total > 0 && !fits(&shared(total).ok_or_else(too_large)?) {
            total -= 1;
        }
        Ok(total)
    };
    let total = match size {
        SampleSize::Count(n) => *n,
        SampleSize::Fraction(f) => {
            // The nearest integer to rows · f, with f as written; halves up.
            let (num, places) = decimals(&[*f], 18);
            let den = 10u128.pow(places as u32);
            let q = u128::from(rows) * num[0];
            u64::try_from(q / den + u128::from(2 * (q % den) >= den)).map_err(|_| too_large())?
        }
        SampleSize::Largest => largest()?,
        SampleSize::Smallest => {
            let bound = at_size().map(|(a, b)| a.div_ceil(b)).max().unwrap_or(0);
            let limit = u128::from(rows) * 1_000;
            if bound > limit {
                return Err(format!(
                    "the requested ratio needs {bound} rows, over 1,000 times the {rows} there \
                     are; check the weights"
                ));
            }
            let mut total = bound as u64;
            while !covers(&shared(total).ok_or_else(too_large)?) {
                total += 1;
            }
            total
        }
    };
    let t = shared(total).ok_or_else(too_large)?;
    if !replacement && !fits(&t) {
        let (i, _) = t
            .iter()
            .zip(counts)
            .enumerate()
            .find(|(_, (t, (_, n)))| *t > n)
            .expect("some stratum is short");
        return Err(format!(
            "stratum '{}' has {} rows but its share of {total} is {}; without replacement at \
             most {} rows can be sampled with these shares (oversample samples with \
             replacement)",
            counts[i].0,
            counts[i].1,
            t[i],
            largest()?
        ));
    }
    Ok(t)
}

/// How many copies of a row a stratum's target gives: `base` for every row,
/// one more for rows whose hash is below `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copies {
    pub base: u64,
    pub threshold: u64,
}

impl Copies {
    /// The copies that take `target` rows from a stratum whose hashes are
    /// `sorted` (ascending, not empty). With no row to add (`target` a
    /// multiple of the stratum's size) the threshold is 0, so that rows of
    /// new data get `base` copies too.
    pub fn new(sorted: &[u64], target: u64) -> Self {
        Self::by_rank(sorted.len() as u64, target, |rank| sorted[rank as usize])
    }

    /// Like [`Copies::new`] for a stratum of `count` rows (not 0) whose
    /// sorted hashes are read by rank through `hash_at` (called at most
    /// once, for a rank below `count`).
    pub fn by_rank(count: u64, target: u64, hash_at: impl FnOnce(u64) -> u64) -> Self {
        let extra = target % count;
        Self {
            base: target / count,
            threshold: if extra == 0 { 0 } else { hash_at(extra) },
        }
    }

    /// The copies of a row with this hash.
    #[inline]
    pub fn of(&self, hash: u64) -> u64 {
        self.base + u64::from(hash < self.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CENSUS: [(&str, u64); 2] = [("<=50K", 24_720), (">50K", 7_841)];

    #[test]
    fn sample_sizes() {
        let t = |size, shares, replacement| targets(&CENSUS, &size, &shares, replacement);
        // Proportional: 1,000 × 24,720 / 32,561 = 759.19, × 7,841 / 32,561 =
        // 240.81 → 759 + 241.
        assert_eq!(
            t(SampleSize::Count(1_000), Shares::Proportional, false),
            Ok(vec![759, 241])
        );
        // 10% of 32,561 = 3,256.1 → 3,256, shared 2,471.93 / 784.07 → 2,472 + 784.
        assert_eq!(
            t(SampleSize::Fraction(0.1), Shares::Proportional, false),
            Ok(vec![2_472, 784])
        );
        assert_eq!(
            t(SampleSize::Largest, Shares::Balanced, false),
            Ok(vec![7_841, 7_841])
        );
        assert_eq!(
            t(SampleSize::Smallest, Shares::Balanced, true),
            Ok(vec![24_720, 24_720])
        );
        // 1 : 2 (twice as many '>50K'): undersampling keeps all 7,841 and
        // 3,920 (7,841 / 2 = 3,920.5: 11,761 in all, shared 3,920.33 /
        // 7,840.67 → 3,920 + 7,841).
        let w = |a: f64, b: f64| Shares::Weights(vec![("<=50K".into(), a), (">50K".into(), b)]);
        assert_eq!(
            t(SampleSize::Largest, w(1.0, 2.0), false),
            Ok(vec![3_920, 7_841])
        );
        // Oversampling to 1 : 2 keeps every '<=50K' row once and takes
        // '>50K' to 49,440.
        assert_eq!(
            t(SampleSize::Smallest, w(1.0, 2.0), true),
            Ok(vec![24_720, 49_440])
        );
        // A stratum left out of the weights gets nothing.
        assert_eq!(
            t(
                SampleSize::Count(10),
                Shares::Weights(vec![(">50K".into(), 1.0)]),
                false
            ),
            Ok(vec![0, 10])
        );
    }

    #[test]
    fn errors_name_the_stratum() {
        let e = targets(
            &CENSUS,
            &SampleSize::Count(20_000),
            &Shares::Balanced,
            false,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "stratum '>50K' has 7841 rows but its share of 20000 is 10000; without replacement \
             at most 15682 rows can be sampled with these shares (oversample samples with \
             replacement)"
        );
        let e = targets(
            &CENSUS,
            &SampleSize::Count(10),
            &Shares::Weights(vec![("Seoul".into(), 1.0)]),
            false,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "stratum 'Seoul' has a weight but no rows (strata: <=50K, >50K)"
        );
        let e = targets(
            &CENSUS,
            &SampleSize::Count(10),
            &Shares::Weights(vec![(">50K".into(), 0.0)]),
            false,
        )
        .unwrap_err();
        assert_eq!(e, "every weight is 0");
    }

    #[test]
    fn fractions_round_half_up_and_extremes_are_refused() {
        let five = [("x", 5u64)];
        let t = |f: f64| {
            targets(
                &five,
                &SampleSize::Fraction(f),
                &Shares::Proportional,
                false,
            )
        };
        // 5 × 0.7 = 3.5 → 4; 5 × 0.3 = 1.5 → 2; 25 × 0.18 = 4.5 → 5.
        assert_eq!(t(0.7), Ok(vec![4]));
        assert_eq!(t(0.3), Ok(vec![2]));
        assert_eq!(
            targets(
                &[("x", 25)],
                &SampleSize::Fraction(0.18),
                &Shares::Proportional,
                false
            ),
            Ok(vec![5])
        );
        // No rows: an empty sample, whatever was asked.
        assert_eq!(
            targets(&[], &SampleSize::Count(10), &Shares::Balanced, false),
            Ok(vec![])
        );
        // Weights 1e9 : 1e-9 ask for 1e18 times the rows.
        let w = Shares::Weights(vec![("x".into(), 1e9), ("y".into(), 1e-9)]);
        let e = targets(&[("x", 10), ("y", 10)], &SampleSize::Smallest, &w, true).unwrap_err();
        assert!(e.starts_with("the requested ratio needs"), "{e}");
        assert_eq!(
            targets(&[("x", 10), ("y", 10)], &SampleSize::Largest, &w, false),
            Ok(vec![10, 0])
        );
        assert!(
            targets(
                &[("x", 10)],
                &SampleSize::Count(u64::MAX),
                &Shares::Balanced,
                false
            )
            .is_err()
        );
    }

    #[test]
    fn copies_cut_at_the_rank() {
        let sorted = [10, 20, 30, 40];
        let c = Copies::new(&sorted, 2);
        assert_eq!(sorted.map(|h| c.of(h)), [1, 1, 0, 0]);
        let c = Copies::new(&sorted, 4);
        assert_eq!(sorted.map(|h| c.of(h)), [1, 1, 1, 1]);
        let c = Copies::new(&sorted, 11);
        assert_eq!(sorted.map(|h| c.of(h)), [3, 3, 3, 2]);
        let c = Copies::new(&sorted, 0);
        assert_eq!(sorted.map(|h| c.of(h)), [0, 0, 0, 0]);
        // New rows below the smallest fitted hash get no extra copy.
        assert_eq!(c.of(0), 0);
        assert_eq!(Copies::new(&sorted, 8).of(1), 2);
    }
}
