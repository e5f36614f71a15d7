//! Loading a report's inputs from disk: the summary CSV (or the history),
//! the per-sample CSVs, `run.json` and `<name>.stats.csv`. Everything the
//! report shows comes from these files, so a report rebuilt later matches the
//! one written at the end of the run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::metrics::{CacheMark, PacketStatus, SummaryRow, UdpPacketRow};
use crate::report::compare::read_summary;
use crate::report::run_record::RunInfo;

/// One run loaded from disk (for the history: one `run_id`).
#[derive(Debug, Clone, Default)]
pub struct RunData {
    /// How the run is named when several are drawn together.
    pub label: String,
    pub info: Option<RunInfo>,
    pub rows: Vec<SummaryRow>,
    /// From `<name>.stats.csv` when repetitions wrote one.
    pub stats: Vec<StatRow>,
    /// Per variant and workload, in the order first seen.
    pub udp: Vec<UdpSamples>,
    pub http: Vec<HttpSamples>,
    /// The files read, for the report's footer.
    pub files: Vec<PathBuf>,
}

/// The datagrams of one variant's UDP workload.
#[derive(Debug, Clone, Default)]
pub struct UdpSamples {
    pub variant: String,
    pub workload: String,
    pub samples: Vec<UdpSample>,
    /// The file has a `repetition` column: no need to infer repetitions.
    pub recorded_reps: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UdpSample {
    /// Which repetition of the variant sent it, from 0 (from the file's
    /// `repetition` column, or inferred by [`split_udp_repetitions`] in older files).
    pub rep: u32,
    pub flow: u32,
    pub seq: u64,
    /// Send time since the workload started, ms.
    pub send_ms: f64,
    pub rtt_ms: Option<f64>,
    pub status: PacketStatus,
}

/// The most requests of one variant's workload a report keeps: past it,
/// every other one kept is dropped and only every k-th is kept from then on
/// (k doubling each time), so a 10-million-request run draws its charts
/// from evenly spread requests in a few MiB. The counts stay exact.
pub const MAX_HTTP_SAMPLES: usize = 1 << 17;

/// The requests of one variant's HTTP workload.
#[derive(Debug, Clone, Default)]
pub struct HttpSamples {
    pub variant: String,
    pub workload: String,
    /// Every `stride`-th request of the file (all of them up to
    /// [`MAX_HTTP_SAMPLES`]), in file order.
    pub samples: Vec<HttpSample>,
    /// The file has a `repetition` column: no need to infer repetitions.
    pub recorded_reps: bool,
    /// `samples` keeps every `stride`-th request (0 or 1: all of them).
    pub stride: u64,
    /// Requests in the file, and per class of [`series::STATUS_CLASSES`]
    /// and [`series::CACHE_CLASSES`] (filled by the reader; zero when the
    /// samples were made some other way, then counted from `samples`).
    pub total: u64,
    pub status_counts: [u64; 6],
    pub cache_counts: [u64; 4],
}

impl HttpSamples {
    /// Requests the samples stand for.
    pub fn requests(&self) -> u64 {
        self.total.max(self.samples.len() as u64)
    }

    /// What each sample stands for.
    pub fn weight(&self) -> u64 {
        self.stride.max(1)
    }

    pub fn status_mix(&self) -> Vec<(&'static str, u64)> {
        if self.total == 0 {
            return super::series::status_mix(&self.samples);
        }
        super::series::STATUS_CLASSES
            .into_iter()
            .zip(self.status_counts)
            .collect()
    }

    pub fn cache_mix(&self) -> Vec<(&'static str, u64)> {
        if self.total == 0 {
            return super::series::cache_mix(&self.samples);
        }
        super::series::CACHE_CLASSES
            .into_iter()
            .zip(self.cache_counts)
            .collect()
    }

