//! Data profiles and the distances between them: the slots `fit` counts each
//! served input into, the same slots `skewless validate` and the serving
//! evaluator count new data into, and how far apart two sets of counts are.
//!
//! Everything is an exact integer count over slots decided once, at fit:
//! counts of any partition of the data add up to the counts of the whole,
//! and the distances are functions of the counts alone, computed with a
//! logarithm of our own (the platform's `log2` may differ in its last bit
//! between C libraries) and exact sums, so that the same data gives the
//! same numbers on every machine.

use super::exact::{ExactSum, two_product, two_sum};

/// The slot of a finite number among a numeric profile's `edges` (the
/// training minimum, the quantile boundaries, the training maximum, in
/// ascending order without repeats).
///
/// With E edges there are `bins(E)` bins and two more slots: slot 0 holds
/// the values below the minimum, slot k (1 ≤ k ≤ bins) bin k − 1 =
/// `[edges[k−1], edges[k])`, the last bin also holding the maximum, and
/// slot `bins + 1` the values above the maximum. A constant column (one
/// edge) has one bin holding only that value; without edges (no finite
/// training value) every value is above.
#[inline]
pub fn slot(edges: &[f64], x: f64) -> usize {
    let bins = bins(edges.len());
    match edges {
        [] => 1,
        [first, .., last] | [first @ last] => {
            if x < *first {
                0
            } else if x > *last {
                bins + 1
            } else if x == *last {
                bins
            } else {
                edges.partition_point(|e| *e <= x)
            }
        }
    }
}

/// The number of bins between `edges` edges (see [`slot`]).
pub fn bins(edges: usize) -> usize {
    match edges {
        0 => 0,
        1 => 1,
        n => n - 1,
    }
}

/// The number of slots of a numeric profile with `edges` edges: the bins
/// and the two out-of-range slots.
pub fn slots(edges: usize) -> usize {
    bins(edges) + 2
}

/// A numeric profile's edges: the minimum, the quantile boundaries strictly
/// inside (min, max), and the maximum (once when they are equal); empty
/// when there are no values.
pub fn edges(min: f64, boundaries: &[f64], max: f64) -> Vec<f64> {
    if min.is_nan() || max.is_nan() || min > max {
        return Vec::new();
    }
    let mut edges = vec![min];
    for &b in boundaries {
        if b > *edges.last().expect("one edge") && b < max {
            edges.push(b);
        }
    }
    if max > min {
        edges.push(max);
    }
    edges
}

/// The Jensen-Shannon divergence (logarithm base 2, so between 0 and 1) of
/// two distributions given as counts over the same slots: with P and Q the
/// counts over their totals and M = (P + Q) / 2,
/// JSD = ½ Σ P·log₂(P/M) + ½ Σ Q·log₂(Q/M), terms with P = 0 (Q = 0) left
/// out. This is the divergence, not its square root (the Jensen-Shannon
/// *distance* SciPy returns). `None` when either side has no values.
pub fn jensen_shannon(p: &[u64], q: &[u64]) -> Option<f64> {
    assert_eq!(p.len(), q.len(), "counts over the same slots");
    let (np, nq) = (total(p)?, total(q)?);
    let mut sum = ExactSum::default();
    for (&a, &b) in p.iter().zip(q) {
        let (pa, qb) = (a as f64 / np, b as f64 / nq);
        let m = (pa + qb) / 2.0;
        if a > 0 {
            sum.add(pa * log2(pa / m));
        }
        if b > 0 {
            sum.add(qb * log2(qb / m));
        }
    }
    // Rounding can leave a hair below 0 for identical distributions.
    Some((sum.value() / 2.0).max(0.0))
}

