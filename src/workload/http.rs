//! The HTTP load workload: `concurrency` workers running one generic loop
//! (take a ticket, send a request over a keep-alive connection, read the
//! whole body) and one collector that aggregates their samples. Used by
//! `netrun probe http` and the scenario runner; no files, no tables here.
//!
//! Tickets come from a counter (closed loop: a worker asks for the next
//! request when its last one finished) or from a scheduler that stamps each
//! ticket with its scheduled start at `rate` per second (open loop). In open
//! loop latency counts from the scheduled start, so a slow server cannot hide
//! the requests it delayed (no coordinated omission); the service time from
//! the actual send is reported too.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderValue, CONNECTION, HOST, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;

use anyhow::Context as _;

use super::udp::wait_until;
use super::{check_duration, Progress, Setting, SettingError};
use crate::error::Error;
use crate::metrics::qos::{self, LatencyStats, LatencySummary};
use crate::metrics::summary::round3;
use crate::metrics::{CacheMark, HttpRequestRow, SummaryRow};
use crate::tls::{ClientTls, ALPN_H2};

/// What to request, where, and how hard.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbeConfig {
    /// `host:port` sent in the `Host` header.
    pub authority: String,
    /// Where to connect.
    pub target: SocketAddr,
    /// Request paths, used in turn (request i asks for `paths[i % len]`).
    pub paths: Vec<String>,
    /// Requests to send (with `duration`: an upper bound).
    pub requests: u64,
    /// Closed loop: parallel clients. Open loop: most requests in flight.
    pub concurrency: u32,
    /// Reuse each worker's connection; false sends `Connection: close`.
    pub keep_alive: bool,
    /// Open loop: requests per second on a schedule. `None`: closed loop.
    pub rate: Option<f64>,
    /// Stop starting requests after this long.
    pub duration: Option<Duration>,
    /// Per-request deadline (connect, send, whole body); past it: `timeout` error.
    pub timeout: Duration,
    /// TLS and the HTTP version.
    pub wire: HttpWire,
}

/// How a client speaks to its target.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpWire {
    /// TLS (`https://`); `None`: clear text.
    pub tls: Option<ClientTls>,
    /// HTTP/2: by ALPN over TLS (HTTP/1.1 if the server declines), with
    /// prior knowledge in clear text. Else HTTP/1.1.
    pub http2: bool,
    /// HTTP/2: concurrent streams per connection, each running the request
    /// loop; 1 for HTTP/1.1.
    pub streams: u32,
}

impl Default for HttpWire {
    /// Clear-text HTTP/1.1.
    fn default() -> Self {
        HttpWire {
            tls: None,
            http2: false,
            streams: 1,
        }
    }
}

/// Most HTTP/2 streams per connection a workload may ask for: what
/// netrun's servers allow (nginx allows 128).
pub const MAX_STREAMS: u32 = crate::server::H2_MAX_STREAMS;

/// `requests` meaning "no count limit": the workload runs until its
/// `duration` ends (as `wrk -d` and `oha -z` do).
pub const UNTIL_DURATION: u64 = u64::MAX;

impl HttpProbeConfig {
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.requests == 0 {
            return Err(Setting::Requests.error("requests must be at least 1"));
        }
        if self.requests == UNTIL_DURATION && self.duration.is_none() {
            return Err(Setting::Requests.error(
                "give a number of requests, or a duration to run for (--duration / `duration`)",
            ));
        }
        if self.concurrency == 0 {
            return Err(Setting::Concurrency.error("concurrency must be at least 1"));
        }
        // One connection per worker.
        super::check_sockets(Setting::Concurrency, u64::from(self.concurrency), 1)?;
        if !(1..=MAX_STREAMS).contains(&self.wire.streams) {
            return Err(Setting::Streams.error(format!(
                "streams must be 1 to {MAX_STREAMS} (concurrent HTTP/2 streams per connection)"
            )));
        }
        if self.wire.streams > 1 && !self.wire.http2 {
            return Err(Setting::Streams.error(
                "streams > 1 needs HTTP/2 (http_version = \"2\", --http2): HTTP/1.1 sends one request at a time per connection",
            ));
        }
        if let Some(rate) = self.rate {
            // Below one request per 1000 s the schedule stops making sense.
            if !(rate.is_finite() && (0.001..=10_000_000.0).contains(&rate)) {
                return Err(Setting::Rate.error(format!(
                    "rate {rate} is out of range; give 0.001 to 10000000 requests per second"
                )));
            }
        }
        check_duration(Setting::Timeout, self.timeout, false)?;
        if let Some(d) = self.duration {
            check_duration(Setting::Duration, d, false)?;
        }
        if self.paths.is_empty() {
            return Err(Setting::Paths.error("give at least one path, e.g. --path /index.html"));
        }
        if let Some(p) = self.paths.iter().find(|p| !p.starts_with('/')) {
            return Err(
                Setting::Paths.error(format!("path `{p}` must start with `/`, e.g. /index.html"))
            );
        }
        Ok(())
    }

    fn open_loop(&self) -> bool {
        self.rate.is_some()
    }

    /// How many requests the workload should make, for progress bars: the
    /// count, or for a duration-bound run, rate × duration (0 when a closed
    /// loop's count is unknown in advance).
    pub fn planned_requests(&self) -> u64 {
        if self.requests != UNTIL_DURATION {
            return self.requests;
        }
        match (self.rate, self.duration) {
            (Some(r), Some(d)) => (r * d.as_secs_f64()).ceil() as u64,
            _ => 0,
        }
    }
}

