//! Exact, order-independent floating-point arithmetic for statistics.
//!
//! Fitting must give byte-identical statistics whatever the partitioning or
//! thread count, so sums cannot depend on the order values arrive in.
//! [`ExactSum`] keeps a sum exactly (Shewchuk's non-overlapping partials, the
//! algorithm of Python's `math.fsum`) and rounds only when asked, so any
//! order of `add` and `merge` calls yields the same result. Double-double
//! helpers then derive means and standard deviations from exact sums with
//! (nearly always) correct rounding.

/// An exact sum of finite `f64` values.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::exact::ExactSum;
/// let mut a = ExactSum::default();
/// for x in [1e100, 1.0, -1e100, 0.1] {
///     a.add(x);
/// }
/// assert_eq!(a.value(), 1.1);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExactSum {
    /// Non-overlapping partial sums in increasing magnitude; their exact
    /// total is the sum.
    partials: Vec<f64>,
}

impl ExactSum {
    /// Back to zero, keeping the memory (for a reused accumulator).
    #[inline]
    pub fn clear(&mut self) {
        self.partials.clear();
    }

    /// Adds a finite value. (A non-finite value poisons the sum; callers
    /// skip them and count what they skipped.)
    #[inline]
    pub fn add(&mut self, mut x: f64) {
        let mut kept = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        self.partials.truncate(kept);
        self.partials.push(x);
    }

    /// Adds the exact product `a·b`.
    #[inline]
    pub fn add_product(&mut self, a: f64, b: f64) {
        let (p, e) = two_product(a, b);
        self.add(p);
        if e != 0.0 {
            self.add(e);
        }
    }

    /// Adds every partial of `other`: the result is the exact total.
    pub fn merge(&mut self, other: &Self) {
        for &p in &other.partials {
            self.add(p);
        }
    }

    /// The partials, for serializing a state; [`ExactSum::from_partials`]
    /// reads them back.
    pub fn partials(&self) -> &[f64] {
        &self.partials
    }

    /// A sum from serialized partials (any finite values whose total is the sum).
    pub fn from_partials(partials: impl IntoIterator<Item = f64>) -> Self {
        let mut s = Self::default();
        for p in partials {
            s.add(p);
        }
        s
    }

    /// A sum holding exactly `partials` as [`ExactSum::partials`] gave
    /// them (so a state read back is the state written, partial for
    /// partial). Partials that are not finite and in increasing magnitude
    /// are added one by one instead: the same total either way.
    pub fn from_exact_partials(partials: Vec<f64>) -> Self {
        let ordered = partials.iter().all(|p| p.is_finite())
            && partials.windows(2).all(|w| w[0].abs() < w[1].abs());
        if ordered {
            Self { partials }
        } else {
            Self::from_partials(partials)
        }
    }

    /// The exact sum rounded to the nearest `f64` (ties to even).
    pub fn value(&self) -> f64 {
        let p = &self.partials;
        let mut n = p.len();
        if n == 0 {
            return 0.0;
        }
        n -= 1;
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        // Half-way cases: the partials below decide the direction.
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }

    /// The sum as a double-double `(hi, lo)`: `hi` the rounded sum, `lo` the
    /// rounded remainder. Both depend only on the exact sum.
    pub fn value_dd(&self) -> (f64, f64) {
        // One finite partial is its own exact value (what the general case
        // below gives, without copying the partials).
        if let [only] = self.partials[..]
            && only.is_finite()
        {
            return (only, 0.0);
        }
        let hi = self.value();
        let mut rest = self.clone();
        rest.add(-hi);
        (hi, rest.value())
    }
}

/// `a + b` as an unevaluated pair `(s, e)` with `s + e` exact.
#[inline]
pub fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    (s, e)
}

