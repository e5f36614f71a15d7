//! The services of one variant: the origin and the proxy the topology asks
//! to spawn (here, or each in its network namespace), the addresses the
//! clients reach them at, and the proxy's counters a workload's row carries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::hosts;
use crate::metrics::SummaryRow;
use crate::net::{bind_tcp_group, bind_udp};
use crate::netns::{self, Role};
use crate::origin::{self, OriginConfig, OriginHandle};
use crate::proxy::{
    self, ProxyConfig, ProxyHandle, ProxyStats, UdpForwardConfig, UpstreamTransport,
};
use crate::scenario::{Plan, Scenario, Service, ServiceTls, Target, Workload, WorkloadKind};
use crate::server::{self, HttpLimits, Listener};
use crate::tls::{CertSource, Identity, MadeCa, Trust};

/// The services of one variant.
pub(super) struct Services {
    token: CancellationToken,
    origin: Option<OriginHandle>,
    proxy: Option<ProxyHandle>,
    origin_http: SocketAddr,
    origin_udp: Option<SocketAddr>,
    proxy_http: SocketAddr,
    proxy_udp: Option<SocketAddr>,
    /// What clients of the origin and of the proxy trust; `None` for clear text.
    origin_trust: Option<Trust>,
    proxy_trust: Option<Trust>,
    /// The `name` a given certificate carries, checked instead of the address.
    origin_tls_name: Option<String>,
    proxy_tls_name: Option<String>,
}

