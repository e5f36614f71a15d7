//! Command-line definitions only (clap derive). Parsing lives here; what each
//! command does lives in `commands/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::shard::Part;
use crate::start_at::StartAt;
use crate::units::{parse_duration, BitRate, ByteSize};

/// Run network scenarios on loopback and measure their quality of service.
///
/// A bare scenario path means `run`: `netrun scenarios/basic.toml`.
#[derive(Debug, Parser)]
#[command(name = "netrun", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Scenario files to run (shorthand for `netrun run FILE...`).
    #[command(flatten)]
    pub run: RunArgs,

    /// Log more (repeat for more detail); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenario files: start the services, run the workloads, write results.
    Run(RunArgs),
    /// Validate scenario files and print the resolved plan; runs nothing.
    Check(CheckArgs),
    /// Side-by-side table of variants or runs from summary CSVs or scenarios.
    Compare(CompareArgs),
    /// Rebuild the HTML report of results on disk; several inputs share axes.
    Report(ReportArgs),
    /// Join the results folders of `--shard` or `--segment` runs into one run.
    Merge(MergeArgs),
    /// Run the origin alone: static files over HTTP plus a UDP echo service.
    Serve(ServeArgs),
    /// Run the caching HTTP proxy and UDP forwarder alone.
    // Boxed: its flags (limits, two links) make it far larger than the others.
    Proxy(Box<ProxyArgs>),
    /// Measure a UDP echo service or an HTTP server.
    #[command(subcommand)]
    Probe(ProbeCommand),
    /// Run a command in a fresh network namespace behind an emulated packet
    /// link (delay, loss, bursts, rate, queues, traces); needs root.
    ///
    /// The command's only route leads to this host through the link; the
    /// host end's address is in NETRUN_HOST. Uplink is from the command
    /// towards the host. Example: netrun link --rate 20Mbit/s --delay 10ms --
    /// iperf3 -c "$NETRUN_HOST"
    Link(Box<LinkArgs>),
    /// Write a synthetic request trace (CSV, gzip for `.gz`) that a
    /// workload's `trace` key replays.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Remove the network namespaces (with their veths and qdiscs) that a
    /// crashed or killed `hosts = "netns"` run left behind; needs root.
    Cleanup,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Scenario files (TOML).
    #[arg(value_name = "SCENARIO")]
    pub scenarios: Vec<PathBuf>,
    /// Results folder.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Compare with an earlier summary CSV (or a results folder); regressions fail.
    #[arg(long, value_name = "FILE|DIR")]
    pub baseline: Option<PathBuf>,
    /// With --baseline: the practical threshold in percent; a change whose
    /// whole 95% interval is not past it (and past the metric's floor) never fails the run.
    #[arg(long, value_name = "PCT", default_value_t = 25.0, value_parser = parse_percentage)]
    pub tolerance: f64,
    /// With --baseline: gated figures that cannot be judged (too little
    /// data) are listed and counted but do not fail the run.
    #[arg(long)]
    pub allow_inconclusive: bool,
    /// Run each variant N times (overrides the scenario's `repeat`), each
    /// with fresh services, interleaved A B A B.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: Option<u32>,
    /// Write the expectations and gated baseline metrics as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// No progress bars.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print a JSON summary on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Run only the K-th of N shares of the (scenario, variant, repetition)
    /// units of all files given (K from 1); `netrun merge` joins the shards.
    #[arg(long, value_name = "K/N", conflicts_with = "segment")]
    pub shard: Option<Part>,
    /// Apply the K-th of N shares of every workload's load (requests, rate,
    /// concurrency, flows or count; K from 1) to external services;
    /// `netrun merge` adds the N agents' results up.
    #[arg(long, value_name = "K/N")]
    pub segment: Option<Part>,
    /// Start the workloads at TIME (RFC 3339 with its zone, or +10s from
    /// now), the services already up: give the agents of one distributed
    /// run the same TIME so that their loads overlap.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<StartAt>,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Scenario files (TOML).
    #[arg(value_name = "SCENARIO", required = true)]
    pub scenarios: Vec<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Summary CSVs (results/NAME.csv, results/history.csv) or scenario files (run first).
    #[arg(value_name = "CSV|SCENARIO", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Results folder for scenarios run by compare.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Practical threshold in percent: smaller changes are `same`.
    #[arg(long, value_name = "PCT", default_value_t = 25.0, value_parser = parse_percentage)]
    pub tolerance: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// A scenario's results folder (results/NAME/), its summary
    /// (results/NAME.csv) or the history (results/history.csv).
    #[arg(value_name = "DIR|CSV", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where to write the report (default: beside the input,
    /// results/NAME/report.html).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Results folders (each a run's --out) of the shards or segments.
    #[arg(value_name = "DIR", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where the merged results go (not one of the inputs).
    #[arg(long, value_name = "DIR", required = true)]
    pub out: PathBuf,
    /// Merge the shards that are here although others are missing; the
    /// result says what it lacks (run.json `partial`, and on the terminal).
    #[arg(long)]
    pub partial: bool,
    /// Compare the merged rows with an earlier summary CSV (or a results
    /// folder), as `netrun run --baseline` does; regressions fail.
    #[arg(long, value_name = "FILE|DIR")]
    pub baseline: Option<PathBuf>,
    /// With --baseline: the practical threshold in percent (as for `run`).
    #[arg(long, value_name = "PCT", default_value_t = 25.0, value_parser = parse_percentage)]
    pub tolerance: f64,
    /// With --baseline: gated figures that cannot be judged do not fail.
    #[arg(long)]
    pub allow_inconclusive: bool,
    /// Write the expectations and gated baseline metrics as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print a JSON summary on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// HTTP listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub http: SocketAddr,
    /// UDP echo listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    pub udp: SocketAddr,
    /// Folder of static files to serve.
    #[arg(long, value_name = "DIR", default_value = "www")]
    pub www: PathBuf,
    /// Cache-Control: max-age sent with every file, so caches know how long to reuse it;
    /// "none" sends no Cache-Control (caches then use heuristics from Last-Modified)
    #[arg(long, value_name = "DUR|none", default_value = "60s", value_parser = parse_max_age)]
    pub max_age: MaxAge,
    #[command(flatten)]
    pub limits: HttpLimitArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// TLS on a service's listening side (HTTP/2 by ALPN; HTTP/1.1 otherwise).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// Serve HTTPS with a certificate made for this run (signed by a CA made
    /// for it, written to --ca-out and printed, for curl --cacert or a browser).
    #[arg(long)]
    pub tls: bool,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Further names (DNS or IP) for a made certificate, besides localhost,
    /// 127.0.0.1, ::1 and the listening address (repeatable).
    #[arg(long = "tls-name", value_name = "NAME")]
    pub tls_names: Vec<String>,
    /// Where the CA of a made certificate is written (default results/<command>/ca.pem).
    #[arg(long, value_name = "FILE")]
    pub ca_out: Option<PathBuf>,
}