/// The results of one HTTP run.
#[derive(Debug, Clone)]
pub struct HttpReport {
    pub started_at: SystemTime,
    /// Wall time: from the start to the last completed request.
    pub duration: Duration,
    /// Requests completed or failed.
    pub requests: u64,
    /// Requests that got a whole response (any status).
    pub responses: u64,
    /// Transport errors plus 5xx responses.
    pub errors: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Responses marked `X-Cache: HIT`.
    pub cache_hits: u64,
    /// Responses that carried an `X-Cache` header at all (HIT, MISS or BYPASS).
    pub cache_marked: u64,
    /// From the scheduled start (closed loop: the send) to the last body byte, responses only.
    pub latency: Option<LatencySummary>,
    /// Open loop only: from the actual send to the last body byte.
    pub service: Option<LatencySummary>,
    /// Open loop only: mean and largest lateness of the actual sends
    /// against their schedule (pacer wake-up, or waiting for a free connection).
    pub pacing_mean: Option<Duration>,
    pub pacing_max: Option<Duration>,
    /// Connections opened (TCP handshakes completed), those made before the
    /// clock started included.
    pub connections: u64,
    /// TLS handshakes completed (0 in clear text).
    pub tls_handshakes: u64,
    /// TCP connect times of the connections opened.
    pub connect: Option<LatencySummary>,
    /// TLS handshake times of the connections opened.
    pub tls: Option<LatencySummary>,
    /// From each request's start to its response head (connect and TLS
    /// included on a new connection, as curl's `time_starttransfer`).
    pub ttfb: Option<LatencySummary>,
    status_counts: BTreeMap<u16, u64>,
    errors_by_class: BTreeMap<String, u64>,
    interrupted: bool,
}

impl HttpReport {
    /// The metric fields of a summary row; scenario, variant, workload and
    /// target are left for the caller.
    pub fn summary(&self) -> SummaryRow {
        let secs = self.duration.as_secs_f64();
        SummaryRow {
            kind: "http".into(),
            started_at: humantime::format_rfc3339_seconds(self.started_at).to_string(),
            duration_s: Some(round3(secs)),
            sent: Some(self.requests),
            received: Some(self.responses),
            throughput_bps: qos::throughput_bps(self.bytes, self.duration).map(f64::round),
            requests: Some(self.requests),
            errors: Some(self.errors),
            requests_per_s: (secs > 0.0).then(|| round3(self.requests as f64 / secs)),
            // Empty when no response carried X-Cache: no cache was on the path.
            cache_hits: (self.cache_marked > 0).then_some(self.cache_hits),
            cache_hit_ratio: (self.cache_marked > 0 && self.responses > 0)
                .then(|| round3(self.cache_hits as f64 / self.responses as f64)),
            service_mean_ms: self.service.map(|s| round3(s.mean_ms)),
            service_p99_ms: self.service.map(|s| round3(s.p99_ms)),
            pacing_mean_ms: self.pacing_mean.map(duration_ms),
            pacing_max_ms: self.pacing_max.map(duration_ms),
            interrupted: self.interrupted,
            connections: Some(self.connections),
            tls_handshakes: Some(self.tls_handshakes),
            connect_p50_ms: self.connect.map(|s| round3(s.p50_ms)),
            connect_p99_ms: self.connect.map(|s| round3(s.p99_ms)),
            tls_p50_ms: self.tls.map(|s| round3(s.p50_ms)),
            tls_p99_ms: self.tls.map(|s| round3(s.p99_ms)),
            ttfb_p50_ms: self.ttfb.map(|s| round3(s.p50_ms)),
            ttfb_p99_ms: self.ttfb.map(|s| round3(s.p99_ms)),
            ..super::latency_columns(self.latency.as_ref())
        }
    }

