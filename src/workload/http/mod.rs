//! The HTTP load workload: `concurrency` workers running one generic loop
//! (take a ticket, send a request over a keep-alive connection, read the
//! whole body) and one collector that aggregates their samples. Used by
//! `netrun probe http` and the scenario runner; no files, no tables here.
//!
//! Connections (`conn.rs`): TCP, TLS with rustls, HTTP/1.1 or HTTP/2 (ALPN
//! over TLS, prior knowledge in clear text); with HTTP/2 a client's
//! `streams` lanes share its one connection. Each request reports where its
//! time went (connect, TLS, time to first byte) and its protocol.
//!
//! Tickets come from a counter (closed loop: a worker asks for the next
//! request when its last one finished) or from a scheduler that stamps each
//! ticket with its scheduled start at `rate` per second (open loop). In open
//! loop latency counts from the scheduled start, so a slow server cannot hide
//! the requests it delayed (no coordinated omission); the service time from
//! the actual send is reported too.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderValue, CONNECTION, HOST, USER_AGENT};
use hyper::{Request, Uri};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use anyhow::Context as _;

mod conn;
mod h1;
mod pipeline;
mod tally;

use conn::{classify_hyper, Lane, Protocol, Sender, SharedConn, Timing};
use h1::Failure;
use pipeline::Group;
pub use tally::HttpReport;
use tally::Tally;

use super::batch::Batcher;
use super::pacing::Pacing;
use super::source::{self, Feed, Ramp, Source};
use super::{check_duration, Progress, Setting, SettingError};
use crate::error::Error;
use crate::metrics::qos;
use crate::metrics::summary::round3;
use crate::metrics::{CacheMark, HttpRequestRow};
use crate::tls::ClientTls;
use crate::traffic::Profile;

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
    /// Catalog or trace instead of `paths`; arrivals; ramping stages.
    pub traffic: source::Traffic,
    /// TLS and the HTTP version.
    pub wire: HttpWire,
    /// Client threads, each with its own connections (wrk's `-t`); `None`:
    /// one per core. Never more than `concurrency`.
    pub threads: Option<u32>,
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
    /// Clear-text HTTP/1.1: requests written back to back per connection
    /// before their responses are read (pipelining, as wrk's pipeline
    /// script or `h2load -m`); 1: one at a time. A request's latency then
    /// counts from the write of its group (or its schedule, open loop),
    /// so the wait behind earlier responses on the connection is in it.
    pub pipeline: u32,
}

impl Default for HttpWire {
    /// Clear-text HTTP/1.1.
    fn default() -> Self {
        HttpWire {
            tls: None,
            http2: false,
            streams: 1,
            pipeline: 1,
        }
    }
}

/// Most HTTP/2 streams per connection a workload may ask for: what
/// netrun's servers allow (nginx allows 128 by default).
pub const MAX_STREAMS: u32 = crate::server::H2_MAX_STREAMS;

/// Most requests a connection may pipeline at once.
pub const MAX_PIPELINE: u32 = 256;

/// `requests` meaning "no count limit": the workload runs until its
/// `duration` ends (as `wrk -d` and `oha -z` do).
pub const UNTIL_DURATION: u64 = u64::MAX;

