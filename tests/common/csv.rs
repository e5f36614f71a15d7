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

/// A number in column `col`; panics naming the column.
pub fn num(r: &Row, col: &str) -> f64 {
    r[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} = {:?}", r[col]))
}

/// The round trips of the datagrams answered in time (`ok`, `reordered`)
/// among `udp_packets.csv` rows.
pub fn answered_rtts(rows: &[Row]) -> Vec<f64> {
    rows.iter()
        .filter(|r| r["status"] == "ok" || r["status"] == "reordered")
        .map(|r| num(r, "rtt_ms"))
        .collect()
}

/// The `q`-th percentile (0–100) of samples as HdrHistogram ranks them:
/// the value at rank ⌈q/100 × n⌉.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Within the histogram's precision: 3 significant digits (0.1 %) plus
/// the 1 µs the samples are rounded to.
pub fn close(histogram: f64, exact: f64) -> bool {
    (histogram - exact).abs() <= exact * 0.001 + 0.0011
}

/// A merged run's percentiles (from added histograms) against the pooled
/// per-sample CSVs: HTTP p50 and p99 of `latencies` in row `http`, UDP p50
/// of `rtts` in row `udp`, whose `received` counts every round trip.
pub fn assert_pooled_percentiles(
    http: &Row,
    mut latencies: Vec<f64>,
    udp: &Row,
    mut rtts: Vec<f64>,
) {
    latencies.sort_by(f64::total_cmp);
    rtts.sort_by(f64::total_cmp);
    for (col, q) in [("latency_p50_ms", 50.0), ("latency_p99_ms", 99.0)] {
        let (merged, exact) = (num(http, col), percentile(&latencies, q));
        assert!(
            close(merged, exact),
            "http {col}: merged {merged} vs pooled CSVs {exact}"
        );
    }
    assert_eq!(rtts.len() as f64, num(udp, "received"));
    let (merged, exact) = (num(udp, "latency_p50_ms"), percentile(&rtts, 50.0));
    assert!(
        close(merged, exact),
        "udp p50: merged {merged} vs pooled CSVs {exact}"
    );
}
