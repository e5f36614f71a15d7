//! One `[[workload]]`: its name, target and kind, the rules of its kind
//! (`http.rs`, `udp.rs`), then the probe engines' own range checks, so a
//! scenario and `netrun probe` accept the same values.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::span;
use crate::scenario::diag::ScenarioErrors;
use crate::scenario::raw::{self, S};
use crate::scenario::{Target, Topology, Workload, WorkloadKind};
use crate::units::HumanDuration;
use crate::workload::{Setting, SettingError};

/// The keys of one workload, for messages: `workload.<name>.<field>`.
pub(super) struct Keys<'a> {
    pub name: &'a str,
    /// The scenario's folder (traces are relative to it) and seed (catalogs
    /// and Poisson arrivals draw from it).
    pub dir: &'a std::path::Path,
    pub seed: u64,
}

impl Keys<'_> {
    pub fn key(&self, field: &str) -> String {
        format!("workload.{}.{field}", self.name)
    }

    /// A count of at least 1, or `default` when absent.
    pub fn count(&self, v: &S<i64>, field: &str, default: u64, errs: &mut ScenarioErrors) -> u64 {
        match v {
            None => default,
            Some(v) if *v.get_ref() < 1 => {
                errs.push(
                    Some(v.span()),
                    self.key(field),
                    format!("{} is too small; it must be at least 1", v.get_ref()),
                );
                default
            }
            Some(v) => *v.get_ref() as u64,
        }
    }

    /// Keys of the other kind: each one present (it has a span) is an error.
    pub fn forbid(
        &self,
        present: &[(Option<Range<usize>>, &str)],
        kind: &str,
        errs: &mut ScenarioErrors,
    ) {
        for (sp, field) in present {
            if sp.is_some() {
                errs.push(
                    sp.clone(),
                    self.key(field),
                    format!("applies to {kind} workloads only; remove it or change `kind`"),
                );
            }
        }
    }
}

/// The longest `start_after`.
const MAX_START_AFTER: Duration = Duration::from_secs(3600);

/// A duration, or `default` when absent.
pub(super) fn duration(v: &S<HumanDuration>, default: Duration) -> Duration {
    v.as_ref().map_or(default, |d| d.get_ref().0)
}

pub(super) fn resolve_workload(
    w: &Spanned<raw::Workload>,
    index: usize,
    topology: Option<&Topology>,
    (dir, seed): (&std::path::Path, u64),
    errs: &mut ScenarioErrors,
) -> Option<Workload> {
    let before = errs.errors.len();
    let wsp = w.span();
    let w = w.get_ref();
    let name = resolve_name(w, &wsp, index, errs);
    let keys = Keys {
        name: &name,
        dir,
        seed,
    };
    let target = match w.target.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
        None | Some(("proxy", _)) => Target::Proxy,
        Some(("origin", _)) => Target::Origin,
        Some((other, sp)) => {
            errs.push(
                Some(sp),
                keys.key("target"),
                format!("`{other}` is not a target; use \"proxy\" or \"origin\""),
            );
            Target::Proxy
        }
    };
    let kind = match w.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
        Some(("http", _)) => WorkloadKind::Http(super::http::resolve(w, &keys, errs)),
        Some(("udp", _)) => {
            super::udp::check_target(target, topology, &wsp, &keys, errs);
            WorkloadKind::Udp(super::udp::resolve(w, &keys, errs))
        }
        Some((other, sp)) => {
            errs.push(
                Some(sp),
                keys.key("kind"),
                format!("`{other}` is not a workload kind; use \"http\" or \"udp\""),
            );
            return None;
        }
        None => {
            errs.push(
                Some(wsp),
                keys.key("kind"),
                "is missing; add kind = \"http\" or kind = \"udp\"",
            );
            return None;
        }
    };
    let start_after = duration(&w.start_after, Duration::ZERO);
    if start_after > MAX_START_AFTER {
        errs.push(
            span(&w.start_after),
            keys.key("start_after"),
            "is longer than 1h; a workload waits at most 1h before it starts",
        );
    }
    if errs.errors.len() > before {
        return None;
    }
    if let Err(e) = engine_check(&kind).and_then(|()| sockets_check(&kind, target, topology)) {
        place_engine_error(e, w, wsp, &keys, errs);
        return None;
    }
    Some(Workload {
        name,
        target,
        kind,
        start_after,
    })
}

/// The workload's name; a stand-in (`#2`) after reporting a missing or bad one.
fn resolve_name(
    w: &raw::Workload,
    wsp: &Range<usize>,
    index: usize,
    errs: &mut ScenarioErrors,
) -> String {
    match &w.name {
        Some(n) if !n.get_ref().trim().is_empty() && !n.get_ref().contains('.') => {
            n.get_ref().clone()
        }
        Some(n) => {
            errs.push(
                Some(n.span()),
                "workload.name",
                format!(
                    "`{}` is not a usable name; use letters, digits, - or _ (no dots)",
                    n.get_ref()
                ),
            );
            format!("#{}", index + 1)
        }
        None => {
            errs.push(
                Some(wsp.clone()),
                format!("workload[{}]", index + 1),
                "has no `name`; every workload needs one (used in results and [expect])",
            );
            format!("#{}", index + 1)
        }
    }
}

/// The engines' own checks (ranges of timeouts, rates, run size) apply to
/// scenarios too: one set of rules.
fn engine_check(kind: &WorkloadKind) -> Result<(), SettingError> {
    // The address does not take part in the checks.
    let nowhere = SocketAddr::from(([127, 0, 0, 1], 0));
    match kind {
        WorkloadKind::Http(h) => h.probe_config(nowhere).validate(),
        WorkloadKind::Udp(u) => u.probe_config(nowhere).validate(),
    }
}