    /// Responses per HTTP status code.
    pub fn status_counts(&self) -> &BTreeMap<u16, u64> {
        &self.status_counts
    }

    /// Transport errors per class: `refused`, `reset`, `timeout`,
    /// `bad_response`, the TLS ones (`tls_expired`, `tls_name`,
    /// `tls_untrusted`, `tls_certificate`, `tls_not_tls`, `tls`), `other`.
    pub fn errors_by_class(&self) -> &BTreeMap<String, u64> {
        &self.errors_by_class
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted
    }
}

/// One request to make; `scheduled` is set in open loop.
struct Ticket {
    index: u64,
    scheduled: Option<Instant>,
}

/// Where one worker thread's connections take their next request from.
#[derive(Clone)]
enum Tickets {
    /// Closed loop: a counter shared by every thread.
    Closed {
        next: Arc<AtomicU64>,
        total: u64,
        deadline: Option<Instant>,
    },
    /// Open loop: this thread's queue, filled by the pacing thread.
    Open(Arc<Mutex<mpsc::Receiver<Ticket>>>),
}

impl Tickets {
    async fn next(&self) -> Option<Ticket> {
        match self {
            Tickets::Closed {
                next,
                total,
                deadline,
            } => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return None;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                (index < *total).then_some(Ticket {
                    index,
                    scheduled: None,
                })
            }
            Tickets::Open(rx) => rx.lock().await.recv().await,
        }
    }
}

/// One finished request, from a worker to the collector.
struct Sample {
    client: u32,
    path: usize,
    status: Option<u16>,
    bytes: u64,
    latency: Duration,
    service: Duration,
    /// Open loop: how late the request left against its schedule.
    late: Option<Duration>,
    /// The request's start: its scheduled start in open loop, else the send.
    started: Instant,
    cache: CacheMark,
    error: Option<&'static str>,
    /// Where the time went (connect and TLS on a new connection only).
    timing: Timing,
}

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    /// As curl's `%{http_version}` names it, with the `HTTP/` prefix.
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }
}

/// Where one request's time went. `connect` and `tls` are set on the
/// request that opened its connection (or the first over a connection
/// opened before the clock started), never on a reused one.
#[derive(Debug, Clone, Copy, Default)]
struct Timing {
    connect: Option<Duration>,
    tls: Option<Duration>,
    /// From the request's start to its response head.
    ttfb: Option<Duration>,
    protocol: Option<Protocol>,
}

/// A response read to its last byte.
struct Response {
    status: u16,
    bytes: u64,
    cache: CacheMark,
}

/// Samples travel to the collector in batches of this many: one channel
/// hand-off (and one wake-up of the collector) per batch, not per request.
const BATCH: usize = 256;
/// A partial batch is handed over once its first sample is this old, so
/// slow runs still show progress.
const BATCH_AGE: Duration = Duration::from_millis(50);

