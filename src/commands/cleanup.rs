//! `netrun cleanup`: removes what a `hosts = "netns"` run could not remove
//! itself (killed with SIGKILL, a crash): the `netrun-*` namespaces of
//! processes that are gone, and with them their veths and qdiscs.

use crate::error::{Error, Outcome};
use crate::netns;

pub fn cleanup() -> anyhow::Result<Outcome> {
    if let Some(why) = netns::cmd::unavailable("`netrun cleanup`") {
        return Err(Error::input(why).into());
    }
    let done = netns::cleanup()?;
    if done.removed.is_empty() && done.failed.is_empty() {
        outln!(
            "nothing to remove: no {}* network namespace is left behind",
            netns::PREFIX
        );
    }
    for name in &done.removed {
        outln!("removed network namespace {name} (with its veths and qdiscs)");
    }
    for (name, e) in &done.failed {
        errln!("error: cannot remove network namespace {name}: {e:#}");
    }
    if !done.failed.is_empty() {
        return Err(Error::Runtime(format!(
            "{} network namespace(s) could not be removed; see `ip netns list`",
            done.failed.len()
        ))
        .into());
    }
    Ok(Outcome::Success)
}
