//! The scenario file exactly as written: serde structs that mirror the TOML,
//! with spans kept so validation can point at the line and column of a bad
//! value. Nothing here is checked beyond types; see `validate.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::units::{BitRate, ByteSize, HumanDuration};

pub type S<T> = Option<Spanned<T>>;

/// `[matrix]`: each key to the values it takes, every value with its position.
pub type Matrix = BTreeMap<String, Spanned<Vec<Spanned<toml::Value>>>>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: S<String>,
    pub description: Option<String>,
    pub seed: S<i64>,
    pub mode: S<String>,
    pub topology: Option<Topology>,
    pub origin: Option<Origin>,
    pub proxy: Option<Proxy>,
    pub cache: Option<Cache>,
    /// Shorthand for `[links.clients_proxy]`.
    pub impair: S<Impair>,
    pub links: Option<Links>,
    #[serde(default)]
    pub workload: Vec<Spanned<Workload>>,
    pub matrix: Option<Spanned<Matrix>>,
    pub expect: Option<BTreeMap<String, Spanned<String>>>,
    /// Runs of each variant (`repeat = 5`).
    pub repeat: S<i64>,
    /// `interleaved` (A B A B) or `shuffled` (each round in a seeded random order).
    pub order: S<String>,
    pub gate: Option<Gate>,
}

/// `[gate]`: what `--baseline` checks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// `metric` (every workload) or `workload.metric`; replaces the default list.
    pub metrics: S<Vec<String>>,
    /// Workloads that measure the host (not gated; a slower host makes
    /// `worse` verdicts inconclusive).
    pub control: S<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// `loopback` (default) or `netns`.
    pub hosts: S<String>,
    pub host: S<String>,
    pub www: S<String>,
    pub origin: S<Endpoint>,
    pub proxy: S<Endpoint>,
    /// TCP congestion control on every link's routes (`hosts = "netns"`).
    pub congestion: S<String>,
    /// TLS on both services (`true`), unless `[origin]`/`[proxy]` say otherwise.
    pub tls: S<bool>,
}

/// `{ http = 8000, udp = 9000 }` to start a service, or
/// `{ address = "10.0.0.2:8000", udp_address = "10.0.0.2:9000" }` to use one already running.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub http: S<i64>,
    pub udp: S<i64>,
    pub address: S<String>,
    pub udp_address: S<String>,
}

/// `[origin]`: how the spawned origin answers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// A duration, or `"none"` for no `Cache-Control` at all.
    pub max_age: S<String>,
    /// Threads serving HTTP (default: one per core).
    pub workers: S<i64>,
    /// `"shared"` or `"per-worker"`: how the workers get their connections.
    pub listen_sockets: S<String>,
    /// `true`, `false`, or `{ cert = "...", key = "...", ca = "..." }`.
    pub tls: S<toml::Value>,
}

/// `[proxy]`: how the spawned proxy runs and listens (its cache is `[cache]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// Threads serving HTTP (default: one per core).
    pub workers: S<i64>,
    /// `"shared"` or `"per-worker"`: how the workers get their connections.
    pub listen_sockets: S<String>,
    /// `true`, `false`, or `{ cert = "...", key = "...", ca = "..." }`.
    pub tls: S<toml::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    pub enabled: S<bool>,
    pub capacity: S<ByteSize>,
    /// `lru` (default), `fifo`, `sieve` or `s3fifo`.
    pub policy: S<String>,
    /// Count entries against this many objects instead of bytes.
    pub capacity_objects: S<i64>,
    pub ttl: S<HumanDuration>,
}

/// `[links.<name>]`: the impairments of each named link.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Links {
    pub clients_proxy: S<Impair>,
    pub proxy_origin: S<Impair>,
    /// Only with `hosts = "netns"`: on loopback the direct path has no link.
    pub clients_origin: S<Impair>,
}

/// The knobs of one link (`[impair]` or `[links.<name>]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Impair {
    pub delay: S<HumanDuration>,
    pub jitter: S<HumanDuration>,
    pub loss_percent: S<f64>,
    pub rate: S<BitRate>,
    // Packet-link knobs (`hosts = "netns"` only).
    pub burst_loss: S<BurstLoss>,
    pub duplicate_percent: S<f64>,
    pub reorder_percent: S<f64>,
    pub queue: S<LinkQueue>,
    pub trace: S<String>,
    pub outage: S<LinkOutage>,
    pub engine: S<String>,
}

/// A percentage written `"1%"` or as a number of percent.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Percent {
    Number(f64),
    Text(String),
}

/// `burst_loss = { p = "1%", r = "30%" }` (with optional `h`, `k`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstLoss {
    pub p: S<Percent>,
    pub r: S<Percent>,
    pub h: S<Percent>,
    pub k: S<Percent>,
}

