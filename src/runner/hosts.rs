//! `[topology] hosts = "netns"` for the runner: what is checked before a
//! run starts, the namespaces made for each variant's run (and removed after
//! it), and which link knobs the proxy still applies in-process.

use crate::error::Error;
use crate::netns::{self, shape};
use crate::scenario::{Hosts, Links, Plan, Scenario};

/// Before anything runs: namespaces can be made here, and every knob has
/// something to apply it (delay on the clients ↔ origin link needs netem:
/// no netrun process sits on that path).
pub fn preflight(scenario: &Scenario) -> Result<(), Error> {
    let netns_plans: Vec<&Plan> = scenario
        .variants
        .iter()
        .map(|v| &v.plan)
        .filter(|p| p.topology.hosts == Hosts::Netns)
        .collect();
    if netns_plans.is_empty() {
        return Ok(());
    }
    netns::cmd::preflight()?;
    if netns::netem_available() == Some(true) {
        return Ok(());
    }
    if netns_plans
        .iter()
        .any(|p| shape::needs_netem(&p.links.clients_origin))
    {
        return Err(Error::input(format!(
            "{}: links.clients_origin sets delay, jitter or loss_percent, which only the \
             kernel's sch_netem can apply on that path (no netrun process is on it), and this \
             kernel has no sch_netem; keep only `rate` there, or load sch_netem",
            scenario.source.display()
        )));
    }
    Ok(())
}

/// The links as the proxy's in-process model should still apply them: all
/// of them on loopback; with namespaces, what the kernel does not.
pub(super) fn in_process(plan: &Plan) -> Links {
    if plan.topology.hosts != Hosts::Netns {
        return plan.links;
    }
    let netem = netns::netem_available() == Some(true);
    Links {
        clients_proxy: shape::split(plan.links.clients_proxy, netem).in_process,
        proxy_origin: shape::split(plan.links.proxy_origin, netem).in_process,
        clients_origin: shape::split(plan.links.clients_origin, netem).in_process,
    }
}

/// The namespaces of one run of `plan`, `None` on loopback.
pub(super) async fn create(plan: &Plan) -> anyhow::Result<Option<netns::Hosts>> {
    if plan.topology.hosts != Hosts::Netns {
        return Ok(None);
    }
    let netem = netns::netem_available() == Some(true);
    let l = &plan.links;
    let kernel = [l.clients_proxy, l.proxy_origin, l.clients_origin]
        .map(|link| shape::split(link, netem).kernel);
    let hosts = tokio::task::spawn_blocking(move || netns::Hosts::create(&kernel)).await??;
    for name in hosts.names() {
        crate::logging::capture_note(&format!("# network namespace {name}"));
    }
    Ok(Some(hosts))
}

/// Removes the namespaces (blocking `ip` calls, off the runtime's threads).
pub(super) async fn remove(hosts: Option<netns::Hosts>) {
    if let Some(h) = hosts {
        if let Err(e) = tokio::task::spawn_blocking(move || drop(h)).await {
            tracing::warn!("removing the network namespaces failed: {e}");
        }
    }
}
