//! `[topology] hosts = "netns"` for the runner: what is checked before a
//! run starts, the namespaces made for each variant's run (and removed after
//! it), and which link knobs the proxy still applies in-process.

use crate::error::Error;
use crate::netns::LinkSetup;
use crate::netns::{self, shape};
use crate::proxy::LinkConfig;
use crate::scenario::{Engine, Hosts, Links, PacketKnobs, Plan, Scenario};

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
    let asked: std::collections::BTreeSet<&str> = netns_plans
        .iter()
        .filter_map(|p| p.topology.congestion.as_deref())
        .collect();
    for cc in asked {
        netns::congestion::ensure(
            cc,
            &format!("{}: topology.congestion", scenario.source.display()),
        )?;
    }
    let netem = netns::netem_available();
    if netem == Some(true) {
        return Ok(());
    }
    if netns_plans.iter().any(|p| {
        p.packet_links
            .clients_origin
            .engine(&p.links.clients_origin, netem)
            == Engine::Kernel
            && shape::needs_netem(&p.links.clients_origin)
    }) {
        return Err(Error::input(format!(
            "{}: links.clients_origin forces engine = \"kernel\" and sets delay, jitter or \
             loss_percent, which only the kernel's sch_netem can apply on that path (no netrun \
             process is on it), and this kernel has no sch_netem; remove engine = \"kernel\" \
             (netrun's user-space link then applies them) or load sch_netem",
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
    let netem = netns::netem_available();
    let in_process = |link: LinkConfig, knobs: &PacketKnobs| match knobs.engine(&link, netem) {
        Engine::Kernel => shape::split(link, netem == Some(true)).in_process,
        // Every packet crosses netrun's link: nothing is left to the proxy.
        Engine::Userspace => LinkConfig {
            seed: link.seed,
            ..LinkConfig::default()
        },
    };
    let (l, k) = (&plan.links, &plan.packet_links);
    Links {
        clients_proxy: in_process(l.clients_proxy, &k.clients_proxy),
        proxy_origin: in_process(l.proxy_origin, &k.proxy_origin),
        clients_origin: in_process(l.clients_origin, &k.clients_origin),
    }
}

/// How each link of `plan` is made: a shaped veth pair, or TUN devices
/// and netrun's packet link. Each link draws its own random sequences.
fn setups(plan: &Plan) -> netns::LinkSetups {
    let netem = netns::netem_available();
    let (l, k) = (&plan.links, &plan.packet_links);
    let one = |link: LinkConfig, knobs: &PacketKnobs, salt: u64| match knobs.engine(&link, netem) {
        Engine::Kernel => LinkSetup::Kernel(shape::split(link, netem == Some(true)).kernel),
        Engine::Userspace => LinkSetup::Userspace(Box::new(knobs.directions(&link, salt))),
    };
    [
        one(l.clients_proxy, &k.clients_proxy, 0),
        one(l.proxy_origin, &k.proxy_origin, 0x0F0F_0F0F_F0F0_F0F0),
        one(l.clients_origin, &k.clients_origin, 0x3C3C_3C3C_C3C3_C3C3),
    ]
}

/// The namespaces of one run of `plan`, `None` on loopback.
pub(super) async fn create(plan: &Plan) -> anyhow::Result<Option<netns::Hosts>> {
    if plan.topology.hosts != Hosts::Netns {
        return Ok(None);
    }
    let links = setups(plan);
    let congestion = plan.topology.congestion.clone();
    let hosts =
        tokio::task::spawn_blocking(move || netns::Hosts::create(&links, congestion.as_deref()))
            .await??;
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
