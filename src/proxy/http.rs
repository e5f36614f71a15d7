//! The HTTP side of the proxy: checks the request target (never an open
//! proxy), answers from the cache or fetches from the upstream over a
//! keep-alive pool, strips hop-by-hop headers both ways, and labels every
//! response (`X-Cache`, `Cache-Status`, `Via`). Cache rules live in `cache.rs`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::budget::{Budget, ChargedBuf};
use super::cache::{self, CacheControl, CachedResponse, Clock, RequestFacts, Store};
use super::coalesce::{self, Flights, Role};
use super::impair::{Direction, Impairment};
use super::{Counters, DelayTimer, ProxyConfig};
use crate::interim::Interim;
use crate::server::{self, add, bump, is_body_too_large, BodyError};
use crate::server::{closing, empty, full, text, Body, BoxError, Handler};

/// Largest read buffer of an upstream connection.
const UPSTREAM_READ_BUFFER: usize = 16 * 1024;

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
/// The name this cache uses in `Cache-Status`, and the start of its `Via`
/// pseudonym.
pub(crate) const CACHE_NAME: &str = "netrun";

/// How a response was produced, as `X-Cache` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    /// Served from the cache (fresh, revalidated, or a coalesced waiter's stored answer).
    Hit,
    /// Fetched from upstream for a cacheable request.
    Miss,
    /// Forwarded without the cache.
    Bypass,
}

impl Label {
    fn as_str(self) -> &'static str {
        match self {
            Label::Hit => "HIT",
            Label::Miss => "MISS",
            Label::Bypass => "BYPASS",
        }
    }
}

/// A failed upstream exchange, ready to become a 502 or 504.
#[derive(Debug, Clone)]
struct UpstreamError {
    status: StatusCode,
    message: String,
}

impl UpstreamError {
    /// The upstream gave no answer at all (refused, reset, silent): the
    /// cache is disconnected, so RFC 9111 §4.2.4 lets it answer stale.
    fn disconnected(&self) -> bool {
        matches!(
            self.status,
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT
        )
    }
}

/// What a coalescing leader hands to the requests waiting on it.
#[derive(Clone)]
enum Shared {
    /// The answer is in the cache now (each waiter still checks `Vary`).
    Stored(Arc<CachedResponse>),
    /// The upstream failed; every waiter fails the same way.
    Failed(UpstreamError),
    /// An answer that was not stored: it may be meant for one user (`private`,
    /// `no-store`, `Vary: *`, another variant), so each waiter fetches its own.
    FetchYourself,
}
/// One fill of a cache key from the upstream: what the steps after the
/// exchange (refresh on 304, store or stream) need to know about it.
struct Fill<'a> {
    parts: &'a Parts,
    cache: &'a CacheState,
    key: &'a str,
    /// How the request was forwarded, for `Cache-Status` (`fwd=...`).
    kind: &'a str,
    request: RequestFacts,
    /// The origin's fields before hop-by-hop stripping: storability is
    /// decided on them, conservatively.
    origin_said: HeaderMap,
    request_time: SystemTime,
    response_time: SystemTime,
    deadline: tokio::time::Instant,
    /// A stored entry was being revalidated or replaced.
    had_stale: bool,
}

struct CacheState {
    store: Mutex<Store>,
    flights: Flights<Shared>,
    /// `--cache-ttl`: freshness for responses that give none (off by default).
    default_ttl: Option<Duration>,
    max_entry: u64,
    /// Bounds the bodies held in memory, stored or in flight.
    budget: Arc<Budget>,
}

pub(crate) struct ProxyService {
    upstream: SocketAddr,
    /// `host:port` of the upstream, as sent in `Host` and used in cache keys.
    authority: String,
    client: Client<HttpConnector, Body>,
    cache: Option<CacheState>,
    timeout: Duration,
    max_body: u64,
    /// Time allowed to read a request body the proxy discards.
    body_timeout: Duration,
    counters: Arc<Counters>,
    clock: Arc<dyn Clock>,
    /// The clients ↔ proxy link.
    impair: Arc<dyn Impairment>,
    /// The proxy ↔ origin link: crossed only by what goes upstream.
    origin_link: Arc<dyn Impairment>,
    /// Where both links' delays are waited out, to tens of µs.
    delays: DelayTimer,
    /// The service itself, for revalidations that outlive a request.
    me: Weak<ProxyService>,
    /// This instance's `Via` pseudonym: seen again in a request, it means
    /// the request came round a forwarding loop.
    via_token: String,
}

impl Handler for ProxyService {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let start = Instant::now();
        bump(&self.counters.requests);
        let method = req.method().clone();
        // Absolute-form targets are logged whole: a refused host must show.
        let path = match (req.uri().authority(), req.uri().path_and_query()) {
            (None, Some(p)) => p.to_string(),
            _ => req.uri().to_string(),
        };
        // The impaired link sits between the client and the proxy, so every
        // request crosses it both ways, cache hits included: a delay of
        // 10 ms adds 20 ms to each exchange, as it does for UDP.
        self.impair_delay(Direction::ToUpstream).await;
        let (resp, label) = self.route(req).await;
        match label {
            Label::Hit => bump(&self.counters.hits),
            Label::Miss => bump(&self.counters.misses),
            Label::Bypass => bump(&self.counters.bypasses),
        }
        self.impair_delay(Direction::ToClient).await;
        let mut resp = resp;
        if let Ok(via) = HeaderValue::from_str(&format!("1.1 {}", self.via_token)) {
            resp.headers_mut().append(header::VIA, via);
        }
        let resp = if self.impair.paces_http_bodies(Direction::ToClient) {
            let impair = self.impair.clone();
            let delays = self.delays.clone();
            resp.map(|body| PacedBody::new(body, impair, delays).boxed())
        } else {
            resp
        };
        tracing::info!(
            target: "netrun::proxy",
            %peer,
            "{method} {path} {} {} {:.1}ms",
            resp.status().as_u16(),
            label.as_str(),
            start.elapsed().as_secs_f64() * 1e3
        );
        resp
    }
}

