//! The clear-text HTTP/1.1 fast path: request heads read into one buffer and
//! parsed with `httparse` (hyper's own parser), and the plain GET/HEAD
//! requests a handler can answer from memory ([`Handler::quick`]) answered
//! in order, one write per batch of pipelined requests. A request that is
//! not plain, or that the handler declines, is answered by hyper alone when
//! it is whole and has no body, and the connection comes back here; else
//! it hands the connection to hyper for good, the bytes already read
//! replayed first ([`Rewind`]).
//! Limits and logging are the hyper path's: the head timeout (idle
//! keep-alive included), the head size (past it hyper answers 431), the
//! write timeout, `Connection: close` and graceful shutdown.

use std::future::Future as _;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{plain_host, Connection, Handler};
use crate::interim::InterimIo;

/// Most header fields a fast request may carry (hyper takes 100): a head
/// with more is handed to hyper.
const MAX_HEADERS: usize = 64;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 8 * 1024;

/// A plain request the fast path parsed: HTTP/1.1, GET or HEAD, no body,
/// one plain `Host`, no `Upgrade` or `Expect`, a target of plain characters
/// in origin form.
pub struct QuickRequest<'a> {
    /// HEAD: the answer carries no body.
    pub head: bool,
    /// The request target as sent (`/path?query`).
    pub target: &'a str,
    /// The request's header fields, names in any case.
    pub headers: &'a [httparse::Header<'a>],
    pub peer: SocketAddr,
}

impl QuickRequest<'_> {
    /// The method as the access log writes it.
    pub fn method(&self) -> &'static str {
        if self.head {
            "HEAD"
        } else {
            "GET"
        }
    }

    /// Whether any header field is named `name` (ASCII lower case).
    pub fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case(name))
    }
}

/// The body of a fast answer.
pub enum QuickBody {
    /// Bytes in memory (none for HEAD).
    Bytes(bytes::Bytes),
    /// Bytes in memory, after a head that carries its own `date` line (a
    /// stored response's): hyper then adds none, and neither does the
    /// server.
    Dated(bytes::Bytes),
    /// The first `len` bytes of `file`, sent from the page cache with
    /// `sendfile(2)` (nginx's `sendfile on`): no copy through user space.
    /// `sent` is told how many went out before the connection went on (all
    /// of them) or failed (fewer).
    File {
        file: std::fs::File,
        len: u64,
        sent: Box<dyn FnOnce(u64) + Send>,
    },
}

/// A file still to be sent after the bytes before it.
struct FileBody {
    file: std::fs::File,
    len: u64,
    sent: Box<dyn FnOnce(u64) + Send>,
}