/// `queue = { kind = "droptail", packets = 1000 }`, `{ kind = "droptail",
/// bytes = "150KiB" }` or `{ kind = "codel", target = "5ms", interval = "100ms" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkQueue {
    pub kind: S<String>,
    pub packets: S<i64>,
    pub bytes: S<ByteSize>,
    pub target: S<HumanDuration>,
    pub interval: S<HumanDuration>,
}

/// `outage = { every = "10s", lasting = "500ms" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkOutage {
    pub every: S<HumanDuration>,
    pub lasting: S<HumanDuration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub kind: S<String>,
    pub name: S<String>,
    pub target: S<String>,
    // http
    pub paths: S<Vec<String>>,
    pub requests: S<i64>,
    pub concurrency: S<i64>,
    pub keep_alive: S<bool>,
    pub rate: S<f64>,
    pub duration: S<HumanDuration>,
    /// A synthetic catalog instead of `paths`.
    pub objects: S<Objects>,
    /// A request trace (CSV, `.gz`) instead of `paths`, relative to the scenario.
    pub trace: S<String>,
    /// `recorded` (default) or `fast`.
    pub timing: S<String>,
    /// Recorded timing: gaps divided by this.
    pub speed: S<f64>,
    /// Open loop: `constant` (default) or `poisson`.
    pub arrivals: S<String>,
    /// `[{ duration = "10s", rate = 100 }, ...]` or with `concurrency`.
    pub stages: S<Vec<Spanned<RawStage>>>,
    /// `"1.1"` (default) or `"2"`.
    pub http_version: S<String>,
    /// HTTP/2: concurrent streams per connection.
    pub streams: S<i64>,
    /// Clear-text HTTP/1.1: requests pipelined per connection.
    pub pipeline: S<i64>,
    // udp
    pub count: S<i64>,
    pub size: S<ByteSize>,
    pub interval: S<HumanDuration>,
    pub flows: S<i64>,
    // both
    pub timeout: S<HumanDuration>,
    /// Wait this long after the others start (parallel mode: load first,
    /// then the probe that measures it).
    pub start_after: S<HumanDuration>,
}

/// `objects = { count = 20000, popularity = "zipf", alpha = 0.8, size = "16KiB" }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objects {
    pub count: S<i64>,
    pub popularity: S<String>,
    pub alpha: S<f64>,
    /// A byte size, or `{ distribution = "lognormal" | "pareto", ... }`.
    pub size: S<toml::Value>,
}

/// One of `stages`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub duration: S<HumanDuration>,
    pub rate: S<f64>,
    pub concurrency: S<i64>,
}

/// Keys a `[matrix]` entry may vary, besides `workload.<name>.<key>`.
pub const MATRIX_KEYS: &[&str] = &[
    "seed",
    "mode",
    "cache.enabled",
    "cache.capacity",
    "cache.capacity_objects",
    "cache.policy",
    "cache.ttl",
    "origin.workers",
    "origin.listen_sockets",
    "origin.max_age",
    "proxy.workers",
    "proxy.listen_sockets",
    "topology.congestion",
    "impair.<knob>",
    "links.clients_proxy.<knob>",
    "links.proxy_origin.<knob>",
    "links.clients_origin.<knob>",
];

/// The knobs of a link, the `<knob>` of `impair.<knob>` and `links.<name>.<knob>`.
pub const LINK_KNOBS: &[&str] = &[
    "delay",
    "jitter",
    "loss_percent",
    "rate",
    "burst_loss",
    "duplicate_percent",
    "reorder_percent",
    "queue",
    "trace",
    "outage",
    "engine",
];

/// Workload keys a `[matrix]` entry may vary as `workload.<name>.<key>`.
pub const MATRIX_WORKLOAD_KEYS: &[&str] = &[
    "target",
    "paths",
    "requests",
    "concurrency",
    "keep_alive",
    "rate",
    "duration",
    "http_version",
    "streams",
    "pipeline",
    "count",
    "size",
    "interval",
    "flows",
    "timeout",
    "start_after",
    "objects",
    "objects.count",
    "objects.popularity",
    "objects.alpha",
    "objects.size",
    "trace",
    "timing",
    "speed",
    "arrivals",
];

fn set<T: serde::de::DeserializeOwned>(
    slot: &mut S<T>,
    value: &Spanned<toml::Value>,
) -> Result<(), String> {
    let v = T::deserialize(value.get_ref().clone()).map_err(|e| e.message().to_string())?;
    *slot = Some(Spanned::new(value.span(), v));
    Ok(())
}

