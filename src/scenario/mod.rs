//! Scenario files: `raw` mirrors the TOML; [`Scenario`] holds validated,
//! resolved values (durations, byte counts, socket addresses, defaults
//! filled), one [`Plan`] per `[matrix]` variant. Nothing downstream re-checks.

mod diag;
mod engine;
pub mod raw;
pub mod segment;
mod validate;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use diag::{Diagnostic, ScenarioErrors};

use crate::proxy::{CacheConfig, LinkConfig};
use crate::units::ByteSize;

/// A validated scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// `name`, or the file's stem.
    pub name: String,
    pub description: String,
    /// The file it came from.
    pub source: PathBuf,
    /// A digest of the text that was validated (`shard::digest`): `merge`
    /// refuses parts run from different versions of the file.
    pub digest: String,
    /// One entry per `[matrix]` combination (one `default` variant without a matrix).
    pub variants: Vec<Variant>,
    /// `[expect]` thresholds, checked against every variant.
    pub expect: Vec<Expectation>,
    /// Runs of each variant, each with fresh services (`repeat`, default 1).
    pub repeat: u32,
    /// In which order the repetitions of the variants run.
    pub order: Order,
    /// Seed of the `shuffled` order (the scenario's `seed`).
    pub order_seed: u64,
    /// `[gate]`: what a baseline check judges.
    pub gate: GateSettings,
}

/// The order of the variants' repetitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Round after round, every variant once per round in file order: A B A B.
    Interleaved,
    /// Round after round, every variant once per round in a seeded random order.
    Shuffled,
}

impl Order {
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Interleaved => "interleaved",
            Order::Shuffled => "shuffled",
        }
    }
}

/// `[gate]`, resolved: `None` means the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateSettings {
    /// `(workload, metric)`: a `None` workload is every workload.
    pub metrics: Option<Vec<(Option<String>, String)>>,
    /// Host-control workloads; `None`: those with `target = "origin"`.
    pub control: Option<Vec<String>>,
}

impl Scenario {
    /// Settings that are valid but probably not what was meant, for `check`:
    /// an open-loop HTTP workload whose `requests` run out long (under half)
    /// before its `duration` ends.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for v in &self.variants {
            for w in &v.plan.workloads {
                let WorkloadKind::Http(h) = &w.kind else {
                    continue;
                };
                let (Some(rate), Some(d)) = (h.rate, h.duration) else {
                    continue;
                };
                if h.requests == crate::workload::http::UNTIL_DURATION {
                    continue;
                }
                let ends = h.requests as f64 / rate;
                if ends < d.as_secs_f64() / 2.0 {
                    let msg = format!(
                        "{}: `workload.{}.requests` = {} at {rate} req/s ends after {ends:.1}s, long before `duration` ({}); remove `requests` to run for the whole duration",
                        self.source.display(),
                        w.name,
                        h.requests,
                        crate::units::format_duration(d)
                    );
                    if !out.contains(&msg) {
                        out.push(msg);
                    }
                }
            }
        }
        out
    }
}

/// One combination of `[matrix]` values and the plan it produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// `default`, or `key=value,key=value`.
    pub label: String,
    /// The matrix keys and values (as written) of this variant.
    pub overrides: Vec<(String, String)>,
    pub plan: Plan,
}