/// `a · b` as `(p, e)` with `p + e` exact (barring overflow).
#[inline]
pub fn two_product(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

/// Square root of a non-negative double-double, as a double-double.
pub fn dd_sqrt((hi, lo): (f64, f64)) -> (f64, f64) {
    if hi <= 0.0 {
        return (0.0, 0.0);
    }
    let s = hi.sqrt();
    let (p, e) = two_product(s, s);
    let r = (((hi - p) - e) + lo) / (2.0 * s);
    two_sum(s, r)
}

/// `n / (hi, lo)` rounded to `f64`.
pub fn div_by_dd(n: f64, (hi, lo): (f64, f64)) -> f64 {
    let q = n / hi;
    let (p, e) = two_product(q, hi);
    let r = ((n - p) - e) - q * lo;
    q + r / hi
}

/// `(hi, lo) / n` rounded to `f64`.
pub fn dd_div(n_hi: (f64, f64), d: f64) -> f64 {
    let (hi, lo) = n_hi;
    let q = hi / d;
    let (p, e) = two_product(q, d);
    let r = ((hi - p) - e) + lo;
    q + r / d
}

#[cfg(test)]
// The expected values are the issue's literals, e.g. 0.7071067811865476 = 1/√2.
#[allow(clippy::approx_constant)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_exact_and_order_independent() {
        let values = [1e16, 1.0, -1e16, 3.3, 1e-20, -7.25, 0.1, 0.2];
        let mut forward = ExactSum::default();
        values.iter().for_each(|&v| forward.add(v));
        let mut backward = ExactSum::default();
        values.iter().rev().for_each(|&v| backward.add(v));
        // Python: math.fsum([1e16, 1.0, -1e16, 3.3, 1e-20, -7.25, 0.1, 0.2])
        assert_eq!(forward.value(), -2.6500000000000004);
        assert_eq!(forward.value(), backward.value());
        // Merging partial states in any grouping gives the same value.
        let mut left = ExactSum::default();
        values[..3].iter().for_each(|&v| left.add(v));
        let mut right = ExactSum::default();
        values[3..].iter().for_each(|&v| right.add(v));
        let mut merged = right.clone();
        merged.merge(&left);
        assert_eq!(merged.value(), forward.value());
        assert_eq!(ExactSum::default().value(), 0.0);
    }

    #[test]
    fn half_way_rounding_uses_lower_partials() {
        // 1 + 2^-53 + 2^-106: above the half-way point, rounds up.
        let mut s = ExactSum::default();
        for v in [1.0, 2f64.powi(-53), 2f64.powi(-106)] {
            s.add(v);
        }
        assert_eq!(s.value(), 1.0 + f64::EPSILON);
        // 1 + 2^-53 exactly half-way: ties to even, stays 1.
        let s = ExactSum::from_partials([1.0, 2f64.powi(-53)]);
        assert_eq!(s.value(), 1.0);
    }

    #[test]
    fn products_are_exact() {
        let mut s = ExactSum::default();
        let x = 0.1;
        s.add_product(x, x);
        s.add(-0.010000000000000002);
        // 0.1*0.1 rounded is 0.010000000000000002; the exact remainder is tiny but not 0.
        assert!(s.value() != 0.0 && s.value().abs() < 1e-18);
    }

    #[test]
    fn a_double_double_is_the_rounded_sum_and_its_rounded_remainder() {
        // One partial (the shortcut) and several: (hi, lo) as the remainder
        // left after taking hi away says.
        let general = |s: &ExactSum| {
            let hi = s.value();
            let mut rest = s.clone();
            rest.add(-hi);
            (hi, rest.value())
        };
        for values in [
            &[7.5][..],
            &[1e308],
            &[-3.0, 3.0],
            &[1.0, 2f64.powi(-60)],
            &[1e16, 1.0, 0.1],
        ] {
            let s = ExactSum::from_partials(values.iter().copied());
            assert_eq!(s.value_dd(), general(&s), "{values:?}");
        }
        let s = ExactSum::from_partials([1.0, 2f64.powi(-60)]);
        assert_eq!(s.value_dd(), (1.0, 2f64.powi(-60)));
        assert_eq!(ExactSum::from_partials([7.5]).value_dd(), (7.5, 0.0));
    }

    #[test]
    fn double_double_helpers() {
        // sqrt(50) = 7.0710678118654752440…, 5/sqrt(50) = 1/sqrt(2) = 0.70710678118654752440…
        let r = dd_sqrt((50.0, 0.0));
        assert_eq!(r.0, 7.0710678118654755);
        assert_eq!(div_by_dd(5.0, r), 0.7071067811865476);
        assert_eq!(dd_div((6.0, 0.0), 8.0), 0.75);
        assert_eq!(dd_div((1.0, 0.0), 3.0), 1.0 / 3.0);
    }
}
