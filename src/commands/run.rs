//! `netrun [run] FILE...`: validate every file first, then run them one after
//! another, print a summary table (or JSON) and decide the exit code.

pub(super) mod baseline;
pub(super) mod live;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::cli::RunArgs;
use crate::error::{Error, Outcome};
use crate::metrics::SummaryRow;
use crate::report::compare;
use crate::report::gate::{self, GateReport};
use crate::report::html;
use crate::report::junit::{self, Suite};
use crate::report::run_record::{ExpectationInfo, ShardedFile};
use crate::report::{progress, summary};
pub use crate::runner::output::check_out;
use crate::runner::{self, Observer, ScenarioRun, Share};
use crate::scenario::{self, Scenario};
use crate::shard::Part;
use baseline::{
    baseline_info, check_matches, gate_config, load_baselines, print_gate, refuse_own_baseline,
};
use live::LiveView;

pub async fn run(args: RunArgs) -> anyhow::Result<Outcome> {
    let Prepared {
        whole,
        scenarios,
        shares,
    } = prepare(&args)?;
    let baselines = match &args.baseline {
        Some(b) => {
            let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
            refuse_own_baseline(b, &args.out, &names)?;
            let loaded = load_baselines(b, &names)?;
            for (i, s) in scenarios.iter().enumerate() {
                let cfg = gate_config(s, &args);
                check_matches(b, &loaded[i].rows, &s.name, &measured(s, &shares[i]), &cfg)?;
            }
            Some(loaded)
        }
        None => None,
    };

    // A shard records every file's units, so `merge` can name a missing shard.
    let sharded_run: Vec<ShardedFile> = match args.shard {
        Some(_) => whole
            .iter()
            .map(|s| ShardedFile {
                scenario: s.name.clone(),
                scenario_digest: s.digest.clone(),
                units: runner::schedule(s).len(),
            })
            .collect(),
        None => Vec::new(),
    };
    let cancel = super::interrupt_on_signal();
    let mp = progress::multi(args.quiet || args.json);
    // Without bars to watch (stdout is not a terminal), a line per workload start and end.
    let announce = !args.json && !args.quiet && mp.is_hidden();
    let view = Arc::new(LiveView::new(mp, announce));
    let observer: Arc<dyn Observer> = view.clone();

    let barrier = runner::Barrier::new(args.start_at);
    if let (Some(at), false) = (args.start_at, args.json) {
        outln!("start: the workloads start at {at} (--start-at), the services up");
    }
    let mut runs: Vec<ScenarioRun> = Vec::new();
    let mut gates: Vec<Option<GateReport>> = Vec::new();
    let mut pages: Vec<Option<PathBuf>> = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        if cancel.is_stopped() {
            break;
        }
        if shares[i].is_empty() {
            continue;
        }
        if !args.json {
            print_header(s, &args, shares[i].len());
        }
        let share = Share {
            whole: &whole[i],
            positions: shares[i].clone(),
            shard: args.shard,
            segment: args.segment,
            barrier: Some(&barrier),
            sharded_run: sharded_run.clone(),
        };
        let mut run = runner::run_scenario_units(s, &share, &args.out, &observer, &cancel).await?;
        let report = match &baselines {
            Some(b) => {
                let now_samples = compare::read_samples_dir(&run.results_dir)?;
                Some(gate::gate(
                    &b[i].rows,
                    &run.rows,
                    (b[i].samples.as_ref(), now_samples.as_ref()),
                    &gate_config(s, &args),
                    args.tolerance / 100.0,
                ))
            }
            None => None,
        };
        if let Some((b, g)) = args.baseline.as_ref().zip(report.as_ref()) {
            run.record.baseline = Some(baseline_info(b, args.tolerance, g));
            run.record
                .write(&run.results_dir)
                .context("cannot add the baseline findings to the run record")?;
        }
        let page = write_report(&run);
        // An agent's share says nothing about the whole's thresholds: they
        // are in run.json, and `netrun merge` judges the added-up rows.
        let judged_later = args.segment.is_some() && !run.expectations.is_empty();
        if judged_later {
            run.expectations.clear();
        }
        if !args.json {
            if !view.mp.is_hidden() {
                // The finished bars stay on screen; the cursor is still on
                // the last one's line.
                outln!();
            }
            print_run(&run);
            if judged_later {
                outln!(
                    "  expectations: judged on the whole run by `netrun merge` of every segment"
                );
            }
            if let Some(r) = barrier.released() {
                outln!(
                    "  start: the workloads started at {} ({:.1} ms after --start-at)",
                    humantime::format_rfc3339_millis(r.started),
                    r.late_ms()
                );
            }
            if let Some(r) = &report {
                print_gate(r, args.tolerance);
            }
            if let Some(path) = &page {
                outln!("report: {}", path.display());
            }
        }
        runs.push(run);
        gates.push(report);
        pages.push(page);
    }
    if let Some(path) = &args.junit {
        let suites: Vec<Suite> = runs
            .iter()
            .zip(&gates)
            .map(|(r, g)| Suite::of(&r.scenario, &r.expectations, g.as_ref()))
            .collect();
        junit::write(path, &suites)?;
    }
    if args.json {
        let json: Vec<JsonRun> = runs
            .iter()
            .zip(&gates)
            .zip(&pages)
            .map(|((r, g), p)| JsonRun::of(r, g.as_ref(), p.as_deref()))
            .collect();
        print_json(&json)?;
    }
    outcome(cancel.is_stopped(), &runs, &gates)
}

