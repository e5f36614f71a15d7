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

use std::error::Error as _;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONNECTION, HOST, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use anyhow::Context as _;

mod tally;

pub use tally::HttpReport;
use tally::Tally;

use super::source::{self, Feed, Ramp, Source};
use super::udp::wait_until;
use super::{check_duration, Progress, Setting, SettingError};
use crate::error::Error;
use crate::metrics::qos;
use crate::metrics::summary::round3;
use crate::metrics::{CacheMark, HttpRequestRow};
use crate::traffic::{Object, Profile};

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
}

/// `requests` meaning "no count limit": the workload runs until its
/// `duration` ends (as `wrk -d` and `oha -z` do).
pub const UNTIL_DURATION: u64 = u64::MAX;

impl HttpProbeConfig {
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.requests == 0 {
            return Err(Setting::Requests.error("requests must be at least 1"));
        }
        if self.requests == UNTIL_DURATION && self.run_length().is_none() {
            return Err(Setting::Requests.error(
                "give a number of requests, or a duration to run for (--duration / `duration`)",
            ));
        }
        if self.concurrency == 0 {
            return Err(Setting::Concurrency.error("concurrency must be at least 1"));
        }
        // One connection per worker.
        super::check_sockets(Setting::Concurrency, u64::from(self.concurrency), 1)?;
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
    /// A trace's object; otherwise the index picks the path or catalog draw.
    object: Option<Object>,
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
    /// Open loop or a trace: this thread's queue, filled by the feeding
    /// thread. Many receivers (the thread's connections), no lock: whichever
    /// connection is free takes the next ticket.
    Open(async_channel::Receiver<Ticket>),
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
                    object: None,
                })
            }
            Tickets::Open(rx) => rx.recv().await.ok(),
        }
    }
}

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
}

/// What one request asks for.
#[derive(Debug, Clone)]
enum Want {
    /// `paths[i]`.
    Listed(usize),
    /// A catalog's or trace's object.
    Object(Object),
}

