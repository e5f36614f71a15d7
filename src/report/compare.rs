//! Side by side: summary rows of several variants, runs or files in one
//! table, and the baseline check that turns a clearly worse figure into a
//! failed run. Pure: reading files is the only I/O here.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::metrics::SummaryRow;

/// Whether a larger value of a metric is better or worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// A metric shown in comparisons and checked against a baseline.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub better: Better,
    /// Changes smaller than this (in the metric's unit) are noise, never a regression.
    pub floor: f64,
}

const fn m(name: &'static str, better: Better, floor: f64) -> Metric {
    Metric {
        name,
        better,
        floor,
    }
}

/// The figures people compare, in display order.
pub const METRICS: &[Metric] = &[
    m("loss_percent", Better::Lower, 1.0),
    m("latency_p50_ms", Better::Lower, 0.5),
    m("latency_p90_ms", Better::Lower, 0.5),
    m("latency_p99_ms", Better::Lower, 1.0),
    m("jitter_ms", Better::Lower, 0.5),
    m("ipdv_mean_ms", Better::Lower, 0.5),
    m("throughput_bps", Better::Higher, 0.0),
    m("requests_per_s", Better::Higher, 0.0),
    m("errors", Better::Lower, 0.0),
    m("cache_hit_ratio", Better::Higher, 0.05),
    // What reached the origin: what a far origin makes expensive. The floor
    // keeps coalescing races (1 fetch or 2) from failing a baseline.
    m("proxy_upstream_fetches", Better::Lower, 5.0),
];

/// One column of a comparison: the rows of one variant of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub label: String,
    pub rows: Vec<SummaryRow>,
}

/// Reads a summary CSV (`results/<name>.csv`) or the history
/// (`results/history.csv`, whose `run_id` column tells runs apart).
pub fn read_summary(path: &Path) -> anyhow::Result<Vec<(Option<String>, SummaryRow)>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers = r
        .headers()
        .with_context(|| format!("cannot read {}", path.display()))?
        .clone();
    if !headers.iter().any(|h| h == "workload") {
        anyhow::bail!(
            "{} is not a netrun summary CSV (it has no `workload` column)",
            path.display()
        );
    }
    let run_col = headers.iter().position(|h| h == "run_id");
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: cannot read row {}", path.display(), i + 2))?;
        let row: SummaryRow = rec
            .deserialize(Some(&headers))
            .with_context(|| format!("{}: row {} is not a summary row", path.display(), i + 2))?;
        out.push((run_col.and_then(|c| rec.get(c)).map(str::to_string), row));
    }
    Ok(out)
}

/// Groups a file's rows into columns: one per run (history) and variant.
pub fn columns(source: &str, rows: Vec<(Option<String>, SummaryRow)>) -> Vec<Column> {
    let mut cols: Vec<Column> = Vec::new();
    for (run, row) in rows {
        let label = match &run {
            Some(run) => format!("{source}:{run}:{}", row.variant),
            None => format!("{source}:{}", row.variant),
        };
        match cols.iter_mut().find(|c| c.label == label) {
            Some(c) => c.rows.push(row),
            None => cols.push(Column {
                label,
                rows: vec![row],
            }),
        }
    }
    cols
}

fn fmt_value(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.3e}", v)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Relative change from `base` to `v`, as `+12.5%`.
fn change(base: f64, v: f64) -> String {
    if base == 0.0 {
        if v == 0.0 {
            "=".into()
        } else {
            "new".into()
        }
    } else {
        format!("{:+.1}%", (v - base) / base.abs() * 100.0)
    }
}

/// Renders the columns side by side: per workload, one line per metric that
/// any column has, each later column with its change against the first.
pub fn render(cols: &[Column]) -> String {
    let mut workloads: Vec<(String, String, String)> = Vec::new();
    for c in cols {
        for r in &c.rows {
            let key = (r.workload.clone(), r.kind.clone(), r.target.clone());
            if !workloads.iter().any(|w| w.0 == key.0) {
                workloads.push(key);
            }
        }
    }
    let mut out = String::new();
    for (wi, (workload, kind, target)) in workloads.iter().enumerate() {
        if wi > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{workload} ({kind} -> {target})");
        let mut table: Vec<Vec<String>> = vec![std::iter::once("metric".to_string())
            .chain(cols.iter().map(|c| c.label.clone()))
            .collect()];
        for metric in METRICS {
            let values: Vec<Option<f64>> = cols
                .iter()
                .map(|c| {
                    c.rows
                        .iter()
                        .find(|r| &r.workload == workload)
                        .and_then(|r| r.metric(metric.name))
                })
                .collect();
            if values.iter().all(Option::is_none) {
                continue;
            }
            let first = values[0];
            let mut line = vec![metric.name.to_string()];
            for (i, v) in values.iter().enumerate() {
                line.push(match (v, first, i) {
                    (None, _, _) => "-".into(),
                    (Some(v), Some(base), i) if i > 0 => {
                        format!("{} ({})", fmt_value(*v), change(base, *v))
                    }
                    (Some(v), _, _) => fmt_value(*v),
                });
            }
            table.push(line);
        }
        out.push_str(&super::summary::aligned(&table, 1, "  "));
    }
    out
}