/// The L-infinity distance of two distributions given as counts over the
/// same slots: the largest |P − Q| of one slot, P and Q the counts over
/// their totals (TFDV's and BigQuery ML's categorical skew and drift
/// measure). `None` when either side has no values.
pub fn l_infinity(p: &[u64], q: &[u64]) -> Option<f64> {
    assert_eq!(p.len(), q.len(), "counts over the same slots");
    let (np, nq) = (total(p)?, total(q)?);
    Some(
        p.iter()
            .zip(q)
            .map(|(&a, &b)| (a as f64 / np - b as f64 / nq).abs())
            .fold(0.0, f64::max),
    )
}

/// The total of `counts` as a float, `None` when it is 0.
fn total(counts: &[u64]) -> Option<f64> {
    let n: u64 = counts.iter().sum();
    (n > 0).then_some(n as f64)
}

/// `part / whole` (0 when `whole` is 0).
pub fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// log₂ x of a positive finite x, correctly rounded in all but
/// vanishingly rare cases, and the same on every machine: computed in
/// double-double arithmetic (IEEE additions, multiplications and fused
/// multiply-adds only) from x = m·2^e with m in [√½, √2) and
/// ln m = 2·atanh(s), s = (m − 1)/(m + 1).
pub fn log2(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 || x == f64::INFINITY {
        return match x {
            0.0 => f64::NEG_INFINITY,
            f64::INFINITY => f64::INFINITY,
            _ => f64::NAN,
        };
    }
    // Subnormals: scale into the normal range first.
    let (x, shift) = if x < f64::MIN_POSITIVE {
        (x * 2f64.powi(64), -64)
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023 + shift;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0; // exact
        e += 1;
    }
    if m == 1.0 {
        return e as f64;
    }
    // s = (m − 1)/(m + 1) as a double-double; m − 1 is exact here.
    let s = dd_div((m - 1.0, 0.0), two_sum(m, 1.0));
    let s2 = dd_mul(s, s);
    // atanh(s)/s = Σ s^(2k)/(2k + 1), by Horner from the 24th term
    // (s² ≤ 0.0295: the terms left out are below 2^-120 of the sum).
    let mut poly = (1.0 / 49.0, 0.0);
    for k in (0..24).rev() {
        let c = dd_div((1.0, 0.0), ((2 * k + 1) as f64, 0.0));
        poly = dd_add(dd_mul(poly, s2), c);
    }
    let ln_m = dd_mul(dd_mul(s, poly), (2.0, 0.0));
    // log₂ e as a double-double.
    const LOG2_E: (f64, f64) = (std::f64::consts::LOG2_E, 2.035_527_374_093_103_3e-17);
    let (hi, lo) = dd_add(dd_mul(ln_m, LOG2_E), (e as f64, 0.0));
    hi + lo
}

fn dd_add((ah, al): (f64, f64), (bh, bl): (f64, f64)) -> (f64, f64) {
    let (s, e) = two_sum(ah, bh);
    let (t, f) = two_sum(al, bl);
    let (s, e) = quick(s, e + t);
    quick(s, e + f)
}

fn dd_mul((ah, al): (f64, f64), (bh, bl): (f64, f64)) -> (f64, f64) {
    let (p, e) = two_product(ah, bh);
    quick(p, e + (ah * bl + al * bh))
}

fn dd_div(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let q1 = a.0 / b.0;
    let r = dd_add(a, neg(dd_mul((q1, 0.0), b)));
    let q2 = r.0 / b.0;
    let r = dd_add(r, neg(dd_mul((q2, 0.0), b)));
    let q3 = r.0 / b.0;
    dd_add(quick(q1, q2), (q3, 0.0))
}

fn neg((h, l): (f64, f64)) -> (f64, f64) {
    (-h, -l)
}

