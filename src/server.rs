//! The HTTP accept loop shared by the origin and the proxy: HTTP/1.1 with
//! keep-alive or HTTP/2 (by ALPN over TLS, by prior knowledge in clear
//! text), limits that a slow or hostile client cannot get around, and
//! graceful shutdown (stop accepting, let in-flight requests finish).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::interim::InterimIo;

mod fast;
pub use fast::{QuickBody, QuickRequest};

/// Error type of response bodies (file reads, upstream streams).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Response body type used by every netrun HTTP service.
pub type Body = BoxBody<Bytes, BoxError>;

/// A whole body from bytes.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// A short `text/plain` response (errors, refusals).
pub fn text(status: http::StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Asks hyper to close the connection after this response: after a refused
/// body the rest of the stream cannot be trusted.
pub fn closing(mut r: Response<Body>) -> Response<Body> {
    r.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    r
}

/// Why a request body could not be read to its end.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the limit; the rest was not read.
    TooLarge,
    /// Not received within the time allowed (a client trickling it).
    TooSlow,
    /// The stream broke off or was malformed.
    Broken(BoxError),
}

/// Reads and discards a request body, bounded in size and in time (a client
/// trickling a body is the slowloris attack one step later), so the next
/// request on the connection is read correctly.
pub async fn discard_body(body: Incoming, limit: u64, timeout: Duration) -> Result<(), BodyError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match tokio::time::timeout(timeout, http_body_util::Limited::new(body, limit).collect()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if is_body_too_large(&*e) => Err(BodyError::TooLarge),
        Ok(Err(e)) => Err(BodyError::Broken(e)),
        Err(_) => Err(BodyError::TooSlow),
    }
}

/// Whether a body limit (`http_body_util::Limited`) cut a body off somewhere
/// in this error chain (hyper wraps the body's error in its own).
pub fn is_body_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Adds one to a service's counter (statistics only: no ordering needed).
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a service's counter.
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Limits that keep one client from exhausting a server.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpLimits {
    /// Largest request head in bytes (request line + headers); past it hyper answers 431.
    pub max_header_size: usize,
    /// Time allowed to receive a complete request head (slowloris guard).
    pub header_timeout: Duration,
    /// Connections served at once; further ones wait in the kernel backlog.
    pub max_connections: usize,
    /// Largest request body in bytes; handlers answer 413 past it.
    pub max_body_size: u64,
    /// Time a response may make no write progress (a client that stopped
    /// reading) before its connection is closed; zero means no limit.
    pub write_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_header_size: 16 * 1024,
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_body_size: 1024 * 1024,
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// What a server does with each request.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = Response<Body>> + Send;

    /// Answers a plain clear-text HTTP/1.1 request without hyper if it can
    /// do so cheaply: appends the response head to `out` as hyper would
    /// write it up to its `connection` and `date` lines (the server adds
    /// those; no `date` after a head that has one, [`QuickBody::Dated`]), counts the request as [`Handler::handle`] would, logs it (or
    /// has the body's `sent` do so), and returns the body to send. `None`
    /// leaves `out` as it was, and hyper serves this request (and, if it
    /// has a body or ends the connection, the rest of the connection).
    fn quick(&self, _req: &QuickRequest<'_>, _out: &mut Vec<u8>) -> Option<QuickBody> {
        None
    }
}

/// Connection-level counters.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections that had to wait because `max_connections` were open.
    pub waited_for_slot: AtomicU64,
    /// Connections that ended with a protocol error or timeout (a write
    /// timeout included).
    pub errors: AtomicU64,
}

/// A connection whose writes fail with `TimedOut` once none could make
/// progress for `timeout`: a client that asks for a large response and never
/// reads it would otherwise hold its connection slot for ever. Reads are
/// untouched (the header timeout and handlers bound those).
struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    /// Armed when a write first finds the socket full; disarmed by progress.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Set when the timeout fired, so the connection's error is reported as such.
    fired: Arc<AtomicBool>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, timeout: Duration, fired: Arc<AtomicBool>) -> Self {
        WriteTimeout {
            inner,
            timeout,
            stall: None,
            fired,
        }
    }

    /// Passes a write's result on, turning a write stalled for `timeout`
    /// into an error.
    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() || self.timeout.is_zero() {
            self.stall = None;
            return r;
        }
        let timeout = self.timeout;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if stall.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.fired.store(true, Ordering::Relaxed);
        Poll::Ready(Err(write_timed_out(timeout)))
    }
}