impl HttpProbeConfig {
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.requests == 0 {
            return Err(Setting::Requests.error("requests must be at least 1"));
        }
        // A trace ends by itself.
        let endless = !matches!(self.traffic.source, Source::Trace(_));
        if self.requests == UNTIL_DURATION && self.run_length().is_none() && endless {
            return Err(Setting::Requests.error(
                "give a number of requests, or a duration to run for (--duration / `duration`)",
            ));
        }
        if self.concurrency == 0 {
            return Err(Setting::Concurrency.error("concurrency must be at least 1"));
        }
        // One connection per worker.
        super::check_sockets(Setting::Concurrency, u64::from(self.concurrency), 1)?;
        self.validate_wire()?;
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
        if let Ramp::Rate(p) | Ramp::Concurrency(p) = &self.traffic.ramp {
            let levels = std::iter::once(p.start).chain(p.stages.iter().map(|s| s.target));
            if levels
                .clone()
                .any(|l| !(l.is_finite() && (0.0..=10_000_000.0).contains(&l)))
                || !levels.clone().any(|l| l > 0.0)
            {
                return Err(Setting::Rate
                    .error("stage levels must be 0 to 10000000, and at least one above 0"));
            }
        }
        if !matches!(self.traffic.source, Source::Paths) {
            return Ok(());
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

    /// Speaks TLS to the target, trusting `trust`: ALPN offers HTTP/2 when
    /// the wire asks for it, the certificate is checked against the
    /// authority's host. Errors are input errors naming a bad CA file.
    pub fn use_tls(&mut self, trust: &crate::tls::Trust) -> Result<(), Error> {
        self.wire.tls = Some(ClientTls::new(trust, &self.authority, self.wire.http2)?);
        Ok(())
    }

    fn validate_wire(&self) -> Result<(), SettingError> {
        let streams = self.wire.streams;
        if !(1..=MAX_STREAMS).contains(&streams) {
            return Err(Setting::Streams.error(format!(
                "streams must be 1 to {MAX_STREAMS} (concurrent HTTP/2 streams per connection)"
            )));
        }
        if streams > 1 && !self.wire.http2 {
            return Err(Setting::Streams.error(
                "streams > 1 needs HTTP/2 (http_version = \"2\", --http2): HTTP/1.1 sends one request at a time per connection",
            ));
        }
        if streams > 1 && !self.keep_alive {
            return Err(Setting::Streams.error(
                "streams > 1 share one kept-alive connection; remove keep_alive = false (--no-keep-alive) or streams",
            ));
        }
        let pipeline = self.wire.pipeline;
        if !(1..=MAX_PIPELINE).contains(&pipeline) {
            return Err(Setting::Pipeline.error(format!(
                "pipeline must be 1 to {MAX_PIPELINE} (requests written back to back per connection)"
            )));
        }
        if pipeline > 1 && (self.wire.http2 || self.wire.tls.is_some()) {
            return Err(Setting::Pipeline.error(
                "pipeline > 1 needs clear-text HTTP/1.1 (http://, no --http2 / http_version = \"2\"); HTTP/2 has streams instead",
            ));
        }
        if pipeline > 1 && !self.keep_alive {
            return Err(Setting::Pipeline.error(
                "pipeline > 1 shares one kept-alive connection; remove keep_alive = false (--no-keep-alive) or pipeline",
            ));
        }
        Ok(())
    }

    fn open_loop(&self) -> bool {
        self.rate.is_some() || self.traffic.paced()
    }

    /// When the run stops starting requests: its `duration` or the end of
    /// its stages, whichever comes first.
    fn run_length(&self) -> Option<Duration> {
        match (self.duration, self.traffic.ramp_length()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// How many requests the workload should make, for progress bars: the
    /// count, or for a duration-bound run, rate × duration (0 when a closed
    /// loop's count is unknown in advance).
    pub fn planned_requests(&self) -> u64 {
        if self.requests != UNTIL_DURATION {
            return self.requests;
        }
        if let Ramp::Rate(p) = &self.traffic.ramp {
            return p.total().map_or(0, |n| n.ceil() as u64);
        }
        match (self.rate, self.duration) {
            (Some(r), Some(d)) => (r * d.as_secs_f64()).ceil() as u64,
            _ => 0,
        }
    }
}

/// One request to make; `scheduled` is set in open loop.
struct Ticket {
    index: u64,
    scheduled: Option<Instant>,
    /// A trace's object, as its path; otherwise the index picks the path
    /// or catalog draw.
    object: Option<String>,
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
    /// Open loop or a trace: this thread's queue of runs of tickets, filled
    /// by the feeding thread, and the tickets of the runs its connections
    /// took, which any of them takes next (a queue within the thread, so a
    /// connection waiting for work is woken by either). Runs, not single
    /// tickets, so that a fast replay wakes a thread (and the feeder) once
    /// per run rather than once per request.
    Open {
        queue: async_channel::Receiver<Vec<Ticket>>,
        taken: (
            async_channel::Sender<Ticket>,
            async_channel::Receiver<Ticket>,
        ),
    },
}

impl Tickets {
    async fn next(&self) -> Option<Ticket> {
        match self {
            Tickets::Closed { .. } => self.try_next(),
            Tickets::Open {
                queue,
                taken: (put, take),
            } => loop {
                if let Ok(t) = take.try_recv() {
                    return Some(t);
                }
                tokio::select! {
                    biased;
                    // Never closed: every connection holds a sender.
                    t = take.recv() => return t.ok(),
                    run = queue.recv() => {
                        // The feeder is done: what the thread took is left.
                        let Ok(run) = run else {
                            return take.try_recv().ok();
                        };
                        let mut run = run.into_iter();
                        let first = run.next();
                        for t in run {
                            // Unbounded, and open while this sender lives.
                            let _ = put.try_send(t);
                        }
                        if first.is_some() {
                            return first;
                        }
                    }
                }
            },
        }
    }

    /// The next ticket if one is there now, without waiting: a closed
    /// loop's next (`None` once done), an open loop's ticket already
    /// released (pipelining groups what is due, never waits for more).
    fn try_next(&self) -> Option<Ticket> {
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
                    object: None,
                })
            }
            Tickets::Open {
                queue,
                taken: (put, take),
            } => {
                if let Ok(t) = take.try_recv() {
                    return Some(t);
                }
                let mut run = queue.try_recv().ok()?.into_iter();
                let first = run.next();
                for t in run {
                    // Unbounded, and open while this sender lives.
                    let _ = put.try_send(t);
                }
                first
            }
        }
    }
}

