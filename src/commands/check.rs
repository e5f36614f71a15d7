use crate::cli::CheckArgs;
use crate::error::Outcome;
use crate::report::plan;
use crate::scenario;

/// Validates every file (reporting every broken one) and prints the resolved plans.
pub fn check(args: CheckArgs) -> anyhow::Result<Outcome> {
    let (scenarios, error) = scenario::load_all(&args.scenarios);
    for (i, s) in scenarios.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", plan::render(s));
        for w in s.warnings() {
            eprintln!("warning: {w}");
        }
    }
    match error {
        None => Ok(Outcome::Success),
        Some(e) => Err(e.into()),
    }
}
