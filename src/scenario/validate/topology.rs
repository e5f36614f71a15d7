//! `[topology]`: which services to start and on which ports, or where the
//! running ones are; the origin's site folder; whether the hosts share the
//! loopback or each get a network namespace.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;

use toml::Spanned;

use super::span;
use crate::scenario::diag::ScenarioErrors;
use crate::scenario::raw::{self, S};
use crate::scenario::{Hosts, Service, Topology};

pub(super) fn resolve_topology(
    t: raw::Topology,
    dir: &Path,
    errs: &mut ScenarioErrors,
) -> Option<Topology> {
    let before = errs.errors.len();
    let hosts = resolve_hosts(&t, errs);
    let host: IpAddr = match &t.host {
        // Every address of a service's own namespace.
        None if hosts == Hosts::Netns => IpAddr::from([0, 0, 0, 0]),
        None => IpAddr::from([127, 0, 0, 1]),
        Some(h) => match h.get_ref().parse() {
            Ok(ip) => ip,
            Err(_) => {
                errs.push(
                    Some(h.span()),
                    "topology.host",
                    format!(
                        "`{}` is not an IP address; use e.g. \"127.0.0.1\" or \"::1\"",
                        h.get_ref()
                    ),
                );
                IpAddr::from([127, 0, 0, 1])
            }
        },
    };
    let www_text = t.www.as_ref().map_or("../www", |w| w.get_ref().as_str());
    let www = dir.join(www_text);
    let origin = resolve_service("origin", t.origin.as_ref(), host, errs);
    let proxy = resolve_service("proxy", t.proxy.as_ref(), host, errs);
    if origin.is_some_and(|o| o.is_spawned()) {
        check_www(&www, &t.www, errs);
    }
    if let (Some(o), Some(p)) = (origin, proxy) {
        check_ports_differ(o, p, &t.proxy, errs);
    }
    let congestion = resolve_congestion(&t.congestion, hosts, errs);
    if errs.errors.len() > before {
        return None;
    }
    Some(Topology {
        hosts,
        host,
        www: std::fs::canonicalize(&www).unwrap_or(www),
        origin: origin?,
        proxy: proxy?,
        congestion,
    })
}

/// `congestion`: a TCP congestion control's name, for the links between
/// namespaces (whether this kernel has it is checked before a run, not
/// here: a scenario may be checked on another machine).
fn resolve_congestion(c: &S<String>, hosts: Hosts, errs: &mut ScenarioErrors) -> Option<String> {
    let c = c.as_ref()?;
    let name = c.get_ref();
    if hosts != Hosts::Netns {
        errs.push(
            Some(c.span()),
            "topology.congestion",
            "applies to the links between network namespaces; add hosts = \"netns\" (on \
             loopback netrun leaves the host's TCP as it is), or remove `congestion`",
        );
        return None;
    }
    if !crate::netns::congestion::valid_name(name) {
        errs.push(
            Some(c.span()),
            "topology.congestion",
            format!(
                "`{name}` is not the name of a TCP congestion control; give one such as \
                 \"cubic\", \"reno\" or \"bbr\""
            ),
        );
        return None;
    }
    Some(name.clone())
}

/// `hosts`: `loopback` or `netns`. With namespaces netrun starts both
/// services itself and picks their addresses, so `host` and running
/// services (`address`) do not apply.
fn resolve_hosts(t: &raw::Topology, errs: &mut ScenarioErrors) -> Hosts {
    let hosts = match t.hosts.as_ref().map(|h| (h.get_ref().as_str(), h.span())) {
        None | Some(("loopback", _)) => return Hosts::Loopback,
        Some(("netns", _)) => Hosts::Netns,
        Some((other, sp)) => {
            errs.push(
                Some(sp),
                "topology.hosts",
                format!("`{other}` is not a way to place the hosts; use \"loopback\" or \"netns\""),
            );
            return Hosts::Loopback;
        }
    };
    // `host` picks the family only: "::" for IPv6 (the services listen
    // dual-stack), "0.0.0.0" (the default) for IPv4.
    if let Some(h) = t
        .host
        .as_ref()
        .filter(|h| !matches!(h.get_ref().parse::<IpAddr>(), Ok(ip) if ip.is_unspecified()))
    {
        errs.push(
            Some(h.span()),
            "topology.host",
            "with hosts = \"netns\" each host has netrun's own addresses (198.18.x.x, \
             2001:2:0:x::); remove `host`, or write \"::\" to use their IPv6 addresses",
        );
    }
    for (which, e) in [("origin", &t.origin), ("proxy", &t.proxy)] {
        if let Some(e) = e.as_ref().filter(|e| e.get_ref().address.is_some()) {
            errs.push(
                Some(e.span()),
                format!("topology.{which}.address"),
                "with hosts = \"netns\" netrun starts the origin and the proxy in their namespaces; \
                 remove `address`, or use hosts = \"loopback\" for a running service",
            );
        }
    }
    hosts
}

