//! Judging a change metric by metric: which statistics apply to which
//! metric (repetitions, per-request samples, counts), the host check that
//! keeps a busier machine from looking like a regression, and the gate
//! built on them. Pure: rows and samples in, assessments out.

use std::collections::HashMap;

use serde::Serialize;

pub use crate::metrics::judged::{metric, Kind, Metric, DEFAULT_GATED, METRICS};
use crate::metrics::SummaryRow;
use crate::stats::{
    judge, proportion_change, sample_change, smallest_p, Change, Statistic, Threshold, Verdict,
    ALPHA,
};

/// Fewest per-request or per-datagram samples a single run needs for a
/// latency verdict; fewer (a one-request workload) is inconclusive.
pub const MIN_SAMPLES: usize = 20;
/// Fewest requests or datagrams behind a rate (requests/s, throughput) for
/// it to be judged at all: a rate from a tiny workload is mostly start-up.
pub const MIN_RATE_COUNT: u64 = 50;

/// Rows are matched by scenario, variant and workload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Key {
    pub scenario: String,
    pub variant: String,
    pub workload: String,
}

impl Key {
    pub fn of(row: &SummaryRow) -> Key {
        Key {
            scenario: row.scenario.clone(),
            variant: row.variant.clone(),
            workload: row.workload.clone(),
        }
    }

    /// `scenario.variant.workload` (JUnit's classname).
    pub fn dotted(&self) -> String {
        format!("{}.{}.{}", self.scenario, self.variant, self.workload)
    }
}

/// Per-request (HTTP) or per-datagram (UDP RTT) latencies of one run, in ms,
/// by variant and workload (one scenario's sample files).
pub type Samples = HashMap<(String, String), Vec<f64>>;

/// One side of a comparison: the repetitions of one key and, for a single
/// run, its latency samples.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub rows: &'a [SummaryRow],
    pub samples: Option<&'a [f64]>,
}

impl Side<'_> {
    fn values(&self, metric: &str) -> Vec<f64> {
        self.rows.iter().filter_map(|r| r.metric(metric)).collect()
    }
}

/// One metric of one key judged against its reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    pub scenario: String,
    pub variant: String,
    pub workload: String,
    pub metric: String,
    /// The reference's and the compared figure: medians over repetitions.
    pub baseline: f64,
    pub now: f64,
    /// The change with its interval, when the data allowed one.
    pub change: Option<Change>,
    pub verdict: Verdict,
    /// Why this verdict, in words.
    pub reason: String,
    /// A latency judged from per-sample latencies (one run each, or runs
    /// too few to judge by repetition): its interval says nothing of the
    /// noise between runs.
    pub one_run: bool,
    /// The practical threshold the change was held against (relative, as a
    /// fraction; absolute, in the metric's unit): what makes a significant
    /// change `small` rather than `worse` or `better`.
    pub threshold: Threshold,
}

impl Assessment {
    /// Inconclusive for want of data: no change could be computed at all
    /// (as opposed to a change whose interval straddles the threshold, or
    /// one a slower host could explain).
    pub fn unjudged(&self) -> bool {
        self.verdict == Verdict::Inconclusive && self.change.is_none()
    }

    /// The verdict as tables print it: `small` with the threshold it is
    /// inside (`small (< 25%, 0.5)`), the others as they are.
    pub fn verdict_text(&self) -> String {
        match self.verdict {
            Verdict::Small => format!(
                "small (< {}%, {})",
                self.threshold.relative * 100.0,
                self.threshold.absolute
            ),
            v => v.to_string(),
        }
    }

    /// Relative change of the medians, as a fraction (`None` from 0).
    pub fn relative(&self) -> Option<f64> {
        (self.baseline != 0.0).then(|| (self.now - self.baseline) / self.baseline.abs())
    }
}

/// A stable seed per key and metric, so the same files give the same intervals.
fn seed_of(parts: &[&str]) -> u64 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn median(v: &[f64]) -> Option<f64> {
    crate::stats::quantile(v, 0.5)
}