/// Protections against slow or hostile clients, shared by origin and proxy.
#[derive(Debug, Clone, Args)]
pub struct HttpLimitArgs {
    /// Largest request head (request line + headers) accepted; past it, 431.
    #[arg(long, value_name = "BYTES", default_value = "16KiB")]
    pub max_header_size: ByteSize,
    /// Time allowed to receive a complete request head (slowloris guard).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Open connections served at once; further ones wait in the backlog.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// Largest request body accepted; past it, 413.
    #[arg(long, value_name = "BYTES", default_value = "1MiB")]
    pub max_body_size: ByteSize,
    /// Time a response may make no write progress (the client stopped
    /// reading) before the connection is closed; 0 for no limit.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: Duration,
    /// Threads serving HTTP, each with its own runtime accepting from the
    /// one listening socket (nginx's worker_processes); default: one per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=crate::server::MAX_WORKERS as i64))]
    pub workers: Option<u16>,
    /// How the workers get their connections: `shared` (all accept from
    /// one listening socket; the free one takes the next) or `per-worker`
    /// (one SO_REUSEPORT socket each, as nginx's `listen ... reuseport`: the
    /// kernel spreads connections by address hash, not by load).
    #[arg(long, value_name = "shared|per-worker", default_value = "shared",
        value_parser = clap::builder::TypedValueParser::map(
            clap::builder::PossibleValuesParser::new(crate::server::ListenSockets::NAMES),
            |s| s.parse::<crate::server::ListenSockets>().unwrap_or_default()))]
    pub listen_sockets: crate::server::ListenSockets,
}