impl ProxyService {
    /// Holds an HTTP message back for the impairment model's delay (and
    /// jitter) going `dir`. Loss and rate do not apply to HTTP: TCP would
    /// retransmit what a link lost.
    async fn impair_delay(&self, dir: Direction) {
        link_delay(&self.impair, dir, &self.counters.http_delayed, &self.delays).await;
    }

    pub(crate) fn new(
        config: &ProxyConfig,
        counters: Arc<Counters>,
        clock: Arc<dyn Clock>,
        impair: Arc<dyn Impairment>,
        origin_link: Arc<dyn Impairment>,
        delays: DelayTimer,
        via_token: String,
    ) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            // Each streamed response holds at most about one read buffer
            // for a client that does not read; hyper's default lets it grow
            // to 400 KiB per connection.
            .http1_max_buf_size(UPSTREAM_READ_BUFFER)
            .build(connector);
        let cache = config.cache.map(|c| {
            let store = Store::new(c.capacity);
            CacheState {
                max_entry: store.max_entry(),
                store: Mutex::new(store),
                flights: Flights::new(),
                default_ttl: c.default_ttl,
                budget: Budget::new(c.capacity.saturating_add(c.max_inflight), counters.clone()),
            }
        });
        Arc::new_cyclic(|me| ProxyService {
            upstream: config.upstream_http,
            authority: config.upstream_http.to_string(),
            client,
            cache,
            timeout: config.upstream_timeout,
            max_body: config.limits.max_body_size,
            body_timeout: config.limits.header_timeout,
            counters,
            clock,
            impair,
            origin_link,
            delays,
            me: me.clone(),
            via_token,
        })
    }

    async fn route(&self, req: Request<Incoming>) -> (Response<Body>, Label) {
        let (mut parts, body) = req.into_parts();
        if carries_token(&parts.headers, &self.via_token) {
            return (self.loop_detected(), Label::Bypass);
        }
        if let Err(resp) = self.check_target(&parts) {
            return (
                label(resp, Label::Bypass, "fwd=bypass; detail=refused"),
                Label::Bypass,
            );
        }
        if content_length(&parts.headers).is_some_and(|n| n > self.max_body) {
            let resp = self.body_too_large();
            return (label(resp, Label::Bypass, "fwd=bypass"), Label::Bypass);
        }
        let Some(cache) = &self.cache else {
            let body = self.limited(body);
            return self.forward(parts, body, Label::Bypass, "fwd=bypass").await;
        };
        let key = cache::cache_key(&Method::GET, &self.authority, path_and_query(&parts.uri));
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let unsafe_method = !parts.method.is_safe();
            let body = self.limited(body);
            let (resp, lbl) = self.forward(parts, body, Label::Bypass, "fwd=method").await;
            // An unsafe method that succeeded may have changed the resource:
            // drop what we hold (RFC 9111 §4.4). A refused or failed one
            // changed nothing, so the entry stays.
            let status = resp.status();
            if unsafe_method && (status.is_success() || status.is_redirection()) {
                self.store_remove(cache, &key);
            }
            return (resp, lbl);
        }
        let req_cc = request_cache_control(&parts.headers);
        if req_cc.no_store {
            let body = self.limited(body);
            return self
                .forward(parts, body, Label::Bypass, "fwd=request")
                .await;
        }

        // From here on the upstream gets no body (GET and HEAD through the
        // cache): read the client's so the connection stays usable.
        if let Err(resp) = self.discard_body(&parts.headers, body).await {
            return (label(resp, Label::Bypass, "fwd=bypass"), Label::Bypass);
        }
        // From here on the cache sees the request as the origin will: a
        // header the client named in `Connection` never reaches the origin,
        // so it must not select a `Vary` variant either.
        strip_hop_by_hop(&mut parts.headers);
        self.through_cache(parts, cache, &key, &req_cc).await
    }

    /// A GET or HEAD the cache may answer: fresh or allowed-stale hits are
    /// served from the store, the rest goes upstream (revalidating what is
    /// held), one fetch per key at a time.
    async fn through_cache(
        &self,
        parts: Parts,
        cache: &CacheState,
        key: &str,
        req_cc: &CacheControl,
    ) -> (Response<Body>, Label) {
        let now = self.clock.now();
        let entry = cache
            .store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key);
        let (stale, kind) = match entry {
            Some(e) if e.matches_vary(&parts.headers) => {
                if usable(&e, req_cc, now) {
                    let param = hit_param(&e, now, "");
                    return (self.serve_entry(&parts, &e, Label::Hit, &param), Label::Hit);
                }
                if !req_cc.no_cache && e.may_serve_while_revalidating(now) {
                    self.revalidate_in_background(&parts, key, e.clone());
                    let param = hit_param(&e, now, "; detail=stale-while-revalidate");
                    return (self.serve_entry(&parts, &e, Label::Hit, &param), Label::Hit);
                }
                let kind = if req_cc.no_cache { "request" } else { "stale" };
                (Some(e), kind)
            }
            Some(_) => (None, "vary-miss"),
            None => (None, "uri-miss"),
        };
        if req_cc.only_if_cached {
            let resp = text(
                StatusCode::GATEWAY_TIMEOUT,
                "not in the cache, and the request said only-if-cached\n",
            );
            let param = format!("fwd={kind}; detail=only-if-cached");
            return (label(resp, Label::Miss, &param), Label::Miss);
        }
        if parts.method == Method::HEAD {
            return self.head_through(parts, cache, key, stale, kind).await;
        }
        if stale.is_none() && parts.headers.contains_key(header::RANGE) {
            // Nothing to cut the range from: the upstream answers it (206s
            // are not stored).
            let param = format!("fwd={kind}; detail=range");
            return self.forward(parts, empty(), Label::Miss, &param).await;
        }
        self.fetch_coalesced(&parts, cache, key, stale, req_cc, kind)
            .await
    }

    /// A HEAD that the cache cannot answer goes upstream as HEAD (not worth
    /// fetching a body to store). A `200` that agrees with a stored entry's
    /// validators and length freshens it, like a 304 would; one that does
    /// not means the stored body is outdated (RFC 9111 §4.3.5).
    async fn head_through(
        &self,
        mut parts: Parts,
        cache: &CacheState,
        key: &str,
        stale: Option<Arc<CachedResponse>>,
        kind: &str,
    ) -> (Response<Body>, Label) {
        let param = format!("fwd={kind}");
        strip_body_framing(&mut parts.headers);
        let Some(e) = stale else {
            return self.forward(parts, empty(), Label::Miss, &param).await;
        };
        let headers = upstream_request_headers(&parts.headers, parts.version, &self.via_token);
        let request_time = self.clock.wall();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let path = path_and_query(&parts.uri);
        let resp = match self
            .send(
                Method::HEAD,
                path,
                headers,
                empty(),
                deadline,
                parts.extensions.get::<Interim>(),
            )
            .await
        {
            Ok(r) => r,
            Err(err) => {
                return (
                    label(error_response(&err), Label::Miss, &param),
                    Label::Miss,
                )
            }
        };
        let (mut rparts, _) = resp.into_parts();
        strip_hop_by_hop(&mut rparts.headers);
        if rparts.status != StatusCode::OK {
            return (
                label(Response::from_parts(rparts, empty()), Label::Miss, &param),
                Label::Miss,
            );
        }
        if !same_representation(&e, &rparts.headers) {
            self.store_remove(cache, key);
            return (
                label(Response::from_parts(rparts, empty()), Label::Miss, &param),
                Label::Miss,
            );
        }
        let fresh = Arc::new(e.refreshed(
            &rparts.headers,
            &parts.headers,
            cache.default_ttl,
            request_time,
            self.clock.wall(),
            self.clock.now(),
        ));
        self.store_insert(cache, key, fresh.clone());
        let param = format!("{param}; fwd-status=200; detail=head-freshened");
        (
            self.serve_entry(&parts, &fresh, Label::Miss, &param),
            Label::Miss,
        )
    }

    /// Refreshes a stale entry upstream while the client has already been
    /// answered from it (`stale-while-revalidate`); skipped when a fetch of
    /// the key is already under way.
    fn revalidate_in_background(&self, parts: &Parts, key: &str, stale: Arc<CachedResponse>) {
        let Some(me) = self.me.upgrade() else { return };
        let mut req = Request::new(());
        *req.uri_mut() = parts.uri.clone();
        *req.version_mut() = parts.version;
        *req.headers_mut() = parts.headers.clone();
        req.headers_mut().remove(header::RANGE);
        let (parts, ()) = req.into_parts();
        let key = key.to_string();
        tokio::spawn(async move {
            let Some(cache) = &me.cache else { return };
            if let Role::Lead(leader) = cache.flights.join(&key) {
                let req_cc = request_cache_control(&parts.headers);
                let (_, _, shared) = me
                    .fetch_and_store(&parts, cache, &key, Some(stale), &req_cc, "stale")
                    .await;
                leader.finish(shared);
            }
        });
    }

    /// The client's body, cut off past `--max-body-size`.
    fn limited(&self, body: Incoming) -> Body {
        Limited::new(body, usize::try_from(self.max_body).unwrap_or(usize::MAX)).boxed()
    }

    /// Reads and drops a request body the upstream will not get (a GET or
    /// HEAD with a body), bounded by `--max-body-size` and the header
    /// timeout, so the client's next request on the connection is read
    /// correctly. Past a bound the client gets 413 or 408 and the
    /// connection closes.
    #[allow(clippy::result_large_err)]
    async fn discard_body(
        &self,
        headers: &HeaderMap,
        body: Incoming,
    ) -> Result<(), Response<Body>> {
        if !headers.contains_key(header::CONTENT_LENGTH)
            && !headers.contains_key(header::TRANSFER_ENCODING)
        {
            return Ok(());
        }
        match server::discard_body(body, self.max_body, self.body_timeout).await {
            Ok(()) => Ok(()),
            Err(BodyError::TooLarge) => Err(self.body_too_large()),
            Err(BodyError::Broken(e)) => Err(closing(text(
                StatusCode::BAD_REQUEST,
                format!("request body could not be read ({e})\n"),
            ))),
            Err(BodyError::TooSlow) => Err(closing(text(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {}\n",
                    crate::units::format_duration(self.body_timeout)
                ),
            ))),
        }
    }

    /// 413 for a body over `--max-body-size`; the rest of it is not read, so
    /// the connection closes.
    fn body_too_large(&self) -> Response<Body> {
        let msg = format!("request body larger than {} bytes\n", self.max_body);
        closing(text(StatusCode::PAYLOAD_TOO_LARGE, msg))
    }

    /// Origin-form is always fine; absolute-form only for the upstream.
    #[allow(clippy::result_large_err)]
    fn check_target(&self, parts: &Parts) -> Result<(), Response<Body>> {
        if parts.method == Method::CONNECT {
            return Err(self.refuse(&parts.uri.to_string()));
        }
        if let Some(auth) = parts.uri.authority() {
            let scheme_ok = parts.uri.scheme_str().map_or(true, |s| s == "http");
            let host = auth.host().trim_start_matches('[').trim_end_matches(']');
            let host_ok = match host.parse::<IpAddr>() {
                Ok(ip) => ip == self.upstream.ip(),
                Err(_) => {
                    host.eq_ignore_ascii_case("localhost") && self.upstream.ip().is_loopback()
                }
            };
            let port_ok = auth.port_u16().unwrap_or(80) == self.upstream.port();
            if !(scheme_ok && host_ok && port_ok) {
                return Err(self.refuse(auth.as_str()));
            }
        } else if !parts.uri.path().starts_with('/') {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "request target must be a path or an http:// URL\n".to_string(),
            ));
        }
        Ok(())
    }

    /// 508 for a request that already went through this proxy: its
    /// upstream leads back to it (RFC 9110 §7.6.3: `Via` is for loop detection).
    fn loop_detected(&self) -> Response<Body> {
        tracing::warn!(target: "netrun::proxy", token = %self.via_token,
            "request already carries this proxy's Via token: forwarding loop (508)");
        label(
            text(
                StatusCode::LOOP_DETECTED,
                format!(
                    "netrun proxy {} found itself in this request's Via header: its upstream {} leads back to it (forwarding loop)\n",
                    self.via_token, self.upstream
                ),
            ),
            Label::Bypass,
            "fwd=bypass; detail=loop",
        )
    }

    fn refuse(&self, target: &str) -> Response<Body> {
        text(
            StatusCode::FORBIDDEN,
            format!(
                "netrun proxy refuses to forward to {target}: it is not an open proxy; it forwards only to its upstream {}\n",
                self.upstream
            ),
        )
    }

    /// Forwards a request without the cache, streaming both bodies.
    async fn forward(
        &self,
        parts: Parts,
        body: Body,
        lbl: Label,
        param: &str,
    ) -> (Response<Body>, Label) {
        let headers = upstream_request_headers(&parts.headers, parts.version, &self.via_token);
        let deadline = tokio::time::Instant::now() + self.timeout;
        let resp = match self
            .send(
                parts.method.clone(),
                path_and_query(&parts.uri),
                headers,
                body,
                deadline,
                parts.extensions.get::<Interim>(),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return (label(error_response(&e), lbl, param), lbl),
        };
        let (mut rparts, rbody) = resp.into_parts();
        strip_hop_by_hop(&mut rparts.headers);
        let body = self.upstream_body(VecDeque::new(), rbody);
        (label(Response::from_parts(rparts, body), lbl, param), lbl)
    }

    /// A cacheable GET that the cache cannot answer: one request per key
    /// goes upstream, the others wait for its answer.
    async fn fetch_coalesced(
        &self,
        parts: &Parts,
        cache: &CacheState,
        key: &str,
        stale: Option<Arc<CachedResponse>>,
        req_cc: &CacheControl,
        kind: &str,
    ) -> (Response<Body>, Label) {
        loop {
            match cache.flights.join(key) {
                Role::Lead(leader) => {
                    // The flight before ours may have just stored the answer.
                    let now = self.clock.now();
                    let current = cache
                        .store
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(key);
                    if let Some(e) = current {
                        let is_new = stale.as_ref().map_or(true, |s| !Arc::ptr_eq(s, &e));
                        if is_new && e.matches_vary(&parts.headers) && usable(&e, req_cc, now) {
                            drop(leader);
                            let param = format!("hit; ttl={}", e.ttl(now).as_secs());
                            return (self.serve_entry(parts, &e, Label::Hit, &param), Label::Hit);
                        }
                    }
                    let (resp, lbl, shared) = self
                        .fetch_and_store(parts, cache, key, stale, req_cc, kind)
                        .await;
                    leader.finish(shared);
                    return (resp, lbl);
                }
                Role::Follow(rx) => {
                    bump(&self.counters.coalesced);
                    let Some(shared) = coalesce::follow(rx).await else {
                        continue; // the leader's client went away: try again
                    };
                    match shared {
                        Shared::Stored(e) if e.matches_vary(&parts.headers) => {
                            let now = self.clock.now();
                            let param =
                                format!("hit; ttl={}; detail=coalesced", e.ttl(now).as_secs());
                            return (self.serve_entry(parts, &e, Label::Hit, &param), Label::Hit);
                        }
                        Shared::Failed(err) => {
                            let now = self.clock.now();
                            if let Some(e) = stale
                                .as_ref()
                                .filter(|e| e.may_serve_on_error(req_cc, now, err.disconnected()))
                            {
                                let param = hit_param(e, now, "; detail=stale-if-error");
                                return (
                                    self.serve_entry(parts, e, Label::Hit, &param),
                                    Label::Hit,
                                );
                            }
                            let param = format!("fwd={kind}; detail=coalesced");
                            return (
                                label(error_response(&err), Label::Miss, &param),
                                Label::Miss,
                            );
                        }
                        Shared::Stored(_) | Shared::FetchYourself => {
                            let (resp, lbl, _) = self
                                .fetch_and_store(parts, cache, key, None, req_cc, kind)
                                .await;
                            return (resp, lbl);
                        }
                    }
                }
            }
        }
    }

    /// Fills (or revalidates) `key` from the upstream and decides what the
    /// cache keeps: a failed exchange may be answered from `stale`, a 304
    /// refreshes it, any other answer is stored or streamed through.
    async fn fetch_and_store(
        &self,
        parts: &Parts,
        cache: &CacheState,
        key: &str,
        stale: Option<Arc<CachedResponse>>,
        req_cc: &CacheControl,
        kind: &str,
    ) -> (Response<Body>, Label, Shared) {
        let (headers, conditional) = self.fill_request_headers(parts, stale.as_deref());
        let request_time = self.clock.wall();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let resp = match self
            .send(
                Method::GET,
                path_and_query(&parts.uri),
                headers,
                empty(),
                deadline,
                parts.extensions.get::<Interim>(),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return self.answer_fetch_error(parts, stale.as_ref(), req_cc, kind, e),
        };
        let (mut rparts, body) = resp.into_parts();
        let fill = Fill {
            parts,
            cache,
            key,
            kind,
            request: RequestFacts {
                cc: req_cc.clone(),
                authorization: parts.headers.contains_key(header::AUTHORIZATION),
            },
            // Whether to store is decided on what the origin said: a
            // `Cache-Control: private` it named in `Connection` is still private.
            origin_said: rparts.headers.clone(),
            request_time,
            response_time: self.clock.wall(),
            deadline,
            had_stale: stale.is_some(),
        };
        strip_hop_by_hop(&mut rparts.headers);
        if let Some(answer) = self.stale_for_server_error(parts, &stale, req_cc, rparts.status) {
            return answer;
        }
        match (conditional, rparts.status, &stale) {
            (true, StatusCode::NOT_MODIFIED, Some(e)) => {
                self.refresh_not_modified(&fill, e, &rparts.headers)
            }
            _ => self.store_or_stream(&fill, rparts, body).await,
        }
    }

    /// The upstream request of a fill: the client's conditionals and ranges
    /// removed (the cache wants the whole representation and answers them
    /// itself afterwards), the stale entry's validators added. Also returns
    /// whether the request is a revalidation.
    fn fill_request_headers(
        &self,
        parts: &Parts,
        stale: Option<&CachedResponse>,
    ) -> (HeaderMap, bool) {
        let mut headers = upstream_request_headers(&parts.headers, parts.version, &self.via_token);
        strip_body_framing(&mut headers);
        for h in [
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_MATCH,
            header::IF_UNMODIFIED_SINCE,
            header::IF_RANGE,
            header::RANGE,
        ] {
            headers.remove(h);
        }
        let mut conditional = false;
        if let Some(e) = stale {
            if let Some(etag) = e.etag() {
                headers.insert(header::IF_NONE_MATCH, etag.clone());
                conditional = true;
            }
            if let Some(lm) = e.last_modified() {
                headers.insert(header::IF_MODIFIED_SINCE, lm.clone());
                conditional = true;
            }
        }
        if conditional {
            bump(&self.counters.revalidations);
        }
        (headers, conditional)
    }

    /// The upstream could not be asked: the stale entry where the response
    /// or the request allows it (RFC 5861 `stale-if-error`), else a 502/504.
    fn answer_fetch_error(
        &self,
        parts: &Parts,
        stale: Option<&Arc<CachedResponse>>,
        req_cc: &CacheControl,
        kind: &str,
        e: UpstreamError,
    ) -> (Response<Body>, Label, Shared) {
        let now = self.clock.now();
        if let Some(s) = stale.filter(|s| s.may_serve_on_error(req_cc, now, e.disconnected())) {
            let param = hit_param(s, now, "; detail=stale-if-error");
            let resp = self.serve_entry(parts, s, Label::Hit, &param);
            return (resp, Label::Hit, Shared::Failed(e));
        }
        let param = format!("fwd={kind}");
        (
            label(error_response(&e), Label::Miss, &param),
            Label::Miss,
            Shared::Failed(e),
        )
    }

    /// A 304 to a revalidation: the stored entry refreshed with its fields,
    /// kept while still storable, and served.
    fn refresh_not_modified(
        &self,
        fill: &Fill<'_>,
        stored: &CachedResponse,
        not_modified: &HeaderMap,
    ) -> (Response<Body>, Label, Shared) {
        bump(&self.counters.revalidated_unmodified);
        let fresh = Arc::new(stored.refreshed(
            not_modified,
            &fill.parts.headers,
            fill.cache.default_ttl,
            fill.request_time,
            fill.response_time,
            self.clock.now(),
        ));
        // A 304 may change the entry's storability (a new `private`, a
        // `Set-Cookie`): then this client gets it and nobody else does.
        let verdict = cache::storable(
            stored.status,
            &fill.request,
            &CacheControl::for_response(&fill.origin_said),
            &fill.origin_said,
            None,
            fill.cache.max_entry,
        );
        let kept = if verdict.is_ok() {
            self.store_insert(fill.cache, fill.key, fresh.clone())
        } else {
            self.store_remove(fill.cache, fill.key);
            false
        };
        let param = format!("fwd={}; fwd-status=304", fill.kind);
        let shared = if kept {
            Shared::Stored(fresh.clone())
        } else {
            Shared::FetchYourself
        };
        let resp = self.serve_entry(fill.parts, &fresh, Label::Hit, &param);
        (resp, Label::Hit, shared)
    }

    /// Any other answer to a fill: stored when RFC 9111 allows it and it fits
    /// both an entry and the memory budget, else streamed through untouched,
    /// holding no more of it in memory than is in flight.
    async fn store_or_stream(
        &self,
        fill: &Fill<'_>,
        rparts: http::response::Parts,
        body: Body,
    ) -> (Response<Body>, Label, Shared) {
        let cache = fill.cache;
        let verdict = cache::storable(
            rparts.status,
            &fill.request,
            &CacheControl::for_response(&fill.origin_said),
            &fill.origin_said,
            content_length(&rparts.headers),
            cache.max_entry,
        );
        if fill.had_stale && verdict.is_err() {
            self.store_remove(cache, fill.key); // the old entry is outdated
        }
        let param = if fill.had_stale {
            format!("fwd={}; fwd-status={}", fill.kind, rparts.status.as_u16())
        } else {
            format!("fwd={}", fill.kind)
        };
        // Not to be stored (too large, no-store, private, 5xx...).
        if verdict.is_err() {
            let resp = self.stream(rparts, VecDeque::new(), body, &param);
            return (resp, Label::Miss, Shared::FetchYourself);
        }
        let buf = ChargedBuf::new(
            &cache.budget,
            content_length(&rparts.headers).filter(|&n| n <= cache.max_entry),
        );
        match buffer(body, buf, cache.max_entry, fill.deadline, &self.counters).await {
            Buffered::Complete(bytes) => {
                let entry = Arc::new(CachedResponse::new(
                    rparts.status,
                    rparts.headers,
                    bytes,
                    &fill.parts.headers,
                    cache.default_ttl,
                    fill.request_time,
                    fill.response_time,
                    self.clock.now(),
                ));
                let (param, shared) = if self.store_insert(cache, fill.key, entry.clone()) {
                    (format!("{param}; stored"), Shared::Stored(entry.clone()))
                } else {
                    (param, Shared::FetchYourself)
                };
                let resp = self.serve_entry(fill.parts, &entry, Label::Miss, &param);
                (resp, Label::Miss, shared)
            }
            Buffered::Failed(e) => {
                bump(&self.counters.upstream_errors);
                let resp = label(error_response(&e), Label::Miss, &param);
                (resp, Label::Miss, Shared::Failed(e))
            }
            Buffered::Overflow(prefix, next, rest) => {
                // Too large for an entry, or for the memory left: stream the rest.
                self.store_remove(cache, fill.key);
                let resp = self.stream(rparts, VecDeque::from([prefix, next]), rest, &param);
                (resp, Label::Miss, Shared::FetchYourself)
            }
        }
    }

    /// A stale entry in place of a 500, 502, 503 or 504 from the upstream,
    /// when `stale-if-error` allows it (RFC 5861 §4); the error's body is dropped.
    fn stale_for_server_error(
        &self,
        parts: &Parts,
        stale: &Option<Arc<CachedResponse>>,
        req_cc: &CacheControl,
        status: StatusCode,
    ) -> Option<(Response<Body>, Label, Shared)> {
        if !matches!(status.as_u16(), 500 | 502 | 503 | 504) {
            return None;
        }
        let e = stale.as_ref()?;
        let now = self.clock.now();
        if !e.may_serve_on_error(req_cc, now, false) {
            return None;
        }
        let param = hit_param(
            e,
            now,
            &format!("; fwd-status={}; detail=stale-if-error", status.as_u16()),
        );
        let resp = self.serve_entry(parts, e, Label::Hit, &param);
        Some((resp, Label::Hit, Shared::FetchYourself))
    }

    fn stream(
        &self,
        rparts: http::response::Parts,
        prefix: VecDeque<Bytes>,
        rest: Body,
        param: &str,
    ) -> Response<Body> {
        let body = self.upstream_body(prefix, rest);
        label(Response::from_parts(rparts, body), Label::Miss, param)
    }

    fn upstream_body(&self, prefix: VecDeque<Bytes>, rest: Body) -> Body {
        UpstreamBody::new(prefix, rest, self.timeout, self.counters.clone()).boxed()
    }

    /// Answers from a complete response (stored or just fetched), honouring
    /// the client's own `If-None-Match` / `If-Modified-Since` and HEAD.
    fn serve_entry(
        &self,
        parts: &Parts,
        e: &CachedResponse,
        lbl: Label,
        param: &str,
    ) -> Response<Body> {
        let mut headers = e.headers.clone();
        // Entries keep no `Age` header; a hit, or a fresh answer that was
        // already old when it arrived, gets the computed one.
        if lbl == Label::Hit || !e.initial_age.is_zero() {
            let age = e.age(self.clock.now()).as_secs();
            headers.insert(header::AGE, HeaderValue::from(age));
        }
        let not_modified = e.status == StatusCode::OK && not_modified(&parts.headers, e);
        let total = e.body.len();
        let range = if parts.method == Method::GET && e.status == StatusCode::OK {
            requested_range(&parts.headers, e)
        } else {
            RangeAnswer::Full
        };
        let (status, body) = if not_modified {
            headers.remove(header::CONTENT_LENGTH);
            (StatusCode::NOT_MODIFIED, empty())
        } else if let RangeAnswer::Unsatisfiable = range {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                headers.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::RANGE_NOT_SATISFIABLE, empty())
        } else {
            let (status, bytes) = match range {
                RangeAnswer::Part(first, last) => {
                    let v = format!("bytes {first}-{last}/{total}");
                    if let Ok(v) = HeaderValue::from_str(&v) {
                        headers.insert(header::CONTENT_RANGE, v);
                    }
                    (StatusCode::PARTIAL_CONTENT, e.body.slice(first..=last))
                }
                _ => (e.status, e.body.clone()),
            };
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            if parts.method == Method::HEAD {
                (status, empty())
            } else {
                if lbl == Label::Hit {
                    add(&self.counters.bytes_from_cache, bytes.len() as u64);
                }
                (status, full(bytes))
            }
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        label(resp, lbl, param)
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: Body,
        deadline: tokio::time::Instant,
        interim: Option<&Interim>,
    ) -> Result<Response<Body>, UpstreamError> {
        bump(&self.counters.upstream_fetches);
        let uri: Uri = match format!("http://{}{}", self.authority, path_and_query).parse() {
            Ok(u) => u,
            Err(e) => {
                return Err(UpstreamError {
                    status: StatusCode::BAD_REQUEST,
                    message: format!("request target `{path_and_query}` is not valid: {e}"),
                })
            }
        };
        if let Ok(host) = HeaderValue::from_str(&self.authority) {
            headers.insert(header::HOST, host);
        }
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        if let Some(interim) = interim.cloned() {
            // 1xx from the upstream go on to the client (RFC 9110 §15.2),
            // hop-by-hop headers removed; they are never stored.
            hyper::ext::on_informational(&mut req, move |res| {
                let mut headers = res.headers().clone();
                strip_hop_by_hop(&mut headers);
                interim.send(res.status(), &headers);
            });
        }
        // The link's delays count against the deadline: the proxy's timer
        // runs from when it sends, as it would over a real path.
        let result = match tokio::time::timeout_at(deadline, self.over_origin_link(req)).await {
            Ok(Ok(resp)) => return Ok(resp),
            Err(_) => UpstreamError {
                status: StatusCode::GATEWAY_TIMEOUT,
                message: format!(
                    "upstream {} did not answer within {}",
                    self.upstream,
                    crate::units::format_duration(self.timeout)
                ),
            },
            // The client's body went over --max-body-size while it was being
            // forwarded (chunked, so not refused up front): the client's fault.
            Ok(Err(e)) if is_body_too_large(&e) => {
                tracing::warn!(target: "netrun::proxy", limit = self.max_body, "request body too large (413)");
                return Err(UpstreamError {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    message: format!("request body larger than {} bytes", self.max_body),
                });
            }
            Ok(Err(e)) => UpstreamError {
                status: StatusCode::BAD_GATEWAY,
                message: format!("upstream {} {}", self.upstream, describe(&e)),
            },
        };
        bump(&self.counters.upstream_errors);
        tracing::warn!(target: "netrun::proxy", "{}", result.message);
        Err(result)
    }

    /// One exchange with the upstream across the proxy ↔ origin link: the
    /// request waits for the link's delay going up, the response head for
    /// its delay coming back, and the body is paced at the link's rate. Only
    /// upstream traffic calls this, so a cache hit never pays the link.
    async fn over_origin_link(
        &self,
        req: Request<Body>,
    ) -> Result<Response<Body>, hyper_util::client::legacy::Error> {
        let link = &self.origin_link;
        link_delay(
            link,
            Direction::ToUpstream,
            &self.counters.origin_link_http_delayed,
            &self.delays,
        )
        .await;
        let resp = self.client.request(req).await?;
        link_delay(
            link,
            Direction::ToClient,
            &self.counters.origin_link_http_delayed,
            &self.delays,
        )
        .await;
        let resp = resp.map(|body| body.map_err(BoxError::from).boxed());
        Ok(if link.paces_http_bodies(Direction::ToClient) {
            let link = link.clone();
            let delays = self.delays.clone();
            resp.map(|body| PacedBody::new(body, link, delays).boxed())
        } else {
            resp
        })
    }

    fn store_insert(&self, cache: &CacheState, key: &str, entry: Arc<CachedResponse>) -> bool {
        let mut store = cache.store.lock().unwrap_or_else(|e| e.into_inner());
        let r = store.insert(key, entry);
        self.update_gauges(&store);
        drop(store);
        add(&self.counters.evictions, r.evicted);
        if r.stored {
            bump(&self.counters.stored);
        }
        r.stored
    }

    fn store_remove(&self, cache: &CacheState, key: &str) {
        let mut store = cache.store.lock().unwrap_or_else(|e| e.into_inner());
        if store.remove(key) {
            self.update_gauges(&store);
        }
    }

    fn update_gauges(&self, store: &Store) {
        use std::sync::atomic::Ordering::Relaxed;
        self.counters.cache_bytes.store(store.used_bytes(), Relaxed);
        self.counters
            .cache_entries
            .store(store.len() as u64, Relaxed);
    }
}