/// The scenarios to run, checked before anything runs: `whole` as the
/// files say (with `--repeat`), `scenarios` as this run applies them (a
/// `--segment`'s share), and each one's `--shard` share of its runs.
struct Prepared {
    whole: Vec<Scenario>,
    scenarios: Vec<Scenario>,
    shares: Vec<Vec<usize>>,
}

fn prepare(args: &RunArgs) -> anyhow::Result<Prepared> {
    if args.scenarios.is_empty() {
        return Err(Error::input(
            "no scenario given; try `netrun run scenarios/basic.toml` (files are TOML, see `netrun check`)",
        )
        .into());
    }
    check_tolerance(args.tolerance)?;
    check_out(&args.out)?;
    // Every file is validated before any runs, so a typo in the third file
    // does not surface after two long runs (nor a scenario this machine
    // cannot run: network namespaces without root).
    let (mut scenarios, error) = scenario::load_all(&args.scenarios);
    if let Some(e) = error {
        return Err(e.into());
    }
    for s in &scenarios {
        runner::preflight(s)?;
    }
    if let Some(n) = args.repeat {
        for s in &mut scenarios {
            s.repeat = n;
        }
    }
    // The whole scenarios describe the run (run.json); a segment runs its share.
    let whole = scenarios.clone();
    if let Some(part) = args.segment {
        for s in &mut scenarios {
            *s = scenario::segment::segment(s, part)?;
        }
    }
    let shares = shard_shares(&scenarios, args.shard);
    if let Some(part) = args.shard {
        let units: usize = shares.iter().map(Vec::len).sum();
        if units == 0 && !args.json {
            outln!(
                "shard {part}: no units to run (the files hold fewer than {} runs of a variant)",
                part.n
            );
        }
    }
    Ok(Prepared {
        whole,
        scenarios,
        shares,
    })
}

/// The lines that open a scenario's run: its name and file, description,
/// and which share of the runs or of the load this is.
fn print_header(s: &Scenario, args: &RunArgs, runs: usize) {
    outln!("scenario {} ({})", s.name, s.source.display());
    if !s.description.is_empty() {
        outln!("  {}", s.description);
    }
    if let Some(part) = args.shard {
        outln!(
            "  shard {part}: {runs} of {} runs",
            runner::schedule(s).len()
        );
    }
    if let Some(part) = args.segment {
        outln!("  segment {part}: this agent's share of every workload's load");
    }
}

/// The (variant label, workload) pairs the units at `positions` measure.
fn measured(s: &Scenario, positions: &[usize]) -> Vec<(String, String)> {
    let schedule = runner::schedule(s);
    let mut variants: Vec<usize> = positions
        .iter()
        .filter_map(|&p| schedule.get(p).map(|u| u.0))
        .collect();
    variants.sort_unstable();
    variants.dedup();
    variants
        .iter()
        .filter_map(|&v| s.variants.get(v))
        .flat_map(|v| {
            v.plan
                .workloads
                .iter()
                .map(move |w| (v.label.clone(), w.name.clone()))
        })
        .collect()
}

/// One scenario's results as `--json` prints them, for `run` and `merge`.
pub(super) struct JsonRun<'a> {
    pub scenario: &'a str,
    pub run_id: &'a str,
    pub interrupted: bool,
    pub summary_csv: &'a Path,
    pub rows: &'a [SummaryRow],
    pub expectations: Vec<ExpectationInfo>,
    pub gate: Option<&'a GateReport>,
    pub report: Option<&'a Path>,
}

impl<'a> JsonRun<'a> {
    fn of(r: &'a ScenarioRun, gate: Option<&'a GateReport>, report: Option<&'a Path>) -> Self {
        JsonRun {
            scenario: &r.scenario,
            run_id: &r.run_id,
            interrupted: r.interrupted,
            summary_csv: &r.summary_csv,
            rows: &r.rows,
            expectations: r.expectations.iter().map(ExpectationInfo::from).collect(),
            gate,
            report,
        }
    }
}