/// Most tickets the feeding thread hands a worker thread at once: a fast
/// replay fills runs this long; a paced one hands over what is due.
const RUN: usize = 64;
/// Runs waiting in a worker thread's queue before the feeder waits.
const QUEUED_RUNS: usize = 64;

/// One finished request, from a worker to the collector.
struct Sample {
    client: u32,
    want: Want,
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

impl Sample {
    /// The sample of a request sent at `sent_at` (due at `scheduled` in
    /// open loop) that ended at `end` with `outcome`.
    fn new(
        client: u32,
        want: Want,
        scheduled: Option<Instant>,
        sent_at: Instant,
        end: Instant,
        timing: Timing,
        outcome: Result<Response, &'static str>,
    ) -> Sample {
        let started = started_at(scheduled, sent_at);
        let (status, bytes, cache, error) = match outcome {
            Ok(r) => (Some(r.status), r.bytes, r.cache, None),
            Err(class) => (None, 0, CacheMark::None, Some(class)),
        };
        Sample {
            client,
            want,
            status,
            bytes,
            latency: end - started,
            service: end - sent_at,
            late: scheduled.map(|due| sent_at.saturating_duration_since(due)),
            started,
            cache,
            error,
            timing,
        }
    }
}

/// Where a request's latency starts: its scheduled start in open loop
/// (never later than the send), else the send.
fn started_at(scheduled: Option<Instant>, sent_at: Instant) -> Instant {
    scheduled.unwrap_or(sent_at).min(sent_at)
}

/// What one request asks for.
#[derive(Debug, Clone)]
enum Want {
    /// `paths[i]`.
    Listed(usize),
    /// A catalog's or trace's object, by its path (`Object::path`, built
    /// once per request and moved into its row).
    Object(String),
}

impl Want {
    /// What ticket `index` asks for: its trace object, its catalog draw,
    /// or its listed path.
    fn of(object: Option<String>, index: u64, cfg: &HttpProbeConfig) -> Want {
        match (object, &cfg.traffic.source) {
            (Some(path), _) => Want::Object(path),
            (None, Source::Catalog(c)) => Want::Object(c.request(index).path()),
            (None, _) => Want::Listed((index % cfg.paths.len().max(1) as u64) as usize),
        }
    }