/// Holds an HTTP message back for `link`'s delay (and jitter) going `dir`,
/// counting it in `delayed` when it waits. The wait is the precise timer's.
async fn link_delay(
    link: &Arc<dyn Impairment>,
    dir: Direction,
    delayed: &AtomicU64,
    delays: &DelayTimer,
) {
    let delay = link.http_delay(dir);
    if !delay.is_zero() {
        bump(delayed);
        delays.sleep(delay).await;
    }
}

/// An entry the request may use without going upstream: fresh enough for
/// its `max-age` and `min-fresh`, or stale within its `max-stale` when the
/// response does not forbid that (RFC 9111 §5.2.1).
fn usable(e: &CachedResponse, req_cc: &CacheControl, now: Instant) -> bool {
    let secs = Duration::from_secs;
    if req_cc.no_cache || req_cc.max_age.is_some_and(|max| e.age(now) >= secs(max)) {
        return false;
    }
    if e.is_fresh(now) {
        return req_cc.min_fresh.map_or(true, |m| e.ttl(now) >= secs(m));
    }
    req_cc
        .max_stale
        .is_some_and(|m| !e.cc.forbids_stale() && e.staleness(now) <= secs(m))
}

/// `Cache-Status` for an answer from the store: `hit; ttl=N`, negative when
/// the entry is stale (RFC 9211 §2.4), then `extra`.
fn hit_param(e: &CachedResponse, now: Instant, extra: &str) -> String {
    let ttl = if e.is_fresh(now) {
        e.ttl(now).as_secs().to_string()
    } else {
        format!("-{}", e.staleness(now).as_secs())
    };
    format!("hit; ttl={ttl}{extra}")
}