/// `--json`: every run with its rows, expectations, baseline verdicts and report.
pub(super) fn print_json(runs: &[JsonRun<'_>]) -> anyhow::Result<()> {
    let doc = serde_json::json!({
        "runs": runs.iter().map(|r| serde_json::json!({
            "scenario": r.scenario,
            "run_id": r.run_id,
            "interrupted": r.interrupted,
            "summary_csv": r.summary_csv,
            "rows": r.rows,
            "expectations": r.expectations,
            "regressions": r.gate.map(|g| g.worse().collect::<Vec<_>>()).unwrap_or_default(),
            "baseline": r.gate,
            "report": r.report,
        })).collect::<Vec<_>>()
    });
    outln!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

/// How the run ends: interrupted (130), no reply at all (3), an expectation
/// or gate failed (1), or success (0).
fn outcome(
    stopped: bool,
    runs: &[ScenarioRun],
    gates: &[Option<GateReport>],
) -> anyhow::Result<Outcome> {
    if stopped || runs.iter().any(|r| r.interrupted) {
        errln!("interrupted: the results gathered so far were written");
        return Ok(Outcome::Interrupted);
    }
    // Not one reply: the target is unreachable, which is a runtime failure
    // (exit 3), not a measurement. The results were written all the same.
    let silent: Vec<(&ScenarioRun, &crate::metrics::SummaryRow)> = runs
        .iter()
        .flat_map(|r| r.rows.iter().map(move |row| (r, row)))
        .filter(|(_, row)| row.sent.unwrap_or(0) > 0 && row.received == Some(0))
        .collect();
    if !silent.is_empty() {
        let named: Vec<String> = silent
            .iter()
            .map(|(run, row)| {
                let variant = if row.variant == "default" {
                    String::new()
                } else {
                    format!(" (variant {})", row.variant)
                };
                let why = why_silent(run, row).map_or(String::new(), |w| format!(": {w}"));
                format!("`{}.{}`{variant}{why}", row.scenario, row.workload)
            })
            .collect();
        // When every silent workload has its one reason, that is the message;
        // otherwise the target may be unreachable.
        let all_explained = silent
            .iter()
            .all(|(run, row)| why_silent(run, row).is_some());
        let tail = if all_explained {
            "(the results were written)"
        } else {
            "is the target reachable? (the results were written)"
        };
        return Err(
            Error::Runtime(format!("no reply at all for {}; {tail}", named.join(", "))).into(),
        );
    }
    if runs.iter().any(ScenarioRun::expectations_failed)
        || gates.iter().flatten().any(GateReport::failed)
    {
        return Ok(Outcome::ExpectationFailed);
    }
    Ok(Outcome::Success)
}

/// The one reason a workload got no reply, when there is one: every UDP
/// reply came back after its timeout, or every HTTP request failed with
/// the same error class (read from the run's `http_requests.csv`).
fn why_silent(run: &ScenarioRun, row: &crate::metrics::SummaryRow) -> Option<String> {
    if row.kind == "udp" {
        let late = row.late.unwrap_or(0);
        return (late > 0).then(|| {
            format!("all {late} replies came back after the workload's `timeout` (counted late, not lost); is it too short?")
        });
    }
    let mut r = csv::Reader::from_path(run.results_dir.join("http_requests.csv")).ok()?;
    let mut classes: Vec<(String, u64)> = Vec::new();
    for rec in r.deserialize::<crate::metrics::HttpRequestRow>() {
        let rec = rec.ok()?;
        if rec.variant != row.variant
            || rec.workload != row.workload
            || rec.repetition.is_some_and(|n| n != row.repetition)
        {
            continue;
        }
        let class = rec.error.unwrap_or_else(|| "no status".to_string());
        match classes.iter_mut().find(|(c, _)| *c == class) {
            Some((_, n)) => *n += 1,
            None => classes.push((class, 1)),
        }
    }
    match classes.as_slice() {
        // Refused, reset or timed out: the target itself may be unreachable.
        [(class, _)] if matches!(class.as_str(), "refused" | "reset" | "timeout") => None,
        [(class, n)] => Some(format!(
            "every request ({n}) failed with `{class}`, the same way each time (a request netrun \
             could not build or the target could not answer: check the workload's paths)"
        )),
        _ => None,
    }
}

fn print_run(run: &ScenarioRun) {
    outln!();
    out!("{}", summary::render(&run.rows));
    let repeated = run.rows.iter().any(|r| r.repetition > 1);
    for e in &run.expectations {
        let actual = e
            .actual
            .map_or("(empty)".to_string(), |a| format!("{a:.3}"));
        let mut at = String::new();
        if e.variant != "default" {
            at.push_str(&format!(", variant {}", e.variant));
        }
        if repeated {
            at.push_str(&format!(", repetition {}", e.repetition));
        }
        outln!(
            "  {} {}.{} {} (measured {actual}{at})",
            if e.passed { "pass" } else { "FAIL" },
            e.workload,
            e.metric,
            e.expected,
        );
    }
    outln!();
    outln!(
        "results: {} and {}/",
        run.summary_csv.display(),
        run.results_dir.display()
    );
}

/// The `--tolerance` range, shared with `compare`.
pub fn check_tolerance(tolerance: f64) -> Result<(), Error> {
    if (0.0..=1000.0).contains(&tolerance) {
        Ok(())
    } else {
        Err(Error::input(format!(
            "--tolerance {tolerance} is out of range; give a percentage from 0 to 1000"
        )))
    }
}

/// Each scenario's share of a `--shard`: the positions (in its run order)
/// of the units it runs. The units of all files, in order, are cut into N
/// contiguous shares (sizes differ by at most one, the larger first).
fn shard_shares(scenarios: &[Scenario], shard: Option<Part>) -> Vec<Vec<usize>> {
    let lens: Vec<usize> = scenarios
        .iter()
        .map(|s| runner::schedule(s).len())
        .collect();
    let mine = shard.unwrap_or(Part::WHOLE).range(lens.iter().sum());
    let mut first = 0;
    lens.iter()
        .map(|&len| {
            let positions = (0..len).filter(|p| mine.contains(&(first + p))).collect();
            first += len;
            positions
        })
        .collect()
}

/// Writes `report.html` beside the results. A report that cannot be
/// written is a warning, not a failed run: the CSVs and the run record stand.
fn write_report(run: &ScenarioRun) -> Option<PathBuf> {
    match html::after_run(&run.scenario, &run.summary_csv, &run.results_dir) {
        Ok(path) => Some(path),
        Err(e) => {
            errln!("warning: cannot write the report: {e:#}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(variants: usize, repeat: u32) -> Scenario {
        let values: Vec<String> = (1..=variants).map(|c| c.to_string()).collect();
        let mut s = scenario::parse(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/unit.toml"),
            &format!(
                "[[workload]]\nkind = \"udp\"\nname = \"q\"\n[matrix]\n\"workload.q.count\" = [{}]\n",
                values.join(", ")
            ),
        )
        .unwrap();
        s.repeat = repeat;
        s
    }

    /// No reply at all, for one reason: the exit message names it instead
    /// of asking whether the target is reachable.
    #[test]
    fn a_single_reason_for_silence_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let run = ScenarioRun {
            scenario: "s".into(),
            run_id: "r".into(),
            rows: vec![],
            expectations: vec![],
            interrupted: false,
            summary_csv: dir.path().join("s.csv"),
            results_dir: dir.path().to_path_buf(),
            record: Default::default(),
        };
        let udp = crate::metrics::SummaryRow {
            kind: "udp".into(),
            variant: "default".into(),
            workload: "q".into(),
            repetition: 1,
            sent: Some(20),
            received: Some(0),
            late: Some(20),
            ..Default::default()
        };
        let why = why_silent(&run, &udp).unwrap();
        assert!(why.contains("all 20 replies came back after"), "{why}");
        let http = crate::metrics::SummaryRow {
            kind: "http".into(),
            workload: "h".into(),
            late: None,
            ..udp
        };
        let row = |error: &str| crate::metrics::HttpRequestRow {
            variant: "default".into(),
            workload: "h".into(),
            path: "/x".into(),
            error: Some(error.into()),
            repetition: Some(1),
            ..Default::default()
        };
        let mut w = csv::Writer::from_path(dir.path().join("http_requests.csv")).unwrap();
        for _ in 0..3 {
            w.serialize(row("other")).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let why = why_silent(&run, &http).unwrap();
        assert!(
            why.contains("every request (3) failed with `other`"),
            "{why}"
        );
        let mut w = csv::Writer::from_path(dir.path().join("http_requests.csv")).unwrap();
        w.serialize(row("refused")).unwrap();
        w.flush().unwrap();
        drop(w);
        assert_eq!(why_silent(&run, &http), None, "refused: maybe unreachable");
    }

    /// Two files of 4 and 3 runs: 7 units cut into 3, 2, 2 across the files.
    #[test]
    fn shards_cut_the_units_of_all_files_in_order() {
        let files = [scenario(2, 2), scenario(3, 1)];
        let share = |k| shard_shares(&files, Some(Part { k, n: 3 }));
        assert_eq!(share(1), [vec![0, 1, 2], vec![]]);
        assert_eq!(share(2), [vec![3], vec![0]]);
        assert_eq!(share(3), [vec![], vec![1, 2]]);
        assert_eq!(
            shard_shares(&files, None),
            [vec![0, 1, 2, 3], vec![0, 1, 2]]
        );
    }
}
