//! `netrun merge DIR... --out DIR`: join the results folders of `--shard`
//! or `--segment` runs into one run's results and print where they went.

use crate::cli::MergeArgs;
use crate::error::Outcome;
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
