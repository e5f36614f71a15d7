//! The HTML report: one self-contained file (inline SVG and CSS, nothing
//! fetched) per run, or per set of runs drawn on shared axes. It is always
//! built from the result files on disk ([`data`]), so the report written at
//! the end of a run and one rebuilt later by `netrun report` are the same.

mod charts;
pub mod data;
mod page;
pub mod run_info;
pub mod series;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use charts::{AxisMarks, Corner, Dot, Draw, Scale, Series, Stack, XyChart};
use data::{HttpSamples, RunData, StatRow, UdpSamples};
use page::escape;
pub use run_info::RunInfo;

use crate::report::atomic::AtomicFile;

/// File name of the report inside `results/<name>/`.
pub const REPORT_HTML: &str = "report.html";

/// At most this many runs of a history are drawn (the latest).
const MAX_RUNS: usize = 30;

/// Points kept on a CDF (exact samples at chosen ranks).
const CDF_POINTS: usize = 400;

/// Time slices for loss, jitter and request rates.
const SLICES: usize = 40;

/// Writes `run.json` and `report.html` into a run's results folder, from
/// the files the run just wrote; returns the report's path.
pub fn after_run(info: &RunInfo, summary: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    info.write(dir)?;
    let run = data::load_run(&info.scenario, summary, dir)?;
    let path = dir.join(REPORT_HTML);
    write(&path, &build(vec![run])?)?;
    Ok(path)
}

/// Writes a report atomically.
pub fn write(path: &Path, html: &str) -> anyhow::Result<()> {
    let mut file = AtomicFile::create(path)?;
    std::io::Write::write_all(&mut file, html.as_bytes())?;
    file.commit()
}

/// Builds the report of these runs (one, or several on shared axes).
pub fn build(runs: Vec<RunData>) -> anyhow::Result<String> {
    let model = Model::new(runs);
    let mut sections = String::new();
    for w in model.workloads() {
        workload_section(&mut sections, &model, &w)?;
    }
    Ok(page::document(&model, &sections))
}

/// The runs of a report and how they are named and styled.
pub struct Model {
    pub runs: Vec<RunData>,
    /// Runs before this index are not drawn (old history).
    first_shown: usize,
    keys: Vec<Key>,
}

/// One series of every chart: a variant of a run.
#[derive(Debug, Clone)]
struct Key {
    run: usize,
    variant: String,
    label: String,
    style: usize,
}

/// A workload as it appears in the summaries (the same name in another
/// scenario is another workload).
struct WorkloadId {
    scenario: String,
    name: String,
    kind: String,
    target: String,
}

impl Model {
    fn new(runs: Vec<RunData>) -> Model {
        let first_shown = runs.len().saturating_sub(MAX_RUNS);
        let many = runs.len() > 1;
        let mut keys: Vec<Key> = Vec::new();
        for (i, run) in runs.iter().enumerate().skip(first_shown) {
            for row in &run.rows {
                if keys.iter().any(|k| k.run == i && k.variant == row.variant) {
                    continue;
                }
                let label = match (many, row.variant.as_str()) {
                    (false, "default") => run.label.clone(),
                    (false, v) => v.to_string(),
                    (true, "default") => run.label.clone(),
                    (true, v) => format!("{}: {v}", run.label),
                };
                keys.push(Key {
                    run: i,
                    variant: row.variant.clone(),
                    label,
                    style: keys.len(),
                });
            }
        }
        Model {
            runs,
            first_shown,
            keys,
        }
    }

    fn title(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for run in self.shown_runs() {
            for r in &run.rows {
                if !names.contains(&r.scenario.as_str()) {
                    names.push(&r.scenario);
                }
            }
        }
        let runs = self.runs.len();
        let what = if runs > 1 {
            format!(" ({runs} runs)")
        } else {
            String::new()
        };
        format!("netrun report: {}{what}", names.join(", "))
    }

    /// ` of <run>` when several runs are shown, to name a section's run.
    fn of_run(&self, run: &RunData) -> String {
        if self.runs.len() > 1 {
            format!(" of {}", escape(&run.label))
        } else {
            String::new()
        }
    }

    fn shown_runs(&self) -> &[RunData] {
        &self.runs[self.first_shown..]
    }

    fn hidden_runs(&self) -> usize {
        self.first_shown
    }

    fn workloads(&self) -> Vec<WorkloadId> {
        let mut out: Vec<WorkloadId> = Vec::new();
        for run in self.shown_runs() {
            for r in &run.rows {
                if !out
                    .iter()
                    .any(|w| w.scenario == r.scenario && w.name == r.workload)
                {
                    out.push(WorkloadId {
                        scenario: r.scenario.clone(),
                        name: r.workload.clone(),
                        kind: r.kind.clone(),
                        target: r.target.clone(),
                    });
                }
            }
        }
        out
    }

