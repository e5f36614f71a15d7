//! `netrun [run] FILE...`: validate every file first, then run them one after
//! another, print a summary table (or JSON) and decide the exit code.

use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::error::{Error, Outcome};
use crate::report::{progress, summary};
use crate::runner::{self, ScenarioRun};
use crate::scenario::{self, Scenario};

pub async fn run(args: RunArgs) -> anyhow::Result<Outcome> {
    if args.baseline.is_some() {
        return Err(Error::input(
            "--baseline is not available yet in this version; run without it",
        )
        .into());
    }
    if args.scenarios.is_empty() {
        return Err(Error::input(
            "no scenario given; try `netrun run scenarios/basic.toml` (files are TOML, see `netrun check`)",
        )
        .into());
    }
    let scenarios = load_all(&args.scenarios)?;

    let cancel = CancellationToken::new();
    crate::shutdown::cancel_on_signal(cancel.clone());
    let mp = progress::multi(args.quiet || args.json);

    let mut runs: Vec<ScenarioRun> = Vec::new();
    for s in &scenarios {
        if cancel.is_cancelled() {
            break;
        }
        if !args.json {
            println!("scenario {} ({})", s.name, s.source.display());
            if !s.description.is_empty() {
                println!("  {}", s.description);
            }
        }
        let announce = !args.json && !args.quiet && mp.is_hidden();
        let run = runner::run_scenario(s, &args.out, &mp, announce, &cancel).await?;
        if !args.json {
            if !mp.is_hidden() {
                // The finished bars stay on screen; the cursor is still on
                // the last one's line.
                println!();
            }
            print_run(&run);
        }
        runs.push(run);
    }
    if args.json {
        let doc = serde_json::json!({
            "runs": runs.iter().map(|r| serde_json::json!({
                "scenario": r.scenario,
                "run_id": r.run_id,
                "interrupted": r.interrupted,
                "summary_csv": r.summary_csv,
                "rows": r.rows,
                "expectations": r.expectations,
            })).collect::<Vec<_>>()
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }

    if cancel.is_cancelled() || runs.iter().any(|r| r.interrupted) {
        eprintln!("interrupted: the results gathered so far were written");
        return Ok(Outcome::Interrupted);
    }
    // Not one reply: the target is unreachable, which is a runtime failure
    // (exit 3), not a measurement. The results were written all the same.
    let silent: Vec<String> = runs
        .iter()
        .flat_map(|r| &r.rows)
        .filter(|row| row.sent.unwrap_or(0) > 0 && row.received == Some(0))
        .map(|row| {
            let variant = if row.variant == "default" {
                String::new()
            } else {
                format!(" (variant {})", row.variant)
            };
            format!("`{}.{}`{variant}", row.scenario, row.workload)
        })
        .collect();
    if !silent.is_empty() {
        return Err(Error::Runtime(format!(
            "no reply at all for {}: is the target reachable? (the results were written)",
            silent.join(", ")
        ))
        .into());
    }
    if runs.iter().any(ScenarioRun::expectations_failed) {
        return Ok(Outcome::ExpectationFailed);
    }
    Ok(Outcome::Success)
}

/// Validates every file before running any, so a typo in the third file does
/// not surface after two long runs.
fn load_all(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<Scenario>> {
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match scenario::load(p) {
            Ok(s) => scenarios.push(s),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(scenarios),
        1 => Err(errors.remove(0).into()),
        _ => Err(Error::input(
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .into()),
    }
}

fn print_run(run: &ScenarioRun) {
    println!();
    print!("{}", summary::render(&run.rows));
    for e in &run.expectations {
        let actual = e
            .actual
            .map_or("(empty)".to_string(), |a| format!("{a:.3}"));
        println!(
            "  {} {}.{} {} (measured {actual}{})",
            if e.passed { "pass" } else { "FAIL" },
            e.workload,
            e.metric,
            e.expected,
            if e.variant == "default" {
                String::new()
            } else {
                format!(", variant {}", e.variant)
            }
        );
    }
    println!();
    println!(
        "results: {} and {}/",
        run.summary_csv.display(),
        run.results_dir.display()
    );
}
