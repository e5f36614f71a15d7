//! The HTML report: every shipped scenario's run leaves one that parses as
//! HTML, loads nothing from anywhere, draws one chart per workload with every
//! variant on it, and whose table holds the summary CSV's numbers; Chromium
//! renders it; `netrun report` rebuilds it and draws two runs on shared axes.

#[path = "common/csv.rs"]
mod common_csv;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use common_csv::read_csv;
use scraper::{ElementRef, Html, Selector};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

const SHIPPED: &[&str] = &["basic", "udp_qos", "load", "cache", "cdn", "ci", "impair"];

/// Every shipped scenario run once (shared by the tests of this file).
/// The folder lives under cargo's per-target scratch folder, emptied first:
/// a `static` is never dropped, so a `TempDir` here would leak a folder of
/// results into /tmp on every test run.
fn shipped() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-shipped");
        if out.exists() {
            std::fs::remove_dir_all(&out).expect("empty the shared results folder");
        }
        std::fs::create_dir_all(&out).expect("shared results folder");
        for name in SHIPPED {
            netrun()
                .current_dir(root())
                .arg(format!("scenarios/{name}.toml"))
                .args(["--quiet", "--out"])
                .arg(&out)
                .assert()
                .code(0)
                .stdout(predicates::str::contains(format!(
                    "report: {}",
                    out.join(name).join("report.html").display()
                )));
        }
        out
    })
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("selector")
}

/// Elements that would make a browser fetch something, and attributes that
/// name what to fetch.
const LOADING_ELEMENTS: &[&str] = &[
    "script", "link", "img", "iframe", "object", "embed", "base", "video", "audio", "source",
    "image", "use", "feimage", "frame",
];
const LOADING_ATTRS: &[&str] = &[
    "src",
    "href",
    "xlink:href",
    "srcset",
    "data",
    "poster",
    "action",
    "formaction",
    "background",
    "ping",
];

/// Nothing in the document is loaded from anywhere. SVG's `xmlns` is a
/// namespace name, never fetched: allowed only as exactly the SVG namespace
/// (netrun strips it anyway, since HTML needs none on an inline `<svg>`).
fn assert_loads_nothing(doc: &Html, text: &str, what: &str) {
    for el in doc
        .root_element()
        .descendants()
        .filter_map(ElementRef::wrap)
    {
        let name = el.value().name().to_ascii_lowercase();
        assert!(
            !LOADING_ELEMENTS.contains(&name.as_str()),
            "{what}: a <{name}> element loads something"
        );
        for (attr, value) in el.value().attrs() {
            let attr = attr.to_ascii_lowercase();
            if attr == "xmlns" {
                assert_eq!(value, "http://www.w3.org/2000/svg", "{what}: xmlns");
                continue;
            }
            assert!(
                !LOADING_ATTRS.contains(&attr.as_str()),
                "{what}: <{name} {attr}=\"{value}\"> loads something"
            );
            let lower = value.to_ascii_lowercase();
            assert!(
                !lower.contains("url(")
                    && !lower.contains("http://")
                    && !lower.contains("https://"),
                "{what}: <{name} {attr}=\"{value}\"> refers to a URL"
            );
        }
    }
    for style in doc.select(&sel("style")) {
        let css = style.text().collect::<String>().to_ascii_lowercase();
        assert!(
            !css.contains("url(") && !css.contains("@import"),
            "{what}: CSS loads something"
        );
    }
    // The shipped scenarios' descriptions name no URL, so none may appear at all.
    assert!(
        !text.contains("http://") && !text.contains("https://"),
        "{what}: a URL in the text"
    );
}

/// Charts each workload kind gets.
fn charts_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "udp" => &["rtt-time", "rtt-cdf", "loss-slices", "jitter-slices"],
        _ => &["latency-cdf", "rate-time", "status-mix", "cache-mix"],
    }
}