    /// The series that ran workload `w`.
    fn keys_of(&self, w: &WorkloadId) -> Vec<&Key> {
        self.keys
            .iter()
            .filter(|k| {
                self.runs[k.run].rows.iter().any(|r| {
                    r.variant == k.variant && r.workload == w.name && r.scenario == w.scenario
                })
            })
            .collect()
    }

    fn several_scenarios(&self) -> bool {
        let mut names = self
            .shown_runs()
            .iter()
            .flat_map(|r| &r.rows)
            .map(|r| &r.scenario);
        let first = names.next();
        names.any(|n| Some(n) != first)
    }
}

fn udp_of<'a>(run: &'a RunData, k: &Key, w: &WorkloadId) -> Option<&'a UdpSamples> {
    run.udp
        .iter()
        .find(|s| s.variant == k.variant && s.workload == w.name)
}

fn http_of<'a>(run: &'a RunData, k: &Key, w: &WorkloadId) -> Option<&'a HttpSamples> {
    run.http
        .iter()
        .find(|s| s.variant == k.variant && s.workload == w.name)
}

/// Milliseconds are shown as seconds past 10 s.
fn time_unit(max_ms: f64) -> (f64, &'static str) {
    if max_ms > 10_000.0 {
        (1000.0, "s")
    } else {
        (1.0, "ms")
    }
}

/// Log scale when the values span more than a factor of 30.
fn spread_scale(sorted: &[&Vec<f64>]) -> Scale {
    let lo = sorted
        .iter()
        .filter_map(|v| v.iter().find(|x| **x > 0.0))
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = sorted
        .iter()
        .filter_map(|v| v.last())
        .copied()
        .fold(0.0, f64::max);
    if lo.is_finite() && hi / lo > 30.0 {
        Scale::Log
    } else {
        Scale::Linear
    }
}

/// Wraps a chart in a figure naming its kind, workload and series (the
/// tests count these), with an HTML key that prints well.
fn figure(o: &mut String, chart: &str, w: &WorkloadId, keys: &[(&Key, String)], svg: &str) {
    figure_with(o, chart, w, keys, svg, true, "");
}

/// [`figure`] with a choice of series swatches (not for charts coloured by
/// category) and extra caption HTML.
fn figure_with(
    o: &mut String,
    chart: &str,
    w: &WorkloadId,
    keys: &[(&Key, String)],
    svg: &str,
    swatches: bool,
    extra: &str,
) {
    let _ = write!(
        o,
        "<figure class=\"chart\" data-chart=\"{chart}\" data-scenario=\"{}\" data-workload=\"{}\">\n{svg}\n<figcaption><ul class=\"keys\">",
        escape(&w.scenario),
        escape(&w.name)
    );
    for (k, note) in keys {
        let swatch = if swatches {
            format!(
                "<span class=\"swatch\" style=\"background:{}\"></span>",
                charts::colour_hex(k.style)
            )
        } else {
            String::new()
        };
        let _ = write!(
            o,
            "<li data-variant=\"{}\" data-run=\"{}\">{swatch}{}{}</li>",
            escape(&k.variant),
            k.run,
            escape(&k.label),
            if note.is_empty() {
                String::new()
            } else {
                format!(": {}", escape(note))
            }
        );
    }
    let _ = write!(o, "</ul>{extra}</figcaption>\n</figure>\n");
}

fn workload_section(o: &mut String, model: &Model, w: &WorkloadId) -> anyhow::Result<()> {
    let keys = model.keys_of(w);
    let heading = if model.several_scenarios() {
        format!("{} · {}", w.scenario, w.name)
    } else {
        w.name.clone()
    };
    let _ = writeln!(
        o,
        "<section class=\"workload\" data-scenario=\"{}\" data-workload=\"{}\" data-kind=\"{}\">\n<h2>{} <span class=\"small\">({} → {})</span></h2>\n<div class=\"charts\">",
        escape(&w.scenario),
        escape(&w.name),
        escape(&w.kind),
        escape(&heading),
        escape(&w.kind),
        escape(&w.target)
    );
    let drawn = match w.kind.as_str() {
        "udp" => udp_charts(o, model, w, &keys)?,
        "http" => http_charts(o, model, w, &keys)?,
        _ => false,
    };
    if keys.len() > 1 {
        headline_charts(o, model, w, &keys)?;
    }
    o.push_str("</div>\n");
    if !drawn {
        o.push_str("<p class=\"note\">No per-sample file for this workload (a history, or results of an older netrun): only the summary figures are shown.</p>\n");
    }
    o.push_str("</section>\n");
    Ok(())
}

