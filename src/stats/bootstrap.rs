//! Seeded percentile bootstrap: resample with replacement, recompute the
//! statistic, read the interval off the sorted resampled statistics (as
//! criterion.rs does for the change of a benchmark). Seeded with ChaCha8 so
//! a table printed twice from the same files says the same thing.

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use super::describe::quantile_sorted;
use super::Interval;

/// Resamples per interval: enough for a stable 95 % percentile interval.
const RESAMPLES: usize = 2000;

/// What a bootstrap estimates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    Median,
    Mean,
    /// A quantile, 0 to 1 (0.9 for p90).
    Quantile(f64),
}

impl Statistic {
    /// The statistic of `v` (which it may reorder); `v` is non-empty.
    pub fn of(self, v: &mut [f64]) -> f64 {
        match self {
            Statistic::Mean => v.iter().sum::<f64>() / v.len() as f64,
            Statistic::Median => select_quantile(v, 0.5),
            Statistic::Quantile(q) => select_quantile(v, q),
        }
    }
}

/// Type-7 quantile in O(n) by selection instead of a full sort.
fn select_quantile(v: &mut [f64], q: f64) -> f64 {
    let h = (v.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let (_, &mut a, rest) = v.select_nth_unstable_by(lo, f64::total_cmp);
    let frac = h - lo as f64;
    if frac == 0.0 || rest.is_empty() {
        return a;
    }
    let b = rest.iter().copied().fold(f64::INFINITY, f64::min);
    a + frac * (b - a)
}

fn resample(rng: &mut ChaCha8Rng, from: &[f64], into: &mut Vec<f64>) {
    into.clear();
    into.extend((0..from.len()).map(|_| from[rng.random_range(0..from.len())]));
}

/// Percentile bootstrap interval of `stat` over `values`; `None` when empty.
pub fn bootstrap_ci(values: &[f64], stat: Statistic, level: f64, seed: u64) -> Option<Interval> {
    bootstrap_ci_n(values, stat, level, seed, RESAMPLES)
}

fn bootstrap_ci_n(
    values: &[f64],
    stat: Statistic,
    level: f64,
    seed: u64,
    resamples: usize,
) -> Option<Interval> {
    if values.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf = Vec::with_capacity(values.len());
    let mut stats: Vec<f64> = (0..resamples)
        .map(|_| {
            resample(&mut rng, values, &mut buf);
            stat.of(&mut buf)
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some(Interval {
        estimate: stat.of(&mut values.to_vec()),
        low: quantile_sorted(&stats, tail),
        high: quantile_sorted(&stats, 1.0 - tail),
    })
}

/// Percentile bootstrap intervals of the change of `stat` from `base` to
/// `now`: absolute (`now − base`) and relative (`(now − base) / |base|`, a
/// fraction; `None` when the base statistic is 0). Each resample draws both
/// samples anew.
pub fn bootstrap_change(
    base: &[f64],
    now: &[f64],
    stat: Statistic,
    level: f64,
    seed: u64,
) -> Option<(Interval, Option<Interval>)> {
    bootstrap_change_n(base, now, stat, level, seed, RESAMPLES)
}

fn bootstrap_change_n(
    base: &[f64],
    now: &[f64],
    stat: Statistic,
    level: f64,
    seed: u64,
    resamples: usize,
) -> Option<(Interval, Option<Interval>)> {
    if base.is_empty() || now.is_empty() {
        return None;
    }
    let b0 = stat.of(&mut base.to_vec());
    let n0 = stat.of(&mut now.to_vec());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut bb, mut nb) = (Vec::new(), Vec::new());
    let mut abs = Vec::with_capacity(resamples);
    let mut rel = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        resample(&mut rng, base, &mut bb);
        resample(&mut rng, now, &mut nb);
        let (b, n) = (stat.of(&mut bb), stat.of(&mut nb));
        abs.push(n - b);
        if b != 0.0 {
            rel.push((n - b) / b.abs());
        }
    }
    let tail = (1.0 - level) / 2.0;
    let interval = |mut v: Vec<f64>, estimate: f64| {
        v.sort_by(f64::total_cmp);
        Interval {
            estimate,
            low: quantile_sorted(&v, tail),
            high: quantile_sorted(&v, 1.0 - tail),
        }
    };
    // A relative change needs a base that is never 0 in the resamples.
    let relative =
        (b0 != 0.0 && rel.len() == resamples).then(|| interval(rel, (n0 - b0) / b0.abs()));
    Some((interval(abs, n0 - b0), relative))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::distr::Distribution;

    /// Exponential(1) draws: median ln 2.
    fn exp_sample(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
        let u = rand::distr::Uniform::new(0.0f64, 1.0).expect("a valid range");
        (0..n).map(|_| -(1.0 - u.sample(rng)).ln()).collect()
    }

    #[test]
    fn median_interval_covers_the_true_median_about_95_percent_of_the_time() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let truth = std::f64::consts::LN_2;
        let trials = 200;
        let covered = (0..trials)
            .filter(|&t| {
                let v = exp_sample(&mut rng, 40);
                // Fewer resamples than in use, to keep a debug build fast.
                bootstrap_ci_n(&v, Statistic::Median, 0.95, t, 400)
                    .unwrap()
                    .contains(truth)
            })
            .count();
        let rate = covered as f64 / trials as f64;
        // 200 trials at 95 %: a standard error of 1.5 points.
        assert!((0.90..=0.99).contains(&rate), "coverage {rate}");
    }

    #[test]
    fn change_interval_covers_a_known_shift() {
        // now = base distribution + 0.5: the median moves by exactly 0.5.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let trials = 150;
        let covered = (0..trials)
            .filter(|&t| {
                let base = exp_sample(&mut rng, 40);
                let now: Vec<f64> = exp_sample(&mut rng, 40).iter().map(|x| x + 0.5).collect();
                let (abs, _) =
                    bootstrap_change_n(&base, &now, Statistic::Median, 0.95, t, 400).unwrap();
                abs.contains(0.5)
            })
            .count();
        let rate = covered as f64 / trials as f64;
        assert!((0.90..=0.995).contains(&rate), "coverage {rate}");
    }

    #[test]
    fn seeded_and_relative() {
        let base = [1.0, 1.1, 0.9, 1.05, 0.95];
        let now = [2.0, 2.2, 1.8, 2.1, 1.9];
        let a = bootstrap_change(&base, &now, Statistic::Median, 0.95, 1).unwrap();
        let b = bootstrap_change(&base, &now, Statistic::Median, 0.95, 1).unwrap();
        assert_eq!(a, b, "same seed, same interval");
        let rel = a.1.unwrap();
        assert!((rel.estimate - 1.0).abs() < 1e-12, "doubled: +100 %");
        assert!(rel.low > 0.5 && rel.high < 1.5, "{rel:?}");
        let zero = bootstrap_change(&[0.0, 0.0], &[1.0, 1.0], Statistic::Mean, 0.95, 1).unwrap();
        assert!(zero.1.is_none(), "no relative change from 0");
        let mut v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(Statistic::Quantile(0.9).of(&mut v), 4.6);
        assert_eq!(Statistic::Median.of(&mut v), 3.0);
    }
}