/// The error of a write that made no progress for `timeout`: the client
/// stopped reading (hyper's path and the fast path alike).
fn write_timed_out(timeout: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "client read nothing for {}",
            crate::units::format_duration(timeout)
        ),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, r)
    }
}

/// A bound listener, how its connections speak: clear text (HTTP/1.1, or
/// HTTP/2 with prior knowledge), or TLS with this configuration (ALPN picks
/// HTTP/2 or HTTP/1.1), and which threads serve them.
pub struct Listener {
    pub tcp: TcpListener,
    /// With per-worker sockets ([`ListenSockets::PerWorker`]): the other
    /// workers' own listening sockets, bound with `SO_REUSEPORT` to `tcp`'s
    /// address ([`crate::net::bind_tcp_group`]); empty, every worker accepts
    /// from `tcp`. Worker 0 takes `tcp`, worker `i` the `i`-th of these.
    pub siblings: Vec<TcpListener>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Threads serving connections, each with its own single-threaded
    /// runtime accepting from the one listening socket, as nginx's worker
    /// processes do; `None` serves on the caller's runtime.
    pub workers: Option<NonZeroUsize>,
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Self {
        Listener {
            tcp,
            siblings: Vec::new(),
            tls: None,
            workers: None,
        }
    }
}

impl Listener {
    /// The same listener, served by `workers` threads of its own.
    pub fn with_workers(mut self, workers: NonZeroUsize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// The listening sockets: one shared, or one per worker.
    pub fn sockets(&self) -> usize {
        1 + self.siblings.len()
    }

    /// `workers 2, 2 sockets (SO_REUSEPORT)` or `workers 2, 1 socket`, as
    /// the start lines and `netrun check` show the serving side.
    pub fn describe(&self) -> String {
        let workers = self.workers.map_or(1, NonZeroUsize::get);
        describe_serving(workers, self.sockets())
    }
}

/// `workers N, M socket(s)`: the serving threads and the listening sockets.
pub fn describe_serving(workers: usize, sockets: usize) -> String {
    format!("workers {workers}, {}", describe_sockets(sockets))
}

/// `1 socket` or `N sockets (SO_REUSEPORT)`.
pub fn describe_sockets(sockets: usize) -> String {
    match sockets {
        1 => "1 socket".to_string(),
        n => format!("{n} sockets (SO_REUSEPORT)"),
    }
}

/// How a server's worker threads get their connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListenSockets {
    /// Every worker accepts from the one listening socket: whichever worker
    /// is free takes the next connection.
    #[default]
    Shared,
    /// Each worker has its own socket bound with `SO_REUSEPORT` to the same
    /// address (nginx's `listen ... reuseport`): the kernel spreads new
    /// connections by a hash of their addresses, not by load, so a
    /// connection may wait behind a busy worker while another is idle.
    PerWorker,
}

impl ListenSockets {
    /// The spellings `--listen-sockets` and the `listen_sockets` keys take.
    pub const NAMES: [&'static str; 2] = ["shared", "per-worker"];

    /// The listening sockets to bind for `workers` serving threads (`None`:
    /// the caller's runtime, one socket).
    pub fn count(self, workers: Option<NonZeroUsize>) -> NonZeroUsize {
        match (self, workers) {
            (ListenSockets::PerWorker, Some(n)) => n,
            _ => NonZeroUsize::MIN,
        }
    }
}

impl std::str::FromStr for ListenSockets {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shared" => Ok(ListenSockets::Shared),
            "per-worker" => Ok(ListenSockets::PerWorker),
            other => Err(format!(
                "`{other}` is not a way to listen; give `shared` (one socket all workers accept from) or `per-worker` (one SO_REUSEPORT socket each)"
            )),
        }
    }
}

impl std::fmt::Display for ListenSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ListenSockets::Shared => "shared",
            ListenSockets::PerWorker => "per-worker",
        })
    }
}

/// Most serving threads `--workers` and the `workers` scenario keys take.
pub const MAX_WORKERS: usize = 256;

