//! `[expect]`: `"<workload>.<metric>" = "<op> <number>"` thresholds, checked
//! against the workloads and the summary columns that kind of workload fills.

use crate::scenario::diag::{suggestion, ScenarioErrors};
use crate::scenario::raw;
use crate::scenario::{CompareOp, Expectation};

/// Summary columns that only a UDP workload fills.
const UDP_ONLY: &[&str] = &[
    "lost",
    "loss_percent",
    "late",
    "duplicates",
    "reordered",
    "jitter_ms",
    "ipdv_mean_ms",
    "foreign",
    "receive_drops",
    "origin_dropped",
    "proxy_dropped",
    "clients_proxy_dropped",
    "proxy_origin_dropped",
];
/// Summary columns that only an HTTP workload fills.
const HTTP_ONLY: &[&str] = &[
    "requests",
    "errors",
    "requests_per_s",
    "cache_hits",
    "cache_hit_ratio",
    "service_mean_ms",
    "service_p99_ms",
    "proxy_hits",
    "proxy_upstream_fetches",
    "proxy_bytes_from_cache",
    "byte_hit_ratio",
    "upstream_bytes",
    "cache_evictions",
    "connections",
    "tls_handshakes",
    "connect_p50_ms",
    "connect_p99_ms",
    "tls_p50_ms",
    "tls_p99_ms",
    "ttfb_p50_ms",
    "ttfb_p99_ms",
];