/// Runs the load to completion (or until `cancel`), streaming per-request
/// rows to `on_request` (their `variant` and `workload` are empty: the
/// caller fills them). Requests in flight at cancellation are dropped, not counted.
///
/// Threads: the connections are spread over one single-threaded runtime per
/// core (as wrk's threads), so a request's wake-ups stay on its thread; each
/// thread opens its connections (TCP, TLS, HTTP/2 settings) before the clock
/// starts; in open loop a pacing thread releases each request at its
/// scheduled instant (sleep, then spin: tokio's timer is a millisecond
/// late). The samples come back in batches to the collector (this
/// function), which keeps the histograms and calls `on_request`.
pub async fn run_http(
    config: &HttpProbeConfig,
    on_request: &mut (dyn FnMut(HttpRequestRow) + Send),
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> anyhow::Result<HttpReport> {
    config.validate().map_err(Error::from)?;
    let cfg = Arc::new(config.clone());
    progress.set_total(config.planned_requests());
    let threads = worker_threads(config.concurrency);
    let runtimes = (0..threads)
        .map(|_| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        })
        .collect::<io::Result<Vec<_>>>()
        .context("cannot start an HTTP worker runtime")?;
    let counter = Arc::new(AtomicU64::new(0));
    let mut queues = Vec::new();
    let mut starts = Vec::new();
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(threads as usize);
    let (tx, mut rx) = mpsc::channel::<Vec<Sample>>(64);
    let mut handles = Vec::with_capacity(threads as usize);
    for (thread, runtime) in (0..threads).zip(runtimes) {
        let open_queue = config.open_loop().then(|| {
            let (qtx, qrx) = mpsc::channel(1024);
            queues.push(qtx);
            Arc::new(Mutex::new(qrx))
        });
        let (start_tx, start_rx) = std::sync::mpsc::channel::<Option<Instant>>();
        starts.push(start_tx);
        let clients: Vec<u32> = (thread..config.concurrency)
            .step_by(threads as usize)
            .collect();
        let (cfg, tx, cancel, ready) = (cfg.clone(), tx.clone(), cancel.clone(), ready_tx.clone());
        let counter = counter.clone();
        let handle = std::thread::Builder::new()
            .name(format!("netrun-http-{thread}"))
            .spawn(move || {
                let slots = runtime.block_on(preconnect(&clients, &cfg, &cancel));
                let _ = ready.blocking_send(());
                drop(ready);
                // The clock's deadline, once every thread is connected;
                // nothing when the run was cancelled meanwhile.
                let Ok(deadline) = start_rx.recv() else {
                    return;
                };
                let tickets = match open_queue {
                    Some(q) => Tickets::Open(q),
                    None => Tickets::Closed {
                        next: counter,
                        total: cfg.requests,
                        deadline,
                    },
                };
                runtime.block_on(worker_thread(slots, cfg, tickets, tx, cancel));
            })
            .context("cannot start an HTTP worker thread")?;
        handles.push(handle);
    }
    drop((tx, ready_tx));
    for _ in 0..threads {
        tokio::select! {
            _ = cancel.cancelled() => break,
            r = ready_rx.recv() => if r.is_none() { break },
        }
    }
    // The clock starts once the threads' runtimes and connections are up.
    let started_at = SystemTime::now();
    let start = Instant::now();
    let deadline = config.duration.map(|d| start + d);
    if !cancel.is_cancelled() {
        for s in &starts {
            let _ = s.send(deadline);
        }
    }
    drop(starts);
    let pacer = config.rate.filter(|_| !cancel.is_cancelled()).map(|rate| {
        let (total, cancel) = (config.requests, cancel.clone());
        std::thread::Builder::new()
            .name("netrun-http-pacer".into())
            .spawn(move || schedule(queues, total, rate, start, deadline, &cancel))
    });
    if let Some(Err(e)) = pacer {
        // Without a pacer the queues are closed: the workers end at once.
        return Err(anyhow::Error::new(e).context("cannot start the HTTP pacing thread"));
    }

    // The collector: the only place samples are aggregated.
    let mut tally = Tally::default();
    while let Some(batch) = rx.recv().await {
        for s in &batch {
            tally.add(s, config.open_loop());
            on_request(row(s, config, start));
        }
        progress.advance(batch.len() as u64);
        progress.replies(tally.responses, Some(tally.errors));
    }
    let duration = start.elapsed();
    // Every sender is gone, so the threads are ending: joining waits for
    // little more than their runtimes' teardown.
    let joined = tokio::task::spawn_blocking(move || {
        let workers_ok = handles.into_iter().all(|h| h.join().is_ok());
        let pacer_ok = pacer.map_or(true, |p| p.is_ok_and(|h| h.join().is_ok()));
        workers_ok && pacer_ok
    })
    .await;
    if !matches!(joined, Ok(true)) {
        anyhow::bail!("an HTTP worker or pacing thread failed");
    }
    Ok(tally.report(started_at, duration, cancel.is_cancelled()))
}

/// A sample as a row of `http_requests.csv`.
fn row(s: &Sample, config: &HttpProbeConfig, start: Instant) -> HttpRequestRow {
    let ms = |d: Duration| round3(qos::ns_to_ms(d.as_nanos() as f64));
    HttpRequestRow {
        variant: String::new(),
        workload: String::new(),
        client: s.client,
        path: config.paths[s.path].clone(),
        status: s.status,
        bytes: s.bytes,
        latency_ms: ms(s.latency),
        cache: s.cache,
        error: s.error.map(str::to_string),
        start_offset_ms: Some(ms(s.started.saturating_duration_since(start))),
        repetition: None,
        connect_ms: s.timing.connect.map(ms),
        tls_ms: s.timing.tls.map(ms),
        ttfb_ms: s.timing.ttfb.map(ms),
        protocol: s.timing.protocol.map(|p| p.as_str().to_string()),
    }
}

/// Aggregates the samples of a run into its report: counts by outcome,
/// status and error class, and the latency statistics.
#[derive(Debug, Default)]
struct Tally {
    latency: LatencyStats,
    service: LatencyStats,
    status_counts: BTreeMap<u16, u64>,
    errors_by_class: BTreeMap<String, u64>,
    requests: u64,
    responses: u64,
    errors: u64,
    bytes: u64,
    hits: u64,
    marked: u64,
    /// Open loop: sum, largest and count of the sends' lateness.
    late_sum: Duration,
    late_max: Duration,
    late_n: u64,
    connect: LatencyStats,
    tls: LatencyStats,
    ttfb: LatencyStats,
}