/// The default number of serving threads: one per core this process may
/// run on (`taskset` and cgroup limits counted), as nginx's
/// `worker_processes auto`.
pub fn default_workers() -> NonZeroUsize {
    cores().unwrap_or(NonZeroUsize::MIN)
}

/// The cores this process may run on (`std::thread::available_parallelism`:
/// its CPU affinity and its cgroup's CPU quota), found once: each asking
/// reads the cgroup's files again (a dozen system calls), and one run asks
/// for its services, its clients and its record.
pub fn cores() -> Option<NonZeroUsize> {
    static CORES: std::sync::OnceLock<Option<NonZeroUsize>> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().ok())
}

/// Runs HTTP/2 streams as tasks of the server's tracker, so a shutdown
/// waits for them as it does for connections.
#[derive(Clone)]
struct TrackedExecutor(TaskTracker);

impl<F> hyper::rt::Executor<F> for TrackedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(fut);
    }
}

/// Most concurrent streams a client may open on one HTTP/2 connection
/// (nginx's `http2_max_concurrent_streams` default is 128).
pub const H2_MAX_STREAMS: u32 = 256;

/// Serves `listener` until `shutdown` is cancelled, then stops accepting and
/// asks open connections to finish their current request. Connection tasks
/// are spawned on `tracker`, or with [`Listener::workers`] on their worker's
/// runtime; either way this returns once they are done, so the owner
/// waiting for `tracker` waits for them.
pub async fn serve<H: Handler>(
    listener: impl Into<Listener>,
    handler: Arc<H>,
    limits: HttpLimits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    stats: Arc<ConnStats>,
    name: &'static str,
) {
    let Listener {
        tcp,
        siblings,
        tls,
        workers,
    } = listener.into();
    let server = Server {
        handler,
        tls: tls.map(tokio_rustls::TlsAcceptor::from),
        // One bound for the whole server, whichever worker accepts.
        slots: Arc::new(Semaphore::new(limits.max_connections)),
        limits,
        shutdown,
        stats,
        name,
    };
    match workers {
        // Without threads of its own the server accepts from `tcp` alone;
        // sockets of a group left open would queue connections for no one.
        None => server.accept(tcp, tracker).await,
        Some(n) => server.on_workers(tcp, siblings, n, tracker).await,
    }
}

/// What every accept loop of one server shares.
struct Server<H> {
    handler: Arc<H>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    slots: Arc<Semaphore>,
    limits: HttpLimits,
    shutdown: CancellationToken,
    stats: Arc<ConnStats>,
    name: &'static str,
}

impl<H> Clone for Server<H> {
    fn clone(&self) -> Self {
        Server {
            handler: self.handler.clone(),
            tls: self.tls.clone(),
            slots: self.slots.clone(),
            limits: self.limits.clone(),
            shutdown: self.shutdown.clone(),
            stats: self.stats.clone(),
            name: self.name,
        }
    }
}