    fn into_path(self, paths: &[String]) -> String {
        match self {
            Want::Listed(i) => paths.get(i).cloned().unwrap_or_default(),
            Want::Object(path) => path,
        }
    }
}

/// A response read to its last byte.
struct Response {
    status: u16,
    bytes: u64,
    cache: CacheMark,
}

/// Samples travel to the collector in batches of this many, one batch per
/// worker thread (its lanes add to it in turn): one channel hand-off, and
/// one wake-up of the collector, per batch, not per request or lane.
const BATCH: usize = 1024;
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
/// scheduled instant (at real-time priority where allowed; else sleep,
/// then spin: tokio's timer is a millisecond late). The samples come back in batches to the collector (this
/// function), which keeps the histograms and calls `on_request`.
pub async fn run_http(
    config: &HttpProbeConfig,
    on_request: &mut (dyn FnMut(HttpRequestRow) + Send),
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> anyhow::Result<HttpReport> {
    run(config, Some(on_request), progress, cancel).await
}

/// [`run_http`] without per-request rows (`netrun probe http` without
/// `--csv`): the same load and report, no row built per request.
pub async fn run_http_summary(
    config: &HttpProbeConfig,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> anyhow::Result<HttpReport> {
    run(config, None, progress, cancel).await
}

async fn run(
    config: &HttpProbeConfig,
    mut on_request: Option<&mut (dyn FnMut(HttpRequestRow) + Send)>,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> anyhow::Result<HttpReport> {
    config.validate().map_err(Error::from)?;
    // A trace that cannot be opened is the user's to fix (exit 2).
    let feed =
        source::feed(&config.traffic, config.rate).map_err(|e| Error::input(e.to_string()))?;
    progress.set_total(config.planned_requests());
    let (tx, mut rx) = mpsc::channel::<Vec<Sample>>(64);
    let pool = Pool::spawn(config, feed.is_some(), tx, cancel).await?;
    // The clock starts once the threads' runtimes and connections are up.
    let started_at = SystemTime::now();
    let start = Instant::now();
    let deadline = config.run_length().map(|d| start + d);
    let Pool {
        handles,
        starts,
        queues,
    } = pool;
    for s in starts {
        let _ = s.send(start);
    }
    let pacer = feed.map(|feed| {
        let (total, cancel) = (config.requests, cancel.clone());
        std::thread::Builder::new()
            .name("netrun-http-pacer".into())
            .spawn(move || schedule(queues, total, feed, start, deadline, &cancel))
    });
    if let Some(Err(e)) = pacer {
        // Without a pacer the queues are closed: the workers end at once.
        return Err(anyhow::Error::new(e).context("cannot start the HTTP pacing thread"));
    }

    // The collector: the only place samples are aggregated.
    let mut tally = Tally::default();
    let open_loop = config.open_loop();
    while let Some(batch) = rx.recv().await {
        let n = batch.len() as u64;
        for s in batch {
            tally.add(&s, open_loop);
            if let Some(f) = on_request.as_mut() {
                f(row(s, config, start));
            }
        }
        progress.advance(n);
        progress.replies(tally.responses, Some(tally.errors));
    }
    let duration = start.elapsed();
    // Every sender is gone, so the threads are ending: joining waits for
    // little more than their runtimes' teardown.
    let fed = join(handles, pacer.and_then(Result::ok)).await?;
    // The trace changed under the run (it was checked before): the user's to fix.
    if let Err(e) = fed {
        return Err(Error::input(e.to_string()).into());
    }
    Ok(tally.report(started_at, duration, cancel.is_cancelled()))
}

/// A sample as a row of `http_requests.csv` (its path moved, not copied).
fn row(s: Sample, config: &HttpProbeConfig, start: Instant) -> HttpRequestRow {
    let ms = |d: Duration| round3(qos::ns_to_ms(d.as_nanos() as f64));
    HttpRequestRow {
        variant: String::new(),
        workload: String::new(),
        client: s.client,
        path: s.want.into_path(&config.paths),
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
        protocol: s.timing.protocol.map(|p| p.as_str().into()),
        // The actual send: the start, plus how late it left its schedule.
        send_offset_ms: Some(ms(
            (s.started + s.late.unwrap_or_default()).saturating_duration_since(start)
        )),
    }
}

/// The worker threads of a run, connected and waiting for the clock.
struct Pool {
    handles: Vec<std::thread::JoinHandle<()>>,
    /// Each thread's start signal: the run's start instant.
    starts: Vec<std::sync::mpsc::Sender<Instant>>,
    /// Open loop: each thread's ticket queue, for the pacer.
    queues: Vec<async_channel::Sender<Vec<Ticket>>>,
}

impl Pool {
    /// Starts one thread per core, each with its share of the clients, and
    /// waits until every thread has opened its connections (or `cancel`).
    async fn spawn(
        config: &HttpProbeConfig,
        open_loop: bool,
        tx: mpsc::Sender<Vec<Sample>>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Pool> {
        let threads = worker_threads(config.threads, config.concurrency);
        let runtimes = (0..threads)
            .map(|_| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            })
            .collect::<io::Result<Vec<_>>>()
            .context("cannot start an HTTP worker runtime")?;
        let cfg = Arc::new(config.clone());
        let counter = Arc::new(AtomicU64::new(0));
        // Each thread drops its clone once connected: `recv` ends when all have.
        let (ready_tx, mut ready_rx) = mpsc::channel::<()>(1);
        let mut pool = Pool {
            handles: Vec::with_capacity(threads as usize),
            starts: Vec::new(),
            queues: Vec::new(),
        };
        for (thread, runtime) in (0..threads).zip(runtimes) {
            let queue = open_loop.then(|| {
                let (qtx, qrx) = async_channel::bounded(QUEUED_RUNS);
                pool.queues.push(qtx);
                qrx
            });
            let (start_tx, start_rx) = std::sync::mpsc::channel::<Instant>();
            pool.starts.push(start_tx);
            let clients: Vec<u32> = (thread..config.concurrency)
                .step_by(threads as usize)
                .collect();
            let (cfg, tx, cancel, ready) =
                (cfg.clone(), tx.clone(), cancel.clone(), ready_tx.clone());
            let counter = counter.clone();
            let handle = std::thread::Builder::new()
                .name(format!("netrun-http-{thread}"))
                .spawn(move || {
                    let lanes = runtime.block_on(preconnect(&clients, &cfg, &cancel));
                    drop(ready);
                    // Nothing when the run ended before its clock started.
                    let Ok(start) = start_rx.recv() else {
                        return;
                    };
                    let tickets = match queue {
                        Some(queue) => Tickets::Open {
                            queue,
                            taken: async_channel::unbounded(),
                        },
                        None => Tickets::Closed {
                            next: counter,
                            total: cfg.requests,
                            deadline: cfg.run_length().map(|d| start + d),
                        },
                    };
                    let ramp = match &cfg.traffic.ramp {
                        Ramp::Concurrency(p) => Some(Arc::new((p.clone(), start))),
                        _ => None,
                    };
                    runtime.block_on(worker_thread(lanes, cfg, tickets, tx, cancel, ramp));
                })
                .context("cannot start an HTTP worker thread")?;
            pool.handles.push(handle);
        }
        drop(ready_tx);
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = ready_rx.recv() => {}
        }
        Ok(pool)
    }
}

/// Joins every thread, naming each one that panicked with its panic
/// message (a worker's failure must not vanish from the report); returns
/// what the pacer's feed said. Threads all finished (their samples are in,
/// so usually they are) are joined here; otherwise on the blocking pool,
/// whose first use starts a thread.
async fn join(
    handles: Vec<std::thread::JoinHandle<()>>,
    pacer: Option<std::thread::JoinHandle<Result<(), crate::traffic::TraceError>>>,
) -> anyhow::Result<Result<(), crate::traffic::TraceError>> {
    let finished =
        handles.iter().all(|h| h.is_finished()) && pacer.as_ref().map_or(true, |p| p.is_finished());
    let (failures, fed) = if finished {
        join_now(handles, pacer)
    } else {
        tokio::task::spawn_blocking(move || join_now(handles, pacer))
            .await
            .context("waiting for the HTTP worker threads")?
    };
    if !failures.is_empty() {
        anyhow::bail!("{}", failures.join("; "));
    }
    Ok(fed)
}

/// [`join`]'s joining: waits for each thread in turn.
fn join_now(
    handles: Vec<std::thread::JoinHandle<()>>,
    pacer: Option<std::thread::JoinHandle<Result<(), crate::traffic::TraceError>>>,
) -> (Vec<String>, Result<(), crate::traffic::TraceError>) {
    let mut failures = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        if let Err(panic) = h.join() {
            failures.push(format!(
                "HTTP worker thread {i} panicked: {}",
                panic_message(&*panic)
            ));
        }
    }
    let mut fed = Ok(());
    if let Some(p) = pacer {
        match p.join() {
            Ok(r) => fed = r,
            Err(panic) => failures.push(format!(
                "the HTTP pacing thread panicked: {}",
                panic_message(&*panic)
            )),
        }
    }
    (failures, fed)
}

/// What a thread's panic said (`panic!` with a message or a format string),
/// or that it said nothing readable.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a panic without a message".to_string(),
    }
}

