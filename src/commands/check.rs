use crate::cli::CheckArgs;
use crate::error::Outcome;
use crate::report::plan;
use crate::scenario;

/// Validates every file (reporting every broken one) and prints the resolved plans.
pub fn check(args: CheckArgs) -> anyhow::Result<Outcome> {
    let mut failures = Vec::new();
    let mut first = true;
    for path in &args.scenarios {
        match scenario::load(path) {
            Ok(s) => {
                if !first {
                    println!();
                }
                first = false;
                print!("{}", plan::render(&s));
            }
            Err(e) => failures.push(e),
        }
    }
    match failures.len() {
        0 => Ok(Outcome::Success),
        1 => Err(failures.remove(0).into()),
        _ => {
            let text = failures
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n");
            Err(crate::Error::input(text).into())
        }
    }
}