impl<H: Handler> Server<H> {
    /// Starts `workers` threads, each running a single-threaded runtime that
    /// accepts from the shared listening socket, or from its own of
    /// `siblings` (a connection stays on the thread that accepted it: no
    /// work stealing, no cross-thread wake-ups on the request path), and
    /// waits for them to finish.
    async fn on_workers(
        self,
        tcp: TcpListener,
        siblings: Vec<TcpListener>,
        workers: NonZeroUsize,
        tracker: TaskTracker,
    ) {
        // Should this future be dropped (its runtime shutting down), the
        // workers stop as well instead of serving on unowned.
        let stop = self.shutdown.child_token();
        let _stop_on_drop = stop.clone().drop_guard();
        let socket = match tcp.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(server = self.name, error = %e, "cannot share the listening socket");
                return;
            }
        };
        // Worker 0 and, with one socket, every worker: a handle on `socket`.
        let mut own = siblings.into_iter();
        let mut finished = Vec::with_capacity(workers.get());
        for i in 0..workers.get() {
            let listener = match (i > 0).then(|| own.next()).flatten() {
                Some(sibling) => sibling.into_std(),
                None => socket.try_clone(),
            };
            let started = listener.and_then(|listener| {
                let server = Server {
                    shutdown: stop.clone(),
                    ..self.clone()
                };
                let (done, finished_rx) = tokio::sync::oneshot::channel::<()>();
                // A thread that cannot start drops its socket with it: the
                // kernel stops giving that socket connections.
                std::thread::Builder::new()
                    .name(format!("{}-{i}", self.name))
                    .spawn(move || {
                        server.worker(listener);
                        drop(done);
                    })?;
                Ok(finished_rx)
            });
            match started {
                Ok(rx) => finished.push(rx),
                Err(e) => {
                    tracing::warn!(server = self.name, worker = i, error = %e,
                        "cannot start a serving thread; serving with fewer");
                    break;
                }
            }
        }
        // Sockets of workers that did not start: closed, not left to queue
        // connections no thread accepts.
        drop(own);
        if finished.is_empty() {
            // Not one thread: serve here rather than not at all.
            if let Ok(tcp) = TcpListener::from_std(socket) {
                self.accept(tcp, tracker).await;
            }
            return;
        }
        // The workers hold the sockets now: each closes when its last
        // worker stops accepting.
        drop(socket);
        for rx in finished {
            // An error is a worker gone (a panic): nothing left to wait for.
            let _ = rx.await;
        }
    }

    /// One worker thread: its own runtime accepting and serving until
    /// shutdown, then until its connections are done.
    fn worker(self, listener: std::net::TcpListener) {
        let name = self.name;
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::warn!(server = name, error = %e, "cannot start a serving thread's runtime");
                return;
            }
        };
        runtime.block_on(async move {
            let tcp = match TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(server = name, error = %e, "cannot accept on a serving thread");
                    return;
                }
            };
            let tracker = TaskTracker::new();
            self.accept(tcp, tracker.clone()).await;
            tracker.close();
            tracker.wait().await;
        });
    }

    /// Accepts connections until shutdown, each served by a task on `tracker`.
    async fn accept(self, listener: TcpListener, tracker: TaskTracker) {
        let Server {
            handler,
            tls,
            slots,
            limits,
            shutdown,
            stats,
            name,
        } = self;
        loop {
            // Take a slot before accepting: at the limit, new connections wait in
            // the backlog instead of being accepted and starved.
            let permit = match slots.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    stats.waited_for_slot.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        server = name,
                        limit = limits.max_connections,
                        "connection limit reached; new connections wait"
                    );
                    tokio::select! {
                        p = slots.clone().acquire_owned() => match p {
                            Ok(p) => p,
                            Err(_) => return,
                        },
                        _ = shutdown.cancelled() => return,
                    }
                }
            };
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(s) => s,
                    Err(e) => {
                        // EMFILE and friends: back off briefly rather than spin.
                        tracing::warn!(server = name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = shutdown.cancelled() => return,
            };
            stats.accepted.fetch_add(1, Ordering::Relaxed);
            let _ = stream.set_nodelay(true);
            let conn = Connection {
                handler: handler.clone(),
                limits: limits.clone(),
                shutdown: shutdown.clone(),
                stats: stats.clone(),
                name,
                tracker: tracker.clone(),
            };
            let tls = tls.clone();
            tracker.spawn(async move {
                let _permit = permit;
                conn.open(stream, peer, tls).await;
            });
        }
    }
}

/// What one connection's task needs from its server.
struct Connection<H> {
    handler: Arc<H>,
    limits: HttpLimits,
    shutdown: CancellationToken,
    stats: Arc<ConnStats>,
    name: &'static str,
    tracker: TaskTracker,
}

/// The HTTP/2 connection preface (RFC 9113 §3.4) a client with prior
/// knowledge sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// What a clear-text client gets from a TLS port before it is closed.
const TLS_ONLY: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 52\r\n\r\n400 Bad Request: this port speaks TLS; use https://\n";

