//! `netrun merge`: joins the results folders of `--shard` runs (each ran
//! some of a scenario's variant runs) or `--segment` runs (each applied a
//! share of every workload's load at once) into one folder that looks like
//! one unsharded run: summary, stats, sample CSVs, histograms, history,
//! run.json and the report. Every folder is checked before anything is written.

mod combine;
mod inputs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use hdrhistogram::Histogram;

use crate::metrics::histogram::{self, HistogramRow};
use crate::metrics::records::Tagged;
use crate::metrics::{HttpRequestRow, SummaryRow, UdpPacketRow};
use crate::report::atomic::write_csv;
use crate::report::html::{self};
use crate::report::run_record::{ExpectationInfo, RunInfo, UnitInfo};
use crate::runner::output::{append_history, HISTOGRAMS_CSV};
use crate::scenario::CompareOp;
pub use inputs::Group;
use inputs::{Kind, RunPart};

/// What was merged for one scenario.
#[derive(Debug, Clone)]
pub struct Merged {
    pub scenario: String,
    /// `shards` or `segments`.
    pub kind: &'static str,
    /// How many folders held a part of it.
    pub parts: usize,
    pub summary_csv: PathBuf,
    pub results_dir: PathBuf,
    pub rows: Vec<SummaryRow>,
    pub expectations: Vec<ExpectationInfo>,
    /// The rebuilt report, or why it could not be written.
    pub report: Result<PathBuf, String>,
}

/// The checked parts of every scenario in `inputs` (results folders).
/// Invalid inputs (a folder given twice, `out` among them, overlapping or
/// missing shards, mixed scenario versions) are refused with an input
/// error; nothing is written.
pub fn plan(inputs: &[PathBuf], out: &Path) -> Result<Vec<Group>, crate::Error> {
    inputs::collect(inputs, out)
}

/// Merges each scenario's parts into `out`, one scenario at a time.
pub fn write(groups: &[Group], out: &Path) -> anyhow::Result<Vec<Merged>> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create --out {}", out.display()))?;
    let run_id = format!("merged-{}", crate::runner::new_run_id());
    let mut done = Vec::new();
    for g in groups {
        done.push(merge_group(g, out, &run_id)?);
    }
    Ok(done)
}

/// [`plan`], then [`write`].
pub fn merge(inputs: &[PathBuf], out: &Path) -> anyhow::Result<Vec<Merged>> {
    write(&plan(inputs, out)?, out)
}

/// Reads every part of one scenario, joins them and writes the result.
fn merge_group(g: &Group, out: &Path, run_id: &str) -> anyhow::Result<Merged> {
    let order = g.order();
    let mut parts = Vec::new();
    for p in &g.parts {
        parts.push(Loaded::read(p)?);
    }
    let (rows, hists) = match g.kind {
        Kind::Shards => join_shards(&parts, &order),
        Kind::Segments(_) => add_segments(&parts, &order)?,
    };
    let http = join_samples(
        parts.iter().map(|l| l.http.as_slice()),
        &order,
        g.kind,
        |r: &mut HttpRequestRow, by| r.client += by,
        |r| r.client,
    );
    let udp = join_samples(
        parts.iter().map(|l| l.udp.as_slice()),
        &order,
        g.kind,
        |r: &mut UdpPacketRow, by| r.flow += by,
        |r| r.flow,
    );

    let summary_csv = out.join(format!("{}.csv", g.scenario));
    let dir = out.join(&g.scenario);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_csv(dir.join("http_requests.csv"), &http)?;
    write_csv(dir.join("udp_packets.csv"), &udp)?;
    write_csv(dir.join(HISTOGRAMS_CSV), &hists)?;
    write_csv(&summary_csv, &rows)?;
    write_csv(
        out.join(format!("{}.stats.csv", g.scenario)),
        &crate::report::stats_csv::stats_rows(&rows),
    )?;
    let timestamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    append_history(&out.join("history.csv"), &rows, run_id, &timestamp)?;
    join_logs(&parts, &dir.join("services.log"))?;

    let info = merged_info(g, &rows, run_id);
    info.write(&dir)?;
    let report = html::after_run(&g.scenario, &summary_csv, &dir).map_err(|e| format!("{e:#}"));
    Ok(Merged {
        scenario: g.scenario.clone(),
        kind: g.kind.as_str(),
        parts: g.parts.len(),
        summary_csv,
        results_dir: dir,
        rows,
        expectations: info.expectations,
        report,
    })
}

/// The files of one part, read.
struct Loaded<'a> {
    part: &'a RunPart,
    rows: Vec<SummaryRow>,
    http: Vec<HttpRequestRow>,
    udp: Vec<UdpPacketRow>,
    hists: Vec<HistogramRow>,
}

impl<'a> Loaded<'a> {
    fn read(part: &'a RunPart) -> anyhow::Result<Self> {
        let rows = crate::report::compare::read_summary(&part.summary)
            .map_err(|e| crate::Error::input(format!("{e:#}")))?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        Ok(Loaded {
            part,
            rows,
            http: read_rows(&part.dir.join("http_requests.csv"))?,
            udp: read_rows(&part.dir.join("udp_packets.csv"))?,
            hists: read_rows(&part.dir.join(HISTOGRAMS_CSV))?,
        })
    }
}

