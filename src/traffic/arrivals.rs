//! When requests are due: a rate (or a number of clients) that holds or
//! ramps linearly through stages, as k6's ramping executors, and arrivals
//! that are evenly spaced or a Poisson process. Request `i` is due when the
//! integral of the rate reaches `i` (constant) or the sum of `i + 1`
//! exponential gaps of mean 1 (Poisson: the time-rescaling of a unit-rate
//! process, so Poisson arrivals follow a ramp too).

use std::time::Duration;

use super::rng::Rng;

/// How the gaps between open-loop requests are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Arrivals {
    /// Evenly spaced: `1 / rate` apart.
    #[default]
    Constant,
    /// Exponential gaps of mean `1 / rate`.
    Poisson,
}

impl Arrivals {
    pub fn name(self) -> &'static str {
        match self {
            Arrivals::Constant => "constant",
            Arrivals::Poisson => "poisson",
        }
    }
}

/// One stage: over `duration`, move linearly to `target`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

/// A level (requests per second, or clients) over time: `start`, then
/// through each stage in turn; without stages it holds `start` for ever.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub start: f64,
    pub stages: Vec<Stage>,
}

impl Profile {
    pub fn constant(level: f64) -> Self {
        Profile {
            start: level,
            stages: Vec::new(),
        }
    }

    /// The stages' total length; `None` without stages (no end).
    pub fn length(&self) -> Option<Duration> {
        (!self.stages.is_empty()).then(|| self.stages.iter().map(|s| s.duration).sum())
    }

    /// Each stage as (its start, its length, level at start, level at end).
    fn segments(&self) -> impl Iterator<Item = (f64, f64, f64, f64)> + '_ {
        let mut t0 = 0.0;
        let mut from = self.start;
        self.stages.iter().map(move |s| {
            let seg = (t0, s.duration.as_secs_f64(), from, s.target);
            t0 += s.duration.as_secs_f64();
            from = s.target;
            seg
        })
    }

    /// The level at `t` seconds from the start (past the end: the last target).
    pub fn level_at(&self, t: f64) -> f64 {
        let mut last = self.start;
        for (t0, d, from, to) in self.segments() {
            if t < t0 + d {
                return if d > 0.0 {
                    from + (to - from) * (t - t0) / d
                } else {
                    to
                };
            }
            last = to;
        }
        last
    }

    /// The integral of the level from 0 to the end (expected requests of
    /// a rate profile); `None` without stages.
    pub fn total(&self) -> Option<f64> {
        self.length()?;
        Some(self.segments().map(|(_, d, a, b)| (a + b) / 2.0 * d).sum())
    }

    /// The time at which the integral of the level reaches `s`; `None`
    /// when it never does (past the last stage, or a level of 0 for ever).
    pub fn time_of(&self, s: f64) -> Option<f64> {
        let mut acc = 0.0;
        for (t0, d, from, to) in self.segments() {
            let area = (from + to) / 2.0 * d;
            if s < acc + area {
                // Solve from·t + (to − from)/(2d)·t² = s − acc, stably.
                let rest = s - acc;
                let a = (to - from) / (2.0 * d);
                let disc = (from * from + 4.0 * a * rest).max(0.0);
                let denom = from + disc.sqrt();
                let t = if denom > 0.0 { 2.0 * rest / denom } else { 0.0 };
                return Some(t0 + t.min(d));
            }
            acc += area;
        }
        if self.stages.is_empty() && self.start > 0.0 {
            return Some(s / self.start);
        }
        None
    }

    /// The first time at or after `from` seconds when the level is at
    /// least `level`; `None` if never (the level stays below it).
    pub fn first_at_least(&self, level: f64, from: f64) -> Option<f64> {
        if self.level_at(from) >= level {
            return Some(from);
        }
        for (t0, d, a, b) in self.segments() {
            let end = t0 + d;
            if end <= from || b < level {
                continue;
            }
            // Rising through `level` within this stage (a < level <= b).
            let t = if b > a {
                t0 + (level - a) / (b - a) * d
            } else {
                t0
            };
            return Some(t.max(from));
        }
        None
    }
}

/// The due times of open-loop requests, as offsets from the start.
#[derive(Debug, Clone)]
pub struct Schedule {
    profile: Profile,
    arrivals: Arrivals,
    rng: Rng,
    index: u64,
    /// Poisson: the unit-rate process's time so far.
    clock: f64,
}