/// Whether the client opens with the HTTP/2 preface (h2c with prior
/// knowledge), looking without consuming. A client that closes at once is
/// not: HTTP/1 sees the end of the stream.
async fn sends_h2_preface(stream: &tokio::net::TcpStream) -> io::Result<bool> {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 || buf[..n] != H2_PREFACE[..n] {
            return Ok(false);
        }
        if n == H2_PREFACE.len() {
            return Ok(true);
        }
        // A preface cut across segments (rare): the rest is on its way.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Why a connection ended before its first request.
enum Opening {
    /// Nothing (or no complete TLS handshake) within the header timeout.
    TimedOut,
    /// Clear text sent to a TLS port; the client was told so.
    ClearText,
    /// The TLS handshake failed (the client refused the certificate, say).
    Handshake(io::Error),
    /// The socket failed.
    Io(io::Error),
}

impl<H: Handler> Connection<H> {
    /// Opens the connection's protocol (TLS, then ALPN; or the h2c preface)
    /// within the header timeout, then serves it.
    async fn open(
        self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) {
        let timeout = self.limits.header_timeout;
        let opened = match tls {
            None => match tokio::time::timeout(timeout, sends_h2_preface(&stream)).await {
                Ok(Ok(true)) => return self.serve_h2(stream, peer).await,
                Ok(Ok(false)) => return self.serve_clear_h1(stream, peer).await,
                Ok(Err(e)) => Opening::Io(e),
                Err(_) => Opening::TimedOut,
            },
            Some(acceptor) => {
                match tokio::time::timeout(timeout, handshake(acceptor, stream)).await {
                    Ok(Ok(tls)) => {
                        if tls.get_ref().1.alpn_protocol() == Some(crate::tls::ALPN_H2) {
                            return self.serve_h2(tls, peer).await;
                        }
                        return self.serve_h1(InterimIo::split(tls), peer, 0).await;
                    }
                    Ok(Err(opening)) => opening,
                    Err(_) => Opening::TimedOut,
                }
            }
        };
        let name = self.name;
        match opened {
            Opening::Io(e) => {
                tracing::debug!(server = name, %peer, error = %e, "connection error");
                return;
            }
            Opening::TimedOut => tracing::warn!(server = name, %peer,
                "closed connection: request head not received in time"),
            Opening::ClearText => tracing::warn!(server = name, %peer,
                "refused a clear-text client on a TLS port (400): it should use https://"),
            Opening::Handshake(e) => tracing::warn!(server = name, %peer,
                "TLS handshake failed: {e}"),
        }
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The service hyper calls for each request: checks `Host`, hands the
    /// request to the handler (with the connection's [`Interim`] for
    /// HTTP/1.1), counts it in `seen`.
    fn service(
        &self,
        peer: SocketAddr,
        interim: Option<crate::interim::Interim>,
        seen: Arc<AtomicU64>,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = Response<Body>,
        Error = std::convert::Infallible,
        Future = impl Future<Output = Result<Response<Body>, std::convert::Infallible>> + Send,
    > + Clone {
        let (handler, name) = (self.handler.clone(), self.name);
        hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let handler = handler.clone();
            seen.fetch_add(1, Ordering::Relaxed);
            match (&interim, req.version()) {
                (Some(interim), http::Version::HTTP_11) => {
                    req.extensions_mut().insert(interim.clone());
                }
                (_, http::Version::HTTP_2) => origin_form(&mut req),
                _ => {}
            }
            async move {
                let resp = match host_problem(&req) {
                    None => handler.handle(req, peer).await,
                    Some(why) => {
                        tracing::debug!(server = name, %peer, "bad request (400): {why}");
                        closing(text(
                            http::StatusCode::BAD_REQUEST,
                            format!("400 Bad Request: {why}\n"),
                        ))
                    }
                };
                Ok::<_, std::convert::Infallible>(resp)
            }
        })
    }

    /// Serves HTTP/1.1 requests on `stream` until the client closes, a
    /// limit is hit, or shutdown asks it to finish its current request;
    /// `served` requests were answered on it before (by the fast path).
    async fn serve_h1<R, W>(self, stream: InterimIo<R, W>, peer: SocketAddr, served: u64)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        // Requests seen on this connection: a head timeout after some
        // requests is an idle keep-alive connection closing, not an attack.
        let served = Arc::new(AtomicU64::new(served));
        // Handlers reach the connection's writer to send 1xx responses.
        let service = self.service(peer, Some(stream.interim()), served.clone());
        let write_stalled = Arc::new(AtomicBool::new(false));
        let io = WriteTimeout::new(stream, self.limits.write_timeout, write_stalled.clone());
        let conn = self
            .h1_builder()
            .serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = self.shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            self.h1_failed(&e, &write_stalled, peer, served.load(Ordering::Relaxed));
        }
    }

    /// hyper's HTTP/1.1 server with this server's limits.
    fn h1_builder(&self) -> hyper::server::conn::http1::Builder {
        let limits = &self.limits;
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            // hyper's read buffer cannot go below 8 KiB; the exact head
            // limit (431 past it, request line included) is max_header_size.
            .max_buf_size(limits.max_header_size.max(8192))
            .max_header_size(limits.max_header_size)
            .keep_alive(true);
        builder
    }

    /// Counts and logs how hyper's HTTP/1.1 connection failed, after
    /// `served` requests.
    fn h1_failed(
        &self,
        e: &hyper::Error,
        write_stalled: &AtomicBool,
        peer: SocketAddr,
        served: u64,
    ) {
        if write_stalled.load(Ordering::Relaxed) {
            self.stopped_reading(peer);
            return;
        }
        if e.is_timeout() {
            self.head_timed_out(peer, served);
            return;
        }
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        if e.is_parse_too_large() {
            tracing::warn!(server = self.name, %peer, "refused request: header too large (431)");
        } else {
            tracing::debug!(server = self.name, %peer, error = %e, "connection error");
        }
    }

    /// The head timeout, on hyper's path and the fast path alike: after a
    /// request it is an idle keep-alive connection closing, before one an
    /// attack (slowloris).
    fn head_timed_out(&self, peer: SocketAddr, served: u64) {
        if served > 0 {
            tracing::debug!(server = self.name, %peer, "closed idle keep-alive connection");
            return;
        }
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(server = self.name, %peer, "closed connection: request head not received in time");
    }

    /// A write made no progress for the write timeout: the client stopped
    /// reading its response.
    fn stopped_reading(&self, peer: SocketAddr) {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(server = self.name, %peer, timeout = ?self.limits.write_timeout,
            "closed connection: the client stopped reading the response (write timeout)");
    }
}