/// The number in a table cell, in the summary CSV's unit.
fn cell_value(col: &str, text: &str) -> Option<f64> {
    let mut parts = text.split_whitespace();
    let v: f64 = parts.next()?.parse().ok()?;
    Some(match (col, parts.next()) {
        ("throughput_bps", Some("Gbit/s")) => v * 1e9,
        ("throughput_bps", Some("Mbit/s")) => v * 1e6,
        ("throughput_bps", Some("kbit/s")) => v * 1e3,
        _ => v,
    })
}

fn check_report(out: &Path, name: &str) {
    let path = out.join(name).join("report.html");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.len() < 2 * 1024 * 1024,
        "{name}: report is {} bytes",
        text.len()
    );
    let doc = Html::parse_document(&text);
    assert!(
        doc.errors.is_empty(),
        "{name}: HTML parse errors {:?}",
        doc.errors
    );
    assert_loads_nothing(&doc, &text, name);

    // Each link has its own settings line: a repeated key (`link`) shows
    // each of its lines, not the first one again.
    let links: Vec<String> = doc
        .select(&sel("table.settings tr"))
        .filter(|tr| tr.select(&sel("th")).any(|th| th.inner_html() == "link"))
        .filter_map(|tr| tr.select(&sel("td")).next().map(|td| td.inner_html()))
        .collect();
    let distinct: BTreeSet<&String> = links.iter().collect();
    assert_eq!(distinct.len(), links.len(), "{name}: link lines {links:?}");

    let rows = read_csv(&out.join(format!("{name}.csv")));
    assert!(!rows.is_empty());
    let variants: BTreeSet<&str> = rows.iter().map(|r| r["variant"].as_str()).collect();
    let mut workloads: Vec<(&str, &str)> = Vec::new();
    for r in &rows {
        if !workloads.iter().any(|w| w.0 == r["workload"]) {
            workloads.push((&r["workload"], &r["kind"]));
        }
    }
    let figures: Vec<ElementRef> = doc.select(&sel("figure.chart")).collect();
    for (workload, kind) in &workloads {
        let mut expected: Vec<String> = charts_of(kind).iter().map(|c| c.to_string()).collect();
        if variants.len() > 1 {
            expected.push("metric-latency_p50_ms".into());
            expected.push("metric-latency_p99_ms".into());
        }
        for chart in &expected {
            let found: Vec<&ElementRef> = figures
                .iter()
                .filter(|f| {
                    f.value().attr("data-workload") == Some(workload)
                        && f.value().attr("data-chart") == Some(chart)
                })
                .collect();
            assert_eq!(found.len(), 1, "{name}: one {chart} chart for {workload}");
            let fig = found[0];
            assert_eq!(
                fig.select(&sel("svg")).count(),
                1,
                "{name}/{workload}/{chart}: one svg"
            );
            assert!(
                fig.select(&sel("svg title")).next().is_some(),
                "{name}: svg has a title"
            );
            let drawn: BTreeSet<&str> = fig
                .select(&sel("li[data-variant]"))
                .filter_map(|li| li.value().attr("data-variant"))
                .collect();
            assert_eq!(
                drawn, variants,
                "{name}/{workload}/{chart}: every variant drawn"
            );
        }
    }

    // The summary table holds the CSV's numbers (to the decimals it shows).
    let mut checked = 0;
    for tr in doc.select(&sel("table.summary tr[data-workload]")) {
        let (variant, workload, repetition) = (
            tr.value().attr("data-variant").expect("variant"),
            tr.value().attr("data-workload").expect("workload"),
            tr.value().attr("data-repetition").expect("repetition"),
        );
        let row = rows
            .iter()
            .find(|r| {
                r["variant"] == variant
                    && r["workload"] == workload
                    && r["repetition"] == repetition
            })
            .unwrap_or_else(|| panic!("{name}: table row {variant}/{workload} not in the CSV"));
        for td in tr.select(&sel("td[data-col]")) {
            let col = td.value().attr("data-col").expect("col");
            let shown = td.text().collect::<String>();
            let csv = &row[col];
            if csv.is_empty() {
                assert_eq!(shown, "-", "{name}: {workload}.{col} is empty in the CSV");
                continue;
            }
            let want: f64 = csv.parse().expect("number in the CSV");
            let got =
                cell_value(col, &shown).unwrap_or_else(|| panic!("{name}: {col} cell {shown:?}"));
            // Half a unit of the last decimal shown.
            let decimals = shown
                .split_whitespace()
                .next()
                .and_then(|n| n.split('.').nth(1))
                .map_or(0, str::len);
            let unit = cell_value(
                col,
                &shown.replacen(|c: char| c.is_ascii_digit() || c == '.', "", 0),
            )
            .unwrap_or(1.0);
            let scale = if col == "throughput_bps" {
                got / shown
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|n| *n != 0.0)
                    .unwrap_or(1.0)
            } else {
                unit.max(1.0)
            };
            let tolerance = 0.5 * 10f64.powi(-(decimals as i32)) * scale + 1e-9;
            assert!(
                (got - want).abs() <= tolerance,
                "{name}: {variant}/{workload}.{col}: table {shown:?}, CSV {csv}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= rows.len() * 8,
        "{name}: only {checked} cells checked"
    );
}