impl Schedule {
    pub fn new(profile: Profile, arrivals: Arrivals, seed: u64) -> Self {
        Schedule {
            profile,
            arrivals,
            rng: Rng::at(seed, 0xA11, 0),
            index: 0,
            clock: 0.0,
        }
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let s = match self.arrivals {
            Arrivals::Constant => self.index as f64,
            Arrivals::Poisson => {
                self.clock += self.rng.next_exp();
                self.clock
            }
        };
        self.index += 1;
        let t = self.profile.time_of(s)?;
        Duration::try_from_secs_f64(t).ok()
    }
}

#[cfg(test)]
mod tests {
    use statrs::distribution::{ContinuousCDF, Exp};

    use super::*;

    /// The one-sample Kolmogorov–Smirnov statistic of `n` Poisson gaps
    /// at `rate` against the exponential distribution of that rate.
    fn ks_statistic(rate: f64, n: usize, seed: u64) -> f64 {
        let times: Vec<f64> = Schedule::new(Profile::constant(rate), Arrivals::Poisson, seed)
            .take(n + 1)
            .map(|d| d.as_secs_f64())
            .collect();
        let mut gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_by(f64::total_cmp);
        let exp = Exp::new(rate).expect("a positive rate");
        gaps.iter()
            .enumerate()
            .map(|(i, &g)| {
                let f = exp.cdf(g);
                (f - i as f64 / n as f64).max((i + 1) as f64 / n as f64 - f)
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn poisson_gaps_pass_a_kolmogorov_smirnov_test_at_five_percent() {
        let n = 20_000;
        // The asymptotic 5 % critical value of the one-sample KS statistic.
        let critical = 1.358 / (n as f64).sqrt();
        let d = ks_statistic(250.0, n, 1);
        assert!(d < critical, "D = {d}, critical {critical}");
        // Over 20 seeds a true exponential fails about once (5 %); more
        // than 3 failures would happen by chance under 2 % of the time.
        let failures: Vec<u64> = (0..20)
            .filter(|&seed| ks_statistic(1.0, n, seed) >= critical)
            .collect();
        assert!(failures.len() <= 3, "seeds failing at 5 %: {failures:?}");
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced_and_a_ramp_sends_its_integral_per_second() {
        let times: Vec<Duration> = Schedule::new(Profile::constant(4.0), Arrivals::Constant, 0)
            .take(3)
            .collect();
        assert_eq!(times, [0.0, 0.25, 0.5].map(Duration::from_secs_f64));
        let ramp = Profile {
            start: 100.0,
            stages: vec![Stage {
                duration: Duration::from_secs(10),
                target: 1000.0,
            }],
        };
        assert_eq!(ramp.total(), Some(5500.0));
        let mut per_second = [0u32; 10];
        for t in Schedule::new(ramp.clone(), Arrivals::Constant, 0) {
            per_second[t.as_secs() as usize] += 1;
        }
        for (k, &n) in per_second.iter().enumerate() {
            let want = 100.0 + 90.0 * (k as f64 + 0.5);
            assert!(
                (n as f64 - want).abs() <= 1.0,
                "second {k}: {n}, want {want}"
            );
        }
    }

    #[test]
    fn levels_hold_ramp_and_are_reached() {
        let p = Profile {
            start: 1.0,
            stages: vec![
                Stage {
                    duration: Duration::from_secs(10),
                    target: 11.0,
                },
                Stage {
                    duration: Duration::from_secs(5),
                    target: 11.0,
                },
                Stage {
                    duration: Duration::from_secs(5),
                    target: 0.0,
                },
            ],
        };
        assert_eq!(p.level_at(5.0), 6.0);
        assert_eq!(p.level_at(12.0), 11.0);
        assert_eq!(p.level_at(30.0), 0.0);
        assert_eq!(p.first_at_least(6.0, 0.0), Some(5.0));
        assert_eq!(p.first_at_least(1.0, 3.0), Some(3.0));
        assert_eq!(p.first_at_least(12.0, 0.0), None);
        assert_eq!(p.length(), Some(Duration::from_secs(20)));
        assert_eq!(Profile::constant(0.0).time_of(1.0), None);
    }
}
