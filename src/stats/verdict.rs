//! Verdicts: is a metric `better`, `worse`, `same`, `small` or
//! `inconclusive` against its baseline? A change counts only when it is
//! statistically significant *and* its whole confidence interval lies
//! beyond the practical threshold (a relative tolerance and an absolute
//! floor), so noise never fails a gate. `same` means no evidence of a
//! change; a real (significant) change inside the threshold is `small`.

use std::fmt;

use super::bootstrap::{bootstrap_change, Statistic};
use super::interval::{newcombe_difference, Interval};
use super::mann_whitney::{mann_whitney, smallest_p};
use super::{ALPHA, LEVEL};

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Latency, jitter, loss, errors.
    LowerIsBetter,
    /// Throughput, requests per second, hit ratio.
    HigherIsBetter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Better,
    Worse,
    /// No evidence of a change: not significant.
    Same,
    /// A significant change whose estimate is inside the practical
    /// threshold: real, but smaller than what the gate was told matters.
    Small,
    /// Not enough data, or a change whose interval straddles the threshold,
    /// or a host that itself changed.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Same => "same",
            Verdict::Small => "small",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The practical threshold: a change must exceed both to count.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Threshold {
    /// Relative, as a fraction (0.25 = 25 %); ignored when the base is 0.
    pub relative: f64,
    /// Absolute, in the metric's unit.
    pub absolute: f64,
}

/// A measured change from a baseline, with its uncertainty.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    /// The statistic of the baseline and of now (e.g. the median of repetitions).
    pub base: f64,
    pub now: f64,
    /// `now − base`, in the metric's unit, with its interval.
    pub absolute: Interval,
    /// `(now − base) / |base|` as a fraction; `None` when the base is 0.
    pub relative: Option<Interval>,
    /// Two-sided p-value of the test; `None` when significance is read off
    /// the interval alone (proportions).
    pub p_value: Option<f64>,
    /// How the interval and the test were made, for reports.
    pub method: String,
}

/// The change of `stat` between two sets of values (repetitions, or the
/// per-request samples of one run): a Mann–Whitney U test for significance
/// and a seeded bootstrap for the intervals. `Err` says why there is not
/// enough data for a verdict.
pub fn sample_change(
    base: &[f64],
    now: &[f64],
    stat: Statistic,
    what: &str,
    seed: u64,
) -> Result<Change, String> {
    let (n1, n2) = (base.len(), now.len());
    if smallest_p(n1, n2) >= ALPHA {
        return Err(format!(
            "{n1} and {n2} {what} can never show a significant change; at least 4 of each are needed"
        ));
    }
    let test = mann_whitney(now, base).ok_or("no values")?;
    let (absolute, relative) = bootstrap_change(base, now, stat, LEVEL, seed).ok_or("no values")?;
    let stat_name = match stat {
        Statistic::Median => "median".to_string(),
        Statistic::Mean => "mean".to_string(),
        Statistic::Quantile(q) => format!("p{}", (q * 100.0).round()),
    };
    Ok(Change {
        base: stat.of(&mut base.to_vec()),
        now: stat.of(&mut now.to_vec()),
        absolute,
        relative,
        p_value: Some(test.p_value),
        method: format!(
            "Mann-Whitney U over {n1} and {n2} {what}, bootstrap 95% interval of the {stat_name}"
        ),
    })
}

/// The change of a proportion (`k` of `n`: lost datagrams, failed requests,
/// cache hits), scaled by `scale` (100 for a percentage): Newcombe's
/// interval of the difference; significant when it excludes 0.
pub fn proportion_change(
    (k_base, n_base): (u64, u64),
    (k_now, n_now): (u64, u64),
    scale: f64,
) -> Option<Change> {
    let d = newcombe_difference(k_base, n_base, k_now, n_now, LEVEL)?;
    let base = k_base as f64 / n_base as f64 * scale;
    let now = k_now as f64 / n_now as f64 * scale;
    // A proportion stays within 0 and 1, so its change stays within what
    // the base leaves room for.
    let absolute = Interval {
        estimate: d.estimate * scale,
        low: (d.low * scale).max(-base),
        high: (d.high * scale).min(scale - base),
    };
    let relative = (base != 0.0).then(|| Interval {
        estimate: absolute.estimate / base,
        low: absolute.low / base,
        high: absolute.high / base,
    });
    Some(Change {
        base,
        now,
        absolute,
        relative,
        p_value: None,
        method: format!("Newcombe 95% interval of {k_base}/{n_base} against {k_now}/{n_now}"),
    })
}

