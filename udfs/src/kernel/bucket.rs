//! Bucketizing: the number of boundaries ≤ x.

/// The bucket of `x` among ascending, finite `boundaries`: how many are ≤ x
/// (lower-inclusive buckets, as TensorFlow Transform's `apply_buckets` and
/// BigQuery ML's `ML.BUCKETIZE`). NaN → `boundaries.len()`; −inf → 0.
///
/// # Example
/// ```
/// use skewless_udfs::kernel::bucket::bucketize;
/// let b = [2.0, 5.0, 10.0];
/// let got: Vec<i64> = [4.0, f64::NAN, 1.0, f64::NEG_INFINITY, 7.5, 10.0]
///     .iter()
///     .map(|&x| bucketize(x, &b))
///     .collect();
/// assert_eq!(got, [1, 3, 0, 0, 2, 3]);
/// ```
#[inline]
pub fn bucketize(x: f64, boundaries: &[f64]) -> i64 {
    if x.is_nan() {
        return boundaries.len() as i64;
    }
    boundaries.partition_point(|&b| b <= x) as i64
}

/// Checks that boundaries are finite and strictly ascending; the error says
/// which one is not.
pub fn check_boundaries(boundaries: &[f64]) -> Result<(), String> {
    for (i, b) in boundaries.iter().enumerate() {
        if !b.is_finite() {
            return Err(format!("boundary {} is {b}, not a finite number", i + 1));
        }
        if i > 0 && boundaries[i - 1] >= *b {
            return Err(format!(
                "boundaries must be strictly ascending, but boundary {} ({}) is not above boundary {} ({})",
                i + 1,
                b,
                i,
                boundaries[i - 1]
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges() {
        assert_eq!(bucketize(f64::INFINITY, &[1.0]), 1);
        assert_eq!(bucketize(0.5, &[]), 0);
        assert_eq!(bucketize(f64::NAN, &[]), 0);
        assert_eq!(bucketize(-0.0, &[0.0]), 1);
        assert_eq!(bucketize(1.0, &[1.0, 2.0]), 1);
    }

    #[test]
    fn boundary_checks() {
        assert!(check_boundaries(&[1.0, 2.0, 3.5]).is_ok());
        assert!(check_boundaries(&[]).is_ok());
        assert!(
            check_boundaries(&[1.0, 1.0])
                .unwrap_err()
                .contains("boundary 2")
        );
        assert!(check_boundaries(&[2.0, 1.0]).is_err());
        assert!(
            check_boundaries(&[1.0, f64::NAN])
                .unwrap_err()
                .contains("finite")
        );
        assert!(check_boundaries(&[f64::NEG_INFINITY]).is_err());
    }
}
