//! Repetitions and the gate: `repeat` (runs of each variant), `order`
//! (interleaved or seeded shuffle) and `[gate]` (which metrics a baseline
//! check judges, which workloads measure the host).

use crate::metrics::judged::METRICS;
use crate::scenario::diag::ScenarioErrors;
use crate::scenario::{raw, GateSettings, Order, Variant};

/// More repetitions than this is a typo, not a measurement plan.
const MAX_REPEAT: i64 = 1000;

pub(super) fn resolve(r: &raw::Scenario, errs: &mut ScenarioErrors) -> (u32, Order) {
    let repeat = match &r.repeat {
        None => 1,
        Some(n) if (1..=MAX_REPEAT).contains(n.get_ref()) => *n.get_ref() as u32,
        Some(n) => {
            errs.push(
                Some(n.span()),
                "repeat",
                format!(
                    "{} is out of range; run each variant 1 to {MAX_REPEAT} times (5 or more for a CI gate)",
                    n.get_ref()
                ),
            );
            1
        }
    };
    let order = match r.order.as_ref().map(|o| (o.get_ref().as_str(), o.span())) {
        None | Some(("interleaved", _)) => Order::Interleaved,
        Some(("shuffled", _)) => Order::Shuffled,
        Some((other, span)) => {
            errs.push(
                Some(span),
                "order",
                format!("`{other}` is not an order; use \"interleaved\" (A B A B) or \"shuffled\""),
            );
            Order::Interleaved
        }
    };
    (repeat, order)
}

/// `[gate]`: metrics must be ones comparisons judge, workloads must exist.
pub(super) fn resolve_gate(
    r: &raw::Scenario,
    variants: &[Variant],
    errs: &mut ScenarioErrors,
) -> GateSettings {
    let Some(g) = &r.gate else {
        return GateSettings::default();
    };
    let workloads: Vec<&str> = variants
        .first()
        .map(|v| v.plan.workloads.iter().map(|w| w.name.as_str()).collect())
        .unwrap_or_default();
    let known_workload = |name: &str| workloads.contains(&name);
    let metric_names = || {
        METRICS
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let metrics = g.metrics.as_ref().map(|list| {
        let mut out = Vec::new();
        for entry in list.get_ref() {
            let (workload, metric) = match entry.split_once('.') {
                Some((w, m)) => (Some(w.to_string()), m),
                None => (None, entry.as_str()),
            };
            if !METRICS.iter().any(|m| m.name == metric) {
                errs.push(
                    Some(list.span()),
                    "gate.metrics",
                    format!("`{metric}` cannot be gated; use one of {}", metric_names()),
                );
                continue;
            }
            if let Some(w) = workload.as_deref().filter(|w| !known_workload(w)) {
                errs.push(
                    Some(list.span()),
                    "gate.metrics",
                    format!(
                        "no workload is named `{w}`; workloads: {}",
                        workloads.join(", ")
                    ),
                );
                continue;
            }
            out.push((workload, metric.to_string()));
        }
        out
    });
    let control = g.control.as_ref().map(|list| {
        for w in list.get_ref().iter().filter(|w| !known_workload(w)) {
            errs.push(
                Some(list.span()),
                "gate.control",
                format!(
                    "no workload is named `{w}`; workloads: {}",
                    workloads.join(", ")
                ),
            );
        }
        list.get_ref().clone()
    });
    GateSettings { metrics, control }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::scenario::Order;

    #[test]
    fn repeat_and_order() {
        let s = valid(&http(""));
        assert_eq!((s.repeat, s.order), (1, Order::Interleaved));
        let s = valid(&format!(
            "repeat = 5\norder = \"shuffled\"\nseed = 9\n{}",
            http("")
        ));
        assert_eq!((s.repeat, s.order, s.order_seed), (5, Order::Shuffled, 9));
        let m = problem(&format!("repeat = 0\n{}", http("")), "repeat");
        assert!(m.contains("out of range"), "{m}");
        let m = problem(&format!("order = \"random\"\n{}", http("")), "order");
        assert!(m.contains("\"shuffled\""), "{m}");
    }

    #[test]
    fn gate_metrics_and_controls() {
        let s = valid(&format!(
            "{}[gate]\nmetrics = [\"w.latency_p50_ms\", \"errors\"]\ncontrol = [\"w\"]\n",
            http("")
        ));
        assert_eq!(
            s.gate.metrics,
            Some(vec![
                (Some("w".to_string()), "latency_p50_ms".to_string()),
                (None, "errors".to_string())
            ])
        );
        assert_eq!(s.gate.control, Some(vec!["w".to_string()]));
        let m = problem(
            &format!("{}[gate]\nmetrics = [\"latency_p42_ms\"]\n", http("")),
            "gate.metrics",
        );
        assert!(m.contains("cannot be gated"), "{m}");
        let m = problem(
            &format!("{}[gate]\ncontrol = [\"nope\"]\n", http("")),
            "gate.control",
        );
        assert!(m.contains("no workload is named `nope`"), "{m}");
    }
}
