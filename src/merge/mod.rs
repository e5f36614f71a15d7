//! `netrun merge`: joins the results folders of `--shard` runs (each ran
//! some of a scenario's variant runs) or `--segment` runs (each applied a
//! share of every workload's load at once) into one folder that looks like
//! one unsharded run: summary, stats, sample CSVs, histograms, history,
//! run.json and the report. Every folder is checked before anything is written.

mod checks;
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
use crate::report::run_record::{AgentStart, ExpectationInfo, RunInfo, UnitInfo};
use crate::runner::output::{append_history, HISTOGRAMS_CSV};
use crate::scenario::CompareOp;
pub use inputs::{Group, Plan};
use inputs::{Kind, RunPart};

/// What was merged for one scenario.
#[derive(Debug, Clone)]
pub struct Merged {
    pub scenario: String,
    /// `shards` or `segments`.
    pub kind: &'static str,
    /// How many folders held a part of it.
    pub parts: usize,
    /// Each part as it was taken: `shard 1/2 from q1: run <id>, finished <time>`.
    pub taken: Vec<String>,
    /// What `--partial` merged without (empty when complete).
    pub missing: Vec<String>,
    pub summary_csv: PathBuf,
    pub results_dir: PathBuf,
    pub rows: Vec<SummaryRow>,
    pub expectations: Vec<ExpectationInfo>,
    /// The run record written (`run.json`).
    pub record: RunInfo,
    /// The rebuilt report, or why it could not be written.
    pub report: Result<PathBuf, String>,
}

/// The checked parts of every scenario in `inputs` (results folders).
/// Invalid inputs (a folder given twice, `out` among them, overlapping or
/// missing shards, mixed scenario versions, links, a newer interrupted
/// run) are refused with an input error; nothing is written. With
/// `partial`, missing shards are merged without and the result says so.
pub fn plan(inputs: &[PathBuf], out: &Path, partial: bool) -> Result<Plan, crate::Error> {
    inputs::collect(inputs, out, partial)
}

/// Reads, checks and joins every scenario's parts, then writes them into
/// `out`: all or nothing for faults in the inputs (every file is read and
/// checked before the first is written), exit 2 naming the file.
pub fn write(plan: &Plan, out: &Path) -> anyhow::Result<Vec<Merged>> {
    let run_id = format!("merged-{}", crate::runner::new_run_id());
    let joined = plan
        .groups
        .iter()
        .map(|g| Joined::new(g, &plan.missing, &run_id))
        .collect::<anyhow::Result<Vec<Joined>>>()?;
    crate::runner::output::check_out(out)?;
    let mut done = Vec::new();
    for j in &joined {
        done.push(j.write(out)?);
    }
    // The history last, once every scenario's files stand.
    let timestamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let rows: Vec<SummaryRow> = joined.iter().flat_map(|j| j.rows.clone()).collect();
    append_history(&out.join("history.csv"), &rows, &run_id, &timestamp)?;
    for (j, m) in joined.iter().zip(&mut done) {
        m.report = html::after_run(&j.group.scenario, &m.summary_csv, &m.results_dir)
            .map_err(|e| format!("{e:#}"));
    }
    Ok(done)
}

/// [`plan`], then [`write`].
pub fn merge(inputs: &[PathBuf], out: &Path, partial: bool) -> anyhow::Result<Vec<Merged>> {
    write(&plan(inputs, out, partial)?, out)
}

/// One scenario's parts read, checked and joined, in memory.
struct Joined<'a> {
    group: &'a Group,
    rows: Vec<SummaryRow>,
    hists: Vec<HistogramRow>,
    http: Vec<HttpRequestRow>,
    udp: Vec<UdpPacketRow>,
    logs: Vec<u8>,
    info: RunInfo,
}

impl<'a> Joined<'a> {
    fn new(g: &'a Group, missing: &[String], run_id: &str) -> anyhow::Result<Self> {
        let order = g.order();
        let parts = g
            .parts
            .iter()
            .map(Loaded::read)
            .collect::<anyhow::Result<Vec<Loaded>>>()?;
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
        let mut info = merged_info(g, &rows, run_id);
        info.partial = g.missing.iter().chain(missing).cloned().collect();
        Ok(Joined {
            group: g,
            logs: join_logs(&parts),
            rows,
            hists,
            http,
            udp,
            info,
        })
    }

