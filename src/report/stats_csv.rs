//! `results/<name>.stats.csv`: per variant, workload and metric, the spread
//! of the metric over the repetitions (n, mean, median, stddev, min, max)
//! and a 95 % confidence interval of its mean (Student's t). Other tools
//! (the HTML report) read it; its columns are documented in docs/src/results.md.

use serde::{Deserialize, Serialize};

use crate::metrics::SummaryRow;
use crate::stats::{t_interval, Describe, LEVEL};

/// How `ci_low` and `ci_high` are made: Student's t interval of the mean
/// over the repetitions (empty below 2 repetitions).
pub const CI_METHOD: &str = "t95-mean";

/// One row of the stats file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsRow {
    pub scenario: String,
    pub variant: String,
    pub workload: String,
    /// A numeric summary column (`latency_p50_ms`), in that column's unit.
    pub metric: String,
    /// Repetitions that have a value for the metric.
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    /// Sample standard deviation (n − 1); empty for n = 1.
    pub stddev: Option<f64>,
    pub min: f64,
    pub max: f64,
    /// 95 % confidence interval of the mean; empty for n = 1.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// [`CI_METHOD`].
    pub ci_method: String,
}

/// The stats rows of a run's summary rows (interrupted rows left out), in
/// the order variants and workloads first appear, metrics in column order.
pub fn stats_rows(rows: &[SummaryRow]) -> Vec<StatsRow> {
    let rows: Vec<&SummaryRow> = rows.iter().filter(|r| !r.interrupted).collect();
    let mut keys: Vec<(&str, &str, &str)> = Vec::new();
    for r in &rows {
        let k = (r.scenario.as_str(), r.variant.as_str(), r.workload.as_str());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let columns: Vec<String> = crate::report::atomic::header_of::<SummaryRow>()
        .map(|h| h.iter().map(str::to_string).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (scenario, variant, workload) in keys {
        let group: Vec<&SummaryRow> = rows
            .iter()
            .copied()
            .filter(|r| r.scenario == scenario && r.variant == variant && r.workload == workload)
            .collect();
        for metric in columns
            .iter()
            .filter(|c| !SummaryRow::LABEL_COLUMNS.contains(&c.as_str()))
        {
            let values: Vec<f64> = group.iter().filter_map(|r| r.metric(metric)).collect();
            let Some(d) = Describe::of(&values) else {
                continue;
            };
            let ci = t_interval(&values, LEVEL);
            out.push(StatsRow {
                scenario: scenario.to_string(),
                variant: variant.to_string(),
                workload: workload.to_string(),
                metric: metric.clone(),
                n: d.n,
                mean: d.mean,
                median: d.median,
                stddev: d.stddev,
                min: d.min,
                max: d.max,
                ci_low: ci.map(|c| c.low),
                ci_high: ci.map(|c| c.high),
                ci_method: CI_METHOD.to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_metric_with_its_interval() {
        let rows: Vec<SummaryRow> = (1..=10)
            .map(|i| SummaryRow {
                scenario: "s".into(),
                variant: "default".into(),
                workload: "w".into(),
                repetition: i,
                latency_p50_ms: Some(f64::from(i)),
                ..Default::default()
            })
            .collect();
        let stats = stats_rows(&rows);
        assert_eq!(stats.len(), 1, "{stats:#?}");
        let s = &stats[0];
        assert_eq!((s.metric.as_str(), s.n), ("latency_p50_ms", 10));
        assert_eq!((s.mean, s.median, s.min, s.max), (5.5, 5.5, 1.0, 10.0));
        // 1..10: t(0.975, 9) × 3.02765 / √10 = 2.16585
        assert!((s.ci_low.unwrap() - 3.334149).abs() < 1e-5);
        assert!((s.ci_high.unwrap() - 7.665851).abs() < 1e-5);
        assert_eq!(s.ci_method, "t95-mean");
        let one = stats_rows(&rows[..1]);
        assert_eq!((one[0].stddev, one[0].ci_low), (None, None));
    }
}
