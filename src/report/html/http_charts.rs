//! The charts of an HTTP workload: the latency CDF with a stretched tail,
//! responses per second over time, the status and cache mix.

use std::fmt::Write;

use super::charts::{self, Corner, Draw, Scale, Series, Stack, XyChart};
use super::data::HttpSamples;
use super::model::{http_of, Key, Model, WorkloadId};
use super::page::escape;
use super::{
    figure, figure_with, keyed, ms_axis, series, spread_scale, time_unit, Found, CDF_POINTS, SLICES,
};

/// The latency CDF with a log-scaled tail, requests/s over time, the status
/// and cache mix.
pub(super) fn http_charts(
    o: &mut String,
    model: &Model,
    w: &WorkloadId,
    keys: &[&Key],
) -> anyhow::Result<bool> {
    let found: Found<HttpSamples> = keys
        .iter()
        .filter_map(|k| http_of(&model.runs[k.run], k, w).map(|s| (*k, s)))
        .collect();
    if found.is_empty() {
        return Ok(false);
    }
    latency_cdf(o, w, &found)?;
    response_rates(o, w, &found)?;
    hit_ratio_over_time(o, w, &found)?;
    mixes(o, w, &found)?;
    Ok(true)
}

/// Latency of every response, percentiles on a stretched tail (90, 99, 99.9 %).
pub(super) fn latency_cdf(
    o: &mut String,
    w: &WorkloadId,
    found: &Found<HttpSamples>,
) -> anyhow::Result<()> {
    let sorted: Vec<Vec<f64>> = found
        .iter()
        .map(|(_, s)| {
            series::sorted(
                s.samples
                    .iter()
                    .filter(|x| x.status.is_some())
                    .map(|x| x.latency_ms),
            )
        })
        .collect();
    let refs: Vec<&Vec<f64>> = sorted.iter().collect();
    let x_scale = spread_scale(&refs);
    let chart = XyChart {
        title: format!("{}: latency distribution, tail stretched", w.name),
        x_desc: ms_axis("latency", x_scale),
        y_desc: "requests ≤ latency (percentile)".into(),
        x_scale,
        y_scale: Scale::Tail,
        y_from_zero: true,
        series: found
            .iter()
            .zip(&sorted)
            .map(|((k, _), v)| {
                // Hazen positions ((i − ½)/n) keep the largest sample on the tail scale.
                let half = 0.5 / v.len().max(1) as f64;
                Series {
                    label: k.label.clone(),
                    style: k.style,
                    draw: Draw::Line,
                    points: series::cdf_points(v, CDF_POINTS)
                        .into_iter()
                        .map(|(x, f)| (x, f - half))
                        .collect(),
                }
            })
            .collect(),
        marks: Vec::new(),
        legend: Corner::UpperLeft,
    };
    let notes: Vec<String> = sorted
        .iter()
        .map(|v| {
            let q = |p| series::quantile(v, p);
            match (q(0.5), q(0.99), q(0.999)) {
                (Some(a), Some(b), Some(c)) => format!(
                    "p50 {a:.3} ms, p99 {b:.3} ms, p99.9 {c:.3} ms ({} responses)",
                    v.len()
                ),
                _ => "no responses".into(),
            }
        })
        .collect();
    figure(
        o,
        "latency-cdf",
        w,
        &keyed(found, &notes),
        &charts::xy(&chart)?,
    );
    Ok(())
}

/// Responses completed per second over the workload's time (files from
/// before `start_offset_ms` existed have no times: no chart).
pub(super) fn response_rates(
    o: &mut String,
    w: &WorkloadId,
    found: &Found<HttpSamples>,
) -> anyhow::Result<()> {
    let rates: Vec<Vec<(f64, f64)>> = found
        .iter()
        .map(|(_, s)| series::completions_per_second(&s.samples, SLICES, s.weight()))
        .collect();
    let notes: Vec<String> = found
        .iter()
        .map(|(_, s)| match s.weight() {
            1 => format!("{} requests in {SLICES} slices", s.requests()),
            k => format!(
                "{} requests in {SLICES} slices (drawn from every {k}th)",
                s.requests()
            ),
        })
        .collect();
    let axis = OverTime {
        id: "rate-time",
        what: "responses per second over time",
        y_desc: "responses/s",
        legend: Corner::LowerRight,
    };
    over_time(o, w, found, &axis, &rates, &notes)
}

