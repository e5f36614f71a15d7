//! Whole CSV files written atomically (see [`crate::atomic_file`]), with
//! headers taken from the row type.

use std::path::Path;

use anyhow::Context;

pub use crate::atomic_file::{commit_all, AtomicFile, Staged};

/// Writes `rows` as a CSV file, atomically. The header comes from the row
/// type's field names, and is written even when there are no rows.
pub fn write_csv<T: serde::Serialize + Default>(
    path: impl AsRef<Path>,
    rows: &[T],
) -> anyhow::Result<()> {
    stage_csv(path, rows)?.commit()
}

/// [`write_csv`], staged for [`commit_all`] with other files.
pub fn stage_csv<T: serde::Serialize + Default>(
    path: impl AsRef<Path>,
    rows: &[T],
) -> anyhow::Result<Staged> {
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
    file.stage()
}

/// The CSV header of a row type: its field names, in order.
pub fn header_of<T: serde::Serialize + Default>() -> anyhow::Result<csv::StringRecord> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(T::default())?;
    let bytes = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}", e.error()))?;
    // The header is the first line; field names need no quoting, so it is
    // split as it is. A csv::Reader, which builds its parser's tables
    // (~0.3M instructions, more than a short run's CSV rows cost), only
    // for a quoted one.
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    if !first.contains(&b'"') {
        if let Ok(line) = std::str::from_utf8(first) {
            return Ok(line.trim_end_matches('\r').split(',').collect());
        }
    }
    let mut r = csv::Reader::from_reader(&bytes[..]);
    Ok(r.headers()?.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[derive(serde::Serialize, Default)]
    struct Row {
        a: u32,
        b: Option<f64>,
    }

    #[test]
    fn headers_are_as_csv_reads_them() {
        #[derive(serde::Serialize, Default)]
        struct Odd {
            #[serde(rename = "a,b")]
            comma: u8,
            #[serde(rename = "say \"hi\"")]
            quote: u8,
        }
        let by_reader = |bytes: Vec<u8>| {
            csv::Reader::from_reader(&bytes[..])
                .headers()
                .unwrap()
                .clone()
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(crate::metrics::SummaryRow::default()).unwrap();
        let plain = header_of::<crate::metrics::SummaryRow>().unwrap();
        assert_eq!(plain, by_reader(w.into_inner().unwrap()));
        assert!(plain.len() > 30);
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(Odd::default()).unwrap();
        let odd = header_of::<Odd>().unwrap();
        assert_eq!(odd, by_reader(w.into_inner().unwrap()));
        assert_eq!(odd.iter().collect::<Vec<_>>(), ["a,b", "say \"hi\""]);
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
