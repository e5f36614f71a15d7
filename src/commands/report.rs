//! `netrun report DIR|CSV...`: rebuild the HTML report from results on disk
//! (older runs, the history, several runs on shared axes) and print its path.

use crate::cli::ReportArgs;
use crate::error::{Error, Outcome};
use crate::report::html;

pub fn report(args: ReportArgs) -> anyhow::Result<Outcome> {
    let (runs, default_out) =
        html::load_inputs(&args.inputs).map_err(|e| Error::input(format!("{e:#}")))?;
    if runs.iter().all(|r| r.rows.is_empty()) {
        return Err(Error::input("nothing to report: the inputs hold no summary rows").into());
    }
    let out = args.out.unwrap_or(default_out);
    html::write(&out, &html::build(runs)?)?;
    outln!("{}", out.display());
    Ok(Outcome::Success)
}
