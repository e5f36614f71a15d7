//! The links a variant impairs: `[links.clients_proxy]` (or its shorthand
//! `[impair]`, not both), `[links.proxy_origin]`, and the seed their models
//! draw from. `[links.clients_origin]` needs `hosts = "netns"`: on loopback
//! the direct path has nothing to shape.

use std::time::Duration;

use toml::Spanned;

use crate::proxy::LinkConfig;
use crate::scenario::diag::ScenarioErrors;
use crate::scenario::raw::{self, S};
use crate::scenario::Links;
use crate::workload::MAX_DURATION;

pub(super) fn resolve_links(r: &raw::Scenario, errs: &mut ScenarioErrors) -> Links {
    let seed = resolve_seed(r, errs);
    let links = r.links.clone().unwrap_or_default();
    let netns = r
        .topology
        .as_ref()
        .and_then(|t| t.hosts.as_ref())
        .is_some_and(|h| h.get_ref() == "netns");
    let mut clients_origin = links
        .clients_origin
        .as_ref()
        .map(|t| (t, "links.clients_origin"));
    if let (Some((t, _)), false) = (clients_origin, netns) {
        errs.push(
            Some(t.span()),
            "links.clients_origin",
            "shapes the real link between the clients' and the origin's network namespaces: \
             set [topology] hosts = \"netns\". On loopback `target = \"origin\"` stays the \
             clean path comparisons lean on; to put the origin far away, use [links.proxy_origin]",
        );
        clients_origin = None;
    }
    let clients = match (&r.impair, &links.clients_proxy) {
        (Some(short), Some(long)) => {
            // Both are reported, each at its own place.
            for (t, key, other) in [
                (short, "impair", "links.clients_proxy"),
                (long, "links.clients_proxy", "impair"),
            ] {
                errs.push(
                    Some(t.span()),
                    key,
                    format!(
                        "`impair` and `links.clients_proxy` both set the clients <-> proxy link \
                         (`impair` is its shorthand); keep one and remove `{other}`"
                    ),
                );
            }
            None
        }
        (Some(t), None) => Some((t, "impair")),
        (None, Some(t)) => Some((t, "links.clients_proxy")),
        (None, None) => None,
    };
    Links {
        clients_proxy: resolve_link(clients, seed, errs),
        proxy_origin: resolve_link(
            links
                .proxy_origin
                .as_ref()
                .map(|t| (t, "links.proxy_origin")),
            seed,
            errs,
        ),
        clients_origin: resolve_link(clients_origin, seed, errs),
    }
}

fn resolve_seed(r: &raw::Scenario, errs: &mut ScenarioErrors) -> u64 {
    match &r.seed {
        Some(s) if *s.get_ref() < 0 => {
            errs.push(
                Some(s.span()),
                "seed",
                format!("{} is negative; use a number ≥ 0", s.get_ref()),
            );
            0
        }
        Some(s) => *s.get_ref() as u64,
        None => 1,
    }
}

/// One link's table (and the key it was written under) as the proxy's
/// link model takes it; no table is a perfect link.
fn resolve_link(
    table: Option<(&Spanned<raw::Impair>, &str)>,
    seed: u64,
    errs: &mut ScenarioErrors,
) -> LinkConfig {
    let none = LinkConfig {
        seed,
        ..LinkConfig::default()
    };
    let Some((t, key)) = table else {
        return none;
    };
    let i = t.get_ref();
    // Jitter may exceed the delay: the model clamps each delay at zero
    // (documented in docs/src/links.md). Durations and rates cannot be
    // negative once parsed.
    if let Some(l) = &i.loss_percent {
        let v = *l.get_ref();
        if !(0.0..=100.0).contains(&v) {
            errs.push(
                Some(l.span()),
                format!("{key}.loss_percent"),
                format!("{v} is out of range; use a percentage from 0 to 100"),
            );
        }
    }
    LinkConfig {
        delay: duration(&i.delay, &format!("{key}.delay"), errs),
        jitter: duration(&i.jitter, &format!("{key}.jitter"), errs),
        loss_percent: i.loss_percent.as_ref().map_or(0.0, |v| *v.get_ref()),
        rate_bps: i.rate.as_ref().map_or(0.0, |v| v.get_ref().bits_per_sec()),
        seed,
    }
}

