//! `--baseline` for `netrun run`: reading the baseline's rows and samples,
//! refusing a baseline the run would overwrite, what a scenario gates, and
//! printing the gate's findings.

use std::path::Path;

use crate::error::Error;
use crate::metrics::SummaryRow;
use crate::report::compare;
use crate::report::gate::{self, GateConfig, GateReport, Samples};
use crate::report::run_record::{BaselineFinding, BaselineInfo};
use crate::scenario::{self, Scenario};

/// A baseline's rows and, for single runs, the latency samples beside it.
pub(super) struct Baseline {
    pub(super) rows: Vec<SummaryRow>,
    pub(super) samples: Option<Samples>,
}

/// The baseline rows for each scenario, in order. A folder holds one summary
/// per scenario (`<dir>/<name>.csv`); a file is used for every scenario (its
/// rows of that scenario, or all of them if it names none).
pub(super) fn load_baselines(path: &Path, scenarios: &[Scenario]) -> anyhow::Result<Vec<Baseline>> {
    let mut out = Vec::new();
    for s in scenarios {
        let file = if path.is_dir() {
            path.join(format!("{}.csv", s.name))
        } else {
            path.to_path_buf()
        };
        if !file.exists() {
            return Err(Error::input(format!(
                "--baseline: {} does not exist; run the scenario once without --baseline to make one",
                file.display()
            ))
            .into());
        }
        let rows: Vec<SummaryRow> = compare::read_summary(&file)
            .map_err(|e| Error::input(format!("--baseline: {e:#}")))?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let own: Vec<SummaryRow> = rows
            .iter()
            .filter(|r| r.scenario == s.name)
            .cloned()
            .collect();
        out.push(Baseline {
            rows: if own.is_empty() { rows } else { own },
            samples: compare::read_samples(&file)
                .map_err(|e| Error::input(format!("--baseline: {e:#}")))?,
        });
    }
    Ok(out)
}

/// Prints the baseline check: one REGRESSION line per `worse` metric, the
/// inconclusive ones in one line, and the host check when it mattered.
pub(super) fn print_gate(r: &GateReport, tolerance: f64) {
    let worse: Vec<_> = r.worse().collect();
    if worse.is_empty() {
        println!(
            "  baseline: no gated figure worse beyond {tolerance}% with 95% confidence ({} checked)",
            r.assessments.len()
        );
    }
    for a in worse {
        println!("  REGRESSION {}", gate::describe(a));
    }
    let unsure: Vec<String> = r
        .inconclusive()
        .map(|a| format!("{}.{}", a.workload, a.metric))
        .collect();
    if !unsure.is_empty() {
        println!(
            "  inconclusive (not failed; --json or --junit say why): {}",
            unsure.join(", ")
        );
    }
    if let Some(why) = &r.host_changed {
        println!("  host: slower than when the baseline was made ({why}); worse figures it could explain count as inconclusive");
    }
}

/// What the scenario gates: its `[gate]`, else the default metrics, with
/// workloads aimed straight at the origin (no proxy in the path) as the
/// host's controls.
pub(super) fn gate_config(s: &Scenario) -> GateConfig {
    let mut cfg = GateConfig::default();
    if let Some(m) = &s.gate.metrics {
        cfg.metrics.clone_from(m);
    }
    cfg.controls = match &s.gate.control {
        Some(c) => c.clone(),
        None => s
            .variants
            .first()
            .map(|v| {
                v.plan
                    .workloads
                    .iter()
                    .filter(|w| w.target == scenario::Target::Origin)
                    .map(|w| w.name.clone())
                    .collect()
            })
            .unwrap_or_default(),
    };
    cfg
}

/// A run writes `<out>/<name>.csv`; refuse a baseline that is that very
/// file (or folder), so a failing run can never replace its own baseline.
pub(super) fn refuse_own_baseline(
    baseline: &Path,
    out: &Path,
    scenarios: &[Scenario],
) -> Result<(), Error> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let clash = if baseline.is_dir() {
        same(baseline, out)
    } else {
        scenarios
            .iter()
            .any(|s| same(baseline, &out.join(format!("{}.csv", s.name))))
    };
    if clash {
        return Err(Error::input(format!(
            "--baseline {} is where this run writes its results (--out {}); a failing run would \
             overwrite its own baseline. Give --out another folder (e.g. --out results)",
            baseline.display(),
            out.display()
        )));
    }
    Ok(())
}

/// The baseline check as the report shows it: every gated figure's verdict.
pub(super) fn baseline_info(source: &Path, tolerance: f64, gate: &GateReport) -> BaselineInfo {
    BaselineInfo {
        source: source.display().to_string(),
        tolerance_percent: tolerance,
        findings: gate
            .assessments
            .iter()
            .map(|a| BaselineFinding {
                variant: a.variant.clone(),
                workload: a.workload.clone(),
                metric: a.metric.clone(),
                verdict: a.verdict.as_str().to_string(),
                text: gate::describe(a),
            })
            .collect(),
        host_changed: gate.host_changed.clone(),
    }
}