/// Whether a `200` to a HEAD describes the stored body: no validator or
/// length it carries differs from the stored one (RFC 9111 §4.3.5).
fn same_representation(e: &CachedResponse, head: &HeaderMap) -> bool {
    [header::ETAG, header::LAST_MODIFIED, header::CONTENT_LENGTH]
        .iter()
        .all(|name| match (head.get(name), e.headers.get(name)) {
            (Some(new), Some(old)) => new == old,
            (Some(new), None) if name == header::CONTENT_LENGTH => {
                new.to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    == Some(e.body.len())
            }
            _ => true,
        })
}

/// Request `Cache-Control`, with HTTP/1.0 `Pragma: no-cache` as `no-cache`.
fn request_cache_control(headers: &HeaderMap) -> CacheControl {
    let mut cc = CacheControl::parse(headers);
    if !headers.contains_key(header::CACHE_CONTROL)
        && headers.get_all(header::PRAGMA).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.to_ascii_lowercase().contains("no-cache"))
        })
    {
        cc.no_cache = true;
    }
    cc
}

/// Whether the client's conditional headers say it already has `e`.
fn not_modified(req: &HeaderMap, e: &CachedResponse) -> bool {
    if let Some(inm) = req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        let Some(etag) = e.etag().and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let weak = |t: &str| t.trim().trim_start_matches("W/").to_string();
        return inm
            .split(',')
            .any(|t| t.trim() == "*" || weak(t) == weak(etag));
    }
    let since = req
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
    // Without Last-Modified, the stored Date stands in (RFC 9111 §4.3.2).
    let modified = e
        .last_modified()
        .or_else(|| e.headers.get(header::DATE))
        .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
    matches!((since, modified), (Some(s), Some(m)) if m <= s)
}

