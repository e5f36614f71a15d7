//! Static files over HTTP/1.1: GET and HEAD, content types by extension,
//! validators (ETag, Last-Modified) with 304 answers, streamed bodies, and
//! paths that can never leave the www folder. Connection handling (limits,
//! keep-alive, graceful shutdown) is the shared loop in [`crate::server`].

use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxFlags};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::hot::{HotFiles, Stamp};
use super::path::{self, SafePath};
use super::{OriginConfig, LOG_TARGET};
use crate::server::{
    self, bump, closing, empty, full, text, Body, BodyError, BoxError, ConnStats, Handler,
    HttpLimits,
};
use crate::throttle::Throttle;

/// Files up to this size are read whole in the lookup; larger ones are
/// streamed.
const CHUNK: usize = 64 * 1024;
/// Read size when streaming a larger file: few reads per MiB, still a
/// bounded amount of memory per response.
const STREAM_CHUNK: usize = 256 * 1024;

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
}

/// Starts serving `config.www` on `listener` until `shutdown` is cancelled.
/// The accept loop and every connection run on `tracker`.
pub async fn spawn(
    listener: server::Listener,
    config: OriginConfig,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<HttpOrigin> {
    let root = super::www_root(&config.www)?;
    let addr = listener.tcp.local_addr()?;
    let counters = Arc::new(Counters::default());
    let conns = Arc::new(ConnStats::default());
    let files = Arc::new(Files {
        dir: open_root(&root),
        hot: HotFiles::default(),
        root: root.clone(),
        limits: config.limits.clone(),
        counters: counters.clone(),
        cache_control: config
            .max_age
            .and_then(|a| HeaderValue::from_str(&format!("max-age={}", a.as_secs())).ok()),
        client_warnings: Throttle::new(Duration::from_secs(1)),
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
    hot: HotFiles,
    limits: HttpLimits,
    counters: Arc<Counters>,
    /// `Cache-Control` for every file answer, from `max_age`.
    cache_control: Option<HeaderValue>,
    /// Warnings a client can trigger at will (refused or unresolvable
    /// paths) are logged at most once a second.
    client_warnings: Throttle,
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
        let safe = match path::resolve(uri_path) {
            Ok(p) => p,
            Err(why) => return self.refuse(peer, uri_path, &why.to_string()),
        };
        match self.lookup(&safe, parts.method != Method::HEAD).await {
            Lookup::File(found) => {
                let (file, meta, content) = *found;
                serve_file(
                    &parts.headers,
                    &file,
                    &meta,
                    content,
                    self.cache_control.as_ref(),
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
                root: &self.root,
                hot: &self.hot,
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

/// Opens the canonical www folder for [`Fast::lookup`] (`O_PATH`: a handle
/// to resolve names beneath, not to read).
fn open_root(root: &Path) -> Option<OwnedFd> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    rustix::fs::open(root, flags, Mode::empty())
        .map_err(|e| {
            tracing::debug!(target: LOG_TARGET, root = %root.display(), error = %e,
                "cannot open the www folder for fast lookups; using the slow path")
        })
        .ok()
}

/// Resolution rules of every fast open: the kernel refuses any step out of
/// the www folder and any symlink, so what opens is inside by construction.
fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

/// The lookup done inline on the runtime thread, as nginx does for a hot
/// file: a `statx` to learn the type and validators without opening
/// anything (a FIFO or device is never opened), then an `openat2` confined
/// by [`beneath`]. No canonicalization, no blocking-pool trip; for a cached
/// page these are microseconds. `None` hands the request to the slow path
/// ([`lookup_blocking`]), which decides every case this one does not:
/// symlinks anywhere on the path, odd file types, permission and other
/// errors, kernels without `openat2` (Linux < 5.6).
struct Fast<'a> {
    dir: BorrowedFd<'a>,
    root: &'a Path,
    hot: &'a HotFiles,
}

impl Fast<'_> {
    fn lookup(&self, safe: &SafePath, want_body: bool) -> Option<Lookup> {
        let rel = safe.relative();
        let (kind, stamp) = match stat_beneath(self.dir, &rel) {
            Ok(found) => found,
            // Missing whichever way the path is resolved: the slow path says 404 too.
            Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::NOTDIR => {
                return Some(Lookup::NotFound)
            }
            Err(_) => return None,
        };
        if kind == FileType::RegularFile && !safe.trailing_slash {
            return self.open(rel, stamp, want_body);
        }
        if kind != FileType::Directory {
            return None;
        }
        // The folder itself must be reachable without a symlink before its
        // existence is told by a redirect.
        open_beneath(self.dir, &rel, OFlags::PATH | OFlags::DIRECTORY).ok()?;
        if !safe.trailing_slash {
            return Some(Lookup::Redirect);
        }
        let index = rel.join("index.html");
        match stat_beneath(self.dir, &index) {
            Ok((FileType::RegularFile, stamp)) => self.open(index, stamp, want_body),
            _ => None,
        }
    }

    /// Answers from [`HotFiles`] when the file on disk is the version kept
    /// (the same inode as one opened by [`open_beneath`] before, unchanged:
    /// its bytes are the ones that were inside then); otherwise opens it
    /// beneath the folder and reads a small one whole.
    fn open(&self, rel: PathBuf, stamp: Stamp, want_body: bool) -> Option<Lookup> {
        let meta = meta_of(&stamp);
        if let Some(body) = self.hot.get(&rel, &stamp) {
            let content = if want_body {
                Content::Small(body)
            } else {
                Content::None
            };
            return Some(Lookup::File(Box::new((self.root.join(rel), meta, content))));
        }
        // HEAD reads nothing: an O_PATH open proves the path is inside.
        let flags = if want_body {
            OFlags::RDONLY
        } else {
            OFlags::PATH
        };
        let fd = open_beneath(self.dir, &rel, flags).ok()?;
        if !want_body {
            return Some(Lookup::File(Box::new((
                self.root.join(rel),
                meta,
                Content::None,
            ))));
        }
        let content = match read_content(std::fs::File::from(fd), meta.len) {
            Ok(c) => c,
            Err(e) => return Some(Lookup::Failed(e)),
        };
        if let Content::Small(body) = &content {
            self.hot.put(&rel, stamp, body, SystemTime::now());
        }
        Some(Lookup::File(Box::new((self.root.join(rel), meta, content))))
    }
}

/// Type and version of `rel` without following a final symlink (an
/// earlier one is caught by the `openat2` that follows, or cannot matter
/// to [`HotFiles`], which only answers for the very inode it read).
fn stat_beneath(dir: BorrowedFd<'_>, rel: &Path) -> rustix::io::Result<(FileType, Stamp)> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let st = rustix::fs::statx(
        dir,
        rel,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::TYPE
            | StatxFlags::SIZE
            | StatxFlags::MTIME
            | StatxFlags::CTIME
            | StatxFlags::INO,
    )?;
    let kind = FileType::from_raw_mode(rustix::fs::RawMode::from(st.stx_mode));
    // Without a timestamp or inode the version cannot be told: never kept.
    let wanted = (StatxFlags::MTIME | StatxFlags::CTIME | StatxFlags::INO).bits();
    let known = st.stx_mask & wanted == wanted;
    Ok((
        kind,
        Stamp {
            dev: (st.stx_dev_major, st.stx_dev_minor),
            ino: st.stx_ino,
            size: st.stx_size,
            mtime: (st.stx_mtime.tv_sec, st.stx_mtime.tv_nsec),
            ctime: if known {
                (st.stx_ctime.tv_sec, st.stx_ctime.tv_nsec)
            } else {
                (i64::MAX, 0)
            },
        },
    ))
}

fn meta_of(stamp: &Stamp) -> Meta {
    let (secs, nanos) = stamp.mtime;
    let modified = u64::try_from(secs)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::new(s, nanos.min(999_999_999))));
    Meta {
        len: stamp.size,
        modified,
    }
}

fn open_beneath(dir: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    // NONBLOCK: should a FIFO replace the file between the statx and this
    // open, the open must not wait for a writer on a runtime thread.
    let flags = flags | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    rustix::fs::openat2(dir, rel, flags, Mode::empty(), beneath())
}

fn lookup_blocking(root: &Path, joined: &Path, trailing_slash: bool, want_body: bool) -> Lookup {
    let (real, meta) = match resolve_inside(root, joined) {
        Ok(found) => found,
        Err(l) => return l,
    };
    let (file, meta) = if meta.is_dir() {
        if !trailing_slash {
            return Lookup::Redirect;
        }
        match resolve_inside(root, &real.join("index.html")) {
            Ok((index, meta)) if meta.is_file() => (index, meta),
            Ok(_) => return Lookup::NotFound,
            Err(l) => return l,
        }
    } else if trailing_slash || !meta.is_file() {
        // `/file.txt/`, or a FIFO/device that must never be opened.
        return Lookup::NotFound;
    } else {
        (real, meta)
    };
    let meta = Meta {
        len: meta.len(),
        modified: meta.modified().ok(),
    };
    if !want_body {
        return Lookup::File(Box::new((file, meta, Content::None)));
    }
    let content = match std::fs::File::open(&file).and_then(|f| read_content(f, meta.len)) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Lookup::Forbidden,
        Err(e) => return Lookup::Failed(e),
    };
    Lookup::File(Box::new((file, meta, content)))
}

