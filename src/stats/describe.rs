//! Descriptive statistics of a sample: n, mean, median, standard deviation,
//! extremes and quantiles (linear interpolation between order statistics,
//! "type 7", the default of R and NumPy).

/// What `results/<name>.stats.csv` holds for one metric's repetitions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Describe {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    /// Sample standard deviation (n − 1 in the denominator); `None` for n < 2.
    pub stddev: Option<f64>,
    pub min: f64,
    pub max: f64,
}

impl Describe {
    /// `None` for an empty sample. NaNs are left out.
    pub fn of(values: &[f64]) -> Option<Describe> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(Describe {
            n: v.len(),
            mean: mean(&v)?,
            median: quantile_sorted(&v, 0.5),
            stddev: stddev(&v),
            min: v[0],
            max: v[v.len() - 1],
        })
    }
}

pub fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Sample standard deviation; `None` below two values.
pub fn stddev(v: &[f64]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let m = mean(v)?;
    let ss: f64 = v.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (v.len() - 1) as f64).sqrt())
}

/// The `q` quantile (0 ≤ q ≤ 1) of unsorted values; `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Some(quantile_sorted(&v, q))
}

/// The `q` quantile of sorted, non-empty values (type 7).
pub(crate) fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    let h = (v.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    v[lo] + (h - lo as f64) * (v[hi] - v[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let d = Describe::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(d.n, 8);
        assert_eq!(d.mean, 5.0);
        assert_eq!(d.median, 4.5);
        // Population sd is 2; the sample sd is 2 × sqrt(8/7).
        assert!((d.stddev.unwrap() - 2.0 * (8.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!((d.min, d.max), (2.0, 9.0));
        assert_eq!(Describe::of(&[3.0]).unwrap().stddev, None);
        assert_eq!(Describe::of(&[]), None);
    }

    #[test]
    fn quantiles_interpolate_like_r_type_7() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        // R: quantile(1:10, c(.5, .9, .99)) = 5.5, 9.1, 9.91
        assert!((quantile(&v, 0.5).unwrap() - 5.5).abs() < 1e-12);
        assert!((quantile(&v, 0.9).unwrap() - 9.1).abs() < 1e-12);
        assert!((quantile(&v, 0.99).unwrap() - 9.91).abs() < 1e-12);
        assert_eq!(quantile(&[], 0.5), None);
    }
}
