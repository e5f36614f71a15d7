//! The resolved plan as `netrun check` prints it: every default filled in,
//! every variant and workload, the addresses that will be used.

use std::fmt::Write;

use crate::proxy::Link;

use crate::scenario::{
    Hosts, HttpWorkload, Plan, Scenario, Service, Target, UdpWorkload, Variant, Workload,
    WorkloadKind,
};
use crate::units::{format_duration, BitRate};
use crate::workload::http::UNTIL_DURATION;

fn service(s: &Service) -> String {
    let port = |a: &std::net::SocketAddr| {
        if a.port() == 0 {
            format!("{} (any free port)", a)
        } else {
            a.to_string()
        }
    };
    match s {
        Service::Spawn { http, udp } => format!("start   http {}  udp {}", port(http), port(udp)),
        Service::External { http, udp } => format!(
            "running http {}  udp {}",
            http,
            udp.map_or("none".to_string(), |u| u.to_string())
        ),
    }
}

/// Renders one scenario's resolved plan.
pub fn render(s: &Scenario) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "scenario {}  ({})", s.name, s.source.display());
    if !s.description.is_empty() {
        let _ = writeln!(o, "  {}", s.description);
    }
    let n = s.variants.len();
    let _ = writeln!(o, "  {} variant{}", n, if n == 1 { "" } else { "s" });
    if s.repeat > 1 {
        let _ = writeln!(
            o,
            "  repeat   {} times each, {}",
            s.repeat,
            s.order.as_str()
        );
    }
    if s.expect.is_empty() {
        let _ = writeln!(o, "  expect   (none)");
    }
    for e in &s.expect {
        let _ = writeln!(
            o,
            "  expect   {}.{} {} {}",
            e.workload,
            e.metric,
            e.op.as_str(),
            e.value
        );
    }
    for v in &s.variants {
        variant(&mut o, v);
    }
    o
}

/// A variant's settings and its workloads, one per line.
fn variant(o: &mut String, v: &Variant) {
    let _ = writeln!(o);
    let _ = writeln!(o, "variant {}", v.label);
    for (key, value) in settings(&v.plan) {
        let _ = writeln!(o, "  {key:<8} {value}");
    }
    let _ = writeln!(o, "  workloads");
    for w in &v.plan.workloads {
        let _ = writeln!(
            o,
            "    {:<12} {:<4} -> {:<6}  {}",
            w.name,
            w.kind.as_str(),
            w.target.as_str(),
            workload_text(w)
        );
    }
}

/// A variant's settings other than its workloads, as `(key, text)` lines:
/// what `check` prints and what the HTML report shows.
pub fn settings(p: &Plan) -> Vec<(&'static str, String)> {
    let netns = p.topology.hosts == Hosts::Netns;
    let mut out = vec![
        ("mode", p.mode.as_str().to_string()),
        ("seed", p.links.seed().to_string()),
    ];
    if netns {
        out.push((
            "hosts",
            format!(
                "netns: clients, proxy and origin each in a network namespace, listening \
                 on all its addresses; the clients reach the proxy at {}, the origin at {} \
                 (the proxy reaches it at {})",
                crate::netns::proxy_addr(),
                crate::netns::origin_addr_for_clients(),
                crate::netns::origin_addr_for_proxy()
            ) + &if p.topology.host.is_ipv6() {
                format!(
                    "; over IPv6 (host = \"::\"): the proxy at {}, the origin at {} (for the proxy {})",
                    crate::netns::proxy_addr6(),
                    crate::netns::origin_addr_for_clients6(),
                    crate::netns::origin_addr_for_proxy6()
                )
            } else {
                String::new()
            },
        ));
        let tcp = match &p.topology.congestion {
            Some(cc) => format!("congestion control {cc} on every link (route congctl)"),
            None => "congestion control: the host's default (`congestion` picks one)".to_string(),
        };
        out.push(("tcp", tcp));
    }
    out.push(("origin", service(&p.topology.origin)));
    if p.topology.origin.is_spawned() {
        out.push(("www", p.topology.www.display().to_string()));
        let max_age = p.origin_max_age.map_or("none".to_string(), format_duration);
        out.push(("max-age", format!("{max_age} (the origin's Cache-Control)")));
    }
    out.push(("proxy", service(&p.topology.proxy)));
    if let Some(serving) = serving(p, crate::server::default_workers()) {
        out.push(("serving", serving));
    }
    if p.tls.origin.is_some() || p.tls.proxy.is_some() {
        out.push(("tls", tls_text(&p.tls)));
    }
    let c = &p.cache;
    let (on, open, close) = if c.enabled {
        ("on", ", ", "")
    } else {
        ("off", " (", ")")
    };
    let ttl = c
        .ttl
        .map_or(String::new(), |t| format!(", ttl {}", format_duration(t)));
    let objects = c
        .capacity_objects
        .map_or(String::new(), |n| format!(", at most {n} objects"));
    out.push((
        "cache",
        format!(
            "{on}{open}capacity {}{objects}, policy {}{ttl}{close}",
            c.capacity, c.policy
        ),
    ));
    if netns {
        // Which engine shapes each link, and which knob goes where.
        let netem = crate::netns::netem_available();
        let k = &p.packet_links;
        for (name, i, knobs, proxy_on_path) in [
            (
                "clients_proxy",
                &p.links.clients_proxy,
                &k.clients_proxy,
                true,
            ),
            ("proxy_origin", &p.links.proxy_origin, &k.proxy_origin, true),
            (
                "clients_origin",
                &p.links.clients_origin,
                &k.clients_origin,
                false,
            ),
        ] {
            let what = knobs.describe(i, netem, proxy_on_path);
            out.push(("link", format!("{name:<15}{what}")));
        }
        return out;
    }
    for (name, i) in [
        (Link::ClientsProxy, &p.links.clients_proxy),
        (Link::ProxyOrigin, &p.links.proxy_origin),
    ] {
        let what = if i.is_none() {
            "clean".to_string()
        } else {
            format!(
                "delay {}, jitter {}, loss {}%, rate {}",
                format_duration(i.delay),
                format_duration(i.jitter),
                i.loss_percent,
                BitRate(i.rate_bps)
            )
        };
        out.push(("link", format!("{:<14}{what}", name.as_str())));
    }
    out
}

