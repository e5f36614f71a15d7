//! One variant's plan: mode, cache settings, links (`links.rs`), and its
//! workloads (each checked in `workload.rs`), with the defaults filled in.

use std::path::Path;
use std::time::Duration;

use super::span;
use super::topology::resolve_topology;
use super::workload::resolve_workload;
use crate::cache_policy::{Policy, UnknownPolicy};
use crate::scenario::diag::ScenarioErrors;
use crate::scenario::raw;
use crate::scenario::{CacheSettings, Mode, Plan, Workload};
use crate::units::ByteSize;

pub(super) fn resolve_plan(
    r: &raw::Scenario,
    dir: &Path,
    errs: &mut ScenarioErrors,
) -> Option<Plan> {
    let before = errs.errors.len();
    let mode = resolve_mode(r, errs);
    let topology = resolve_topology(r.topology.clone().unwrap_or_default(), dir, errs);
    let origin_max_age = resolve_max_age(r.origin.as_ref(), errs);
    let tls = super::tls::resolve_tls(r, topology.as_ref(), dir, errs);
    let origin_workers = resolve_workers(
        r.origin.as_ref().and_then(|o| o.workers.as_ref()),
        "origin.workers",
        errs,
    );
    let proxy_workers = resolve_workers(
        r.proxy.as_ref().and_then(|p| p.workers.as_ref()),
        "proxy.workers",
        errs,
    );
    let origin_listen_sockets = resolve_listen_sockets(
        r.origin.as_ref().and_then(|o| o.listen_sockets.as_ref()),
        "origin.listen_sockets",
        errs,
    );
    let proxy_listen_sockets = resolve_listen_sockets(
        r.proxy.as_ref().and_then(|p| p.listen_sockets.as_ref()),
        "proxy.listen_sockets",
        errs,
    );
    let cache = resolve_cache(r, errs);
    let links = super::links::resolve_links(r, errs);
    let packet_links = super::packet::resolve_packet_links(r, dir, errs);
    let workloads = resolve_workloads(r, topology.as_ref(), &tls, dir, errs);
    if errs.errors.len() > before {
        return None;
    }
    Some(Plan {
        mode,
        topology: topology?,
        origin_max_age,
        tls,
        origin_workers,
        proxy_workers,
        origin_listen_sockets,
        proxy_listen_sockets,
        cache,
        links,
        packet_links,
        workloads,
    })
}

fn resolve_mode(r: &raw::Scenario, errs: &mut ScenarioErrors) -> Mode {
    match r.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("sequential", _)) => Mode::Sequential,
        Some(("parallel", _)) => Mode::Parallel,
        Some((other, sp)) => {
            errs.push(
                Some(sp),
                "mode",
                format!("`{other}` is not a mode; use \"sequential\" or \"parallel\""),
            );
            Mode::Sequential
        }
    }
}

fn resolve_cache(r: &raw::Scenario, errs: &mut ScenarioErrors) -> CacheSettings {
    let c = r.cache.clone().unwrap_or_default();
    let policy = match &c.policy {
        None => Policy::default(),
        Some(p) => p.get_ref().parse().unwrap_or_else(|e: UnknownPolicy| {
            errs.push(Some(p.span()), "cache.policy", e.to_string());
            Policy::default()
        }),
    };
    let capacity_objects = match &c.capacity_objects {
        Some(n) if *n.get_ref() < 1 => {
            errs.push(
                Some(n.span()),
                "cache.capacity_objects",
                format!(
                    "{} is too small; give at least 1 object, or remove it to count bytes",
                    n.get_ref()
                ),
            );
            None
        }
        n => n.as_ref().map(|n| *n.get_ref() as u64),
    };
    CacheSettings {
        enabled: c.enabled.map_or(true, |v| *v.get_ref()),
        capacity: c.capacity.map_or(ByteSize(64 << 20), |v| *v.get_ref()),
        policy,
        capacity_objects,
        ttl: c.ttl.map(|v| v.get_ref().0),
    }
}