/// Everything needed to run one variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub mode: Mode,
    pub topology: Topology,
    /// `[origin] max_age`: the spawned origin's `Cache-Control: max-age`
    /// (`None`: it sends none).
    pub origin_max_age: Option<Duration>,
    /// TLS on the services netrun starts.
    pub tls: TlsSettings,
    /// `[origin] workers` and `[proxy] workers`: the spawned services'
    /// serving threads (`None`: one per core, at most one per connection
    /// the workloads can open to it; `runner::services` decides).
    pub origin_workers: Option<std::num::NonZeroUsize>,
    pub proxy_workers: Option<std::num::NonZeroUsize>,
    /// `[origin] listen_sockets` and `[proxy] listen_sockets`: one socket
    /// all the workers accept from, or one `SO_REUSEPORT` socket each.
    pub origin_listen_sockets: crate::server::ListenSockets,
    pub proxy_listen_sockets: crate::server::ListenSockets,
    pub cache: CacheSettings,
    /// The impairments of the proxy's links, each in each direction (and the
    /// seed of their random generators).
    pub links: Links,
    /// What the links ask beyond [`Links`] (`hosts = "netns"` only): the
    /// packet-level knobs only netrun's user-space link applies, and the
    /// engine each link is forced to.
    pub packet_links: PacketLinks,
    pub workloads: Vec<Workload>,
}

impl Plan {
    /// A spawned service's serving threads: `workers` when the scenario
    /// sets it, else one per core (`cores`) but no more than the
    /// connections the run's HTTP workloads can open to it at once — a
    /// connection stays on the thread that accepted it, so more threads
    /// would only be started and stopped. Where that is one, `None`: the
    /// service serves on the run's own runtime and starts no thread (a
    /// one-request run on two cores starts four threads fewer). The origin
    /// counts the workloads aimed at the proxy too: the proxy fetches for
    /// them.
    pub fn serving_threads(
        &self,
        target: Target,
        cores: std::num::NonZeroUsize,
    ) -> Option<std::num::NonZeroUsize> {
        let given = match target {
            Target::Origin => self.origin_workers,
            Target::Proxy => self.proxy_workers,
        };
        if given.is_some() {
            return given;
        }
        let connections: u64 = self
            .workloads
            .iter()
            .filter(|w| w.target == target || target == Target::Origin)
            .map(|w| match &w.kind {
                WorkloadKind::Http(h) => u64::from(h.concurrency),
                WorkloadKind::Udp(_) => 0,
            })
            .sum();
        let connections = usize::try_from(connections).unwrap_or(usize::MAX);
        std::num::NonZeroUsize::new(connections.min(cores.get())).filter(|n| n.get() > 1)
    }

    /// Whether a UDP workload sends its datagrams to `target`.
    pub fn udp_through(&self, target: Target) -> bool {
        self.workloads
            .iter()
            .any(|w| w.target == target && matches!(w.kind, WorkloadKind::Udp(_)))
    }

    /// How a spawned service's workers get their connections.
    pub fn listen_sockets(&self, target: Target) -> crate::server::ListenSockets {
        match target {
            Target::Origin => self.origin_listen_sockets,
            Target::Proxy => self.proxy_listen_sockets,
        }
    }
}

/// Which engine shapes a link between namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `tc` qdiscs (tbf, and netem where the kernel has it), with the proxy's
    /// in-process model for what the kernel cannot do.
    Kernel,
    /// netrun's packet link between TUN devices (`crate::link`): every knob,
    /// on every packet.
    Userspace,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Kernel => "kernel",
            Engine::Userspace => "userspace",
        }
    }
}

/// A link's packet-level knobs beyond [`crate::proxy::LinkConfig`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PacketKnobs {
    pub burst_loss: Option<crate::link::Gilbert>,
    pub duplicate_percent: f64,
    pub reorder_percent: f64,
    /// `None`: the default droptail of 1000 packets.
    pub queue: Option<crate::link::Queue>,
    pub trace: Option<std::sync::Arc<crate::link::Trace>>,
    pub outage: Option<crate::link::Outage>,
    /// `engine = "..."`: forced; `None` lets netrun choose.
    pub engine: Option<Engine>,
}

impl PacketKnobs {
    /// The knobs that only the user-space link applies, by their keys.
    pub fn userspace_only(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.burst_loss.is_some() {
            keys.push("burst_loss");
        }
        if self.duplicate_percent > 0.0 {
            keys.push("duplicate_percent");
        }
        if self.reorder_percent > 0.0 {
            keys.push("reorder_percent");
        }
        if self.queue.is_some() {
            keys.push("queue");
        }
        if self.trace.is_some() {
            keys.push("trace");
        }
        if self.outage.is_some() {
            keys.push("outage");
        }
        keys
    }
}

