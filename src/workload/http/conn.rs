//! A workload client's connections: opening one (TCP, then TLS if asked,
//! then HTTP/1.1 or HTTP/2: by ALPN over TLS, by prior knowledge in clear
//! text), timing each step, and handing it to the requests of a client
//! (`Lane`): owned by its one lane, or shared by the lanes that are HTTP/2
//! streams over it. Errors are the classes a request counts.

use std::error::Error as _;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::h1::H1Conn;
use super::HttpProbeConfig;
use crate::tls::ALPN_H2;

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    Http1,
    Http2,
}

impl Protocol {
    /// As curl's `%{http_version}` names it, with the `HTTP/` prefix.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Protocol::Http1 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }
}

/// Where one request's time went. `connect` and `tls` are set on the
/// request that opened its connection (or the first over a connection
/// opened before the clock started), never on one that reused it.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Timing {
    pub connect: Option<Duration>,
    pub tls: Option<Duration>,
    /// From the request's start to its response head.
    pub ttfb: Option<Duration>,
    pub protocol: Option<Protocol>,
}

/// A request sender on an open connection.
pub(super) enum Sender {
    /// Clear-text HTTP/1.1, spoken by the request loop itself (h1.rs).
    Raw(H1Conn),
    /// HTTP/1.1: one request at a time.
    H1(http1::SendRequest<Empty<Bytes>>),
    /// HTTP/2: cloned for each concurrent stream.
    H2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    /// Whether the connection can take a request (false once the server
    /// closed it); waits while an HTTP/1.1 response is still being read.
    async fn usable(&mut self) -> bool {
        match self {
            Sender::Raw(c) => c.reusable(),
            Sender::H1(s) => s.ready().await.is_ok(),
            Sender::H2(s) => s.ready().await.is_ok(),
        }
    }

    fn protocol(&self) -> Protocol {
        match self {
            Sender::Raw(_) | Sender::H1(_) => Protocol::Http1,
            Sender::H2(_) => Protocol::Http2,
        }
    }
}

/// An open connection.
pub(super) struct Live {
    pub sender: Sender,
    /// Connect and TLS times of a connection opened before the clock, not
    /// yet reported: the first request over it carries them.
    opened: Option<(Option<Duration>, Option<Duration>)>,
}

impl Live {
    /// Takes over a connection's report-once times into `timing`.
    fn report(&mut self, timing: &mut Timing) {
        timing.protocol = Some(self.sender.protocol());
        if let Some((connect, tls)) = self.opened.take() {
            (timing.connect, timing.tls) = (connect, tls);
        }
    }
}

/// Opens a connection before the clock starts (keep-alive runs, as wrk and
/// h2load do): its times go to the first request over it. `None` when it
/// fails or takes longer than the request timeout: the client then
/// connects on its first request, where the failure counts.
pub(super) async fn preopen(cfg: &HttpProbeConfig) -> Option<Live> {
    let mut timing = Timing::default();
    let sender = tokio::time::timeout(cfg.timeout, open(cfg, &mut timing))
        .await
        .ok()?
        .ok()?;
    Some(Live {
        sender,
        opened: Some((timing.connect, timing.tls)),
    })
}

/// How one lane (a request loop) of a client reaches its connection.
pub(super) enum Lane {
    /// The client's only lane: the connection is its own (HTTP/1.1, or
    /// HTTP/2 with one stream), no sharing, no lock.
    Own(Option<Live>),
    /// One of `streams` lanes over a client's HTTP/2 connection, with the
    /// number of the connection it last used.
    Shared(Arc<SharedConn>, u64),
}

impl Lane {
    /// The sender for the next request: the lane's connection if the server
    /// has not closed it, else a new one (its times in `timing`).
    pub(super) async fn acquire(
        &mut self,
        cfg: &HttpProbeConfig,
        timing: &mut Timing,
    ) -> Result<Sender, &'static str> {
        match self {
            Lane::Own(slot) => {
                if let Some(mut live) = slot.take() {
                    if live.sender.usable().await {
                        live.report(timing);
                        return Ok(live.sender);
                    }
                }
                // Boxed: opening (TLS, HTTP/2 handshakes) is a large future,
                // and unboxed its size would be copied with every request.
                Box::pin(open(cfg, timing)).await
            }
            Lane::Shared(shared, used) => {
                let (sender, id) = Box::pin(shared.acquire(cfg, timing)).await?;
                *used = id;
                Ok(sender)
            }
        }
    }

    /// The connection last acquired refused a request unprocessed (an
    /// HTTP/2 GOAWAY or REFUSED_STREAM): a shared one is not handed out
    /// again, so the next `acquire` opens another. An own one was already
    /// taken out of the lane.
    pub(super) fn refused(&mut self) {
        if let Lane::Shared(shared, used) = self {
            let mut state = shared.state();
            if matches!(&*state, Shared::Open(_, id) if id == used) {
                *state = Shared::Closed;
            }
        }
    }

    /// Gives a sender back after a whole response, for the next request.
    /// A shared lane's clone is simply dropped: the connection stays shared.
    pub(super) fn release(&mut self, sender: Sender, keep_alive: bool) {
        let reusable = match &sender {
            Sender::Raw(c) => c.reusable(),
            _ => true,
        };
        if let (Lane::Own(slot), true) = (self, keep_alive && reusable) {
            *slot = Some(Live {
                sender,
                opened: None,
            });
        }
    }
}

