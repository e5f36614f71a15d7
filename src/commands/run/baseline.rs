//! `--baseline` for `netrun run`: reading the baseline's rows and samples,
//! refusing a baseline the run would overwrite, what a scenario gates, and
//! printing the gate's findings.

use std::path::Path;

use crate::cli::RunArgs;
use crate::error::Error;
use crate::metrics::SummaryRow;
use crate::report::compare;
use crate::report::gate::{self, GateConfig, GateReport, Samples};
use crate::report::run_record::{BaselineFinding, BaselineInfo};
use crate::scenario::Scenario;

/// A baseline's rows and, for single runs, the latency samples beside it.
pub(in crate::commands) struct Baseline {
    pub(in crate::commands) rows: Vec<SummaryRow>,
    pub(in crate::commands) samples: Option<Samples>,
}

/// The baseline rows for each scenario, in order. A folder holds one summary
/// per scenario (`<dir>/<name>.csv`); a file is used for every scenario (its
/// rows of that scenario, or all of them if it names none).
pub(in crate::commands) fn load_baselines(
    path: &Path,
    scenarios: &[&str],
) -> anyhow::Result<Vec<Baseline>> {
    let mut out = Vec::new();
    for &name in scenarios {
        let file = if path.is_dir() {
            path.join(format!("{name}.csv"))
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
            .filter(|r| r.scenario == name)
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

/// Prints the baseline check: one line per `worse` figure, one per figure
/// that could not be judged (with why, and how many of the gated figures
/// that is), one per other inconclusive figure, and the host check when it
/// mattered.
pub(in crate::commands) fn print_gate(r: &GateReport, tolerance: f64) {
    let worse: Vec<_> = r.worse().collect();
    let unjudged: Vec<_> = r.unjudged().collect();
    let total = r.assessments.len();
    if worse.is_empty() && unjudged.is_empty() {
        outln!(
            "  baseline: no gated figure worse beyond {tolerance}% with 95% confidence ({total} checked)"
        );
    }
    for a in worse {
        outln!("  REGRESSION {}", gate::describe(a));
    }
    if !unjudged.is_empty() {
        let how = if r.allow_inconclusive {
            "allowed by --allow-inconclusive"
        } else {
            "the gate fails; --allow-inconclusive accepts it"
        };
        outln!(
            "  {} of {total} gated figures could not be judged ({how}):",
            unjudged.len()
        );
        for a in &unjudged {
            outln!("    NOT JUDGED {}.{}: {}", a.workload, a.metric, a.reason);
        }
    }
    for a in r.inconclusive().filter(|a| !a.unjudged()) {
        outln!("  inconclusive (not failed) {}", gate::describe(a));
    }
    if let Some(why) = &r.host_changed {
        outln!("  host: slower than when the baseline was made ({why}); worse figures it could explain count as inconclusive");
    }
}

/// Every gated figure this run will measure must have a baseline row
/// (same scenario, variant and workload): a renamed scenario or workload is
/// refused before the run (exit 2, naming what has no row) instead of a
/// gate that checks nothing and passes. `measured`: the (variant label,
/// workload) pairs of `scenario` the run measures.
pub(in crate::commands) fn check_matches(
    baseline: &Path,
    rows: &[SummaryRow],
    scenario: &str,
    measured: &[(String, String)],
    cfg: &GateConfig,
) -> Result<(), Error> {
    let gated: Vec<String> = measured
        .iter()
        .filter(|(_, w)| !cfg.controls.contains(w))
        .filter(|(_, w)| cfg.metrics.iter().any(|(_, m)| cfg.gates(w, m)))
        .filter(|(variant, workload)| {
            !rows
                .iter()
                .any(|r| r.scenario == scenario && r.variant == *variant && r.workload == *workload)
        })
        .map(|(variant, workload)| format!("`{scenario}.{variant}.{workload}`"))
        .collect();
    if gated.is_empty() {
        return Ok(());
    }
    let mut held: Vec<String> = rows
        .iter()
        .map(|r| format!("`{}.{}.{}`", r.scenario, r.variant, r.workload))
        .collect();
    held.dedup();
    let matched_nothing = !rows.iter().any(|r| r.scenario == scenario);
    let what = if matched_nothing {
        "matches nothing this run measures"
    } else {
        "has no row for some gated workloads"
    };
    Err(Error::input(format!(
        "--baseline {} {what}: no baseline row for {} (it holds {}). Make a new baseline \
         from this scenario (run it without --baseline), or undo the rename",
        baseline.display(),
        gated.join(", "),
        if held.is_empty() {
            "no rows".to_string()
        } else {
            held.join(", ")
        }
    )))
}

/// What the scenario gates ([`GateConfig::of`]), with `--allow-inconclusive`.
pub(super) fn gate_config(s: &Scenario, args: &RunArgs) -> GateConfig {
    GateConfig {
        allow_inconclusive: args.allow_inconclusive,
        ..GateConfig::of(s)
    }
}

/// A run writes `<out>/<name>.csv`; refuse a baseline that is that very
/// file (or folder), so a failing run can never replace its own baseline.
pub(in crate::commands) fn refuse_own_baseline(
    baseline: &Path,
    out: &Path,
    scenarios: &[&str],
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
            .any(|name| same(baseline, &out.join(format!("{name}.csv"))))
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
pub(in crate::commands) fn baseline_info(
    source: &Path,
    tolerance: f64,
    gate: &GateReport,
) -> BaselineInfo {
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
