//! `netrun compare CSV|SCENARIO...`: the variants and runs of summary files
//! (scenarios are run first) side by side, each figure with its change
//! against the first column, the change's interval and a verdict.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::CompareArgs;
use crate::error::{Error, Outcome};
use crate::report::compare::{self, Column};
use crate::report::progress;
use crate::runner::{self, Observer};

use super::run::live::LiveView;
use crate::scenario;

pub async fn compare(args: CompareArgs) -> anyhow::Result<Outcome> {
    super::run::check_tolerance(args.tolerance)?;
    if args
        .inputs
        .iter()
        .any(|i| i.extension().is_some_and(|e| e == "toml"))
    {
        super::run::check_out(&args.out)?;
    }
    let cancel = super::interrupt_on_signal();
    let mut cols: Vec<Column> = Vec::new();
    for input in &args.inputs {
        let is_scenario = input.extension().is_some_and(|e| e == "toml");
        if is_scenario {
            let s = scenario::load(input)?;
            let view = LiveView::new(progress::multi(args.json), false);
            let observer: Arc<dyn Observer> = Arc::new(view);
            let run = runner::run_scenario(&s, &args.out, &observer, &cancel).await?;
            if run.interrupted {
                return Ok(Outcome::Interrupted);
            }
            let samples = compare::read_samples_dir(&run.results_dir)?;
            let rows = run.rows.into_iter().map(|r| (None, r)).collect();
            cols.extend(compare::columns(&s.name, rows, samples));
        } else {
            if !input.exists() {
                return Err(Error::input(format!(
                    "{} does not exist; give summary CSVs (results/NAME.csv) or scenario files (.toml)",
                    input.display()
                ))
                .into());
            }
            let rows = compare::read_summary(input).map_err(|e| Error::input(format!("{e:#}")))?;
            // The history mixes runs: its rows have no sample files of their own.
            let history = rows.iter().any(|(run, _)| run.is_some());
            let samples = if history {
                None
            } else {
                compare::read_samples(input).map_err(|e| Error::input(format!("{e:#}")))?
            };
            cols.extend(compare::columns(
                &source_label(input, &args.inputs),
                rows,
                samples,
            ));
        }
    }
    if cols.is_empty() {
        return Err(Error::input("nothing to compare: the inputs hold no summary rows").into());
    }
    let tolerance = args.tolerance / 100.0;
    if args.json {
        let judged: Vec<_> = compare::assessments(&cols, tolerance)
            .into_iter()
            .map(|(column, a)| serde_json::json!({ "column": cols[column].label, "assessment": a }))
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "columns": cols, "changes": judged })
            )?
        );
    } else {
        out!("{}", compare::render(&cols, tolerance));
    }
    Ok(Outcome::Success)
}

/// A file's stem names its columns (`basic`), unless another input has the
/// same stem: then its path does (`old/basic`, `new/basic`).
fn source_label(input: &Path, all: &[PathBuf]) -> String {
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned());
    let clash = all.iter().filter(|p| stem(p) == stem(input)).count() > 1;
    match stem(input) {
        Some(s) if !clash => s,
        _ => input.with_extension("").display().to_string(),
    }
}
