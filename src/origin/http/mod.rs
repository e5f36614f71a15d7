//! Static files over HTTP/1.1: GET and HEAD, content types by extension,
//! validators (ETag, Last-Modified) with 304 answers, streamed bodies, and
//! paths that can never leave the www folder; synthetic objects under
//! `/objects/<key>/<size>` (`objects.rs`). Connection handling (limits,
//! keep-alive, graceful shutdown) is the shared loop in [`crate::server`].

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod body;
mod lookup;
mod objects;

use super::hot::HotFiles;
use super::path::{self, SafePath};
use super::{OriginConfig, LOG_TARGET};
use crate::clock::Clock;
use crate::server::{
    self, bump, closing, text, Body, BodyError, ConnStats, Handler, HttpLimits, QuickBody,
};
use crate::throttle::Throttle;

use body::{serve_file, FileHead, LoggedBody, RequestLog};
use lookup::{lookup_blocking, open_root, Fast, Lookup};

/// A running HTTP file server.
pub struct HttpOrigin {
    addr: SocketAddr,
    root: PathBuf,
    counters: Arc<Counters>,
    conns: Arc<ConnStats>,
}

/// A snapshot of the HTTP side's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HttpStats {
    /// Connections accepted.
    pub connections: u64,
    /// Connections that had to wait because `max_connections` were open.
    pub connections_waited: u64,
    /// Connections ended by a protocol error, a header timeout, an oversized
    /// head (431) or a client that stopped reading (write timeout).
    pub connection_errors: u64,
    /// Requests answered (any status).
    pub requests: u64,
    /// Response body bytes sent.
    pub bytes_sent: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// 304 answers to conditional requests (also counted in `status_3xx`).
    pub not_modified: u64,
    /// Requests whose path tried to leave the www folder, refused with 403.
    pub refused_paths: u64,
    /// Requests refused by a body limit (413 too large, 408 too slow).
    pub limit_hits: u64,
}

impl fmt::Display for HttpStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "http: {} connections, {} requests ({} 2xx, {} 3xx, {} 4xx, {} 5xx), {} body bytes, \
             {} refused paths, {} limit hits, {} connection errors",
            self.connections,
            self.requests,
            self.status_2xx,
            self.status_3xx,
            self.status_4xx,
            self.status_5xx,
            self.bytes_sent,
            self.refused_paths,
            self.limit_hits,
            self.connection_errors
        )
    }
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    bytes_sent: AtomicU64,
    by_class: [AtomicU64; 4],
    not_modified: AtomicU64,
    refused_paths: AtomicU64,
    limit_hits: AtomicU64,
    /// Requests the fast path answered (also in the counts above); for tests.
    quick: AtomicU64,
}

/// Starts serving `config.www` on `listener` until `shutdown` is cancelled.
/// The accept loop and every connection run on `tracker`.
pub async fn spawn(
    listener: server::Listener,
    config: OriginConfig,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<HttpOrigin> {
    spawn_with(listener, config, clock, shutdown, tracker, true).await
}

/// [`spawn`], with the fast path for kept files on or off (tests compare
/// the two).
pub(crate) async fn spawn_with(
    listener: server::Listener,
    config: OriginConfig,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
    quick: bool,
) -> anyhow::Result<HttpOrigin> {
    let root = super::www_root(&config.www)?;
    let addr = listener.tcp.local_addr()?;
    let counters = Arc::new(Counters::default());
    let conns = Arc::new(ConnStats::default());
    let files = Arc::new(Files {
        dir: open_root(&root),
        hot: HotFiles::default(),
        clock,
        root: root.clone(),
        limits: config.limits.clone(),
        counters: counters.clone(),
        cache_control: config
            .max_age
            .and_then(|a| HeaderValue::from_str(&format!("max-age={}", a.as_secs())).ok()),
        client_warnings: Throttle::new(Duration::from_secs(1)),
        quick,
    });
    tracker.spawn(server::serve(
        listener,
        files,
        config.limits,
        shutdown,
        tracker.clone(),
        conns.clone(),
        "origin",
    ));
    Ok(HttpOrigin {
        addr,
        root,
        counters,
        conns,
    })
}

impl HttpOrigin {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The canonical www folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn stats(&self) -> HttpStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HttpStats {
            connections: get(&self.conns.accepted),
            connections_waited: get(&self.conns.waited_for_slot),
            connection_errors: get(&self.conns.errors),
            requests: get(&c.requests),
            bytes_sent: get(&c.bytes_sent),
            status_2xx: get(&c.by_class[0]),
            status_3xx: get(&c.by_class[1]),
            status_4xx: get(&c.by_class[2]),
            status_5xx: get(&c.by_class[3]),
            not_modified: get(&c.not_modified),
            refused_paths: get(&c.refused_paths),
            limit_hits: get(&c.limit_hits),
        }
    }
}