/// Judges a change: `worse` (or `better`) only when it is significant and
/// its whole interval is beyond the threshold in that direction; `same`
/// when it is not significant; `small` when it is significant but its
/// estimate is within the threshold;
/// `inconclusive` when it is significant but the interval reaches back
/// inside the threshold. The reason says which.
pub fn judge(change: &Change, direction: Direction, threshold: Threshold) -> (Verdict, String) {
    // Orient so that positive means worse.
    let orient = |i: &Interval| match direction {
        Direction::LowerIsBetter => (i.estimate, i.low, i.high),
        Direction::HigherIsBetter => (-i.estimate, -i.high, -i.low),
    };
    let (a_est, a_lo, a_hi) = orient(&change.absolute);
    let rel = change.relative.as_ref().map(orient);
    let excludes_zero = a_lo > 0.0 || a_hi < 0.0;
    let significant = excludes_zero && change.p_value.map_or(true, |p| p < ALPHA);
    let p = change
        .p_value
        .map_or(String::new(), |p| format!(", p = {}", fmt_p(p)));
    if !significant {
        let why = if excludes_zero {
            format!("not significant{p}")
        } else {
            format!("the interval includes no change{p}")
        };
        return (Verdict::Same, why);
    }
    let beyond = |abs: f64, rel: Option<f64>| {
        abs > threshold.absolute && rel.map_or(true, |r| r > threshold.relative)
    };
    if beyond(a_lo, rel.map(|r| r.1)) {
        return (Verdict::Worse, beyond_reason(threshold, &p));
    }
    if beyond(-a_hi, rel.map(|r| -r.2)) {
        return (Verdict::Better, beyond_reason(threshold, &p));
    }
    if !beyond(a_est.abs(), rel.map(|r| r.0.abs())) {
        return (
            Verdict::Small,
            format!(
                "significant{p}, but smaller than the tolerance ({})",
                fmt_threshold(threshold)
            ),
        );
    }
    (
        Verdict::Inconclusive,
        format!(
            "significant{p}, but the interval reaches inside the tolerance ({})",
            fmt_threshold(threshold)
        ),
    )
}

fn beyond_reason(threshold: Threshold, p: &str) -> String {
    format!(
        "the whole 95% interval is past the tolerance ({}){p}",
        fmt_threshold(threshold)
    )
}

fn fmt_threshold(t: Threshold) -> String {
    format!("{}% and {}", t.relative * 100.0, t.absolute)
}

fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".to_string()
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: Threshold = Threshold {
        relative: 0.25,
        absolute: 0.5,
    };

    #[test]
    fn a_clear_doubling_is_worse_and_its_mirror_better() {
        let base = [1.0, 1.1, 0.9, 1.05, 0.95];
        let now = [3.0, 3.2, 2.8, 3.1, 2.9];
        let c = sample_change(&base, &now, Statistic::Median, "repetitions", 1).unwrap();
        assert_eq!(c.p_value, Some(2.0 / 252.0));
        assert_eq!(judge(&c, Direction::LowerIsBetter, TOL).0, Verdict::Worse);
        assert_eq!(judge(&c, Direction::HigherIsBetter, TOL).0, Verdict::Better);
    }

    #[test]
    fn noise_and_small_changes_are_same() {
        let base = [1.0, 1.4, 0.9, 1.2, 0.8];
        let now = [1.1, 0.9, 1.3, 1.0, 1.2];
        let c = sample_change(&base, &now, Statistic::Median, "repetitions", 1).unwrap();
        assert_eq!(judge(&c, Direction::LowerIsBetter, TOL).0, Verdict::Same);
        // Significant but only +10 %: below a 25 % tolerance.
        let now = [1.1, 1.11, 1.12, 1.13, 1.14];
        let base = [1.0, 1.01, 1.02, 1.03, 1.04];
        let c = sample_change(&base, &now, Statistic::Median, "repetitions", 1).unwrap();
        let small = Threshold {
            relative: 0.25,
            absolute: 0.0,
        };
        let (v, why) = judge(&c, Direction::LowerIsBetter, small);
        assert_eq!(
            v,
            Verdict::Small,
            "a real change inside the tolerance: {why}"
        );
        assert!(
            why.contains("25% and 0"),
            "the threshold that decided it: {why}"
        );
    }

    #[test]
    fn too_few_values_are_inconclusive_by_construction() {
        let e = sample_change(&[1.0], &[9.0], Statistic::Median, "repetitions", 1).unwrap_err();
        assert!(e.contains("at least 4"), "{e}");
        assert!(sample_change(&[1.0; 3], &[9.0; 3], Statistic::Median, "runs", 1).is_err());
    }

    #[test]
    fn straddling_the_tolerance_is_inconclusive() {
        let c = Change {
            base: 1.0,
            now: 1.4,
            absolute: Interval {
                estimate: 0.4,
                low: 0.1,
                high: 0.8,
            },
            relative: Some(Interval {
                estimate: 0.4,
                low: 0.1,
                high: 0.8,
            }),
            p_value: Some(0.01),
            method: String::new(),
        };
        let t = Threshold {
            relative: 0.25,
            absolute: 0.0,
        };
        assert_eq!(
            judge(&c, Direction::LowerIsBetter, t).0,
            Verdict::Inconclusive
        );
    }

    #[test]
    fn proportions_use_newcombe() {
        // 0 of 1000 lost, then 50 of 1000: +5 points, clearly worse.
        let c = proportion_change((0, 1000), (50, 1000), 100.0).unwrap();
        assert!((c.now - 5.0).abs() < 1e-12);
        assert!(c.relative.is_none());
        let floor = Threshold {
            relative: 0.25,
            absolute: 1.0,
        };
        assert_eq!(judge(&c, Direction::LowerIsBetter, floor).0, Verdict::Worse);
        // 0 of 20, then 1 of 20: could be chance.
        let c = proportion_change((0, 20), (1, 20), 100.0).unwrap();
        assert_eq!(judge(&c, Direction::LowerIsBetter, floor).0, Verdict::Same);
        assert!(proportion_change((0, 0), (1, 20), 100.0).is_none());
    }
}