impl<H: Handler> Connection<H> {
    /// Serves HTTP/2 streams on `stream` until the client closes or shutdown
    /// (a GOAWAY, then the open streams finish). Each stream runs as a task
    /// on the server's tracker.
    async fn serve_h2<S>(self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let served = Arc::new(AtomicU64::new(0));
        let service = self.service(peer, None, served);
        let mut builder =
            hyper::server::conn::http2::Builder::new(TrackedExecutor(self.tracker.clone()));
        builder
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.limits.max_header_size).unwrap_or(u32::MAX))
            .max_concurrent_streams(H2_MAX_STREAMS);
        let write_stalled = Arc::new(AtomicBool::new(false));
        let io = WriteTimeout::new(stream, self.limits.write_timeout, write_stalled.clone());
        let conn = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = self.shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        let Err(e) = result else { return };
        let name = self.name;
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        if write_stalled.load(Ordering::Relaxed) {
            tracing::warn!(server = name, %peer, timeout = ?self.limits.write_timeout,
                "closed connection: the client stopped reading the response (write timeout)");
        } else {
            tracing::debug!(server = name, %peer, error = %e, "HTTP/2 connection error");
        }
    }
}

/// The TLS handshake of a new connection, after checking that the client
/// speaks TLS at all: one that sends clear text (`http://` to a TLS port)
/// gets a 400 saying so, instead of a handshake error it cannot read.
async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    mut stream: tokio::net::TcpStream,
) -> Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>, Opening> {
    let mut first = [0u8; 1];
    match stream.peek(&mut first).await {
        Ok(0) => return Err(Opening::Io(io::ErrorKind::UnexpectedEof.into())),
        Ok(_) if first[0] != TLS_HANDSHAKE => {
            use tokio::io::AsyncWriteExt as _;
            // Best effort: the client may already be gone.
            let _ = stream.write_all(TLS_ONLY).await;
            let _ = stream.shutdown().await;
            return Err(Opening::ClearText);
        }
        Ok(_) => {}
        Err(e) => return Err(Opening::Io(e)),
    }
    acceptor.accept(stream).await.map_err(Opening::Handshake)
}

/// Turns an HTTP/2 request's absolute target into the origin form HTTP/1.1
/// handlers expect: `Host` from `:authority` (RFC 9113 §8.3.1), the URI
/// reduced to its path and query. The version stays HTTP/2.
fn origin_form<B>(req: &mut Request<B>) {
    let Some(authority) = req.uri().authority().cloned() else {
        return;
    };
    if !req.headers().contains_key(http::header::HOST) {
        if let Ok(host) = http::HeaderValue::from_str(authority.as_str()) {
            req.headers_mut().insert(http::header::HOST, host);
        }
    }
    let path = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    *req.uri_mut() = http::Uri::from(path);
}

