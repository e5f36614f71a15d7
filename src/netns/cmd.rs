//! Running `ip` and `tc`: one command line at a time, its stderr kept for
//! the error, and the checks that say up front why they cannot run here.

use std::process::Command;

use crate::error::Error;

/// Runs `prog args…`; a failure carries the command line and its stderr.
pub fn run(prog: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run `{prog}`: {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "`{prog} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why network namespaces cannot be managed here, or `None` when they can:
/// that needs root (`CAP_SYS_ADMIN` for the namespaces, `CAP_NET_ADMIN`
/// for links and qdiscs) and iproute2's `ip` and `tc`. `what` names the
/// asker (`hosts = "netns"`, `netrun cleanup`).
pub fn unavailable(what: &str) -> Option<String> {
    let uid = rustix::process::geteuid();
    if !uid.is_root() {
        return Some(format!(
            "{what} needs root to manage network namespaces (netrun runs as uid {}); \
             run it with sudo",
            uid.as_raw()
        ));
    }
    for prog in ["ip", "tc"] {
        if let Err(e) = Command::new(prog).arg("-V").output() {
            return Some(format!(
                "{what} needs iproute2's `{prog}` on the PATH ({e}); install iproute2"
            ));
        }
    }
    None
}

/// What a `hosts = "netns"` scenario says when it cannot run here.
pub fn netns_unavailable() -> Option<String> {
    unavailable("hosts = \"netns\"").map(|why| format!("{why}, or use hosts = \"loopback\""))
}

/// [`netns_unavailable`] as the error a run stops with (exit 2).
pub fn preflight() -> Result<(), Error> {
    netns_unavailable().map_or(Ok(()), |why| Err(Error::input(why)))
}
