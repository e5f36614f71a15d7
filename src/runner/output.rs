//! Result files of one scenario run: the per-sample CSVs streamed while the
//! workloads run, the summary CSV and the history, all written atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;

use crate::metrics::{HttpRequestRow, SummaryRow, UdpPacketRow};
use crate::report::atomic::{write_csv, AtomicFile};

/// A CSV file that rows are streamed into from the workloads' collectors.
pub struct RowFile<T> {
    writer: Mutex<Option<csv::Writer<AtomicFile>>>,
    error: Mutex<Option<String>>,
    _row: std::marker::PhantomData<fn(T)>,
}

impl<T: serde::Serialize> RowFile<T> {
    /// Creates the file (under a temporary name) and writes its header now,
    /// so even a workload-less run leaves a valid CSV.
    pub fn create(path: &Path, header: &[&str]) -> anyhow::Result<Arc<Self>> {
        let file = AtomicFile::create(path)?;
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        w.write_record(header)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Arc::new(RowFile {
            writer: Mutex::new(Some(w)),
            error: Mutex::new(None),
            _row: std::marker::PhantomData,
        }))
    }

    /// Appends a row. A write error is remembered and reported at commit,
    /// rather than aborting the measurement in progress.
    pub fn push(&self, row: &T) {
        let Ok(mut guard) = self.writer.lock() else {
            return;
        };
        if let Some(w) = guard.as_mut() {
            if let Err(e) = w.serialize(row) {
                if let Ok(mut err) = self.error.lock() {
                    err.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }

    /// Flushes and renames the file into place.
    pub fn commit(&self) -> anyhow::Result<()> {
        if let Ok(Some(e)) = self.error.lock().map(|e| e.clone()) {
            anyhow::bail!("cannot write a row: {e}");
        }
        let w = self.writer.lock().ok().and_then(|mut g| g.take());
        if let Some(w) = w {
            let file = w
                .into_inner()
                .map_err(|e| anyhow::anyhow!("{}", e.error()))?;
            file.commit()?;
        }
        Ok(())
    }
}

/// Columns of `udp_packets.csv` (the field names of [`UdpPacketRow`]).
pub const UDP_PACKET_COLUMNS: &[&str] = &[
    "variant",
    "workload",
    "flow",
    "seq",
    "send_offset_ms",
    "rtt_ms",
    "status",
];

/// Columns of `http_requests.csv` (the field names of [`HttpRequestRow`]).
pub const HTTP_REQUEST_COLUMNS: &[&str] = &[
    "variant",
    "workload",
    "client",
    "path",
    "status",
    "bytes",
    "latency_ms",
    "cache",
    "error",
];

/// The files of one scenario's run.
pub struct Outputs {
    pub dir: PathBuf,
    pub summary: PathBuf,
    pub history: PathBuf,
    pub packets: Arc<RowFile<UdpPacketRow>>,
    pub requests: Arc<RowFile<HttpRequestRow>>,
}

impl Outputs {
    pub fn create(out: &Path, scenario: &str) -> anyhow::Result<Self> {
        let dir = out.join(scenario);
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create results folder {}", dir.display()))?;
        Ok(Outputs {
            summary: out.join(format!("{scenario}.csv")),
            history: out.join("history.csv"),
            packets: RowFile::create(&dir.join("udp_packets.csv"), UDP_PACKET_COLUMNS)?,
            requests: RowFile::create(&dir.join("http_requests.csv"), HTTP_REQUEST_COLUMNS)?,
            dir,
        })
    }

    pub fn services_log(&self) -> PathBuf {
        self.dir.join("services.log")
    }

    /// Writes the summary and appends it to the history; commits the sample files.
    pub fn finish(&self, rows: &[SummaryRow], run_id: &str, timestamp: &str) -> anyhow::Result<()> {
        self.packets.commit()?;
        self.requests.commit()?;
        write_csv(&self.summary, rows)?;
        append_history(&self.history, rows, run_id, timestamp)
    }
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
    if rows.is_empty() {
        return Ok(());
    }
    // Serialize the summary rows, then put run_id and timestamp in front of each record.
    let mut plain = csv::Writer::from_writer(Vec::new());
    for row in rows {
        plain.serialize(row)?;
    }
    let plain = plain
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}", e.error()))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(&plain[..]);
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut head = csv::StringRecord::from(vec!["run_id", "timestamp"]);
    head.extend(reader.headers()?.iter());
    out.write_record(&head)?;
    for record in reader.records() {
        let mut r = csv::StringRecord::from(vec![run_id, timestamp]);
        r.extend(record?.iter());
        out.write_record(&r)?;
    }
    let new_rows = out
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}", e.error()))?;
    let (header, body) = match new_rows.iter().position(|&b| b == b'\n') {
        Some(i) => new_rows.split_at(i + 1),
        None => (&new_rows[..], &[][..]),
    };
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
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of<T: serde::Serialize>(row: &T) -> Vec<String> {
        let v = serde_json::to_value(row).unwrap();
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn sample_columns_match_row_fields() {
        let udp = UdpPacketRow {
            variant: String::new(),
            workload: String::new(),
            flow: 0,
            seq: 0,
            send_offset_ms: 0.0,
            rtt_ms: None,
            status: crate::metrics::PacketStatus::Lost,
        };
        let mut expected: Vec<String> = UDP_PACKET_COLUMNS.iter().map(|s| s.to_string()).collect();
        let mut got = header_of(&udp);
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
        let http = HttpRequestRow {
            variant: String::new(),
            workload: String::new(),
            client: 0,
            path: String::new(),
            status: None,
            bytes: 0,
            latency_ms: 0.0,
            cache: crate::metrics::CacheMark::None,
            error: None,
        };
        let mut expected: Vec<String> =
            HTTP_REQUEST_COLUMNS.iter().map(|s| s.to_string()).collect();
        let mut got = header_of(&http);
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
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
        append_history(&p, &[row.clone()], "r1", "t1").unwrap();
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
