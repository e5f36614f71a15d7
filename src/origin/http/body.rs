//! What goes back for a file: the response head (type, validators, 304),
//! the streamed body of a large file, and the body wrapper that counts bytes
//! and logs the request when hyper is done with it.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::http_fields;
use crate::logging::access::{self, Service};
use crate::server::{empty, full, Body, BoxError};

use super::lookup::{Content, Meta};
use super::Counters;

/// Read size when streaming a larger file: few reads per MiB, still a
/// bounded amount of memory per response.
pub(super) const STREAM_CHUNK: usize = 256 * 1024;

/// What the answer for one version of one file says about it, worked out
/// once per version: a file kept in memory answers with these values
/// copied, not formatted again per request.
#[derive(Debug)]
pub(super) struct FileHead {
    pub(super) len: u64,
    pub(super) modified: Option<SystemTime>,
    /// The ETag's text (compared with `If-None-Match`) and its header value.
    etag: Option<(String, HeaderValue)>,
    last_modified: Option<HeaderValue>,
    content_type: HeaderValue,
    /// The 200 head the fast path sends, byte for byte what hyper writes
    /// for [`serve_file`]'s answer, up to its `date` line.
    quick: OnceLock<Box<[u8]>>,
}

impl FileHead {
    pub(super) fn new(file: &Path, meta: &Meta) -> FileHead {
        let etag = meta.modified.and_then(|m| {
            let tag = etag_for(meta.len, m);
            HeaderValue::from_str(&tag).ok().map(|v| (tag, v))
        });
        let last_modified = meta
            .modified
            .and_then(|m| HeaderValue::from_str(&httpdate::fmt_http_date(m)).ok());
        FileHead {
            len: meta.len,
            modified: meta.modified,
            etag,
            last_modified,
            content_type: content_type(file),
            quick: OnceLock::new(),
        }
    }

    /// The head of a 200 answer without its `date` line, as hyper writes
    /// [`serve_file`]'s headers (in their order, names in lower case), built
    /// once: `cache_control` is the same for every request of one origin.
    pub(super) fn quick_head(&self, cache_control: Option<&HeaderValue>) -> &[u8] {
        self.quick.get_or_init(|| {
            let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
            let mut line = |name: &str, value: &HeaderValue| {
                head.extend_from_slice(name.as_bytes());
                head.extend_from_slice(b": ");
                head.extend_from_slice(value.as_bytes());
                head.extend_from_slice(b"\r\n");
            };
            if let Some(cc) = cache_control {
                line("cache-control", cc);
            }
            if let Some((_, v)) = &self.etag {
                line("etag", v);
            }
            if let Some(v) = &self.last_modified {
                line("last-modified", v);
            }
            line("content-type", &self.content_type);
            line("content-length", &HeaderValue::from(self.len));
            head.into_boxed_slice()
        })
    }
}

pub(super) fn serve_file(
    req_headers: &HeaderMap,
    head: &FileHead,
    content: Content,
    cache_control: Option<&HeaderValue>,
    now: SystemTime,
) -> Response<Body> {
    let mut headers = HeaderMap::with_capacity(8);
    if let Some(cc) = cache_control {
        headers.insert(header::CACHE_CONTROL, cc.clone());
    }
    if let Some((_, v)) = &head.etag {
        headers.insert(header::ETAG, v.clone());
    }
    if let Some(v) = &head.last_modified {
        headers.insert(header::LAST_MODIFIED, v.clone());
    }

    let etag = head.etag.as_ref().map(|(tag, _)| tag.as_str());
    if http_fields::not_modified(req_headers, etag, head.modified, now) {
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        *r.headers_mut() = headers;
        return r;
    }

    headers.insert(header::CONTENT_TYPE, head.content_type.clone());
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(head.len));
    let body = match content {
        Content::None => empty(),
        Content::Small(bytes) => full(bytes),
        Content::Stream(file) => FileBody {
            file,
            remaining: head.len,
        }
        .boxed(),
    };
    let mut r = Response::new(body);
    *r.headers_mut() = headers;
    r
}

/// A large file's body, read in [`STREAM_CHUNK`] pieces on the runtime
/// thread: from the page cache a read is one copy, far cheaper than a trip
/// to the blocking pool per piece (nginx reads inline the same way). It
/// stops at the announced length even if the file grows meanwhile.
pub(super) struct FileBody {
    pub(super) file: std::fs::File,
    pub(super) remaining: u64,
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = this.remaining.min(STREAM_CHUNK as u64);
        let mut buf = Vec::with_capacity(want as usize);
        let read = (&mut this.file).take(want).read_to_end(&mut buf);
        Poll::Ready(Some(match read {
            Ok(0) => Err(io::Error::other("file shrank while being sent").into()),
            Ok(n) => {
                this.remaining -= n as u64;
                Ok(Frame::data(Bytes::from(buf)))
            }
            Err(e) => Err(e.into()),
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A strong validator: it changes whenever the size or the modification
/// time (to the nanosecond) does.
pub fn etag_for(len: u64, modified: SystemTime) -> String {
    let nanos = modified
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    format!("\"{len:x}-{nanos:x}\"")
}

/// Content type by file extension (mime_guess's table); text is UTF-8;
/// unknown types are plain bytes.
pub fn content_type(file: &Path) -> HeaderValue {
    let Some(mime) = mime_guess::from_path(file).first_raw() else {
        return HeaderValue::from_static("application/octet-stream");
    };
    if mime.starts_with("text/") {
        HeaderValue::try_from(format!("{mime}; charset=utf-8"))
            .unwrap_or_else(|_| HeaderValue::from_static(mime))
    } else {
        HeaderValue::from_static(mime)
    }
}

pub(super) struct RequestLog {
    pub(super) peer: SocketAddr,
    pub(super) method: Method,
    pub(super) target: String,
    pub(super) status: StatusCode,
    pub(super) started: Instant,
    /// Body bytes announced by Content-Length (none for HEAD).
    pub(super) expected: Option<u64>,
    pub(super) bytes: u64,
    pub(super) complete: bool,
    pub(super) counters: Arc<Counters>,
}

/// A response body that counts what it sends and logs the request once
/// hyper drops it (finished, or cut short by the client).
pub(super) struct LoggedBody {
    pub(super) inner: Body,
    pub(super) log: RequestLog,
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let log = &mut this.log;
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    log.bytes += n;
                    log.counters.bytes_sent.fetch_add(n, Ordering::Relaxed);
                }
            }
            Poll::Ready(None) => log.complete = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        let log = &self.log;
        // hyper stops polling once Content-Length bytes are out, so a
        // full count is as good as end-of-stream.
        let complete =
            log.complete || self.inner.is_end_stream() || log.expected == Some(log.bytes);
        log_request(
            log.peer,
            log.method.as_str(),
            &log.target,
            log.status.as_u16(),
            log.bytes,
            log.started.elapsed(),
            complete,
        );
    }
}

/// The origin's access line for one request (either path writes it).
pub(super) fn log_request(
    peer: SocketAddr,
    method: &str,
    target: &str,
    status: u16,
    bytes: u64,
    duration: Duration,
    complete: bool,
) {
    access::info(Service::Origin, |line| {
        line.message(format_args!("request"))
            .field("peer", peer)
            .field("method", method)
            .field("path", target)
            .field("status", status)
            .field("bytes", bytes)
            .field("duration", format_args!("{duration:?}"))
            .field("complete", complete);
    });
}
