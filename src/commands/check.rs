use crate::cli::CheckArgs;
use crate::error::Outcome;
use crate::report::plan;
use crate::scenario::{self, Hosts};

/// Validates every file (reporting every broken one) and prints the resolved plans.
pub fn check(args: CheckArgs) -> anyhow::Result<Outcome> {
    let (scenarios, error) = scenario::load_all(&args.scenarios);
    for (i, s) in scenarios.iter().enumerate() {
        if i > 0 {
            outln!();
        }
        out!("{}", plan::render(s));
        for w in s.warnings() {
            errln!("warning: {w}");
        }
        let netns = s
            .variants
            .iter()
            .any(|v| v.plan.topology.hosts == Hosts::Netns);
        if let Some(why) = netns.then(crate::netns::cmd::netns_unavailable).flatten() {
            errln!("warning: {}: cannot run here: {why}", s.source.display());
        }
        let default_tcp = s
            .variants
            .iter()
            .any(|v| v.plan.topology.hosts == Hosts::Netns && v.plan.topology.congestion.is_none());
        if let Some(cc) = default_tcp
            .then(crate::netns::congestion::host_default)
            .flatten()
        {
            errln!(
                "note: {}: TCP over the links uses this host's default congestion control, {cc}",
                s.source.display()
            );
        }
    }
    match error {
        None => Ok(Outcome::Success),
        Some(e) => Err(e.into()),
    }
}
