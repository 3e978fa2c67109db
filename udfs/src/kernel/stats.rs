//! Mergeable statistics: the states behind every full-pass function.
//!
//! Each state is updated value by value, merged with other partial states in
//! any order (partitions, threads, machines), and finalized into the fitted
//! statistic. Results never depend on the order of updates and merges:
//! sums are exact ([`ExactSum`]) and counts are kept per distinct value.
//! Every state counts the values it skipped: NULLs and, for numbers,
//! non-finite values (NaN, ±inf).

use std::collections::HashMap;
use std::hash::Hash;

use super::exact::{ExactSum, dd_div, dd_sqrt, div_by_dd};

/// Values a statistic skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    pub nulls: u64,
    /// NaN, +inf and −inf.
    pub non_finite: u64,
}

impl Skipped {
    pub fn merge(&mut self, other: &Self) {
        self.nulls += other.nulls;
        self.non_finite += other.non_finite;
    }
}

/// Minimum and maximum of the finite values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinMax {
    pub count: u64,
    /// +inf while `count` is 0.
    pub min: f64,
    /// −inf while `count` is 0.
    pub max: f64,
    pub skipped: Skipped,
}

impl Default for MinMax {
    fn default() -> Self {
        Self {
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            skipped: Skipped::default(),
        }
    }
}

impl MinMax {
    #[inline]
    pub fn update(&mut self, x: Option<f64>) {
        match x {
            None => self.skipped.nulls += 1,
            Some(v) if !v.is_finite() => self.skipped.non_finite += 1,
            Some(v) => {
                self.count += 1;
                // -0.0 and 0.0 compare equal; keep the first-seen sign out of
                // the result by normalising zero.
                let v = if v == 0.0 { 0.0 } else { v };
                if v < self.min {
                    self.min = v;
                }
                if v > self.max {
                    self.max = v;
                }
            }
        }
    }

    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.skipped.merge(&other.skipped);
    }

    /// max |x| of the finite values (0 when there are none).
    pub fn max_abs(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.min.abs().max(self.max.abs())
        }
    }
}

/// The mean of `count` values whose exact sum is `sum`, rounded once (NaN
/// when there are none).
pub fn mean_of(sum: &ExactSum, count: u64) -> f64 {
    if count == 0 {
        return f64::NAN;
    }
    dd_div(sum.value_dd(), count as f64)
}

/// Count, mean and population standard deviation of the finite values, from
/// exact sums of x and x².
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Moments {
    pub count: u64,
    pub sum: ExactSum,
    pub sum_squares: ExactSum,
    pub skipped: Skipped,
}

impl Moments {
    /// Back to no values, keeping the memory (for a reused accumulator).
    pub fn clear(&mut self) {
        self.count = 0;
        self.sum.clear();
        self.sum_squares.clear();
        self.skipped = Skipped::default();
    }

    #[inline]
    pub fn update(&mut self, x: Option<f64>) {
        match x {
            None => self.skipped.nulls += 1,
            Some(v) if !v.is_finite() => self.skipped.non_finite += 1,
            Some(v) => {
                self.count += 1;
                self.sum.add(v);
                self.sum_squares.add_product(v, v);
            }
        }
    }

    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.sum.merge(&other.sum);
        self.sum_squares.merge(&other.sum_squares);
        self.skipped.merge(&other.skipped);
    }

    /// Takes back a finite value [`Moments::update`] added: the sums stay
    /// exact, so the state is the one of the values that remain.
    #[inline]
    pub fn retract(&mut self, v: f64) {
        self.count -= 1;
        self.sum.add(-v);
        self.sum_squares.add_product(-v, v);
    }

    /// Population variance Σ(x − mean)²/n, rounded once from the exact sums
    /// (NaN when there are no values).
    pub fn variance(&self) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        let n = self.count as f64;
        dd_div(self.scaled_variance(), n * n)
    }

    /// The mean (NaN when there are no values).
    pub fn mean(&self) -> f64 {
        mean_of(&self.sum, self.count)
    }

    /// n²·variance = n·Σx² − (Σx)², exactly.
    fn scaled_variance(&self) -> (f64, f64) {
        let n = self.count as f64;
        let mut d = ExactSum::default();
        for &p in self.sum_squares.partials() {
            d.add_product(p, n);
        }
        let s = self.sum.partials();
        for &a in s {
            for &b in s {
                d.add_product(-a, b);
            }
        }
        let (hi, lo) = d.value_dd();
        // Rounding can leave a tiny negative remainder only if the data were
        // constant; the exact value is never negative.
        if hi < 0.0 { (0.0, 0.0) } else { (hi, lo) }
    }

    /// Population standard deviation (NaN when there are no values).
    pub fn stddev(&self) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        dd_div(dd_sqrt(self.scaled_variance()), self.count as f64)
    }

    /// 1/σ, rounded once from the exact statistics (NaN when there are no
    /// values, +inf when σ = 0).
    pub fn inv_stddev(&self) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        let root = dd_sqrt(self.scaled_variance());
        if root.0 == 0.0 {
            return f64::INFINITY;
        }
        div_by_dd(self.count as f64, root)
    }
}

