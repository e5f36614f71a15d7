//! `netrun merge DIR... --out DIR`: join the results folders of `--shard`
//! or `--segment` runs into one run's results and print where they went.

use crate::cli::MergeArgs;
use crate::error::Outcome;
use crate::metrics::SummaryRow;
use crate::report::summary;

pub fn merge(args: MergeArgs) -> anyhow::Result<Outcome> {
    // Every folder is read and checked before --out is made or written to.
    let plan = crate::merge::plan(&args.inputs, &args.out, args.partial)?;
    let merged = crate::merge::write(&plan, &args.out)?;
    let mut failed = false;
    for m in &merged {
        println!(
            "scenario {}: {} {} merged, {} rows",
            m.scenario,
            m.parts,
            m.kind,
            m.rows.len()
        );
        for t in &m.taken {
            println!("  {t}");
        }
        for gone in &m.missing {
            println!("  PARTIAL: merged without {gone}");
        }
        println!();
        print!("{}", summary::render(&m.rows));
        for e in &m.expectations {
            let actual = e
                .actual
                .map_or("(empty)".to_string(), |a| format!("{a:.3}"));
            println!(
                "  {} {}.{} {} (measured {actual}, variant {}, repetition {})",
                if e.passed { "pass" } else { "FAIL" },
                e.workload,
                e.metric,
                e.expected,
                e.variant,
                e.repetition
            );
        }
        failed |= m.expectations.iter().any(|e| !e.passed);
        for w in skew_warnings(&m.rows) {
            eprintln!("warning: {w}");
        }
        println!();
        println!(
            "results: {} and {}/",
            m.summary_csv.display(),
            m.results_dir.display()
        );
        match &m.report {
            Ok(path) => println!("report: {}", path.display()),
            Err(e) => eprintln!("warning: cannot write the report: {e}"),
        }
    }
    Ok(if failed {
        Outcome::ExpectationFailed
    } else {
        Outcome::Success
    })
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