impl Services {
    /// Starts the services the plan asks for: here, or each in its network
    /// namespace of `ns` (where the plan has them listen on every address),
    /// reached at the address of the link the caller comes over.
    pub(super) async fn start(
        scenario: &Scenario,
        plan: &Plan,
        ns: Option<&netns::Hosts>,
        ca: Option<&MadeCa>,
    ) -> anyhow::Result<Services> {
        let token = CancellationToken::new();
        let origin_tls = server_tls(plan.tls.origin.as_ref(), ca, plan, Role::Origin)?;
        let proxy_tls = server_tls(plan.tls.proxy.as_ref(), ca, plan, Role::Proxy)?;
        let file = scenario.source.display().to_string();
        // In namespaces, the address of the link the caller comes over, in
        // the family the services listen on (`host = "::"`: IPv6).
        let at = |ip: [fn() -> std::net::IpAddr; 2], a: SocketAddr| match ns {
            Some(_) => SocketAddr::new(ip[usize::from(a.is_ipv6())](), a.port()),
            None => a,
        };
        // (the clients' view, the proxy's view) of the origin.
        let (origin, (origin_http, upstream_http), (origin_udp, upstream_udp)) =
            match plan.topology.origin {
                Service::Spawn { http, udp } => {
                    let config = OriginConfig {
                        www: plan.topology.www.clone(),
                        limits: HttpLimits::default(),
                        max_age: plan.origin_max_age,
                    };
                    let start = async {
                        let hint = format!("topology.origin.http in {file}");
                        let l = listener(plan, Target::Origin, http, &hint).await?;
                        let l = Listener {
                            tls: origin_tls,
                            ..l
                        };
                        let u = bind_udp(udp, &format!("topology.origin.udp in {file}")).await?;
                        origin::spawn(l, u, config, token.clone())
                            .await
                            .context("cannot start the origin")
                    };
                    let h = match ns {
                        Some(ns) => ns.runtime(Role::Origin).enter(start).await??,
                        None => start.await?,
                    };
                    let (a, b) = (h.http_addr(), h.udp_addr());
                    let clients: [fn() -> std::net::IpAddr; 2] = [
                        netns::origin_addr_for_clients,
                        netns::origin_addr_for_clients6,
                    ];
                    let proxy: [fn() -> std::net::IpAddr; 2] =
                        [netns::origin_addr_for_proxy, netns::origin_addr_for_proxy6];
                    (
                        Some(h),
                        (at(clients, a), at(proxy, a)),
                        (Some(at(clients, b)), Some(at(proxy, b))),
                    )
                }
                Service::External { http, udp } => (None, (http, http), (udp, udp)),
            };
        let (proxy, proxy_http, proxy_udp) = match plan.topology.proxy {
            Service::Spawn { http, udp } => {
                // Validation guarantees a UDP upstream whenever a UDP workload goes
                // through the proxy; without one, the proxy's UDP side is unused.
                let udp_upstream = upstream_udp.unwrap_or(SocketAddr::new(upstream_http.ip(), 9));
                // The proxy trusts the origin's CA as the workloads do.
                let upstream_transport = match client_trust(plan, Target::Origin, ca) {
                    Some(trust) => {
                        let t = UpstreamTransport::tls(&trust, &upstream_http.to_string(), false)?;
                        match tls_name(plan, Target::Origin) {
                            Some(name) => t.named(&name)?,
                            None => t,
                        }
                    }
                    None => UpstreamTransport::default(),
                };
                let config = ProxyConfig {
                    cache: plan.cache.proxy_cache(),
                    upstream_transport,
                    udp: UdpForwardConfig {
                        own_thread: plan.udp_through(Target::Proxy),
                        ..UdpForwardConfig::default()
                    },
                    ..ProxyConfig::new(upstream_http, udp_upstream)
                };
                let hooks = hosts::in_process(plan).proxy_hooks();
                let start = async {
                    let hint = format!("topology.proxy.http in {file}");
                    let l = listener(plan, Target::Proxy, http, &hint).await?;
                    let l = Listener {
                        tls: proxy_tls,
                        ..l
                    };
                    let u = bind_udp(udp, &format!("topology.proxy.udp in {file}")).await?;
                    proxy::spawn_with_hooks(l, u, config, hooks, token.clone())
                        .await
                        .context("cannot start the proxy")
                };
                let h = match ns {
                    Some(ns) => ns.runtime(Role::Proxy).enter(start).await??,
                    None => start.await?,
                };
                let (a, b) = (h.http_addr(), h.udp_addr());
                (
                    Some(h),
                    at([netns::proxy_addr, netns::proxy_addr6], a),
                    Some(at([netns::proxy_addr, netns::proxy_addr6], b)),
                )
            }
            Service::External { http, udp } => (None, http, udp),
        };
        Ok(Services {
            token,
            origin,
            proxy,
            origin_http,
            origin_udp,
            proxy_http,
            proxy_udp,
            origin_trust: client_trust(plan, Target::Origin, ca),
            proxy_trust: client_trust(plan, Target::Proxy, ca),
            origin_tls_name: tls_name(plan, Target::Origin),
            proxy_tls_name: tls_name(plan, Target::Proxy),
        })
    }

    /// The name a workload aimed at `target` checks the certificate
    /// against, when the scenario gives one (`tls = { ..., name }`).
    pub(super) fn tls_name(&self, target: Target) -> Option<&str> {
        match target {
            Target::Proxy => self.proxy_tls_name.as_deref(),
            Target::Origin => self.origin_tls_name.as_deref(),
        }
    }

    /// What a workload aimed at `target` trusts, `None` when that service
    /// speaks clear text.
    pub(super) fn client_trust(&self, target: Target) -> Option<&Trust> {
        match target {
            Target::Proxy => self.proxy_trust.as_ref(),
            Target::Origin => self.origin_trust.as_ref(),
        }
    }

    pub(super) fn http_addr(&self, target: Target) -> SocketAddr {
        match target {
            Target::Proxy => self.proxy_http,
            Target::Origin => self.origin_http,
        }
    }

    pub(super) fn udp_addr(&self, target: Target) -> Option<SocketAddr> {
        match target {
            Target::Proxy => self.proxy_udp,
            Target::Origin => self.origin_udp,
        }
    }

    /// The spawned services' counters now, for a workload's deltas.
    pub(super) fn counters(&self) -> Counters {
        Counters {
            proxy: self.proxy.as_ref().map(|p| p.stats()),
            echo_drops: self.origin.as_ref().map(|o| o.stats().udp.receive_drops),
        }
    }

