//! Scaling kernels: the instance-level half of the full-pass scalers.
//!
//! Each takes one value and the fitted statistics. NaN in gives NaN out;
//! NULL handling is the caller's (NULL in, NULL out). The formulas and their
//! evaluation order are the specification: the batch and serving paths both
//! call these functions, so they agree bit for bit.

/// `(x − min) / (max − min)`; when `max = min`, `x − min`.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::scale::min_max_scale;
/// let scaled: Vec<f64> = (1..=5).map(|x| min_max_scale(x as f64, 1.0, 5.0)).collect();
/// assert_eq!(scaled, [0.0, 0.25, 0.5, 0.75, 1.0]);
/// ```
#[inline]
pub fn min_max_scale(x: f64, min: f64, max: f64) -> f64 {
    let range = max - min;
    if range == 0.0 {
        x - min
    } else {
        (x - min) / range
    }
}

/// `lo + (x − min) / (max − min) · (hi − lo)`; when `max = min`, `x − min + lo`.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::scale::min_max_scale_to;
/// assert_eq!(min_max_scale_to(3.0, 1.0, 5.0, -1.0, 1.0), 0.0);
/// ```
#[inline]
pub fn min_max_scale_to(x: f64, min: f64, max: f64, lo: f64, hi: f64) -> f64 {
    let range = max - min;
    if range == 0.0 {
        x - min + lo
    } else {
        lo + (x - min) / range * (hi - lo)
    }
}

/// `(x − mean) · scale`, where the fitted `scale` is 1/σ rounded once from
/// the exact statistics (1 when σ = 0, giving `x − mean`).
///
/// # Example
/// ```
/// use skewless_udfs::kernel::scale::z_score;
/// // 1..5: mean 3, σ = √2, scale = 1/√2 correctly rounded.
/// assert_eq!(z_score(5.0, 3.0, 0.7071067811865476), 1.4142135623730951);
/// ```
#[inline]
pub fn z_score(x: f64, mean: f64, scale: f64) -> f64 {
    (x - mean) * scale
}

/// The fitted `scale` of [`z_score`] from σ and the once-rounded 1/σ.
#[inline]
pub fn z_score_scale(stddev: f64, inv_stddev: f64) -> f64 {
    if stddev == 0.0 { 1.0 } else { inv_stddev }
}

/// `x / max_abs`; when `max_abs = 0`, `x`.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::scale::max_abs_scale;
/// assert_eq!(max_abs_scale(-3.0, 5.0), -0.6);
/// ```
#[inline]
pub fn max_abs_scale(x: f64, max_abs: f64) -> f64 {
    if max_abs == 0.0 { x } else { x / max_abs }
}

/// `(x − median) / iqr`; when `iqr = 0`, `x − median`.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::scale::robust_scale;
/// assert_eq!(robust_scale(4.0, 2.5, 1.5), 1.0);
/// ```
#[inline]
pub fn robust_scale(x: f64, median: f64, iqr: f64) -> f64 {
    if iqr == 0.0 {
        x - median
    } else {
        (x - median) / iqr
    }
}

#[cfg(test)]
// The expected values are the issue's literals, e.g. 0.7071067811865476 = 1/√2.
#[allow(clippy::approx_constant)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_ranges() {
        assert_eq!(min_max_scale(7.0, 4.0, 4.0), 3.0);
        assert_eq!(min_max_scale_to(7.0, 4.0, 4.0, 10.0, 20.0), 13.0);
        assert_eq!(z_score(7.0, 4.0, z_score_scale(0.0, f64::INFINITY)), 3.0);
        assert_eq!(max_abs_scale(-2.5, 0.0), -2.5);
        assert_eq!(robust_scale(7.0, 4.0, 0.0), 3.0);
    }

    #[test]
    fn extrapolates_and_propagates_nan() {
        assert_eq!(min_max_scale(9.0, 1.0, 5.0), 2.0);
        assert_eq!(min_max_scale(-3.0, 1.0, 5.0), -1.0);
        assert!(min_max_scale(f64::NAN, 1.0, 5.0).is_nan());
        assert!(z_score(f64::NAN, 0.0, 1.0).is_nan());
        assert!(max_abs_scale(f64::NAN, 2.0).is_nan());
        assert!(robust_scale(f64::NAN, 0.0, 1.0).is_nan());
        assert_eq!(min_max_scale(f64::INFINITY, 1.0, 5.0), f64::INFINITY);
    }

    #[test]
    fn issue_examples() {
        // max_abs_scale: −3,1,2,3,4,5 → −0.6,0.2,0.4,0.6,0.8,1.0
        let got: Vec<f64> = [-3.0, 1.0, 2.0, 3.0, 4.0, 5.0]
            .iter()
            .map(|&x| max_abs_scale(x, 5.0))
            .collect();
        assert_eq!(got, [-0.6, 0.2, 0.4, 0.6, 0.8, 1.0]);
        // z_score 1..5 with the correctly rounded 1/√2.
        let got: Vec<f64> = (1..=5)
            .map(|x| z_score(x as f64, 3.0, 0.7071067811865476))
            .collect();
        assert_eq!(
            got,
            [
                -1.4142135623730951,
                -0.7071067811865476,
                0.0,
                0.7071067811865476,
                1.4142135623730951
            ]
        );
        // 1,1,2,2 → −1,−1,1,1 (mean 1.5, σ 0.5).
        assert_eq!(z_score(1.0, 1.5, 2.0), -1.0);
        assert_eq!(z_score(2.0, 1.5, 2.0), 1.0);
    }
}