/// The samples of each series that has them.
type Found<'a, T> = Vec<(&'a Key, &'a T)>;

/// Pairs each series with its caption note.
fn keyed<'a, T>(found: &Found<'a, T>, notes: &[String]) -> Vec<(&'a Key, String)> {
    found
        .iter()
        .map(|(k, _)| *k)
        .zip(notes.iter().cloned())
        .collect()
}

/// RTT over time with losses marked, the RTT CDF, loss and jitter per slice.
fn udp_charts(
    o: &mut String,
    model: &Model,
    w: &WorkloadId,
    keys: &[&Key],
) -> anyhow::Result<bool> {
    let found: Found<UdpSamples> = keys
        .iter()
        .filter_map(|k| udp_of(&model.runs[k.run], k, w).map(|s| (*k, s)))
        .collect();
    if found.is_empty() {
        return Ok(false);
    }
    let max_ms = found
        .iter()
        .flat_map(|(_, s)| s.samples.iter().map(|x| x.send_ms))
        .fold(0.0, f64::max);
    rtt_over_time(o, w, &found, max_ms)?;
    rtt_cdf(o, w, &found)?;
    udp_slices(o, w, &found, max_ms)?;
    Ok(true)
}

/// One point per datagram (thinned to the extremes per pixel column), and a
/// tick on the time axis per lost datagram.
fn rtt_over_time(
    o: &mut String,
    w: &WorkloadId,
    found: &Found<UdpSamples>,
    max_ms: f64,
) -> anyhow::Result<()> {
    let (div, unit) = time_unit(max_ms);
    let mut chart = XyChart {
        title: format!("{}: round-trip time over time", w.name),
        x_desc: format!("send time ({unit})"),
        y_desc: "RTT (ms)".into(),
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        y_from_zero: true,
        series: Vec::new(),
        marks: Vec::new(),
        legend: Corner::UpperRight,
    };
    let mut notes = Vec::new();
    for (k, s) in found {
        let pts: Vec<(f64, f64)> = s
            .samples
            .iter()
            .filter_map(|x| x.rtt_ms.map(|r| (x.send_ms / div, r)))
            .collect();
        let thin = series::min_max_buckets(&pts, 0.0, max_ms / div, charts::PLOT_COLUMNS);
        let lost: Vec<f64> = s
            .samples
            .iter()
            .filter(|x| x.status == crate::metrics::PacketStatus::Lost)
            .map(|x| x.send_ms / div)
            .collect();
        notes.push(format!(
            "{} datagrams, {} lost{}",
            s.samples.len(),
            lost.len(),
            if thin.len() < pts.len() {
                format!(
                    ", drawn as the lowest and highest RTT of each of {} time buckets",
                    charts::PLOT_COLUMNS
                )
            } else {
                String::new()
            }
        ));
        chart.series.push(Series {
            label: k.label.clone(),
            style: k.style,
            draw: Draw::Points,
            points: thin,
        });
        chart.marks.push(AxisMarks {
            style: k.style,
            xs: series::marks(lost.into_iter(), 0.0, max_ms / div, charts::PLOT_COLUMNS),
        });
    }
    if chart.marks.iter().any(|m| !m.xs.is_empty()) {
        chart
            .title
            .push_str(" (ticks on the time axis: lost datagrams)");
    }
    figure(
        o,
        "rtt-time",
        w,
        &keyed(found, &notes),
        &charts::xy(&chart)?,
    );
    Ok(())
}

/// The label of a millisecond axis, saying when it is logarithmic.
fn ms_axis(quantity: &str, scale: Scale) -> String {
    match scale {
        Scale::Log => format!("{quantity} (ms, log scale)"),
        _ => format!("{quantity} (ms)"),
    }
}