/// The threads asked for, or one per core; never more than there are
/// connections.
fn worker_threads(asked: Option<u32>, concurrency: u32) -> u32 {
    let threads = asked.unwrap_or_else(|| {
        let cores = crate::server::cores().map_or(1, |n| n.get());
        u32::try_from(cores).unwrap_or(1)
    });
    threads.clamp(1, concurrency.max(1))
}

/// A client's request lanes: one that owns its connection, or for HTTP/2
/// with several streams, `streams` lanes sharing it.
type Lanes = Vec<(u32, Lane)>;

/// Opens the connections of `clients` (keep-alive only) before the clock
/// starts, as wrk and h2load do, so the first requests do not carry a TCP
/// (or TLS) handshake; and gives each client its lanes.
async fn preconnect(clients: &[u32], cfg: &HttpProbeConfig, cancel: &CancellationToken) -> Lanes {
    let attempts = clients.iter().map(|_| async {
        if cfg.keep_alive {
            conn::preopen(cfg).await
        } else {
            None
        }
    });
    let opened = tokio::select! {
        _ = cancel.cancelled() => Vec::new(),
        opened = futures_util::future::join_all(attempts) => opened,
    };
    let mut opened = opened.into_iter();
    let mut lanes = Vec::with_capacity(clients.len() * cfg.wire.streams as usize);
    for &client in clients {
        let live = opened.next().flatten();
        if cfg.wire.streams <= 1 {
            lanes.push((client, Lane::Own(live)));
            continue;
        }
        let shared = Arc::new(SharedConn::new(live));
        for _ in 0..cfg.wire.streams {
            lanes.push((client, Lane::Shared(shared.clone(), 0)));
        }
    }
    lanes
}

/// What every request of a run shares, parsed once: the paths as URIs
/// (`None`: not a valid request target, each such request fails as `other`)
/// and the header values. HTTP/2 requests carry the absolute URI (its
/// `:scheme` and `:authority`) and no connection headers.
struct RequestParts {
    uris: Vec<Option<Uri>>,
    absolute: Vec<Option<Uri>>,
    /// `http://host:port` or `https://host:port`.
    origin: String,
    host: Option<HeaderValue>,
    agent: HeaderValue,
    connection: HeaderValue,
    /// Clear-text HTTP/1.1: each listed path's request head, whole.
    heads: Vec<Option<Vec<u8>>>,
    close: bool,
}

impl RequestParts {
    fn new(cfg: &HttpProbeConfig) -> Self {
        let scheme = if cfg.wire.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let origin = format!("{scheme}://{}", cfg.authority);
        let uris: Vec<Option<Uri>> = cfg.paths.iter().map(|p| p.parse().ok()).collect();
        let host = HeaderValue::from_str(&cfg.authority).ok();
        let agent = HeaderValue::from_static(concat!("netrun/", env!("CARGO_PKG_VERSION")));
        let heads = cfg
            .paths
            .iter()
            .zip(&uris)
            .map(|(path, uri)| {
                let (host, _) = (host.as_ref()?, uri.as_ref()?);
                let mut head = Vec::new();
                h1::write_head(
                    &mut head,
                    path,
                    host.as_bytes(),
                    agent.as_bytes(),
                    !cfg.keep_alive,
                );
                Some(head)
            })
            .collect();
        RequestParts {
            heads,
            close: !cfg.keep_alive,
            uris,
            absolute: cfg
                .paths
                .iter()
                .map(|p| format!("{origin}{p}").parse().ok())
                .collect(),
            origin,
            host,
            agent,
            connection: HeaderValue::from_static(if cfg.keep_alive {
                "keep-alive"
            } else {
                "close"
            }),
        }
    }