struct Files {
    root: PathBuf,
    /// The www folder, opened once: fast lookups resolve beneath it. `None`
    /// if it could not be opened so (every lookup then takes the slow path).
    dir: Option<OwnedFd>,
    /// Small files served lately, each checked against the disk per use.
    hot: HotFiles<Arc<FileHead>>,
    /// The time: when a file has settled enough to be kept in `hot`, and
    /// whether an `If-Modified-Since` is in the future.
    clock: Arc<dyn Clock>,
    limits: HttpLimits,
    counters: Arc<Counters>,
    /// `Cache-Control` for every file answer, from `max_age`.
    cache_control: Option<HeaderValue>,
    /// Warnings a client can trigger at will (refused or unresolvable
    /// paths) are logged at most once a second.
    client_warnings: Throttle,
    /// Whether kept files are answered by the fast path ([`Handler::quick`]).
    quick: bool,
}

/// Longest request path looked up (Linux's PATH_MAX): a longer one cannot
/// name a file, so it is refused with 414 before touching the file system.
const MAX_PATH: usize = 4096;

impl Handler for Files {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let target = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().to_string(), |p| p.to_string());
        let response = self.respond(req, peer).await;

        let status = response.status();
        bump(&self.counters.requests);
        if let Some(class) = (status.as_u16() / 100).checked_sub(2) {
            if let Some(c) = self.counters.by_class.get(usize::from(class)) {
                bump(c);
            }
        }
        if status == StatusCode::NOT_MODIFIED {
            bump(&self.counters.not_modified);
        }
        // The log line is written when hyper is done with the body, so it
        // reports the bytes actually sent and the time to the last byte.
        let expected = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .filter(|_| method != Method::HEAD);
        let log = RequestLog {
            peer,
            expected,
            method,
            target,
            status,
            started,
            bytes: 0,
            complete: false,
            counters: self.counters.clone(),
        };
        response.map(|inner| LoggedBody { inner, log }.boxed())
    }

    /// A GET or HEAD of a regular file with no conditional and no `Range`,
    /// found as [`Fast::lookup`] finds it: from memory if kept and still the
    /// version on disk (the same `statx` check), else opened inline; its
    /// head as hyper writes [`serve_file`]'s, counted and logged as
    /// [`Files::handle`] does. Anything else (folders, errors, symlinks,
    /// objects) is declined: hyper serves it.
    fn quick(&self, req: &server::QuickRequest<'_>, out: &mut Vec<u8>) -> Option<QuickBody> {
        if !self.quick {
            return None;
        }
        let started = Instant::now();
        let dir = self.dir.as_ref()?;
        let path = req.target.split_once('?').map_or(req.target, |(p, _)| p);
        if path.len() > MAX_PATH
            || objects::parse(path).is_some()
            || req.headers.iter().any(|h| conditional(h.name))
        {
            return None;
        }
        let Ok(safe) = path::resolve(path) else {
            return None;
        };
        if safe.trailing_slash {
            return None;
        }
        let rel = safe.relative();
        let Ok((rustix::fs::FileType::RegularFile, stamp)) =
            lookup::stat_beneath(dir.as_fd(), &rel)
        else {
            return None;
        };
        let Some((body, head)) = self.hot.get(&rel, &stamp) else {
            return self.quick_file(req, dir.as_fd(), &rel, &stamp, out, started);
        };
        out.extend_from_slice(head.quick_head(self.cache_control.as_ref()));
        let body = if req.head { Bytes::new() } else { body };
        self.count_quick();
        Some(self.quick_sent(req, body, started))
    }
}