/// Small files are read whole here; larger ones are streamed.
fn read_content(f: std::fs::File, len: u64) -> io::Result<Content> {
    if len <= CHUNK as u64 {
        let mut buf = Vec::with_capacity(len as usize);
        // `take` keeps the body at the announced length even if the file grows.
        f.take(len).read_to_end(&mut buf)?;
        if buf.len() as u64 != len {
            return Err(io::Error::other("file shrank while being read"));
        }
        Ok(Content::Small(Bytes::from(buf)))
    } else {
        Ok(Content::Stream(f))
    }
}

fn resolve_inside(root: &Path, p: &Path) -> Result<(PathBuf, std::fs::Metadata), Lookup> {
    let real = std::fs::canonicalize(p).map_err(io_lookup)?;
    if !real.starts_with(root) {
        return Err(Lookup::Outside(real));
    }
    let meta = std::fs::metadata(&real).map_err(io_lookup)?;
    Ok((real, meta))
}

/// A file's body, ready to send.
enum Content {
    /// HEAD: no body is read.
    None,
    Small(Bytes),
    Stream(std::fs::File),
}

/// What a response needs to know of a file: its length and validators.
#[derive(Debug, Clone, Copy)]
struct Meta {
    len: u64,
    modified: Option<SystemTime>,
}