#[derive(Debug, Clone, Args)]
pub struct ProxyArgs {
    /// HTTP listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// UDP listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub udp: SocketAddr,
    /// Origin HTTP server to forward to: HOST:PORT, http://HOST:PORT, or
    /// https://HOST:PORT for TLS (HTTP/2 by ALPN).
    #[arg(long, value_name = "URL", default_value = "127.0.0.1:8000")]
    pub upstream: String,
    /// CA (PEM) that signed an https:// upstream's certificate (default: the system's CAs).
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
    /// Accept any certificate from an https:// upstream (measuring only).
    #[arg(long, conflicts_with = "upstream_ca")]
    pub upstream_insecure: bool,
    /// The name an https:// upstream's certificate must carry, sent as SNI
    /// and Host, when --upstream gives its address (a certificate for
    /// origin.example reached at 127.0.0.1).
    #[arg(long, value_name = "NAME", conflicts_with = "upstream_insecure")]
    pub upstream_name: Option<String>,
    /// HTTP/2 to the upstream: prior knowledge (h2c) on http://, the only
    /// protocol offered by ALPN on https://.
    #[arg(long)]
    pub upstream_http2: bool,
    /// UDP service to forward datagrams to (HOST:PORT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    pub udp_upstream: String,
    /// Forward everything; store nothing (responses say X-Cache: BYPASS).
    #[arg(long)]
    pub no_cache: bool,
    /// Cache capacity in bytes (e.g. 64MiB).
    #[arg(long, value_name = "BYTES", default_value = "64MiB")]
    pub cache_size: ByteSize,
    /// Which entry a full cache evicts: lru, fifo, sieve or s3fifo (as libCacheSim defines them).
    #[arg(long, value_name = "POLICY", default_value = "lru")]
    pub cache_policy: crate::cache_policy::Policy,
    /// Hold at most N entries, the count the policy works against (as cache
    /// simulators do); --cache-size still bounds the bytes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub cache_objects: Option<u64>,
    /// Freshness for responses that give none (no max-age, s-maxage or Expires), instead of
    /// RFC 9111's heuristic from Last-Modified. A deviation from the RFC; off by default
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub cache_ttl: Option<Duration>,
    /// Response bytes held beyond the cache (bodies being read for it,
    /// evicted ones still being sent to slow readers); past it, misses are
    /// streamed uncached. Default: a quarter of --cache-size.
    #[arg(long, value_name = "BYTES")]
    pub max_inflight: Option<ByteSize>,
    /// Upstream answer deadline; past it, 504.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub upstream_timeout: Duration,
    /// Most UDP client sessions at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub udp_max_sessions: usize,
    /// A UDP session with no traffic for this long is closed.
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = parse_duration)]
    pub udp_idle_timeout: Duration,
    /// Most datagram bytes held back by --delay/--jitter/--rate at once;
    /// datagrams past it are tail-dropped (counted).
    #[arg(long, value_name = "BYTES", default_value = "32MiB")]
    pub udp_delay_buffer: ByteSize,
    #[command(flatten)]
    pub limits: HttpLimitArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub impair: ImpairArgs,
    #[command(flatten)]
    pub upstream_impair: UpstreamImpairArgs,
}

