//! Result files of one scenario run: the per-sample CSVs streamed while the
//! workloads run, the summary CSV and the history, all written atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;

use crate::metrics::histogram::HistogramRow;
use crate::metrics::records::CsvRow;
use crate::metrics::{HttpRequestRow, SummaryRow, UdpPacketRow};

/// The latency histograms of a run, one per summary row, inside `<out>/<name>/`.
pub const HISTOGRAMS_CSV: &str = "histograms.csv";
use crate::report::atomic::{commit_all, header_of, stage_csv, AtomicFile, Staged};
use crate::report::csv_stream::CsvStream;
use crate::report::run_record::RunInfo;

/// A CSV file that rows are streamed into from the workloads' collectors
/// (several at once in parallel mode, hence the mutex; it is taken once per
/// finished sample, never in the workers' hot path).
pub struct RowFile<T> {
    stream: Mutex<Option<CsvStream>>,
    _row: std::marker::PhantomData<fn(T)>,
}

impl<T: CsvRow + Default> RowFile<T> {
    pub fn create(path: &Path) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(RowFile {
            stream: Mutex::new(Some(CsvStream::create::<T>(path)?)),
            _row: std::marker::PhantomData,
        }))
    }

    /// Appends a row; a write error is reported at commit. A lock poisoned
    /// by a panicking writer still holds a usable stream: the row is written,
    /// and the panic surfaces where the thread is joined.
    pub fn push(&self, row: &T) {
        let mut guard = self
            .stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = guard.as_mut() {
            s.write(row);
        }
    }

    /// Flushes and renames the file into place.
    pub fn commit(&self) -> anyhow::Result<()> {
        self.take()?.commit()
    }

    /// Flushes and renames the file into place at `path`.
    pub fn commit_to(&self, path: &Path) -> anyhow::Result<()> {
        self.take()?.commit_to(path)
    }

    /// Flushes the file for [`commit_all`] to rename to `path`.
    pub fn stage_to(&self, path: &Path) -> anyhow::Result<Staged> {
        self.take()?.stage_to(path)
    }

    /// The stream, once: committing twice is an error, not a silent no-op
    /// that would leave the file under its temporary name.
    fn take(&self) -> anyhow::Result<CsvStream> {
        self.stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .context("a sample file was committed twice")
    }
}

/// Where a run's results end up: `<out>/<name>.csv` and `<out>/<name>/`
/// for a complete run, `<out>/<name>.interrupted.csv` and
/// `<out>/<name>.interrupted/` for an interrupted one, so a Ctrl-C never
/// replaces the results of the last complete run.
#[derive(Debug, Clone)]
pub struct Place {
    pub summary: PathBuf,
    /// The spread over repetitions, `<name>[.interrupted].stats.csv`.
    pub stats: PathBuf,
    pub dir: PathBuf,
}

impl Place {
    pub fn services_log(&self) -> PathBuf {
        self.dir.join("services.log")
    }
}

/// The files of one scenario's run.
pub struct Outputs {
    pub dir: PathBuf,
    pub summary: PathBuf,
    /// `<out>/<name>.stats.csv`: the spread of each metric over the repetitions.
    pub stats: PathBuf,
    pub history: PathBuf,
    pub packets: Arc<RowFile<UdpPacketRow>>,
    pub requests: Arc<RowFile<HttpRequestRow>>,
    /// Each finished workload's latency histogram, written at the end
    /// as `histograms.csv` in the order of the summary rows.
    histograms: Mutex<Vec<HistogramRow>>,
    out: PathBuf,
    scenario: String,
    /// The run's CA, when some service's certificate is made for the run.
    run_ca: Option<crate::tls::MadeCa>,
}

impl Outputs {
    pub fn create(out: &Path, scenario: &str) -> anyhow::Result<Self> {
        let dir = out.join(scenario);
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create results folder {}", dir.display()))?;
        Ok(Outputs {
            summary: out.join(format!("{scenario}.csv")),
            stats: out.join(format!("{scenario}.stats.csv")),
            history: out.join("history.csv"),
            packets: RowFile::create(&dir.join("udp_packets.csv"))?,
            requests: RowFile::create(&dir.join("http_requests.csv"))?,
            histograms: Mutex::new(Vec::new()),
            dir,
            out: out.to_path_buf(),
            scenario: scenario.to_string(),
            run_ca: None,
        })
    }