/// The counts behind a proportion metric: (`k`, `n`) summed over the rows.
fn counts(metric: &str, rows: &[SummaryRow]) -> Option<(u64, u64)> {
    let mut k = 0;
    let mut n = 0;
    for r in rows {
        let (a, b) = match metric {
            "loss_percent" => (r.lost?, r.sent?),
            "errors" => (r.errors?, r.requests?),
            "cache_hit_ratio" => (r.cache_hits?, r.received?),
            _ => return None,
        };
        k += a;
        n += b;
    }
    (n > 0).then_some((k, n))
}

/// Judges `metric` of `now` against `base` with the practical threshold
/// `tolerance` (fraction) and the metric's floor. `None` when either side
/// lacks the metric.
pub fn assess(
    key: &Key,
    metric: &Metric,
    base: Side,
    now: Side,
    tolerance: f64,
) -> Option<Assessment> {
    let (bv, nv) = (base.values(metric.name), now.values(metric.name));
    let (b, n) = (median(&bv)?, median(&nv)?);
    let threshold = Threshold {
        relative: tolerance,
        absolute: metric.floor,
    };
    let seed = seed_of(&[&key.scenario, &key.variant, &key.workload, metric.name]);
    let outcome = change_of(metric, base, now, &bv, &nv, seed);
    let from_samples = matches!(outcome, Ok((_, true)));
    let (change, verdict, reason) = match outcome {
        Ok((c, _)) => {
            let (v, why) = judge(&c, metric.direction, threshold);
            (Some(c), v, why)
        }
        Err(why) => (None, Verdict::Inconclusive, why),
    };
    Some(Assessment {
        scenario: key.scenario.clone(),
        variant: key.variant.clone(),
        workload: key.workload.clone(),
        metric: metric.name.to_string(),
        baseline: b,
        now: n,
        change,
        verdict,
        reason,
        one_run: from_samples,
        threshold,
    })
}

/// A gated figure that could not be judged at all, with why.
fn unjudged(key: &Key, metric: &Metric, base: Option<f64>, now: f64, why: String) -> Assessment {
    Assessment {
        scenario: key.scenario.clone(),
        variant: key.variant.clone(),
        workload: key.workload.clone(),
        metric: metric.name.to_string(),
        baseline: base.unwrap_or(f64::NAN),
        now,
        change: None,
        verdict: Verdict::Inconclusive,
        reason: why,
        one_run: false,
        threshold: Threshold {
            relative: 0.0,
            absolute: metric.floor,
        },
    }
}