/// Impairments of the clients ↔ proxy link, applied by the proxy in each direction.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Impairments, clients <-> proxy link (each direction)")]
pub struct ImpairArgs {
    /// One-way delay added to every datagram and HTTP message (a round trip gets twice it).
    #[arg(long, value_name = "DUR", default_value = "0ms", value_parser = parse_link_duration)]
    pub delay: Duration,
    /// Random variation of the delay: uniform within ±DUR, never below zero.
    #[arg(long, value_name = "DUR", default_value = "0ms", value_parser = parse_link_duration)]
    pub jitter: Duration,
    /// Percentage of datagrams dropped (UDP only; 0 to 100).
    #[arg(long, value_name = "PCT", default_value_t = 0.0, value_parser = parse_percent)]
    pub loss: f64,
    /// Link rate (e.g. 10Mbit/s; 0 is unlimited) for datagrams and HTTP response bodies;
    /// datagrams past 1s of backlog are tail-dropped.
    #[arg(long, value_name = "RATE", default_value = "0")]
    pub rate: BitRate,
    /// Seed of the impairments' random generators, both links (same seed, same decisions).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
}

/// Impairments of the proxy ↔ origin link: only what the proxy sends
/// upstream (misses, revalidations, bypassed requests, UDP) and the answers
/// cross it; a cache hit never does.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Impairments, proxy <-> origin link (each direction)")]
pub struct UpstreamImpairArgs {
    /// One-way delay added to every request sent upstream, every response head and datagram coming back.
    #[arg(long, value_name = "DUR", default_value = "0ms", value_parser = parse_link_duration)]
    pub upstream_delay: Duration,
    /// Random variation of the upstream delay: uniform within ±DUR, never below zero.
    #[arg(long, value_name = "DUR", default_value = "0ms", value_parser = parse_link_duration)]
    pub upstream_jitter: Duration,
    /// Percentage of datagrams dropped between proxy and origin (UDP only; 0 to 100).
    #[arg(long, value_name = "PCT", default_value_t = 0.0, value_parser = parse_percent)]
    pub upstream_loss: f64,
    /// Rate of the proxy <-> origin link (e.g. 20Mbit/s; 0 is unlimited) for datagrams
    /// and response bodies coming from upstream.
    #[arg(long, value_name = "RATE", default_value = "0")]
    pub upstream_rate: BitRate,
}

/// A link's delay or jitter: a duration of at most 24h, as everywhere else.
fn parse_link_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > crate::workload::MAX_DURATION {
        return Err(format!(
            "`{s}` is too long; a link's delay or jitter is at most 24h"
        ));
    }
    Ok(d)
}

/// `--max-age`: a duration, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAge(pub Option<Duration>);

fn parse_max_age(s: &str) -> Result<MaxAge, String> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(MaxAge(None));
    }
    let d = parse_duration(s).map_err(|e| format!("{e}; or \"none\" to send no Cache-Control"))?;
    if d > Duration::from_secs(1 << 31) {
        return Err(format!(
            "`{s}` is too long; HTTP caches count at most 2^31 seconds"
        ));
    }
    Ok(MaxAge(Some(d)))
}

/// A percentage, with or without its `%` sign: `1.5` or `1.5%`.
fn parse_percentage(s: &str) -> Result<f64, String> {
    s.trim()
        .trim_end_matches('%')
        .trim_end()
        .parse()
        .map_err(|_| format!("`{s}` is not a number; write a percentage such as 1.5 or 1.5%"))
}

/// A loss percentage, 0 to 100.
fn parse_percent(s: &str) -> Result<f64, String> {
    let v = parse_percentage(s)?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{v} is out of range; use a percentage from 0 to 100"
        ))
    }
}

