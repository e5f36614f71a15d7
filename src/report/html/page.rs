//! The HTML around the charts: header, settings, the summary table with the
//! verdicts, statistics and the list of files read. Plain HTML and one
//! `<style>`, nothing to fetch, laid out to print on A4.

use std::fmt::Write;

use super::data::RunData;
use super::model::Model;
use crate::metrics::SummaryRow;
use crate::report::run_record::RunInfo;

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in visible(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `c` reorders or hides text: the bidirectional embeddings,
/// overrides and isolates, the marks, and other controls.
fn hides_or_reorders(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        || (c.is_control() && c != '\n' && c != '\t')
}

/// User text (paths, names, descriptions) as it may be shown: characters
/// that would reverse or hide what follows them (U+202E and the other
/// bidi controls, escape bytes) are written as visible `\u{202e}` escapes,
/// so a label can never make `p50 0.256 ms` read backwards.
pub fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(hides_or_reorders) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hides_or_reorders(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

const CSS: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1a1a1a; background: #fff; margin: 0 auto; padding: 12px 16px 40px; max-width: 1560px;
       overflow-wrap: anywhere; }
h1 { font-size: 22px; margin: 4px 0 2px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 2px solid #0072b2; padding-bottom: 2px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.meta, p.note { color: #444; margin: 2px 0; }
table { border-collapse: collapse; margin: 6px 0 10px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
table.summary { font-size: 13px; }
tr.interrupted td { background: #fff4e0; }
td.differs { background: #eef6fb; font-weight: 600; }
.pass { color: #006b4f; font-weight: 600; }
.fail { color: #b03a00; font-weight: 700; }
.charts { display: flex; flex-wrap: wrap; gap: 10px 16px; }
figure.chart { margin: 0; border: 1px solid #ddd; padding: 4px; background: #fff; break-inside: avoid; }
figure.chart svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 12px; color: #333; padding: 2px 4px; max-width: 652px; }
ul.keys { list-style: none; margin: 2px 0 0; padding: 0; }
ul.keys li { display: inline-block; margin-right: 14px; }
.swatch { display: inline-block; width: 18px; height: 4px; vertical-align: middle; margin-right: 4px; }
.swatch.block { width: 12px; height: 10px; border: 1px solid #888; }
.small { font-size: 12px; }
code { font-size: 12px; background: #f4f4f4; padding: 0 3px; }
@media print {
  body { padding: 0; max-width: none; font-size: 11px; }
  h2 { break-after: avoid; }
  table, figure.chart { break-inside: avoid; }
  .charts { gap: 6px; }
}
"#;

/// The complete document around the workload sections.
pub fn document(model: &Model, sections: &str) -> String {
    let mut o = String::with_capacity(sections.len() + 32 * 1024);
    let title = model.title();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    header(&mut o, model, &title);
    settings(&mut o, model);
    summary(&mut o, model);
    verdicts(&mut o, model);
    o.push_str(sections);
    stats(&mut o, model);
    footer(&mut o, model);
    o.push_str("</body>\n</html>\n");
    o
}

fn header(o: &mut String, model: &Model, title: &str) {
    let _ = writeln!(o, "<header>\n<h1>{}</h1>", escape(title));
    let mut seen = Vec::new();
    for run in &model.runs {
        if let Some(info) = &run.info {
            if !info.description.is_empty() && !seen.contains(&info.description) {
                let _ = writeln!(
                    o,
                    "<p class=\"description\">{}</p>",
                    escape(&info.description)
                );
                seen.push(info.description.clone());
            }
        }
    }
    if model.runs.len() == 1 {
        let run = &model.runs[0];
        let _ = writeln!(o, "<p class=\"meta\">{}</p>", run_facts(run));
    } else {
        let _ = writeln!(
            o,
            "<table class=\"runs\"><tr><th>run</th><th>scenario</th><th>what and where</th></tr>"
        );
        for run in model.runs.iter() {
            let scenario = run.rows.first().map(|r| r.scenario.as_str()).unwrap_or("");
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&run.label),
                escape(scenario),
                run_facts(run)
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("</header>\n");
}

/// When, with what and on what a run ran, as far as its files say.
fn run_facts(run: &RunData) -> String {
    let started = run
        .rows
        .iter()
        .map(|r| r.started_at.as_str())
        .filter(|s| !s.is_empty())
        .min();
    let mut parts = Vec::new();
    match &run.info {
        Some(RunInfo {
            run_id,
            finished_at,
            netrun_version,
            host,
            source,
            shard,
            segment,
            merged_from,
            ..
        }) => {
            if let Some(s) = started {
                parts.push(format!("started {}", escape(s)));
            }
            parts.push(format!("finished {}", escape(finished_at)));
            parts.push(format!("run <code>{}</code>", escape(run_id)));
            parts.push(format!("scenario file <code>{}</code>", escape(source)));
            parts.push(format!("netrun {}", escape(netrun_version)));
            parts.push(format!(
                "host: {} cores, {} {}",
                host.cores,
                escape(&host.os),
                escape(&host.arch)
            ));
            if let Some(p) = shard {
                parts.push(format!("shard {p} of the runs"));
            }
            if let Some(p) = segment {
                parts.push(format!(
                    "segment {p} of the load (settings are the whole's)"
                ));
            }
            if !merged_from.is_empty() {
                parts.push(format!("merged from {}", escape(&merged_from.join(", "))));
            }
        }
        None => {
            if let Some(s) = started {
                parts.push(format!("started {}", escape(s)));
            }
            parts.push(
                "no run.json beside the results (written by an older netrun): settings and host unknown"
                    .to_string(),
            );
        }
    }
    if run.info.as_ref().is_some_and(|i| i.interrupted) || run.rows.iter().any(|r| r.interrupted) {
        parts.push(
            "<strong>interrupted</strong>: the results stop where Ctrl-C stopped the run".into(),
        );
    }
    parts.join(" · ")
}

fn settings(o: &mut String, model: &Model) {
    for run in &model.runs {
        let Some(info) = &run.info else { continue };
        if info.variants.is_empty() {
            continue;
        }
        let _ = writeln!(
            o,
            "<section class=\"settings\">\n<h2>Settings{}</h2>",
            model.of_run(run)
        );
        let variants = &info.variants;
        o.push_str("<table class=\"settings\"><tr><th>setting</th>");
        for v in variants {
            let _ = write!(o, "<th>{}</th>", escape(&v.label));
        }
        o.push_str("</tr>\n");
        // A key may repeat (one `link` line per link): the n-th line of a
        // key is matched with the n-th line of that key in each variant, and
        // a line only some variants have still gets its row.
        let mut keys: Vec<(&String, usize)> = Vec::new();
        for v in variants {
            let mut seen: Vec<&String> = Vec::new();
            for (k, _) in &v.settings {
                let nth = seen.iter().filter(|s| **s == k).count();
                seen.push(k);
                if !keys.contains(&(k, nth)) {
                    keys.push((k, nth));
                }
            }
        }
        for (key, nth) in keys {
            let values: Vec<&str> = variants
                .iter()
                .map(|v| {
                    v.settings
                        .iter()
                        .filter(|(k, _)| k == key)
                        .nth(nth)
                        .map_or("", |(_, t)| t.as_str())
                })
                .collect();
            let differs = values.iter().any(|v| *v != values[0]);
            let _ = write!(o, "<tr><th>{}</th>", escape(key));
            for v in values {
                let class = if differs { " class=\"differs\"" } else { "" };
                let _ = write!(o, "<td{class}>{}</td>", escape(v));
            }
            o.push_str("</tr>\n");
        }
        o.push_str("</table>\n");
        o.push_str("<table class=\"workloads\"><tr><th>workload</th><th>kind</th><th>target</th><th>settings</th><th>variants</th></tr>\n");
        let mut lines: Vec<(String, String, String, String, Vec<&str>)> = Vec::new();
        for v in variants {
            for w in &v.workloads {
                match lines
                    .iter_mut()
                    .find(|l| l.0 == w.name && l.3 == w.settings && l.2 == w.target)
                {
                    Some(l) => l.4.push(&v.label),
                    None => lines.push((
                        w.name.clone(),
                        w.kind.clone(),
                        w.target.clone(),
                        w.settings.clone(),
                        vec![&v.label],
                    )),
                }
            }
        }
        for (name, kind, target, text, on) in lines {
            let which = if on.len() == variants.len() {
                "all".to_string()
            } else {
                escape(&on.join(", "))
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{which}</td></tr>",
                escape(&name),
                escape(&kind),
                escape(&target),
                escape(&text)
            );
        }
        o.push_str("</table>\n</section>\n");
    }
}

/// A summary column shown in the report: CSV name, heading, how to print it.
struct Col {
    name: &'static str,
    head: &'static str,
    fmt: Fmt,
}

#[derive(Clone, Copy)]
enum Fmt {
    Count,
    /// Fixed decimals (the CSV keeps three).
    Fixed(usize),
    /// Bits per second printed with a unit.
    Bps,
}

const COLUMNS: &[Col] = &[
    Col {
        name: "sent",
        head: "sent",
        fmt: Fmt::Count,
    },
    Col {
        name: "received",
        head: "recv",
        fmt: Fmt::Count,
    },
    Col {
        name: "loss_percent",
        head: "loss %",
        fmt: Fmt::Fixed(3),
    },
    Col {
        name: "latency_p50_ms",
        head: "p50 ms",
        fmt: Fmt::Fixed(3),
    },
    Col {
        name: "latency_p90_ms",
        head: "p90 ms",
        fmt: Fmt::Fixed(3),
    },
    Col {
        name: "latency_p99_ms",
        head: "p99 ms",
        fmt: Fmt::Fixed(3),
    },
    Col {
        name: "latency_max_ms",
        head: "max ms",
        fmt: Fmt::Fixed(3),
    },
    Col {
        name: "jitter_ms",
        head: "jitter ms",
        fmt: Fmt::Fixed(3),
    },
    Col {
        name: "throughput_bps",
        head: "throughput",
        fmt: Fmt::Bps,
    },
    Col {
        name: "requests_per_s",
        head: "req/s",
        fmt: Fmt::Fixed(1),
    },
    Col {
        name: "errors",
        head: "errors",
        fmt: Fmt::Count,
    },
    Col {
        name: "cache_hit_ratio",
        head: "hit ratio",
        fmt: Fmt::Fixed(3),
    },
];

/// A throughput with its unit, as the terminal table prints it.
pub fn bps(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} Gbit/s", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} Mbit/s", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} kbit/s", v / 1e3)
    } else {
        format!("{v:.0} bit/s")
    }
}

fn cell(row: &SummaryRow, col: &Col) -> String {
    let Some(v) = row.metric(col.name) else {
        return format!("<td class=\"num\" data-col=\"{}\">-</td>", col.name);
    };
    let text = match col.fmt {
        Fmt::Count => format!("{v:.0}"),
        Fmt::Fixed(d) => format!("{v:.d$}"),
        Fmt::Bps => bps(v),
    };
    format!("<td class=\"num\" data-col=\"{}\">{text}</td>", col.name)
}

fn summary(o: &mut String, model: &Model) {
    o.push_str("<section class=\"summary\" id=\"summary\">\n<h2>Summary</h2>\n");
    o.push_str(
        "<p class=\"note\">One row per variant and workload, as in the summary CSV \
         (latencies are round trips for UDP; loss, jitter and hit ratio as defined in the book, docs/src/probe.md).</p>\n",
    );
    let many = model.runs.len() > 1;
    let repeated = model
        .shown_runs()
        .iter()
        .flat_map(|r| &r.rows)
        .any(|r| r.repetition > 1);
    o.push_str("<table class=\"summary\"><tr>");
    if many {
        o.push_str("<th>run</th>");
    }
    o.push_str("<th>variant</th>");
    if repeated {
        o.push_str("<th>rep</th>");
    }
    o.push_str("<th>workload</th><th>kind</th><th>target</th>");
    for c in COLUMNS {
        let _ = write!(o, "<th>{}</th>", c.head);
    }
    o.push_str("</tr>\n");
    for run in model.shown_runs() {
        for row in &run.rows {
            let class = if row.interrupted {
                " class=\"interrupted\""
            } else {
                ""
            };
            let _ = write!(
                o,
                "<tr{class} data-run=\"{}\" data-scenario=\"{}\" data-variant=\"{}\" data-repetition=\"{}\" data-workload=\"{}\">",
                escape(&run.label),
                escape(&row.scenario),
                escape(&row.variant),
                row.repetition,
                escape(&row.workload)
            );
            if many {
                let _ = write!(o, "<td>{}</td>", escape(&run.label));
            }
            let _ = write!(o, "<td>{}</td>", escape(&row.variant));
            if repeated {
                let _ = write!(o, "<td class=\"num\">{}</td>", row.repetition);
            }
            let _ = write!(
                o,
                "<td>{}</td><td>{}</td><td>{}</td>",
                escape(&row.workload),
                escape(&row.kind),
                escape(&row.target)
            );
            for c in COLUMNS {
                o.push_str(&cell(row, c));
            }
            o.push_str("</tr>\n");
        }
    }
    o.push_str("</table>\n");
    if model.hidden_runs() > 0 {
        let _ = writeln!(
            o,
            "<p class=\"note\">The {} oldest runs of the history are left out; the table and charts show the latest {}.</p>",
            model.hidden_runs(),
            model.shown_runs().len()
        );
    }
    o.push_str("</section>\n");
}

fn verdicts(o: &mut String, model: &Model) {
    let with_info: Vec<(&RunData, &RunInfo)> = model
        .runs
        .iter()
        .filter_map(|r| r.info.as_ref().map(|i| (r, i)))
        .collect();
    if with_info.is_empty() {
        return;
    }
    o.push_str("<section class=\"verdicts\">\n<h2>Verdicts</h2>\n");
    for (run, info) in with_info {
        let _ = writeln!(o, "<h3>Expectations{}</h3>", model.of_run(run));
        if info.expectations.is_empty() {
            if info.interrupted {
                o.push_str("<p class=\"note\">Not checked: the run was interrupted.</p>\n");
            } else {
                o.push_str("<p class=\"note\">The scenario sets no <code>[expect]</code> thresholds.</p>\n");
            }
        } else {
            o.push_str("<table class=\"expectations\"><tr><th>verdict</th><th>variant</th><th>rep</th><th>figure</th><th>expected</th><th>measured</th></tr>\n");
            for e in &info.expectations {
                let (class, word) = if e.passed {
                    ("pass", "pass")
                } else {
                    ("fail", "FAIL")
                };
                let measured = e
                    .actual
                    .map_or("(empty)".to_string(), |a| format!("{a:.3}"));
                let _ = writeln!(
                    o,
                    "<tr><td class=\"{class}\">{word}</td><td>{}</td><td class=\"num\">{}</td><td>{}.{}</td><td>{}</td><td class=\"num\">{measured}</td></tr>",
                    escape(&e.variant),
                    e.repetition,
                    escape(&e.workload),
                    escape(&e.metric),
                    escape(&e.expected)
                );
            }
            o.push_str("</table>\n");
        }
        let _ = writeln!(o, "<h3>Baseline{}</h3>", model.of_run(run));
        match &info.baseline {
            None => o.push_str("<p class=\"note\">Not compared with a baseline (<code>--baseline</code> was not given).</p>\n"),
            Some(b) => {
                let _ = writeln!(
                    o,
                    "<p class=\"note\">Against <code>{}</code>, tolerance {}%.</p>",
                    escape(&b.source),
                    b.tolerance_percent
                );
                let worse = b.findings.iter().filter(|f| f.verdict == "worse").count();
                if worse == 0 {
                    let _ = writeln!(
                        o,
                        "<p class=\"pass\">No gated figure worse beyond {}% ({} checked).</p>",
                        b.tolerance_percent,
                        b.findings.len()
                    );
                } else {
                    let _ = writeln!(o, "<p class=\"fail\">{worse} figure(s) worse: the run failed.</p>");
                }
                if let Some(why) = &b.host_changed {
                    let _ = writeln!(
                        o,
                        "<p class=\"note\">The host was slower than when the baseline was made ({}); worse figures count as inconclusive.</p>",
                        escape(why)
                    );
                }
                if !b.findings.is_empty() {
                    o.push_str("<table class=\"baseline small\"><tr><th>verdict</th><th>variant</th><th>figure</th><th>baseline → now, change [95% CI] and why</th></tr>\n");
                    for f in &b.findings {
                        let class = match f.verdict.as_str() {
                            "worse" => "fail",
                            "better" => "pass",
                            _ => "",
                        };
                        let _ = writeln!(
                            o,
                            "<tr><td class=\"{class}\">{}</td><td>{}</td><td>{}.{}</td><td>{}</td></tr>",
                            escape(&f.verdict),
                            escape(&f.variant),
                            escape(&f.workload),
                            escape(&f.metric),
                            escape(&f.text)
                        );
                    }
                    o.push_str("</table>\n");
                }
            }
        }
    }
    o.push_str("</section>\n");
}

fn stats(o: &mut String, model: &Model) {
    let runs: Vec<&RunData> = model.runs.iter().filter(|r| !r.stats.is_empty()).collect();
    if runs.is_empty() {
        return;
    }
    o.push_str("<section class=\"stats\">\n<h2>Statistics over the repetitions</h2>\n");
    for run in runs {
        let _ = writeln!(
            o,
            "<h3>From {}.stats.csv{}</h3>",
            escape(run.rows.first().map_or("", |r| r.scenario.as_str())),
            model.of_run(run)
        );
        o.push_str("<table class=\"stats small\"><tr><th>variant</th><th>workload</th><th>metric</th><th>n</th><th>mean</th><th>median</th><th>stddev</th><th>min</th><th>max</th><th>95% CI</th></tr>\n");
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        for s in &run.stats {
            let ci = match (s.ci_low, s.ci_high) {
                (Some(l), Some(h)) => format!("[{l:.3}, {h:.3}]"),
                _ => "-".into(),
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{ci}</td></tr>",
                escape(&s.variant),
                escape(&s.workload),
                escape(&s.metric),
                s.n.map_or("-".into(), |n| n.to_string()),
                f(s.mean),
                f(s.median),
                f(s.stddev),
                f(s.min),
                f(s.max),
            );
        }
        o.push_str("</table>\n");
    }
    o.push_str("</section>\n");
}

fn footer(o: &mut String, model: &Model) {
    o.push_str("<footer>\n<h2>Files</h2>\n<ul class=\"small\">\n");
    let mut seen = Vec::new();
    for run in &model.runs {
        for f in &run.files {
            if !seen.contains(f) {
                let _ = writeln!(
                    o,
                    "<li><code>{}</code></li>",
                    escape(&f.display().to_string())
                );
                seen.push(f.clone());
            }
        }
    }
    let _ = writeln!(
        o,
        "</ul>\n<p class=\"note small\">Made by netrun {} from the files above; \
         <code>netrun report</code> rebuilds it from them.</p>\n</footer>",
        env!("CARGO_PKG_VERSION")
    );
}