/// Picks the method: repetition values when there are enough of them to
/// show a change, else what single runs know (per-sample latencies of each
/// side's runs, counts summed over them for proportions); rates of tiny
/// workloads and single aggregates are not enough data. The flag says the
/// change was judged from samples.
fn change_of(
    metric: &Metric,
    base: Side,
    now: Side,
    bv: &[f64],
    nv: &[f64],
    seed: u64,
) -> Result<(Change, bool), String> {
    if matches!(metric.name, "requests_per_s" | "throughput_bps") {
        let tiny = |s: &Side| s.rows.iter().any(|r| r.sent.unwrap_or(0) < MIN_RATE_COUNT);
        if tiny(&base) || tiny(&now) {
            return Err(format!(
                "a rate from fewer than {MIN_RATE_COUNT} requests or datagrams is mostly start-up time"
            ));
        }
    }
    // Repetitions decide when there are enough on both sides to ever be
    // significant (4 and 4); a one-run baseline against five runs is not.
    if (bv.len() > 1 || nv.len() > 1) && smallest_p(bv.len(), nv.len()) < ALPHA {
        return sample_change(bv, nv, Statistic::Median, "repetitions", seed).map(|c| (c, false));
    }
    let runs = if bv.len() <= 1 && nv.len() <= 1 {
        "one run each".to_string()
    } else {
        format!(
            "{} and {} runs (too few to judge by repetition)",
            bv.len(),
            nv.len()
        )
    };
    match metric.kind {
        Kind::Latency(stat) => {
            let (Some(bs), Some(ns)) = (base.samples, now.samples) else {
                return Err(format!(
                    "{runs} and no per-request samples beside a summary; use `repeat` ≥ 4 on both sides"
                ));
            };
            if bs.len() < MIN_SAMPLES || ns.len() < MIN_SAMPLES {
                return Err(format!(
                    "{runs} with {} and {} samples; a latency needs {MIN_SAMPLES} or `repeat` ≥ 4",
                    bs.len(),
                    ns.len()
                ));
            }
            let what = if bv.len() <= 1 && nv.len() <= 1 {
                "samples of one run"
            } else {
                "samples of each side's runs"
            };
            sample_change(bs, ns, stat, what, seed).map(|c| (c, true))
        }
        Kind::Proportion => {
            let (Some(bc), Some(nc)) = (
                counts(metric.name, base.rows),
                counts(metric.name, now.rows),
            ) else {
                return Err("no counts to judge".into());
            };
            let scale = match metric.name {
                "loss_percent" => 100.0,
                // errors: judged as the share of failed requests, in requests per 100.
                "errors" => 100.0,
                _ => 1.0,
            };
            proportion_change(bc, nc, scale)
                .map(|c| (c, false))
                .ok_or_else(|| "no counts to judge".into())
        }
        Kind::Aggregate => Err(format!(
            "{runs}; use `repeat` ≥ 4 on both sides to judge it"
        )),
    }
}

/// A figure in the unit the run summary uses (`52.92 Mbit/s`, `0.885`).
pub fn fmt_metric(metric: &str, v: f64) -> String {
    if v.is_nan() {
        return "(none)".to_string();
    }
    match metric {
        "throughput_bps" => super::summary::rate(Some(v)),
        "requests_per_s" => format!("{v:.1}"),
        "loss_percent" => format!("{v:.2}"),
        "errors" => format!("{v:.0}"),
        _ => format!("{v:.3}"),
    }
}

/// `+161.8% [+150.2, +171.9]`, or an absolute change in the metric's unit
/// when the base is 0; without an interval, the change of the medians alone.
pub fn fmt_change(a: &Assessment) -> String {
    let unit = match a.metric.as_str() {
        "loss_percent" => " pts",
        "errors" => " per 100 req",
        _ => "",
    };
    match &a.change {
        Some(c) => match &c.relative {
            Some(r) => format!(
                "{:+.1}% [{:+.1}, {:+.1}]",
                r.estimate * 100.0,
                r.low * 100.0,
                r.high * 100.0
            ),
            None => format!(
                "{:+.2}{unit} [{:+.2}, {:+.2}]",
                c.absolute.estimate, c.absolute.low, c.absolute.high
            ),
        },
        None => match a.relative() {
            Some(r) => format!("{:+.1}%", r * 100.0),
            None if a.now == a.baseline => "=".to_string(),
            None => format!("{:+.3}", a.now - a.baseline),
        },
    }
}

/// One line for a judged metric: `qos.latency_p50_ms: 0.210 → 2.250,
/// +971.4% [+950.2, +990.1] worse (why)`.
pub fn describe(a: &Assessment) -> String {
    let variant = if a.variant == "default" {
        String::new()
    } else {
        format!(" [{}]", a.variant)
    };
    format!(
        "{}.{}{variant}: {} → {}, {} {} ({})",
        a.workload,
        a.metric,
        fmt_metric(&a.metric, a.baseline),
        fmt_metric(&a.metric, a.now),
        fmt_change(a),
        a.verdict_text(),
        a.reason
    )
}

