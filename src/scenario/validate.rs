//! raw → resolved: checks every value, fills every default, expands the
//! matrix, and collects every problem with its position.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::diag::ScenarioErrors;
use super::raw::{self, S};
use super::*;
use crate::units::HumanDuration;
use crate::workload::probe::HEADER_LEN;

/// Largest UDP payload over IPv4.
const MAX_DATAGRAM: u64 = 65_507;
/// More variants than this is almost certainly a typo in `[matrix]`.
const MAX_VARIANTS: usize = 256;

const DEFAULT_HTTP_PATHS: &[&str] = &["/index.html"];
const DEFAULT_REQUESTS: u64 = 100;
const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_COUNT: u64 = 20;
const DEFAULT_SIZE: u64 = 128;
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
const DEFAULT_UDP_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn validate(path: &Path, source: &str) -> Result<Scenario, ScenarioErrors> {
    let mut errs = ScenarioErrors::new(path, source);
    let raw: raw::Scenario = match toml::from_str(source) {
        Ok(r) => r,
        Err(e) => {
            let key = e
                .span()
                .map(|sp| key_before(source, sp.start))
                .unwrap_or_default();
            let message = e
                .message()
                .trim()
                .replace("expected i64", "expected a whole number")
                .replace("expected f64", "expected a number")
                .replace('\n', "; ");
            errs.push(e.span(), key, message);
            return Err(errs);
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));

    let name = match &raw.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            errs.push(
                Some(n.span()),
                "name",
                "is empty; give the scenario a name or remove the key",
            );
            String::new()
        }
        Some(n) => n.get_ref().clone(),
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into()),
    };
    if let Err(why) = check_name(&name) {
        let hint = if raw.name.is_some() {
            "change `name`"
        } else {
            "set `name` (it defaults to the file's stem)"
        };
        errs.push(
            raw.name.as_ref().map(Spanned::span),
            "name",
            format!("`{name}` {why}; results are written to <out>/<name>.csv: {hint}"),
        );
    }

    // Matrix: one override list per combination.
    let mut axes: Vec<(String, Vec<Spanned<toml::Value>>)> = Vec::new();
    if let Some(m) = &raw.matrix {
        for (key, values) in m.get_ref() {
            if values.get_ref().is_empty() {
                errs.push(
                    Some(values.span()),
                    format!("matrix.{key}"),
                    "has no values; list at least one",
                );
                continue;
            }
            axes.push((key.clone(), values.get_ref().clone()));
        }
    }
    let combos = axes.iter().map(|(_, v)| v.len()).product::<usize>();
    if combos > MAX_VARIANTS {
        errs.push(
            raw.matrix.as_ref().map(Spanned::span),
            "matrix",
            format!("expands to {combos} variants; at most {MAX_VARIANTS} are allowed"),
        );
        return Err(errs);
    }

    let mut variants = Vec::new();
    let mut seen = BTreeSet::new();
    for index in 0..combos.max(1) {
        let mut r = raw.clone();
        let mut overrides = Vec::new();
        let mut ok = true;
        let mut rest = index;
        // The last axis varies fastest.
        let mut picks = vec![0; axes.len()];
        for (i, (_, values)) in axes.iter().enumerate().rev() {
            picks[i] = rest % values.len();
            rest /= values.len();
        }
        for ((key, values), pick) in axes.iter().zip(picks) {
            let value = &values[pick];
            if let Err(msg) = r.apply_override(key, value) {
                let d = (value.span().start, value.span().end, msg.clone());
                if seen.insert(d) {
                    errs.push(Some(value.span()), format!("matrix.{key}"), msg);
                }
                ok = false;
            }
            overrides.push((key.clone(), value_text(value.get_ref())));
        }
        let mut local = ScenarioErrors::new(path, source);
        let plan = resolve_plan(&r, dir, &mut local);
        // The same base mistake shows up in every variant: report it once.
        for d in local.errors {
            let sp = d.span.clone().unwrap_or(0..0);
            let sig = (sp.start, sp.end, format!("{}{}", d.key, d.message));
            if seen.insert(sig) {
                errs.errors.push(d);
            }
        }
        if let (Some(plan), true) = (plan, ok) {
            let label = if overrides.is_empty() {
                "default".to_string()
            } else {
                overrides
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            variants.push(Variant {
                label,
                overrides,
                plan,
            });
        }
    }

    let workloads: Vec<(String, String)> = raw
        .workload
        .iter()
        .filter_map(|w| {
            let w = w.get_ref();
            let name = w.name.as_ref()?.get_ref().clone();
            let kind = w
                .kind
                .as_ref()
                .map(|k| k.get_ref().clone())
                .unwrap_or_default();
            Some((name, kind))
        })
        .collect();
    let expect = resolve_expect(&raw, &workloads, &mut errs);

    if !errs.is_empty() {
        errs.errors
            .sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
        return Err(errs);
    }
    Ok(Scenario {
        name,
        description: raw.description.clone().unwrap_or_default(),
        source: path.to_path_buf(),
        variants,
        expect,
    })
}