impl Want {
    fn path(&self, paths: &[String]) -> String {
        match self {
            Want::Listed(i) => paths.get(*i).cloned().unwrap_or_default(),
            Want::Object(o) => o.path(),
        }
    }
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
/// core (as wrk's threads), so a request's wake-ups stay on its thread; in
/// open loop a pacing thread releases each request at its scheduled instant
/// (sleep, then spin: tokio's timer is a millisecond late). The samples come
/// back in batches to the collector (this function), which keeps the
/// histograms and calls `on_request`.
pub async fn run_http(
    config: &HttpProbeConfig,
    on_request: &mut (dyn FnMut(HttpRequestRow) + Send),
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> anyhow::Result<HttpReport> {
    config.validate().map_err(Error::from)?;
    // A trace that cannot be opened is the user's to fix (exit 2).
    let feed =
        source::feed(&config.traffic, config.rate).map_err(|e| Error::input(e.to_string()))?;
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
    let mut streams = preconnect(config, cancel).await;
    // The clock starts once the threads' runtimes and connections are up.
    let started_at = SystemTime::now();
    let start = Instant::now();
    let deadline = config.run_length().map(|d| start + d);
    let counter = Arc::new(AtomicU64::new(0));
    let ramp = match &config.traffic.ramp {
        Ramp::Concurrency(p) => Some(Arc::new((p.clone(), start))),
        _ => None,
    };
    let mut queues = Vec::new();
    let (tx, mut rx) = mpsc::channel::<Vec<Sample>>(64);
    let mut handles = Vec::with_capacity(threads as usize);
    for (thread, runtime) in (0..threads).zip(runtimes) {
        let tickets = if feed.is_some() {
            let (qtx, qrx) = async_channel::bounded(1024);
            queues.push(qtx);
            Tickets::Open(qrx)
        } else {
            Tickets::Closed {
                next: counter.clone(),
                total: config.requests,
                deadline,
            }
        };
        let clients: Vec<(u32, Option<std::net::TcpStream>)> = (thread..config.concurrency)
            .step_by(threads as usize)
            .map(|client| (client, None))
            .collect();
        let clients = take_streams(clients, &mut streams);
        let (cfg, tx, cancel, ramp) = (cfg.clone(), tx.clone(), cancel.clone(), ramp.clone());
        let handle = std::thread::Builder::new()
            .name(format!("netrun-http-{thread}"))
            .spawn(move || {
                runtime.block_on(worker_thread(clients, cfg, tickets, tx, cancel, ramp));
            })
            .context("cannot start an HTTP worker thread")?;
        handles.push(handle);
    }
    drop(tx);
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
    while let Some(batch) = rx.recv().await {
        for s in &batch {
            tally.add(s, config.open_loop());
            on_request(HttpRequestRow {
                variant: String::new(),
                workload: String::new(),
                client: s.client,
                path: s.want.path(&config.paths),
                status: s.status,
                bytes: s.bytes,
                latency_ms: round3(qos::ns_to_ms(s.latency.as_nanos() as f64)),
                cache: s.cache,
                error: s.error.map(str::to_string),
                start_offset_ms: Some(round3(qos::ns_to_ms(
                    s.started.saturating_duration_since(start).as_nanos() as f64,
                ))),
                repetition: None,
                // Where the time went: filled by the TLS/HTTP/2 client
                // (branch `tls`), not yet merged with the traffic engine.
                ..HttpRequestRow::default()
            });
        }
        progress.advance(batch.len() as u64);
        progress.replies(tally.responses, Some(tally.errors));
    }
    let duration = start.elapsed();
    // Every sender is gone, so the threads are ending: joining waits for
    // little more than their runtimes' teardown.
    // Every thread is joined, and each one that panicked is named with its
    // panic message: a worker's failure must not vanish from the report.
    let (failures, fed) = tokio::task::spawn_blocking(move || {
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
        if let Some(Ok(p)) = pacer {
            match p.join() {
                Ok(r) => fed = r,
                Err(panic) => failures.push(format!(
                    "the HTTP pacing thread panicked: {}",
                    panic_message(&*panic)
                )),
            }
        }
        (failures, fed)
    })
    .await
    .context("waiting for the HTTP worker threads")?;
    if !failures.is_empty() {
        anyhow::bail!("{}", failures.join("; "));
    }
    // The trace changed under the run (it was checked before): the user's to fix.
    if let Err(e) = fed {
        return Err(Error::input(e.to_string()).into());
    }
    Ok(tally.report(started_at, duration, cancel.is_cancelled()))
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

/// One worker thread per core, never more than there are connections.
fn worker_threads(concurrency: u32) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cores)
        .unwrap_or(1)
        .clamp(1, concurrency.max(1))
}

/// Keep-alive: opens every worker's connection before the clock starts, as
/// wrk does, so the first requests do not carry a TCP handshake. A
/// connection that fails here is `None`: its worker connects on its first
/// request, where a failure counts as that request's error.
async fn preconnect(
    cfg: &HttpProbeConfig,
    cancel: &CancellationToken,
) -> Vec<Option<std::net::TcpStream>> {
    let none = || (0..cfg.concurrency).map(|_| None).collect();
    if !cfg.keep_alive {
        return none();
    }
    let attempts = (0..cfg.concurrency).map(|_| async {
        let stream = tokio::time::timeout(cfg.timeout, TcpStream::connect(cfg.target))
            .await
            .ok()?
            .ok()?;
        let _ = stream.set_nodelay(true);
        // Handed to another runtime: std's stream, still non-blocking.
        stream.into_std().ok()
    });
    tokio::select! {
        _ = cancel.cancelled() => none(),
        streams = futures_util::future::join_all(attempts) => streams,
    }
}

/// Gives each client its pre-opened connection (client `i` gets `streams[i]`).
fn take_streams(
    mut clients: Vec<(u32, Option<std::net::TcpStream>)>,
    streams: &mut [Option<std::net::TcpStream>],
) -> Vec<(u32, Option<std::net::TcpStream>)> {
    for (client, stream) in &mut clients {
        *stream = streams.get_mut(*client as usize).and_then(Option::take);
    }
    clients
}

/// What every request of a run shares, parsed once: the paths as URIs
/// (`None`: not a valid request target, each such request fails as `other`)
/// and the header values.
struct RequestParts {
    uris: Vec<Option<Uri>>,
    host: Option<HeaderValue>,
    agent: HeaderValue,
    connection: HeaderValue,
}

impl RequestParts {
    fn new(cfg: &HttpProbeConfig) -> Self {
        RequestParts {
            uris: cfg.paths.iter().map(|p| p.parse().ok()).collect(),
            host: HeaderValue::from_str(&cfg.authority).ok(),
            agent: HeaderValue::from_static(concat!("netrun/", env!("CARGO_PKG_VERSION"))),
            connection: HeaderValue::from_static(if cfg.keep_alive {
                "keep-alive"
            } else {
                "close"
            }),
        }
    }

