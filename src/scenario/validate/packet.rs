//! The packet-level knobs of `[links.*]` (and `[impair]`): burst loss,
//! duplicates, reordering, the queue, delivery traces, outages and the
//! engine. They work on packets, so they need `hosts = "netns"`, where
//! netrun's user-space link carries every packet of a link.

use std::path::Path;
use std::sync::Arc;

use toml::Spanned;

use crate::link::{Gilbert, Limit, Outage, Queue, QueueKind, Trace};
use crate::scenario::diag::ScenarioErrors;
use crate::scenario::raw::{self, Percent, S};
use crate::scenario::{Engine, PacketKnobs, PacketLinks};

pub(super) fn resolve_packet_links(
    r: &raw::Scenario,
    dir: &Path,
    errs: &mut ScenarioErrors,
) -> PacketLinks {
    let netns = r
        .topology
        .as_ref()
        .and_then(|t| t.hosts.as_ref())
        .is_some_and(|h| h.get_ref() == "netns");
    let links = r.links.clone().unwrap_or_default();
    // `[impair]` and `[links.clients_proxy]` together are refused in links.rs.
    let clients = match (&r.impair, &links.clients_proxy) {
        (Some(t), _) => Some((t, "impair")),
        (None, Some(t)) => Some((t, "links.clients_proxy")),
        (None, None) => None,
    };
    let one = |t: Option<(&Spanned<raw::Impair>, &str)>, errs: &mut ScenarioErrors| {
        t.map_or_else(PacketKnobs::default, |(t, key)| {
            resolve(t.get_ref(), key, netns, dir, errs)
        })
    };
    PacketLinks {
        clients_proxy: one(clients, errs),
        proxy_origin: one(
            links
                .proxy_origin
                .as_ref()
                .map(|t| (t, "links.proxy_origin")),
            errs,
        ),
        // Refused on loopback by links.rs already.
        clients_origin: if netns {
            one(
                links
                    .clients_origin
                    .as_ref()
                    .map(|t| (t, "links.clients_origin")),
                errs,
            )
        } else {
            PacketKnobs::default()
        },
    }
}

fn resolve(
    i: &raw::Impair,
    key: &str,
    netns: bool,
    dir: &Path,
    errs: &mut ScenarioErrors,
) -> PacketKnobs {
    let k = PacketKnobs {
        burst_loss: i
            .burst_loss
            .as_ref()
            .and_then(|b| burst_loss(b, &format!("{key}.burst_loss"), errs)),
        duplicate_percent: percent_knob(
            &i.duplicate_percent,
            &format!("{key}.duplicate_percent"),
            errs,
        ),
        reorder_percent: percent_knob(&i.reorder_percent, &format!("{key}.reorder_percent"), errs),
        queue: i
            .queue
            .as_ref()
            .and_then(|q| queue(q, &format!("{key}.queue"), errs)),
        trace: i.trace.as_ref().and_then(|t| {
            let path = dir.join(t.get_ref());
            match Trace::load(&path) {
                Ok(trace) => Some(Arc::new(trace)),
                Err(e) => {
                    errs.push(Some(t.span()), format!("{key}.trace"), e);
                    None
                }
            }
        }),
        outage: i
            .outage
            .as_ref()
            .and_then(|o| outage(o, &format!("{key}.outage"), errs)),
        engine: i.engine.as_ref().and_then(|e| match e.get_ref().as_str() {
            "kernel" => Some(Engine::Kernel),
            "userspace" => Some(Engine::Userspace),
            other => {
                errs.push(
                    Some(e.span()),
                    format!("{key}.engine"),
                    format!("`{other}` is not an engine; use \"kernel\" or \"userspace\""),
                );
                None
            }
        }),
    };
    if let (Some(t), Some(r)) = (&i.trace, &i.rate) {
        if !r.get_ref().is_unlimited() {
            errs.push(
                Some(t.span()),
                format!("{key}.trace"),
                "a trace sets the link's speed, as `rate` does; keep one",
            );
        }
    }
    let spans: [(&str, Option<std::ops::Range<usize>>); 7] = [
        ("burst_loss", i.burst_loss.as_ref().map(|v| v.span())),
        (
            "duplicate_percent",
            i.duplicate_percent.as_ref().map(|v| v.span()),
        ),
        (
            "reorder_percent",
            i.reorder_percent.as_ref().map(|v| v.span()),
        ),
        ("queue", i.queue.as_ref().map(|v| v.span())),
        ("trace", i.trace.as_ref().map(|v| v.span())),
        ("outage", i.outage.as_ref().map(|v| v.span())),
        ("engine", i.engine.as_ref().map(|v| v.span())),
    ];
    if !netns {
        for (knob, span) in &spans {
            if let Some(sp) = span {
                errs.push(
                    Some(sp.clone()),
                    format!("{key}.{knob}"),
                    "works on packets, which needs [topology] hosts = \"netns\" (netrun's \
                     packet link between network namespaces); on loopback a link has delay, \
                     jitter, loss_percent and rate",
                );
            }
        }
        return PacketKnobs::default();
    }
    if k.engine == Some(Engine::Kernel) {
        for knob in k.userspace_only() {
            let sp = spans
                .iter()
                .find(|(n, _)| *n == knob)
                .and_then(|(_, s)| s.clone());
            errs.push(
                sp,
                format!("{key}.{knob}"),
                "the kernel engine (tc tbf, netem) cannot apply this here; remove \
                 engine = \"kernel\" (netrun then uses its user-space link) or this knob",
            );
        }
    }
    k
}