/// What a GET's `Range` asks of a stored complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeAnswer {
    /// No range, one that is ignored (several ranges, bad syntax, another
    /// unit, an `If-Range` that does not match): the whole response.
    Full,
    /// Bytes `first..=last`.
    Part(usize, usize),
    /// A range past the end: 416.
    Unsatisfiable,
}

/// Reads a single `bytes=` range (RFC 9110 §14.1.2): `a-b`, `a-` or `-n`,
/// honoured only when `If-Range`, if sent, names the stored response by
/// its strong ETag or exact `Last-Modified` (§13.1.5).
fn requested_range(req: &HeaderMap, e: &CachedResponse) -> RangeAnswer {
    let Some(spec) = req.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeAnswer::Full;
    };
    if let Some(if_range) = req.get(header::IF_RANGE) {
        let strong_etag = e.etag().filter(|t| !t.as_bytes().starts_with(b"W/"));
        let matches = if if_range.as_bytes().starts_with(b"\"") {
            strong_etag == Some(if_range)
        } else {
            e.last_modified() == Some(if_range)
        };
        if !matches {
            return RangeAnswer::Full;
        }
    }
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    let Some((a, b)) = set.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let len = e.body.len();
    let num = |t: &str| -> Option<usize> {
        let t = t.trim();
        (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().unwrap_or(usize::MAX))
    };
    let (first, last) = match (num(a), num(b), b.trim().is_empty()) {
        (None, Some(n), _) if a.trim().is_empty() => {
            if n == 0 || len == 0 {
                return RangeAnswer::Unsatisfiable;
            }
            (len.saturating_sub(n), len - 1)
        }
        (Some(f), None, true) => (f, len.saturating_sub(1)),
        (Some(f), Some(l), _) if l >= f => (f, l.min(len.saturating_sub(1))),
        _ => return RangeAnswer::Full,
    };
    if first >= len {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Part(first, last)
}

fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

/// Removes hop-by-hop headers, including those the `Connection` header names
/// and every `Proxy-*` header.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        // Never let a client strip the framing of the message itself.
        .filter(|n| n != header::CONTENT_LENGTH && n != header::HOST)
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(n);
    }
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for n in proxy {
        headers.remove(n);
    }
}

/// Removes what describes a request body, for a request sent upstream
/// without one: otherwise the upstream would wait for a body that never comes.
fn strip_body_framing(headers: &mut HeaderMap) {
    for h in [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONTENT_TYPE,
        header::EXPECT,
    ] {
        headers.remove(h);
    }
}

fn upstream_request_headers(client: &HeaderMap, version: Version, token: &str) -> HeaderMap {
    let mut headers = client.clone();
    strip_hop_by_hop(&mut headers);
    let v = match version {
        Version::HTTP_10 => "1.0",
        _ => "1.1",
    };
    if let Ok(via) = HeaderValue::from_str(&format!("{v} {token}")) {
        headers.append(header::VIA, via);
    }
    headers
}

/// Whether a `Via` entry was added by the proxy named `token`
/// (`protocol received-by [comment]`, comma-separated, several lines).
fn carries_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|entry| entry.split_whitespace().nth(1))
        .any(|by| by.eq_ignore_ascii_case(token))
}

