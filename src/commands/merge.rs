//! `netrun merge DIR... --out DIR`: join the results folders of `--shard`
//! or `--segment` runs into one run's results and print where they went;
//! with `--baseline`, `--junit` and `--json`, gate the merged rows as `netrun
//! run` gates its own (the same code: `run::baseline`, `junit`, `JsonRun`).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;

use super::run::baseline::{
    baseline_info, check_matches, load_baselines, print_gate, refuse_own_baseline, Baseline,
};
use super::run::{check_tolerance, print_json, JsonRun};
use crate::cli::MergeArgs;
use crate::error::Outcome;
use crate::merge::{Group, Merged};
use crate::metrics::SummaryRow;
use crate::report::gate::{self, GateConfig, GateReport};
use crate::report::junit::{self, Suite};
use crate::report::{compare, html, summary};
use crate::scenario::ExpectationResult;

pub fn merge(args: MergeArgs) -> anyhow::Result<Outcome> {
    check_tolerance(args.tolerance)?;
    // Every folder (and the baseline) is read and checked before --out is
    // made or written to.
    let plan = crate::merge::plan(&args.inputs, &args.out, args.partial)?;
    let configs: Vec<GateConfig> = plan.groups.iter().map(|g| gate_config(g, &args)).collect();
    let baselines = match &args.baseline {
        Some(b) => {
            let names: Vec<&str> = plan.groups.iter().map(|g| g.scenario.as_str()).collect();
            refuse_own_baseline(b, &args.out, &names)?;
            let loaded = load_baselines(b, &names)?;
            for ((g, cfg), base) in plan.groups.iter().zip(&configs).zip(&loaded) {
                check_matches(b, &base.rows, &g.scenario, &measured(g), cfg)?;
            }
            Some(loaded)
        }
        None => None,
    };
    let mut merged = crate::merge::write(&plan, &args.out)?;

    let mut gates: Vec<Option<GateReport>> = Vec::new();
    for (i, m) in merged.iter_mut().enumerate() {
        let gate = match (&args.baseline, &baselines) {
            (Some(path), Some(b)) => Some(judge(m, path, &b[i], &configs[i], &args)?),
            _ => None,
        };
        for w in skew_warnings(&m.rows) {
            errln!("warning: {w}");
        }
        if !args.json {
            print_merged(m);
            if let Some(r) = &gate {
                print_gate(r, args.tolerance);
            }
            match &m.report {
                Ok(path) => outln!("report: {}", path.display()),
                Err(e) => errln!("warning: cannot write the report: {e}"),
            }
        }
        gates.push(gate);
    }
    let expectations: Vec<Vec<ExpectationResult>> = merged
        .iter()
        .map(|m| m.expectations.iter().map(ExpectationResult::from).collect())
        .collect();
    if let Some(path) = &args.junit {
        let suites: Vec<Suite> = merged
            .iter()
            .zip(&expectations)
            .zip(&gates)
            .map(|((m, e), g)| Suite::of(&m.scenario, e, g.as_ref()))
            .collect();
        junit::write(path, &suites)?;
    }
    if args.json {
        let runs: Vec<JsonRun> = merged
            .iter()
            .zip(&gates)
            .map(|(m, g)| JsonRun {
                scenario: &m.scenario,
                run_id: &m.record.run_id,
                interrupted: m.record.interrupted,
                summary_csv: &m.summary_csv,
                rows: &m.rows,
                expectations: m.expectations.clone(),
                gate: g.as_ref(),
                report: m.report.as_deref().ok(),
            })
            .collect();
        print_json(&runs)?;
    }
    let failed = merged
        .iter()
        .any(|m| m.expectations.iter().any(|e| !e.passed))
        || gates.iter().flatten().any(GateReport::failed);
    Ok(if failed {
        Outcome::ExpectationFailed
    } else {
        Outcome::Success
    })
}

/// What the merged scenario gates: what its runs recorded (their `[gate]`,
/// the same in every part: they ran one version of the file), with this
/// merge's `--allow-inconclusive`.
fn gate_config(g: &Group, args: &MergeArgs) -> GateConfig {
    let recorded = g.parts.iter().find_map(|p| p.info.gate.clone());
    if recorded.is_none() && args.baseline.is_some() {
        errln!(
            "warning: the runs of `{}` record no [gate] (made by an older netrun): \
             the default metrics are gated, with no control workloads",
            g.scenario
        );
    }
    GateConfig {
        allow_inconclusive: args.allow_inconclusive,
        ..recorded.unwrap_or_default()
    }
}