    /// Adds the next request of the file, keeping it when its turn comes.
    fn push(&mut self, sample: HttpSample) {
        self.status_counts[super::series::status_class(sample.status)] += 1;
        self.cache_counts[super::series::cache_class(sample.cache)] += 1;
        let stride = self.weight();
        let index = self.total;
        self.total += 1;
        if index % stride != 0 {
            return;
        }
        self.samples.push(sample);
        if self.samples.len() >= MAX_HTTP_SAMPLES {
            // Kept: requests 0, s, 2s…; keep 0, 2s, 4s… and take every 2s-th.
            let mut i = 0usize;
            self.samples.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride = stride * 2;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HttpSample {
    /// Which repetition of the variant made it, from 0 (from the file's
    /// `repetition` column, or inferred by [`split_http_repetitions`] in older files).
    pub rep: u32,
    /// Start since the workload started, ms (absent in older files).
    pub start_ms: Option<f64>,
    pub latency_ms: f64,
    pub status: Option<u16>,
    pub cache: CacheMark,
}

/// One line of `<name>.stats.csv`: a metric over the repetitions of one
/// variant's workload. Columns are matched by name; unknown ones are ignored.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct StatRow {
    pub scenario: String,
    pub variant: String,
    pub workload: String,
    pub metric: String,
    pub n: Option<u64>,
    pub mean: Option<f64>,
    pub median: Option<f64>,
    pub stddev: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    #[serde(alias = "ci95_low", alias = "ci_lo", alias = "ci_lower")]
    pub ci_low: Option<f64>,
    #[serde(alias = "ci95_high", alias = "ci_hi", alias = "ci_upper")]
    pub ci_high: Option<f64>,
}

/// What a path given to `netrun report` is.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A summary CSV (`results/NAME.csv`) with its folder `results/NAME/`.
    Run { summary: PathBuf, dir: PathBuf },
    /// `results/history.csv`: summary rows of many runs, no samples.
    History(PathBuf),
}

impl Input {
    /// Recognises a scenario's results folder, its summary CSV or the
    /// history; anything else is an error saying what to give instead.
    pub fn resolve(path: &Path) -> anyhow::Result<Input> {
        let hint = "give a scenario's results folder (results/NAME/), its summary (results/NAME.csv) or results/history.csv";
        if path.is_dir() {
            let name = path
                .file_name()
                .with_context(|| format!("{}: {hint}", path.display()))?;
            let summary = path.with_file_name(format!("{}.csv", name.to_string_lossy()));
            if !summary.is_file() {
                anyhow::bail!(
                    "{} has no summary beside it ({} does not exist); {hint}",
                    path.display(),
                    summary.display()
                );
            }
            return Ok(Input::Run {
                summary,
                dir: path.to_path_buf(),
            });
        }
        if !path.is_file() {
            anyhow::bail!("{} does not exist; {hint}", path.display());
        }
        let mut reader = csv::Reader::from_path(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let headers = reader
            .headers()
            .with_context(|| format!("cannot read {}", path.display()))?;
        let has = |c: &str| headers.iter().any(|h| h == c);
        if has("seq") || has("latency_ms") {
            let dir = path.parent().unwrap_or(Path::new("."));
            anyhow::bail!(
                "{} holds per-sample rows, not a summary; give its folder ({}) or the summary beside it",
                path.display(),
                dir.display()
            );
        }
        if !has("workload") || !has("kind") {
            anyhow::bail!("{} is not a netrun summary CSV; {hint}", path.display());
        }
        if has("run_id") {
            return Ok(Input::History(path.to_path_buf()));
        }
        Ok(Input::Run {
            summary: path.to_path_buf(),
            dir: path.with_extension(""),
        })
    }

    /// The runs this input holds (a history holds one per `run_id`).
    pub fn load(&self, label: &str) -> anyhow::Result<Vec<RunData>> {
        match self {
            Input::Run { summary, dir } => Ok(vec![load_run(label, summary, dir)?]),
            Input::History(path) => load_history(path),
        }
    }
}

/// Loads one run: the summary, and whatever of the folder's files exist.
pub fn load_run(label: &str, summary: &Path, dir: &Path) -> anyhow::Result<RunData> {
    let rows: Vec<SummaryRow> = read_summary(summary)?.into_iter().map(|(_, r)| r).collect();
    let mut run = RunData {
        label: label.to_string(),
        rows,
        files: vec![summary.to_path_buf()],
        ..RunData::default()
    };
    run.info = RunInfo::read(dir)?;
    if run.info.is_some() {
        run.files
            .push(dir.join(crate::report::run_record::RUN_JSON));
    }
    let stats = stats_path(summary);
    if stats.is_file() {
        run.stats = read_rows(&stats)?;
        run.files.push(stats);
    }
    let packets = dir.join("udp_packets.csv");
    if packets.is_file() {
        run.udp = group_udp(&packets)?;
        run.udp
            .iter_mut()
            .filter(|g| !g.recorded_reps)
            .for_each(split_udp_repetitions);
        run.files.push(packets);
    }
    let requests = dir.join("http_requests.csv");
    if requests.is_file() {
        run.http = group_http(&requests)?;
        for group in run.http.iter_mut().filter(|g| !g.recorded_reps) {
            split_http_repetitions(group, &run.rows);
        }
        run.files.push(requests);
    }
    Ok(run)
}

/// `results/NAME.csv` → `results/NAME.stats.csv`.
pub fn stats_path(summary: &Path) -> PathBuf {
    let stem = summary
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    summary.with_file_name(format!("{stem}.stats.csv"))
}

/// One run per `run_id` of the history, oldest first.
fn load_history(path: &Path) -> anyhow::Result<Vec<RunData>> {
    let mut runs: Vec<RunData> = Vec::new();
    for (run_id, row) in read_summary(path)? {
        let label = run_id.unwrap_or_else(|| "?".into());
        match runs.iter_mut().find(|r| r.label == label) {
            Some(r) => r.rows.push(row),
            None => runs.push(RunData {
                label,
                rows: vec![row],
                files: vec![path.to_path_buf()],
                ..RunData::default()
            }),
        }
    }
    Ok(runs)
}

fn read_rows<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::new();
    each_row(path, |r| out.push(r))?;
    Ok(out)
}

/// Streams a CSV's rows into `f`, so a million datagrams never sit in
/// memory as rows of strings.
fn each_row<T: serde::de::DeserializeOwned>(
    path: &Path,
    mut f: impl FnMut(T),
) -> anyhow::Result<()> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    for (i, rec) in reader.deserialize().enumerate() {
        f(rec.with_context(|| format!("{}: row {} cannot be read", path.display(), i + 2))?);
    }
    Ok(())
}

/// The position of `(variant, workload)` in `groups`, added when new.
fn slot<G>(
    index: &mut HashMap<(String, String), usize>,
    groups: &mut Vec<G>,
    variant: &str,
    workload: &str,
    new: impl FnOnce() -> G,
) -> usize {
    if let Some(i) = index.get(&(variant.to_string(), workload.to_string())) {
        return *i;
    }
    groups.push(new());
    index.insert(
        (variant.to_string(), workload.to_string()),
        groups.len() - 1,
    );
    groups.len() - 1
}

fn group_udp(path: &Path) -> anyhow::Result<Vec<UdpSamples>> {
    let mut index = HashMap::new();
    let mut out: Vec<UdpSamples> = Vec::new();
    each_row(path, |r: UdpPacketRow| {
        let i = slot(&mut index, &mut out, &r.variant, &r.workload, || {
            UdpSamples {
                variant: r.variant.clone(),
                workload: r.workload.clone(),
                samples: Vec::new(),
                recorded_reps: false,
            }
        });
        out[i].recorded_reps |= r.repetition.is_some();
        out[i].samples.push(UdpSample {
            rep: r.repetition.map_or(0, |n| n.saturating_sub(1)),
            flow: r.flow,
            seq: r.seq,
            send_ms: r.send_offset_ms,
            rtt_ms: r.rtt_ms,
            status: r.status,
        });
    })?;
    Ok(out)
}

/// The columns of an `http_requests.csv` row that the report draws,
/// borrowed from the record: nothing allocated per row (a trace replay
/// writes a row per request, and the report reads them all back).
#[derive(serde::Deserialize)]
struct HttpRowView<'a> {
    variant: &'a str,
    workload: &'a str,
    status: Option<u16>,
    latency_ms: f64,
    cache: CacheMark,
    #[serde(default)]
    start_offset_ms: Option<f64>,
    #[serde(default)]
    repetition: Option<u32>,
}