/// The knobs of `netrun link`, for both directions and each one
/// (`--uplink-*`, `--downlink-*`, which win over the shared form).
macro_rules! link_knobs {
    ($name:ident, $heading:literal, $prefix:literal) => {
        #[derive(Debug, Clone, Args)]
        #[command(next_help_heading = $heading)]
        pub struct $name {
            /// One-way delay added after the queue.
            #[arg(long = concat!($prefix, "delay"), id = concat!($prefix, "delay"), value_name = "DUR", value_parser = parse_link_duration)]
            pub delay: Option<Duration>,
            /// Random variation of the delay, uniform within ±DUR; packets keep their order.
            #[arg(long = concat!($prefix, "jitter"), id = concat!($prefix, "jitter"), value_name = "DUR", value_parser = parse_link_duration)]
            pub jitter: Option<Duration>,
            /// Percentage of packets lost at random (Bernoulli).
            #[arg(long = concat!($prefix, "loss"), id = concat!($prefix, "loss"), value_name = "PCT", value_parser = parse_percent)]
            pub loss: Option<f64>,
            /// Gilbert–Elliott burst loss: p=1%,r=30% (good→bad, bad→good) [,h=100%,k=0%].
            #[arg(long = concat!($prefix, "burst-loss"), id = concat!($prefix, "burst-loss"), value_name = "p=..,r=..")]
            pub burst_loss: Option<crate::link::Gilbert>,
            /// Percentage of packets sent twice.
            #[arg(long = concat!($prefix, "duplicate"), id = concat!($prefix, "duplicate"), value_name = "PCT", value_parser = parse_percent)]
            pub duplicate: Option<f64>,
            /// Percentage of packets that skip the delay (and overtake others).
            #[arg(long = concat!($prefix, "reorder"), id = concat!($prefix, "reorder"), value_name = "PCT", value_parser = parse_percent)]
            pub reorder: Option<f64>,
            /// Link rate, e.g. 10Mbit/s (0: unlimited).
            #[arg(long = concat!($prefix, "rate"), id = concat!($prefix, "rate"), value_name = "RATE")]
            pub rate: Option<BitRate>,
            /// The queue before the rate or trace: droptail[:1000|:150KiB] or codel[:target=5ms,interval=100ms].
            #[arg(long = concat!($prefix, "queue"), id = concat!($prefix, "queue"), value_name = "QUEUE")]
            pub queue: Option<crate::link::Queue>,
            /// A Mahimahi delivery trace (one line per 1500-byte opportunity, in ms), instead of a rate.
            #[arg(long = concat!($prefix, "trace"), id = concat!($prefix, "trace"), value_name = "FILE")]
            pub trace: Option<PathBuf>,
            /// Periodic outages: every=10s,lasting=500ms.
            #[arg(long = concat!($prefix, "outage"), id = concat!($prefix, "outage"), value_name = "every=..,lasting=..")]
            pub outage: Option<crate::link::Outage>,
        }

        impl $name {
            /// The same knobs under the shared type.
            pub fn knobs(&self) -> LinkKnobs {
                LinkKnobs {
                    delay: self.delay,
                    jitter: self.jitter,
                    loss: self.loss,
                    burst_loss: self.burst_loss,
                    duplicate: self.duplicate,
                    reorder: self.reorder,
                    rate: self.rate,
                    queue: self.queue,
                    trace: self.trace.clone(),
                    outage: self.outage,
                }
            }
        }
    };
}

link_knobs!(LinkKnobs, "Link knobs (both directions)", "");
link_knobs!(
    UplinkKnobs,
    "Uplink knobs (from the command towards the host)",
    "uplink-"
);
link_knobs!(
    DownlinkKnobs,
    "Downlink knobs (from the host towards the command)",
    "downlink-"
);

#[derive(Debug, Clone, Args)]
pub struct LinkArgs {
    #[command(flatten)]
    pub both: LinkKnobs,
    #[command(flatten)]
    pub uplink: UplinkKnobs,
    #[command(flatten)]
    pub downlink: DownlinkKnobs,
    /// Seed of the link's random generators (each direction draws its own sequence).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// TCP congestion control over the link, both ends (e.g. cubic, reno,
    /// bbr; one the kernel has: /proc/sys/net/ipv4/tcp_available_congestion_control).
    /// Default: the host's own.
    #[arg(long, value_name = "NAME")]
    pub congestion: Option<String>,
    /// Print a generated delivery trace and exit: constant:12Mbit/s[,period=1s],
    /// steps:24Mbit/s+12Mbit/s+6Mbit/s[,step=2s] or onoff:12Mbit/s[,on=2s,off=500ms].
    #[arg(long, value_name = "SHAPE", conflicts_with = "command")]
    pub make_trace: Option<String>,
    /// The command to run behind the link, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Requests over a catalog with Zipf popularity (rank r ∝ r^-alpha).
    Zipf(TraceArgs),
    /// Requests over a catalog with uniform popularity.
    Uniform(TraceArgs),
}