/// `[origin] max_age`: a duration, or `"none"`; the origin's default when absent.
fn resolve_max_age(o: Option<&raw::Origin>, errs: &mut ScenarioErrors) -> Option<Duration> {
    let Some(v) = o.and_then(|o| o.max_age.as_ref()) else {
        return Some(crate::origin::DEFAULT_MAX_AGE);
    };
    let text = v.get_ref().trim();
    if text.eq_ignore_ascii_case("none") {
        return None;
    }
    let longest = Duration::from_secs(crate::proxy::cache::MAX_DELTA_SECONDS);
    let problem = match crate::units::parse_duration(text) {
        Ok(d) if d <= longest => return Some(d),
        Ok(_) => {
            format!("`{text}` is too long; HTTP caches count at most 2^31 seconds (about 68 years)")
        }
        Err(e) => format!("{e}; or \"none\" to send no Cache-Control"),
    };
    errs.push(Some(v.span()), "origin.max_age", problem);
    None
}

/// `[origin] workers` / `[proxy] workers`: 1 to [`MAX_WORKERS`] serving
/// threads; one per core when absent.
///
/// [`MAX_WORKERS`]: crate::server::MAX_WORKERS
fn resolve_workers(
    v: Option<&toml::Spanned<i64>>,
    key: &str,
    errs: &mut ScenarioErrors,
) -> Option<std::num::NonZeroUsize> {
    let v = v?;
    let n = *v.get_ref();
    let max = crate::server::MAX_WORKERS;
    let ok = usize::try_from(n)
        .ok()
        .filter(|&n| n <= max)
        .and_then(std::num::NonZeroUsize::new);
    if ok.is_none() {
        errs.push(
            Some(v.span()),
            key,
            format!("{n} is not a number of serving threads; give 1 to {max}, or remove it for one per core"),
        );
    }
    ok
}

fn resolve_workloads(
    r: &raw::Scenario,
    topology: Option<&crate::scenario::Topology>,
    tls: &crate::scenario::TlsSettings,
    dir: &Path,
    errs: &mut ScenarioErrors,
) -> Vec<Workload> {
    // Negative seeds are reported by the links' resolution.
    let seed = r.seed.as_ref().map_or(1, |s| (*s.get_ref()).max(0) as u64);
    let mut workloads: Vec<Workload> = Vec::new();
    if r.workload.is_empty() {
        errs.push(
            None,
            "workload",
            "the scenario has no [[workload]]; add at least one (kind = \"http\" or \"udp\")",
        );
    }
    for (index, w) in r.workload.iter().enumerate() {
        if let Some(wl) = resolve_workload(w, index, topology, (dir, seed), errs) {
            if workloads.iter().any(|o| o.name == wl.name) {
                errs.push(
                    span(&w.get_ref().name).or(Some(w.span())),
                    format!("workload.{}", wl.name),
                    "this name is used by another workload; names must be unique",
                );
            }
            pipelined_over_tls(&wl, w.get_ref(), tls, errs);
            workloads.push(wl);
        }
    }
    workloads
}

/// `[origin] listen_sockets` / `[proxy] listen_sockets`: `"shared"` (the
/// default) or `"per-worker"`.
fn resolve_listen_sockets(
    v: Option<&toml::Spanned<String>>,
    key: &str,
    errs: &mut ScenarioErrors,
) -> crate::server::ListenSockets {
    let Some(v) = v else {
        return crate::server::ListenSockets::default();
    };
    v.get_ref().parse().unwrap_or_else(|why: String| {
        errs.push(Some(v.span()), key, why);
        crate::server::ListenSockets::default()
    })
}

