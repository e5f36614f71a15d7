//! Per-sample CSV rows streamed to an [`AtomicFile`] as they are produced:
//! memory stays bounded however many rows a run makes, and the file appears
//! under its name only when [`CsvStream::commit`] is called.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::Context;
use serde::Serialize;

use super::atomic::{header_of, AtomicFile, Staged};
use crate::metrics::records::CsvRow;

/// `s` with every control character written as a visible escape (`\u{1b}`),
/// so a CSV cell never carries raw escape sequences to a terminal or a
/// spreadsheet; borrowed when there is none.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A CSV file being written row by row. Write errors are kept (the producer
/// is a callback that cannot fail) and returned by [`CsvStream::commit`].
pub struct CsvStream {
    path: PathBuf,
    writer: csv::Writer<Shared>,
    /// The file the csv writer writes to, for the hand-written lines.
    file: Shared,
    /// Rows written by hand (`CsvRow::csv_line`), not yet in the file:
    /// handed to it behind what the csv writer holds, so the order stays.
    lines: Vec<u8>,
    error: Option<csv::Error>,
}

/// The file, shared by the csv writer (serde rows, the header) and the
/// stream (hand-written lines): locked only to write a buffer's worth.
#[derive(Clone)]
struct Shared(Arc<Mutex<AtomicFile>>);

impl Shared {
    fn file(&self) -> MutexGuard<'_, AtomicFile> {
        // A panic while writing leaves a file whose errors it still reports.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file().flush()
    }
}

/// Hand-written rows are passed to the file in pieces of about this size.
const LINES: usize = 64 * 1024;

impl CsvStream {
    /// Creates the file (under a temporary name) for rows of type `T` and
    /// writes their header at once (the field names, in order, so columns
    /// cannot be mislabelled), so a run that produced no rows still leaves a
    /// valid CSV.
    pub fn create<T: Serialize + Default>(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let header = header_of::<T>()?;
        let file = Shared(Arc::new(Mutex::new(AtomicFile::create(&path)?)));
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file.clone());
        writer
            .write_record(&header)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(CsvStream {
            path,
            writer,
            file,
            lines: Vec::new(),
            error: None,
        })
    }

    /// Appends a row of the type given to `create`.
    pub fn write<T: CsvRow>(&mut self, row: &T) {
        if self.error.is_some() {
            return;
        }
        if row.csv_line(&mut self.lines) {
            if self.lines.len() >= LINES {
                self.pass_lines();
            }
            return;
        }
        self.pass_lines();
        if let Err(e) = self.writer.serialize(row) {
            self.error.get_or_insert(e);
        }
    }

    /// Hands the hand-written lines to the file, after what the csv
    /// writer holds.
    fn pass_lines(&mut self) {
        if self.lines.is_empty() || self.error.is_some() {
            return;
        }
        let passed = self
            .writer
            .flush()
            .and_then(|()| self.file.file().write_all(&self.lines));
        self.lines.clear();
        if let Err(e) = passed {
            self.error = Some(e.into());
        }
    }

    /// Flushes and renames the file into place, or reports the first write error.
    pub fn commit(self) -> anyhow::Result<()> {
        let path = self.path.clone();
        self.commit_to(&path)
    }

    /// [`CsvStream::commit`] under another name.
    pub fn commit_to(self, path: &Path) -> anyhow::Result<()> {
        self.stage_to(path)?.commit()
    }

    /// Flushes the file for [`crate::atomic_file::commit_all`] to rename to
    /// `path` with others, or reports the first write error.
    pub fn stage_to(mut self, path: &Path) -> anyhow::Result<Staged> {
        self.pass_lines();
        if let Some(e) = self.error {
            return Err(e).with_context(|| format!("cannot write {}", path.display()));
        }
        let writer = self
            .writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error()))?;
        drop(writer);
        let file = Arc::try_unwrap(self.file.0)
            .map_err(|_| {
                anyhow::anyhow!("cannot write {}: the file is still shared", path.display())
            })?
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        file.stage_to(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::HttpRequestRow;

    /// Hand-written lines and rows left to serde (a latency that is not a
    /// whole number of µs) land in the file in the order written, past the
    /// pieces the lines are passed in, behind the header.
    #[test]
    fn hand_written_and_serde_rows_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        let mut stream = CsvStream::create::<HttpRequestRow>(&path).unwrap();
        let rows: Vec<HttpRequestRow> = (0..5000u32)
            .map(|i| HttpRequestRow {
                client: i,
                path: format!("/objects/{i}/64"),
                latency_ms: if i % 7 == 0 {
                    1.0 / 3.0
                } else {
                    f64::from(i) / 1000.0
                },
                ..HttpRequestRow::default()
            })
            .collect();
        for r in &rows {
            stream.write(r);
        }
        stream.commit().unwrap();
        let back: Vec<HttpRequestRow> = csv::Reader::from_path(&path)
            .unwrap()
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, rows);
    }

    #[test]
    fn control_bytes_are_escaped_in_cells() {
        assert_eq!(escape_controls("/a\u{1b}[31m\r"), "/a\\u{1b}[31m\\u{d}");
        assert!(matches!(
            escape_controls("/plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