/// Appends hyper's last response line, `date: <IMF-fixdate>` and the empty
/// line that ends the head, the date formatted once a second per thread as
/// hyper does.
fn end_head_with_date(out: &mut Vec<u8>) {
    thread_local! {
        static DATE: std::cell::Cell<(u64, [u8; 29])> = const { std::cell::Cell::new((u64::MAX, [0; 29])) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (cached, mut text) = DATE.get();
    out.extend_from_slice(b"date: ");
    if cached == secs {
        out.extend_from_slice(&text);
    } else {
        let formatted = httpdate::fmt_http_date(now);
        out.extend_from_slice(formatted.as_bytes());
        // Years past 9999 are longer: never cached, always right.
        if formatted.len() == text.len() {
            text.copy_from_slice(formatted.as_bytes());
            DATE.set((secs, text));
        }
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// What the fast path did with the bytes at the front of the buffer.
enum Step {
    /// Answered a request whose head was `used` bytes; `close` if the
    /// connection ends after it; `file` to send after what is in `out`.
    Answered {
        used: usize,
        close: bool,
        file: Option<FileBody>,
    },
    /// No complete head yet.
    Partial,
    /// Not for the fast path, but a whole request without a body, its head
    /// `used` bytes, that hyper answers alone: the fast path goes on after.
    One { used: usize },
    /// Not for the fast path: hyper takes the connection from here.
    Hyper,
}

/// How the fast path left a connection.
enum End {
    /// Done with it (closed, or failed and accounted for).
    Done,
    /// Hand it to hyper with these bytes read but not yet served.
    Hyper(Vec<u8>),
}

/// Why waiting for a request head stopped.
enum Wait {
    Read(usize),
    TimedOut,
    Shutdown,
}

impl<H: Handler> Connection<H> {
    /// Serves a clear-text HTTP/1.1 connection: fast while its requests are
    /// plain and answered by [`Handler::quick`], then by hyper.
    pub(super) async fn serve_clear_h1(self, stream: TcpStream, peer: SocketAddr) {
        let mut served = 0;
        let stream = Arc::new(stream);
        match self.fast(&stream, peer, &mut served).await {
            End::Done => {}
            End::Hyper(unread) => match Arc::try_unwrap(stream) {
                Ok(stream) => {
                    let (read, write) = stream.into_split();
                    let io = InterimIo::from_halves(Rewind::new(unread, read), write);
                    self.serve_h1(io, peer, served).await;
                }
                // Still shared (not expected: a one-request exchange is over
                // and dropped before this): through the shared stream then.
                Err(stream) => {
                    let read = Rewind::new(unread, Shared(stream.clone()));
                    let io = InterimIo::from_halves(read, Shared(stream));
                    self.serve_h1(io, peer, served).await;
                }
            },
        }
    }

    /// Serves one request that the fast path read whole (`request`, no
    /// body) with hyper, on the same connection, and says whether the
    /// connection goes on: hyper gets exactly these bytes, and once its
    /// answer's head is out it is asked to finish and let go (graceful
    /// shutdown after the head adds no `connection: close`). Ends the
    /// connection if hyper's answer does (`Connection: close`), it failed,
    /// or shutdown began meanwhile.
    async fn serve_one(
        &self,
        stream: &Arc<TcpStream>,
        request: Vec<u8>,
        peer: SocketAddr,
        served: &mut u64,
    ) -> bool {
        let state = Arc::new(AtomicU8::new(ONE_WAITING));
        let read: OneRequest = Rewind::new(request, Silent);
        let io = InterimIo::from_halves(read, Shared(stream.clone()));
        let seen = Arc::new(AtomicU64::new(*served));
        let inner = self.service(peer, Some(io.interim()), seen.clone());
        let closing = Arc::new(AtomicBool::new(false));
        let service = {
            let (state, closing) = (state.clone(), closing.clone());
            hyper::service::service_fn(move |req| {
                let answer = hyper::service::Service::call(&inner, req);
                let (state, closing) = (state.clone(), closing.clone());
                let boxed: OneFuture = Box::pin(async move {
                    let resp = answer.await?;
                    // hyper's own test: a `close` token ends the connection.
                    let close = resp
                        .headers()
                        .get_all(http::header::CONNECTION)
                        .iter()
                        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
                        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
                    closing.store(close, Ordering::Relaxed);
                    state.store(ONE_RESPONDED, Ordering::Relaxed);
                    Ok(resp)
                });
                boxed
            })
        };
        let write_stalled = Arc::new(AtomicBool::new(false));
        let io = super::WriteTimeout::new(io, self.limits.write_timeout, write_stalled.clone());
        let mut conn = self
            .h1_builder()
            .serve_connection(hyper_util::rt::TokioIo::new(io), service);
        let cancelled = self.shutdown.cancelled();
        tokio::pin!(cancelled);
        let mut stopping = false;
        // hyper reads the request in its first poll (the bytes are there),
        // so it is never idle when asked to stop: it answers first.
        let result = std::future::poll_fn(|cx| loop {
            if let Poll::Ready(r) = conn.poll_without_shutdown(cx) {
                return Poll::Ready(r);
            }
            if state.load(Ordering::Relaxed) == ONE_RESPONDED {
                // The head is written: finish the answer, then let go.
                state.store(ONE_LETTING_GO, Ordering::Relaxed);
            } else if !stopping && cancelled.as_mut().poll(cx).is_ready() {
                // As `serve_h1` does: the answer says `connection: close`.
                stopping = true;
            } else {
                return Poll::Pending;
            }
            Pin::new(&mut conn).graceful_shutdown();
        })
        .await;
        drop(conn);
        *served = seen.load(Ordering::Relaxed);
        match result {
            Ok(()) => !closing.load(Ordering::Relaxed) && !stopping,
            Err(e) => {
                self.h1_failed(&e, &write_stalled, peer, *served);
                false
            }
        }
    }

    async fn fast(&self, stream: &Arc<TcpStream>, peer: SocketAddr, served: &mut u64) -> End {
        let limits = &self.limits;
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let mut out: Vec<u8> = Vec::new();
        // When the head now awaited must be in; `None` between heads.
        let mut deadline: Option<Instant> = None;
        // One timer and one shutdown waiter for the whole connection: the
        // timer may fire early (armed for an earlier head) and is then moved.
        let timer = tokio::time::sleep(limits.header_timeout);
        tokio::pin!(timer);
        let cancelled = self.shutdown.cancelled();
        tokio::pin!(cancelled);
        loop {
            let mut start = 0;
            let mut close = false;
            let mut hyper = false;
            let mut one = None;
            let mut file = None;
            while start < buf.len() {
                match self.answer(&buf[start..], peer, &mut out) {
                    Step::Answered {
                        used,
                        close: c,
                        file: f,
                    } => {
                        start += used;
                        *served += 1;
                        deadline = None;
                        close = c;
                        file = f;
                        // A file goes out before the next answer is made.
                        if close || file.is_some() {
                            break;
                        }
                    }
                    Step::Partial => break,
                    Step::One { used } => {
                        one = Some(used);
                        break;
                    }
                    Step::Hyper => {
                        hyper = true;
                        break;
                    }
                }
            }
            if !out.is_empty() {
                let written = write_all(stream, &out, limits.write_timeout).await;
                out.clear();
                if let Err(e) = written {
                    if let Some(f) = file {
                        (f.sent)(0);
                    }
                    self.write_failed(peer, &e);
                    return End::Done;
                }
            }
            let sent_file = file.is_some();
            if let Some(f) = file {
                let (n, result) = send_file(stream, &f.file, f.len, limits.write_timeout).await;
                (f.sent)(n);
                if let Err(e) = result {
                    self.write_failed(peer, &e);
                    return End::Done;
                }
            }
            if hyper {
                buf.drain(..start);
                return End::Hyper(buf);
            }
            if let Some(used) = one {
                // The answers before it are out: hyper's comes next.
                let request = buf[start..start + used].to_vec();
                buf.drain(..start + used);
                if !self.serve_one(stream, request, peer, served).await {
                    return End::Done;
                }
                deadline = None;
                continue;
            }
            if close {
                let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write);
                return End::Done;
            }
            buf.drain(..start);
            if sent_file {
                // Pipelined requests after the file are answered first.
                continue;
            }
            if buf.len() >= limits.max_header_size {
                // hyper answers 431 for the head.
                return End::Hyper(buf);
            }
            let due = *deadline.get_or_insert_with(|| Instant::now() + limits.header_timeout);
            let waited = read_more(stream, &mut buf, due, timer.as_mut(), cancelled.as_mut()).await;
            match waited {
                Ok(Wait::Read(0)) if buf.is_empty() => return End::Done,
                // A head cut off by the end of the stream: hyper says so.
                Ok(Wait::Read(0)) => return End::Hyper(buf),
                Ok(Wait::Read(_)) => {}
                Ok(Wait::Shutdown) => return End::Done,
                Ok(Wait::TimedOut) => {
                    self.head_timed_out(peer, *served);
                    return End::Done;
                }
                Err(e) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(server = self.name, %peer, error = %e, "connection error");
                    return End::Done;
                }
            }
        }
    }

    /// Parses the head at the front of `data` and answers it into `out` if
    /// it is plain and the handler takes it.
    fn answer(&self, data: &[u8], peer: SocketAddr, out: &mut Vec<u8>) -> Step {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let used = match req.parse_with_uninit_headers(data, &mut slots) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Step::Partial,
            Err(_) => return Step::Hyper,
        };
        if used > self.limits.max_header_size || req.version != Some(1) {
            return Step::Hyper;
        }
        let mut host = None;
        let mut hosts = 0;
        let mut close = false;
        for h in req.headers.iter() {
            let name = h.name.as_bytes();
            if name.eq_ignore_ascii_case(b"host") {
                hosts += 1;
                host = Some(h.value);
            } else if name.eq_ignore_ascii_case(b"connection") {
                match h.value.trim_ascii() {
                    v if v.eq_ignore_ascii_case(b"close") => close = true,
                    v if v.eq_ignore_ascii_case(b"keep-alive") => {}
                    _ => return Step::Hyper,
                }
            } else if [
                &b"content-length"[..],
                b"transfer-encoding",
                b"upgrade",
                b"expect",
            ]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
            {
                return Step::Hyper;
            }
        }
        // Not taken here: hyper answers this one request alone, unless the
        // connection ends with it (hyper then closes it, as before) or
        // shutdown has begun (hyper's path says so on its answer).
        let other = if close || self.shutdown.is_cancelled() {
            Step::Hyper
        } else {
            Step::One { used }
        };
        let head = match req.method {
            Some("GET") => false,
            Some("HEAD") => true,
            _ => return other,
        };
        let Some(target) = req.path.filter(|t| plain_target(t.as_bytes())) else {
            return other;
        };
        if hosts != 1 || !host.is_some_and(plain_host) {
            return other;
        }
        let quick = QuickRequest {
            head,
            target,
            headers: req.headers,
            peer,
        };
        let Some(body) = self.handler.quick(&quick, out) else {
            return other;
        };
        // Graceful shutdown: this is the connection's last answer. hyper
        // says so on every last answer it gives.
        let close = close || self.shutdown.is_cancelled();
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        if matches!(body, QuickBody::Dated(_)) {
            out.extend_from_slice(b"\r\n");
        } else {
            end_head_with_date(out);
        }
        let file = match body {
            QuickBody::Bytes(bytes) | QuickBody::Dated(bytes) => {
                out.extend_from_slice(&bytes);
                None
            }
            QuickBody::File { file, len, sent } => Some(FileBody { file, len, sent }),
        };
        Step::Answered { used, close, file }
    }

    fn write_failed(&self, peer: SocketAddr, e: &io::Error) {
        if e.kind() == io::ErrorKind::TimedOut {
            self.stopped_reading(peer);
        } else {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(server = self.name, %peer, error = %e, "connection error");
        }
    }
}

/// An origin-form target of characters that need no further checks: `/`
/// first, then unreserved, sub-delims, `:@/?%`; no fragment, no trailing
/// `?` (whose form in the URI type differs), nothing hyper might refuse.
fn plain_target(t: &[u8]) -> bool {
    t.first() == Some(&b'/')
        && t.last() != Some(&b'?')
        && t.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b))
}