/// How many times each distinct value occurs: the exact state behind
/// vocabularies, quantiles, medians and modes. Hashed with foldhash (a
/// counted value is hashed once per row, and SipHash cost twice as much);
/// nothing derived from it depends on the table's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts<K: Eq + Hash> {
    pub counts: HashMap<K, u64, foldhash::fast::RandomState>,
    pub skipped: Skipped,
}

impl<K: Eq + Hash> Default for Counts<K> {
    fn default() -> Self {
        Self {
            counts: HashMap::default(),
            skipped: Skipped::default(),
        }
    }
}

impl<K: Eq + Hash + Clone + Ord> Counts<K> {
    #[inline]
    pub fn add(&mut self, key: K, n: u64) {
        *self.counts.entry(key).or_insert(0) += n;
    }

    /// Adds a borrowed key, cloning it only when it is new.
    #[inline]
    pub fn add_ref<Q>(&mut self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(c) = self.counts.get_mut(key) {
            *c += 1;
        } else {
            self.counts.insert(key.to_owned(), 1);
        }
    }

    pub fn merge(&mut self, other: &Self) {
        for (k, &n) in &other.counts {
            self.add(k.clone(), n);
        }
        self.skipped.merge(&other.skipped);
    }

    /// The number of values counted.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// `(value, count)` sorted by value ascending.
    pub fn sorted_by_value(&self) -> Vec<(K, u64)> {
        let mut v: Vec<_> = self.counts.iter().map(|(k, &n)| (k.clone(), n)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The vocabulary: values with count ≥ `min_frequency`, by count
    /// descending then value ascending, cut to `top_k`.
    pub fn vocabulary(&self, top_k: Option<u64>, min_frequency: u64) -> Vec<(K, u64)> {
        let mut v: Vec<_> = self
            .counts
            .iter()
            .filter(|&(_, &n)| n >= min_frequency)
            .map(|(k, &n)| (k.clone(), n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if let Some(k) = top_k {
            v.truncate(usize::try_from(k).unwrap_or(usize::MAX));
        }
        v
    }

    /// The most frequent value, ties broken by the smallest value.
    pub fn most_frequent(&self) -> Option<K> {
        self.counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(k, _)| k.clone())
    }
}

/// A finite `f64` with a total order, as a map key (−0.0 is stored as 0.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Finite(OrderedBits);

/// The bits of a finite f64, mapped so that integer order is numeric order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct OrderedBits(i64);

impl Finite {
    /// `None` for NaN and ±inf.
    #[inline]
    pub fn new(v: f64) -> Option<Self> {
        if !v.is_finite() {
            return None;
        }
        let v = if v == 0.0 { 0.0 } else { v };
        let bits = v.to_bits() as i64;
        // Negative floats order in reverse as sign-magnitude integers.
        let ordered = if bits < 0 { bits ^ i64::MAX } else { bits };
        Some(Self(OrderedBits(ordered)))
    }

    #[inline]
    pub fn get(self) -> f64 {
        let o = self.0.0;
        let bits = if o < 0 { o ^ i64::MAX } else { o };
        f64::from_bits(bits as u64)
    }
}

/// Counts of finite numbers, with the numeric statistics derived from them.
pub type NumericCounts = Counts<Finite>;

impl NumericCounts {
    /// Counts a value: NULLs and non-finite values are skipped and counted.
    #[inline]
    pub fn update(&mut self, x: Option<f64>) {
        match x {
            None => self.skipped.nulls += 1,
            Some(v) => match Finite::new(v) {
                Some(f) => self.add(f, 1),
                None => self.skipped.non_finite += 1,
            },
        }
    }

    /// The values in ascending order, each with its count.
    pub fn sorted(&self) -> SortedValues {
        let pairs = self.sorted_by_value();
        let mut values = Vec::with_capacity(pairs.len());
        let mut ends = Vec::with_capacity(pairs.len());
        let mut total = 0u64;
        for (v, n) in pairs {
            total += n;
            values.push(v.get());
            ends.push(total);
        }
        SortedValues { values, ends }
    }
}

/// Sorted distinct values with cumulative counts: the k-th smallest value
/// of the multiset without materialising it.
#[derive(Debug, Clone, PartialEq)]
pub struct SortedValues {
    values: Vec<f64>,
    /// `ends[i]` = number of values ≤ `values[i]`.
    ends: Vec<u64>,
}

impl SortedValues {
    /// The number of values (with repeats).
    pub fn len(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The k-th smallest value, 0-based. Panics if `k >= len()`.
    pub fn kth(&self, k: u64) -> f64 {
        let i = self.ends.partition_point(|&e| e <= k);
        self.values[i]
    }

    /// The q-th quantile (0 ≤ q ≤ 1) by linear interpolation, exactly as
    /// NumPy's `percentile(…, method="linear")` computes it. NaN when empty.
    pub fn percentile(&self, q: f64) -> f64 {
        let n = self.len();
        if n == 0 {
            return f64::NAN;
        }
        let virtual_index = (n - 1) as f64 * q;
        let previous = virtual_index.floor();
        let gamma = virtual_index - previous;
        let lo = (previous as u64).min(n - 1);
        let hi = (lo + 1).min(n - 1);
        let (a, b) = (self.kth(lo), self.kth(hi));
        // NumPy's _lerp: symmetric formula, exact at both ends.
        let diff = b - a;
        if gamma >= 0.5 {
            b - diff * (1.0 - gamma)
        } else {
            a + diff * gamma
        }
    }

    /// The median as `numpy.median` computes it: the middle value, or the
    /// mean of the two middle values. NaN when empty.
    pub fn median(&self) -> f64 {
        let n = self.len();
        if n == 0 {
            return f64::NAN;
        }
        if n % 2 == 1 {
            self.kth(n / 2)
        } else {
            (self.kth(n / 2 - 1) + self.kth(n / 2)) / 2.0
        }
    }

    /// Quantile bucket boundaries: b_i = v_(⌊i·N/n⌋+1) (1-based) for
    /// i = 1..n−1, duplicates dropped. Empty when there are no values.
    pub fn quantile_boundaries(&self, buckets: u64) -> Vec<f64> {
        let n = self.len();
        let mut out: Vec<f64> = Vec::new();
        if n == 0 {
            return out;
        }
        for i in 1..buckets {
            let k = (u128::from(i) * u128::from(n) / u128::from(buckets)) as u64;
            let v = self.kth(k.min(n - 1));
            if out.last() != Some(&v) {
                out.push(v);
            }
        }
        out
    }
}

#[cfg(test)]
// The expected values are the issue's literals, e.g. 0.7071067811865476 = 1/√2.
#[allow(clippy::approx_constant)]
mod tests {
    use super::*;

    fn numeric(values: &[Option<f64>]) -> NumericCounts {
        let mut c = NumericCounts::default();
        values.iter().for_each(|&v| c.update(v));
        c
    }

    fn moments(values: &[f64]) -> Moments {
        let mut m = Moments::default();
        values.iter().for_each(|&v| m.update(Some(v)));
        m
    }

    #[test]
    fn min_max_skips_and_counts() {
        let mut m = MinMax::default();
        for v in [
            Some(3.0),
            None,
            Some(f64::NAN),
            Some(-1.0),
            Some(f64::INFINITY),
        ] {
            m.update(v);
        }
        assert_eq!((m.count, m.min, m.max), (2, -1.0, 3.0));
        assert_eq!(
            m.skipped,
            Skipped {
                nulls: 1,
                non_finite: 2
            }
        );
        let mut empty = MinMax::default();
        empty.merge(&m);
        assert_eq!(empty, m);
        assert_eq!(m.max_abs(), 3.0);
        assert_eq!(MinMax::default().max_abs(), 0.0);
    }

    #[test]
    fn moments_of_the_issue_examples() {
        let m = moments(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(m.mean(), 3.0);
        assert_eq!(m.stddev(), std::f64::consts::SQRT_2);
        // 1/sqrt(2) rounded once (0.70710678118654752440…).
        assert_eq!(m.inv_stddev(), 0.7071067811865476);
        let m = moments(&[1.0, 1.0, 2.0, 2.0]);
        assert_eq!((m.mean(), m.stddev(), m.inv_stddev()), (1.5, 0.5, 2.0));
        let m = moments(&[-3.0, -3.0, -3.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(m.mean(), 0.75);
        let c = moments(&[7.5, 7.5]);
        assert_eq!((c.stddev(), c.inv_stddev()), (0.0, f64::INFINITY));
        assert!(Moments::default().mean().is_nan());
    }

    #[test]
    fn moments_do_not_depend_on_order_or_grouping() {
        let values: Vec<f64> = (0..1000)
            .map(|i| (i as f64 * 0.37).sin() * 1e3 + 1e9)
            .collect();
        let forward = moments(&values);
        let mut rev = values.clone();
        rev.reverse();
        let backward = moments(&rev);
        let mut merged = moments(&values[500..]);
        merged.merge(&moments(&values[..500]));
        for m in [&backward, &merged] {
            assert_eq!(m.mean().to_bits(), forward.mean().to_bits());
            assert_eq!(m.stddev().to_bits(), forward.stddev().to_bits());
        }
    }

    #[test]
    fn finite_keys_order_numerically() {
        let mut v: Vec<Finite> = [3.5, -0.0, -2.0, 1e-300, -1e300, 0.0]
            .iter()
            .map(|&x| Finite::new(x).unwrap())
            .collect();
        v.sort();
        let back: Vec<f64> = v.iter().map(|f| f.get()).collect();
        assert_eq!(back, [-1e300, -2.0, 0.0, 0.0, 1e-300, 3.5]);
        assert!(Finite::new(f64::NAN).is_none());
        assert_eq!(Finite::new(-0.0), Finite::new(0.0));
    }

    #[test]
    fn quantile_boundaries_of_the_issue_examples() {
        let c = numeric(&[1.0, 2.0, 3.0, 4.0, 5.0].map(Some));
        assert_eq!(c.sorted().quantile_boundaries(3), [2.0, 4.0]);
        let c = numeric(&[1.0, 2.0, 3.0, 4.0].map(Some));
        assert_eq!(c.sorted().quantile_boundaries(2), [3.0]);
        // Repeated values: duplicate boundaries dropped, fewer buckets.
        // N = 5, n = 4: indices ⌊5/4⌋, ⌊10/4⌋, ⌊15/4⌋ = 1, 2, 3 → 1, 1, 1.
        let c = numeric(&[1.0, 1.0, 1.0, 1.0, 2.0].map(Some));
        assert_eq!(c.sorted().quantile_boundaries(4), [1.0]);
        // N = 6, n = 3: indices 2, 4 → 2, 3.
        let c = numeric(&[3.0, 1.0, 2.0, 1.0, 2.0, 3.0].map(Some));
        assert_eq!(c.sorted().quantile_boundaries(3), [2.0, 3.0]);
        assert!(
            NumericCounts::default()
                .sorted()
                .quantile_boundaries(4)
                .is_empty()
        );
    }

    #[test]
    fn percentiles_and_medians_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], [25, 50, 75]) → 1.75, 2.5, 3.25
        let s = numeric(&[4.0, 1.0, 3.0, 2.0].map(Some)).sorted();
        assert_eq!(
            [s.percentile(0.25), s.percentile(0.5), s.percentile(0.75)],
            [1.75, 2.5, 3.25]
        );
        assert_eq!(s.median(), 2.5);
        let s = numeric(&[
            Some(-3.0),
            Some(-3.0),
            Some(-3.0),
            Some(1.0),
            None,
            Some(5.0),
        ])
        .sorted();
        assert_eq!(s.median(), -3.0);
        assert!(NumericCounts::default().sorted().median().is_nan());
    }

    #[test]
    fn vocabulary_order_and_cuts() {
        let mut c = Counts::<String>::default();
        for v in ["b", "a", "c", "a", "b", "d", "a"] {
            c.add_ref(v);
        }
        let vocab = c.vocabulary(None, 1);
        let names: Vec<_> = vocab.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        assert_eq!(names, [("a", 3), ("b", 2), ("c", 1), ("d", 1)]);
        assert_eq!(c.vocabulary(Some(2), 1).len(), 2);
        assert_eq!(c.vocabulary(None, 2).len(), 2);
        assert_eq!(c.most_frequent().as_deref(), Some("a"));
        let mut tie = Counts::<i64>::default();
        for v in [5, 3, 5, 3] {
            tie.add(v, 1);
        }
        assert_eq!(tie.most_frequent(), Some(3));
    }
}