#[derive(Debug, Clone, Args)]
pub struct TraceArgs {
    /// Objects in the catalog (keys 1..=N, 1 the most popular).
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub objects: u64,
    /// Zipf exponent (zipf only).
    #[arg(long, value_name = "ALPHA", default_value_t = 0.8, value_parser = parse_alpha)]
    pub alpha: f64,
    /// Requests (lines) to write.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,
    /// Object sizes: a size (`16KiB`), `lognormal:median=16KiB,sigma=1.5,max=8MiB`
    /// or `pareto:min=1KiB,shape=1.2,max=64MiB`.
    #[arg(long, value_name = "BYTES|DIST", default_value = "16KiB")]
    pub size: crate::traffic::SizeDist,
    /// Requests per second of the timestamps.
    #[arg(long, value_name = "RATE", default_value_t = 1000.0, value_parser = parse_trace_rate)]
    pub rate: f64,
    /// `constant` (evenly spaced timestamps) or `poisson`.
    #[arg(long, value_name = "constant|poisson", default_value = "constant", value_parser = ["constant", "poisson"])]
    pub arrivals: String,
    /// Seed of the sizes, the draws and the Poisson gaps.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Where to write (`.gz`: gzip-compressed).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// A Zipf exponent: above 0, at most 10.
fn parse_alpha(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(a) if a > 0.0 && a <= 10.0 => Ok(a),
        _ => Err(format!(
            "`{s}`: give an exponent above 0 and at most 10, e.g. 0.8"
        )),
    }
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (0.001..=1e6).contains(&x) => Ok(x),
        _ => Err(format!(
            "`{s}`: give 0.001 to 1000000 (2 replays twice as fast)"
        )),
    }
}

fn parse_trace_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && (0.001..=10_000_000.0).contains(&r) => Ok(r),
        _ => Err(format!("`{s}`: give 0.001 to 10000000 requests per second")),
    }
}