/// In a scenario the services run in the same process as the workload, so
/// each connection through a spawned proxy holds four sockets (client,
/// proxy's accepted and upstream ones, origin's accepted one), each UDP flow
/// two (client and proxy session): all must fit the open-file limit.
fn sockets_check(
    kind: &WorkloadKind,
    target: Target,
    topology: Option<&Topology>,
) -> Result<(), SettingError> {
    let spawned = |s: fn(&Topology) -> &crate::scenario::Service| {
        topology.map_or(true, |t| s(t).is_spawned())
    };
    let (proxy, origin) = (spawned(|t| &t.proxy), spawned(|t| &t.origin));
    match kind {
        WorkloadKind::Http(h) => {
            let per = 1 + match target {
                Target::Proxy if proxy => 2 + u64::from(origin),
                Target::Origin if origin => 1,
                _ => 0,
            };
            crate::workload::check_sockets(Setting::Concurrency, u64::from(h.concurrency), per)
        }
        WorkloadKind::Udp(u) => {
            let per = 1 + u64::from(target == Target::Proxy && proxy);
            crate::workload::check_sockets(Setting::Flows, u64::from(u.flows), per)
        }
    }
}

/// Reports an engine's refusal at the key that set the value (or the
/// workload, for settings a scenario names differently).
fn place_engine_error(
    e: SettingError,
    w: &raw::Workload,
    wsp: Range<usize>,
    keys: &Keys<'_>,
    errs: &mut ScenarioErrors,
) {
    // The settings a scenario sets by a key of the same name.
    let (keyed, sp) = match e.setting {
        Setting::Timeout => (true, span(&w.timeout)),
        Setting::Interval => (true, span(&w.interval)),
        Setting::Duration => (true, span(&w.duration)),
        Setting::Rate => (true, span(&w.rate)),
        Setting::Count => (true, span(&w.count)),
        Setting::Concurrency => (true, span(&w.concurrency)),
        Setting::Flows => (true, span(&w.flows)),
        Setting::Pipeline => (true, span(&w.pipeline)),
        _ => (false, None),
    };
    let key = if keyed {
        keys.key(e.setting.name())
    } else {
        format!("workload.{}", keys.name)
    };
    errs.push(sp.or(Some(wsp)), key, e.message);
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn a_workload_may_wait_before_it_starts() {
        let s = valid(&udp("start_after = \"2s\""));
        let w = &s.variants[0].plan.workloads[0];
        assert_eq!(w.start_after, std::time::Duration::from_secs(2));
        assert!(crate::report::plan::workload_text(w).ends_with(", starts after 2s"));
        assert!(valid(&http("")).variants[0].plan.workloads[0]
            .start_after
            .is_zero());
        let m = problem(&http("start_after = \"2h\""), "workload.w.start_after");
        assert!(m.contains("at most 1h"), "{m}");
        let s = valid(&format!(
            "{}[matrix]\n\"workload.w.start_after\" = [\"0s\", \"1s\"]\n",
            udp("")
        ));
        assert_eq!(s.variants[1].plan.workloads[0].start_after.as_secs(), 1);
    }

    #[test]
    fn names_kinds_and_targets_are_checked() {
        let m = problem(
            "[[workload]]\nkind = \"http\"\nname = \"a.b\"\n",
            "workload.name",
        );
        assert!(m.contains("no dots"), "{m}");
        let m = problem("[[workload]]\nkind = \"http\"\n", "workload[1]");
        assert!(m.contains("has no `name`"), "{m}");
        let m = problem("[[workload]]\nname = \"w\"\n", "workload.w.kind");
        assert!(m.contains("is missing"), "{m}");
        let m = problem(
            "[[workload]]\nname = \"w\"\nkind = \"ftp\"\n",
            "workload.w.kind",
        );
        assert!(m.contains("\"http\" or \"udp\""), "{m}");
        let m = problem(&http("target = \"moon\""), "workload.w.target");
        assert!(m.contains("\"proxy\" or \"origin\""), "{m}");
    }

    #[test]
    fn counts_must_be_at_least_one() {
        let m = problem(&http("requests = 0"), "workload.w.requests");
        assert_eq!(m, "0 is too small; it must be at least 1");
        let m = problem(&udp("flows = -3"), "workload.w.flows");
        assert_eq!(m, "-3 is too small; it must be at least 1");
    }

    #[test]
    fn engine_refusals_land_on_the_key_that_set_the_value() {
        // Only the engine knows the 24h limit: the message is its own, the
        // key and position the scenario's.
        let m = problem(&http("timeout = \"25h\""), "workload.w.timeout");
        assert!(
            m.starts_with("timeout is ") && m.ends_with("at most 24h is accepted"),
            "{m}"
        );
        let m = problem(&udp("interval = \"25h\""), "workload.w.interval");
        assert!(
            m.starts_with("interval is ") && m.ends_with("at most 24h is accepted"),
            "{m}"
        );
        let m = problem(&http("rate = 20000000.0"), "workload.w.rate");
        assert!(m.starts_with("rate 20000000 is out of range"), "{m}");
        let m = problem(&udp("count = 30000000\nflows = 2"), "workload.w.count");
        assert!(m.contains("more than one run can track"), "{m}");
        // The engine's defaults come into play when the key is absent.
        let p = problems(&http("duration = \"25h\""));
        assert_eq!(p[0].0, "workload.w.duration", "{p:#?}");
    }
}