/// A spawned origin serves files from `www`: it must be a readable folder.
fn check_www(www: &Path, key: &S<String>, errs: &mut ScenarioErrors) {
    match std::fs::metadata(www) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => errs.push(
            span(key),
            "topology.www",
            format!("{} is not a folder", www.display()),
        ),
        Err(e) => errs.push(
            span(key),
            "topology.www",
            format!(
                "{} cannot be read ({e}); it is relative to the scenario file",
                www.display()
            ),
        ),
    }
}

/// Two spawned services on one fixed port of one protocol cannot both bind.
fn check_ports_differ(
    origin: Service,
    proxy: Service,
    key: &S<raw::Endpoint>,
    errs: &mut ScenarioErrors,
) {
    let (Service::Spawn { http: oh, udp: ou }, Service::Spawn { http: ph, udp: pu }) =
        (origin, proxy)
    else {
        return;
    };
    for (o, p, field, what) in [(oh, ph, "http", "HTTP"), (ou, pu, "udp", "UDP")] {
        if o.port() != 0 && o == p {
            errs.push(
                span(key),
                format!("topology.proxy.{field}"),
                format!(
                    "port {} is also the origin's {what} port; give each service its own port (or 0)",
                    p.port()
                ),
            );
        }
    }
}

/// `{ http, udp }` ports of a service to start (0, any free port, by
/// default), or `{ address, udp_address }` of one that runs already.
fn resolve_service(
    which: &str,
    e: Option<&Spanned<raw::Endpoint>>,
    host: IpAddr,
    errs: &mut ScenarioErrors,
) -> Option<Service> {
    let Some(e) = e else {
        return Some(Service::Spawn {
            http: SocketAddr::new(host, 0),
            udp: SocketAddr::new(host, 0),
        });
    };
    let sp = e.span();
    let e = e.get_ref();
    let key = format!("topology.{which}");
    match (&e.address, &e.udp_address) {
        (None, None) => Some(Service::Spawn {
            http: SocketAddr::new(host, port(&e.http, &format!("{key}.http"), errs)),
            udp: SocketAddr::new(host, port(&e.udp, &format!("{key}.udp"), errs)),
        }),
        (Some(a), u) => {
            if e.http.is_some() || e.udp.is_some() {
                errs.push(Some(sp), key.clone(), "mixes `address` (use a running service) with `http`/`udp` ports (start one); keep one or the other");
            }
            let http = address(a, &format!("{key}.address"), errs)?;
            let udp = match u {
                Some(u) => Some(address(u, &format!("{key}.udp_address"), errs)?),
                None => None,
            };
            Some(Service::External { http, udp })
        }
        (None, Some(u)) => {
            errs.push(
                Some(u.span()),
                format!("{key}.udp_address"),
                "needs `address` too (the service's HTTP address)",
            );
            None
        }
    }
}

/// A port to listen on; 0 (any free port) when absent or out of range.
fn port(p: &S<i64>, key: &str, errs: &mut ScenarioErrors) -> u16 {
    let Some(v) = p else { return 0 };
    u16::try_from(*v.get_ref()).unwrap_or_else(|_| {
        errs.push(
            Some(v.span()),
            key,
            format!(
                "port {} is out of range; use 0 (any free port) to 65535",
                v.get_ref()
            ),
        );
        0
    })
}