/// The key written just before a value at `offset` (`interval = "10 parsecs"` → `interval`),
/// so type errors from the TOML reader can name it.
fn key_before(source: &str, offset: usize) -> String {
    let line_start = source[..offset.min(source.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let prefix = source[line_start..offset.min(source.len())].trim_end();
    let Some(before_eq) = prefix.strip_suffix('=') else {
        return String::new();
    };
    let key = before_eq.trim();
    // Inline tables: `origin = { http = 70000` → `http`.
    let key = key.rsplit(['{', ',']).next().unwrap_or(key).trim();
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || "_-.\"".contains(c))
    {
        key.to_string()
    } else {
        String::new()
    }
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn span<T>(v: &S<T>) -> Option<std::ops::Range<usize>> {
    v.as_ref().map(Spanned::span)
}

fn resolve_plan(r: &raw::Scenario, dir: &Path, errs: &mut ScenarioErrors) -> Option<Plan> {
    let before = errs.errors.len();

    let seed = match &r.seed {
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
    };
    let mode = match r.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
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
    };

    let topology = resolve_topology(r.topology.clone().unwrap_or_default(), dir, errs);

    let origin_max_age = resolve_max_age(r.origin.as_ref(), errs);
    let c = r.cache.clone().unwrap_or_default();
    let cache = CacheSettings {
        enabled: c.enabled.map_or(true, |v| *v.get_ref()),
        capacity: c.capacity.map_or(ByteSize(64 << 20), |v| *v.get_ref()),
        ttl: c.ttl.map(|v| v.get_ref().0),
    };

    let i = r.impair.clone().unwrap_or_default();
    let impair = Impairment {
        delay: i.delay.as_ref().map_or(Duration::ZERO, |v| v.get_ref().0),
        jitter: i.jitter.as_ref().map_or(Duration::ZERO, |v| v.get_ref().0),
        loss_percent: i.loss_percent.as_ref().map_or(0.0, |v| *v.get_ref()),
        rate: i.rate.as_ref().map_or(Default::default(), |v| *v.get_ref()),
    };
    // Jitter may exceed the delay: the model clamps each delay at zero
    // (documented in README, "Impairments"). Durations and rates cannot be
    // negative once parsed; only the loss percentage needs a range check.
    if let Some(l) = &i.loss_percent {
        let v = *l.get_ref();
        if !(0.0..=100.0).contains(&v) {
            errs.push(
                Some(l.span()),
                "impair.loss_percent",
                format!("{v} is out of range; use a percentage from 0 to 100"),
            );
        }
    }

    let mut workloads: Vec<Workload> = Vec::new();
    if r.workload.is_empty() {
        errs.push(
            None,
            "workload",
            "the scenario has no [[workload]]; add at least one (kind = \"http\" or \"udp\")",
        );
    }
    for (index, w) in r.workload.iter().enumerate() {
        if let Some(wl) = resolve_workload(w, index, &topology, errs) {
            if workloads.iter().any(|o| o.name == wl.name) {
                errs.push(
                    span(&w.get_ref().name).or(Some(w.span())),
                    format!("workload.{}", wl.name),
                    "this name is used by another workload; names must be unique",
                );
            }
            workloads.push(wl);
        }
    }

    if errs.errors.len() > before {
        return None;
    }
    Some(Plan {
        seed,
        mode,
        topology: topology?,
        origin_max_age,
        cache,
        impair,
        workloads,
    })
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
    match crate::units::parse_duration(text) {
        Ok(d) if d <= Duration::from_secs(crate::proxy::cache::MAX_DELTA_SECONDS) => Some(d),
        Ok(_) => {
            errs.push(
                Some(v.span()),
                "origin.max_age",
                format!(
                    "`{text}` is too long; HTTP caches count at most 2^31 seconds (about 68 years)"
                ),
            );
            None
        }
        Err(e) => {
            errs.push(
                Some(v.span()),
                "origin.max_age",
                format!("{e}; or \"none\" to send no Cache-Control"),
            );
            None
        }
    }
}

fn resolve_topology(t: raw::Topology, dir: &Path, errs: &mut ScenarioErrors) -> Option<Topology> {
    let before = errs.errors.len();
    let host: IpAddr = match &t.host {
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
    let origin = resolve_service("origin", t.origin.as_ref(), host, 0, 0, errs);
    let proxy = resolve_service("proxy", t.proxy.as_ref(), host, 0, 0, errs);
    if origin.is_some_and(|o| o.is_spawned()) {
        match std::fs::metadata(&www) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => errs.push(
                span(&t.www),
                "topology.www",
                format!("{} is not a folder", www.display()),
            ),
            Err(e) => errs.push(
                span(&t.www),
                "topology.www",
                format!(
                    "{} cannot be read ({e}); it is relative to the scenario file",
                    www.display()
                ),
            ),
        }
    }
    // Two spawned services on one fixed port of one protocol cannot both bind.
    if let (
        Some(Service::Spawn { http: oh, udp: ou }),
        Some(Service::Spawn { http: ph, udp: pu }),
    ) = (origin, proxy)
    {
        if oh.port() != 0 && oh == ph {
            errs.push(
                span(&t.proxy),
                "topology.proxy.http",
                format!(
                    "port {} is also the origin's HTTP port; give each service its own port (or 0)",
                    ph.port()
                ),
            );
        }
        if ou.port() != 0 && ou == pu {
            errs.push(
                span(&t.proxy),
                "topology.proxy.udp",
                format!(
                    "port {} is also the origin's UDP port; give each service its own port (or 0)",
                    pu.port()
                ),
            );
        }
    }
    if errs.errors.len() > before {
        return None;
    }
    Some(Topology {
        host,
        www: std::fs::canonicalize(&www).unwrap_or(www),
        origin: origin?,
        proxy: proxy?,
    })
}

fn resolve_service(
    which: &str,
    e: Option<&Spanned<raw::Endpoint>>,
    host: IpAddr,
    default_http: u16,
    default_udp: u16,
    errs: &mut ScenarioErrors,
) -> Option<Service> {
    let Some(e) = e else {
        return Some(Service::Spawn {
            http: SocketAddr::new(host, default_http),
            udp: SocketAddr::new(host, default_udp),
        });
    };
    let sp = e.span();
    let e = e.get_ref();
    let key = format!("topology.{which}");
    let port = |p: &S<i64>, field: &str, default: u16, errs: &mut ScenarioErrors| -> u16 {
        match p {
            None => default,
            Some(v) => match u16::try_from(*v.get_ref()) {
                Ok(port) => port,
                Err(_) => {
                    errs.push(
                        Some(v.span()),
                        format!("{key}.{field}"),
                        format!(
                            "port {} is out of range; use 0 (any free port) to 65535",
                            v.get_ref()
                        ),
                    );
                    default
                }
            },
        }
    };
    let addr =
        |a: &Spanned<String>, field: &str, errs: &mut ScenarioErrors| -> Option<SocketAddr> {
            match a
                .get_ref()
                .to_socket_addrs()
                .ok()
                .and_then(|mut it| it.next())
            {
                Some(x) if x.port() == 0 => {
                    errs.push(
                        Some(a.span()),
                        format!("{key}.{field}"),
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
                        format!("{key}.{field}"),
                        format!(
                            "`{}` is not a HOST:PORT address; write e.g. \"127.0.0.1:8000\"",
                            a.get_ref()
                        ),
                    );
                    None
                }
            }
        };
    match (&e.address, &e.udp_address) {
        (None, None) => Some(Service::Spawn {
            http: SocketAddr::new(host, port(&e.http, "http", default_http, errs)),
            udp: SocketAddr::new(host, port(&e.udp, "udp", default_udp, errs)),
        }),
        (Some(a), u) => {
            if e.http.is_some() || e.udp.is_some() {
                errs.push(Some(sp), key.clone(), "mixes `address` (use a running service) with `http`/`udp` ports (start one); keep one or the other");
            }
            let http = addr(a, "address", errs)?;
            let udp = match u {
                Some(u) => Some(addr(u, "udp_address", errs)?),
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

fn resolve_workload(
    w: &Spanned<raw::Workload>,
    index: usize,
    topology: &Option<Topology>,
    errs: &mut ScenarioErrors,
) -> Option<Workload> {
    let before = errs.errors.len();
    let wsp = w.span();
    let w = w.get_ref();
    let name = match &w.name {
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
    };
    let key = |field: &str| format!("workload.{name}.{field}");
    let target = match w.target.as_ref().map(|t| (t.get_ref().as_str(), t.span())) {
        None | Some(("proxy", _)) => Target::Proxy,
        Some(("origin", _)) => Target::Origin,
        Some((other, sp)) => {
            errs.push(
                Some(sp),
                key("target"),
                format!("`{other}` is not a target; use \"proxy\" or \"origin\""),
            );
            Target::Proxy
        }
    };
    let count_of = |v: &S<i64>, field: &str, default: u64, errs: &mut ScenarioErrors| -> u64 {
        match v {
            None => default,
            Some(v) if *v.get_ref() < 1 => {
                errs.push(
                    Some(v.span()),
                    key(field),
                    format!("{} is too small; it must be at least 1", v.get_ref()),
                );
                default
            }
            Some(v) => *v.get_ref() as u64,
        }
    };
    let dur =
        |v: &S<HumanDuration>, default: Duration| v.as_ref().map_or(default, |d| d.get_ref().0);
    // Keys of the other kind: each one present (it has a span) is an error.
    let forbid = |present: &[(Option<std::ops::Range<usize>>, &str)],
                  kind: &str,
                  errs: &mut ScenarioErrors| {
        for (sp, field) in present {
            if sp.is_some() {
                errs.push(
                    sp.clone(),
                    key(field),
                    format!("applies to {kind} workloads only; remove it or change `kind`"),
                );
            }
        }
    };

    let kind = match w.kind.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
        Some(("http", _)) => {
            forbid(
                &[
                    (span(&w.count), "count"),
                    (span(&w.size), "size"),
                    (span(&w.interval), "interval"),
                    (span(&w.flows), "flows"),
                ],
                "udp",
                errs,
            );
            let paths = match &w.paths {
                None => DEFAULT_HTTP_PATHS.iter().map(|s| s.to_string()).collect(),
                Some(p) if p.get_ref().is_empty() => {
                    errs.push(
                        Some(p.span()),
                        key("paths"),
                        "is empty; list at least one path, e.g. [\"/index.html\"]",
                    );
                    Vec::new()
                }
                Some(p) => {
                    for path in p.get_ref() {
                        if !path.starts_with('/') {
                            errs.push(
                                Some(p.span()),
                                key("paths"),
                                format!("`{path}` does not start with /; write e.g. \"/{path}\""),
                            );
                        }
                    }
                    p.get_ref().clone()
                }
            };
            let concurrency = count_of(&w.concurrency, "concurrency", 1, errs);
            let concurrency = u32::try_from(concurrency).unwrap_or_else(|_| {
                errs.push(
                    span(&w.concurrency),
                    key("concurrency"),
                    "is too large; at most 4294967295",
                );
                1
            });
            let rate = match &w.rate {
                Some(r) if !(*r.get_ref() > 0.0 && r.get_ref().is_finite()) => {
                    errs.push(Some(r.span()), key("rate"), format!("{} is not a rate; give requests per second above 0, or remove it for a closed loop", r.get_ref()));
                    None
                }
                r => r.as_ref().map(|r| *r.get_ref()),
            };
            WorkloadKind::Http(HttpWorkload {
                paths,
                requests: count_of(&w.requests, "requests", DEFAULT_REQUESTS, errs),
                concurrency,
                keep_alive: w.keep_alive.as_ref().map_or(true, |k| *k.get_ref()),
                rate,
                duration: w.duration.as_ref().map(|d| d.get_ref().0),
                timeout: dur(&w.timeout, DEFAULT_HTTP_TIMEOUT),
            })
        }
        Some(("udp", _)) => {
            forbid(
                &[
                    (span(&w.paths), "paths"),
                    (span(&w.requests), "requests"),
                    (span(&w.concurrency), "concurrency"),
                    (span(&w.keep_alive), "keep_alive"),
                    (span(&w.rate), "rate"),
                    (span(&w.duration), "duration"),
                ],
                "http",
                errs,
            );
            let size = w
                .size
                .as_ref()
                .map_or(DEFAULT_SIZE, |s| s.get_ref().bytes());
            if !(HEADER_LEN as u64..=MAX_DATAGRAM).contains(&size) {
                errs.push(
                    span(&w.size),
                    key("size"),
                    format!("{size} bytes is out of range; a probe datagram is {HEADER_LEN} to {MAX_DATAGRAM} bytes (its header is {HEADER_LEN})"),
                );
            }
            let flows = count_of(&w.flows, "flows", 1, errs);
            if flows > 1024 {
                errs.push(
                    span(&w.flows),
                    key("flows"),
                    format!("{flows} is too many; at most 1024 parallel senders"),
                );
            }
            let timeout = dur(&w.timeout, DEFAULT_UDP_TIMEOUT);
            if timeout.is_zero() {
                errs.push(
                    span(&w.timeout),
                    key("timeout"),
                    "is 0; every reply would be lost; give e.g. \"1s\"",
                );
            }
            if target == Target::Origin {
                if let Some(Topology {
                    origin: Service::External { udp: None, .. },
                    ..
                }) = topology
                {
                    errs.push(Some(wsp.clone()), key("target"), "the origin is external and has no `udp_address`; add one or target the proxy");
                }
            }
            if let Some(Topology {
                proxy: Service::External { udp: None, .. },
                ..
            }) = topology
            {
                if target == Target::Proxy {
                    errs.push(Some(wsp.clone()), key("target"), "the proxy is external and has no `udp_address`; add one or target the origin");
                }
            }
            if let Some(Topology {
                origin: Service::External { udp: None, .. },
                proxy: Service::Spawn { .. },
                ..
            }) = topology
            {
                if target == Target::Proxy {
                    errs.push(Some(wsp.clone()), key("target"), "the proxy forwards UDP to the origin, but the external origin has no `udp_address`; add one");
                }
            }
            WorkloadKind::Udp(UdpWorkload {
                count: count_of(&w.count, "count", DEFAULT_COUNT, errs),
                size: size as usize,
                interval: dur(&w.interval, DEFAULT_INTERVAL),
                timeout,
                flows: flows as u32,
            })
        }
        Some((other, sp)) => {
            errs.push(
                Some(sp),
                key("kind"),
                format!("`{other}` is not a workload kind; use \"http\" or \"udp\""),
            );
            return None;
        }
        None => {
            errs.push(
                Some(wsp),
                key("kind"),
                "is missing; add kind = \"http\" or kind = \"udp\"",
            );
            return None;
        }
    };
    if errs.errors.len() > before {
        return None;
    }
    // The engines' own checks (ranges of timeouts, rates, run size) apply to
    // scenarios too: one set of rules, reported here with the workload's position.
    if let Err(e) = engine_check(&kind) {
        let msg = e.to_string();
        // The engines' messages start with the setting they are about.
        let (field, sp) = [
            ("timeout", span(&w.timeout)),
            ("interval", span(&w.interval)),
            ("duration", span(&w.duration)),
            ("rate", span(&w.rate)),
            ("count", span(&w.count)),
        ]
        .into_iter()
        .find(|(f, _)| msg.starts_with(f))
        .map_or((None, None), |(f, sp)| (Some(f), sp));
        let key = field.map_or_else(|| format!("workload.{name}"), key);
        errs.push(sp.or(Some(wsp)), key, msg);
        return None;
    }
    Some(Workload { name, target, kind })
}

fn engine_check(kind: &WorkloadKind) -> Result<(), crate::Error> {
    // The address does not take part in the checks.
    let nowhere = SocketAddr::from(([127, 0, 0, 1], 0));
    match kind {
        WorkloadKind::Http(h) => h.probe_config(nowhere).validate(),
        WorkloadKind::Udp(u) => u.probe_config(nowhere).validate(),
    }
}

/// Summary columns that hold numbers, and so can be used in `[expect]`.
pub fn numeric_metrics() -> Vec<String> {
    let row = serde_json::to_value(crate::metrics::SummaryRow::default()).unwrap_or_default();
    let text = [
        "scenario",
        "variant",
        "workload",
        "kind",
        "target",
        "cache",
        "started_at",
        "interrupted",
    ];
    row.as_object()
        .map(|m| {
            m.keys()
                .filter(|k| !text.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Summary columns that only a UDP workload fills.
const UDP_ONLY: &[&str] = &[
    "lost",
    "loss_percent",
    "late",
    "duplicates",
    "reordered",
    "jitter_ms",
    "ipdv_mean_ms",
    "foreign",
    "pacing_mean_ms",
    "pacing_max_ms",
    "proxy_dropped",
];
/// Summary columns that only an HTTP workload fills.
const HTTP_ONLY: &[&str] = &[
    "requests",
    "errors",
    "requests_per_s",
    "cache_hits",
    "cache_hit_ratio",
    "service_mean_ms",
    "service_p99_ms",
    "proxy_hits",
    "proxy_upstream_fetches",
    "proxy_bytes_from_cache",
];

/// Scenario names become file names under `--out`.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.starts_with('.') {
        return Err("starts with a dot");
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || "-_.".contains(c))
    {
        return Err("may hold only letters, digits, -, _ and .");
    }
    if name.eq_ignore_ascii_case("history") {
        return Err("is taken by history.csv");
    }
    Ok(())
}

fn resolve_expect(
    r: &raw::Scenario,
    workloads: &[(String, String)],
    errs: &mut ScenarioErrors,
) -> Vec<Expectation> {
    let mut out = Vec::new();
    let Some(map) = &r.expect else { return out };
    let metrics = numeric_metrics();
    for (key, value) in map {
        let ekey = format!("expect.\"{key}\"");
        let Some((workload, metric)) = key.split_once('.') else {
            errs.push(
                Some(value.span()),
                ekey,
                "is not \"<workload>.<metric>\"; write e.g. \"page.latency_p99_ms\"",
            );
            continue;
        };
        let kind = workloads
            .iter()
            .find(|(w, _)| w == workload)
            .map(|(_, k)| k.as_str());
        if kind.is_none() {
            let names: Vec<&str> = workloads.iter().map(|(w, _)| w.as_str()).collect();
            errs.push(
                Some(value.span()),
                ekey.clone(),
                format!(
                    "no workload is named `{workload}`; workloads: {}",
                    names.join(", ")
                ),
            );
        }
        if !metrics.iter().any(|m| m == metric) {
            errs.push(
                Some(value.span()),
                ekey.clone(),
                format!(
                    "`{metric}` is not a metric; use one of {}",
                    metrics.join(", ")
                ),
            );
        } else if let Some(kind) = kind {
            let foreign = match kind {
                "http" => UDP_ONLY.contains(&metric),
                "udp" => HTTP_ONLY.contains(&metric),
                _ => false,
            };
            if foreign {
                errs.push(
                    Some(value.span()),
                    ekey.clone(),
                    format!("`{metric}` does not apply to the {kind} workload `{workload}`; it would always be empty"),
                );
            }
        }
        let text = value.get_ref().trim();
        let (op, rest) = if let Some(r) = text.strip_prefix("<=") {
            (CompareOp::Le, r)
        } else if let Some(r) = text.strip_prefix(">=") {
            (CompareOp::Ge, r)
        } else if let Some(r) = text.strip_prefix("==") {
            (CompareOp::Eq, r)
        } else if let Some(r) = text.strip_prefix("!=") {
            (CompareOp::Ne, r)
        } else if let Some(r) = text.strip_prefix('<') {
            (CompareOp::Lt, r)
        } else if let Some(r) = text.strip_prefix('>') {
            (CompareOp::Gt, r)
        } else {
            errs.push(Some(value.span()), ekey, format!("`{text}` has no comparison; write \"<op> <number>\" with op one of < <= > >= == !="));
            continue;
        };
        match rest.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => out.push(Expectation {
                workload: workload.to_string(),
                metric: metric.to_string(),
                op,
                value: v,
                text: text.to_string(),
            }),
            _ => errs.push(
                Some(value.span()),
                ekey,
                format!("`{}` is not a number", rest.trim()),
            ),
        }
    }
    out
}