/// `a + b` as a normalised pair, given |a| ≥ |b|.
fn quick(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_of_the_issue_example() {
        // 1..255, 4 quantile buckets: boundaries v_64, v_128, v_192.
        let e = edges(1.0, &[64.0, 128.0, 192.0], 255.0);
        assert_eq!(e, [1.0, 64.0, 128.0, 192.0, 255.0]);
        assert_eq!(slots(e.len()), 6);
        let mut training = [0u64; 6];
        for x in 1..=255 {
            training[slot(&e, x as f64)] += 1;
        }
        assert_eq!(training, [0, 63, 64, 64, 64, 0]);
        let mut new = [0u64; 6];
        for x in 1..=500 {
            new[slot(&e, x as f64)] += 1;
        }
        assert_eq!(new, [0, 63, 64, 64, 64, 245]);
        // The issue's oracle, and the out-of-range share 245/500.
        assert_eq!(jensen_shannon(&training, &new), Some(0.3034009788996591));
        assert_eq!(share(new[0] + new[5], 500), 0.49);
        assert_eq!(slot(&e, 0.5), 0);
        assert_eq!(slot(&e, 63.999), 1);
        assert_eq!(slot(&e, 254.5), 4);
    }

    #[test]
    fn edges_of_degenerate_columns() {
        // Constant: one bin holding the value.
        let c = edges(7.0, &[7.0, 7.0], 7.0);
        assert_eq!(c, [7.0]);
        assert_eq!(
            (bins(1), slot(&c, 7.0), slot(&c, 6.0), slot(&c, 8.0)),
            (1, 1, 0, 2)
        );
        // Boundaries at the minimum or repeated: dropped.
        assert_eq!(edges(0.0, &[0.0, 0.0, 3.0, 3.0], 9.0), [0.0, 3.0, 9.0]);
        // No values: no edges, every value above.
        assert!(edges(f64::NAN, &[], f64::NAN).is_empty());
        assert_eq!((slots(0), slot(&[], 1.0)), (2, 1));
    }

    #[test]
    fn divergences_of_identical_disjoint_and_empty_counts() {
        assert_eq!(jensen_shannon(&[5, 3, 0, 2], &[10, 6, 0, 4]), Some(0.0));
        assert_eq!(jensen_shannon(&[5, 0], &[0, 7]), Some(1.0));
        assert_eq!(jensen_shannon(&[0, 0], &[1, 2]), None);
        // TFDV's categorical example as the issue gives it:
        // {a: 50, b: 30, c: 20} vs {a: 30, b: 30, c: 25, d: 15}.
        assert_eq!(l_infinity(&[50, 30, 20, 0], &[30, 30, 25, 15]), Some(0.2));
        assert_eq!(l_infinity(&[1, 1], &[1, 1]), Some(0.0));
        assert_eq!(l_infinity(&[1, 0], &[0, 1]), Some(1.0));
        assert_eq!(share(15, 100), 0.15);
    }

    #[test]
    // The expected values are worked-out literals (log2(10) among them).
    #[allow(clippy::approx_constant)]
    fn log2_is_correctly_rounded_on_known_values() {
        // Exact powers, and values whose correctly rounded logarithms were
        // worked out to 40 digits (Python's decimal module):
        // log2(3) = 1.584962500721156181453738943947816508759…
        // log2(10) = 3.321928094887362347870319429489390175864…
        // log2 of the double nearest 0.7 (0.69999999999999995559…)
        // = −0.51457317282975833195…
        assert_eq!(log2(1.0), 0.0);
        assert_eq!(log2(1024.0), 10.0);
        assert_eq!(log2(0.125), -3.0);
        assert_eq!(log2(3.0), 1.584962500721156);
        assert_eq!(log2(10.0), 3.321928094887362);
        assert_eq!(log2(0.7), -0.5145731728297583);
        assert_eq!(log2(f64::MIN_POSITIVE / 4.0), -1024.0);
        assert_eq!(log2(0.0), f64::NEG_INFINITY);
        assert!(log2(-1.0).is_nan());
        // Against the platform's on a sweep: never more than one unit in
        // the last place apart (ours is the rounded one).
        let mut x = 1e-300;
        while x < 1e300 {
            let (ours, theirs) = (log2(x), x.log2());
            let ulps = (ours.to_bits() as i64 - theirs.to_bits() as i64).abs();
            assert!(ulps <= 1, "log2({x}): {ours} vs {theirs}");
            x *= 1.37;
        }
    }
}