    pub(super) async fn stop(self, grace: Duration) {
        self.token.cancel();
        if let Some(p) = self.proxy {
            if !p.wait(grace).await && !grace.is_zero() {
                tracing::warn!("the proxy did not stop within {grace:?}");
            }
        }
        if let Some(o) = self.origin {
            if !o.wait(grace).await && !grace.is_zero() {
                tracing::warn!("the origin did not stop within {grace:?}");
            }
        }
    }
}

/// A spawned service's listening side (bound in the caller's network
/// namespace): its serving threads ([`Plan::serving_threads`]) and one
/// socket, or one per thread with `listen_sockets = "per-worker"`.
async fn listener(
    plan: &Plan,
    target: Target,
    addr: SocketAddr,
    hint: &str,
) -> Result<Listener, crate::Error> {
    let workers = plan.serving_threads(target, server::default_workers());
    let count = plan.listen_sockets(target).count(workers);
    let (tcp, siblings) = bind_tcp_group(addr, count, hint).await?;
    Ok(Listener {
        siblings,
        workers,
        ..Listener::from(tcp)
    })
}

/// A spawned service's TLS configuration: its files, or a leaf made by the
/// run's CA for every address its clients may use (the loopback names, the
/// topology's host, the namespaces' addresses).
fn server_tls(
    tls: Option<&ServiceTls>,
    ca: Option<&MadeCa>,
    plan: &Plan,
    role: Role,
) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let Some(tls) = tls else { return Ok(None) };
    let identity = match (&tls.cert, ca) {
        (CertSource::Files { cert, key }, _) => Identity::from_files(cert, key)?,
        (CertSource::Made, Some(ca)) => {
            let mut names = vec![plan.topology.host.to_string()];
            if plan.topology.hosts == crate::scenario::Hosts::Netns {
                let ips = match role {
                    Role::Origin => vec![
                        netns::origin_addr_for_clients(),
                        netns::origin_addr_for_proxy(),
                        netns::origin_addr_for_clients6(),
                        netns::origin_addr_for_proxy6(),
                    ],
                    _ => vec![netns::proxy_addr(), netns::proxy_addr6()],
                };
                names.extend(ips.iter().map(|ip| ip.to_string()));
            }
            ca.leaf(&names)?
        }
        (CertSource::Made, None) => {
            anyhow::bail!("internal: a made certificate without the run's CA")
        }
    };
    Ok(Some(
        crate::tls::server_config(&identity).map_err(crate::Error::input)?,
    ))
}

/// What a client of `target` trusts: the run's CA for a made certificate,
/// the given `ca`, else the system's CAs; `None` when it is clear text.
pub(super) fn client_trust(plan: &Plan, target: Target, ca: Option<&MadeCa>) -> Option<Trust> {
    let tls = plan.tls.of(target)?;
    Some(match (&tls.cert, &tls.ca, ca) {
        (CertSource::Made, _, Some(ca)) => Trust::CaPem(ca.pem()),
        (_, Some(file), _) => Trust::CaFile(file.clone()),
        _ => Trust::System,
    })
}

fn tls_name(plan: &Plan, target: Target) -> Option<String> {
    plan.tls.of(target).and_then(|t| t.name.clone())
}

/// What the spawned services counted, read before and after a workload.
#[derive(Clone, Copy)]
pub(super) struct Counters {
    proxy: Option<ProxyStats>,
    /// What the kernel dropped at the origin's echo socket so far.
    echo_drops: Option<u64>,
}

impl Counters {
    /// These counters with the proxy's and the echo's kept only where asked
    /// (what a workload in a parallel block may be given).
    pub(super) fn only(&self, proxy: bool, echo: bool) -> Counters {
        Counters {
            proxy: self.proxy.filter(|_| proxy),
            echo_drops: self.echo_drops.filter(|_| echo),
        }
    }
}

