//! The human summary: a [`SummaryRow`] as aligned `metric  value unit` lines,
//! the metric names being the CSV columns and JSON keys, so what a user reads
//! is what a script greps. Metrics that do not apply (`None`) are left out.

use std::fmt::Write as _;

use serde_json::Value;

use crate::metrics::SummaryRow;

/// The metrics shown, in order, with their display unit.
const METRICS: &[(&str, &str)] = &[
    ("sent", ""),
    ("received", ""),
    ("lost", ""),
    ("loss_percent", "%"),
    ("late", ""),
    ("duplicates", ""),
    ("reordered", ""),
    ("foreign", ""),
    ("receive_drops", ""),
    ("requests", ""),
    ("errors", ""),
    ("requests_per_s", "req/s"),
    ("latency_min_ms", "ms"),
    ("latency_mean_ms", "ms"),
    ("latency_p50_ms", "ms"),
    ("latency_p90_ms", "ms"),
    ("latency_p99_ms", "ms"),
    ("latency_p999_ms", "ms"),
    ("latency_max_ms", "ms"),
    ("latency_stddev_ms", "ms"),
    ("service_mean_ms", "ms"),
    ("service_p99_ms", "ms"),
    ("jitter_ms", "ms"),
    ("ipdv_mean_ms", "ms"),
    ("throughput_bps", "bit/s"),
    ("cache_hits", ""),
    ("cache_hit_ratio", ""),
    ("proxy_hits", ""),
    ("proxy_upstream_fetches", ""),
    ("proxy_bytes_from_cache", "B"),
    ("proxy_dropped", ""),
    ("proxy_delayed", ""),
    ("clients_proxy_delayed", ""),
    ("clients_proxy_dropped", ""),
    ("proxy_origin_delayed", ""),
    ("proxy_origin_dropped", ""),
    ("origin_dropped", ""),
    ("pacing_mean_ms", "ms"),
    ("pacing_max_ms", "ms"),
    ("duration_s", "s"),
    ("start_skew_ms", "ms"),
];

/// Renders `row` as a title line (`kind workload → target`) and one aligned
/// line per metric that has a value.
pub fn render_summary(row: &SummaryRow) -> String {
    let value = serde_json::to_value(row).expect("a summary row serializes");
    let mut out = String::new();
    let mut title = format!("{} {}", row.kind, row.workload);
    if !row.target.is_empty() {
        let _ = write!(title, " → {}", row.target);
    }
    if row.interrupted {
        title.push_str(" (interrupted: partial results)");
    }
    out.push_str(title.trim());
    out.push('\n');
    let width = METRICS.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, unit) in METRICS {
        let Some(v) = value.get(*key).filter(|v| !v.is_null()) else {
            continue;
        };
        let (number, unit) = format_value(v, unit);
        let line = format!("  {key:<width$}  {number:>12} {unit}");
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// The number as shown and its unit (bit rates get an SI prefix).
fn format_value(v: &Value, unit: &str) -> (String, String) {
    match v {
        Value::Number(n) if n.is_u64() || n.is_i64() => (n.to_string(), unit.to_string()),
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if unit == "bit/s" {
                si_rate(x)
            } else {
                (format!("{x:.3}"), unit.to_string())
            }
        }
        other => (other.to_string(), unit.to_string()),
    }
}

/// `12345678` → (`12.346`, `Mbit/s`).
fn si_rate(bps: f64) -> (String, String) {
    const PREFIXES: [(f64, &str); 3] = [(1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, p) in PREFIXES {
        if bps >= scale {
            return (format!("{:.3}", bps / scale), format!("{p}bit/s"));
        }
    }
    (format!("{bps:.0}"), "bit/s".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_metric_is_a_summary_column() {
        let v = serde_json::to_value(SummaryRow::default()).unwrap();
        for (key, _) in METRICS {
            assert!(v.get(*key).is_some(), "{key} is not a SummaryRow field");
        }
    }

    #[test]
    fn udp_summary_table() {
        let row = SummaryRow {
            kind: "udp".into(),
            workload: "probe".into(),
            target: "127.0.0.1:9090".into(),
            sent: Some(20),
            received: Some(19),
            lost: Some(1),
            loss_percent: Some(5.0),
            late: Some(0),
            duplicates: Some(0),
            reordered: Some(0),
            latency_min_ms: Some(0.041),
            latency_mean_ms: Some(0.0525),
            latency_max_ms: Some(0.09),
            jitter_ms: Some(0.004),
            throughput_bps: Some(10_240.0),
            duration_s: Some(3.9),
            ..SummaryRow::default()
        };
        insta::assert_snapshot!(render_summary(&row));
    }
}