/// What the gate checks: metrics (all workloads, or `workload.metric`) and
/// the workloads that measure the host rather than the system under test.
/// Recorded in `run.json`, so `netrun merge --baseline` gates the merged
/// rows as the scenario says without its file.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GateConfig {
    /// `(workload, metric)`; a `None` workload means every workload.
    pub metrics: Vec<(Option<String>, String)>,
    /// Control workloads: their latency change says how much the host changed.
    pub controls: Vec<String>,
    /// `--allow-inconclusive`: gated figures that could not be judged do
    /// not fail the gate (they are still listed and counted).
    pub allow_inconclusive: bool,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            metrics: DEFAULT_GATED
                .iter()
                .map(|m| (None, m.to_string()))
                .collect(),
            controls: Vec::new(),
            allow_inconclusive: false,
        }
    }
}

impl GateConfig {
    /// What a scenario gates: its `[gate]`, else the default metrics, with
    /// workloads aimed straight at the origin (no proxy in the path) as the
    /// host's controls.
    pub fn of(s: &crate::scenario::Scenario) -> Self {
        let mut cfg = GateConfig::default();
        if let Some(m) = &s.gate.metrics {
            cfg.metrics.clone_from(m);
        }
        cfg.controls = match &s.gate.control {
            Some(c) => c.clone(),
            None => s
                .variants
                .first()
                .map(|v| {
                    v.plan
                        .workloads
                        .iter()
                        .filter(|w| w.target == crate::scenario::Target::Origin)
                        .map(|w| w.name.clone())
                        .collect()
                })
                .unwrap_or_default(),
        };
        cfg
    }

    pub fn gates(&self, workload: &str, metric: &str) -> bool {
        self.metrics
            .iter()
            .any(|(w, m)| m == metric && w.as_deref().map_or(true, |w| w == workload))
    }
}

/// The outcome of a baseline check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    /// Every gated metric of every key present on both sides.
    pub assessments: Vec<Assessment>,
    /// The host check: control workloads' latency against the baseline's.
    pub host: Vec<Assessment>,
    /// Why worse verdicts were turned inconclusive, when the host itself changed.
    pub host_changed: Option<String>,
    /// Figures that could not be judged do not fail the gate.
    pub allow_inconclusive: bool,
}

impl GateReport {
    pub fn worse(&self) -> impl Iterator<Item = &Assessment> {
        self.assessments
            .iter()
            .filter(|a| a.verdict == Verdict::Worse)
    }

    pub fn inconclusive(&self) -> impl Iterator<Item = &Assessment> {
        self.assessments
            .iter()
            .filter(|a| a.verdict == Verdict::Inconclusive)
    }

    /// The gated figures that could not be judged at all (no data for a
    /// verdict): each fails the gate unless `--allow-inconclusive`.
    pub fn unjudged(&self) -> impl Iterator<Item = &Assessment> {
        self.assessments.iter().filter(|a| a.unjudged())
    }

    /// A figure is worse, or one could not be judged and that was not allowed.
    pub fn failed(&self) -> bool {
        self.worse().next().is_some()
            || (!self.allow_inconclusive && self.unjudged().next().is_some())
    }
}

/// The host counts as slower when a control's median latency rose
/// significantly by more than this (relative, and absolute in ms).
const HOST_THRESHOLD: Threshold = Threshold {
    relative: 0.10,
    absolute: 0.02,
};

/// Groups rows by key, keeping the first-seen order of keys.
pub fn group(rows: &[SummaryRow]) -> Vec<(Key, Vec<SummaryRow>)> {
    let mut out: Vec<(Key, Vec<SummaryRow>)> = Vec::new();
    for r in rows {
        let k = Key::of(r);
        match out.iter_mut().find(|(key, _)| *key == k) {
            Some((_, v)) => v.push(r.clone()),
            None => out.push((k, vec![r.clone()])),
        }
    }
    out
}

fn side<'a>(rows: &'a [SummaryRow], samples: Option<&'a Samples>, key: &Key) -> Side<'a> {
    Side {
        rows,
        samples: samples
            .and_then(|s| s.get(&(key.variant.clone(), key.workload.clone())))
            .map(Vec::as_slice),
    }
}