impl Files {
    /// A file not kept (yet): opened beneath the folder as [`Fast::lookup`]
    /// opens it (HEAD with `O_PATH`), its head made for this version; a
    /// small one read whole and kept, a larger one left to `sendfile(2)`.
    /// Counted now, logged once sent.
    fn quick_file(
        &self,
        req: &server::QuickRequest<'_>,
        dir: std::os::fd::BorrowedFd<'_>,
        rel: &Path,
        stamp: &super::hot::Stamp,
        out: &mut Vec<u8>,
        started: Instant,
    ) -> Option<QuickBody> {
        use lookup::Content;
        let flags = if req.head {
            rustix::fs::OFlags::PATH
        } else {
            rustix::fs::OFlags::RDONLY
        };
        let file = std::fs::File::from(lookup::open_beneath(dir, rel, flags).ok()?);
        let head = Arc::new(FileHead::new(rel, &lookup::meta_of(stamp)));
        let content = if req.head {
            Content::None
        } else {
            // A read error is left to hyper's path, which answers 500.
            lookup::read_content(file, head.len).ok()?
        };
        out.extend_from_slice(head.quick_head(self.cache_control.as_ref()));
        self.count_quick();
        let file = match content {
            Content::Stream(file) => file,
            Content::Small(body) => {
                self.hot
                    .put(rel, *stamp, &body, head.clone(), self.clock.wall());
                return Some(self.quick_sent(req, body, started));
            }
            Content::None => return Some(self.quick_sent(req, Bytes::new(), started)),
        };
        let (peer, target) = (req.peer, req.target.to_string());
        let (len, counters) = (head.len, self.counters.clone());
        let sent = Box::new(move |bytes: u64| {
            server::add(&counters.bytes_sent, bytes);
            let complete = bytes == len;
            body::log_request(
                peer,
                "GET",
                &target,
                200,
                bytes,
                started.elapsed(),
                complete,
            );
        });
        Some(QuickBody::File { file, len, sent })
    }

    /// A fast answer's body in memory, counted and logged.
    fn quick_sent(
        &self,
        req: &server::QuickRequest<'_>,
        body: Bytes,
        started: Instant,
    ) -> QuickBody {
        let bytes = body.len() as u64;
        server::add(&self.counters.bytes_sent, bytes);
        body::log_request(
            req.peer,
            req.method(),
            req.target,
            200,
            bytes,
            started.elapsed(),
            true,
        );
        QuickBody::Bytes(body)
    }

    /// Counts a 200 answered by the fast path.
    fn count_quick(&self) {
        let c = &self.counters;
        bump(&c.requests);
        bump(&c.by_class[0]);
        bump(&c.quick);
    }
}

/// Header fields that can change a file's answer (conditionals, ranges):
/// such requests take hyper's path.
fn conditional(name: &str) -> bool {
    let name = name.as_bytes();
    (name.len() > 3 && name[..3].eq_ignore_ascii_case(b"if-"))
        || name.eq_ignore_ascii_case(b"range")
}

