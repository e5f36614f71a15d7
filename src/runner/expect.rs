//! `[expect]` thresholds checked against the summary rows of every variant.

use crate::metrics::SummaryRow;
use crate::scenario::{ExpectationResult, Scenario};

/// Checks every expectation against every variant that ran the workload.
pub fn check_expectations(s: &Scenario, rows: &[SummaryRow]) -> Vec<ExpectationResult> {
    let mut out = Vec::new();
    for e in &s.expect {
        for row in rows.iter().filter(|r| r.workload == e.workload) {
            let actual = row.metric(&e.metric);
            out.push(ExpectationResult {
                variant: row.variant.clone(),
                repetition: row.repetition,
                workload: e.workload.clone(),
                metric: e.metric.clone(),
                expected: e.text.clone(),
                actual,
                // A metric that does not apply (empty) cannot pass a threshold.
                passed: actual.is_some_and(|a| e.op.holds(a, e.value)),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let s = crate::scenario::parse(
            std::path::Path::new("/nonexistent/t.toml"),
            r#"
            topology = { origin = { address = "127.0.0.1:1" }, proxy = { address = "127.0.0.1:2" } }
            [[workload]]
            kind = "http"
            name = "page"
            [expect]
            "page.latency_p99_ms" = "< 50"
            "page.cache_hit_ratio" = ">= 0.9"
            "page.latency_p999_ms" = "< 1"
            "#,
        )
        .unwrap();
        let row = SummaryRow {
            workload: "page".into(),
            variant: "default".into(),
            latency_p99_ms: Some(12.0),
            cache_hit_ratio: Some(0.5),
            ..Default::default()
        };
        let r = check_expectations(&s, &[row]);
        let by = |m: &str| r.iter().find(|x| x.metric == m).unwrap().passed;
        assert!(by("latency_p99_ms"));
        assert!(!by("cache_hit_ratio"));
        assert!(!by("latency_p999_ms"), "an empty metric never passes");
    }
}