/// Checks `now` against `baseline`: every gated metric of every key both
/// have, judged with `tolerance`; then, if a control workload shows the host
/// itself slower, `worse` verdicts become `inconclusive` (never a failure).
pub fn gate(
    baseline: &[SummaryRow],
    now: &[SummaryRow],
    samples: (Option<&Samples>, Option<&Samples>),
    config: &GateConfig,
    tolerance: f64,
) -> GateReport {
    let now: Vec<SummaryRow> = now.iter().filter(|r| !r.interrupted).cloned().collect();
    let base_groups = group(baseline);
    let mut assessments = Vec::new();
    let mut host = Vec::new();
    for (key, rows) in group(&now) {
        let gated = METRICS
            .iter()
            .filter(|m| config.gates(&key.workload, m.name));
        let Some((_, brows)) = base_groups.iter().find(|(k, _)| *k == key) else {
            // A gated figure without a baseline row is never passed over in silence.
            if !config.controls.contains(&key.workload) {
                let n = Side {
                    rows: &rows,
                    samples: None,
                };
                for metric in gated {
                    if let Some(v) = median(&n.values(metric.name)) {
                        let why = format!("the baseline has no row for `{}`", key.dotted());
                        assessments.push(unjudged(&key, metric, None, v, why));
                    }
                }
            }
            continue;
        };
        let b = side(brows, samples.0, &key);
        let n = side(&rows, samples.1, &key);
        if config.controls.contains(&key.workload) {
            let control = Metric {
                floor: HOST_THRESHOLD.absolute,
                ..METRICS[1]
            };
            if let Some(a) = assess(&key, &control, b, n, HOST_THRESHOLD.relative) {
                host.push(a);
            }
            continue;
        }
        for metric in gated {
            match assess(&key, metric, b, n, tolerance) {
                Some(a) => assessments.push(a),
                // Measured now, but the baseline's column is empty.
                None => {
                    if let Some(v) = median(&n.values(metric.name)) {
                        let why = "the baseline's row has no value for it".to_string();
                        assessments.push(unjudged(&key, metric, None, v, why));
                    }
                }
            }
        }
    }
    // One run each: the samples' interval misses the noise between runs,
    // which only a control measured in the same runs can stand in for.
    let noise = HostSlowdown::of(&host.iter().collect::<Vec<_>>());
    for a in assessments
        .iter_mut()
        .filter(|a| a.verdict == Verdict::Worse && a.one_run)
    {
        if host.is_empty() {
            a.verdict = Verdict::Inconclusive;
            a.reason = "worse within one run, but with one run each and no host control the noise \
                        between runs is unknown; use `repeat` ≥ 4 or a `target = \"origin\"` control"
                .to_string();
        } else if noise.explains(a, tolerance) {
            a.verdict = Verdict::Inconclusive;
            a.reason = "worse within one run, but not beyond what the control's change \
                        (run-to-run noise) could explain"
                .to_string();
        }
    }
    let slower = host_slower(&host);
    let host_changed = (!slower.is_empty()).then(|| {
        slower
            .iter()
            .map(|a| {
                format!(
                    "control {}.{} {:.3} → {:.3} ms",
                    a.workload, a.metric, a.baseline, a.now
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    });
    if let Some(why) = &host_changed {
        let slowdown = HostSlowdown::of(&slower);
        for a in assessments
            .iter_mut()
            .filter(|a| a.verdict == Verdict::Worse)
        {
            if slowdown.explains(a, tolerance) {
                a.verdict = Verdict::Inconclusive;
                a.reason = format!(
                    "worse, but the host itself was slower ({why}), which could explain it"
                );
            }
        }
    }
    GateReport {
        assessments,
        host,
        host_changed,
        allow_inconclusive: config.allow_inconclusive,
    }
}

/// How much slower the host got, at most (the upper ends of the slower
/// controls' intervals): relative and in ms.
#[derive(Debug, Clone, Copy, Default)]
struct HostSlowdown {
    relative: f64,
    absolute: f64,
}

/// A path through the proxy crosses the host's scheduler about twice as
/// often as a direct one, so a host slowdown is assumed to hit it this many
/// times as hard.
const HOST_AMPLIFICATION: f64 = 2.0;

impl HostSlowdown {
    fn of(slower: &[&Assessment]) -> HostSlowdown {
        let mut h = HostSlowdown::default();
        for c in slower.iter().filter_map(|a| a.change.as_ref()) {
            h.absolute = h.absolute.max(c.absolute.high);
            h.relative = h.relative.max(c.relative.map_or(0.0, |r| r.high));
        }
        h
    }

    /// Whether a `worse` verdict could be the host's doing: a latency or
    /// rate whose change, at its lower bound, is not clearly beyond what the
    /// slowdown (amplified) plus the tolerance account for. Counts (loss,
    /// errors, hit ratio) are not the host's doing.
    fn explains(&self, a: &Assessment, tolerance: f64) -> bool {
        let Some(m) = metric(&a.metric) else {
            return true;
        };
        if m.kind == Kind::Proportion {
            return false;
        }
        let Some(c) = &a.change else {
            return true;
        };
        let orient = |i: &crate::stats::Interval| match m.direction {
            crate::stats::Direction::LowerIsBetter => i.low,
            crate::stats::Direction::HigherIsBetter => -i.high,
        };
        let beyond_abs = orient(&c.absolute) > m.floor + HOST_AMPLIFICATION * self.absolute;
        let beyond_rel = c.relative.as_ref().map_or(true, |r| {
            orient(r) > (1.0 + HOST_AMPLIFICATION * self.relative) * (1.0 + tolerance) - 1.0
        });
        !(beyond_abs && beyond_rel)
    }
}

/// The controls whose latency rose significantly (interval clear of zero)
/// by more than [`HOST_THRESHOLD`] in its estimate.
fn host_slower(host: &[Assessment]) -> Vec<&Assessment> {
    host.iter()
        .filter(|a| {
            let Some(c) = &a.change else { return false };
            let significant =
                c.absolute.low > 0.0 && c.p_value.map_or(true, |p| p < crate::stats::ALPHA);
            significant
                && c.absolute.estimate > HOST_THRESHOLD.absolute
                && c.relative
                    .map_or(true, |r| r.estimate > HOST_THRESHOLD.relative)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: &str, rep: u32, p50: f64) -> SummaryRow {
        SummaryRow {
            scenario: "s".into(),
            variant: "default".into(),
            workload: workload.into(),
            repetition: rep,
            latency_p50_ms: Some(p50),
            latency_p90_ms: Some(p50 * 1.5),
            sent: Some(1000),
            lost: Some(0),
            loss_percent: Some(0.0),
            ..Default::default()
        }
    }

    fn reps(workload: &str, values: &[f64]) -> Vec<SummaryRow> {
        (1..)
            .zip(values)
            .map(|(i, &v)| row(workload, i, v))
            .collect()
    }

    #[test]
    fn a_real_slowdown_fails_and_noise_does_not() {
        let base = reps("udp", &[0.20, 0.22, 0.21, 0.19, 0.20]);
        let noisy = reps("udp", &[0.25, 0.18, 0.23, 0.21, 0.40]);
        let slow = reps("udp", &[2.2, 2.3, 2.25, 2.4, 2.21]);
        let cfg = GateConfig::default();
        let r = gate(&base, &noisy, (None, None), &cfg, 0.25);
        assert!(!r.failed(), "{r:#?}");
        let r = gate(&base, &slow, (None, None), &cfg, 0.25);
        let worse: Vec<&str> = r.worse().map(|a| a.metric.as_str()).collect();
        assert_eq!(worse, ["latency_p50_ms", "latency_p90_ms"]);
        let loss = r
            .assessments
            .iter()
            .find(|a| a.metric == "loss_percent")
            .unwrap();
        assert_eq!(loss.verdict, Verdict::Same);
    }

    #[test]
    fn a_slower_host_makes_worse_inconclusive() {
        let mut base = reps("udp", &[0.20, 0.22, 0.21, 0.19, 0.20]);
        base.extend(reps("direct", &[0.10, 0.11, 0.10, 0.09, 0.10]));
        let mut now = reps("udp", &[2.2, 2.3, 2.25, 2.4, 2.21]);
        now.extend(reps("direct", &[1.1, 1.3, 0.9, 1.2, 1.0]));
        let cfg = GateConfig {
            controls: vec!["direct".into()],
            ..GateConfig::default()
        };
        let r = gate(&base, &now, (None, None), &cfg, 0.25);
        assert!(!r.failed(), "{r:#?}");
        assert!(r.host_changed.as_deref().unwrap().contains("direct"));
        assert_eq!(r.inconclusive().count(), 2);
        assert!(
            r.assessments.iter().all(|a| a.workload == "udp"),
            "controls are not gated"
        );
    }

    #[test]
    fn single_runs_use_samples_and_counts() {
        let base = vec![row("page", 1, 0.3)];
        let now = vec![row("page", 1, 2.3)];
        // No samples: latency cannot be judged, which fails the gate
        // unless the user allows it.
        let r = gate(&base, &now, (None, None), &GateConfig::default(), 0.25);
        assert!(r.failed(), "an unjudged figure fails: {r:#?}");
        let p50 = r
            .assessments
            .iter()
            .find(|a| a.metric == "latency_p50_ms")
            .unwrap();
        assert!(p50.unjudged(), "{p50:#?}");
        let allow = GateConfig {
            allow_inconclusive: true,
            ..GateConfig::default()
        };
        assert!(!gate(&base, &now, (None, None), &allow, 0.25).failed());
        // With samples: 100 requests each, 2 ms apart.
        let key = ("default".to_string(), "page".to_string());
        let bs: Samples = [(
            key.clone(),
            (0..100).map(|i| 0.3 + f64::from(i % 7) * 0.01).collect(),
        )]
        .into();
        let ns: Samples = [(
            key,
            (0..100).map(|i| 2.3 + f64::from(i % 7) * 0.01).collect(),
        )]
        .into();
        let r = gate(
            &base,
            &now,
            (Some(&bs), Some(&ns)),
            &GateConfig::default(),
            0.25,
        );
        assert!(!r.failed(), "no control: run-to-run noise unknown, {r:#?}");
        assert!(r
            .assessments
            .iter()
            .any(|a| a.reason.contains("no host control")));
        // A steady control measured in the same runs: now it counts.
        let (mut base, mut now, mut bs, mut ns) = (base, now, bs, ns);
        base.push(row("direct", 1, 0.1));
        now.push(row("direct", 1, 0.1));
        let steady: Vec<f64> = (0..100).map(|i| 0.1 + f64::from(i % 5) * 0.001).collect();
        let control = ("default".to_string(), "direct".to_string());
        bs.insert(control.clone(), steady.clone());
        ns.insert(control, steady);
        let cfg = GateConfig {
            controls: vec!["direct".into()],
            ..GateConfig::default()
        };
        let r = gate(&base, &now, (Some(&bs), Some(&ns)), &cfg, 0.25);
        assert!(r.worse().any(|a| a.metric == "latency_p50_ms"), "{r:#?}");
        // A one-request workload: never worse; not judged, which fails
        // only when not allowed.
        let one: Samples = [(("default".to_string(), "page".to_string()), vec![9.0])].into();
        let r = gate(&base, &now, (Some(&bs), Some(&one)), &allow, 0.25);
        assert!(!r.failed());
        assert_eq!(r.worse().count(), 0);
        assert!(r.unjudged().any(|a| a.metric == "latency_p50_ms"));
    }

    /// A one-repetition baseline against five runs: repetitions cannot
    /// decide (1 and 5 can never be significant), so latency is judged from
    /// the samples of each side's runs and counts from their sums. A clear
    /// regression fails instead of passing as `inconclusive`.
    #[test]
    fn a_one_run_baseline_still_catches_a_clear_regression() {
        let mut base = vec![row("udp", 1, 0.084), row("direct", 1, 0.08)];
        base[0].cache_hits = Some(98);
        base[0].received = Some(100);
        base[0].cache_hit_ratio = Some(0.98);
        let mut now = reps("udp", &[2.2, 2.21, 2.19, 2.2, 2.22]);
        now.extend(reps("direct", &[0.08, 0.081, 0.079, 0.08, 0.08]));
        for r in now.iter_mut().filter(|r| r.workload == "udp") {
            r.cache_hits = Some(0);
            r.received = Some(100);
            r.cache_hit_ratio = Some(0.0);
        }
        let samples = |udp: f64| -> Samples {
            [
                (
                    ("default".to_string(), "udp".to_string()),
                    (0..200).map(|i| udp + f64::from(i % 9) * 0.002).collect(),
                ),
                (
                    ("default".to_string(), "direct".to_string()),
                    (0..200).map(|i| 0.08 + f64::from(i % 9) * 0.002).collect(),
                ),
            ]
            .into()
        };
        let (bs, ns) = (samples(0.084), samples(2.2));
        let cfg = GateConfig {
            metrics: ["latency_p50_ms", "latency_p90_ms", "cache_hit_ratio"]
                .iter()
                .map(|m| (None, m.to_string()))
                .collect(),
            controls: vec!["direct".into()],
            allow_inconclusive: false,
        };
        let r = gate(&base, &now, (Some(&bs), Some(&ns)), &cfg, 0.25);
        let worse: Vec<&str> = r.worse().map(|a| a.metric.as_str()).collect();
        assert_eq!(
            worse,
            ["latency_p50_ms", "latency_p90_ms", "cache_hit_ratio"],
            "{r:#?}"
        );
        assert!(r.failed());
    }

    /// A gated workload without a baseline row (renamed `http` → `web`) is
    /// a figure that could not be judged, never left out in silence.
    #[test]
    fn a_gated_figure_without_a_baseline_row_is_not_judged() {
        let base = vec![row("http", 1, 0.3)];
        let now = vec![row("web", 1, 0.3)];
        let r = gate(&base, &now, (None, None), &GateConfig::default(), 0.25);
        assert!(r.failed());
        let a = r.unjudged().next().unwrap();
        assert_eq!(a.workload, "web");
        assert!(
            a.reason.contains("no row for `s.default.web`"),
            "{}",
            a.reason
        );
    }

    #[test]
    fn tiny_workloads_rates_are_inconclusive() {
        let mut b = row("page", 1, 1.0);
        b.sent = Some(1);
        b.requests_per_s = Some(800.0);
        let mut n = b.clone();
        n.requests_per_s = Some(200.0);
        let key = Key::of(&b);
        let a = assess(
            &key,
            metric("requests_per_s").unwrap(),
            Side {
                rows: &[b],
                samples: None,
            },
            Side {
                rows: &[n],
                samples: None,
            },
            0.25,
        )
        .unwrap();
        assert_eq!(a.verdict, Verdict::Inconclusive);
        assert!(a.reason.contains("start-up"), "{}", a.reason);
    }

    #[test]
    fn gate_config_narrows_by_workload() {
        let cfg = GateConfig {
            metrics: vec![
                (Some("a".into()), "latency_p50_ms".into()),
                (None, "errors".into()),
            ],
            controls: vec![],
            allow_inconclusive: false,
        };
        assert!(cfg.gates("a", "latency_p50_ms"));
        assert!(!cfg.gates("b", "latency_p50_ms"));
        assert!(cfg.gates("b", "errors"));
    }
}