impl Files {
    async fn respond(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        // A static server has no use for request bodies, but it must read
        // (and bound) them so the connection can be reused.
        if let Some(refusal) = self.declared_body_too_large(&req, peer) {
            return refusal;
        }
        let (parts, body) = req.into_parts();
        if !body.is_end_stream() {
            match self.read_body(body, peer).await {
                Ok(()) => {}
                Err(refusal) => return refusal,
            }
        }

        if parts.method != Method::GET && parts.method != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed\n");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }

        let uri_path = parts.uri.path();
        if uri_path.len() > MAX_PATH {
            self.client_mistake(peer, "request path longer than any file path (414)");
            return text(StatusCode::URI_TOO_LONG, "414 URI Too Long\n");
        }
        if let Some(object) = objects::parse(uri_path) {
            return match object {
                Ok((key, size)) => objects::serve(
                    &parts.headers,
                    key,
                    size,
                    parts.method != Method::HEAD,
                    self.cache_control.as_ref(),
                    self.clock.wall(),
                ),
                Err(why) => objects::malformed(&why),
            };
        }
        let safe = match path::resolve(uri_path) {
            Ok(p) => p,
            Err(why) => return self.refuse(peer, uri_path, &why.to_string()),
        };
        match self.lookup(&safe, parts.method != Method::HEAD).await {
            Lookup::File(found) => {
                let (head, content) = *found;
                serve_file(
                    &parts.headers,
                    &head,
                    content,
                    self.cache_control.as_ref(),
                    self.clock.wall(),
                )
            }
            Lookup::Redirect => {
                let mut location = format!("{uri_path}/");
                if let Some(q) = parts.uri.query() {
                    location.push('?');
                    location.push_str(q);
                }
                let mut r = text(StatusCode::MOVED_PERMANENTLY, "301 Moved Permanently\n");
                if let Ok(v) = HeaderValue::from_str(&location) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                r
            }
            Lookup::Outside(resolved) => self.refuse(
                peer,
                uri_path,
                &format!(
                    "resolves outside the www folder (to {})",
                    resolved.display()
                ),
            ),
            Lookup::NotFound => text(StatusCode::NOT_FOUND, "404 Not Found\n"),
            Lookup::Unresolvable(e) => {
                self.client_mistake(
                    peer,
                    &format!("path {uri_path} cannot name a file ({e}): 404"),
                );
                text(StatusCode::NOT_FOUND, "404 Not Found\n")
            }
            Lookup::Forbidden => text(StatusCode::FORBIDDEN, "403 Forbidden\n"),
            Lookup::Failed(e) => {
                tracing::error!(target: LOG_TARGET, path = uri_path, error = %e, "cannot read file");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500 Internal Server Error\n",
                )
            }
        }
    }

    fn refuse(&self, peer: SocketAddr, path: &str, why: &str) -> Response<Body> {
        bump(&self.counters.refused_paths);
        self.client_mistake(peer, &format!("refused path {path} (403): {why}"));
        text(StatusCode::FORBIDDEN, "403 Forbidden\n")
    }

    /// A warning about something the client did wrong, rate-limited: a
    /// client must not be able to flood the log.
    fn client_mistake(&self, peer: SocketAddr, what: &str) {
        if let Some(suppressed) = self.client_warnings.allow(Instant::now()) {
            if suppressed > 0 {
                tracing::warn!(target: LOG_TARGET, %peer, "{what} ({suppressed} similar warnings suppressed)");
            } else {
                tracing::warn!(target: LOG_TARGET, %peer, "{what}");
            }
        } else {
            tracing::debug!(target: LOG_TARGET, %peer, "{what}");
        }
    }

    /// Refuses a declared body that is over the limit before reading any of it.
    fn declared_body_too_large(
        &self,
        req: &Request<Incoming>,
        peer: SocketAddr,
    ) -> Option<Response<Body>> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())?;
        (declared > self.limits.max_body_size).then(|| self.body_too_large(peer))
    }

    /// Reads and discards a body, bounded in size and in time (a client
    /// trickling a body is the slowloris attack one step later).
    async fn read_body(&self, body: Incoming, peer: SocketAddr) -> Result<(), Response<Body>> {
        let limits = &self.limits;
        match server::discard_body(body, limits.max_body_size, limits.header_timeout).await {
            Ok(()) => Ok(()),
            Err(BodyError::TooLarge) => Err(self.body_too_large(peer)),
            Err(BodyError::Broken(_)) => {
                Err(closing(text(StatusCode::BAD_REQUEST, "400 Bad Request\n")))
            }
            Err(BodyError::TooSlow) => {
                bump(&self.counters.limit_hits);
                tracing::warn!(target: LOG_TARGET, %peer, timeout = ?limits.header_timeout, "request body too slow (408)");
                Err(closing(text(
                    StatusCode::REQUEST_TIMEOUT,
                    "408 Request Timeout\n",
                )))
            }
        }
    }

    fn body_too_large(&self, peer: SocketAddr) -> Response<Body> {
        bump(&self.counters.limit_hits);
        tracing::warn!(target: LOG_TARGET, %peer, limit = self.limits.max_body_size, "request body too large (413)");
        closing(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "413 Payload Too Large\n",
        ))
    }

    /// Finds the file for a checked path and opens it. The common case (a
    /// plain file or folder, no symlink on the way) is answered inline by
    /// [`Fast::lookup`]; everything else takes one trip to the blocking pool
    /// (each `tokio::fs` call is a trip of its own; a small page would
    /// otherwise take five), where canonicalizing after the join resolves
    /// every symlink, so the prefix check sees where the path really leads.
    async fn lookup(&self, safe: &SafePath, want_body: bool) -> Lookup {
        if let Some(dir) = &self.dir {
            let fast = Fast {
                dir: dir.as_fd(),
                hot: &self.hot,
                clock: self.clock.as_ref(),
            };
            if let Some(found) = fast.lookup(safe, want_body) {
                return found;
            }
        }
        let root = self.root.clone();
        let joined = root.join(safe.relative());
        let trailing_slash = safe.trailing_slash;
        tokio::task::spawn_blocking(move || {
            lookup_blocking(&root, &joined, trailing_slash, want_body)
        })
        .await
        .unwrap_or_else(|e| Lookup::Failed(io::Error::other(e)))
    }
}

#[cfg(test)]
mod tests;