/// [`PacketKnobs`] of each link.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PacketLinks {
    pub clients_proxy: PacketKnobs,
    pub proxy_origin: PacketKnobs,
    pub clients_origin: PacketKnobs,
}

/// The links a scenario impairs, each as the proxy's own [`LinkConfig`] so
/// nothing converts it. Both carry the scenario's seed; the proxy gives each
/// link its own random sequences (`LinkModel::on`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Links {
    /// `[links.clients_proxy]` (or `[impair]`): every exchange through the
    /// proxy crosses it, cache hits included.
    pub clients_proxy: LinkConfig,
    /// `[links.proxy_origin]`: only what the proxy sends upstream and the
    /// answers cross it.
    pub proxy_origin: LinkConfig,
    /// `[links.clients_origin]` (`hosts = "netns"` only): the clients' direct
    /// path to the origin, shaped by the kernel alone (no netrun process is on it).
    pub clients_origin: LinkConfig,
}

impl Links {
    /// The scenario's `seed`.
    pub fn seed(&self) -> u64 {
        self.clients_proxy.seed
    }

    /// The proxy's hooks with both links' seeded models.
    pub fn proxy_hooks(&self) -> crate::proxy::ProxyHooks {
        crate::proxy::ProxyHooks::links(self.clients_proxy, self.proxy_origin)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Workloads one after another, in file order.
    Sequential,
    /// All workloads at once (latency under load).
    Parallel,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sequential => "sequential",
            Mode::Parallel => "parallel",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Where the services and the clients run.
    pub hosts: Hosts,
    pub host: IpAddr,
    /// The origin's folder, absolute (resolved against the scenario file).
    pub www: PathBuf,
    pub origin: Service,
    pub proxy: Service,
    /// `congestion`: the TCP congestion control on every link (netns only);
    /// `None`: the host's default.
    pub congestion: Option<String>,
}

/// `[topology] hosts`: where the origin, the proxy and the clients run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hosts {
    /// All in this process, on the loopback interface.
    #[default]
    Loopback,
    /// Each in its own network namespace, joined by veth pairs (`netns`).
    Netns,
}

impl Hosts {
    pub fn as_str(self) -> &'static str {
        match self {
            Hosts::Loopback => "loopback",
            Hosts::Netns => "netns",
        }
    }
}

/// TLS on the spawned services (`[topology] tls`, `[origin] tls`,
/// `[proxy] tls`); `None` is clear text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    pub origin: Option<ServiceTls>,
    pub proxy: Option<ServiceTls>,
}

impl TlsSettings {
    /// Whether the run makes a CA (some service's certificate is made).
    pub fn makes_ca(&self) -> bool {
        [&self.origin, &self.proxy].iter().any(|t| {
            t.as_ref()
                .is_some_and(|t| t.cert == crate::tls::CertSource::Made)
        })
    }

    /// A service's TLS, `None` for clear text.
    pub fn of(&self, target: Target) -> Option<&ServiceTls> {
        match target {
            Target::Origin => self.origin.as_ref(),
            Target::Proxy => self.proxy.as_ref(),
        }
    }
}

/// One service's certificate and the CA its clients trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTls {
    /// Made for the run (signed by the run's CA) or read from PEM files
    /// (paths absolute, checked at load).
    pub cert: crate::tls::CertSource,
    /// The CA that signed given files (`ca = "..."`), which the proxy and
    /// workloads then trust; `None` with given files trusts the system's
    /// CAs, with a made certificate the run's CA.
    pub ca: Option<PathBuf>,
    /// The name clients check the certificate against (`name = "..."`),
    /// when it is not the address they reach the service at.
    pub name: Option<String>,
}

