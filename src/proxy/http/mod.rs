//! The HTTP side of the proxy: checks the request target (never an open
//! proxy), answers from the cache or fetches from the upstream over a
//! keep-alive pool, strips hop-by-hop headers both ways, and labels every
//! response (`X-Cache`, `Cache-Status`, `Via`). Split by job: routing here
//! (target checks, loop detection, bodies the upstream will not get), the
//! cache flow (`flow.rs`), the upstream transport (`upstream.rs`), header
//! rules (`headers.rs`) and body adapters (`body.rs`). Cache rules live in
//! `cache/`.

mod body;
mod connector;
mod flow;
mod headers;
mod quick;
#[cfg(test)]
mod tests;
mod upstream;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::proxy::budget::Budget;
use crate::proxy::cache::{self, Clock, Store};
use crate::proxy::coalesce::Flights;
use crate::proxy::impair::{Direction, Impairment};
use crate::proxy::{Counters, DelayTimer, ProxyConfig};
use crate::server::{self, bump, BodyError};
use crate::server::{closing, empty, full, text, Body, Handler, QuickBody, QuickRequest};

use crate::http_fields;
use crate::logging::access::{self, Service};
use crate::proxy::cache::{request_cache_control, CacheStatus, Detail, Fwd};
use body::PacedBody;
use flow::CacheState;
use headers::{carries_token, content_length, label, path_and_query, strip_hop_by_hop};
use upstream::link_delay;

/// Largest read buffer of an upstream connection.
const UPSTREAM_READ_BUFFER: usize = 16 * 1024;

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

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

/// The proxy's own task set and shutdown signal, for work that outlives
/// the request that started it (a `stale-while-revalidate` refresh).
#[derive(Clone)]
pub(crate) struct Background {
    pub(crate) tracker: TaskTracker,
    pub(crate) shutdown: CancellationToken,
}

pub(crate) struct ProxyService {
    upstream: SocketAddr,
    /// `host:port` of the upstream, as sent in `Host` and used in cache keys.
    authority: String,
    /// `http` or `https`, as requests to the upstream are written.
    scheme: &'static str,
    client: Client<connector::Connector, Body>,
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
    /// Where those revalidations run, so shutdown waits for or cancels them.
    background: Background,
    /// This instance's `Via` pseudonym: seen again in a request, it means
    /// the request came round a forwarding loop.
    via_token: String,
    /// The `Via` every response gets (`1.1 <via_token>`), built once.
    via: Option<HeaderValue>,
    /// Fresh hits may be answered by the server's fast path
    /// ([`Handler::quick`]): asked for, and no link impairment to wait out.
    quick: bool,
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
        if let Some(via) = &self.via {
            resp.headers_mut().append(header::VIA, via.clone());
        }
        let resp = if self.impair.paces_http_bodies(Direction::ToClient) {
            let impair = self.impair.clone();
            let delays = self.delays.clone();
            resp.map(|body| PacedBody::new(body, impair, delays).boxed())
        } else {
            resp
        };
        log_request(
            method.as_str(),
            &path,
            resp.status().as_u16(),
            label,
            start,
            peer,
        );
        resp
    }

    fn quick(&self, req: &QuickRequest<'_>, out: &mut Vec<u8>) -> Option<QuickBody> {
        self.quick_hit(req, out)
    }
}

/// The access line of one request, the same from hyper's path and the fast path.
fn log_request(
    method: &str,
    path: &str,
    status: u16,
    label: Label,
    start: Instant,
    peer: SocketAddr,
) {
    let ms = start.elapsed().as_secs_f64() * 1e3;
    access::info(Service::Proxy, |line| {
        line.message(format_args!(
            "{method} {path} {status} {} {ms:.1}ms",
            label.as_str()
        ))
        .field("peer", peer);
    });
}

/// An answer the proxy makes itself, never cached: labelled a bypass with
/// the given `Cache-Status`.
fn local(resp: Response<Body>, status: CacheStatus) -> (Response<Body>, Label) {
    (label(resp, Label::Bypass, status), Label::Bypass)
}

/// The upstream's `host:port` as requests name it: the address, or for TLS
/// the DNS name its certificate is checked against (a virtual host's name).
fn authority(config: &ProxyConfig) -> String {
    match config.upstream_transport.tls.as_ref().map(|t| &t.name) {
        Some(name @ rustls::pki_types::ServerName::DnsName(_)) => {
            format!("{}:{}", name.to_str(), config.upstream_http.port())
        }
        _ => config.upstream_http.to_string(),
    }
}

impl ProxyService {
    /// Holds an HTTP message back for the impairment model's delay (and
    /// jitter) going `dir`. Loss and rate do not apply to HTTP: TCP would
    /// retransmit what a link lost.
    async fn impair_delay(&self, dir: Direction) {
        link_delay(&self.impair, dir, &self.counters.http_delayed, &self.delays).await;
    }