/// Adds the services' own view of a workload (counter deltas) beside the
/// client's figures: the proxy's for a workload through it, the origin's
/// echo drops for any UDP workload (its datagrams all reach the echo).
pub(super) fn attach_service_counters(
    row: &mut SummaryRow,
    w: &Workload,
    before: &Counters,
    after: &Counters,
) {
    if let (WorkloadKind::Udp(_), Some(b), Some(a)) = (&w.kind, before.echo_drops, after.echo_drops)
    {
        row.origin_dropped = Some(a.saturating_sub(b));
    }
    let (Some(b), Some(a)) = (before.proxy, after.proxy) else {
        return;
    };
    if w.target != Target::Proxy {
        return;
    }
    match w.kind {
        WorkloadKind::Http(_) => {
            row.proxy_hits = Some(a.hits.saturating_sub(b.hits));
            row.proxy_upstream_fetches =
                Some(a.upstream_fetches.saturating_sub(b.upstream_fetches));
            row.proxy_bytes_from_cache =
                Some(a.bytes_from_cache.saturating_sub(b.bytes_from_cache));
            row.upstream_bytes = Some(a.bytes_from_upstream.saturating_sub(b.bytes_from_upstream));
            row.cache_evictions = Some(a.evictions.saturating_sub(b.evictions));
            let clients = a.http_delayed.saturating_sub(b.http_delayed);
            let origin = a
                .origin_link_http_delayed
                .saturating_sub(b.origin_link_http_delayed);
            row.clients_proxy_delayed = Some(clients);
            row.proxy_origin_delayed = Some(origin);
            row.proxy_delayed = Some(clients + origin);
        }
        WorkloadKind::Udp(_) => {
            let drops = |s: &ProxyStats| {
                s.udp_dropped_impairment
                    + s.origin_link_udp_dropped
                    + s.udp_dropped_table_full
                    + s.udp_dropped_buffer_full
                    + s.udp_dropped_receive_full
                    + s.udp_dropped_delay_full
                    + s.udp_send_errors
            };
            let delta = |f: fn(&ProxyStats) -> u64| f(&a).saturating_sub(f(&b));
            row.proxy_dropped = Some(delta(drops));
            row.clients_proxy_dropped = Some(delta(|s| s.udp_dropped_impairment));
            row.proxy_origin_dropped = Some(delta(|s| s.origin_link_udp_dropped));
            let clients = delta(|s| s.udp_delayed_impairment);
            let origin = delta(|s| s.origin_link_udp_delayed);
            row.clients_proxy_delayed = Some(clients);
            row.proxy_origin_delayed = Some(origin);
            row.proxy_delayed = Some(clients + origin);
        }
    }
}