impl Tally {
    /// Counts one finished request. Latency is over responses only; the
    /// service time only means something apart from it in an open loop.
    fn add(&mut self, s: &Sample, open_loop: bool) {
        self.requests += 1;
        self.bytes += s.bytes;
        if let Some(d) = s.timing.connect {
            self.connect.record(d);
        }
        if let Some(d) = s.timing.tls {
            self.tls.record(d);
        }
        if let Some(d) = s.timing.ttfb {
            self.ttfb.record(d);
        }
        if let Some(late) = s.late {
            self.late_sum += late;
            self.late_max = self.late_max.max(late);
            self.late_n += 1;
        }
        match (s.status, s.error) {
            (Some(code), _) => {
                self.responses += 1;
                *self.status_counts.entry(code).or_insert(0) += 1;
                if code >= 500 {
                    self.errors += 1;
                }
                if s.cache == CacheMark::Hit {
                    self.hits += 1;
                }
                if s.cache != CacheMark::None {
                    self.marked += 1;
                }
                self.latency.record(s.latency);
                if open_loop {
                    self.service.record(s.service);
                }
            }
            (None, class) => {
                self.errors += 1;
                *self
                    .errors_by_class
                    .entry(class.unwrap_or("other").to_string())
                    .or_insert(0) += 1;
            }
        }
    }

    fn report(self, started_at: SystemTime, duration: Duration, interrupted: bool) -> HttpReport {
        HttpReport {
            started_at,
            duration,
            requests: self.requests,
            responses: self.responses,
            errors: self.errors,
            bytes: self.bytes,
            cache_hits: self.hits,
            cache_marked: self.marked,
            latency: self.latency.summary(),
            service: self.service.summary(),
            pacing_mean: (self.late_n > 0).then(|| self.late_sum.div_f64(self.late_n as f64)),
            pacing_max: (self.late_n > 0).then_some(self.late_max),
            connections: self.connect.count(),
            tls_handshakes: self.tls.count(),
            connect: self.connect.summary(),
            tls: self.tls.summary(),
            ttfb: self.ttfb.summary(),
            status_counts: self.status_counts,
            errors_by_class: self.errors_by_class,
            interrupted,
        }
    }
}

/// A duration in milliseconds, to the microsecond.
fn duration_ms(d: Duration) -> f64 {
    round3(qos::ns_to_ms(d.as_nanos() as f64))
}

/// One worker thread per core, never more than there are connections.
fn worker_threads(concurrency: u32) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cores)
        .unwrap_or(1)
        .clamp(1, concurrency.max(1))
}

/// A request sender on an open connection.
enum Sender {
    /// HTTP/1.1: one request at a time, so one user (taken out of its slot).
    H1(http1::SendRequest<Empty<Bytes>>),
    /// HTTP/2: shared by a client's streams (cloned out of its slot).
    H2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    /// Whether the connection can take a request (false once the server
    /// closed it); waits while an HTTP/1.1 response is still being read.
    async fn usable(&mut self) -> bool {
        match self {
            Sender::H1(s) => s.ready().await.is_ok(),
            Sender::H2(s) => s.ready().await.is_ok(),
        }
    }
}

/// A client's connection, shared by its lanes (one for HTTP/1.1, `streams`
/// for HTTP/2).
#[derive(Default)]
struct Slot {
    live: Mutex<Option<Live>>,
}

/// An open connection in its slot.
struct Live {
    sender: Sender,
    protocol: Protocol,
    /// Connect and TLS times of a connection opened before the clock, not
    /// yet reported: the first request over it carries them.
    opened: Option<(Option<Duration>, Option<Duration>)>,
}

/// Keep-alive: opens the connections of `clients` before the clock starts,
/// as wrk and h2load do, so the first requests do not carry a TCP (or TLS)
/// handshake. A connection that fails here is left out: its client connects
/// on its first request, where a failure counts as that request's error.
async fn preconnect(
    clients: &[u32],
    cfg: &HttpProbeConfig,
    cancel: &CancellationToken,
) -> Vec<(u32, Arc<Slot>)> {
    let slots: Vec<(u32, Arc<Slot>)> = clients
        .iter()
        .map(|&c| (c, Arc::new(Slot::default())))
        .collect();
    if !cfg.keep_alive {
        return slots;
    }
    let attempts = slots.iter().map(|(_, slot)| async move {
        let mut timing = Timing::default();
        let opened = tokio::time::timeout(cfg.timeout, open(cfg, &mut timing)).await;
        if let Ok(Ok(sender)) = opened {
            *slot.live.lock().await = Some(Live {
                sender,
                protocol: timing.protocol.unwrap_or(Protocol::Http1),
                opened: Some((timing.connect, timing.tls)),
            });
        }
    });
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = futures_util::future::join_all(attempts) => {}
    }
    slots
}