fn percent(p: &Spanned<Percent>, key: &str, errs: &mut ScenarioErrors) -> Option<f64> {
    let v = match p.get_ref() {
        Percent::Number(n) => Ok(*n),
        Percent::Text(t) => crate::link::config::parse_percent(t),
    };
    match v {
        Ok(v) if (0.0..=100.0).contains(&v) => Some(v),
        Ok(v) => {
            errs.push(
                Some(p.span()),
                key,
                format!("{v} is out of range; use 0% to 100%"),
            );
            None
        }
        Err(e) => {
            errs.push(Some(p.span()), key, e);
            None
        }
    }
}

fn percent_knob(v: &S<f64>, key: &str, errs: &mut ScenarioErrors) -> f64 {
    let Some(v) = v else { return 0.0 };
    let n = *v.get_ref();
    if !(0.0..=100.0).contains(&n) {
        errs.push(
            Some(v.span()),
            key,
            format!("{n} is out of range; use a percentage from 0 to 100"),
        );
        return 0.0;
    }
    n
}

fn burst_loss(
    b: &Spanned<raw::BurstLoss>,
    key: &str,
    errs: &mut ScenarioErrors,
) -> Option<Gilbert> {
    let t = b.get_ref();
    let (Some(p), Some(r)) = (&t.p, &t.r) else {
        errs.push(
            Some(b.span()),
            key,
            "needs p and r, e.g. { p = \"1%\", r = \"30%\" } (p: good→bad, r: bad→good)",
        );
        return None;
    };
    let get = |v: &Spanned<Percent>, k: &str, errs: &mut ScenarioErrors| {
        percent(v, &format!("{key}.{k}"), errs).map(|v| v / 100.0)
    };
    let g = Gilbert {
        p: get(p, "p", errs)?,
        r: get(r, "r", errs)?,
        h: t.h.as_ref().map_or(Some(1.0), |h| get(h, "h", errs))?,
        k: t.k.as_ref().map_or(Some(0.0), |k| get(k, "k", errs))?,
    };
    if g.r <= 0.0 {
        errs.push(
            Some(r.span()),
            format!("{key}.r"),
            "must be above 0% (else a burst never ends)",
        );
        return None;
    }
    Some(g)
}