#[test]
fn every_shipped_scenario_leaves_a_self_contained_report() {
    let out = shipped();
    for name in SHIPPED {
        check_report(out, name);
        let info: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(name).join("run.json")).expect("run.json"),
        )
        .expect("run.json is JSON");
        assert_eq!(info["scenario"], *name);
        assert!(info["host"]["cores"].as_u64().unwrap_or(0) >= 1);
        assert_eq!(info["netrun_version"], env!("CARGO_PKG_VERSION"));
    }
    // Expectation verdicts are in the report.
    let text = std::fs::read_to_string(out.join("basic").join("report.html")).expect("report");
    let doc = Html::parse_document(&text);
    let verdicts: Vec<String> = doc
        .select(&sel("table.expectations td.pass"))
        .map(|td| td.text().collect())
        .collect();
    assert_eq!(verdicts.len(), 3, "basic has 3 expectations, all passing");
}

/// Distinct colours of a PNG screenshot.
fn distinct_colours(png_path: &Path) -> usize {
    let file = std::io::BufReader::new(std::fs::File::open(png_path).expect("screenshot"));
    let mut reader = png::Decoder::new(file).read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let bytes = &buf[..info.buffer_size()];
    let step = info.color_type.samples()
        * if info.bit_depth == png::BitDepth::Sixteen {
            2
        } else {
            1
        };
    bytes
        .chunks(step)
        .map(|p| p.to_vec())
        .collect::<BTreeSet<_>>()
        .len()
}