/// What every request of a run shares, parsed once: the paths as URIs
/// (`None`: not a valid request target, each such request fails as `other`)
/// and the header values. HTTP/2 requests carry the absolute URI (its
/// `:scheme` and `:authority`) and no connection headers.
struct RequestParts {
    uris: Vec<Option<Uri>>,
    absolute: Vec<Option<Uri>>,
    host: Option<HeaderValue>,
    agent: HeaderValue,
    connection: HeaderValue,
}

impl RequestParts {
    fn new(cfg: &HttpProbeConfig) -> Self {
        let scheme = if cfg.wire.tls.is_some() {
            "https"
        } else {
            "http"
        };
        RequestParts {
            uris: cfg.paths.iter().map(|p| p.parse().ok()).collect(),
            absolute: cfg
                .paths
                .iter()
                .map(|p| format!("{scheme}://{}{p}", cfg.authority).parse().ok())
                .collect(),
            host: HeaderValue::from_str(&cfg.authority).ok(),
            agent: HeaderValue::from_static(concat!("netrun/", env!("CARGO_PKG_VERSION"))),
            connection: HeaderValue::from_static(if cfg.keep_alive {
                "keep-alive"
            } else {
                "close"
            }),
        }
    }

    fn request(&self, path: usize, protocol: Protocol) -> Option<Request<Empty<Bytes>>> {
        let mut req = Request::new(Empty::new());
        if protocol == Protocol::Http2 {
            *req.uri_mut() = self.absolute.get(path)?.clone()?;
            *req.version_mut() = hyper::Version::HTTP_2;
            req.headers_mut().insert(USER_AGENT, self.agent.clone());
            return Some(req);
        }
        *req.uri_mut() = self.uris.get(path)?.clone()?;
        let headers = req.headers_mut();
        headers.insert(HOST, self.host.clone()?);
        headers.insert(USER_AGENT, self.agent.clone());
        headers.insert(CONNECTION, self.connection.clone());
        Some(req)
    }
}

/// The connections of one worker thread, until their tickets run out: each
/// client's `streams` lanes run the request loop over its one connection.
async fn worker_thread(
    clients: Vec<(u32, Arc<Slot>)>,
    cfg: Arc<HttpProbeConfig>,
    tickets: Tickets,
    tx: mpsc::Sender<Vec<Sample>>,
    cancel: CancellationToken,
) {
    let parts = Arc::new(RequestParts::new(&cfg));
    let mut set = tokio::task::JoinSet::new();
    for (client, slot) in clients {
        for _ in 0..cfg.wire.streams {
            set.spawn(worker(
                client,
                slot.clone(),
                parts.clone(),
                cfg.clone(),
                tickets.clone(),
                tx.clone(),
                cancel.clone(),
            ));
        }
    }
    while set.join_next().await.is_some() {}
}

/// Open loop: releases request `i` at `start + i / rate` to the worker
/// threads in turn, sleeping then spinning to the instant as the UDP pacer
/// does. Tickets carry their scheduled instant, so however late a request
/// actually leaves is charged to its latency and shows as the pacing error.
fn schedule(
    queues: Vec<mpsc::Sender<Ticket>>,
    total: u64,
    rate: f64,
    start: Instant,
    deadline: Option<Instant>,
    cancel: &CancellationToken,
) {
    let threads = queues.len().max(1) as u64;
    for index in 0..total {
        let due = start + Duration::from_secs_f64(index as f64 / rate);
        if deadline.is_some_and(|d| due >= d) || !wait_until(due, cancel) {
            break;
        }
        let ticket = Ticket {
            index,
            scheduled: Some(due),
        };
        // A full queue (the server is far behind) holds the pacer back; the
        // tickets still carry their own schedule.
        let queue = &queues[(index % threads) as usize];
        if queue.blocking_send(ticket).is_err() {
            break;
        }
    }
}