    /// Writes the scenario's files (each atomically) and its run record.
    fn write(&self, out: &Path) -> anyhow::Result<Merged> {
        let g = self.group;
        let summary_csv = out.join(format!("{}.csv", g.scenario));
        let dir = out.join(&g.scenario);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        write_csv(dir.join("http_requests.csv"), &self.http)?;
        write_csv(dir.join("udp_packets.csv"), &self.udp)?;
        write_csv(dir.join(HISTOGRAMS_CSV), &self.hists)?;
        let mut log = crate::report::atomic::AtomicFile::create(dir.join("services.log"))?;
        std::io::Write::write_all(&mut log, &self.logs)?;
        log.commit()?;
        write_csv(&summary_csv, &self.rows)?;
        write_csv(
            out.join(format!("{}.stats.csv", g.scenario)),
            &crate::report::stats_csv::stats_rows(&self.rows),
        )?;
        self.info.write(&dir)?;
        Ok(Merged {
            scenario: g.scenario.clone(),
            kind: g.kind.as_str(),
            parts: g.parts.len(),
            taken: g.parts.iter().map(taken).collect(),
            missing: self.info.partial.clone(),
            summary_csv,
            results_dir: dir,
            rows: self.rows.clone(),
            expectations: self.info.expectations.clone(),
            record: self.info.clone(),
            report: Err("not written yet".to_string()),
        })
    }
}

/// Which run of a folder was taken for a part.
fn taken(p: &RunPart) -> String {
    let older = if p.older_interrupted {
        " (an older interrupted run beside it was left out)"
    } else {
        ""
    };
    format!(
        "{} from {}: run {}, finished {}{older}",
        p.label(),
        p.input.display(),
        p.info.run_id,
        p.info.finished_at
    )
}

/// The files of one part, read and checked against each other.
struct Loaded<'a> {
    part: &'a RunPart,
    rows: Vec<SummaryRow>,
    http: Vec<HttpRequestRow>,
    udp: Vec<UdpPacketRow>,
    hists: Vec<HistogramRow>,
    /// The decoded histogram of each of `hists`.
    decoded: Vec<Histogram<u64>>,
}

impl<'a> Loaded<'a> {
    fn read(part: &'a RunPart) -> anyhow::Result<Self> {
        let rows = checks::read_summary(&part.summary)?;
        let hist_file = part.dir.join(HISTOGRAMS_CSV);
        let hists: Vec<HistogramRow> = read_rows(&hist_file)?;
        let decoded = checks::histograms(&hist_file, &hists, &rows)?;
        Ok(Loaded {
            part,
            rows,
            http: read_rows(&part.dir.join("http_requests.csv"))?,
            udp: read_rows(&part.dir.join("udp_packets.csv"))?,
            hists,
            decoded,
        })
    }

    /// The decoded histogram of a row's (variant, workload, repetition).
    fn histogram_of(&self, r: &SummaryRow) -> Option<&Histogram<u64>> {
        let i = self.hists.iter().position(|h| {
            h.variant == r.variant && h.workload == r.workload && h.repetition == r.repetition
        })?;
        self.decoded.get(i)
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
        let mut sum = histogram::latency_histogram();
        for l in parts {
            let folder = l.part.input.display();
            let row = l.rows.iter().find(|r| key(r) == key(lead)).ok_or_else(|| {
                crate::Error::input(format!(
                    "{folder} has no row for workload `{}` (variant {}, repetition {}) that the \
                     other segments have; give the folders of one run's segments",
                    lead.workload, lead.variant, lead.repetition
                ))
            })?;
            let file = l.part.dir.join(HISTOGRAMS_CSV);
            let h = l.histogram_of(lead).ok_or_else(|| {
                crate::Error::input(format!(
                    "{} has no histogram for workload `{}`: percentiles cannot be added exactly \
                     without it (rerun the segment with this netrun)",
                    file.display(),
                    lead.workload
                ))
            })?;
            sum.add(h).map_err(|e| {
                crate::Error::input(format!(
                    "{}: workload `{}`: its histogram cannot be added to the others' ({e:?})",
                    file.display(),
                    lead.workload
                ))
            })?;
            same.push(row);
        }
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
fn join_logs(parts: &[Loaded<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in parts {
        let text = std::fs::read(l.part.dir.join("services.log")).unwrap_or_default();
        let head = format!(
            "# netrun merge: {} of {}\n",
            l.part.label(),
            l.part.input.display()
        );
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&text);
    }
    out
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
    info.start = None;
    if let Kind::Segments(_) = g.kind {
        let (agents, skew) = agent_starts(&g.parts);
        info.agents = agents;
        info.start_skew_ms = skew;
    }
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

/// Each agent's `--start-at` record, by segment, and the spread of their
/// starts (when every agent had one).
fn agent_starts(parts: &[RunPart]) -> (Vec<AgentStart>, Option<f64>) {
    let agents = parts
        .iter()
        .map(|p| {
            let segment = p.info.segment.map(|s| s.to_string()).unwrap_or_default();
            AgentStart::new(segment, p.info.start.as_ref())
        })
        .collect();
    let starts = parts
        .iter()
        .map(|p| {
            let s = p.info.start.as_ref()?;
            humantime::parse_rfc3339(&s.started_at).ok()
        })
        .collect::<Option<Vec<_>>>();
    let skew = starts.and_then(|s| {
        let (first, last) = (s.iter().min()?, s.iter().max()?);
        Some(crate::metrics::summary::round3(crate::start_at::signed_ms(
            *first, *last,
        )))
    });
    (agents, skew)
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