/// The spawned services' serving threads and listening sockets on a machine
/// of `cores` cores: `origin workers 2 (one per core, at most its clients'
/// 50 connections), 1 socket; proxy ...`. `None` when netrun spawns none.
fn serving(p: &Plan, cores: std::num::NonZeroUsize) -> Option<String> {
    let mut parts = Vec::new();
    for (target, spawned) in [
        (Target::Origin, p.topology.origin.is_spawned()),
        (Target::Proxy, p.topology.proxy.is_spawned()),
    ] {
        if !spawned {
            continue;
        }
        let given = match target {
            Target::Origin => p.origin_workers,
            Target::Proxy => p.proxy_workers,
        };
        let text = match p.serving_threads(target, cores) {
            Some(n) => {
                let why = match given {
                    Some(_) => "",
                    None => " (one per core, at most its clients' connections)",
                };
                let sockets = p.listen_sockets(target).count(Some(n)).get();
                format!(
                    "workers {n}{why}, {}",
                    crate::server::describe_sockets(sockets)
                )
            }
            None => "the run's own runtime (its clients open at most one connection)".to_string(),
        };
        parts.push(format!("{} {text}", target.as_str()));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Which services speak TLS and with which certificate, what their clients
/// trust and the name they check: `origin HTTPS (...), certificate made by
/// the run's CA, name checked: the address it is dialled at; proxy clear text; ...`.
fn tls_text(t: &crate::scenario::TlsSettings) -> String {
    use crate::tls::CertSource;
    let one = |name: &str, s: Option<&crate::scenario::ServiceTls>| match s {
        None => format!("{name} clear text"),
        Some(s) => {
            let cert = match &s.cert {
                CertSource::Made => "certificate made by the run's CA".to_string(),
                CertSource::Files { cert, key } => {
                    format!("certificate {} key {}", cert.display(), key.display())
                }
            };
            let trust = match (&s.cert, &s.ca) {
                (CertSource::Made, _) => String::new(),
                (_, Some(ca)) => format!(", trusted by its CA {}", ca.display()),
                (_, None) => ", trusted by the system's CAs".to_string(),
            };
            // The name its clients (workloads, and the proxy for the
            // origin) check the certificate against and send as SNI.
            let checked = match &s.name {
                Some(n) => format!(", name checked {n} (`name`; sent as SNI, dialled by address)"),
                None => ", name checked: the address it is dialled at".to_string(),
            };
            format!("{name} HTTPS (HTTP/2 or 1.1 by ALPN), {cert}{trust}{checked}")
        }
    };
    let mut text = format!(
        "{}; {}",
        one("origin", t.origin.as_ref()),
        one("proxy", t.proxy.as_ref())
    );
    if t.makes_ca() {
        text.push_str("; the run's CA is written to the results folder as ca.pem");
    }
    text
}

/// One workload's resolved settings in a line (kind, target and name aside).
pub fn workload_text(w: &Workload) -> String {
    let text = match &w.kind {
        WorkloadKind::Http(h) => http(h),
        WorkloadKind::Udp(u) => udp(u),
    };
    if w.start_after.is_zero() {
        return text;
    }
    format!("{text}, starts after {}", format_duration(w.start_after))
}

fn http(h: &HttpWorkload) -> String {
    let count = if h.requests == UNTIL_DURATION {
        "requests until the duration ends".to_string()
    } else {
        format!("{} requests", h.requests)
    };
    let mut t = format!(
        "{count}, concurrency {}, keep-alive {}, ",
        h.concurrency,
        if h.keep_alive { "on" } else { "off" }
    );
    if h.http2 {
        let _ = write!(t, "HTTP/2 with {} streams per connection, ", h.streams);
    }
    if h.pipeline > 1 {
        let _ = write!(
            t,
            "HTTP/1.1 pipelining {} requests per connection, ",
            h.pipeline
        );
    }
    match h.rate {
        Some(r) => {
            let _ = write!(t, "open loop {r} req/s, ");
        }
        None => t.push_str("closed loop, "),
    }
    if let Some(d) = h.duration {
        let _ = write!(t, "for at most {}, ", format_duration(d));
    }
    let _ = write!(t, "timeout {}, ", format_duration(h.timeout));
    t.push_str(&traffic(h));
    t
}

/// What an HTTP workload requests and how its load is shaped.
fn traffic(h: &HttpWorkload) -> String {
    use crate::traffic::Popularity;
    use crate::workload::source::{Ramp, Source};
    let tr = &h.traffic;
    let mut t = match &tr.source {
        Source::Paths => format!("paths {}", h.paths.join(" ")),
        Source::Catalog(c) => format!(
            "objects: {} ({}), sizes {}, seed {}",
            c.count(),
            match c.popularity() {
                Popularity::Zipf { alpha } => format!("zipf alpha {alpha}"),
                Popularity::Uniform => "uniform".into(),
            },
            c.sizes(),
            tr.seed
        ),
        Source::Trace(r) => format!(
            "trace {} ({} timing{})",
            r.path.display(),
            r.timing.name(),
            if r.speed == 1.0 {
                String::new()
            } else {
                format!(", speed {}", r.speed)
            }
        ),
    };
    if h.rate.is_some() || matches!(tr.ramp, Ramp::Rate(_)) {
        let _ = write!(t, ", {} arrivals", tr.arrivals.name());
    }
    let stages = |p: &crate::traffic::Profile, unit: &str| {
        let steps: Vec<String> = p
            .stages
            .iter()
            .map(|s| format!("{} over {}", s.target, format_duration(s.duration)))
            .collect();
        format!(", stages from {}{unit}: {}", p.start, steps.join(", then "))
    };
    match &tr.ramp {
        Ramp::None => {}
        Ramp::Rate(p) => t.push_str(&stages(p, " req/s")),
        Ramp::Concurrency(p) => t.push_str(&stages(p, " clients")),
    }
    t
}

fn udp(u: &UdpWorkload) -> String {
    format!(
        "{} datagrams × {} B every {}, {} flow{}, timeout {}",
        u.count,
        u.size,
        format_duration(u.interval),
        u.flows,
        if u.flows == 1 { "" } else { "s" },
        format_duration(u.timeout)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;

    fn plan(toml: &str) -> Plan {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/unit.toml");
        let s = crate::scenario::parse(&path, &format!("name = \"w\"\n{toml}"))
            .unwrap_or_else(|e| panic!("{e}"));
        s.variants[0].plan.clone()
    }

    #[test]
    fn check_shows_the_serving_threads_and_sockets() {
        let cores = NonZeroUsize::new(4).unwrap();
        let http = |c: u32| {
            format!("[[workload]]\nkind = \"http\"\nname = \"h\"\ntarget = \"proxy\"\nrequests = 9\nconcurrency = {c}\n")
        };
        assert_eq!(
            serving(&plan(&http(1)), cores).unwrap(),
            "origin the run's own runtime (its clients open at most one connection); \
             proxy the run's own runtime (its clients open at most one connection)"
        );
        let p = plan(&format!(
            "[proxy]\nworkers = 2\nlisten_sockets = \"per-worker\"\n{}",
            http(50)
        ));
        assert_eq!(
            serving(&p, cores).unwrap(),
            "origin workers 4 (one per core, at most its clients' connections), 1 socket; \
             proxy workers 2, 2 sockets (SO_REUSEPORT)"
        );
    }
}
