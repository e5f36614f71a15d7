//! The headline charts when several series ran a workload: one dot per
//! series for each figure people compare, with its interval when repeated.

use super::charts::{self, Dot};
use super::data::StatRow;
use super::figure;
use super::model::{Key, Model, WorkloadId};

/// The figures people compare, per kind: CSV name, chart title, axis text.
pub(super) fn headline_metrics(
    kind: &str,
) -> &'static [(&'static str, &'static str, &'static str)] {
    match kind {
        "udp" => &[
            ("latency_p50_ms", "median RTT", "ms"),
            ("latency_p99_ms", "99th percentile RTT", "ms"),
            ("jitter_ms", "jitter (RFC 3550)", "ms"),
            ("loss_percent", "loss", "%"),
        ],
        _ => &[
            ("latency_p50_ms", "median latency", "ms"),
            ("latency_p99_ms", "99th percentile latency", "ms"),
            ("requests_per_s", "requests per second", "req/s"),
            ("throughput_bps", "throughput", "Mbit/s"),
            ("cache_hit_ratio", "cache hit ratio", "hits / responses"),
            ("errors", "errors", "requests"),
        ],
    }
}

/// A series' value of a headline metric, its 95 % interval when known, and
/// how many values it stands for.
type Headline = (f64, Option<(f64, f64)>, usize);

/// A value of a series and its interval: from the stats file when the
/// repetitions wrote one, else the mean of its summary rows.
pub(super) fn headline_value(
    model: &Model,
    k: &Key,
    w: &WorkloadId,
    metric: &str,
) -> Option<Headline> {
    let run = &model.runs[k.run];
    let stat: Option<&StatRow> = run
        .stats
        .iter()
        .find(|s| s.variant == k.variant && s.workload == w.name && s.metric == metric);
    if let Some(s) = stat {
        let value = s.mean.or(s.median)?;
        let ci = s.ci_low.zip(s.ci_high);
        return Some((value, ci, s.n.unwrap_or(0) as usize));
    }
    let values: Vec<f64> = run
        .rows
        .iter()
        .filter(|r| r.variant == k.variant && r.workload == w.name && r.scenario == w.scenario)
        .filter_map(|r| r.metric(metric))
        .collect();
    if values.is_empty() {
        return None;
    }
    Some((
        values.iter().sum::<f64>() / values.len() as f64,
        None,
        values.len(),
    ))
}

/// Per headline metric, one dot per series (with its CI when repeated).
pub(super) fn headline_charts(
    o: &mut String,
    model: &Model,
    w: &WorkloadId,
    keys: &[&Key],
) -> anyhow::Result<()> {
    for &(metric, title, unit) in headline_metrics(&w.kind) {
        let scale = if metric == "throughput_bps" { 1e6 } else { 1.0 };
        let mut dots = Vec::new();
        let mut shown = Vec::new();
        for k in keys {
            let Some((v, ci, n)) = headline_value(model, k, w, metric) else {
                continue;
            };
            dots.push(Dot {
                label: k.label.clone(),
                style: k.style,
                value: v / scale,
                ci: ci.map(|(a, b)| (a / scale, b / scale)),
            });
            let text = match ci {
                Some((a, b)) => format!(
                    "{} [{}, {}] (95% CI, n = {n})",
                    charts::number(v / scale),
                    charts::number(a / scale),
                    charts::number(b / scale)
                ),
                None if n > 1 => format!("{} (mean of {n})", charts::number(v / scale)),
                None => charts::number(v / scale),
            };
            shown.push((*k, text));
        }
        if dots.len() < 2 {
            continue;
        }
        let svg = charts::dots(&format!("{}: {title}", w.name), unit, &dots)?;
        figure(o, &format!("metric-{metric}"), w, &shown, &svg);
    }
    Ok(())
}