/// What is wrong with a request's `Host` header, if anything (RFC 9112
/// §3.2): an HTTP/1.1 request must carry exactly one, and it must be a valid
/// `host[:port]`; an HTTP/2 one carries its `:authority` as `Host` by now
/// ([`origin_form`]). Both servers answer such a request 400 before their
/// handler sees it, as nginx and Varnish do.
pub fn host_problem<B>(req: &Request<B>) -> Option<&'static str> {
    let mut hosts = req.headers().get_all(http::header::HOST).iter();
    let Some(host) = hosts.next() else {
        return (req.version() >= http::Version::HTTP_11)
            .then_some("HTTP/1.1 requires a Host header");
    };
    if hosts.next().is_some() {
        return Some("more than one Host header");
    }
    (!valid_host(host.as_bytes())).then_some("Host is not a valid host[:port]")
}

/// `uri-host [ ":" port ]` (RFC 9110 §7.2); empty is allowed (a target with
/// no authority), user information is not.
fn valid_host(value: &[u8]) -> bool {
    value.is_empty() || plain_host(value) || valid_host_slow(value)
}

/// [`valid_host`] by the full authority parse.
fn valid_host_slow(value: &[u8]) -> bool {
    if value.contains(&b'@') {
        return false;
    }
    let Ok(auth) = http::uri::Authority::try_from(value) else {
        return false;
    };
    // The port, if any: what follows the last colon outside an IPv6 literal.
    let text = auth.as_str();
    let after_host = text.rfind(']').map_or(text, |i| &text[i + 1..]);
    match after_host.rsplit_once(':') {
        None => true,
        Some((_, port)) => port.is_empty() || port.parse::<u16>().is_ok(),
    }
}