/// A figure clearly worse than in the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    pub variant: String,
    pub workload: String,
    pub metric: String,
    pub baseline: f64,
    pub now: f64,
}

/// Compares rows with baseline rows of the same variant and workload. A
/// metric regresses when it is worse by more than `tolerance` (relative, 0.25
/// = 25 %) *and* by more than the metric's noise floor.
pub fn regressions(baseline: &[SummaryRow], now: &[SummaryRow], tolerance: f64) -> Vec<Regression> {
    let mut out = Vec::new();
    for row in now.iter().filter(|r| !r.interrupted) {
        let Some(base) = baseline
            .iter()
            .find(|b| b.workload == row.workload && b.variant == row.variant)
        else {
            continue;
        };
        for metric in METRICS {
            let (Some(b), Some(n)) = (base.metric(metric.name), row.metric(metric.name)) else {
                continue;
            };
            let worse = match metric.better {
                Better::Lower => n > b * (1.0 + tolerance) && n - b > metric.floor,
                Better::Higher => n < b * (1.0 - tolerance) && b - n > metric.floor,
            };
            if worse {
                out.push(Regression {
                    variant: row.variant.clone(),
                    workload: row.workload.clone(),
                    metric: metric.name.to_string(),
                    baseline: b,
                    now: n,
                });
            }
        }
    }
    out
}

impl Regression {
    pub fn describe(&self) -> String {
        let variant = if self.variant == "default" {
            String::new()
        } else {
            format!(" [{}]", self.variant)
        };
        format!(
            "{}.{}{variant}: {} → {} ({})",
            self.workload,
            self.metric,
            fmt_value(self.baseline),
            fmt_value(self.now),
            change(self.baseline, self.now)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(workload: &str, p99: f64, loss: f64, hit: Option<f64>) -> SummaryRow {
        SummaryRow {
            workload: workload.into(),
            variant: "default".into(),
            latency_p99_ms: Some(p99),
            loss_percent: Some(loss),
            cache_hit_ratio: hit,
            ..Default::default()
        }
    }

    #[test]
    fn regressions_need_both_tolerance_and_floor() {
        let base = [row("a", 10.0, 0.0, Some(0.9))];
        // p99 +20 %: within a 25 % tolerance. Loss +0.5 point: below the 1-point floor.
        assert!(regressions(&base, &[row("a", 12.0, 0.5, Some(0.9))], 0.25).is_empty());
        // p99 +50 % and +5 ms: a regression. Hit ratio 0.9 → 0.5: one too.
        let r = regressions(&base, &[row("a", 15.0, 0.0, Some(0.5))], 0.25);
        let names: Vec<&str> = r.iter().map(|x| x.metric.as_str()).collect();
        assert_eq!(names, ["latency_p99_ms", "cache_hit_ratio"]);
        // A tiny value doubling (0.2 → 0.4 ms) is noise under the 1 ms floor.
        let small = [row("a", 0.2, 0.0, None)];
        assert!(regressions(&small, &[row("a", 0.4, 0.0, None)], 0.25).is_empty());
        // Better figures and unmatched workloads never regress.
        assert!(regressions(
            &base,
            &[row("a", 1.0, 0.0, Some(1.0)), row("b", 99.0, 50.0, None)],
            0.25
        )
        .is_empty());
    }

    #[test]
    fn columns_group_runs_and_variants() {
        let mut r1 = row("a", 1.0, 0.0, None);
        r1.variant = "cache.enabled=true".into();
        let mut r2 = r1.clone();
        r2.variant = "cache.enabled=false".into();
        let cols = columns(
            "basic",
            vec![
                (None, r1.clone()),
                (None, r2),
                (None, row("b", 1.0, 0.0, None)),
            ],
        );
        let labels: Vec<&str> = cols.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "basic:cache.enabled=true",
                "basic:cache.enabled=false",
                "basic:default"
            ]
        );
        let hist = columns(
            "history",
            vec![(Some("r1".into()), r1.clone()), (Some("r2".into()), r1)],
        );
        assert_eq!(hist.len(), 2);
    }

    #[test]
    fn table_shows_changes_against_the_first_column() {
        let cols = vec![
            Column {
                label: "on".into(),
                rows: vec![row("page", 2.0, 0.0, Some(0.9))],
            },
            Column {
                label: "off".into(),
                rows: vec![row("page", 3.0, 0.0, Some(0.0))],
            },
        ];
        let text = render(&cols);
        assert!(text.starts_with("page ("), "{text}");
        assert!(text.contains("latency_p99_ms"), "{text}");
        assert!(text.contains("3 (+50.0%)"), "{text}");
        assert!(text.contains("0 (-100.0%)"), "{text}");
        assert!(
            !text.contains("jitter_ms"),
            "metrics no column has are left out"
        );
    }
}