/// The one worker loop, for both modes and both protocols: one lane of a
/// client's connection, requests one after another, samples handed to the
/// collector a batch at a time.
async fn worker(
    client: u32,
    slot: Arc<Slot>,
    parts: Arc<RequestParts>,
    cfg: Arc<HttpProbeConfig>,
    tickets: Tickets,
    tx: mpsc::Sender<Vec<Sample>>,
    cancel: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut batch_since = Instant::now();
    // One cancellation future for the whole loop, not one per request.
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        let ticket = tokio::select! {
            _ = &mut cancelled => break,
            t = tickets.next() => match t {
                Some(t) => t,
                None => break,
            },
        };
        let path = (ticket.index % cfg.paths.len() as u64) as usize;
        let sent_at = Instant::now();
        let started = ticket.scheduled.unwrap_or(sent_at).min(sent_at);
        let mut timing = Timing::default();
        let attempt = tokio::time::timeout(
            cfg.timeout,
            request(&slot, &cfg, &parts, path, started, &mut timing),
        );
        let outcome = tokio::select! {
            _ = &mut cancelled => break,
            r = attempt => r,
        };
        let end = Instant::now();
        let mut sample = Sample {
            client,
            path,
            status: None,
            bytes: 0,
            latency: end - started,
            service: end - sent_at,
            late: ticket
                .scheduled
                .map(|due| sent_at.saturating_duration_since(due)),
            started,
            cache: CacheMark::None,
            error: None,
            timing,
        };
        match outcome {
            Ok(Ok(r)) => {
                sample.status = Some(r.status);
                sample.bytes = r.bytes;
                sample.cache = r.cache;
            }
            // An HTTP/1.1 connection that failed was taken out of its slot
            // and dropped; an HTTP/2 one stays for the other streams unless
            // it is closed (checked at the next request).
            Ok(Err(class)) => sample.error = Some(class),
            Err(_elapsed) => sample.error = Some("timeout"),
        }
        if batch.is_empty() {
            batch_since = end;
        }
        batch.push(sample);
        if batch.len() >= BATCH || end - batch_since >= BATCH_AGE {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.send(full).await.is_err() {
                return;
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch).await;
    }
}

/// One request over the client's connection (opened or reopened as
/// needed), body read to the end. Errors are classes; `timing` is filled as
/// the request goes, so a timeout keeps what was measured before it.
async fn request(
    slot: &Slot,
    cfg: &HttpProbeConfig,
    parts: &RequestParts,
    path: usize,
    started: Instant,
    timing: &mut Timing,
) -> Result<Response, &'static str> {
    let sender = acquire(slot, cfg, timing).await?;
    let protocol = timing.protocol.unwrap_or(Protocol::Http1);
    let req = parts.request(path, protocol).ok_or("other")?;
    let (resp, sender) = match sender {
        Sender::H1(mut s) => (s.send_request(req).await, Sender::H1(s)),
        Sender::H2(mut s) => (s.send_request(req).await, Sender::H2(s)),
    };
    let resp = resp.map_err(classify_hyper)?;
    timing.ttfb = Some(started.elapsed());
    let status = resp.status().as_u16();
    let cache = CacheMark::from_header(resp.headers().get("x-cache").and_then(|v| v.to_str().ok()));
    let mut body = resp.into_body();
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(classify_hyper)?;
        if let Some(data) = frame.data_ref() {
            bytes += data.len() as u64;
        }
    }
    // An HTTP/1.1 connection goes back for the next request.
    if let (Sender::H1(_), true) = (&sender, cfg.keep_alive) {
        *slot.live.lock().await = Some(Live {
            sender,
            protocol,
            opened: None,
        });
    }
    Ok(Response {
        status,
        bytes,
        cache,
    })
}

/// The sender for the next request: the slot's connection if the server
/// has not closed it (an HTTP/1.1 one taken out, an HTTP/2 one cloned),
/// else a new one. Other lanes wait while it opens: a client has one
/// connection.
async fn acquire(
    slot: &Slot,
    cfg: &HttpProbeConfig,
    timing: &mut Timing,
) -> Result<Sender, &'static str> {
    let mut live = slot.live.lock().await;
    if let Some(mut l) = live.take() {
        if l.sender.usable().await {
            timing.protocol = Some(l.protocol);
            if let Some((connect, tls)) = l.opened.take() {
                (timing.connect, timing.tls) = (connect, tls);
            }
            if let Sender::H2(s) = &l.sender {
                let s = s.clone();
                *live = Some(l);
                return Ok(Sender::H2(s));
            }
            return Ok(l.sender);
        }
    }
    let sender = open(cfg, timing).await?;
    if let (Sender::H2(s), true) = (&sender, cfg.keep_alive) {
        *live = Some(Live {
            sender: Sender::H2(s.clone()),
            protocol: Protocol::Http2,
            opened: None,
        });
    }
    Ok(sender)
}