/// A service netrun starts, or one already running elsewhere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Service {
    /// Start it in-process on these addresses (port 0 = any free port).
    Spawn { http: SocketAddr, udp: SocketAddr },
    /// Use a running service; `udp` is `None` when it has no UDP side.
    External {
        http: SocketAddr,
        udp: Option<SocketAddr>,
    },
}

impl Service {
    pub fn is_spawned(&self) -> bool {
        matches!(self, Service::Spawn { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CacheSettings {
    pub enabled: bool,
    pub capacity: ByteSize,
    /// `cache.policy`: which entry a full cache evicts.
    pub policy: crate::cache_policy::Policy,
    /// `cache.capacity_objects`: at most this many entries, counted by the policy.
    pub capacity_objects: Option<u64>,
    /// `cache.ttl`: freshness for responses that give none, instead of the
    /// RFC's heuristic (a deviation, off by default).
    pub ttl: Option<Duration>,
}

impl CacheSettings {
    /// The proxy's cache configuration; `None` when the cache is off.
    pub fn proxy_cache(&self) -> Option<CacheConfig> {
        self.enabled.then(|| {
            let mut c = CacheConfig::new(self.capacity.bytes(), self.ttl);
            c.policy = self.policy;
            c.capacity_objects = self.capacity_objects;
            c
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Proxy,
    Origin,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Proxy => "proxy",
            Target::Origin => "origin",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub name: String,
    pub target: Target,
    pub kind: WorkloadKind,
    /// `start_after`: how long the workload waits before it starts.
    pub start_after: Duration,
}

// A scenario holds a handful of workloads, built once: boxing the larger
// HTTP settings would save nothing worth the indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadKind {
    Http(HttpWorkload),
    Udp(UdpWorkload),
}

impl WorkloadKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            WorkloadKind::Http(_) => "http",
            WorkloadKind::Udp(_) => "udp",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpWorkload {
    /// Paths requested in turn.
    pub paths: Vec<String>,
    pub requests: u64,
    pub concurrency: u32,
    pub keep_alive: bool,
    /// Open loop: requests per second on a schedule.
    pub rate: Option<f64>,
    /// Stop sending after this long.
    pub duration: Option<Duration>,
    /// Per-request deadline.
    pub timeout: Duration,
    /// A catalog or trace instead of `paths`, arrivals, stages.
    pub traffic: crate::workload::source::Traffic,
    /// `http_version = "2"`: HTTP/2 (by ALPN over TLS, prior knowledge in
    /// clear text); else HTTP/1.1.
    pub http2: bool,
    /// HTTP/2: concurrent streams per connection (1 for HTTP/1.1).
    pub streams: u32,
    /// Clear-text HTTP/1.1: requests pipelined per connection (1: none).
    pub pipeline: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UdpWorkload {
    /// Datagrams per flow.
    pub count: u64,
    /// Bytes per datagram, probe header included.
    pub size: usize,
    pub interval: Duration,
    pub timeout: Duration,
    /// Parallel senders.
    pub flows: u32,
}

impl HttpWorkload {
    /// The probe engine's configuration for this workload against `target`.
    pub fn probe_config(&self, target: SocketAddr) -> crate::workload::http::HttpProbeConfig {
        crate::workload::http::HttpProbeConfig {
            authority: target.to_string(),
            target,
            paths: self.paths.clone(),
            requests: self.requests,
            concurrency: self.concurrency,
            keep_alive: self.keep_alive,
            rate: self.rate,
            duration: self.duration,
            timeout: self.timeout,
            traffic: self.traffic.clone(),
            wire: crate::workload::http::HttpWire {
                tls: None,
                http2: self.http2,
                streams: self.streams,
                pipeline: self.pipeline,
            },
            threads: None,
        }
    }
}

impl UdpWorkload {
    /// The probe engine's configuration for this workload against `target`.
    pub fn probe_config(&self, target: SocketAddr) -> crate::workload::udp::UdpProbeConfig {
        crate::workload::udp::UdpProbeConfig {
            target,
            count: self.count,
            size: self.size,
            interval: self.interval,
            timeout: self.timeout,
            flows: self.flows,
        }
    }
}

/// `"<workload>.<metric>" = "<op> <value>"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub workload: String,
    /// A numeric summary column, e.g. `latency_p99_ms`.
    pub metric: String,
    pub op: CompareOp,
    pub value: f64,
    /// As written, for messages.
    pub text: String,
}

/// One expectation checked against one variant's row (the runner checks;
/// reports print and export the results).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExpectationResult {
    pub variant: String,
    /// The repetition of the variant whose row was checked, from 1.
    pub repetition: u32,
    pub workload: String,
    pub metric: String,
    /// As written: `<= 1`.
    pub expected: String,
    /// The measured value; `None` when the metric was empty for this workload.
    pub actual: Option<f64>,
    pub passed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CompareOp {
    /// `"<= 1.5"` → `(Le, 1.5, "<= 1.5")` (the text trimmed, for messages),
    /// as `[expect]` lines and run.json write thresholds.
    pub fn parse_threshold(value: &str) -> Result<(CompareOp, f64, &str), String> {
        let text = value.trim();
        // Two-character operators first: `<=` must not read as `<` then `= 1`.
        let ops = [
            ("<=", CompareOp::Le),
            (">=", CompareOp::Ge),
            ("==", CompareOp::Eq),
            ("!=", CompareOp::Ne),
            ("<", CompareOp::Lt),
            (">", CompareOp::Gt),
        ];
        let Some((op, rest)) = ops
            .iter()
            .find_map(|(s, op)| text.strip_prefix(s).map(|rest| (*op, rest)))
        else {
            return Err(format!(
                "`{text}` has no comparison; write \"<op> <number>\" with op one of < <= > >= == !="
            ));
        };
        match rest.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok((op, v, text)),
            _ => Err(format!("`{}` is not a number", rest.trim())),
        }
    }

    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            CompareOp::Lt => left < right,
            CompareOp::Le => left <= right,
            CompareOp::Gt => left > right,
            CompareOp::Ge => left >= right,
            CompareOp::Eq => left == right,
            CompareOp::Ne => left != right,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
        }
    }
}

/// Largest scenario file read: a scenario is a page of TOML, and a path
/// such as `/dev/zero` must not be read without end.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// Reads and validates a scenario file. Every problem found is reported at once.
pub fn load(path: &Path) -> Result<Scenario, crate::Error> {
    let source = read_text(path)?;
    parse(path, &source).map_err(|e| crate::Error::InvalidFile(Box::new(e)))
}

/// The file's text: at most [`MAX_FILE_SIZE`] bytes of UTF-8.
fn read_text(path: &Path) -> Result<String, crate::Error> {
    use std::io::Read;
    let cannot = |e: std::io::Error| {
        crate::Error::input(format!(
            "cannot read scenario {}: {e}; check the path (scenarios live in scenarios/)",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(crate::Error::input(format!(
            "scenario {} is larger than 1 MiB; a scenario file is a short TOML text (see scenarios/)",
            path.display()
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        crate::Error::input(format!(
            "scenario {} is not UTF-8 text (invalid byte at offset {}); a scenario file is TOML text",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Reads every file, so that all broken ones are reported together: the
/// valid scenarios, and one error for the rest (a single file's own error, or
/// all their messages joined).
pub fn load_all(paths: &[PathBuf]) -> (Vec<Scenario>, Option<crate::Error>) {
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match load(p) {
            Ok(s) => scenarios.push(s),
            Err(e) => errors.push(e),
        }
    }
    let error = match errors.len() {
        0 => None,
        1 => errors.pop(),
        _ => Some(crate::Error::input(
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    };
    (scenarios, error)
}

/// Validates scenario text; `path` names the file in messages and anchors relative paths.
pub fn parse(path: &Path, source: &str) -> Result<Scenario, ScenarioErrors> {
    validate::validate(path, source)
}
