//! Closed-form confidence intervals: Student's t for a mean, Wilson for a
//! proportion, Newcombe's hybrid score interval for a difference of two
//! proportions (loss, errors, cache hits counted out of a total).

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// A point estimate with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// The two-sided critical value of the standard normal at `level` (1.96 at 95 %).
pub(crate) fn z_critical(level: f64) -> f64 {
    let n = Normal::new(0.0, 1.0).expect("the standard normal is valid");
    n.inverse_cdf(0.5 + level / 2.0)
}

/// `mean ± t(level, n−1) × s / √n`; `None` below two values.
pub fn t_interval(values: &[f64], level: f64) -> Option<Interval> {
    let n = values.len();
    let m = super::mean(values)?;
    let s = super::stddev(values)?;
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).ok()?;
    let half = t.inverse_cdf(0.5 + level / 2.0) * s / (n as f64).sqrt();
    Some(Interval {
        estimate: m,
        low: m - half,
        high: m + half,
    })
}

/// Wilson score interval of `k` successes out of `n`; `None` for n = 0.
pub fn wilson(k: u64, n: u64, level: f64) -> Option<Interval> {
    if n == 0 || k > n {
        return None;
    }
    let (k, n) = (k as f64, n as f64);
    let z = z_critical(level);
    let p = k / n;
    let denom = n + z * z;
    let center = (k + z * z / 2.0) / denom;
    let half = z / denom * (k * (n - k) / n + z * z / 4.0).sqrt();
    Some(Interval {
        estimate: p,
        // Exact at the edges (rounding would leave 1e-17 where 0 is meant).
        low: if k == 0.0 {
            0.0
        } else {
            (center - half).max(0.0)
        },
        high: if k == n {
            1.0
        } else {
            (center + half).min(1.0)
        },
    })
}

/// Newcombe's interval (method 10) for `p_now − p_base`, from the two
/// Wilson intervals; good at proportions near 0, where loss usually is.
pub fn newcombe_difference(
    k_base: u64,
    n_base: u64,
    k_now: u64,
    n_now: u64,
    level: f64,
) -> Option<Interval> {
    let a = wilson(k_base, n_base, level)?;
    let b = wilson(k_now, n_now, level)?;
    let d = b.estimate - a.estimate;
    Some(Interval {
        estimate: d,
        low: d - ((b.estimate - b.low).powi(2) + (a.high - a.estimate).powi(2)).sqrt(),
        high: d + ((b.high - b.estimate).powi(2) + (a.estimate - a.low).powi(2)).sqrt(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() < eps
    }

    #[test]
    fn t_interval_of_one_to_ten() {
        // mean 5.5, s = 3.02765, t(0.975, 9) = 2.262157: 5.5 ± 2.16585
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        let i = t_interval(&v, 0.95).unwrap();
        assert!(close(i.estimate, 5.5, 1e-12));
        assert!(close(i.low, 3.334149, 1e-5), "{i:?}");
        assert!(close(i.high, 7.665851, 1e-5), "{i:?}");
        assert_eq!(t_interval(&[1.0], 0.95), None);
    }

    #[test]
    fn wilson_known_values() {
        // 0 of 20: [0, 0.1611]; 5 of 20 (Newcombe 1998, table I style): [0.1119, 0.4687]
        let i = wilson(0, 20, 0.95).unwrap();
        assert_eq!(i.low, 0.0);
        assert!(close(i.high, 0.16113, 1e-4), "{i:?}");
        let i = wilson(5, 20, 0.95).unwrap();
        assert!(close(i.low, 0.11186, 1e-4), "{i:?}");
        assert!(close(i.high, 0.46870, 1e-4), "{i:?}");
        assert_eq!(wilson(0, 0, 0.95), None);
    }

    #[test]
    fn newcombe_difference_known_value() {
        // Newcombe (1998), example (f): 56/70 − 48/80 → 0.2, 95 % CI [0.0524, 0.3339].
        let i = newcombe_difference(48, 80, 56, 70, 0.95).unwrap();
        assert!(close(i.estimate, 0.2, 1e-12));
        assert!(close(i.low, 0.0524, 1e-3), "{i:?}");
        assert!(close(i.high, 0.3339, 1e-3), "{i:?}");
    }
}