#[derive(Debug, Subcommand)]
pub enum ProbeCommand {
    /// Send timestamped datagrams to a UDP echo service and measure RTT, jitter, loss.
    Udp(UdpProbeArgs),
    /// Send HTTP requests and measure latency, throughput, errors and cache hits.
    Http(HttpProbeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct UdpProbeArgs {
    /// Echo service address (HOST:PORT).
    #[arg(value_name = "ADDR")]
    pub addr: String,
    /// Datagrams per flow.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub count: u64,
    /// Bytes per datagram, header included.
    #[arg(long, value_name = "BYTES", default_value = "128")]
    pub size: ByteSize,
    /// Time between sends (0 = as fast as possible).
    #[arg(long, value_name = "DUR", default_value = "100ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long to wait for a reply before it counts as lost.
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Parallel senders, each with its own socket.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub flows: u32,
    /// Write one row per datagram to this CSV file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Print a JSON summary instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct HttpProbeArgs {
    /// Base URL (http://HOST:PORT/PATH or https://…; [::1] for IPv6).
    #[arg(value_name = "URL")]
    pub url: String,
    /// HTTP/2: by ALPN on https://, with prior knowledge (h2c) on http://.
    #[arg(long)]
    pub http2: bool,
    /// HTTP/2: concurrent streams per connection (--concurrency connections).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "http2")]
    pub streams: u32,
    /// Clear-text HTTP/1.1: requests written back to back per connection before
    /// their responses are read (pipelining); latency counts from that write.
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "http2")]
    pub pipeline: u32,
    /// CA (PEM) that signed the server's certificate (default: the system's CAs).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Accept any certificate for any name (measuring only).
    #[arg(long, conflicts_with = "ca")]
    pub insecure: bool,
    /// Total requests; default 1, or with --duration: no limit (run for the duration).
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,
    /// Parallel clients (closed loop), or the most requests in flight (open loop).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub concurrency: u32,
    /// Client threads, each driving its share of the connections (as wrk's
    /// -t); default: one per core, never more than --concurrency.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Open a new connection for every request.
    #[arg(long)]
    pub no_keep_alive: bool,
    /// Open loop: start requests on a schedule of N per second.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Stop sending after this long.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Paths to request in turn instead of the URL's own path (repeatable).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
    /// Replay a request trace (CSV with timestamp,key,size; `.gz` read
    /// through gzip) as `/objects/<key>/<size>` against the URL's server;
    /// default --requests: the whole trace.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["paths", "rate"])]
    pub trace: Option<PathBuf>,
    /// With --trace: `recorded` (each request at its timestamp / --speed,
    /// open loop) or `fast` (in trace order, as fast as --concurrency allows).
    #[arg(long, value_name = "recorded|fast", default_value = "recorded", requires = "trace",
          value_parser = ["recorded", "fast"])]
    pub timing: String,
    /// With --trace and recorded timing: divide the trace's gaps by this.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, requires = "trace",
          value_parser = parse_speed)]
    pub speed: f64,
    /// Per-request deadline; past it, the request counts as a timeout error.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Write one row per request to this CSV file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Print a JSON summary instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn percentages_take_an_optional_percent_sign() {
        assert_eq!(parse_percentage("25"), Ok(25.0));
        assert_eq!(parse_percentage("25%"), Ok(25.0));
        assert_eq!(parse_percentage(" 1.5 % "), Ok(1.5));
        assert!(parse_percentage("lots").is_err());
        assert_eq!(parse_percent("1.5%"), Ok(1.5));
        assert!(parse_percent("150%").is_err());
        let cli = Cli::try_parse_from(["netrun", "run", "a.toml", "--tolerance", "25%"]).unwrap();
        match cli.command {
            Some(Command::Run(r)) => assert_eq!(r.tolerance, 25.0),
            other => panic!("{other:?}"),
        }
    }

    /// Every value placeholder in `--help` is one of a small set of names
    /// (counts are all `N`, durations `DUR`, sizes `BYTES`, ...).
    #[test]
    fn help_value_names_are_consistent() {
        const NAMES: &[&str] = &[
            "N",
            "DUR",
            "BYTES",
            "ADDR",
            "DIR",
            "FILE",
            "PCT",
            "RATE",
            "PATH",
            "URL",
            "SCENARIO",
            "FILE|DIR",
            "CSV|SCENARIO",
            "DIR|CSV",
            "DUR|none",
            "DIR|CSV",
            "K/N",
            "NAME",
            "QUEUE",
            "SHAPE",
            "COMMAND",
            "p=..,r=..",
            "every=..,lasting=..",
            "TIME",
            "ALPHA",
            "BYTES|DIST",
            "constant|poisson",
            "POLICY",
            "recorded|fast",
            "FACTOR",
            "shared|per-worker",
        ];
        fn walk(cmd: &clap::Command, bad: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if !arg.get_action().takes_values() {
                    continue;
                }
                let names: Vec<String> = arg
                    .get_value_names()
                    .map(|v| v.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_else(|| vec![arg.get_id().as_str().to_uppercase()]);
                for n in names {
                    if !NAMES.contains(&n.as_str()) {
                        bad.push(format!("{} --{}: <{n}>", cmd.get_name(), arg.get_id()));
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, bad);
            }
        }
        let mut bad = Vec::new();
        walk(&Cli::command(), &mut bad);
        assert!(bad.is_empty(), "{bad:#?}");
    }
}
