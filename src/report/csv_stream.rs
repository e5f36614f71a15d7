//! Per-sample CSV rows streamed to an [`AtomicFile`] as they are produced:
//! memory stays bounded however many rows a run makes, and the file appears
//! under its name only when [`CsvStream::commit`] is called.

use std::path::{Path, PathBuf};

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
    writer: csv::Writer<AtomicFile>,
    error: Option<csv::Error>,
}

impl CsvStream {
    /// Creates the file (under a temporary name) for rows of type `T` and
    /// writes their header at once (the field names, in order, so columns
    /// cannot be mislabelled), so a run that produced no rows still leaves a
    /// valid CSV.
    pub fn create<T: Serialize + Default>(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let header = header_of::<T>()?;
        let file = AtomicFile::create(&path)?;
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        writer
            .write_record(&header)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(CsvStream {
            path,
            writer,
            error: None,
        })
    }

    /// Appends a row of the type given to `create`.
    pub fn write<T: CsvRow>(&mut self, row: &T) {
        if self.error.is_none() {
            if let Err(e) = row.write_csv(&mut self.writer) {
                self.error = Some(e);
            }
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
    pub fn stage_to(self, path: &Path) -> anyhow::Result<Staged> {
        if let Some(e) = self.error {
            return Err(e).with_context(|| format!("cannot write {}", path.display()));
        }
        let file = self
            .writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error()))?;
        file.stage_to(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_are_escaped_in_cells() {
        assert_eq!(escape_controls("/a\u{1b}[31m\r"), "/a\\u{1b}[31m\\u{d}");
        assert!(matches!(
            escape_controls("/plain"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