/// Adds `X-Cache` and `Cache-Status` (RFC 9211) to a response (`Via` is
/// added by `handle`, with this instance's token).
fn label(mut resp: Response<Body>, lbl: Label, param: &str) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert(X_CACHE, HeaderValue::from_static(lbl.as_str()));
    let mut status = String::from(CACHE_NAME);
    let _ = write!(status, "; {param}");
    if let Ok(v) = HeaderValue::from_str(&status) {
        h.append(CACHE_STATUS, v);
    }
    resp
}

fn error_response(e: &UpstreamError) -> Response<Body> {
    let resp = text(e.status, format!("{}\n", e.message));
    if e.status == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the client's body was not read.
        closing(resp)
    } else {
        resp
    }
}

/// Says what went wrong with an upstream exchange, from the error chain.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut io_kind = None;
    let mut incomplete = false;
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            incomplete |= h.is_incomplete_message();
        }
        source = s.source();
    }
    use std::io::ErrorKind::*;
    let cause = chain.join(": ");
    match io_kind {
        Some(ConnectionRefused) => "refused the connection".to_string(),
        Some(ConnectionReset | ConnectionAborted | BrokenPipe) => {
            format!("reset the connection ({cause})")
        }
        _ if incomplete => "closed the connection before answering".to_string(),
        _ if e.is_connect() => format!("could not be reached ({cause})"),
        _ => format!("failed ({cause})"),
    }
}