impl Scenario {
    /// Sets one `[matrix]` key to one of its values. Errors say what was wrong.
    pub fn apply_override(
        &mut self,
        key: &str,
        value: &Spanned<toml::Value>,
    ) -> Result<(), String> {
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["seed"] => set(&mut self.seed, value),
            ["mode"] => set(&mut self.mode, value),
            ["cache", field] => {
                let c = self.cache.get_or_insert_with(Default::default);
                match *field {
                    "enabled" => set(&mut c.enabled, value),
                    "capacity" => set(&mut c.capacity, value),
                    "capacity_objects" => set(&mut c.capacity_objects, value),
                    "policy" => set(&mut c.policy, value),
                    "ttl" => set(&mut c.ttl, value),
                    _ => Err(unknown_matrix_key(key)),
                }
            }
            ["origin", field] => {
                let o = self.origin.get_or_insert_with(Default::default);
                match *field {
                    "workers" => set(&mut o.workers, value),
                    "listen_sockets" => set(&mut o.listen_sockets, value),
                    "max_age" => set(&mut o.max_age, value),
                    _ => Err(unknown_matrix_key(key)),
                }
            }
            ["proxy", field] => {
                let p = self.proxy.get_or_insert_with(Default::default);
                match *field {
                    "workers" => set(&mut p.workers, value),
                    "listen_sockets" => set(&mut p.listen_sockets, value),
                    _ => Err(unknown_matrix_key(key)),
                }
            }
            ["impair", field] => set_knob(&mut self.impair, field, key, value),
            ["links", link, field] => {
                let links = self.links.get_or_insert_with(Default::default);
                let slot = match *link {
                    "clients_proxy" => &mut links.clients_proxy,
                    "proxy_origin" => &mut links.proxy_origin,
                    // Accepted here so validation refuses it with its reason.
                    "clients_origin" => &mut links.clients_origin,
                    _ => return Err(unknown_matrix_key(key)),
                };
                set_knob(slot, field, key, value)
            }
            ["workload", name, field] => {
                let w = self
                    .workload
                    .iter_mut()
                    .find(|w| {
                        w.get_ref().name.as_ref().map(|n| n.get_ref().as_str()) == Some(*name)
                    })
                    .ok_or_else(|| format!("no workload is named `{name}`"))?
                    .get_mut();
                match *field {
                    "target" => set(&mut w.target, value),
                    "paths" => set(&mut w.paths, value),
                    "requests" => set(&mut w.requests, value),
                    "concurrency" => set(&mut w.concurrency, value),
                    "keep_alive" => set(&mut w.keep_alive, value),
                    "rate" => set(&mut w.rate, value),
                    "duration" => set(&mut w.duration, value),
                    "http_version" => set(&mut w.http_version, value),
                    "streams" => set(&mut w.streams, value),
                    "pipeline" => set(&mut w.pipeline, value),
                    "count" => set(&mut w.count, value),
                    "size" => set(&mut w.size, value),
                    "interval" => set(&mut w.interval, value),
                    "flows" => set(&mut w.flows, value),
                    "timeout" => set(&mut w.timeout, value),
                    "start_after" => set(&mut w.start_after, value),
                    "objects" => set_table::<PlainObjects, _>(&mut w.objects, value),
                    "trace" => set(&mut w.trace, value),
                    "timing" => set(&mut w.timing, value),
                    "speed" => set(&mut w.speed, value),
                    "arrivals" => set(&mut w.arrivals, value),
                    _ => Err(unknown_matrix_key(key)),
                }
            }
            ["workload", name, "objects", field] => {
                let w = self
                    .workload
                    .iter_mut()
                    .find(|w| {
                        w.get_ref().name.as_ref().map(|n| n.get_ref().as_str()) == Some(*name)
                    })
                    .ok_or_else(|| format!("no workload is named `{name}`"))?
                    .get_mut();
                // One field of the catalog; the others stay as written.
                let o = w
                    .objects
                    .get_or_insert_with(|| Spanned::new(value.span(), Objects::default()))
                    .get_mut();
                match *field {
                    "count" => set(&mut o.count, value),
                    "popularity" => set(&mut o.popularity, value),
                    "alpha" => set(&mut o.alpha, value),
                    "size" => set(&mut o.size, value),
                    _ => Err(unknown_matrix_key(key)),
                }
            }
            ["topology", "congestion"] => {
                let t = self.topology.get_or_insert_with(Default::default);
                set(&mut t.congestion, value)
            }
            _ => Err(unknown_matrix_key(key)),
        }
    }
}

