//! Interim (1xx) responses on a server connection. hyper's HTTP/1 server
//! cannot send them, so the connection's writing half is shared: hyper writes
//! through [`InterimIo`], and a handler holding the request's [`Interim`]
//! puts a `103 Early Hints` (or `102`) on the wire before its final response.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The writing half, shared by hyper and the request's [`Interim`].
struct Writer<W> {
    half: W,
    /// Interim responses accepted but not yet on the wire: written before
    /// anything hyper writes next, so they always precede the final head.
    pending: BytesMut,
    /// hyper wrote since its last flush: a response may be half written,
    /// and an interim response now would land in the middle of it.
    mid_message: bool,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    /// Writes out `pending` (Ready once it is empty).
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            match Pin::new(&mut self.half).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.pending.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn lock<W>(w: &Mutex<Writer<W>>) -> std::sync::MutexGuard<'_, Writer<W>> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection whose writes can be shared with [`Interim`] handles: a TCP
/// stream's halves (the fast path hands over its read half wrapped in what it
/// already read), or any stream (TLS) split by tokio.
pub struct InterimIo<R, W> {
    read: R,
    writer: Arc<Mutex<Writer<W>>>,
}

impl<S: AsyncRead + AsyncWrite + Send + 'static>
    InterimIo<tokio::io::ReadHalf<S>, tokio::io::WriteHalf<S>>
{
    /// Any stream (a TLS one, say), split by tokio.
    pub fn split(stream: S) -> Self {
        let (read, half) = tokio::io::split(stream);
        InterimIo::from_halves(read, half)
    }
}

impl<R, W: AsyncWrite + Unpin + Send + 'static> InterimIo<R, W> {
    pub(crate) fn from_halves(read: R, half: W) -> Self {
        InterimIo {
            read,
            writer: Arc::new(Mutex::new(Writer {
                half,
                pending: BytesMut::new(),
                mid_message: false,
            })),
        }
    }

    /// A handle for one request on this connection.
    pub fn interim(&self) -> Interim {
        Interim {
            writer: self.writer.clone(),
        }
    }
}

impl<R: AsyncRead + Unpin, W> AsyncRead for InterimIo<R, W> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl<R: Unpin, W: AsyncWrite + Unpin> AsyncWrite for InterimIo<R, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut w = lock(&self.writer);
        std::task::ready!(w.drain(cx))?;
        w.mid_message = true;
        Pin::new(&mut w.half).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut w = lock(&self.writer);
        std::task::ready!(w.drain(cx))?;
        w.mid_message = true;
        Pin::new(&mut w.half).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        lock(&self.writer).half.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut w = lock(&self.writer);
        std::task::ready!(w.drain(cx))?;
        let r = Pin::new(&mut w.half).poll_flush(cx);
        // hyper flushes once its buffer is empty: nothing of its is in flight.
        if matches!(r, Poll::Ready(Ok(()))) {
            w.mid_message = false;
        }
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut w = lock(&self.writer);
        std::task::ready!(w.drain(cx))?;
        Pin::new(&mut w.half).poll_shutdown(cx)
    }
}

/// Sends interim responses to the client of one request (present in the
/// request's extensions for HTTP/1.1 clients only: 1.0 ones do not expect
/// them, RFC 9110 §15.2).
#[derive(Clone)]
pub struct Interim {
    writer: Arc<Mutex<dyn InterimWriter>>,
}

/// The connection's writer, whatever its stream type.
trait InterimWriter: Send {
    fn push(&mut self, head: &[u8]) -> bool;
}

impl<W: AsyncWrite + Unpin + Send> InterimWriter for Writer<W> {
    /// Queues `head` and makes one attempt to write it now; false when hyper
    /// is in the middle of a message.
    fn push(&mut self, head: &[u8]) -> bool {
        if self.mid_message {
            return false;
        }
        self.pending.extend_from_slice(head);
        // One attempt now; what the socket does not take goes out before
        // hyper's next write.
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        let _ = self.drain(&mut cx);
        true
    }
}

impl Interim {
    /// Puts a 1xx response on the wire now if the socket takes it, else just
    /// before the final response. Never blocks. Returns false (and drops it)
    /// when it cannot be placed safely: not a 1xx, `100`/`101` (the server's
    /// own business), or hyper in the middle of writing something.
    pub fn send(&self, status: StatusCode, headers: &HeaderMap) -> bool {
        if !status.is_informational()
            || status == StatusCode::CONTINUE
            || status == StatusCode::SWITCHING_PROTOCOLS
        {
            return false;
        }
        let reason = status.canonical_reason().unwrap_or("Informational");
        let mut head = format!("HTTP/1.1 {} {reason}\r\n", status.as_u16()).into_bytes();
        for (name, value) in headers {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        w.push(&head)
    }
}