enum Buffered {
    /// The whole body, within the bound.
    Complete(Bytes),
    /// Over a bound: what was read so far, the frame that did not fit, and
    /// the rest still to stream.
    Overflow(Bytes, Bytes, Body),
    Failed(UpstreamError),
}

/// Reads a body whole into `buf` if it fits in `limit` bytes and in the
/// memory budget `buf` is charged to, by `deadline`.
async fn buffer(
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
struct UpstreamBody {
    /// Already read from the upstream, sent first.
    prefix: VecDeque<Bytes>,
    inner: Body,
    counters: Arc<Counters>,
    idle: Duration,
    /// Fires `idle` after the body started waiting for the upstream; armed
    /// only while waiting, so a slow reader on the client side never trips it.
    stall: Pin<Box<tokio::time::Sleep>>,
    waiting: bool,
}

impl UpstreamBody {
    fn new(prefix: VecDeque<Bytes>, inner: Body, idle: Duration, counters: Arc<Counters>) -> Self {
        UpstreamBody {
            prefix,
            inner,
            counters,
            idle,
            stall: Box::pin(tokio::time::sleep(idle)),
            waiting: false,
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
                // failure as the stall below, and counted the same.
                bump(&self.counters.upstream_errors);
                Poll::Ready(Some(Err(e)))
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
struct PacedBody {
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

    fn new(inner: Body, impair: Arc<dyn Impairment>, delays: DelayTimer) -> Self {
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
