//! The resolved plan as `netrun check` prints it: every default filled in,
//! every variant and workload, the addresses that will be used.

use std::fmt::Write;

use crate::scenario::{HttpWorkload, Scenario, Service, UdpWorkload, Variant, WorkloadKind};
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
    let p = &v.plan;
    let _ = writeln!(o);
    let _ = writeln!(o, "variant {}", v.label);
    let _ = writeln!(o, "  mode     {}", p.mode.as_str());
    let _ = writeln!(o, "  seed     {}", p.impair.seed);
    let _ = writeln!(o, "  origin   {}", service(&p.topology.origin));
    if p.topology.origin.is_spawned() {
        let _ = writeln!(o, "  www      {}", p.topology.www.display());
        let max_age = p.origin_max_age.map_or("none".to_string(), format_duration);
        let _ = writeln!(o, "  max-age  {max_age} (the origin's Cache-Control)");
    }
    let _ = writeln!(o, "  proxy    {}", service(&p.topology.proxy));
    let c = &p.cache;
    let (on, open, close) = if c.enabled {
        ("on", ", ", "")
    } else {
        ("off", " (", ")")
    };
    let ttl = c
        .ttl
        .map_or(String::new(), |t| format!(", ttl {}", format_duration(t)));
    let _ = writeln!(
        o,
        "  cache    {on}{open}capacity {}{ttl}{close}",
        c.capacity
    );
    let i = &p.impair;
    let _ = writeln!(
        o,
        "  impair   delay {}, jitter {}, loss {}%, rate {}",
        format_duration(i.delay),
        format_duration(i.jitter),
        i.loss_percent,
        BitRate(i.rate_bps)
    );
    let _ = writeln!(o, "  workloads");
    for w in &p.workloads {
        let what = match &w.kind {
            WorkloadKind::Http(h) => http(h),
            WorkloadKind::Udp(u) => udp(u),
        };
        let _ = writeln!(
            o,
            "    {:<12} {:<4} -> {:<6}  {}",
            w.name,
            w.kind.as_str(),
            w.target.as_str(),
            what
        );
    }
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
    match h.rate {
        Some(r) => {
            let _ = write!(t, "open loop {r} req/s, ");
        }
        None => t.push_str("closed loop, "),
    }
    if let Some(d) = h.duration {
        let _ = write!(t, "for at most {}, ", format_duration(d));
    }
    let _ = write!(
        t,
        "timeout {}, paths {}",
        format_duration(h.timeout),
        h.paths.join(" ")
    );
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
