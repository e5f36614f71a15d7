//! The HTML report: one self-contained file (inline SVG and CSS, nothing
//! fetched) per run, or per set of runs drawn on shared axes. It is always
//! built from the result files on disk ([`data`]), so the report written at
//! the end of a run and one rebuilt later by `netrun report` are the same.

mod cache_curve;
mod charts;
pub mod data;
mod headline;
mod http_charts;
mod inputs;
mod model;
mod page;
pub mod series;
mod svg;
mod udp_charts;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use charts::Scale;
use data::RunData;
use headline::headline_charts;
use http_charts::http_charts;
pub use inputs::load_inputs;
use model::{Key, Model, WorkloadId};
use page::escape;
use udp_charts::udp_charts;

use crate::report::atomic::AtomicFile;

/// File name of the report inside `results/<name>/`.
pub const REPORT_HTML: &str = "report.html";

/// At most this many runs of a history are drawn (the latest).
const MAX_RUNS: usize = 30;

/// Points kept on a CDF (exact samples at chosen ranks).
const CDF_POINTS: usize = 400;

/// Time slices for loss, jitter and request rates.
const SLICES: usize = 40;

/// Writes `report.html` into a run's results folder, from the files the
/// run just wrote (its run record among them); returns the report's path.
pub fn after_run(scenario: &str, summary: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let run = data::load_run(scenario, summary, dir)?;
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
        cache_curve::miss_ratio_curve(o, model, w, &keys)?;
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

/// The label of a millisecond axis, saying when it is logarithmic.
fn ms_axis(quantity: &str, scale: Scale) -> String {
    match scale {
        Scale::Log => format!("{quantity} (ms, log scale)"),
        _ => format!("{quantity} (ms)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{PacketStatus, SummaryRow};
    use data::{UdpSample, UdpSamples};

    /// Every settings line `netrun check` prints, of every shipped
    /// scenario, is in the report's settings table (a repeated key such as
    /// `link` never collapses into its first line).
    #[test]
    fn every_line_of_check_is_in_the_report() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let Ok(s) = crate::scenario::load(&path) else {
                continue;
            };
            let info = crate::report::run_record::RunInfo::new(&s, "r", false, vec![], None);
            let run = RunData {
                label: s.name.clone(),
                rows: vec![SummaryRow {
                    scenario: s.name.clone(),
                    variant: "default".into(),
                    workload: "w".into(),
                    kind: "udp".into(),
                    ..SummaryRow::default()
                }],
                info: Some(info),
                ..RunData::default()
            };
            let html = build(vec![run]).unwrap();
            for v in &s.variants {
                for (key, text) in crate::report::plan::settings(&v.plan) {
                    let cell = format!("{}</td>", escape(&text));
                    assert!(
                        html.contains(&cell),
                        "{}: `{key}` line {text:?} is not in the report",
                        path.display()
                    );
                    checked += 1;
                }
            }
        }
        assert!(
            checked > 20,
            "the shipped scenarios were read ({checked} lines)"
        );
    }

    /// A label with U+202E (right-to-left override) or an escape byte
    /// cannot reorder or hide the figures after it: the page holds no raw
    /// bidi control, long words wrap, and the label shows what it holds.
    #[test]
    fn user_text_cannot_reverse_or_widen_the_page() {
        let run = RunData {
            label: "run\u{202e}sm 652.0 05p\u{1b}[31m".into(),
            rows: vec![SummaryRow {
                scenario: "s".into(),
                variant: "a\u{2067}b".into(),
                workload: "w".into(),
                kind: "udp".into(),
                target: "proxy".into(),
                latency_p50_ms: Some(0.256),
                ..SummaryRow::default()
            }],
            ..RunData::default()
        };
        let html = build(vec![run.clone(), run]).unwrap();
        for c in ['\u{202e}', '\u{2067}', '\u{1b}'] {
            assert!(!html.contains(c), "raw {c:?} in the page");
        }
        assert!(html.contains("\\u{202e}"), "shown as a visible escape");
        assert!(html.contains("overflow-wrap: anywhere"), "long words wrap");
    }

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