    /// Makes the run's CA, which signs every service's made certificate,
    /// and writes it to `<dir>/ca.pem` now, so curl, a browser or another
    /// tool can trust the services while they run.
    pub fn make_ca(&mut self) -> anyhow::Result<&crate::tls::MadeCa> {
        let ca = crate::tls::MadeCa::new().context("cannot make the run's CA")?;
        let path = self.ca_path();
        let mut file = AtomicFile::create(&path)?;
        file.write_all(ca.pem().as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.commit()?;
        Ok(self.run_ca.insert(ca))
    }

    /// The run's CA, if [`Outputs::make_ca`] made one.
    pub fn run_ca(&self) -> Option<&crate::tls::MadeCa> {
        self.run_ca.as_ref()
    }

    /// `<dir>/ca.pem`: where the run's CA is written.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Where the results go, complete or interrupted.
    pub fn place(&self, interrupted: bool) -> Place {
        if interrupted {
            let name = format!("{}.interrupted", self.scenario);
            Place {
                summary: self.out.join(format!("{name}.csv")),
                stats: self.out.join(format!("{name}.stats.csv")),
                dir: self.out.join(name),
            }
        } else {
            Place {
                summary: self.summary.clone(),
                stats: self.stats.clone(),
                dir: self.dir.clone(),
            }
        }
    }

    pub fn services_log(&self) -> PathBuf {
        self.dir.join("services.log")
    }

    /// Keeps the latency histogram of a finished workload's row.
    pub fn keep_histogram(&self, row: &SummaryRow, hist: &hdrhistogram::Histogram<u64>) {
        let kept = HistogramRow::new(&row.variant, &row.workload, row.repetition, hist);
        if let Ok(mut all) = self.histograms.lock() {
            all.push(kept);
        }
    }

    /// The kept histograms in the order of `rows` (parallel workloads
    /// finish in any order).
    fn histogram_rows(&self, rows: &[SummaryRow]) -> Vec<HistogramRow> {
        let mut kept = self
            .histograms
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        let mut out = Vec::with_capacity(kept.len());
        for r in rows {
            let same = |h: &HistogramRow| {
                h.variant == r.variant && h.workload == r.workload && h.repetition == r.repetition
            };
            if let Some(i) = kept.iter().position(same) {
                out.push(kept.swap_remove(i));
            }
        }
        out
    }

    /// Removes the complete run's folder if this run made it only to hold
    /// its temporary files and wrote elsewhere (a first run, interrupted).
    pub fn tidy(&self, place: &Place) {
        if place.dir != self.dir {
            let _ = fs::remove_dir(&self.dir);
        }
    }

    /// Writes the summary and the run record at `place` and appends the
    /// rows to the history (whose rows say whether they were interrupted);
    /// commits the sample files and `log` (the services' log) with them.
    /// Every file is complete under its temporary name before the first is
    /// renamed into place, and all are put on disk with one wait
    /// ([`commit_all`]); if any cannot be written, none replaces its old one.
    pub fn finish(
        &self,
        place: &Place,
        rows: &[SummaryRow],
        record: &RunInfo,
        timestamp: &str,
        log: Option<AtomicFile>,
    ) -> anyhow::Result<()> {
        let mut files = vec![
            self.packets.stage_to(&place.dir.join("udp_packets.csv"))?,
            self.requests
                .stage_to(&place.dir.join("http_requests.csv"))?,
            stage_csv(place.dir.join(HISTOGRAMS_CSV), &self.histogram_rows(rows))?,
            stage_csv(&place.summary, rows)?,
            stage_csv(&place.stats, &crate::report::stats_csv::stats_rows(rows))?,
            record.stage(&place.dir)?,
        ];
        files.extend(stage_history(
            &self.history,
            rows,
            &record.run_id,
            timestamp,
        )?);
        // The log goes with the results it describes, last.
        if let Some(log) = log {
            files.push(log.stage_to(place.services_log())?);
        }
        commit_all(files)
    }
}

/// `--out` must be a folder netrun can write in: found before anything
/// runs, as invalid input (exit 2), not after a long run as a failure.
pub fn check_out(out: &Path) -> Result<(), crate::Error> {
    let refuse = |why: String| {
        crate::Error::input(format!(
            "--out {}: {why}; give a folder that exists or can be created, and can be written to",
            out.display()
        ))
    };
    if out.exists() && !out.is_dir() {
        return Err(refuse("is not a folder".to_string()));
    }
    std::fs::create_dir_all(out).map_err(|e| refuse(format!("cannot be created ({e})")))?;
    tempfile::tempfile_in(out).map_err(|e| refuse(format!("cannot be written to ({e})")))?;
    Ok(())
}

/// Appends rows to `history.csv` (copy + append + rename, so it is never
/// half-written). If the columns changed since the file was started, the old
/// file is kept beside it under a dated name and a new one begins.
pub fn append_history(
    path: &Path,
    rows: &[SummaryRow],
    run_id: &str,
    timestamp: &str,
) -> anyhow::Result<()> {
    match stage_history(path, rows, run_id, timestamp)? {
        Some(file) => file.commit(),
        None => Ok(()),
    }
}

/// [`append_history`], staged for [`commit_all`]; `None` when there are no
/// rows to add.
fn stage_history(
    path: &Path,
    rows: &[SummaryRow],
    run_id: &str,
    timestamp: &str,
) -> anyhow::Result<Option<Staged>> {
    if rows.is_empty() {
        return Ok(None);
    }
    // Each record is run_id, timestamp, then the summary row's own fields.
    let mut head = csv::StringRecord::from(vec!["run_id", "timestamp"]);
    head.extend(header_of::<SummaryRow>()?.iter());
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    out.write_record(&head)?;
    out.flush()?;
    let header_len = out.get_ref().len();
    for row in rows {
        out.write_field(run_id)?;
        out.write_field(timestamp)?;
        out.serialize(row)?;
    }
    let new_rows = out
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}", e.error()))?;
    let (header, body) = new_rows.split_at(header_len);
    let old = match fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut file = AtomicFile::create(path)?;
    match old {
        Some(old) if old.starts_with(header) => {
            file.write_all(&old)?;
            if !old.ends_with(b"\n") {
                file.write_all(b"\n")?;
            }
        }
        Some(_) => {
            let kept = path.with_file_name(format!("history-{}.csv", run_id));
            fs::rename(path, &kept)
                .with_context(|| format!("cannot keep old {}", path.display()))?;
            tracing::warn!(
                "history columns changed; the old history is kept as {}",
                kept.display()
            );
            file.write_all(header)?;
        }
        None => file.write_all(header)?,
    }
    file.write_all(body)?;
    file.stage().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row written to its file reads back field by field, by column
    /// name: the header cannot drift from the row type.
    #[test]
    fn sample_files_read_back_by_column_name() {
        let dir = tempfile::tempdir().unwrap();
        let udp = UdpPacketRow {
            variant: "v".into(),
            workload: "w".into(),
            flow: 2,
            seq: 7,
            send_offset_ms: 1.5,
            rtt_ms: Some(0.25),
            status: crate::metrics::PacketStatus::Reordered,
            repetition: Some(1),
        };
        let http = HttpRequestRow {
            variant: "v".into(),
            workload: "w".into(),
            client: 3,
            path: "/a".into(),
            status: Some(404),
            bytes: 12,
            latency_ms: 4.5,
            cache: crate::metrics::CacheMark::Miss,
            error: Some("timeout".into()),
            start_offset_ms: Some(2.25),
            repetition: Some(1),
            connect_ms: Some(0.125),
            tls_ms: Some(1.5),
            ttfb_ms: Some(3.0),
            protocol: Some("HTTP/2".into()),
            send_offset_ms: Some(2.5),
        };
        fn round_trip<T>(dir: &Path, row: &T) -> T
        where
            T: CsvRow + serde::de::DeserializeOwned + Default,
        {
            let path = dir.join("rows.csv");
            let file = RowFile::<T>::create(&path).unwrap();
            file.push(row);
            file.commit_to(&path).unwrap();
            let mut r = csv::Reader::from_path(&path).unwrap();
            r.deserialize().next().unwrap().unwrap()
        }
        assert_eq!(round_trip(dir.path(), &udp), udp);
        assert_eq!(round_trip(dir.path(), &http), http);
        let text = fs::read_to_string(dir.path().join("rows.csv")).unwrap();
        assert!(
            text.starts_with("variant,workload,client,path,status,"),
            "{text}"
        );
    }

    /// A writer that panicked while holding the lock does not turn the
    /// commit into a silent no-op that leaves the file unrenamed.
    #[test]
    fn a_poisoned_lock_still_commits_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        let file = RowFile::<UdpPacketRow>::create(&path).unwrap();
        let poisoner = file.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.stream.lock();
            panic!("a collector panicked");
        })
        .join();
        assert!(file.stream.is_poisoned());
        file.push(&UdpPacketRow::default());
        file.commit_to(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            file.commit_to(&path).is_err(),
            "a second commit is an error"
        );
    }

    #[test]
    fn history_appends_and_rotates_on_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.csv");
        let row = SummaryRow {
            scenario: "s".into(),
            sent: Some(3),
            ..Default::default()
        };
        append_history(&p, std::slice::from_ref(&row), "r1", "t1").unwrap();
        append_history(&p, &[row.clone(), row.clone()], "r2", "t2").unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.starts_with("run_id,timestamp,scenario,"));
        fs::write(&p, "run_id,old_column\nx,y\n").unwrap();
        append_history(&p, &[row], "r3", "t3").unwrap();
        assert!(dir.path().join("history-r3.csv").exists());
        assert_eq!(fs::read_to_string(&p).unwrap().lines().count(), 2);
    }
}