    /// The clear-text HTTP/1.1 request head for `want`: prebuilt for a
    /// listed path, else written into `scratch` (an object's path is
    /// percent-encoded, always a valid request target).
    fn h1_head<'a>(&'a self, want: &Want, scratch: &'a mut Vec<u8>) -> Option<&'a [u8]> {
        match want {
            Want::Listed(i) => self.heads.get(*i)?.as_deref(),
            Want::Object(path) => {
                let host = self.host.as_ref()?.as_bytes();
                h1::write_head(scratch, path, host, self.agent.as_bytes(), self.close);
                Some(scratch)
            }
        }
    }

    /// Appends the clear-text HTTP/1.1 request head for `want` to `out`
    /// (pipelined heads, back to back).
    fn append_h1_head(&self, want: &Want, out: &mut Vec<u8>) -> Option<()> {
        match want {
            Want::Listed(i) => out.extend_from_slice(self.heads.get(*i)?.as_deref()?),
            Want::Object(path) => {
                let host = self.host.as_ref()?.as_bytes();
                h1::append_head(out, path, host, self.agent.as_bytes(), self.close);
            }
        }
        Some(())
    }

    fn request(&self, want: &Want, protocol: Protocol) -> Option<Request<Empty<Bytes>>> {
        let mut req = Request::new(Empty::new());
        if protocol == Protocol::Http2 {
            *req.uri_mut() = match want {
                Want::Listed(i) => self.absolute.get(*i)?.clone()?,
                Want::Object(path) => format!("{}{path}", self.origin).parse().ok()?,
            };
            *req.version_mut() = hyper::Version::HTTP_2;
            req.headers_mut().insert(USER_AGENT, self.agent.clone());
            return Some(req);
        }
        *req.uri_mut() = match want {
            Want::Listed(i) => self.uris.get(*i)?.clone()?,
            Want::Object(path) => path.parse().ok()?,
        };
        let headers = req.headers_mut();
        headers.insert(HOST, self.host.clone()?);
        headers.insert(USER_AGENT, self.agent.clone());
        headers.insert(CONNECTION, self.connection.clone());
        Some(req)
    }
}

/// The lanes of one worker thread, until their tickets run out.
async fn worker_thread(
    lanes: Lanes,
    cfg: Arc<HttpProbeConfig>,
    tickets: Tickets,
    tx: mpsc::Sender<Vec<Sample>>,
    cancel: CancellationToken,
    ramp: Option<Arc<(Profile, Instant)>>,
) {
    let parts = Arc::new(RequestParts::new(&cfg));
    let outbox = Arc::new(Outbox::new(tx));
    let mut set = tokio::task::JoinSet::new();
    for (client, lane) in lanes {
        let shared = Shared {
            parts: parts.clone(),
            cfg: cfg.clone(),
            tickets: tickets.clone(),
            outbox: outbox.clone(),
            ramp: ramp.clone(),
        };
        set.spawn(worker(client, lane, shared, cancel.clone()));
    }
    while set.join_next().await.is_some() {}
}

/// Open loop: releases each request of the feed at its due instant to the
/// worker threads in turn, sleeping then spinning to the instant as the UDP
/// pacer does. Tickets carry their scheduled instant, so however late a
/// request actually leaves is charged to its latency and shows as the
/// pacing error. What is due is handed over together (a run of up to
/// `RUN` tickets) before the wait for the next instant; a trace replayed
/// `fast` has no instants: its requests go out in runs of `RUN`, in trace
/// order, as the queues take them.
fn schedule(
    queues: Vec<async_channel::Sender<Vec<Ticket>>>,
    total: u64,
    feed: Feed,
    start: Instant,
    deadline: Option<Instant>,
    cancel: &CancellationToken,
) -> Result<(), crate::traffic::TraceError> {
    let mut out = Handout {
        queues,
        next: 0,
        run: Vec::with_capacity(RUN),
    };
    // Paced sends only (a `fast` trace never waits): see `Pacing`.
    let mut pacing = None;
    for (index, item) in (0..total).zip(feed) {
        let item = item?;
        let scheduled = item.due.map(|d| start + d);
        let go = match scheduled {
            Some(due) => {
                // What is due leaves now, not after this one's wait.
                if due > Instant::now() && !out.flush() {
                    break;
                }
                let pacing = pacing.get_or_insert_with(Pacing::take);
                deadline.map_or(true, |d| due < d) && pacing.wait_until(due, cancel)
            }
            None => !cancel.is_cancelled() && deadline.map_or(true, |d| Instant::now() < d),
        };
        if !go {
            break;
        }
        out.run.push(Ticket {
            index,
            scheduled,
            object: item.object,
        });
        if out.run.len() >= RUN && !out.flush() {
            break;
        }
    }
    // Tickets released before a stop still go out.
    out.flush();
    Ok(())
}