fn group_http(path: &Path) -> anyhow::Result<Vec<HttpSamples>> {
    let mut index = HashMap::new();
    let mut out: Vec<HttpSamples> = Vec::new();
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = reader
        .byte_headers()
        .with_context(|| format!("cannot read {}", path.display()))?
        .clone();
    let mut record = csv::ByteRecord::new();
    let mut last: Option<usize> = None;
    for i in 0.. {
        let read = reader
            .read_byte_record(&mut record)
            .with_context(|| format!("{}: row {} cannot be read", path.display(), i + 2))?;
        if !read {
            break;
        }
        let r: HttpRowView<'_> = record
            .deserialize(Some(&headers))
            .with_context(|| format!("{}: row {} cannot be read", path.display(), i + 2))?;
        // A group's rows come together: the last one's group first, no
        // key built per row.
        let i = match last {
            Some(i) if out[i].variant == r.variant && out[i].workload == r.workload => i,
            _ => slot(&mut index, &mut out, r.variant, r.workload, || {
                HttpSamples {
                    variant: r.variant.to_string(),
                    workload: r.workload.to_string(),
                    ..HttpSamples::default()
                }
            }),
        };
        last = Some(i);
        out[i].recorded_reps |= r.repetition.is_some();
        out[i].push(HttpSample {
            rep: r.repetition.map_or(0, |n| n.saturating_sub(1)),
            start_ms: r.start_offset_ms,
            latency_ms: r.latency_ms,
            status: r.status,
            cache: r.cache,
        });
    }
    Ok(out)
}