/// The (variant label, workload) pairs the merged run holds: every
/// workload of every variant that some part ran.
fn measured(g: &Group) -> Vec<(String, String)> {
    let ran: BTreeSet<&str> = g
        .parts
        .iter()
        .flat_map(|p| p.info.units.iter().map(|u| u.variant.as_str()))
        .collect();
    let Some(first) = g.parts.first() else {
        return Vec::new();
    };
    first
        .info
        .variants
        .iter()
        .filter(|v| ran.contains(v.label.as_str()))
        .flat_map(|v| {
            v.workloads
                .iter()
                .map(move |w| (v.label.clone(), w.name.clone()))
        })
        .collect()
}

/// Gates the merged rows against the baseline, records the findings in the
/// merged run.json and rebuilds the report so it shows them.
fn judge(
    m: &mut Merged,
    path: &Path,
    baseline: &Baseline,
    cfg: &GateConfig,
    args: &MergeArgs,
) -> anyhow::Result<GateReport> {
    let now_samples = compare::read_samples_dir(&m.results_dir)?;
    let report = gate::gate(
        &baseline.rows,
        &m.rows,
        (baseline.samples.as_ref(), now_samples.as_ref()),
        cfg,
        args.tolerance / 100.0,
    );
    m.record.baseline = Some(baseline_info(path, args.tolerance, &report));
    m.record
        .write(&m.results_dir)
        .context("cannot add the baseline findings to the merged run record")?;
    m.report =
        html::after_run(&m.scenario, &m.summary_csv, &m.results_dir).map_err(|e| format!("{e:#}"));
    Ok(report)
}

/// What was merged, the merged table and the expectations judged on it.
fn print_merged(m: &Merged) {
    outln!(
        "scenario {}: {} {} merged, {} rows",
        m.scenario,
        m.parts,
        m.kind,
        m.rows.len()
    );
    for t in &m.taken {
        outln!("  {t}");
    }
    for gone in &m.missing {
        outln!("  PARTIAL: merged without {gone}");
    }
    outln!();
    out!("{}", summary::render(&m.rows));
    for e in &m.expectations {
        let actual = e
            .actual
            .map_or("(empty)".to_string(), |a| format!("{a:.3}"));
        outln!(
            "  {} {}.{} {} (measured {actual}, variant {}, repetition {})",
            if e.passed { "pass" } else { "FAIL" },
            e.workload,
            e.metric,
            e.expected,
            e.variant,
            e.repetition
        );
    }
    outln!();
    outln!(
        "results: {} and {}/",
        m.summary_csv.display(),
        m.results_dir.display()
    );
}

/// The agents of a `--segment` run should apply their shares together: a
/// row whose agents started more than 1 % of its duration apart did not
/// load the service as the scenario meant.
fn skew_warnings(rows: &[SummaryRow]) -> Vec<String> {
    rows.iter()
        .filter_map(|r| {
            let (skew, secs) = (r.start_skew_ms?, r.duration_s?);
            (skew > secs * 1000.0 * 0.01).then(|| {
                format!(
                    "the agents started `{}` (variant {}, repetition {}) {skew} ms apart, \
                     more than 1 % of its {secs} s: their loads overlapped less than the \
                     scenario meant (give them one --start-at, further ahead)",
                    r.workload, r.variant, r.repetition
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_over_one_percent_of_the_duration_is_named() {
        let row = |skew, secs| SummaryRow {
            workload: "h".into(),
            variant: "default".into(),
            repetition: 1,
            start_skew_ms: skew,
            duration_s: Some(secs),
            ..SummaryRow::default()
        };
        assert!(skew_warnings(&[row(Some(99.0), 10.0), row(None, 1.0)]).is_empty());
        let w = skew_warnings(&[row(Some(101.0), 10.0)]);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("`h`") && w[0].contains("101 ms"), "{}", w[0]);
    }
}