/// Sets one knob of a link table, creating the table (placed at the matrix
/// value, so a conflict with another table points there) if the file has none.
fn set_knob(
    table: &mut S<Impair>,
    field: &str,
    key: &str,
    value: &Spanned<toml::Value>,
) -> Result<(), String> {
    let t = table.get_or_insert_with(|| Spanned::new(value.span(), Impair::default()));
    let i = t.get_mut();
    match field {
        "delay" => set(&mut i.delay, value),
        "jitter" => set(&mut i.jitter, value),
        "loss_percent" => set(&mut i.loss_percent, value),
        "rate" => set(&mut i.rate, value),
        "burst_loss" => set_table::<PlainBurstLoss, _>(&mut i.burst_loss, value),
        "duplicate_percent" => set(&mut i.duplicate_percent, value),
        "reorder_percent" => set(&mut i.reorder_percent, value),
        "queue" => set_table::<PlainQueue, _>(&mut i.queue, value),
        "trace" => set(&mut i.trace, value),
        "outage" => set_table::<PlainOutage, _>(&mut i.outage, value),
        "engine" => set(&mut i.engine, value),
        _ => Err(unknown_matrix_key(key)),
    }
}

/// A table-valued knob from a `[matrix]` value: read without spans (a plain
/// `toml::Value` has none), every field then placed at the value's span.
fn set_table<P, T>(slot: &mut S<T>, value: &Spanned<toml::Value>) -> Result<(), String>
where
    P: serde::de::DeserializeOwned + Spread<T>,
{
    let plain = P::deserialize(value.get_ref().clone()).map_err(|e| e.message().to_string())?;
    *slot = Some(Spanned::new(value.span(), plain.spread(value.span())));
    Ok(())
}

/// A span-free mirror of a table knob, turned into the spanned one.
trait Spread<T> {
    fn spread(self, span: std::ops::Range<usize>) -> T;
}

fn at<T>(v: Option<T>, span: &std::ops::Range<usize>) -> S<T> {
    v.map(|v| Spanned::new(span.clone(), v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainBurstLoss {
    p: Option<Percent>,
    r: Option<Percent>,
    h: Option<Percent>,
    k: Option<Percent>,
}

impl Spread<BurstLoss> for PlainBurstLoss {
    fn spread(self, s: std::ops::Range<usize>) -> BurstLoss {
        BurstLoss {
            p: at(self.p, &s),
            r: at(self.r, &s),
            h: at(self.h, &s),
            k: at(self.k, &s),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainQueue {
    kind: Option<String>,
    packets: Option<i64>,
    bytes: Option<ByteSize>,
    target: Option<HumanDuration>,
    interval: Option<HumanDuration>,
}

impl Spread<LinkQueue> for PlainQueue {
    fn spread(self, s: std::ops::Range<usize>) -> LinkQueue {
        LinkQueue {
            kind: at(self.kind, &s),
            packets: at(self.packets, &s),
            bytes: at(self.bytes, &s),
            target: at(self.target, &s),
            interval: at(self.interval, &s),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainOutage {
    every: Option<HumanDuration>,
    lasting: Option<HumanDuration>,
}

impl Spread<LinkOutage> for PlainOutage {
    fn spread(self, s: std::ops::Range<usize>) -> LinkOutage {
        LinkOutage {
            every: at(self.every, &s),
            lasting: at(self.lasting, &s),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainObjects {
    count: Option<i64>,
    popularity: Option<String>,
    alpha: Option<f64>,
    size: Option<toml::Value>,
}

impl Spread<Objects> for PlainObjects {
    fn spread(self, s: std::ops::Range<usize>) -> Objects {
        Objects {
            count: at(self.count, &s),
            popularity: at(self.popularity, &s),
            alpha: at(self.alpha, &s),
            size: at(self.size, &s),
        }
    }
}

fn unknown_matrix_key(key: &str) -> String {
    // Compare the last part only, among the keys of the same section: the
    // shared `cache.` would otherwise make any cache key look close.
    let (section, field) = key.rsplit_once('.').unwrap_or(("", key));
    let fields: Vec<&str> = if section.starts_with("workload.") && section.ends_with(".objects") {
        MATRIX_WORKLOAD_KEYS
            .iter()
            .filter_map(|k| k.strip_prefix("objects."))
            .collect()
    } else if section.starts_with("workload.") {
        MATRIX_WORKLOAD_KEYS.to_vec()
    } else if section == "impair" || section.starts_with("links.") {
        LINK_KNOBS.to_vec()
    } else {
        MATRIX_KEYS
            .iter()
            .filter_map(|k| match k.rsplit_once('.') {
                Some((s, f)) if s == section => Some(f),
                None if section.is_empty() => Some(*k),
                _ => None,
            })
            .collect()
    };
    let hint = match super::diag::did_you_mean(field, fields) {
        Some(f) if section.is_empty() => format!(" (did you mean `{f}`?)"),
        Some(f) => format!(" (did you mean `{section}.{f}`?)"),
        None => String::new(),
    };
    format!(
        "`{key}` cannot be varied{hint}; use one of {} (<knob>: {}), or workload.<name>.<{}>",
        MATRIX_KEYS.join(", "),
        LINK_KNOBS.join("|"),
        MATRIX_WORKLOAD_KEYS.join("|")
    )
}