/// Pipelining is spoken by the clear-text HTTP/1.1 client only: refused
/// against a service that speaks TLS.
fn pipelined_over_tls(
    wl: &Workload,
    w: &raw::Workload,
    tls: &crate::scenario::TlsSettings,
    errs: &mut ScenarioErrors,
) {
    let crate::scenario::WorkloadKind::Http(h) = &wl.kind else {
        return;
    };
    let over_tls = match wl.target {
        crate::scenario::Target::Proxy => tls.proxy.is_some(),
        crate::scenario::Target::Origin => tls.origin.is_some(),
    };
    if h.pipeline > 1 && over_tls {
        errs.push(
            span(&w.pipeline),
            format!("workload.{}.pipeline", wl.name),
            "pipeline > 1 needs clear-text HTTP/1.1 and this workload's target speaks TLS; remove pipeline (or the target's tls)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::scenario::Mode;

    #[test]
    fn defaults_are_filled_in() {
        let s = valid(&http(""));
        let p = &s.variants[0].plan;
        assert_eq!(p.mode, Mode::Sequential);
        assert!(p.cache.enabled);
        assert_eq!(p.cache.capacity.bytes(), 64 << 20);
        assert_eq!(p.cache.ttl, None, "no invented freshness unless asked");
        assert_eq!(p.origin_max_age, Some(crate::origin::DEFAULT_MAX_AGE));
        assert_eq!(
            (p.origin_workers, p.proxy_workers),
            (None, None),
            "one per core"
        );
        assert!(p.links.clients_proxy.is_none());
        assert!(p.links.proxy_origin.is_none());
        assert_eq!(p.links.seed(), 1);
    }

    #[test]
    fn workers_are_counted_and_checked() {
        let s = valid(&format!(
            "[origin]\nworkers = 3\n[proxy]\nworkers = 1\n{}",
            http("")
        ));
        let p = &s.variants[0].plan;
        assert_eq!(p.origin_workers.map(|n| n.get()), Some(3));
        assert_eq!(p.proxy_workers.map(|n| n.get()), Some(1));
        for bad in ["0", "-2", "257"] {
            let m = problem(
                &format!("[proxy]\nworkers = {bad}\n{}", http("")),
                "proxy.workers",
            );
            assert!(m.contains("give 1 to 256"), "{m}");
        }
        let m = problem(
            &format!("[origin]\nworkers = 0\n{}", http("")),
            "origin.workers",
        );
        assert!(m.contains("one per core"), "{m}");
    }

    #[test]
    fn listen_sockets_are_shared_unless_asked() {
        use crate::server::ListenSockets;
        let p = &valid(&http("")).variants[0].plan;
        assert_eq!(p.origin_listen_sockets, ListenSockets::Shared);
        let s = valid(&format!(
            "[proxy]\nlisten_sockets = \"per-worker\"\n{}",
            http("")
        ));
        let p = &s.variants[0].plan;
        assert_eq!(
            (p.origin_listen_sockets, p.proxy_listen_sockets),
            (ListenSockets::Shared, ListenSockets::PerWorker)
        );
        let m = problem(
            &format!("[origin]\nlisten_sockets = \"each\"\n{}", http("")),
            "origin.listen_sockets",
        );
        assert!(m.contains("per-worker"), "{m}");
    }

    #[test]
    fn impairments_and_seed_become_the_link_config() {
        let s = valid(&format!(
            "seed = 7\n[impair]\ndelay = \"10ms\"\njitter = \"2ms\"\nloss_percent = 1.5\nrate = \"1Mbit/s\"\n{}",
            http("")
        ));
        let l = s.variants[0].plan.links.clients_proxy;
        assert_eq!(l.delay, std::time::Duration::from_millis(10));
        assert_eq!(l.jitter, std::time::Duration::from_millis(2));
        assert_eq!(l.loss_percent, 1.5);
        assert_eq!(l.rate_bps, 1e6);
        assert_eq!(l.seed, 7);
    }

    #[test]
    fn bad_plan_values_name_their_key() {
        let m = problem(&format!("seed = -1\n{}", http("")), "seed");
        assert!(m.contains("negative"), "{m}");
        let m = problem(&format!("mode = \"random\"\n{}", http("")), "mode");
        assert!(m.contains("\"sequential\" or \"parallel\""), "{m}");
        let m = problem(
            &format!("[impair]\nloss_percent = 150\n{}", http("")),
            "impair.loss_percent",
        );
        assert!(m.contains("0 to 100"), "{m}");
    }

    #[test]
    fn workloads_are_required_and_uniquely_named() {
        let m = problem("", "workload");
        assert!(m.contains("no [[workload]]"), "{m}");
        let m = problem(&format!("{}{}", http(""), udp("")), "workload.w");
        assert!(m.contains("names must be unique"), "{m}");
    }
}
