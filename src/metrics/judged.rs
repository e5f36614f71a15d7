//! The metrics that comparisons judge: which way each one improves, the
//! smallest change that matters (its floor), how its uncertainty is known,
//! and which ones a baseline gate checks by default.

use crate::stats::{Direction, Statistic};

/// How a metric's uncertainty is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A latency statistic: with one run, the per-request/per-datagram
    /// samples give its interval.
    Latency(Statistic),
    /// `k` of `n` (loss, errors, hits): binomial intervals with one run.
    Proportion,
    /// A rate or an aggregate (throughput, jitter): only repetitions tell
    /// its spread.
    Aggregate,
}

/// A metric that comparisons show and gates can check.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub direction: Direction,
    /// Changes smaller than this (in the metric's unit) are never a regression.
    pub floor: f64,
    pub kind: Kind,
}

const fn m(name: &'static str, direction: Direction, floor: f64, kind: Kind) -> Metric {
    Metric {
        name,
        direction,
        floor,
        kind,
    }
}

use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};

/// The figures people compare, in display order.
pub const METRICS: &[Metric] = &[
    m("loss_percent", Lower, 1.0, Kind::Proportion),
    m(
        "latency_p50_ms",
        Lower,
        0.5,
        Kind::Latency(Statistic::Median),
    ),
    m(
        "latency_p90_ms",
        Lower,
        0.5,
        Kind::Latency(Statistic::Quantile(0.9)),
    ),
    m(
        "latency_p99_ms",
        Lower,
        1.0,
        Kind::Latency(Statistic::Quantile(0.99)),
    ),
    m("jitter_ms", Lower, 0.5, Kind::Aggregate),
    m("ipdv_mean_ms", Lower, 0.5, Kind::Aggregate),
    m("throughput_bps", Higher, 0.0, Kind::Aggregate),
    m("requests_per_s", Higher, 0.0, Kind::Aggregate),
    m("errors", Lower, 1.0, Kind::Proportion),
    m("cache_hit_ratio", Higher, 0.05, Kind::Proportion),
    m("byte_hit_ratio", Higher, 0.05, Kind::Aggregate),
    // What reached the origin: what a far origin makes expensive. Shown,
    // not gated by default (coalescing races make 1 fetch or 2).
    m("proxy_upstream_fetches", Lower, 5.0, Kind::Aggregate),
];

/// Metrics a baseline gate checks unless the scenario's `[gate]` says
/// otherwise: what a code change moves and a busier host does not fake
/// (tails, jitter and rates are shown but too host-bound to fail a build on).
pub const DEFAULT_GATED: &[&str] = &[
    "latency_p50_ms",
    "latency_p90_ms",
    "loss_percent",
    "errors",
    "cache_hit_ratio",
];

pub fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}