fn queue(q: &Spanned<raw::LinkQueue>, key: &str, errs: &mut ScenarioErrors) -> Option<Queue> {
    let t = q.get_ref();
    let limit = match (&t.packets, &t.bytes) {
        (Some(p), Some(_)) => {
            errs.push(
                Some(p.span()),
                format!("{key}.packets"),
                "give packets or bytes, not both",
            );
            return None;
        }
        (Some(p), None) if *p.get_ref() < 1 => {
            errs.push(
                Some(p.span()),
                format!("{key}.packets"),
                "must be at least 1",
            );
            return None;
        }
        (Some(p), None) => Limit::Packets(*p.get_ref() as usize),
        (None, Some(b)) if b.get_ref().bytes() == 0 => {
            errs.push(Some(b.span()), format!("{key}.bytes"), "must be above zero");
            return None;
        }
        (None, Some(b)) => Limit::Bytes(b.get_ref().bytes()),
        (None, None) => Queue::default().limit,
    };
    let kind = match t.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
        None | Some(("droptail", _)) => {
            for (k, v) in [("target", &t.target), ("interval", &t.interval)] {
                if let Some(v) = v {
                    errs.push(
                        Some(v.span()),
                        format!("{key}.{k}"),
                        "only a codel queue has it",
                    );
                }
            }
            QueueKind::DropTail
        }
        Some(("codel", _)) => {
            let d = |v: &S<crate::units::HumanDuration>, default: u64| {
                v.as_ref()
                    .map_or(std::time::Duration::from_millis(default), |v| v.get_ref().0)
            };
            let (target, interval) = (d(&t.target, 5), d(&t.interval, 100));
            if target.is_zero() || interval.is_zero() {
                errs.push(
                    Some(q.span()),
                    key,
                    "codel's target and interval must be above zero",
                );
                return None;
            }
            QueueKind::Codel { target, interval }
        }
        Some((other, sp)) => {
            errs.push(
                Some(sp),
                format!("{key}.kind"),
                format!("`{other}` is not a queue; use \"droptail\" or \"codel\""),
            );
            return None;
        }
    };
    Some(Queue { kind, limit })
}

fn outage(o: &Spanned<raw::LinkOutage>, key: &str, errs: &mut ScenarioErrors) -> Option<Outage> {
    let t = o.get_ref();
    let (Some(every), Some(lasting)) = (&t.every, &t.lasting) else {
        errs.push(
            Some(o.span()),
            key,
            "needs every and lasting, e.g. { every = \"10s\", lasting = \"500ms\" }",
        );
        return None;
    };
    let (every, lasting) = (every.get_ref().0, lasting.get_ref().0);
    if lasting.is_zero() || lasting >= every {
        errs.push(
            Some(o.span()),
            key,
            "an outage must last more than zero and less than its period (`every`)",
        );
        return None;
    }
    Some(Outage { every, lasting })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    const NETNS: &str = "[topology]\nhosts = \"netns\"\n";

    #[test]
    fn packet_knobs_resolve_with_netns() {
        let s = valid(&format!(
            "name = \"x\"\n{NETNS}[links.proxy_origin]\nrate = \"10Mbit/s\"\n\
             burst_loss = {{ p = \"1%\", r = 30 }}\nduplicate_percent = 1\n\
             queue = {{ kind = \"codel\", target = \"2ms\" }}\noutage = {{ every = \"10s\", lasting = \"1s\" }}\n\
             engine = \"userspace\"\n[[workload]]\nkind = \"udp\"\nname = \"u\"\n"
        ));
        let k = &s.variants[0].plan.packet_links.proxy_origin;
        let g = k.burst_loss.unwrap();
        assert_eq!((g.p, g.r, g.h, g.k), (0.01, 0.3, 1.0, 0.0));
        assert_eq!(k.duplicate_percent, 1.0);
        assert!(matches!(
            k.queue.unwrap().kind,
            crate::link::QueueKind::Codel { .. }
        ));
        assert_eq!(k.engine, Some(crate::scenario::Engine::Userspace));
        assert_eq!(
            k.userspace_only(),
            ["burst_loss", "duplicate_percent", "queue", "outage"]
        );
    }

    #[test]
    fn packet_knobs_need_netns_and_the_kernel_engine_refuses_them() {
        let loopback = problem(
            "name = \"x\"\n[links.proxy_origin]\nduplicate_percent = 1\n[[workload]]\nkind = \"udp\"\nname = \"u\"\n",
            "links.proxy_origin.duplicate_percent",
        );
        assert!(loopback.contains("hosts = \"netns\""), "{loopback}");
        let kernel = problem(
            &format!("name = \"x\"\n{NETNS}[links.proxy_origin]\nreorder_percent = 1\nengine = \"kernel\"\n[[workload]]\nkind = \"udp\"\nname = \"u\"\n"),
            "links.proxy_origin.reorder_percent",
        );
        assert!(kernel.contains("kernel engine"), "{kernel}");
        let both = problems(&format!(
            "name = \"x\"\n{NETNS}[links.proxy_origin]\nrate = \"1Mbit/s\"\ntrace = \"nope.up\"\n[[workload]]\nkind = \"udp\"\nname = \"u\"\n"
        ));
        assert!(
            both.iter()
                .any(|(_, m)| m.contains("cannot read the trace")),
            "{both:?}"
        );
        assert!(both.iter().any(|(_, m)| m.contains("keep one")), "{both:?}");
    }
}