/// Numbers the repetitions of a UDP group. Repetitions run one after
/// another, so each is a block of the file: a new one starts where a
/// datagram (flow, seq) is seen again (duplicate replies aside).
pub fn split_udp_repetitions(group: &mut UdpSamples) {
    let mut seen = std::collections::HashSet::new();
    let mut rep = 0;
    for s in &mut group.samples {
        if s.status != PacketStatus::Dup && !seen.insert((s.flow, s.seq)) {
            rep += 1;
            seen.clear();
            seen.insert((s.flow, s.seq));
        }
        s.rep = rep;
    }
}

/// Numbers the repetitions of an HTTP group from the summary's request
/// count of each repetition (requests have no key that repeats); left at 0
/// when the counts do not add up (an older or edited file).
pub fn split_http_repetitions(group: &mut HttpSamples, rows: &[SummaryRow]) {
    let mut counts: Vec<(u32, u64)> = rows
        .iter()
        .filter(|r| r.variant == group.variant && r.workload == group.workload)
        .map(|r| (r.repetition, r.requests.unwrap_or(0)))
        .collect();
    counts.sort_by_key(|c| c.0);
    if counts.len() < 2 || counts.iter().map(|c| c.1).sum::<u64>() != group.samples.len() as u64 {
        return;
    }
    let mut samples = group.samples.iter_mut();
    for (rep, (_, n)) in counts.iter().enumerate() {
        for s in samples.by_ref().take(*n as usize) {
            s.rep = rep as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A huge run keeps at most MAX_HTTP_SAMPLES evenly spread requests,
    /// and its counts exact.
    #[test]
    fn a_huge_run_keeps_every_kth_request_and_exact_counts() {
        let mut g = HttpSamples::default();
        let n = MAX_HTTP_SAMPLES as u64 * 5 + 7;
        for i in 0..n {
            g.push(HttpSample {
                rep: 0,
                start_ms: Some(i as f64),
                latency_ms: 1.0,
                status: Some(if i % 4 == 0 { 503 } else { 200 }),
                cache: if i % 2 == 0 {
                    CacheMark::Hit
                } else {
                    CacheMark::Miss
                },
            });
        }
        assert!(g.samples.len() < MAX_HTTP_SAMPLES);
        assert_eq!((g.requests(), g.weight()), (n, 8));
        let k = g.weight() as f64;
        for (j, s) in g.samples.iter().enumerate() {
            assert_eq!(
                s.start_ms,
                Some(j as f64 * k),
                "every {k}th request, from the first"
            );
        }
        let status = g.status_mix();
        assert_eq!(status[0].1 + status[3].1, n);
        assert_eq!(status[3].1, n.div_ceil(4));
        assert_eq!(g.cache_mix()[0].1, n.div_ceil(2));
    }

    #[test]
    fn repetitions_are_told_apart_in_the_sample_files() {
        let udp = |flow, seq, status| UdpSample {
            rep: 9,
            flow,
            seq,
            send_ms: 0.0,
            rtt_ms: Some(1.0),
            status,
        };
        let mut g = UdpSamples {
            variant: "v".into(),
            workload: "w".into(),
            samples: vec![
                udp(0, 0, PacketStatus::Ok),
                udp(0, 0, PacketStatus::Dup),
                udp(0, 1, PacketStatus::Ok),
                udp(0, 0, PacketStatus::Ok),
                udp(0, 1, PacketStatus::Lost),
            ],
            recorded_reps: false,
        };
        split_udp_repetitions(&mut g);
        let reps: Vec<u32> = g.samples.iter().map(|s| s.rep).collect();
        assert_eq!(reps, [0, 0, 0, 1, 1]);

        let req = HttpSample {
            rep: 9,
            start_ms: Some(0.0),
            latency_ms: 1.0,
            status: Some(200),
            cache: CacheMark::Hit,
        };
        let row = |repetition, requests| SummaryRow {
            variant: "v".into(),
            workload: "w".into(),
            repetition,
            requests: Some(requests),
            ..SummaryRow::default()
        };
        let mut h = HttpSamples {
            variant: "v".into(),
            workload: "w".into(),
            samples: vec![req; 5],
            ..HttpSamples::default()
        };
        split_http_repetitions(&mut h, &[row(2, 3), row(1, 2)]);
        assert_eq!((h.requests(), h.weight()), (5, 1));
        let reps: Vec<u32> = h.samples.iter().map(|s| s.rep).collect();
        assert_eq!(reps, [0, 0, 1, 1, 1], "in repetition order, by count");
        // Counts that do not add up leave the samples alone.
        let mut odd = h.clone();
        odd.samples.iter_mut().for_each(|s| s.rep = 7);
        split_http_repetitions(&mut odd, &[row(1, 2), row(2, 2)]);
        assert!(odd.samples.iter().all(|s| s.rep == 7));
    }
}