/// A client's HTTP/2 connection, shared by its stream lanes. The lock is
/// never held across an `.await`: one lane opens a new connection while
/// the others wait on `opened`.
pub(super) struct SharedConn {
    state: Mutex<Shared>,
    opened: Notify,
    /// Numbers the connections opened, so a lane can let go of the one it
    /// used and not of its successor.
    count: AtomicU64,
}

enum Shared {
    Closed,
    Opening,
    /// The connection and its number.
    Open(Live, u64),
}

impl SharedConn {
    pub(super) fn new(live: Option<Live>) -> SharedConn {
        SharedConn {
            state: Mutex::new(live.map_or(Shared::Closed, |l| Shared::Open(l, 0))),
            opened: Notify::new(),
            count: AtomicU64::new(1),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Shared> {
        // Nothing panics while holding it; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A sender on the shared connection, and the connection's number.
    async fn acquire(
        &self,
        cfg: &HttpProbeConfig,
        timing: &mut Timing,
    ) -> Result<(Sender, u64), &'static str> {
        // Wait while another lane opens the connection, then use it (or
        // open one if that failed).
        loop {
            let notified = {
                let mut state = self.state();
                match &mut *state {
                    Shared::Open(live, id) => {
                        if let Sender::H2(s) = &live.sender {
                            if !s.is_closed() {
                                let s = s.clone();
                                live.report(timing);
                                return Ok((Sender::H2(s), *id));
                            }
                        }
                        // Closed by the server (or ALPN chose HTTP/1.1,
                        // which cannot be shared): open another.
                        *state = Shared::Opening;
                        break;
                    }
                    Shared::Closed => {
                        *state = Shared::Opening;
                        break;
                    }
                    // Registered before the lock is let go, so the opener's
                    // notify_waiters cannot be missed.
                    Shared::Opening => self.opened.notified(),
                }
            };
            notified.await;
        }
        // This lane opens; a drop guard puts the state back if the request
        // times out or is cancelled meanwhile.
        let guard = OpeningGuard(self);
        let opened = open(cfg, timing).await;
        std::mem::forget(guard);
        let id = self.count.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        *state = match &opened {
            Ok(Sender::H2(s)) if cfg.keep_alive => Shared::Open(
                Live {
                    sender: Sender::H2(s.clone()),
                    opened: None,
                },
                id,
            ),
            _ => Shared::Closed,
        };
        drop(state);
        self.opened.notify_waiters();
        opened.map(|s| (s, id))
    }
}

/// Resets a shared connection that was being opened when the opening lane
/// stopped (timeout, cancellation), waking the lanes that wait for it.
struct OpeningGuard<'a>(&'a SharedConn);

impl Drop for OpeningGuard<'_> {
    fn drop(&mut self) {
        *self.0.state() = Shared::Closed;
        self.0.opened.notify_waiters();
    }
}

/// Opens a connection: TCP, then TLS if asked, then HTTP/1.1 or HTTP/2 (by
/// ALPN over TLS, by prior knowledge in clear text), timing each step.
/// Clear-text HTTP/1.1 is the lean client of h1.rs; the rest is hyper's.
pub(super) async fn open(
    cfg: &HttpProbeConfig,
    timing: &mut Timing,
) -> Result<Sender, &'static str> {
    let t = Instant::now();
    let stream = TcpStream::connect(cfg.target)
        .await
        .map_err(|e| classify_io(&e))?;
    timing.connect = Some(t.elapsed());
    let _ = stream.set_nodelay(true);
    let Some(tls) = &cfg.wire.tls else {
        if !cfg.wire.http2 {
            timing.protocol = Some(Protocol::Http1);
            return Ok(Sender::Raw(H1Conn::new(stream)));
        }
        return handshake(stream, true, timing).await;
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
    let sender = if h2 {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(classify_hyper)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Sender::H2(sender)
    } else {
        let (sender, connection) = http1::handshake(io).await.map_err(classify_hyper)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Sender::H1(sender)
    };
    timing.protocol = Some(sender.protocol());
    Ok(sender)
}

pub(super) fn classify_io(e: &io::Error) -> &'static str {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "refused",
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => "reset",
        TimedOut => "timeout",
        _ => "other",
    }
}

pub(super) fn classify_hyper(e: hyper::Error) -> &'static str {
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
