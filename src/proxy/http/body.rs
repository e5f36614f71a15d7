//! Body adapters: an upstream body read whole for the store within bounds,
//! streamed with an idle timeout, or paced at an impaired link's rate.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

use crate::proxy::budget::ChargedBuf;
use crate::proxy::impair::{Direction, Impairment};
use crate::proxy::{Counters, DelayTimer};
use crate::server::{add, bump};
use crate::server::{Body, BoxError};

use super::upstream::UpstreamError;

pub(super) enum Buffered {
    /// The whole body, within the bound.
    Complete(Bytes),
    /// Over a bound: what was read so far, the frame that did not fit, and
    /// the rest still to stream.
    Overflow(Bytes, Bytes, Body),
    Failed(UpstreamError),
}

/// Reads a body whole into `buf` if it fits in `limit` bytes and in the
/// memory budget `buf` is charged to, by `deadline`.
pub(super) async fn buffer(
    mut body: Body,
    mut buf: ChargedBuf,
    limit: u64,
    deadline: tokio::time::Instant,
    counters: &Counters,
) -> Buffered {
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Buffered::Failed(UpstreamError {
                    status: StatusCode::GATEWAY_TIMEOUT,
                    message: "upstream did not finish the response body in time".to_string(),
                })
            }
            Ok(None) => return Buffered::Complete(buf.freeze()),
            Ok(Some(Err(e))) => {
                return Buffered::Failed(UpstreamError {
                    status: StatusCode::BAD_GATEWAY,
                    message: format!("upstream broke off the response body ({e})"),
                })
            }
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            add(&counters.bytes_from_upstream, data.len() as u64);
            if buf.len() as u64 + data.len() as u64 > limit {
                // Larger than an entry may be (chunked, so not known before).
                return Buffered::Overflow(buf.freeze(), data, body);
            }
            if !buf.extend(&data) {
                // Holding it would go past the memory bound: stream the rest.
                bump(&counters.streamed_over_limit);
                return Buffered::Overflow(buf.freeze(), data, body);
            }
        }
    }
}

/// An upstream body on its way to the client: first whatever was already
/// buffered, then the rest as it arrives, counting bytes. An upstream that
/// sends nothing for `idle` mid-body ends it with an error (the client sees
/// the body cut short) instead of holding the client until shutdown.
pub(super) struct UpstreamBody {
    /// Already read from the upstream, sent first.
    prefix: VecDeque<Bytes>,
    inner: Body,
    counters: Arc<Counters>,
    idle: Duration,
    /// Fires `idle` after the body started waiting for the upstream; armed
    /// only while waiting, so a slow reader on the client side never trips it.
    stall: Pin<Box<tokio::time::Sleep>>,
    waiting: bool,
    /// The upstream's body failed: handed on at the next poll, so hyper
    /// first writes out the response head (and what came before) instead of
    /// dropping a connection whose head is still in its buffer.
    failed: Option<BoxError>,
}

impl UpstreamBody {
    pub(super) fn new(
        prefix: VecDeque<Bytes>,
        inner: Body,
        idle: Duration,
        counters: Arc<Counters>,
    ) -> Self {
        UpstreamBody {
            prefix,
            inner,
            counters,
            idle,
            stall: Box::pin(tokio::time::sleep(idle)),
            waiting: false,
            failed: None,
        }
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(p) = self.prefix.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(p))));
        }
        if let Some(e) = self.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if !matches!(polled, Poll::Pending) {
            self.waiting = false;
        }
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    add(&self.counters.bytes_from_upstream, d.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                // A reset or a malformed chunk mid-body: as much an upstream
                // failure as the stall below, and counted the same. Held for
                // one turn: hyper flushes what it buffered when the body is
                // pending, so the client sees the head and a cut body, never
                // a connection closed without an answer.
                bump(&self.counters.upstream_errors);
                self.failed = Some(e);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let this = &mut *self;
                if !this.waiting {
                    this.waiting = true;
                    let deadline = tokio::time::Instant::now() + this.idle;
                    this.stall.as_mut().reset(deadline);
                }
                if this.stall.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                bump(&this.counters.upstream_errors);
                let message = format!(
                    "upstream sent nothing for {} in the middle of the response body",
                    crate::units::format_duration(this.idle)
                );
                tracing::warn!(target: "netrun::proxy", "{message}");
                Poll::Ready(Some(Err(message.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        if self.prefix.is_empty() {
            return inner;
        }
        // Saturating: the inner hint comes from the upstream's Content-Length.
        let n: u64 = self.prefix.iter().map(|p| p.len() as u64).sum();
        let mut hint = SizeHint::new();
        if let Some(u) = inner.upper() {
            hint.set_upper(u.saturating_add(n));
        }
        hint.set_lower(inner.lower().saturating_add(n));
        hint
    }
}

/// Slices a response body into pieces the impairment's rate-limited link lets
/// through one after the other: each piece leaves once it has "crossed" the
/// virtual link, so a client sees the link's rate, not loopback's.
pub(super) struct PacedBody {
    inner: Body,
    impair: Arc<dyn Impairment>,
    delays: DelayTimer,
    /// Data taken from `inner` and not yet paced.
    pending: Bytes,
    /// The piece waiting for its slot on the link, and that wait.
    waiting: Option<(Bytes, crate::timer::Sleep)>,
}

impl PacedBody {
    /// Small enough that pacing is smooth, large enough to be cheap.
    const PIECE: usize = 16 * 1024;

    pub(super) fn new(inner: Body, impair: Arc<dyn Impairment>, delays: DelayTimer) -> Self {
        PacedBody {
            inner,
            impair,
            delays,
            pending: Bytes::new(),
            waiting: None,
        }
    }

    fn buffered(&self) -> u64 {
        (self.pending.len() + self.waiting.as_ref().map_or(0, |(b, _)| b.len())) as u64
    }
}

impl http_body::Body for PacedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            if let Some((_, sleep)) = &mut this.waiting {
                std::task::ready!(Pin::new(sleep).poll(cx));
                let (piece, _) = this.waiting.take().expect("checked above");
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            if !this.pending.is_empty() {
                let n = this.pending.len().min(Self::PIECE);
                let piece = this.pending.split_to(n);
                let wait = this.impair.http_body_wait(Direction::ToClient, n);
                if wait.is_zero() {
                    return Poll::Ready(Some(Ok(Frame::data(piece))));
                }
                this.waiting = Some((piece, this.delays.sleep(wait)));
                continue;
            }
            match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.pending = data,
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.buffered() == 0 && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + self.buffered());
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + self.buffered());
        }
        hint
    }
}
