//! Side by side: summary rows of several variants, runs or files in one
//! table, each figure after the first with its change, the change's 95 %
//! interval and a verdict (see `gate` for how they are judged). Reading
//! files is the only I/O here.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::gate::{self, fmt_change, fmt_metric, Assessment, Key, Metric, Samples, Side, METRICS};
use crate::metrics::{HttpRequestRow, PacketStatus, SummaryRow, UdpPacketRow};

/// One column of a comparison: the rows (all repetitions) of one variant of
/// one run, and that run's latency samples when they were found.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub label: String,
    pub rows: Vec<SummaryRow>,
    #[serde(skip)]
    pub samples: Option<Samples>,
}

/// Reads a summary CSV (`results/<name>.csv`) or the history
/// (`results/history.csv`, whose `run_id` column tells runs apart). Other
/// netrun files are refused with the name of the file to give instead.
pub fn read_summary(path: &Path) -> anyhow::Result<Vec<(Option<String>, SummaryRow)>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = r
        .headers()
        .with_context(|| format!("cannot read {}", path.display()))?
        .clone();
    refuse_other_files(path, &headers)?;
    if !headers.iter().any(|h| h == "workload") {
        anyhow::bail!(
            "{} is not a netrun summary CSV (it has no `workload` column); give results/<scenario>.csv",
            path.display()
        );
    }
    let run_col = headers.iter().position(|h| h == "run_id");
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: cannot read row {}", path.display(), i + 2))?;
        let row: SummaryRow = rec
            .deserialize(Some(&headers))
            .with_context(|| format!("{}: row {} is not a summary row", path.display(), i + 2))?;
        out.push((run_col.and_then(|c| rec.get(c)).map(str::to_string), row));
    }
    Ok(out)
}

/// Per-sample and statistics files have a `workload` column too; comparing
/// them as summaries would make no sense, so name the right file.
fn refuse_other_files(path: &Path, headers: &csv::StringRecord) -> anyhow::Result<()> {
    let has = |c: &str| headers.iter().any(|h| h == c);
    let what = if has("seq") && has("rtt_ms") {
        "the per-datagram file of a run"
    } else if has("client") && has("latency_ms") {
        "the per-request file of a run"
    } else if has("ci_method") {
        "the statistics of a run"
    } else {
        return Ok(());
    };
    let summary = summary_beside(path);
    anyhow::bail!(
        "{} is {what}, not a summary; give the summary instead: {}",
        path.display(),
        summary.display()
    )
}

/// `results/basic/udp_packets.csv` → `results/basic.csv`;
/// `results/basic.stats.csv` → `results/basic.csv`.
fn summary_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(stem) = name.strip_suffix(".stats.csv") {
        return path.with_file_name(format!("{stem}.csv"));
    }
    match path.parent() {
        Some(dir) if dir.file_name().is_some() => dir.with_extension("csv"),
        _ => PathBuf::from("results/<scenario>.csv"),
    }
}

/// The latency samples of the run whose summary is `summary`
/// (`results/basic.csv` → `results/basic/*.csv`); `None` when its folder
/// holds none. Samples are only used for runs of one repetition.
pub fn read_samples(summary: &Path) -> anyhow::Result<Option<Samples>> {
    let dir = summary.with_extension("");
    read_samples_dir(&dir)
}

/// Reads `http_requests.csv` (completed requests) and `udp_packets.csv`
/// (in-time replies) of a results folder. A missing file gives nothing; a
/// row that cannot be read is an error naming file and line, never skipped
/// (a gate must not judge a silently shortened sample).
pub fn read_samples_dir(dir: &Path) -> anyhow::Result<Option<Samples>> {
    let mut out = Samples::new();
    let mut found = false;
    if let Some(mut r) = open_samples(&dir.join("http_requests.csv"))? {
        found = true;
        for (i, row) in r.deserialize::<HttpRequestRow>().enumerate() {
            let row = row.with_context(|| sample_fault(dir, "http_requests.csv", i))?;
            if row.error.is_none() && row.status.is_some() {
                out.entry((row.variant, row.workload))
                    .or_default()
                    .push(row.latency_ms);
            }
        }
    }
    if let Some(mut r) = open_samples(&dir.join("udp_packets.csv"))? {
        found = true;
        for (i, row) in r.deserialize::<UdpPacketRow>().enumerate() {
            let row = row.with_context(|| sample_fault(dir, "udp_packets.csv", i))?;
            if let (PacketStatus::Ok | PacketStatus::Reordered, Some(rtt)) =
                (row.status, row.rtt_ms)
            {
                out.entry((row.variant, row.workload))
                    .or_default()
                    .push(rtt);
            }
        }
    }
    Ok(found.then_some(out))
}