/// The feeder's run of released tickets and the worker thread it goes to next.
struct Handout {
    queues: Vec<async_channel::Sender<Vec<Ticket>>>,
    next: usize,
    run: Vec<Ticket>,
}

impl Handout {
    /// Hands the run to the threads' queues, split evenly over them in turn
    /// (requests due together go out on as many threads' connections as
    /// there are). A full queue (the server is far behind) holds the feeder
    /// back; the tickets still carry their own schedule. False once the
    /// workers are gone.
    fn flush(&mut self) -> bool {
        let threads = self.queues.len();
        if self.run.is_empty() || threads == 0 {
            return true;
        }
        let mut run = std::mem::replace(&mut self.run, Vec::with_capacity(RUN));
        let (base, extra) = (run.len() / threads, run.len() % threads);
        for i in 0..threads {
            let share = base + usize::from(i < extra);
            if share == 0 {
                break;
            }
            let rest = run.split_off(share);
            let queue = &self.queues[self.next % threads];
            self.next = self.next.wrapping_add(1);
            if queue
                .send_blocking(std::mem::replace(&mut run, rest))
                .is_err()
            {
                return false;
            }
        }
        true
    }
}

/// A worker thread's samples on their way to the collector: the batch its
/// lanes fill in turn, handed over whole when full or old.
struct Outbox {
    tx: mpsc::Sender<Vec<Sample>>,
    /// Locked only by the lanes of one thread, one at a time, never across
    /// an `.await`.
    batch: std::sync::Mutex<Batcher<Sample>>,
}

impl Outbox {
    fn new(tx: mpsc::Sender<Vec<Sample>>) -> Self {
        Outbox {
            tx,
            batch: std::sync::Mutex::new(Batcher::new(BATCH, BATCH_AGE)),
        }
    }

    fn batch(&self) -> std::sync::MutexGuard<'_, Batcher<Sample>> {
        // Nothing panics while holding it; a poisoned one is still consistent.
        self.batch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a sample finished at `end`; hands the batch to the collector
    /// when it is full or its first sample is `BATCH_AGE` old. False once
    /// the collector is gone.
    async fn add(&self, sample: Sample, end: Instant) -> bool {
        let full = self.batch().push(sample, end);
        match full {
            Some(full) => self.tx.send(full).await.is_ok(),
            None => true,
        }
    }

    /// Hands over what is left (a lane that ends; the thread's last one
    /// leaves nothing behind).
    async fn flush(&self) {
        let rest = self.batch().take();
        if let Some(rest) = rest {
            let _ = self.tx.send(rest).await;
        }
    }
}

/// What every worker of a thread shares.
struct Shared {
    parts: Arc<RequestParts>,
    cfg: Arc<HttpProbeConfig>,
    tickets: Tickets,
    outbox: Arc<Outbox>,
    /// Closed loop with stages: the number of active clients over time,
    /// from the run's start. Client `k` works while the level is above `k`.
    ramp: Option<Arc<(Profile, Instant)>>,
}

/// Closed-loop stages: waits until client `client` is among the active
/// ones. False when it never will be again (or on cancellation).
async fn wait_for_turn(ramp: &(Profile, Instant), client: u32, cancel: &CancellationToken) -> bool {
    let (profile, start) = ramp;
    let need = f64::from(client) + 1.0;
    let now = start.elapsed().as_secs_f64();
    if profile.level_at(now) >= need {
        return true;
    }
    let Some(at) = profile.first_at_least(need, now) else {
        return false;
    };
    let until = *start + Duration::from_secs_f64(at);
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep_until(until.into()) => true,
    }
}

