//! Files written to a temporary name in the same folder and renamed into
//! place, so an interrupted run never leaves a half-written file where a good
//! one stood.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// A file being written; it appears under its real name only on [`AtomicFile::commit`].
/// Dropped without commit, the temporary file is removed.
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)
                .with_context(|| format!("cannot create folder {}", dir.display()))?;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(AtomicFile {
            path,
            tmp,
            writer: Some(BufWriter::new(file)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> anyhow::Result<()> {
        if let Some(w) = self.writer.take() {
            let file = w
                .into_inner()
                .map_err(|e| e.into_error())
                .with_context(|| format!("cannot write {}", self.tmp.display()))?;
            file.sync_all()
                .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        }
        fs::rename(&self.tmp, &self.path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp.display(),
                self.path.display()
            )
        })
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.writer {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.writer {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `rows` as a CSV file, atomically. The header comes from the row
/// type's field names, and is written even when there are no rows.
pub fn write_csv<T: serde::Serialize + Default>(
    path: impl AsRef<Path>,
    rows: &[T],
) -> anyhow::Result<()> {
    let path = path.as_ref();
    let file = AtomicFile::create(path)?;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(file);
    w.write_record(&header_of::<T>()?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for row in rows {
        w.serialize(row)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let file = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error()))?;
    file.commit()
}

/// The CSV header of a row type: its field names, in order.
pub fn header_of<T: serde::Serialize + Default>() -> anyhow::Result<csv::StringRecord> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(T::default())?;
    let bytes = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}", e.error()))?;
    let mut r = csv::Reader::from_reader(&bytes[..]);
    Ok(r.headers()?.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_file_leaves_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        fs::write(&p, "old").unwrap();
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.write_all(b"new, unfinished").unwrap();
        }
        assert_eq!(fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file removed"
        );
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
    }

    #[derive(serde::Serialize, Default)]
    struct Row {
        a: u32,
        b: Option<f64>,
    }

    #[test]
    fn csv_without_rows_still_has_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        write_csv::<Row>(&p, &[]).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "a,b\n");
        write_csv(&p, &[Row { a: 1, b: None }]).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "a,b\n1,\n");
    }
}