/// A delay or jitter: at most 24h, as every duration in a scenario.
fn duration(v: &S<crate::units::HumanDuration>, key: &str, errs: &mut ScenarioErrors) -> Duration {
    let Some(v) = v else {
        return Duration::ZERO;
    };
    let d = v.get_ref().0;
    if d > MAX_DURATION {
        errs.push(
            Some(v.span()),
            key,
            format!(
                "{} is too long; at most 24h is accepted",
                crate::units::format_duration(d)
            ),
        );
        return Duration::ZERO;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use std::time::Duration;

    #[test]
    fn each_link_gets_its_own_knobs_and_the_seed() {
        let s = valid(&format!(
            "seed = 7\n[links.clients_proxy]\ndelay = \"3ms\"\n\
             [links.proxy_origin]\ndelay = \"20ms\"\njitter = \"1ms\"\nloss_percent = 2.0\nrate = \"20Mbit/s\"\n{}",
            http("")
        ));
        let l = s.variants[0].plan.links;
        assert_eq!(l.clients_proxy.delay, Duration::from_millis(3));
        assert!(l.clients_proxy.jitter.is_zero());
        assert_eq!(l.proxy_origin.delay, Duration::from_millis(20));
        assert_eq!(l.proxy_origin.jitter, Duration::from_millis(1));
        assert_eq!(l.proxy_origin.loss_percent, 2.0);
        assert_eq!(l.proxy_origin.rate_bps, 20e6);
        assert_eq!((l.clients_proxy.seed, l.proxy_origin.seed), (7, 7));
    }

    #[test]
    fn impair_is_shorthand_for_the_clients_link() {
        let short = valid(&format!("[impair]\ndelay = \"3ms\"\n{}", http("")));
        let long = valid(&format!(
            "[links.clients_proxy]\ndelay = \"3ms\"\n{}",
            http("")
        ));
        assert_eq!(short.variants[0].plan.links, long.variants[0].plan.links);
        assert!(short.variants[0].plan.links.proxy_origin.is_none());
    }

    #[test]
    fn impair_and_links_clients_proxy_together_are_refused_naming_both() {
        let src = format!(
            "[impair]\ndelay = \"3ms\"\n[links.clients_proxy]\ndelay = \"5ms\"\n{}",
            http("")
        );
        let p = problems(&src);
        let keys: Vec<_> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["impair", "links.clients_proxy"], "{p:#?}");
        assert!(p[0].1.contains("remove `links.clients_proxy`"), "{p:#?}");
        assert!(p[1].1.contains("remove `impair`"), "{p:#?}");
    }

    #[test]
    fn the_clients_origin_link_is_refused_on_loopback() {
        let m = problem(
            &format!("[links.clients_origin]\ndelay = \"3ms\"\n{}", http("")),
            "links.clients_origin",
        );
        assert!(m.contains("hosts = \"netns\""), "{m}");
    }

    #[test]
    fn the_clients_origin_link_is_resolved_with_netns_hosts() {
        let s = valid(&format!(
            "[topology]\nhosts = \"netns\"\n[links.clients_origin]\nrate = \"5Mbit/s\"\n{}",
            http("")
        ));
        assert_eq!(s.variants[0].plan.links.clients_origin.rate_bps, 5e6);
        let s = valid(&format!(
            "[topology]\nhosts = \"netns\"\n\
             [matrix]\n\"links.clients_origin.rate\" = [\"5Mbit/s\", \"10Mbit/s\"]\n{}",
            http("")
        ));
        let rates: Vec<f64> = s
            .variants
            .iter()
            .map(|v| v.plan.links.clients_origin.rate_bps)
            .collect();
        assert_eq!(rates, [5e6, 10e6]);
    }

    #[test]
    fn bad_link_values_name_their_key() {
        let m = problem(
            &format!("[links.proxy_origin]\nloss_percent = 150\n{}", http("")),
            "links.proxy_origin.loss_percent",
        );
        assert!(m.contains("0 to 100"), "{m}");
        let m = problem(
            &format!("[links.proxy_origin]\ndelay = \"25h\"\n{}", http("")),
            "links.proxy_origin.delay",
        );
        assert!(m.contains("24h"), "{m}");
        let m = problem(
            &format!("[impair]\njitter = \"2days\"\n{}", http("")),
            "impair.jitter",
        );
        assert!(m.contains("24h"), "{m}");
    }

    #[test]
    fn matrix_keys_reach_every_knob_of_each_link() {
        let s = valid(&format!(
            "[matrix]\n\"links.proxy_origin.delay\" = [\"0ms\", \"20ms\", \"80ms\"]\n\
             \"links.clients_proxy.rate\" = [\"10Mbit/s\"]\n{}",
            http("")
        ));
        let delays: Vec<_> = s
            .variants
            .iter()
            .map(|v| v.plan.links.proxy_origin.delay.as_millis())
            .collect();
        assert_eq!(delays, [0, 20, 80]);
        assert!(s
            .variants
            .iter()
            .all(|v| v.plan.links.clients_proxy.rate_bps == 10e6));
        let m = problem(
            &format!(
                "[matrix]\n\"links.elsewhere.delay\" = [\"1ms\"]\n{}",
                http("")
            ),
            "matrix.links.elsewhere.delay",
        );
        assert!(m.contains("links.proxy_origin.<knob>"), "{m}");
    }
}
