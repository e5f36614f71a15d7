//! What `netrun merge` checks in each part before anything is written: a
//! summary with every column and only figures a measurement can give, and
//! histograms that decode and hold exactly the samples their summary row
//! counts. Every fault is an input error (exit 2) naming file and line.

use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;

use crate::metrics::histogram::{self, HistogramRow};
use crate::metrics::SummaryRow;
use crate::report::atomic::header_of;
use crate::Error;

/// No measured figure is this large (ms, bit/s, counts); larger values are
/// damage, and would overflow when added.
const IMPLAUSIBLE: f64 = 1e15;

/// The columns of a summary that hold text.
const TEXT: &[&str] = &[
    "scenario",
    "variant",
    "workload",
    "kind",
    "target",
    "started_at",
    "topology",
];

/// Reads a part's summary: every column the runner writes must be there,
/// and every number finite and plausible.
pub fn read_summary(path: &Path) -> anyhow::Result<Vec<SummaryRow>> {
    let refuse = |what: String| Error::input(format!("{}: {what}", path.display()));
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = r
        .headers()
        .map_err(|e| refuse(format!("cannot read its header: {e}")))?
        .clone();
    let lacking: Vec<String> = header_of::<SummaryRow>()?
        .iter()
        .filter(|c| !headers.iter().any(|h| h == *c))
        .map(str::to_string)
        .collect();
    if !lacking.is_empty() {
        return Err(refuse(format!(
            "not a whole netrun summary: it lacks the column{} {}",
            if lacking.len() > 1 { "s" } else { "" },
            lacking.join(", ")
        ))
        .into());
    }
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| refuse(format!("line {line} cannot be read: {e}")))?;
        for (col, cell) in headers.iter().zip(rec.iter()) {
            if TEXT.contains(&col) {
                continue;
            }
            if let Ok(v) = cell.trim().parse::<f64>() {
                if !v.is_finite() || v.abs() >= IMPLAUSIBLE {
                    return Err(refuse(format!(
                        "line {line}: `{col}` is {cell}, which no measurement gives; the file \
                         is damaged (run the part again)"
                    ))
                    .into());
                }
            }
        }
        let row: SummaryRow = rec
            .deserialize(Some(&headers))
            .map_err(|e| refuse(format!("line {line} is not a summary row: {e}")))?;
        out.push(row);
    }
    Ok(out)
}

/// Decodes every histogram of a part and checks it against its summary
/// row: the samples it holds are the replies the row counts.
pub fn histograms(
    file: &Path,
    hists: &[HistogramRow],
    rows: &[SummaryRow],
) -> Result<Vec<Histogram<u64>>, Error> {
    let mut out = Vec::with_capacity(hists.len());
    for (i, h) in hists.iter().enumerate() {
        let at = |what: String| {
            Error::input(format!(
                "{} line {} (workload `{}`, variant {}, repetition {}): {what}",
                file.display(),
                i + 2,
                h.workload,
                h.variant,
                h.repetition
            ))
        };
        let decoded = histogram::decode(&h.histogram).map_err(|e| at(format!("{e:#}")))?;
        let row = rows
            .iter()
            .find(|r| {
                r.variant == h.variant && r.workload == h.workload && r.repetition == h.repetition
            })
            .ok_or_else(|| at("no summary row has this workload".to_string()))?;
        let received = row.received.unwrap_or(0);
        if decoded.len() != received || h.count != received {
            return Err(at(format!(
                "the histogram holds {} samples (its count column says {}) but the summary row \
                 counts {received} replies; the files do not belong together (run the part again)",
                decoded.len(),
                h.count
            )));
        }
        out.push(decoded);
    }
    Ok(out)
}