/// Each user-space link's counts at one moment (`netns::Hosts::link_counters`).
pub(super) type LinkCounts = Vec<(&'static str, [crate::link::Counters; 2])>;

/// Adds what netrun's user-space links did between `before` and `after`
/// (every packet on them: the workload's, and a parallel one's).
pub(super) fn attach_link_counters(row: &mut SummaryRow, before: &LinkCounts, after: &LinkCounts) {
    if after.is_empty() {
        return;
    }
    let mut all = crate::link::Counters::default();
    for (name, now) in after {
        let Some((_, then)) = before.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let mut lost = 0;
        for (a, b) in now.iter().zip(then) {
            let d = a.since(b);
            all.packets += d.packets;
            all.lost += d.lost + d.burst_lost;
            // A TUN device's queue in front of the link overflowing is a
            // queue drop too, the kernel's.
            all.queue_drops += d.queue_drops + d.kernel_drops;
            lost += d.lost + d.burst_lost;
            let _ = all.sojourn.add(&d.sojourn);
        }
        match *name {
            "clients_proxy" => row.clients_proxy_link_lost = Some(lost),
            "proxy_origin" => row.proxy_origin_link_lost = Some(lost),
            _ => row.clients_origin_link_lost = Some(lost),
        }
    }
    let ms = |q: f64| all.sojourn_at(q).as_secs_f64() * 1e3;
    row.link_packets = Some(all.packets);
    row.link_lost = Some(all.lost);
    row.link_queue_drops = Some(all.queue_drops);
    row.link_sojourn_p50_ms = Some(ms(0.5));
    row.link_sojourn_p99_ms = Some(ms(0.99));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;

    fn plan(workloads: &str) -> Plan {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/unit.toml");
        let s = crate::scenario::parse(&path, &format!("name = \"w\"\n{workloads}"))
            .unwrap_or_else(|e| panic!("{e}"));
        s.variants[0].plan.clone()
    }

    fn http(name: &str, target: &str, concurrency: u32) -> String {
        format!("[[workload]]\nkind = \"http\"\nname = \"{name}\"\ntarget = \"{target}\"\nrequests = 10\nconcurrency = {concurrency}\n")
    }

    /// The echo's drops over a workload go to UDP workloads only, and not
    /// to one that shared a parallel block with another UDP workload.
    #[test]
    fn echo_drops_go_to_the_udp_workload_they_happened_in() {
        let (before, after) = (
            Counters {
                proxy: None,
                echo_drops: Some(5),
            },
            Counters {
                proxy: None,
                echo_drops: Some(12),
            },
        );
        let given = |w: &Workload, b: &Counters, a: &Counters| {
            let mut row = SummaryRow::default();
            attach_service_counters(&mut row, w, b, a);
            row.origin_dropped
        };
        let udp = plan("[[workload]]\nkind = \"udp\"\nname = \"u\"\ncount = 1\n");
        assert_eq!(given(&udp.workloads[0], &before, &after), Some(7));
        let shared = (before.only(true, false), after.only(true, false));
        assert_eq!(given(&udp.workloads[0], &shared.0, &shared.1), None);
        let web = plan(&http("h", "proxy", 1));
        assert_eq!(given(&web.workloads[0], &before, &after), None);
    }

    /// The proxy's UDP forwarder gets a thread of its own only when a UDP
    /// workload goes through the proxy.
    #[test]
    fn udp_through_names_where_datagrams_go() {
        let udp = |target: &str| {
            format!(
                "[[workload]]\nkind = \"udp\"\nname = \"u\"\ncount = 1\ntarget = \"{target}\"\n"
            )
        };
        let p = plan(&udp("proxy"));
        assert!(p.udp_through(Target::Proxy));
        assert!(!p.udp_through(Target::Origin));
        let p = plan(&udp("origin"));
        assert!(!p.udp_through(Target::Proxy));
        assert!(p.udp_through(Target::Origin));
        assert!(!plan(&http("h", "proxy", 4)).udp_through(Target::Proxy));
    }

    #[test]
    fn serving_threads_are_the_cores_at_most_one_per_connection() {
        let n = |n: usize| NonZeroUsize::new(n);
        let workers = |p: &Plan| {
            let cores = NonZeroUsize::new(4).unwrap();
            (
                p.serving_threads(Target::Origin, cores),
                p.serving_threads(Target::Proxy, cores),
            )
        };
        // One request through the proxy: both on the run's runtime.
        assert_eq!(workers(&plan(&http("one", "proxy", 1))), (None, None));
        // The origin serves the proxy's fetches and its own clients.
        let p = plan(&(http("a", "proxy", 2) + &http("b", "origin", 1)));
        assert_eq!(workers(&p), (n(3), n(2)));
        // Never more than the cores.
        assert_eq!(workers(&plan(&http("many", "proxy", 50))), (n(4), n(4)));
        // No HTTP client at all.
        let udp = "[[workload]]\nkind = \"udp\"\nname = \"u\"\ncount = 1\n";
        assert_eq!(workers(&plan(udp)), (None, None));
        // Given workers win, one too.
        let p = plan(&format!(
            "[origin]\nworkers = 1\n{}",
            http("many", "proxy", 50)
        ));
        assert_eq!(workers(&p), (n(1), n(4)));
    }
}