/// The one worker loop, for both modes and both protocols: one lane of a
/// client's connection, requests one after another, samples handed to the
/// collector a batch at a time.
async fn worker(client: u32, mut lane: Lane, shared: Shared, cancel: CancellationToken) {
    let Shared {
        parts,
        cfg,
        tickets,
        outbox,
        ramp,
    } = shared;
    let mut scratch = Vec::new();
    let depth = cfg.wire.pipeline.max(1) as usize;
    let mut group = Vec::with_capacity(depth);
    // One cancellation future for the whole loop, not one per request.
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        if let Some(r) = &ramp {
            if !wait_for_turn(r, client, &cancel).await {
                break;
            }
        }
        let ticket = tokio::select! {
            _ = &mut cancelled => break,
            t = tickets.next() => match t {
                Some(t) => t,
                None => break,
            },
        };
        if depth > 1 {
            // Pipelining: this ticket and those ready now, up to `depth`.
            group.clear();
            group.push(ticket);
            while group.len() < depth {
                match tickets.try_next() {
                    Some(t) => group.push(t),
                    None => break,
                }
            }
            let run = Group {
                client,
                tickets: &mut group,
                scratch: &mut scratch,
            };
            let outcome = tokio::select! {
                _ = &mut cancelled => break,
                r = run.go(&mut lane, &cfg, &parts, &outbox) => r,
            };
            if !outcome {
                return;
            }
            continue;
        }
        let want = Want::of(ticket.object, ticket.index, &cfg);
        let sent_at = Instant::now();
        let started = started_at(ticket.scheduled, sent_at);
        let mut timing = Timing::default();
        let attempt = tokio::time::timeout(
            cfg.timeout,
            request(
                &mut lane,
                &cfg,
                &parts,
                &want,
                started,
                &mut timing,
                &mut scratch,
            ),
        );
        let outcome = tokio::select! {
            _ = &mut cancelled => break,
            r = attempt => r,
        };
        let end = Instant::now();
        // A failed connection was taken out of its lane and dropped (a
        // shared HTTP/2 one is checked at the next request).
        let outcome = outcome.unwrap_or(Err("timeout"));
        let sample = Sample::new(
            client,
            want,
            ticket.scheduled,
            sent_at,
            end,
            timing,
            outcome,
        );
        if !outbox.add(sample, end).await {
            return;
        }
    }
    outbox.flush().await;
}

/// One request over the lane's connection (opened or reopened as needed),
/// body read to the end. Errors are classes; `timing` is filled as the
/// request goes, so a timeout keeps what was measured before it.
async fn request(
    lane: &mut Lane,
    cfg: &HttpProbeConfig,
    parts: &RequestParts,
    want: &Want,
    started: Instant,
    timing: &mut Timing,
    scratch: &mut Vec<u8>,
) -> Result<Response, &'static str> {
    let mut sender = lane.acquire(cfg, timing).await?;
    let mut retried = false;
    // Clear-text HTTP/1.1: the lean client, on this task.
    while let Sender::Raw(conn) = &mut sender {
        let head = parts.h1_head(want, scratch).ok_or("other")?;
        match conn
            .exchange(head, || timing.ttfb = Some(started.elapsed()))
            .await
        {
            Ok(answer) => {
                lane.release(sender, cfg.keep_alive);
                return Ok(Response {
                    status: answer.status,
                    bytes: answer.bytes,
                    cache: answer.cache,
                });
            }
            // The server closed the idle connection before it read the
            // request: sent again, once, on a new connection.
            Err(Failure::Stale) if !retried => {
                retried = true;
                sender = Box::pin(conn::open(cfg, timing)).await?;
            }
            Err(Failure::Stale) => return Err("reset"),
            Err(Failure::Class(class)) => return Err(class),
        }
    }
    let resp = loop {
        let protocol = timing.protocol.unwrap_or(Protocol::Http1);
        let req = parts.request(want, protocol).ok_or("other")?;
        let sent = match &mut sender {
            Sender::H1(s) => s.send_request(req).await,
            Sender::H2(s) => s.send_request(req).await,
            // The loop above answered every request over one.
            Sender::Raw(_) => return Err("other"),
        };
        match sent {
            Ok(resp) => break resp,
            // An HTTP/2 server that refused it unprocessed (a GOAWAY at its
            // keep-alive limit, REFUSED_STREAM), or a connection that
            // closed before hyper put it on the wire (canceled): sent
            // again, once, on another connection, as the proxy does
            // (hyper-util's pool retries the canceled ones there). The
            // requests carry no body, so nothing is lost.
            Err(e)
                if !retried
                    && matches!(sender, Sender::H2(_))
                    && (e.is_canceled() || crate::http2::refused_unprocessed(&e)) =>
            {
                retried = true;
                lane.refused();
                sender = lane.acquire(cfg, timing).await?;
            }
            Err(e) => return Err(classify_hyper(e)),
        }
    };
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
    lane.release(sender, cfg.keep_alive);
    Ok(Response {
        status,
        bytes,
        cache,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_as_asked_but_never_more_than_connections() {
        assert_eq!(worker_threads(Some(1), 32), 1);
        assert_eq!(worker_threads(Some(3), 32), 3);
        assert_eq!(worker_threads(Some(8), 4), 4);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(worker_threads(None, 1000) as usize, cores);
        assert_eq!(worker_threads(None, 1), 1);
    }

    #[test]
    fn a_worker_panic_keeps_its_message() {
        let formatted = std::thread::spawn(|| panic!("connection pool broke: {}", 7))
            .join()
            .unwrap_err();
        assert_eq!(panic_message(&*formatted), "connection pool broke: 7");
        let literal = std::thread::spawn(|| panic!("plain")).join().unwrap_err();
        assert_eq!(panic_message(&*literal), "plain");
        let other = std::thread::spawn(|| std::panic::panic_any(42u8))
            .join()
            .unwrap_err();
        assert_eq!(panic_message(&*other), "a panic without a message");
    }
}
