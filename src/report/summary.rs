//! The summary table printed after a run: one line per variant and workload
//! with the figures people look at first. Everything else is in the CSV.

use std::fmt::Write;

use crate::metrics::SummaryRow;

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".to_string(), |x| format!("{x:.decimals$}"))
}

fn count(v: Option<u64>) -> String {
    v.map_or("-".to_string(), |x| x.to_string())
}

/// Human bit rate: `12.3 Mbit/s`.
pub fn rate(bps: Option<f64>) -> String {
    match bps {
        None => "-".to_string(),
        Some(b) if b >= 1e9 => format!("{:.2} Gbit/s", b / 1e9),
        Some(b) if b >= 1e6 => format!("{:.2} Mbit/s", b / 1e6),
        Some(b) if b >= 1e3 => format!("{:.1} kbit/s", b / 1e3),
        Some(b) => format!("{b:.0} bit/s"),
    }
}

/// Renders rows as an aligned table.
pub fn render(rows: &[SummaryRow]) -> String {
    let show_variant = rows.iter().any(|r| r.variant != "default");
    let show_rep = rows.iter().any(|r| r.repetition > 1);
    let mut header = vec![
        "workload",
        "kind",
        "target",
        "sent",
        "recv",
        "loss%",
        "p50 ms",
        "p99 ms",
        "max ms",
        "jitter ms",
        "throughput",
        "req/s",
        "errors",
        "hit ratio",
    ];
    if show_rep {
        header.insert(0, "rep");
    }
    if show_variant {
        header.insert(0, "variant");
    }
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let mut line = vec![
            if r.interrupted {
                format!("{} (interrupted)", r.workload)
            } else {
                r.workload.clone()
            },
            r.kind.clone(),
            r.target.clone(),
            count(r.sent),
            count(r.received),
            num(r.loss_percent, 2),
            num(r.latency_p50_ms, 3),
            num(r.latency_p99_ms, 3),
            num(r.latency_max_ms, 3),
            num(r.jitter_ms, 3),
            rate(r.throughput_bps),
            num(r.requests_per_s, 1),
            count(r.errors),
            num(r.cache_hit_ratio, 2),
        ];
        if show_rep {
            line.insert(0, r.repetition.to_string());
        }
        if show_variant {
            line.insert(0, r.variant.clone());
        }
        table.push(line);
    }
    // Names left-aligned, numbers right-aligned.
    let left = 3 + usize::from(show_variant) + usize::from(show_rep);
    let mut out = aligned(&table, left, "");
    // Loss a reader would blame on the path, though this machine lost it.
    for r in rows {
        let local = [
            (r.receive_drops, "the probe's"),
            (r.origin_dropped, "the origin echo's"),
        ];
        for (n, whose) in local {
            if let Some(n) = n.filter(|&n| n > 0) {
                let _ = writeln!(
                    out,
                    "note: {n} of {}'s lost datagrams were dropped at {whose} own socket, its receive \
                     buffer full, not on the path: raise net.core.rmem_max or lower the rate",
                    label(r, show_variant),
                );
            }
        }
    }
    out
}

/// A row's workload, with its variant where the table shows variants.
fn label(r: &SummaryRow, show_variant: bool) -> String {
    if show_variant {
        format!("{} ({})", r.workload, r.variant)
    } else {
        r.workload.clone()
    }
}

/// Lays `table` out in columns two spaces apart: the first `left` columns
/// left-aligned, the others right-aligned, each line prefixed by `indent`.
pub fn aligned(table: &[Vec<String>], left: usize, indent: &str) -> String {
    let columns = table.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            table
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in table {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c < left {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{indent}{}", cells.join("  ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datagrams the probe's or the echo's socket dropped get a note under
    /// the table; none dropped, no note.
    #[test]
    fn local_drops_are_named_under_the_table() {
        let row = |drops: Option<u64>| SummaryRow {
            workload: "qos".into(),
            variant: "default".into(),
            kind: "udp".into(),
            sent: Some(100),
            received: Some(82),
            lost: Some(18),
            receive_drops: drops,
            origin_dropped: drops.map(|n| n / 2),
            ..SummaryRow::default()
        };
        let out = render(&[row(Some(12))]);
        for note in [
            "note: 12 of qos's lost datagrams were dropped at the probe's own socket",
            "note: 6 of qos's lost datagrams were dropped at the origin echo's own socket",
        ] {
            assert!(out.contains(note), "{out}");
        }
        assert!(!render(&[row(Some(0))]).contains("note:"));
        assert!(!render(&[row(None)]).contains("note:"));
    }
}