#[test]
fn chromium_renders_the_cache_report() {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        eprintln!(
            "skipped: /usr/bin/chromium is absent (apt-get install chromium to run this test)"
        );
        return;
    }
    let report = shipped().join("cache").join("report.html");
    let tmp = tempfile::tempdir().expect("tempdir");
    let shot = tmp.path().join("cache.png");
    let status = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            tmp.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1440,1800")
        .arg(format!("file://{}", report.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("chromium runs");
    assert!(status.success(), "chromium failed: {status}");
    let colours = distinct_colours(&shot);
    // A blank page has one colour; text and the series colours give hundreds.
    assert!(colours > 50, "the screenshot has only {colours} colours");
}

/// A scenario small enough to run three times in a test.
fn tiny(dir: &Path) -> PathBuf {
    let www = root().join("www");
    let body = format!(
        r#"name = "tiny"
description = "a tiny run"
[topology]
www = "{}"
[[workload]]
kind = "udp"
name = "qos"
count = 40
interval = "1ms"
timeout = "1s"
[[workload]]
kind = "http"
name = "page"
requests = 40
concurrency = 2
"#,
        www.display()
    );
    let p = dir.join("tiny.toml");
    std::fs::write(&p, body).expect("write scenario");
    p
}

#[test]
fn report_rebuilds_from_disk_and_draws_runs_on_shared_axes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = tiny(tmp.path());
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let run_into = |out: &Path| {
        netrun()
            .arg(&scenario)
            .arg("--quiet")
            .arg("--out")
            .arg(out)
            .assert()
            .code(0);
    };
    run_into(&a);
    // b is checked against a: its report carries the baseline verdicts.
    let gated = netrun()
        .arg(&scenario)
        .args(["--quiet", "--baseline"])
        .arg(&a)
        .arg("--out")
        .arg(&b)
        .output()
        .expect("netrun runs");
    assert!(matches!(gated.status.code(), Some(0 | 1)), "{gated:?}");
    let page = std::fs::read_to_string(b.join("tiny/report.html")).expect("report");
    let doc = Html::parse_document(&page);
    let verdicts: Vec<String> = doc
        .select(&sel("table.baseline tr td:first-child"))
        .map(|td| td.text().collect())
        .collect();
    assert!(
        !verdicts.is_empty(),
        "the baseline verdicts are in the report"
    );
    assert!(verdicts
        .iter()
        .all(|v| ["better", "worse", "same", "small", "inconclusive"].contains(&v.as_str())));
    run_into(&a);

    // Rebuilt from the folder: the same page as at the end of the run.
    let first = std::fs::read_to_string(a.join("tiny/report.html")).expect("report");
    let rebuilt = tmp.path().join("rebuilt.html");
    netrun()
        .arg("report")
        .arg(a.join("tiny"))
        .arg("--out")
        .arg(&rebuilt)
        .assert()
        .code(0)
        .stdout(format!("{}\n", rebuilt.display()));
    assert_eq!(std::fs::read_to_string(&rebuilt).expect("rebuilt"), first);

    // Two runs side by side: every chart of a workload holds both.
    let both = tmp.path().join("both.html");
    netrun()
        .arg("report")
        .arg(a.join("tiny"))
        .arg(b.join("tiny.csv"))
        .arg("--out")
        .arg(&both)
        .assert()
        .code(0);
    let text = std::fs::read_to_string(&both).expect("report");
    let doc = Html::parse_document(&text);
    for (workload, chart) in [
        ("qos", "rtt-time"),
        ("qos", "rtt-cdf"),
        ("page", "latency-cdf"),
        ("page", "metric-latency_p50_ms"),
    ] {
        let figs: Vec<ElementRef> = doc
            .select(&sel(&format!(
                "figure[data-chart=\"{chart}\"][data-workload=\"{workload}\"]"
            )))
            .collect();
        assert_eq!(figs.len(), 1, "{chart}: one chart for both runs");
        let runs: BTreeSet<&str> = figs[0]
            .select(&sel("li[data-run]"))
            .filter_map(|li| li.value().attr("data-run"))
            .collect();
        assert_eq!(runs.len(), 2, "{chart}: both runs on the same axes");
        // The legend inside the SVG names both runs.
        let svg_text: String = figs[0]
            .select(&sel("svg text"))
            .flat_map(|t| t.text())
            .collect();
        assert!(
            svg_text.contains("a/tiny") && svg_text.contains("b/tiny"),
            "{chart}: {svg_text}"
        );
    }
    assert_eq!(doc.select(&sel("table.summary tr[data-run]")).count(), 4);

    // The history of a/ holds two runs: one dot each per headline metric.
    netrun()
        .arg("report")
        .arg(a.join("history.csv"))
        .assert()
        .code(0);
    let text = std::fs::read_to_string(a.join("history.report.html")).expect("history report");
    let doc = Html::parse_document(&text);
    let fig = doc
        .select(&sel(
            "figure[data-chart=\"metric-latency_p99_ms\"][data-workload=\"qos\"]",
        ))
        .next()
        .expect("p99 over the runs");
    assert_eq!(fig.select(&sel("li[data-run]")).count(), 2);
}

#[test]
fn report_refuses_what_is_not_a_result() {
    let tmp = tempfile::tempdir().expect("tempdir");
    netrun()
        .arg("report")
        .arg(tmp.path().join("nothing"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("does not exist"));
    let samples = tmp.path().join("udp_packets.csv");
    std::fs::write(
        &samples,
        "variant,workload,flow,seq,send_offset_ms,rtt_ms,status\n",
    )
    .expect("write");
    netrun()
        .arg("report")
        .arg(&samples)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("per-sample rows"));
}