    // One call site (`proxy::spawn_with_hooks`), every argument a distinct part.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: &ProxyConfig,
        counters: Arc<Counters>,
        clock: Arc<dyn Clock>,
        impair: Arc<dyn Impairment>,
        origin_link: Arc<dyn Impairment>,
        delays: DelayTimer,
        via_token: String,
        background: Background,
        quick: bool,
    ) -> Arc<Self> {
        let transport = &config.upstream_transport;
        let connector = connector::Connector::new(
            config.upstream_http,
            transport.tls.as_ref(),
            config.upstream_timeout,
            counters.clone(),
        );
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            // Each streamed response holds at most about one read buffer
            // for a client that does not read; hyper's default lets it grow
            // to 400 KiB per connection.
            .http1_max_buf_size(UPSTREAM_READ_BUFFER)
            // h2c by prior knowledge; on TLS, ALPN's `h2` (the only one
            // offered) says the same. Without it, ALPN decides per connection.
            .http2_only(transport.http2)
            .build(connector);
        let cache = config.cache.map(|c| {
            let store = Store::with_policy(c.capacity, c.capacity_objects, c.policy);
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
            authority: authority(config),
            scheme: transport.scheme(),
            client,
            cache,
            timeout: config.upstream_timeout,
            max_body: config.limits.max_body_size,
            body_timeout: config.limits.header_timeout,
            counters,
            clock,
            origin_link,
            delays,
            me: me.clone(),
            quick: quick && impair.is_transparent(),
            impair,
            via: HeaderValue::from_str(&format!("1.1 {via_token}")).ok(),
            via_token,
            background,
        })
    }

    async fn route(&self, req: Request<Incoming>) -> (Response<Body>, Label) {
        let (mut parts, body) = req.into_parts();
        if carries_token(&parts.headers, &self.via_token) {
            return (self.loop_detected(), Label::Bypass);
        }
        if let Err(resp) = self.check_target(&parts) {
            let status = CacheStatus::forward(Fwd::Bypass).with_detail(Detail::Refused);
            return local(resp, status);
        }
        if content_length(&parts.headers).is_some_and(|n| n > self.max_body) {
            return local(self.body_too_large(), CacheStatus::forward(Fwd::Bypass));
        }
        if parts.method == Method::TRACE || parts.method == Method::OPTIONS {
            match http_fields::max_forwards(&parts.headers) {
                Some(0) => return (self.answer_as_last_hop(&parts, body).await, Label::Bypass),
                Some(n) => {
                    // RFC 9110 §7.6.2: one hop fewer left for the next.
                    parts
                        .headers
                        .insert(header::MAX_FORWARDS, HeaderValue::from(n - 1));
                }
                None => {}
            }
        }
        let Some(cache) = &self.cache else {
            return self.pass_through(parts, body, Fwd::Bypass).await;
        };
        let key = cache::cache_key(&Method::GET, &self.authority, path_and_query(&parts.uri));
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let unsafe_method = !parts.method.is_safe();
            let (resp, lbl) = self.pass_through(parts, body, Fwd::Method).await;
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
            return self.pass_through(parts, body, Fwd::Request).await;
        }

        // From here on the upstream gets no body (GET and HEAD through the
        // cache): read the client's so the connection stays usable.
        if let Err(resp) = self.discard_body(&parts.headers, body).await {
            return local(resp, CacheStatus::forward(Fwd::Bypass));
        }
        // From here on the cache sees the request as the origin will: a
        // header the client named in `Connection` never reaches the origin,
        // so it must not select a `Vary` variant either.
        strip_hop_by_hop(&mut parts.headers);
        self.through_cache(parts, cache, &key, &req_cc).await
    }

    /// Forwards a request the cache stays out of (`why` says so in
    /// `Cache-Status`), its body bounded by `--max-body-size`.
    async fn pass_through(
        &self,
        parts: Parts,
        body: Incoming,
        why: Fwd,
    ) -> (Response<Body>, Label) {
        let body = self.limited(body);
        self.forward(parts, body, Label::Bypass, CacheStatus::forward(why))
            .await
    }

    /// A TRACE or OPTIONS with `Max-Forwards: 0` is for this proxy, not the
    /// upstream (RFC 9110 §7.6.2): TRACE gets its request back as
    /// `message/http` (without credentials, §9.3.8), OPTIONS an empty 200.
    async fn answer_as_last_hop(&self, parts: &Parts, body: Incoming) -> Response<Body> {
        let status = CacheStatus::default().with_detail(Detail::MaxForwards);
        if let Err(resp) = self.discard_body(&parts.headers, body).await {
            return label(resp, Label::Bypass, status);
        }
        let mut echo = String::new();
        if parts.method == Method::TRACE {
            echo = format!("TRACE {} {:?}\r\n", parts.uri, parts.version);
            let secret = [
                header::AUTHORIZATION,
                header::PROXY_AUTHORIZATION,
                header::COOKIE,
            ];
            for (name, value) in parts.headers.iter().filter(|(n, _)| !secret.contains(n)) {
                let value = String::from_utf8_lossy(value.as_bytes());
                echo.push_str(&format!("{name}: {value}\r\n"));
            }
            echo.push_str("\r\n");
        }
        let len = echo.len();
        let mut resp = Response::new(if len == 0 {
            empty()
        } else {
            full(Bytes::from(echo))
        });
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        if parts.method == Method::TRACE {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("message/http"),
            );
        }
        label(resp, Label::Bypass, status)
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
            CacheStatus::forward(Fwd::Bypass).with_detail(Detail::Loop),
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
}