/// The RTT distribution of every reply as a CDF.
fn rtt_cdf(o: &mut String, w: &WorkloadId, found: &Found<UdpSamples>) -> anyhow::Result<()> {
    let sorted: Vec<Vec<f64>> = found
        .iter()
        .map(|(_, s)| series::sorted(s.samples.iter().filter_map(|x| x.rtt_ms)))
        .collect();
    let refs: Vec<&Vec<f64>> = sorted.iter().collect();
    let x_scale = spread_scale(&refs);
    let chart = XyChart {
        title: format!("{}: RTT distribution (CDF)", w.name),
        x_desc: ms_axis("RTT", x_scale),
        y_desc: "fraction of replies ≤ RTT".into(),
        x_scale,
        y_scale: Scale::Linear,
        y_from_zero: true,
        series: found
            .iter()
            .zip(&sorted)
            .map(|((k, _), v)| Series {
                label: k.label.clone(),
                style: k.style,
                draw: Draw::Line,
                points: series::cdf_points(v, CDF_POINTS),
            })
            .collect(),
        marks: Vec::new(),
        legend: Corner::LowerRight,
    };
    let notes: Vec<String> = sorted
        .iter()
        .map(
            |v| match (series::quantile(v, 0.5), series::quantile(v, 0.99)) {
                (Some(a), Some(b)) => format!("p50 {a:.3} ms, p99 {b:.3} ms ({} replies)", v.len()),
                _ => "no replies".into(),
            },
        )
        .collect();
    figure(o, "rtt-cdf", w, &keyed(found, &notes), &charts::xy(&chart)?);
    Ok(())
}

/// Loss and jitter per time slice, one chart each.
fn udp_slices(
    o: &mut String,
    w: &WorkloadId,
    found: &Found<UdpSamples>,
    max_ms: f64,
) -> anyhow::Result<()> {
    let (div, unit) = time_unit(max_ms);
    let slices: Vec<Vec<series::Slice>> = found
        .iter()
        .map(|(_, s)| series::udp_slices(&s.samples, SLICES))
        .collect();
    let chart = |title: &str, y_desc: &str, f: &dyn Fn(&series::Slice) -> Option<f64>| XyChart {
        title: format!("{}: {title}", w.name),
        x_desc: format!("send time ({unit})"),
        y_desc: y_desc.into(),
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        y_from_zero: true,
        series: found
            .iter()
            .zip(&slices)
            .map(|((k, _), sl)| Series {
                label: k.label.clone(),
                style: k.style,
                draw: Draw::Line,
                points: sl
                    .iter()
                    .filter_map(|s| f(s).map(|v| (s.mid_ms() / div, v)))
                    .collect(),
            })
            .collect(),
        marks: Vec::new(),
        legend: Corner::UpperRight,
    };
    let notes: Vec<String> = slices
        .iter()
        .map(|sl| {
            let width = sl.first().map_or(0.0, |s| s.end_ms - s.start_ms);
            format!("{} slices of {} ms", sl.len(), charts::number(width))
        })
        .collect();
    let loss = chart("loss per time slice", "loss (%)", &|s| s.loss_percent());
    figure(
        o,
        "loss-slices",
        w,
        &keyed(found, &notes),
        &charts::xy(&loss)?,
    );
    let jitter = chart("jitter per time slice", "mean |ΔRTT| (ms)", &|s| {
        s.jitter_ms
    });
    figure(
        o,
        "jitter-slices",
        w,
        &keyed(found, &notes),
        &charts::xy(&jitter)?,
    );
    Ok(())
}

/// The latency CDF with a log-scaled tail, requests/s over time, the status
/// and cache mix.
fn http_charts(
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
    mixes(o, w, &found)?;
    Ok(true)
}