/// The address of a running service: resolvable, with a real port.
fn address(a: &Spanned<String>, key: &str, errs: &mut ScenarioErrors) -> Option<SocketAddr> {
    match a
        .get_ref()
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
    {
        Some(x) if x.port() == 0 => {
            errs.push(
                Some(a.span()),
                key,
                format!(
                    "`{}` has port 0; a running service has a real port",
                    a.get_ref()
                ),
            );
            None
        }
        Some(x) => Some(x),
        None => {
            errs.push(
                Some(a.span()),
                key,
                format!(
                    "`{}` is not a HOST:PORT address; write e.g. \"127.0.0.1:8000\"",
                    a.get_ref()
                ),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::scenario::Service;

    fn topo(t: &str) -> String {
        format!("[topology]\n{t}\n{}", http(""))
    }

    #[test]
    fn services_are_started_on_free_loopback_ports_by_default() {
        let s = valid(&http(""));
        let t = &s.variants[0].plan.topology;
        assert_eq!(t.hosts, crate::scenario::Hosts::Loopback);
        assert_eq!(t.host.to_string(), "127.0.0.1");
        assert!(t.www.ends_with("www"), "{}", t.www.display());
        for svc in [t.origin, t.proxy] {
            assert_eq!(
                svc,
                Service::Spawn {
                    http: "127.0.0.1:0".parse().unwrap(),
                    udp: "127.0.0.1:0".parse().unwrap()
                }
            );
        }
    }

    #[test]
    fn running_services_are_used_at_their_address() {
        let s = valid(&topo(
            "origin = { address = \"127.0.0.1:8000\", udp_address = \"127.0.0.1:9000\" }",
        ));
        assert_eq!(
            s.variants[0].plan.topology.origin,
            Service::External {
                http: "127.0.0.1:8000".parse().unwrap(),
                udp: Some("127.0.0.1:9000".parse().unwrap())
            }
        );
    }

    #[test]
    fn bad_hosts_ports_and_addresses_name_their_key() {
        let m = problem(&topo("host = \"localhost\""), "topology.host");
        assert!(m.contains("not an IP address"), "{m}");
        let m = problem(&topo("origin = { http = 70000 }"), "topology.origin.http");
        assert!(m.contains("0 (any free port) to 65535"), "{m}");
        let m = problem(
            &topo("proxy = { address = \"127.0.0.1:0\" }"),
            "topology.proxy.address",
        );
        assert!(m.contains("port 0"), "{m}");
        let m = problem(
            &topo("proxy = { address = \"nowhere\" }"),
            "topology.proxy.address",
        );
        assert!(m.contains("HOST:PORT"), "{m}");
        let m = problem(
            &topo("proxy = { udp_address = \"127.0.0.1:9000\" }"),
            "topology.proxy.udp_address",
        );
        assert!(m.contains("needs `address`"), "{m}");
        let m = problem(
            &topo("proxy = { address = \"127.0.0.1:8000\", http = 1 }"),
            "topology.proxy",
        );
        assert!(m.contains("keep one or the other"), "{m}");
    }

    #[test]
    fn two_started_services_cannot_share_a_fixed_port() {
        let m = problem(
            &topo("origin = { http = 8123 }\nproxy = { http = 8123 }"),
            "topology.proxy.http",
        );
        assert!(
            m.contains("port 8123 is also the origin's HTTP port"),
            "{m}"
        );
        assert!(problems(&topo("origin = { http = 0 }\nproxy = { http = 0 }")).is_empty());
    }

    #[test]
    fn a_started_origin_needs_its_site_folder() {
        let m = problem(&topo("www = \"no-such-folder\""), "topology.www");
        assert!(m.contains("relative to the scenario file"), "{m}");
        // A running origin serves its own files.
        assert!(problems(&topo(
            "www = \"no-such-folder\"\norigin = { address = \"127.0.0.1:8000\" }\nproxy = { address = \"127.0.0.1:8080\" }"
        ))
        .is_empty());
    }

    #[test]
    fn netns_hosts_start_both_services_at_netruns_own_addresses() {
        let s = valid(&topo("hosts = \"netns\""));
        assert_eq!(
            s.variants[0].plan.topology.hosts,
            crate::scenario::Hosts::Netns
        );
        let m = problem(&topo("hosts = \"vm\""), "topology.hosts");
        assert!(m.contains("\"loopback\" or \"netns\""), "{m}");
        let m = problem(
            &topo("hosts = \"netns\"\nhost = \"127.0.0.1\""),
            "topology.host",
        );
        assert!(m.contains("remove `host`"), "{m}");
        let m = problem(
            &topo("hosts = \"netns\"\norigin = { address = \"127.0.0.1:8000\" }"),
            "topology.origin.address",
        );
        assert!(m.contains("remove `address`"), "{m}");
    }

    #[test]
    fn congestion_control_is_a_name_and_needs_namespaces() {
        let s = valid(&topo("hosts = \"netns\"\ncongestion = \"cubic\""));
        assert_eq!(
            s.variants[0].plan.topology.congestion.as_deref(),
            Some("cubic")
        );
        assert_eq!(valid(&topo("")).variants[0].plan.topology.congestion, None);
        let m = problem(&topo("congestion = \"cubic\""), "topology.congestion");
        assert!(m.contains("add hosts = \"netns\""), "{m}");
        let m = problem(
            &topo("hosts = \"netns\"\ncongestion = \"cubic; reno\""),
            "topology.congestion",
        );
        assert!(
            m.contains("not the name of a TCP congestion control"),
            "{m}"
        );
    }
}