/// A sample file's reader, or `None` when there is no such file.
fn open_samples(path: &Path) -> anyhow::Result<Option<csv::Reader<std::fs::File>>> {
    match std::fs::File::open(path) {
        Ok(f) => Ok(Some(csv::Reader::from_reader(f))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn sample_fault(dir: &Path, file: &str, i: usize) -> String {
    format!(
        "{}: line {} is not a sample row (the file is damaged; run again)",
        dir.join(file).display(),
        i + 2
    )
}

/// Groups a file's rows into columns: one per run (history) and variant.
pub fn columns(
    source: &str,
    rows: Vec<(Option<String>, SummaryRow)>,
    samples: Option<Samples>,
) -> Vec<Column> {
    let mut cols: Vec<Column> = Vec::new();
    for (run, row) in rows {
        let label = match &run {
            Some(run) => format!("{source}:{run}:{}", row.variant),
            None => format!("{source}:{}", row.variant),
        };
        match cols.iter_mut().find(|c| c.label == label) {
            Some(c) => c.rows.push(row),
            None => cols.push(Column {
                label,
                rows: vec![row],
                samples: samples.clone(),
            }),
        }
    }
    cols
}

/// The rows of `key`'s scenario and workload in column `c`.
fn rows_of(c: &Column, scenario: &str, workload: &str) -> Vec<SummaryRow> {
    c.rows
        .iter()
        .filter(|r| r.scenario == scenario && r.workload == workload)
        .cloned()
        .collect()
}

/// Judges every metric of every later column against the first column
/// that has the same scenario and workload.
pub fn assessments(cols: &[Column], tolerance: f64) -> Vec<(usize, Assessment)> {
    let mut out = Vec::new();
    for (scenario, workload, _, _) in sections(cols) {
        let present: Vec<(usize, Vec<SummaryRow>)> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| (i, rows_of(c, &scenario, &workload)))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        let Some((first, base)) = present.first() else {
            continue;
        };
        for (i, rows) in &present[1..] {
            let key = Key::of(&rows[0]);
            for metric in METRICS {
                let b = side_of(&cols[*first], base, &Key::of(&base[0]));
                let n = side_of(&cols[*i], rows, &key);
                if let Some(a) = gate::assess(&key, metric, b, n, tolerance) {
                    out.push((*i, a));
                }
            }
        }
    }
    out
}

fn side_of<'a>(c: &'a Column, rows: &'a [SummaryRow], key: &Key) -> Side<'a> {
    Side {
        rows,
        samples: c
            .samples
            .as_ref()
            .and_then(|s| s.get(&(key.variant.clone(), key.workload.clone())))
            .map(Vec::as_slice),
    }
}

/// (scenario, workload, kind, target) in first-seen order: rows are never
/// matched across scenarios.
fn sections(cols: &[Column]) -> Vec<(String, String, String, String)> {
    let mut out: Vec<(String, String, String, String)> = Vec::new();
    for r in cols.iter().flat_map(|c| &c.rows) {
        if !out.iter().any(|s| s.0 == r.scenario && s.1 == r.workload) {
            out.push((
                r.scenario.clone(),
                r.workload.clone(),
                r.kind.clone(),
                r.target.clone(),
            ));
        }
    }
    out
}

fn median_of(rows: &[SummaryRow], metric: &Metric) -> Option<f64> {
    let v: Vec<f64> = rows.iter().filter_map(|r| r.metric(metric.name)).collect();
    crate::stats::quantile(&v, 0.5)
}

/// Renders the columns side by side: per scenario and workload, one line per
/// metric that any column has; each later column shows its figure, the
/// change against the first with its interval, and the verdict.
pub fn render(cols: &[Column], tolerance: f64) -> String {
    let judged = assessments(cols, tolerance);
    let all = sections(cols);
    let scenarios = {
        let mut s: Vec<&str> = all.iter().map(|s| s.0.as_str()).collect();
        s.dedup();
        s.len()
    };
    let mut out = String::new();
    for (si, (scenario, workload, kind, target)) in all.iter().enumerate() {
        if si > 0 {
            out.push('\n');
        }
        let in_scenario = if scenarios > 1 {
            format!(" in {scenario}")
        } else {
            String::new()
        };
        let _ = writeln!(out, "{workload} ({kind} -> {target}){in_scenario}");
        let present: Vec<(usize, Vec<SummaryRow>)> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| (i, rows_of(c, scenario, workload)))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        let most = present.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
        if most > 1 {
            let _ = writeln!(out, "  medians of up to {most} repetitions");
        }
        let mut table: Vec<Vec<String>> = vec![std::iter::once("metric".to_string())
            .chain(present.iter().map(|(i, _)| cols[*i].label.clone()))
            .collect()];
        for metric in METRICS {
            let values: Vec<Option<f64>> = present
                .iter()
                .map(|(_, rows)| median_of(rows, metric))
                .collect();
            if values.iter().all(Option::is_none) {
                continue;
            }
            let mut line = vec![metric.name.to_string()];
            for ((i, rows), v) in present.iter().zip(&values) {
                let Some(v) = v else {
                    line.push("-".into());
                    continue;
                };
                let judged_here = judged.iter().find(|(c, a)| {
                    c == i
                        && a.metric == metric.name
                        && a.variant == rows[0].variant
                        && a.workload == *workload
                        && a.scenario == *scenario
                });
                line.push(match judged_here {
                    Some((_, a)) => format!(
                        "{} {} {}",
                        fmt_metric(metric.name, *v),
                        fmt_change(a),
                        a.verdict_text()
                    ),
                    None => fmt_metric(metric.name, *v),
                });
            }
            table.push(line);
        }
        out.push_str(&super::summary::aligned(&table, 1, "  "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scenario: &str, workload: &str, p99: f64, hit: Option<f64>) -> SummaryRow {
        SummaryRow {
            scenario: scenario.into(),
            workload: workload.into(),
            variant: "default".into(),
            kind: "http".into(),
            target: "proxy".into(),
            latency_p99_ms: Some(p99),
            cache_hit_ratio: hit,
            cache_hits: hit.map(|h| (h * 100.0) as u64),
            received: Some(100),
            sent: Some(100),
            throughput_bps: Some(5.87e7),
            ..Default::default()
        }
    }

    #[test]
    fn columns_group_runs_and_variants() {
        let mut r1 = row("basic", "a", 1.0, None);
        r1.variant = "cache.enabled=true".into();
        let mut r2 = r1.clone();
        r2.variant = "cache.enabled=false".into();
        let cols = columns(
            "basic",
            vec![
                (None, r1.clone()),
                (None, r2),
                (None, row("basic", "b", 1.0, None)),
            ],
            None,
        );
        let labels: Vec<&str> = cols.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "basic:cache.enabled=true",
                "basic:cache.enabled=false",
                "basic:default"
            ]
        );
        let hist = columns(
            "history",
            vec![(Some("r1".into()), r1.clone()), (Some("r2".into()), r1)],
            None,
        );
        assert_eq!(hist.len(), 2);
    }

    #[test]
    fn table_shows_changes_intervals_verdicts_and_units() {
        let cols = vec![
            Column {
                label: "on".into(),
                rows: vec![row("s", "page", 2.0, Some(0.9))],
                samples: None,
            },
            Column {
                label: "off".into(),
                rows: vec![row("s", "page", 3.0, Some(0.0))],
                samples: None,
            },
        ];
        let text = render(&cols, 0.25);
        assert!(text.starts_with("page (http -> proxy)\n"), "{text}");
        assert!(
            text.contains("58.70 Mbit/s"),
            "units as in the summary: {text}"
        );
        let hit = text
            .lines()
            .find(|l| l.contains("cache_hit_ratio"))
            .unwrap();
        // 90 of 100 hits, then 0 of 100: Newcombe's interval, clearly worse.
        assert!(
            hit.contains("0.000 -100.0% [") && hit.ends_with("worse"),
            "{hit}"
        );
        let p99 = text.lines().find(|l| l.contains("latency_p99_ms")).unwrap();
        assert!(
            p99.ends_with("3.000 +50.0% inconclusive"),
            "one value each: {p99}"
        );
        assert!(
            !text.contains("jitter_ms"),
            "metrics no column has are left out"
        );
    }

    #[test]
    fn rows_of_different_scenarios_are_never_compared() {
        let cols = columns(
            "history",
            vec![
                (Some("r1".into()), row("basic", "page", 1.0, None)),
                (Some("r2".into()), row("cache", "page", 9.0, None)),
            ],
            None,
        );
        let text = render(&cols, 0.25);
        assert!(text.contains("page (http -> proxy) in basic"), "{text}");
        assert!(text.contains("page (http -> proxy) in cache"), "{text}");
        assert!(!text.contains('%'), "no change across scenarios: {text}");
    }

    #[test]
    fn sample_files_are_refused_with_the_summary_to_use() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("basic");
        std::fs::create_dir(&sub).unwrap();
        let p = sub.join("udp_packets.csv");
        std::fs::write(
            &p,
            "variant,workload,flow,seq,send_offset_ms,rtt_ms,status\ndefault,qos,0,0,0.0,0.2,ok\n",
        )
        .unwrap();
        let e = format!("{:#}", read_summary(&p).unwrap_err());
        assert!(e.contains("per-datagram"), "{e}");
        assert!(
            e.contains(&dir.path().join("basic.csv").display().to_string()),
            "{e}"
        );
        let samples = read_samples(&dir.path().join("basic.csv"))
            .unwrap()
            .unwrap();
        assert_eq!(samples[&("default".into(), "qos".into())], [0.2]);
    }

    /// A damaged sample row is an error naming file and line, never skipped
    /// (the gate would judge a shortened sample without a word).
    #[test]
    fn a_damaged_sample_row_is_an_error_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("udp_packets.csv"),
            "variant,workload,flow,seq,send_offset_ms,rtt_ms,status\n\
             default,qos,0,0,0.0,0.2,ok\ndefault,qos,0,1,zero,0.3,ok\n",
        )
        .unwrap();
        let e = format!("{:#}", read_samples_dir(dir.path()).unwrap_err());
        assert!(e.contains("udp_packets.csv: line 3"), "{e}");
        assert!(read_samples_dir(&dir.path().join("none"))
            .unwrap()
            .is_none());
    }
}