/// Every row of a CSV file; a missing file has none.
fn read_rows<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let mut r = match csv::Reader::from_path(path) {
        Ok(r) => r,
        Err(e) => match e.kind() {
            csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Vec::new())
            }
            _ => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        },
    };
    let mut out = Vec::new();
    for (i, row) in r.deserialize().enumerate() {
        out.push(row.map_err(|e| {
            crate::Error::input(format!(
                "{}: row {} cannot be read: {e}",
                path.display(),
                i + 2
            ))
        })?);
    }
    Ok(out)
}

/// A unit's position in the whole scenario's run order, by (variant, repetition).
type Order = HashMap<(String, u32), usize>;

fn position(order: &Order, variant: &str, repetition: Option<u32>) -> usize {
    order
        .get(&(variant.to_string(), repetition.unwrap_or(0)))
        .copied()
        .unwrap_or(usize::MAX)
}

/// Shards: every unit's rows, in the whole run's order (a stable sort keeps
/// a unit's workloads in their own order).
fn join_shards(parts: &[Loaded<'_>], order: &Order) -> (Vec<SummaryRow>, Vec<HistogramRow>) {
    let mut rows: Vec<SummaryRow> = parts.iter().flat_map(|l| l.rows.clone()).collect();
    rows.sort_by_key(|r| position(order, &r.variant, Some(r.repetition)));
    let mut hists: Vec<HistogramRow> = parts.iter().flat_map(|l| l.hists.clone()).collect();
    hists.sort_by_key(|h| position(order, &h.variant, Some(h.repetition)));
    (rows, hists)
}

/// Segments: for each of the first segment's rows, the agents' rows of the
/// same variant, workload and repetition added up, with their histograms.
fn add_segments(
    parts: &[Loaded<'_>],
    order: &Order,
) -> anyhow::Result<(Vec<SummaryRow>, Vec<HistogramRow>)> {
    let Some(first) = parts.first() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let key = |r: &SummaryRow| (r.variant.clone(), r.workload.clone(), r.repetition);
    let mut rows = Vec::new();
    let mut hists = Vec::new();
    for lead in &first.rows {
        let mut same = Vec::new();
        let mut sum: Option<Histogram<u64>> = None;
        for l in parts {
            let folder = l.part.input.display();
            let row = l.rows.iter().find(|r| key(r) == key(lead)).ok_or_else(|| {
                crate::Error::input(format!(
                    "{folder} has no row for workload `{}` (variant {}, repetition {}) that the \
                     other segments have; give the folders of one run's segments",
                    lead.workload, lead.variant, lead.repetition
                ))
            })?;
            let h = l
                .hists
                .iter()
                .find(|h| (h.variant.clone(), h.workload.clone(), h.repetition) == key(lead))
                .ok_or_else(|| {
                    crate::Error::input(format!(
                        "{folder}/{}/{HISTOGRAMS_CSV} has no histogram for workload `{}`: \
                         percentiles cannot be added exactly without it (rerun the segment with \
                         this netrun)",
                        l.part.scenario, lead.workload
                    ))
                })?;
            let h = histogram::decode(&h.histogram).map_err(|e| {
                crate::Error::input(format!(
                    "{folder}/{}/{HISTOGRAMS_CSV}: workload `{}`: {e:#}",
                    l.part.scenario, lead.workload
                ))
            })?;
            match &mut sum {
                None => sum = Some(h),
                Some(s) => s
                    .add(&h)
                    .map_err(|e| anyhow::anyhow!("cannot add histograms: {e:?}"))?,
            }
            same.push(row);
        }
        let sum = sum.unwrap_or_else(histogram::latency_histogram);
        rows.push(combine::add_rows(&same, &sum));
        hists.push(HistogramRow::new(
            &lead.variant,
            &lead.workload,
            lead.repetition,
            &sum,
        ));
    }
    rows.sort_by_key(|r| position(order, &r.variant, Some(r.repetition)));
    hists.sort_by_key(|h| position(order, &h.variant, Some(h.repetition)));
    Ok((rows, hists))
}

/// The per-sample rows of every part in the whole run's order; for
/// segments, the agents of each unit one after another, their client or
/// flow numbers shifted past the previous agents' so they stay distinct.
fn join_samples<'a, T: Clone + Tagged + 'a>(
    parts: impl Iterator<Item = &'a [T]>,
    order: &Order,
    kind: Kind,
    shift: impl Fn(&mut T, u32),
    id: impl Fn(&T) -> u32,
) -> Vec<T> {
    let mut all: Vec<(usize, usize, T)> = Vec::new();
    // Per (unit, workload): the first id free for the next agent.
    let mut next: HashMap<(usize, String), u32> = HashMap::new();
    for (k, rows) in parts.enumerate() {
        let mut used: HashMap<(usize, String), u32> = HashMap::new();
        for r in rows {
            let pos = position(order, r.variant(), r.repetition());
            let mut r = r.clone();
            if let Kind::Segments(_) = kind {
                let w = (pos, r.workload().to_string());
                shift(&mut r, next.get(&w).copied().unwrap_or(0));
                let top = used.entry(w).or_insert(0);
                *top = (*top).max(id(&r) + 1);
            }
            all.push((pos, k, r));
        }
        next.extend(used);
    }
    // Shards: a unit lies in one part, so sorting by position keeps each
    // part's order; segments: by position, then agent.
    all.sort_by_key(|(pos, k, _)| (*pos, *k));
    all.into_iter().map(|(_, _, r)| r).collect()
}

/// The parts' `services.log`s one after another, each under a line naming its folder.
fn join_logs(parts: &[Loaded<'_>], to: &Path) -> anyhow::Result<()> {
    let mut file = crate::report::atomic::AtomicFile::create(to)?;
    for l in parts {
        let text = std::fs::read_to_string(l.part.dir.join("services.log")).unwrap_or_default();
        let head = format!(
            "# netrun merge: {} of {}\n",
            l.part.label(),
            l.part.input.display()
        );
        std::io::Write::write_all(&mut file, head.as_bytes())?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
    }
    file.commit()
}

/// The merged run's `run.json`: the first part's description of the whole
/// scenario, every unit, the parts it came from, and the expectations
/// (shards: each shard's own, in run order; segments: checked again
/// against the added-up rows, since each agent saw only its share).
fn merged_info(g: &Group, rows: &[SummaryRow], run_id: &str) -> RunInfo {
    let mut info = g.parts[0].info.clone();
    info.run_id = run_id.to_string();
    info.finished_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    info.interrupted =
        g.parts.iter().any(|p| p.info.interrupted) || rows.iter().any(|r| r.interrupted);
    info.shard = None;
    info.segment = None;
    info.baseline = None;
    info.merged_from = g
        .parts
        .iter()
        .map(|p| format!("{} ({})", p.input.display(), p.label()))
        .collect();
    let mut units: Vec<UnitInfo> = match g.kind {
        Kind::Shards => g.parts.iter().flat_map(|p| p.info.units.clone()).collect(),
        Kind::Segments(_) => info.units.clone(),
    };
    units.sort_by_key(|u| u.position);
    info.units = units;
    let order = g.order();
    info.expectations = match g.kind {
        Kind::Shards => {
            let mut e: Vec<ExpectationInfo> = g
                .parts
                .iter()
                .flat_map(|p| p.info.expectations.clone())
                .collect();
            e.sort_by_key(|e| position(&order, &e.variant, Some(e.repetition)));
            e
        }
        Kind::Segments(_) => recheck(&info.expectations, rows),
    };
    info
}

/// The expectations of a segment run checked again against the whole's rows:
/// each distinct threshold, against every row of its workload.
fn recheck(agent: &[ExpectationInfo], rows: &[SummaryRow]) -> Vec<ExpectationInfo> {
    let mut rules: Vec<(String, String, String)> = Vec::new();
    for e in agent {
        let rule = (e.workload.clone(), e.metric.clone(), e.expected.clone());
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    let mut out = Vec::new();
    for r in rows.iter().filter(|r| !r.interrupted) {
        for (workload, metric, expected) in rules.iter().filter(|(w, _, _)| *w == r.workload) {
            let Some((op, value)) = parse_threshold(expected) else {
                continue;
            };
            let actual = r.metric(metric);
            out.push(ExpectationInfo {
                variant: r.variant.clone(),
                repetition: r.repetition,
                workload: workload.clone(),
                metric: metric.clone(),
                expected: expected.clone(),
                actual,
                passed: actual.is_some_and(|a| op.holds(a, value)),
            });
        }
    }
    out
}

/// `<= 1` → (Le, 1.0), as written in run.json.
fn parse_threshold(text: &str) -> Option<(CompareOp, f64)> {
    CompareOp::parse_threshold(text)
        .ok()
        .map(|(op, value, _)| (op, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_as_written() {
        assert_eq!(parse_threshold("<= 1"), Some((CompareOp::Le, 1.0)));
        assert_eq!(parse_threshold("< 50"), Some((CompareOp::Lt, 50.0)));
        assert_eq!(parse_threshold("== 0"), Some((CompareOp::Eq, 0.0)));
        assert_eq!(parse_threshold("~ 3"), None);
    }

    #[test]
    fn segment_expectations_are_checked_against_the_whole() {
        let agent = vec![ExpectationInfo {
            workload: "h".into(),
            metric: "errors".into(),
            expected: "== 0".into(),
            passed: true,
            ..ExpectationInfo::default()
        }];
        let rows = vec![SummaryRow {
            variant: "default".into(),
            workload: "h".into(),
            repetition: 1,
            errors: Some(2),
            ..SummaryRow::default()
        }];
        let e = recheck(&agent, &rows);
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].actual, e[0].passed), (Some(2.0), false));
    }
}