/// Reads what the socket has into `buf`, waiting for it until `due` (the
/// head timeout) or shutdown.
async fn read_more(
    stream: &TcpStream,
    buf: &mut Vec<u8>,
    due: Instant,
    mut timer: Pin<&mut tokio::time::Sleep>,
    mut cancelled: Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
) -> io::Result<Wait> {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    loop {
        match stream.try_read_buf(buf) {
            Ok(n) => return Ok(Wait::Read(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if timer.deadline() > due {
            timer.as_mut().reset(due);
        }
        tokio::select! {
            biased;
            r = stream.readable() => r?,
            () = cancelled.as_mut() => return Ok(Wait::Shutdown),
            () = timer.as_mut() => {
                if Instant::now() >= due {
                    return Ok(Wait::TimedOut);
                }
                timer.as_mut().reset(due);
            }
        }
    }
}

/// Writes all of `out`, failing with `TimedOut` once no byte could be
/// written for `timeout` (zero: no limit), as [`super::WriteTimeout`] does.
async fn write_all(stream: &TcpStream, out: &[u8], timeout: Duration) -> io::Result<()> {
    let mut pos = 0;
    let mut stalled: Option<Instant> = None;
    while pos < out.len() {
        match stream.try_write(&out[pos..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                pos += n;
                stalled = None;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_writable(stream, &mut stalled, timeout).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends the first `len` bytes of `file` with `sendfile(2)`, bounded by the
/// write timeout as [`write_all`] is; returns the bytes sent, and the error
/// that stopped it short (a file that shrank is one).
async fn send_file(
    stream: &TcpStream,
    file: &std::fs::File,
    len: u64,
    timeout: Duration,
) -> (u64, io::Result<()>) {
    let mut offset = 0u64;
    let mut stalled: Option<Instant> = None;
    while offset < len {
        let want = usize::try_from(len - offset)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        let r = stream.try_io(tokio::io::Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, file, Some(&mut offset), want).map_err(io::Error::from)
        });
        match r {
            Ok(0) => {
                return (
                    offset,
                    Err(io::Error::other("file shrank while being sent")),
                )
            }
            Ok(_) => stalled = None,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Err(e) = wait_writable(stream, &mut stalled, timeout).await {
                    return (offset, Err(e));
                }
            }
            Err(e) => return (offset, Err(e)),
        }
    }
    (offset, Ok(()))
}

/// Waits until the socket takes more, failing with `TimedOut` once it has
/// taken nothing since `stalled` for `timeout` (zero: no limit).
async fn wait_writable(
    stream: &TcpStream,
    stalled: &mut Option<Instant>,
    timeout: Duration,
) -> io::Result<()> {
    if timeout.is_zero() {
        return stream.writable().await;
    }
    let since = *stalled.get_or_insert_with(Instant::now);
    match tokio::time::timeout_at(since + timeout, stream.writable()).await {
        Ok(r) => r,
        Err(_) => Err(super::write_timed_out(timeout)),
    }
}

/// A read half that first gives back bytes already read from it: what the
/// fast path read but did not serve, for hyper to parse.
pub(super) struct Rewind<R> {
    first: Vec<u8>,
    pos: usize,
    inner: R,
}

impl<R> Rewind<R> {
    fn new(first: Vec<u8>, inner: R) -> Self {
        Rewind {
            first,
            pos: 0,
            inner,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Rewind<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.first.len() {
            let n = (this.first.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.first[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.first.len() {
                this.first = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

/// The boxed answer future of a one-request exchange (hyper's
/// `poll_without_shutdown` needs it `Unpin`).
type OneFuture = Pin<
    Box<
        dyn std::future::Future<
                Output = Result<http::Response<super::Body>, std::convert::Infallible>,
            > + Send,
    >,
>;

/// Where a one-request exchange is: hyper has not answered yet, its answer's
/// head is written (hyper writes it as the answer comes), or hyper was
/// asked to finish and let go.
const ONE_WAITING: u8 = 0;
const ONE_RESPONDED: u8 = 1;
const ONE_LETTING_GO: u8 = 2;

/// The read side hyper gets for one request: its bytes, then nothing (never
/// the end of the stream: the connection goes on).
type OneRequest = Rewind<Silent>;

/// A read half on which nothing comes: the exchange lets hyper go once it
/// answered.
struct Silent;

impl AsyncRead for Silent {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Pending
    }
}

/// The connection's socket shared between the fast path and a one-request
/// exchange with hyper (which needs an owned, `'static` writer).
struct Shared(Arc<TcpStream>);

impl AsyncRead for Shared {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.0.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match self.0.try_read(unfilled) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl tokio::io::AsyncWrite for Shared {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return Poll::Ready(r),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(&*self.0).shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_targets() {
        for good in [&b"/"[..], b"/a/b.txt", b"/a?b=c&d", b"/%20x", b"/a:b@c"] {
            assert!(plain_target(good), "{good:?}");
        }
        for bad in [
            &b""[..],
            b"*",
            b"http://h/",
            b"/a#b",
            b"/a?",
            b"/a b",
            b"/a\"",
            b"/\x7f",
        ] {
            assert!(!plain_target(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_date_line_is_hypers() {
        let mut out = Vec::new();
        end_head_with_date(&mut out);
        let text = String::from_utf8(out).unwrap();
        let date = text
            .strip_prefix("date: ")
            .and_then(|t| t.strip_suffix("\r\n\r\n"))
            .unwrap();
        assert_eq!(date.len(), 29, "{date}");
        assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
    }
}