enum Lookup {
    /// Boxed: the other variants are small.
    File(Box<(PathBuf, Meta, Content)>),
    Redirect,
    Outside(PathBuf),
    NotFound,
    /// The name cannot be resolved for a reason the client caused (a
    /// segment too long for the file system, a symlink loop): 404, warned.
    Unresolvable(io::Error),
    Forbidden,
    Failed(io::Error),
}

/// Resolving a name only looks names up, so every failure but a permission
/// one means "no file by that name": a client's mistake, never a 500.
fn io_lookup(e: io::Error) -> Lookup {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Lookup::NotFound,
        io::ErrorKind::PermissionDenied => Lookup::Forbidden,
        _ => Lookup::Unresolvable(e),
    }
}

fn serve_file(
    req_headers: &HeaderMap,
    file: &Path,
    meta: &Meta,
    content: Content,
    cache_control: Option<&HeaderValue>,
) -> Response<Body> {
    let len = meta.len;
    let modified = meta.modified;
    let etag = modified.map(|m| etag_for(len, m));

    let mut headers = HeaderMap::new();
    if let Some(cc) = cache_control {
        headers.insert(header::CACHE_CONTROL, cc.clone());
    }
    if let Some(tag) = &etag {
        if let Ok(v) = HeaderValue::from_str(tag) {
            headers.insert(header::ETAG, v);
        }
    }
    if let Some(m) = modified {
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(m)) {
            headers.insert(header::LAST_MODIFIED, v);
        }
    }

    if not_modified(req_headers, etag.as_deref(), modified) {
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        *r.headers_mut() = headers;
        return r;
    }

    headers.insert(header::CONTENT_TYPE, content_type(file));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let body = match content {
        Content::None => empty(),
        Content::Small(bytes) => full(bytes),
        Content::Stream(file) => FileBody {
            file,
            remaining: len,
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
struct FileBody {
    file: std::fs::File,
    remaining: u64,
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

/// RFC 9110 §13.1: If-None-Match wins over If-Modified-Since; ETags compare
/// weakly for If-None-Match.
fn not_modified(req: &HeaderMap, etag: Option<&str>, modified: Option<SystemTime>) -> bool {
    if let Some(inm) = req.get(header::IF_NONE_MATCH) {
        let Ok(list) = inm.to_str() else {
            return false;
        };
        return etag.is_some_and(|ours| {
            list.split(',').map(str::trim).any(|t| {
                t == "*" || t.strip_prefix("W/").unwrap_or(t) == ours.trim_start_matches("W/")
            })
        });
    }
    let (Some(ims), Some(modified)) = (req.get(header::IF_MODIFIED_SINCE), modified) else {
        return false;
    };
    let Some(since) = ims
        .to_str()
        .ok()
        .and_then(|s| httpdate::parse_http_date(s).ok())
    else {
        return false;
    };
    if since > SystemTime::now() {
        // A date in the future is invalid (RFC 9110 §13.1.3): ignore it.
        return false;
    }
    // HTTP dates have one-second resolution.
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    secs(modified) <= secs(since)
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

struct RequestLog {
    peer: SocketAddr,
    method: Method,
    target: String,
    status: StatusCode,
    started: Instant,
    /// Body bytes announced by Content-Length (none for HEAD).
    expected: Option<u64>,
    bytes: u64,
    complete: bool,
    counters: Arc<Counters>,
}

/// A response body that counts what it sends and logs the request once
/// hyper drops it (finished, or cut short by the client).
struct LoggedBody {
    inner: Body,
    log: RequestLog,
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
        tracing::info!(
            target: LOG_TARGET,
            peer = %log.peer,
            method = %log.method,
            path = %log.target,
            status = log.status.as_u16(),
            bytes = log.bytes,
            duration = ?log.started.elapsed(),
            // hyper stops polling once Content-Length bytes are out, so a
            // full count is as good as end-of-stream.
            complete = log.complete || self.inner.is_end_stream() || log.expected == Some(log.bytes),
            "request"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            content_type(Path::new("a/index.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("logo.png")), "image/png");
        assert_eq!(content_type(Path::new("info.json")), "application/json");
        assert_eq!(
            content_type(Path::new("large.bin")),
            "application/octet-stream"
        );
        assert_eq!(
            content_type(Path::new("README")),
            "application/octet-stream"
        );
        // The types the old hand-written table gave stay the same.
        for (file, want) in [
            ("s.css", "text/css; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.txt", "text/plain; charset=utf-8"),
            ("a.svg", "image/svg+xml"),
            ("a.jpeg", "image/jpeg"),
            ("a.wasm", "application/wasm"),
            ("a.woff2", "font/woff2"),
            ("a.pdf", "application/pdf"),
        ] {
            assert_eq!(content_type(Path::new(file)), want, "{file}");
        }
    }

    #[test]
    fn etag_is_quoted_and_changes_with_mtime() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let a = etag_for(10, t);
        assert!(a.starts_with('"') && a.ends_with('"'), "{a}");
        assert_ne!(a, etag_for(10, t + Duration::from_nanos(1)));
        assert_ne!(a, etag_for(11, t));
    }

    #[test]
    fn conditional_requests() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let tag = etag_for(3, t);
        let date = httpdate::fmt_http_date(t);
        let inm = |v: &str| headers(&[(header::IF_NONE_MATCH, v)]);
        assert!(not_modified(&inm(&tag), Some(&tag), Some(t)));
        assert!(not_modified(
            &inm(&format!("\"x\", W/{tag}")),
            Some(&tag),
            Some(t)
        ));
        assert!(not_modified(&inm("*"), Some(&tag), Some(t)));
        assert!(!not_modified(&inm("\"other\""), Some(&tag), Some(t)));
        // If-None-Match wins even when the date would match.
        let both = headers(&[
            (header::IF_NONE_MATCH, "\"other\""),
            (header::IF_MODIFIED_SINCE, &date),
        ]);
        assert!(!not_modified(&both, Some(&tag), Some(t)));
        let ims = |v: &str| headers(&[(header::IF_MODIFIED_SINCE, v)]);
        assert!(not_modified(&ims(&date), Some(&tag), Some(t)));
        let earlier = httpdate::fmt_http_date(t - Duration::from_secs(5));
        assert!(!not_modified(&ims(&earlier), Some(&tag), Some(t)));
        assert!(!not_modified(&ims("yesterday"), Some(&tag), Some(t)));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        assert!(!not_modified(&ims(&future), Some(&tag), Some(t)));
    }
}
