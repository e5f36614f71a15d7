//! Reading result CSVs in tests: rows as column-name → text maps, so a test
//! names the column it checks and a reordered file cannot mislabel a figure.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

/// One CSV row, by column name.
pub type Row = HashMap<String, String>;

/// The header and the rows of the CSV at `path`; panics with the path on error.
pub fn read_csv_with_header(path: &Path) -> (Vec<String>, Vec<Row>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = r
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    let rows = r
        .records()
        .map(|rec| {
            header
                .iter()
                .cloned()
                .zip(rec.expect("record").iter().map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

/// The rows of the CSV at `path`.
pub fn read_csv(path: &Path) -> Vec<Row> {
    read_csv_with_header(path).1
}