    fn request(&self, want: &Want) -> Option<Request<Empty<Bytes>>> {
        let mut req = Request::new(Empty::new());
        *req.uri_mut() = match want {
            Want::Listed(i) => self.uris.get(*i)?.clone()?,
            Want::Object(o) => o.path().parse().ok()?,
        };
        let headers = req.headers_mut();
        headers.insert(HOST, self.host.clone()?);
        headers.insert(USER_AGENT, self.agent.clone());
        headers.insert(CONNECTION, self.connection.clone());
        Some(req)
    }
}

/// The connections of one worker thread, until their tickets run out.
async fn worker_thread(
    clients: Vec<(u32, Option<std::net::TcpStream>)>,
    cfg: Arc<HttpProbeConfig>,
    tickets: Tickets,
    tx: mpsc::Sender<Vec<Sample>>,
    cancel: CancellationToken,
    ramp: Option<Arc<(Profile, Instant)>>,
) {
    let parts = Arc::new(RequestParts::new(&cfg));
    let mut set = tokio::task::JoinSet::new();
    for (client, stream) in clients {
        let shared = Shared {
            parts: parts.clone(),
            cfg: cfg.clone(),
            tickets: tickets.clone(),
            tx: tx.clone(),
            ramp: ramp.clone(),
        };
        set.spawn(worker(client, stream, shared, cancel.clone()));
    }
    while set.join_next().await.is_some() {}
}

/// Open loop: releases each request of the feed at its due instant to the
/// worker threads in turn, sleeping then spinning to the instant as the UDP
/// pacer does. Tickets carry their scheduled instant, so however late a
/// request actually leaves is charged to its latency and shows as the
/// pacing error. A trace replayed `fast` has no instants: its requests
/// are released as the queues take them, in trace order.
fn schedule(
    queues: Vec<async_channel::Sender<Ticket>>,
    total: u64,
    feed: Feed,
    start: Instant,
    deadline: Option<Instant>,
    cancel: &CancellationToken,
) -> Result<(), crate::traffic::TraceError> {
    let threads = queues.len().max(1) as u64;
    for (index, item) in (0..total).zip(feed) {
        let item = item?;
        let scheduled = item.due.map(|d| start + d);
        let go = match scheduled {
            Some(due) => deadline.map_or(true, |d| due < d) && wait_until(due, cancel),
            None => !cancel.is_cancelled() && deadline.map_or(true, |d| Instant::now() < d),
        };
        if !go {
            break;
        }
        let ticket = Ticket {
            index,
            scheduled,
            object: item.object,
        };
        // A full queue (the server is far behind) holds the pacer back; the
        // tickets still carry their own schedule.
        let queue = &queues[(index % threads) as usize];
        if queue.send_blocking(ticket).is_err() {
            break;
        }
    }
    Ok(())
}

/// What every worker of a thread shares.
struct Shared {
    parts: Arc<RequestParts>,
    cfg: Arc<HttpProbeConfig>,
    tickets: Tickets,
    tx: mpsc::Sender<Vec<Sample>>,
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

/// The one worker loop, for both modes: one connection, requests one after
/// another, samples handed to the collector a batch at a time.
async fn worker(
    client: u32,
    stream: Option<std::net::TcpStream>,
    shared: Shared,
    cancel: CancellationToken,
) {
    let Shared {
        parts,
        cfg,
        tickets,
        tx,
        ramp,
    } = shared;
    let mut conn = match stream.map(TcpStream::from_std) {
        Some(Ok(s)) => handshake(s).await.ok(),
        _ => None,
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut batch_since = Instant::now();
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
        let want = match (ticket.object, &cfg.traffic.source) {
            (Some(o), _) => Want::Object(o),
            (None, Source::Catalog(c)) => Want::Object(c.request(ticket.index)),
            (None, _) => Want::Listed((ticket.index % cfg.paths.len().max(1) as u64) as usize),
        };
        let sent_at = Instant::now();
        let attempt = tokio::time::timeout(cfg.timeout, request(&mut conn, &cfg, &parts, &want));
        let outcome = tokio::select! {
            _ = &mut cancelled => break,
            r = attempt => r,
        };
        let end = Instant::now();
        let started = ticket.scheduled.unwrap_or(sent_at).min(sent_at);
        let mut sample = Sample {
            client,
            want,
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
        };
        match outcome {
            Ok(Ok(r)) => {
                sample.status = Some(r.status);
                sample.bytes = r.bytes;
                sample.cache = r.cache;
            }
            Ok(Err(class)) => {
                conn = None;
                sample.error = Some(class);
            }
            Err(_elapsed) => {
                conn = None;
                sample.error = Some("timeout");
            }
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

/// One request on the worker's connection (opened or reopened as needed),
/// body read to the end. Errors are classes.
async fn request(
    conn: &mut Option<SendRequest<Empty<Bytes>>>,
    cfg: &HttpProbeConfig,
    parts: &RequestParts,
    want: &Want,
) -> Result<Response, &'static str> {
    // A kept-alive connection the server has closed meanwhile is replaced.
    let reusable = match conn.take() {
        Some(mut s) => s.ready().await.is_ok().then_some(s),
        None => None,
    };
    let mut sender = match reusable {
        Some(s) => s,
        None => connect(cfg.target).await?,
    };
    let req = parts.request(want).ok_or("other")?;
    let resp = sender.send_request(req).await.map_err(classify_hyper)?;
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
    if cfg.keep_alive {
        *conn = Some(sender);
    }
    Ok(Response {
        status,
        bytes,
        cache,
    })
}

async fn connect(target: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, &'static str> {
    let stream = TcpStream::connect(target)
        .await
        .map_err(|e| classify_io(&e))?;
    let _ = stream.set_nodelay(true);
    handshake(stream).await
}

/// Starts HTTP/1.1 on an open connection (no network round trip).
async fn handshake(stream: TcpStream) -> Result<SendRequest<Empty<Bytes>>, &'static str> {
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(classify_hyper)?;
    // Drives the connection; ends when the sender is dropped or the peer closes.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
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