/// Summary columns that hold numbers, and so can be used in `[expect]`
/// (the repetition number is a label, not a measurement).
fn numeric_metrics() -> Vec<String> {
    let row = serde_json::to_value(crate::metrics::SummaryRow::default()).unwrap_or_default();
    row.as_object()
        .map(|m| {
            m.keys()
                .filter(|k| !crate::metrics::SummaryRow::LABEL_COLUMNS.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn resolve(r: &raw::Scenario, errs: &mut ScenarioErrors) -> Vec<Expectation> {
    let mut out = Vec::new();
    let Some(map) = &r.expect else { return out };
    // Name and kind of each workload as written (the base file, before the matrix).
    let workloads: Vec<(String, String)> = r
        .workload
        .iter()
        .filter_map(|w| {
            let w = w.get_ref();
            let name = w.name.as_ref()?.get_ref().clone();
            let kind = w.kind.as_ref().map(|k| k.get_ref().clone());
            Some((name, kind.unwrap_or_default()))
        })
        .collect();
    let metrics = numeric_metrics();
    for (key, value) in map {
        let ekey = format!("expect.\"{key}\"");
        let Some((workload, metric)) = key.split_once('.') else {
            errs.push(
                Some(value.span()),
                ekey,
                "is not \"<workload>.<metric>\"; write e.g. \"page.latency_p99_ms\"",
            );
            continue;
        };
        for why in check_subject(workload, metric, &workloads, &metrics) {
            errs.push(Some(value.span()), ekey.clone(), why);
        }
        match CompareOp::parse_threshold(value.get_ref()) {
            Ok((op, v, text)) => out.push(Expectation {
                workload: workload.to_string(),
                metric: metric.to_string(),
                op,
                value: v,
                text: text.to_string(),
            }),
            Err(why) => errs.push(Some(value.span()), ekey, why),
        }
    }
    out
}

/// What is wrong with `<workload>.<metric>`: the workload must exist and the
/// metric be a number column that its kind fills.
fn check_subject(
    workload: &str,
    metric: &str,
    workloads: &[(String, String)],
    metrics: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    let kind = workloads
        .iter()
        .find(|(w, _)| w == workload)
        .map(|(_, k)| k.as_str());
    if kind.is_none() {
        let names: Vec<&str> = workloads.iter().map(|(w, _)| w.as_str()).collect();
        problems.push(format!(
            "no workload is named `{workload}`{}; workloads: {}",
            suggestion(workload, names.iter().copied()),
            names.join(", ")
        ));
    }
    if !metrics.iter().any(|m| m == metric) {
        problems.push(format!(
            "`{metric}` is not a metric{}; use one of {}",
            suggestion(metric, metrics.iter().map(String::as_str)),
            metrics.join(", ")
        ));
    } else if let Some(kind) = kind {
        let foreign = match kind {
            "http" => UDP_ONLY.contains(&metric),
            "udp" => HTTP_ONLY.contains(&metric),
            _ => false,
        };
        if foreign {
            problems.push(format!(
                "`{metric}` does not apply to the {kind} workload `{workload}`; it would always be empty"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn comparisons_parse_longest_operator_first() {
        assert_eq!(
            CompareOp::parse_threshold(" <= 1.5 "),
            Ok((CompareOp::Le, 1.5, "<= 1.5"))
        );
        assert_eq!(
            CompareOp::parse_threshold("<1"),
            Ok((CompareOp::Lt, 1.0, "<1"))
        );
        assert_eq!(
            CompareOp::parse_threshold(">= 0"),
            Ok((CompareOp::Ge, 0.0, ">= 0"))
        );
        assert_eq!(
            CompareOp::parse_threshold("!= 2"),
            Ok((CompareOp::Ne, 2.0, "!= 2"))
        );
        assert_eq!(
            CompareOp::parse_threshold("== 1e3"),
            Ok((CompareOp::Eq, 1000.0, "== 1e3"))
        );
        assert!(CompareOp::parse_threshold("~ 1")
            .unwrap_err()
            .contains("has no comparison"));
        assert_eq!(
            CompareOp::parse_threshold("< many"),
            Err("`many` is not a number".into())
        );
        assert!(CompareOp::parse_threshold("< inf").is_err());
    }

    #[test]
    fn numeric_metrics_are_the_number_columns() {
        let m = numeric_metrics();
        assert!(m.iter().any(|c| c == "latency_p99_ms"));
        assert!(m.iter().any(|c| c == "cache_hit_ratio"));
        assert!(!m.iter().any(|c| c == "variant" || c == "interrupted"));
        // The kind-only lists name real columns.
        for c in UDP_ONLY.iter().chain(HTTP_ONLY) {
            assert!(m.iter().any(|x| x == c), "{c}");
        }
    }

    fn expect(line: &str) -> String {
        format!("{}[expect]\n{line}\n", http(""))
    }

    #[test]
    fn subjects_are_checked() {
        let s = valid(&expect("\"w.latency_p99_ms\" = \"< 50\""));
        assert_eq!(s.expect.len(), 1);
        assert_eq!(s.expect[0].metric, "latency_p99_ms");
        let m = problem(&expect("\"w\" = \"< 1\""), "expect.\"w\"");
        assert!(m.contains("<workload>.<metric>"), "{m}");
        let m = problem(&expect("\"x.errors\" = \"< 1\""), "expect.\"x.errors\"");
        assert!(
            m.starts_with("no workload is named `x`; workloads: w"),
            "{m}"
        );
        let m = problem(&expect("\"w.speed\" = \"< 1\""), "expect.\"w.speed\"");
        assert!(m.starts_with("`speed` is not a metric; use one of "), "{m}");
        let m = problem(
            &expect("\"w.latency_p99\" = \"< 1\""),
            "expect.\"w.latency_p99\"",
        );
        assert!(
            m.starts_with(
                "`latency_p99` is not a metric (did you mean `latency_p99_ms`?); use one of "
            ),
            "{m}"
        );
        let m = problem(&expect("\"ww.errors\" = \"< 1\""), "expect.\"ww.errors\"");
        assert_eq!(
            m,
            "no workload is named `ww` (did you mean `w`?); workloads: w"
        );
        let m = problem(
            &expect("\"w.jitter_ms\" = \"< 1\""),
            "expect.\"w.jitter_ms\"",
        );
        assert!(m.contains("does not apply to the http workload `w`"), "{m}");
        // Every problem of a line is reported.
        assert_eq!(problems(&expect("\"x.speed\" = \"~ 1\"")).len(), 3);
    }
}