/// The common `Host`: a name or IPv4 address of letters, digits, dots and
/// dashes, then maybe `:` and a port. Valid as it stands, without the full
/// authority parse (which costs ~1,000 instructions a request).
fn plain_host(value: &[u8]) -> bool {
    let (host, port) = match value.iter().position(|&b| b == b':') {
        Some(i) => (&value[..i], &value[i + 1..]),
        None => (value, &[][..]),
    };
    let name = |b: &u8| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-';
    let digits = port.len() <= 5 && port.iter().all(u8::is_ascii_digit);
    !host.is_empty()
        && host.iter().all(name)
        && digits
        && (port.is_empty() || std::str::from_utf8(port).is_ok_and(|p| p.parse::<u16>().is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};

    /// Answers with the name of the thread serving the request, once two
    /// requests are in at once or ten seconds have passed, blocking its
    /// thread meanwhile: a second request can only be answered by another
    /// thread.
    struct Rendezvous {
        arrived: Mutex<usize>,
        both: Condvar,
        first_in: tokio::sync::Notify,
    }

    impl Handler for Rendezvous {
        async fn handle(&self, _req: Request<Incoming>, _peer: SocketAddr) -> Response<Body> {
            let mut n = self.arrived.lock().unwrap();
            *n += 1;
            self.both.notify_all();
            self.first_in.notify_one();
            let (_n, _) = self
                .both
                .wait_timeout_while(n, Duration::from_secs(10), |n| *n < 2)
                .unwrap();
            let name = std::thread::current().name().unwrap_or("?").to_string();
            text(http::StatusCode::OK, name)
        }
    }

    async fn get(addr: SocketAddr) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out.rsplit("\r\n\r\n").next().unwrap().to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_workers_serve_from_two_threads() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = Listener::from(tcp).with_workers(NonZeroUsize::new(2).unwrap());
        let handler = Arc::new(Rendezvous {
            arrived: Mutex::new(0),
            both: Condvar::new(),
            first_in: tokio::sync::Notify::new(),
        });
        let (shutdown, tracker) = (CancellationToken::new(), TaskTracker::new());
        let stats = Arc::new(ConnStats::default());
        tracker.spawn(serve(
            listener,
            handler.clone(),
            HttpLimits::default(),
            shutdown.clone(),
            tracker.clone(),
            stats.clone(),
            "test",
        ));
        // The second connection is made once the first request holds its
        // thread, so only the other worker can accept it.
        let first = tokio::spawn(get(addr));
        handler.first_in.notified().await;
        let b = get(addr).await;
        let mut names = [first.await.unwrap(), b];
        names.sort();
        assert_eq!(names, ["test-0", "test-1"]);
        shutdown.cancel();
        tracker.close();
        tracker.wait().await;
        assert_eq!(stats.accepted.load(Ordering::Relaxed), 2);
        // Every worker let go of the socket: nothing listens any more.
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    /// Answers with the name of the thread serving the request.
    struct ThreadName;

    impl Handler for ThreadName {
        async fn handle(&self, _req: Request<Incoming>, _peer: SocketAddr) -> Response<Body> {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            text(http::StatusCode::OK, name)
        }
    }

    #[tokio::test]
    async fn per_worker_sockets_each_serve_their_own_connections() {
        let workers = NonZeroUsize::new(3).unwrap();
        let sockets = ListenSockets::PerWorker.count(Some(workers));
        let (tcp, siblings) =
            crate::net::bind_tcp_group("127.0.0.1:0".parse().unwrap(), sockets, "test")
                .await
                .unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = Listener {
            siblings,
            ..Listener::from(tcp).with_workers(workers)
        };
        assert_eq!(listener.sockets(), 3);
        assert_eq!(listener.describe(), "workers 3, 3 sockets (SO_REUSEPORT)");
        let (shutdown, tracker) = (CancellationToken::new(), TaskTracker::new());
        let stats = Arc::new(ConnStats::default());
        tracker.spawn(serve(
            listener,
            Arc::new(ThreadName),
            HttpLimits::default(),
            shutdown.clone(),
            tracker.clone(),
            stats.clone(),
            "test",
        ));
        // One connection at a time: with one shared socket any free worker
        // could take each; here the kernel hashes each to a socket, and
        // every worker answers from its own (3 × (2/3)^80 odds of one
        // worker never chosen in 80).
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..80 {
            *seen.entry(get(addr).await).or_insert(0) += 1;
        }
        let names: Vec<&String> = seen.keys().collect();
        assert_eq!(names, ["test-0", "test-1", "test-2"], "{seen:?}");
        shutdown.cancel();
        tracker.close();
        tracker.wait().await;
        assert_eq!(stats.accepted.load(Ordering::Relaxed), 80);
        // Every worker closed its socket: nothing listens any more.
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    fn req(version: http::Version, hosts: &[&[u8]]) -> Request<()> {
        let mut r = Request::builder().version(version).uri("/");
        for h in hosts {
            r = r.header(
                http::header::HOST,
                http::HeaderValue::from_bytes(h).unwrap(),
            );
        }
        r.body(()).unwrap()
    }

    #[test]
    fn host_rules_follow_rfc_9112() {
        const HTTP_10: http::Version = http::Version::HTTP_10;
        const HTTP_11: http::Version = http::Version::HTTP_11;
        assert!(host_problem(&req(HTTP_11, &[])).is_some());
        assert!(host_problem(&req(HTTP_10, &[])).is_none());
        assert!(host_problem(&req(HTTP_11, &[b"a", b"a"])).is_some());
        for bad in [&b"a b"[..], b"u@h", b"h:port", b"h:70000", b"a/b", b"[::1"] {
            assert!(host_problem(&req(HTTP_11, &[bad])).is_some(), "{bad:?}");
        }
        for good in [
            &b""[..],
            b"h",
            b"h:80",
            b"h:",
            b"127.0.0.1:8080",
            b"[::1]:8080",
            b"[::1]",
        ] {
            assert!(host_problem(&req(HTTP_11, &[good])).is_none(), "{good:?}");
        }
        // The shortcut for plain names agrees with the full parse.
        for value in [
            &b"h"[..],
            b"h:80",
            b"h:",
            b"a-b.example:65535",
            b"h:65536",
            b"h:00080",
            b"h:1:2",
            b"-h",
            b"h_",
            b":80",
        ] {
            if plain_host(value) {
                assert!(valid_host_slow(value), "{value:?}");
            }
        }
        assert!(plain_host(b"127.0.0.1:8080") && !plain_host(b"h:65536"));
    }
}