/// Opens a connection: TCP, then TLS if asked, then HTTP/1.1 or HTTP/2 (by
/// ALPN over TLS, by prior knowledge in clear text), timing each step.
async fn open(cfg: &HttpProbeConfig, timing: &mut Timing) -> Result<Sender, &'static str> {
    let t = Instant::now();
    let stream = TcpStream::connect(cfg.target)
        .await
        .map_err(|e| classify_io(&e))?;
    timing.connect = Some(t.elapsed());
    let _ = stream.set_nodelay(true);
    let Some(tls) = &cfg.wire.tls else {
        return handshake(stream, cfg.wire.http2, timing).await;
    };
    let t = Instant::now();
    let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
        .connect(tls.name.clone(), stream)
        .await
        .map_err(|e| crate::tls::failure_class(&e))?;
    timing.tls = Some(t.elapsed());
    let h2 = stream.get_ref().1.alpn_protocol() == Some(ALPN_H2);
    handshake(stream, h2, timing).await
}

/// Starts HTTP/1.1 or HTTP/2 on an open connection; the connection's task
/// runs until the senders are dropped or the peer closes.
async fn handshake<S>(stream: S, h2: bool, timing: &mut Timing) -> Result<Sender, &'static str>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    if h2 {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(classify_hyper)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        timing.protocol = Some(Protocol::Http2);
        return Ok(Sender::H2(sender));
    }
    let (sender, connection) = http1::handshake(io).await.map_err(classify_hyper)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    timing.protocol = Some(Protocol::Http1);
    Ok(Sender::H1(sender))
}

fn classify_io(e: &io::Error) -> &'static str {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "refused",
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => "reset",
        TimedOut => "timeout",
        _ => "other",
    }
}

fn classify_hyper(e: hyper::Error) -> &'static str {
    if e.is_parse() || e.is_parse_status() {
        return "bad_response";
    }
    if e.is_timeout() {
        return "timeout";
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return classify_io(io);
        }
        source = s.source();
    }
    if e.is_incomplete_message() || e.is_canceled() || e.is_closed() {
        return "reset";
    }
    "other"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: Option<u16>, cache: CacheMark, error: Option<&'static str>) -> Sample {
        Sample {
            client: 0,
            path: 0,
            status,
            bytes: 100,
            latency: Duration::from_millis(10),
            service: Duration::from_millis(4),
            late: None,
            started: Instant::now(),
            cache,
            error,
            timing: Timing::default(),
        }
    }

    #[test]
    fn the_tally_counts_each_outcome_once() {
        let mut t = Tally::default();
        t.add(&sample(Some(200), CacheMark::Hit, None), false);
        t.add(&sample(Some(200), CacheMark::Miss, None), false);
        t.add(&sample(Some(503), CacheMark::None, None), false);
        t.add(&sample(None, CacheMark::None, Some("timeout")), false);
        t.add(&sample(None, CacheMark::None, None), false);
        let r = t.report(SystemTime::UNIX_EPOCH, Duration::from_secs(1), false);
        assert_eq!(
            (r.requests, r.responses, r.errors, r.bytes),
            (5, 3, 3, 500),
            "5xx and transport failures are both errors"
        );
        assert_eq!((r.cache_hits, r.cache_marked), (1, 2));
        assert_eq!(r.latency.map(|l| l.count), Some(3), "responses only");
        assert_eq!(r.service, None, "closed loop: no separate service time");
        assert_eq!(r.status_counts, BTreeMap::from([(200, 2), (503, 1)]));
        assert_eq!(
            r.errors_by_class,
            BTreeMap::from([("other".to_string(), 1), ("timeout".to_string(), 1)])
        );
    }

    #[test]
    fn an_open_loop_tally_reports_mean_and_largest_lateness_errors_included() {
        let mut t = Tally::default();
        for (ms, error) in [(2, None), (4, None), (0, Some("reset"))] {
            let mut s = sample(error.is_none().then_some(200), CacheMark::None, error);
            s.late = Some(Duration::from_millis(ms));
            t.add(&s, true);
        }
        let row = t
            .report(SystemTime::UNIX_EPOCH, Duration::from_secs(1), false)
            .summary();
        assert_eq!(
            (row.pacing_mean_ms, row.pacing_max_ms),
            (Some(2.0), Some(4.0))
        );
        let mut closed = Tally::default();
        closed.add(&sample(Some(200), CacheMark::None, None), false);
        let row = closed
            .report(SystemTime::UNIX_EPOCH, Duration::from_secs(1), false)
            .summary();
        assert_eq!((row.pacing_mean_ms, row.pacing_max_ms), (None, None));
    }

    #[test]
    fn an_open_loop_tally_keeps_service_time_apart_from_latency() {
        let mut t = Tally::default();
        t.add(&sample(Some(200), CacheMark::None, None), true);
        let r = t.report(SystemTime::UNIX_EPOCH, Duration::from_secs(1), true);
        assert_eq!(r.latency.map(|l| l.max_ms), Some(10.0));
        assert_eq!(r.service.map(|l| l.max_ms), Some(4.0));
        assert!(r.interrupted());
    }
}