/// Latency of every response, percentiles on a stretched tail (90, 99, 99.9 %).
fn latency_cdf(o: &mut String, w: &WorkloadId, found: &Found<HttpSamples>) -> anyhow::Result<()> {
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
fn response_rates(
    o: &mut String,
    w: &WorkloadId,
    found: &Found<HttpSamples>,
) -> anyhow::Result<()> {
    let rates: Vec<Vec<(f64, f64)>> = found
        .iter()
        .map(|(_, s)| series::completions_per_second(&s.samples, SLICES))
        .collect();
    if rates.iter().all(|r| r.is_empty()) {
        return Ok(());
    }
    let max_ms = rates.iter().flatten().map(|p| p.0).fold(0.0, f64::max);
    let (div, unit) = time_unit(max_ms);
    let chart = XyChart {
        title: format!("{}: responses per second over time", w.name),
        x_desc: format!("time since the workload started ({unit})"),
        y_desc: "responses/s".into(),
        x_scale: Scale::Linear,
        y_scale: Scale::Linear,
        y_from_zero: true,
        series: found
            .iter()
            .zip(&rates)
            .map(|((k, _), r)| Series {
                label: k.label.clone(),
                style: k.style,
                draw: Draw::Line,
                points: r.iter().map(|&(t, v)| (t / div, v)).collect(),
            })
            .collect(),
        marks: Vec::new(),
        legend: Corner::LowerRight,
    };
    let notes: Vec<String> = found
        .iter()
        .map(|(_, s)| format!("{} requests in {SLICES} slices", s.samples.len()))
        .collect();
    figure(
        o,
        "rate-time",
        w,
        &keyed(found, &notes),
        &charts::xy(&chart)?,
    );
    Ok(())
}

/// The status classes and the cache verdicts, a stacked bar per series.
fn mixes(o: &mut String, w: &WorkloadId, found: &Found<HttpSamples>) -> anyhow::Result<()> {
    type Mix = Vec<(&'static str, u64)>;
    let status: Vec<Mix> = found
        .iter()
        .map(|(_, s)| series::status_mix(&s.samples))
        .collect();
    let cache: Vec<Mix> = found
        .iter()
        .map(|(_, s)| series::cache_mix(&s.samples))
        .collect();
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

/// The figures people compare, per kind: CSV name, chart title, axis text.
fn headline_metrics(kind: &str) -> &'static [(&'static str, &'static str, &'static str)] {
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
fn headline_value(model: &Model, k: &Key, w: &WorkloadId, metric: &str) -> Option<Headline> {
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
fn headline_charts(
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

/// The runs behind `netrun report` inputs and where the report goes by
/// default: beside the input (`results/NAME/report.html`), or for several
/// inputs beside the first one.
pub fn load_inputs(paths: &[PathBuf]) -> anyhow::Result<(Vec<RunData>, PathBuf)> {
    let mut runs = Vec::new();
    let mut outs = Vec::new();
    for p in paths {
        let input = data::Input::resolve(p)?;
        let label = source_label(p, paths);
        outs.push(match &input {
            data::Input::Run { dir, .. } if dir.is_dir() => dir.join(REPORT_HTML),
            data::Input::Run { summary, .. } => summary.with_extension("report.html"),
            data::Input::History(h) => h.with_extension("report.html"),
        });
        runs.extend(input.load(&label)?);
    }
    let out = if outs.len() == 1 {
        outs.remove(0)
    } else {
        let stems: Vec<String> = paths
            .iter()
            .map(|p| source_label(p, paths).replace(['/', '\\'], "_"))
            .collect();
        let first = outs.remove(0);
        let dir = first
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        dir.join(format!("report-{}.html", stems.join("-vs-")))
    };
    Ok((runs, out))
}

/// A path's name for legends: its stem (`cache`), or its path when another
/// input has the same stem (`old/cache`, `new/cache`).
fn source_label(input: &Path, all: &[PathBuf]) -> String {
    let stem = |p: &Path| {
        let p = if p.is_dir() {
            p.to_path_buf()
        } else {
            p.with_extension("")
        };
        p.file_name().map(|s| s.to_string_lossy().into_owned())
    };
    let clash = all.iter().filter(|p| stem(p) == stem(input)).count() > 1;
    match stem(input) {
        Some(s) if !clash => s,
        _ => {
            let p = if input.is_dir() {
                input.to_path_buf()
            } else {
                input.with_extension("")
            };
            p.display().to_string().trim_end_matches('/').to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{PacketStatus, SummaryRow};
    use data::UdpSample;

    #[test]
    fn a_million_datagrams_make_a_small_report_with_exact_percentiles() {
        let n = 1_000_000u64;
        let samples: Vec<UdpSample> = (0..n)
            .map(|i| {
                // Every 1000th datagram is lost; RTTs 0.1 to 1.099 ms, one 80 ms spike.
                let lost = i % 1000 == 999;
                let rtt = if i == 500_000 {
                    80.0
                } else {
                    0.1 + (i % 1000) as f64 / 1000.0
                };
                UdpSample {
                    rep: 0,
                    flow: (i % 4) as u32,
                    seq: i / 4,
                    send_ms: i as f64 * 0.01,
                    rtt_ms: (!lost).then_some(rtt),
                    status: if lost {
                        PacketStatus::Lost
                    } else {
                        PacketStatus::Ok
                    },
                }
            })
            .collect();
        let run = RunData {
            label: "big".into(),
            rows: vec![SummaryRow {
                scenario: "big".into(),
                variant: "default".into(),
                workload: "flood".into(),
                kind: "udp".into(),
                target: "proxy".into(),
                sent: Some(n),
                ..SummaryRow::default()
            }],
            udp: vec![UdpSamples {
                variant: "default".into(),
                workload: "flood".into(),
                samples,
                recorded_reps: false,
            }],
            ..RunData::default()
        };
        let html = build(vec![run]).unwrap();
        assert!(html.len() < 1_000_000, "{} bytes", html.len());
        // The caption counts every datagram, and its p99 is exact.
        assert!(
            html.contains("1000000 datagrams, 1000 lost"),
            "counts in the caption"
        );
        assert!(html.contains("p99 1.089 ms"), "exact p99 of the replies");
    }
}