/// The cache hit ratio over the workload's time: the warm-up, then the
/// steady state a cache size and policy reach. Only with a cache on the path.
pub(super) fn hit_ratio_over_time(
    o: &mut String,
    w: &WorkloadId,
    found: &Found<HttpSamples>,
) -> anyhow::Result<()> {
    let ratios: Vec<Vec<(f64, f64)>> = found
        .iter()
        .map(|(_, s)| series::hit_ratio_over_time(&s.samples, SLICES))
        .collect();
    let notes: Vec<String> = ratios
        .iter()
        .map(|r| match (r.first(), r.last()) {
            (Some(a), Some(b)) => format!("first slice {:.3}, last slice {:.3}", a.1, b.1),
            _ => "no marked responses".into(),
        })
        .collect();
    let axis = OverTime {
        id: "hit-ratio-time",
        what: "cache hit ratio over time",
        y_desc: "hit ratio (HIT / marked responses)",
        legend: Corner::LowerRight,
    };
    over_time(o, w, found, &axis, &ratios, &notes)
}

/// What tells one over-time chart from another.
struct OverTime {
    /// The figure's id in the page.
    id: &'static str,
    /// The title after the workload's name.
    what: &'static str,
    y_desc: &'static str,
    legend: Corner,
}

/// A line per series of `(ms since the workload started, value)` points,
/// the time axis in a unit that suits its length; no chart when every
/// series is empty.
fn over_time(
    o: &mut String,
    w: &WorkloadId,
    found: &Found<HttpSamples>,
    axis: &OverTime,
    points: &[Vec<(f64, f64)>],
    notes: &[String],
) -> anyhow::Result<()> {
    if points.iter().all(|r| r.is_empty()) {
        return Ok(());
    }
    let max_ms = points.iter().flatten().map(|p| p.0).fold(0.0, f64::max);
    let (div, unit) = time_unit(max_ms);
    let chart = XyChart {
        title: format!("{}: {}", w.name, axis.what),
        x_desc: format!("time since the workload started ({unit})"),
        y_desc: axis.y_desc.into(),
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        y_from_zero: true,
        series: found
            .iter()
            .zip(points)
            .map(|((k, _), r)| Series {
                label: k.label.clone(),
                style: k.style,
                draw: Draw::Line,
                points: r.iter().map(|&(t, v)| (t / div, v)).collect(),
            })
            .collect(),
        marks: Vec::new(),
        legend: axis.legend,
    };
    figure(o, axis.id, w, &keyed(found, notes), &charts::xy(&chart)?);
    Ok(())
}

/// The status classes and the cache verdicts, a stacked bar per series.
pub(super) fn mixes(
    o: &mut String,
    w: &WorkloadId,
    found: &Found<HttpSamples>,
) -> anyhow::Result<()> {
    type Mix = Vec<(&'static str, u64)>;
    let status: Vec<Mix> = found.iter().map(|(_, s)| s.status_mix()).collect();
    let cache: Vec<Mix> = found.iter().map(|(_, s)| s.cache_mix()).collect();
    for (chart, title, mixes) in [
        ("status-mix", "status of the responses", &status),
        ("cache-mix", "cache verdicts (X-Cache)", &cache),
    ] {
        let cats: Vec<&str> = mixes
            .first()
            .map(|m| m.iter().map(|c| c.0).collect())
            .unwrap_or_default();
        let rows: Vec<Stack> = found
            .iter()
            .zip(mixes.iter())
            .map(|((k, _), m)| Stack {
                label: k.label.clone(),
                counts: m.iter().map(|c| c.1).collect(),
            })
            .collect();
        let notes: Vec<String> = mixes
            .iter()
            .map(|m| {
                m.iter()
                    .filter(|c| c.1 > 0)
                    .map(|(name, n)| format!("{name} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .collect();
        let svg = charts::stacks(&format!("{}: {title}", w.name), &cats, &rows)?;
        let mut key = String::from("<ul class=\"keys\">");
        for (i, c) in cats.iter().enumerate() {
            if mixes.iter().any(|m| m.get(i).is_some_and(|x| x.1 > 0)) {
                let _ = write!(
                    key,
                    "<li><span class=\"swatch block\" style=\"background:{}\"></span>{}</li>",
                    charts::category_hex(i),
                    escape(c)
                );
            }
        }
        key.push_str("</ul>");
        figure_with(o, chart, w, &keyed(found, &notes), &svg, false, &key);
    }
    Ok(())
}
