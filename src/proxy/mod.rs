//! The caching proxy: an HTTP reverse proxy with a shared cache in front of
//! one upstream ([`http`], rules in [`cache`]), and a UDP forwarder with one
//! upstream socket per client ([`udp`]). [`spawn`] starts both on bound
//! sockets; the returned [`ProxyHandle`] gives the addresses and counters.

mod budget;
pub mod cache;
mod coalesce;
mod http;
pub mod impair;
mod udp;

/// The precise timer a proxy waits out its links' delays on.
type DelayTimer = crate::timer::Timer<udp::Held>;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::server::{self, ConnStats, HttpLimits};

pub use cache::{Clock, ManualClock, SystemClock};
pub use impair::{Impairment, Link, LinkConfig, LinkModel, NoImpairment};

/// Everything the proxy needs besides its sockets.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The HTTP server requests are forwarded to.
    pub upstream_http: SocketAddr,
    /// The UDP service datagrams are forwarded to.
    pub upstream_udp: SocketAddr,
    /// The cache; `None` forwards everything (`X-Cache: BYPASS`).
    pub cache: Option<CacheConfig>,
    /// Deadline for the upstream's response head (and for a body the cache
    /// buffers); past it the client gets 504.
    pub upstream_timeout: Duration,
    pub udp: UdpForwardConfig,
    /// Limits on the proxy's own listening side.
    pub limits: HttpLimits,
    /// How requests reach `upstream_http`: TLS or not, HTTP/2 or HTTP/1.1.
    pub upstream_transport: UpstreamTransport,
}

/// How the proxy speaks to its HTTP upstream. The default is clear text,
/// HTTP/1.1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpstreamTransport {
    /// TLS (an `https://` upstream): the CAs trusted, the name the
    /// certificate must carry, the ALPN protocols offered (`h2` and
    /// `http/1.1`, or `h2` alone with `http2`).
    pub tls: Option<crate::tls::ClientTls>,
    /// HTTP/2 only: h2c with prior knowledge in clear text; on TLS, the
    /// one protocol offered by ALPN.
    pub http2: bool,
}

impl UpstreamTransport {
    /// TLS towards `authority` (`host:port`, the name checked against the
    /// certificate) trusting `trust`; HTTP/2 offered first by ALPN, or
    /// alone when `http2`.
    pub fn tls(
        trust: &crate::tls::Trust,
        authority: &str,
        http2: bool,
    ) -> Result<Self, crate::Error> {
        use crate::tls::{ALPN_H2, ALPN_HTTP11};
        let alpn: &[&[u8]] = if http2 {
            &[ALPN_H2]
        } else {
            &[ALPN_H2, ALPN_HTTP11]
        };
        Ok(UpstreamTransport {
            tls: Some(crate::tls::ClientTls {
                config: crate::tls::client_config(trust, alpn)?,
                name: crate::tls::server_name(authority)?,
            }),
            http2,
        })
    }

    /// Checks the upstream's certificate against `host` (and sends it as
    /// SNI and in Host) instead of the address it is reached at.
    pub fn named(mut self, host: &str) -> Result<Self, crate::Error> {
        if let Some(tls) = self.tls.take() {
            self.tls = Some(tls.named(host)?);
        }
        Ok(self)
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

impl ProxyConfig {
    /// The `netrun proxy` defaults for the given upstreams.
    pub fn new(upstream_http: SocketAddr, upstream_udp: SocketAddr) -> Self {
        ProxyConfig {
            upstream_http,
            upstream_udp,
            cache: Some(CacheConfig::default()),
            upstream_timeout: Duration::from_secs(10),
            udp: UdpForwardConfig::default(),
            limits: HttpLimits::default(),
            upstream_transport: UpstreamTransport::default(),
        }
    }
}

/// Size and default freshness of the HTTP cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Total bytes stored (bodies, headers and a small per-entry overhead).
    /// One entry may use at most an eighth of it; larger responses are
    /// streamed through uncached.
    pub capacity: u64,
    /// `--cache-ttl`: freshness for a response that gives none (no
    /// `max-age`, `s-maxage` or `Expires`), instead of the RFC's heuristic
    /// from `Last-Modified`. Off (`None`) by default: a deviation from RFC
    /// 9111 that an operator opts into.
    pub default_ttl: Option<Duration>,
    /// Response bytes the proxy may hold beyond `capacity`: bodies being
    /// read for the cache, and bodies of evicted entries still being sent to
    /// slow readers. Bodies in memory never total more than `capacity +
    /// max_inflight`; a miss that would go past it is streamed, not stored.
    pub max_inflight: u64,
    /// Which entry goes when the cache is full.
    pub policy: crate::cache_policy::Policy,
    /// `--cache-objects`: at most this many entries, the count the policy
    /// works against (as cache simulators do); `capacity` still bounds bytes.
    pub capacity_objects: Option<u64>,
}

impl CacheConfig {
    /// A cache of `capacity` bytes with the default in-flight bound.
    pub fn new(capacity: u64, default_ttl: Option<Duration>) -> Self {
        CacheConfig {
            capacity,
            default_ttl,
            max_inflight: Self::default_inflight(capacity),
            policy: crate::cache_policy::Policy::Lru,
            capacity_objects: None,
        }
    }

    /// The default of `--max-inflight`: a quarter of the capacity. With the
    /// buffers of `--max-connections` open connections (about 90 KiB each,
    /// measured) the proxy then stays within twice its capacity plus 64 MiB.
    pub fn default_inflight(capacity: u64) -> u64 {
        capacity / 4
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig::new(64 << 20, None)
    }
}

/// Default of `--udp-delay-buffer`: about 4 s of a 64 Mbit/s stream, 512
/// maximum-size datagrams.
pub const DEFAULT_UDP_DELAY_BUFFER: u64 = 32 << 20;

/// Bounds of the UDP session table and of the delay line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpForwardConfig {
    /// Client addresses served at once; datagrams from new clients past it are dropped.
    pub max_sessions: usize,
    /// A session with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// Most payload bytes the impairment's delay line holds at once, both
    /// directions together; datagrams past it are tail-dropped (counted).
    pub delay_buffer: u64,
    /// Forward on a thread of the forwarder's own (see `udp::OwnThread`),
    /// as `netrun proxy` does; else on the proxy's runtime (a scenario
    /// without UDP through the proxy, so one thread fewer to start).
    pub own_thread: bool,
}

impl Default for UdpForwardConfig {
    fn default() -> Self {
        UdpForwardConfig {
            max_sessions: 1024,
            idle_timeout: Duration::from_secs(60),
            delay_buffer: DEFAULT_UDP_DELAY_BUFFER,
            own_thread: true,
        }
    }
}

/// Optional collaborators: the clock the cache reads (tests inject a
/// [`ManualClock`]) and the impairment of each link (none by default).
#[derive(Clone)]
pub struct ProxyHooks {
    pub clock: Arc<dyn Clock>,
    /// The clients ↔ proxy link: every exchange crosses it, hits included.
    pub impair: Arc<dyn Impairment>,
    /// The proxy ↔ origin link: only what goes upstream (and its answers)
    /// crosses it; a cache hit never does.
    pub origin_link: Arc<dyn Impairment>,
}

impl Default for ProxyHooks {
    fn default() -> Self {
        ProxyHooks {
            clock: Arc::new(SystemClock),
            impair: Arc::new(NoImpairment),
            origin_link: Arc::new(NoImpairment),
        }
    }
}

impl ProxyHooks {
    /// The seeded models of both links, the real clock.
    pub fn links(clients_proxy: LinkConfig, proxy_origin: LinkConfig) -> Self {
        ProxyHooks {
            impair: Arc::new(LinkModel::on(Link::ClientsProxy, clients_proxy)),
            origin_link: Arc::new(LinkModel::on(Link::ProxyOrigin, proxy_origin)),
            ..ProxyHooks::default()
        }
    }
}

/// A snapshot of the proxy's counters. Counts are totals since start;
/// `cache_bytes`, `cache_entries` and `udp_sessions_active` are current values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// HTTP requests received.
    pub requests: u64,
    /// Responses served from the cache (`X-Cache: HIT`), revalidated ones and
    /// coalesced waiters included.
    pub hits: u64,
    /// Responses fetched from upstream for a cacheable request (`X-Cache: MISS`).
    pub misses: u64,
    /// Responses forwarded without the cache (`X-Cache: BYPASS`).
    pub bypasses: u64,
    /// Requests that waited for another request's upstream fetch of the same key.
    pub coalesced: u64,
    /// Conditional requests sent upstream to revalidate a stale entry.
    pub revalidations: u64,
    /// Revalidations the upstream answered 304 (entry refreshed, body reused).
    pub revalidated_unmodified: u64,
    /// Body bytes sent to clients from the cache.
    pub bytes_from_cache: u64,
    /// Body bytes received from the upstream.
    pub bytes_from_upstream: u64,
    /// HTTP requests sent upstream.
    pub upstream_fetches: u64,
    /// Upstream fetches that failed (refused, reset, timed out, a failed
    /// TLS handshake): 502/504.
    pub upstream_errors: u64,
    /// TCP connections opened to the upstream (the pool reuses them).
    pub upstream_connections: u64,
    /// TLS handshakes completed with the upstream: one per connection, not
    /// per request.
    pub upstream_tls_handshakes: u64,
    /// Requests an HTTP/2 upstream refused unprocessed (GOAWAY or
    /// REFUSED_STREAM) and the proxy sent once more on a new connection.
    pub upstream_retries: u64,
    /// Responses stored in the cache.
    pub stored: u64,
    /// Entries evicted to keep the cache within its capacity.
    pub evictions: u64,
    /// Bytes the cache holds now (never more than its capacity).
    pub cache_bytes: u64,
    /// Entries the cache holds now.
    pub cache_entries: u64,
    /// Bytes of response bodies held in memory now: stored entries, bodies
    /// being read for the cache, evicted ones still being sent (never more
    /// than the cache's capacity plus `max_inflight`).
    pub response_bytes_held: u64,
    /// Cacheable responses streamed uncached because reading them whole
    /// would have gone past that bound.
    pub streamed_over_limit: u64,
    /// Datagrams forwarded client → upstream.
    pub udp_datagrams_to_upstream: u64,
    /// Payload bytes forwarded client → upstream.
    pub udp_bytes_to_upstream: u64,
    /// Datagrams forwarded upstream → client.
    pub udp_datagrams_to_client: u64,
    /// Payload bytes forwarded upstream → client.
    pub udp_bytes_to_client: u64,
    /// UDP sessions (client addresses) opened.
    pub udp_sessions_opened: u64,
    /// UDP sessions closed after `idle_timeout` without traffic.
    pub udp_sessions_expired: u64,
    /// UDP sessions open now.
    pub udp_sessions_active: u64,
    /// Datagrams dropped because the session table was full.
    pub udp_dropped_table_full: u64,
    /// Datagrams dropped because a send (or opening a session socket) failed.
    pub udp_send_errors: u64,
    /// Datagrams dropped because a socket's send buffer was full: the
    /// forwarder never waits for one client's socket, so others are not held back.
    pub udp_dropped_buffer_full: u64,
    /// Datagrams the kernel dropped at the forwarder's sockets because
    /// their receive buffers were full (the forwarder fell behind), both
    /// directions (Linux; 0 elsewhere).
    pub udp_dropped_receive_full: u64,
    /// Datagrams dropped by the clients ↔ proxy link (random loss, or the
    /// rate-limited link's queue overflowing), both directions.
    pub udp_dropped_impairment: u64,
    /// Datagrams the clients ↔ proxy link held back (delay, jitter or rate)
    /// before forwarding them, both directions.
    pub udp_delayed_impairment: u64,
    /// Datagrams tail-dropped because the delay line held
    /// `--udp-delay-buffer` bytes already.
    pub udp_dropped_delay_full: u64,
    /// Payload bytes the delay line holds now (never more than its bound).
    pub udp_delay_bytes: u64,
    /// HTTP messages the clients ↔ proxy link delayed: request heads on the
    /// way in plus response heads on the way back.
    pub http_delayed: u64,
    /// Datagrams dropped by the proxy ↔ origin link, both directions.
    pub origin_link_udp_dropped: u64,
    /// Datagrams the proxy ↔ origin link held back, both directions.
    pub origin_link_udp_delayed: u64,
    /// HTTP messages the proxy ↔ origin link delayed: requests sent upstream
    /// plus the response heads coming back.
    pub origin_link_http_delayed: u64,
}

/// Live counters, updated with relaxed atomics in the hot path.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub bypasses: AtomicU64,
    pub coalesced: AtomicU64,
    pub revalidations: AtomicU64,
    pub revalidated_unmodified: AtomicU64,
    pub bytes_from_cache: AtomicU64,
    pub bytes_from_upstream: AtomicU64,
    pub upstream_fetches: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub upstream_connections: AtomicU64,
    pub upstream_tls_handshakes: AtomicU64,
    pub upstream_retries: AtomicU64,
    pub stored: AtomicU64,
    pub evictions: AtomicU64,
    pub cache_bytes: AtomicU64,
    pub cache_entries: AtomicU64,
    pub response_bytes_held: AtomicU64,
    pub streamed_over_limit: AtomicU64,
    pub udp_datagrams_to_upstream: AtomicU64,
    pub udp_bytes_to_upstream: AtomicU64,
    pub udp_datagrams_to_client: AtomicU64,
    pub udp_bytes_to_client: AtomicU64,
    pub udp_sessions_opened: AtomicU64,
    pub udp_sessions_expired: AtomicU64,
    pub udp_sessions_active: AtomicU64,
    pub udp_dropped_table_full: AtomicU64,
    pub udp_send_errors: AtomicU64,
    pub udp_dropped_buffer_full: AtomicU64,
    pub udp_dropped_impairment: AtomicU64,
    pub udp_delayed_impairment: AtomicU64,
    pub udp_dropped_delay_full: AtomicU64,
    pub udp_delay_bytes: AtomicU64,
    pub http_delayed: AtomicU64,
    pub origin_link_udp_dropped: AtomicU64,
    pub origin_link_udp_delayed: AtomicU64,
    pub origin_link_http_delayed: AtomicU64,
    /// Hits the HTTP/1.1 fast path answered (also in `requests` and
    /// `hits`); for tests.
    pub quick: AtomicU64,
}

impl Counters {
    /// The counters now, with what the kernel dropped at the UDP
    /// forwarder's sockets (`drops`).
    fn snapshot(&self, drops: &udp::SocketDrops) -> ProxyStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProxyStats {
            requests: g(&self.requests),
            hits: g(&self.hits),
            misses: g(&self.misses),
            bypasses: g(&self.bypasses),
            coalesced: g(&self.coalesced),
            revalidations: g(&self.revalidations),
            revalidated_unmodified: g(&self.revalidated_unmodified),
            bytes_from_cache: g(&self.bytes_from_cache),
            bytes_from_upstream: g(&self.bytes_from_upstream),
            upstream_fetches: g(&self.upstream_fetches),
            upstream_errors: g(&self.upstream_errors),
            upstream_connections: g(&self.upstream_connections),
            upstream_tls_handshakes: g(&self.upstream_tls_handshakes),
            upstream_retries: g(&self.upstream_retries),
            stored: g(&self.stored),
            evictions: g(&self.evictions),
            cache_bytes: g(&self.cache_bytes),
            cache_entries: g(&self.cache_entries),
            response_bytes_held: g(&self.response_bytes_held),
            streamed_over_limit: g(&self.streamed_over_limit),
            udp_datagrams_to_upstream: g(&self.udp_datagrams_to_upstream),
            udp_bytes_to_upstream: g(&self.udp_bytes_to_upstream),
            udp_datagrams_to_client: g(&self.udp_datagrams_to_client),
            udp_bytes_to_client: g(&self.udp_bytes_to_client),
            udp_sessions_opened: g(&self.udp_sessions_opened),
            udp_sessions_expired: g(&self.udp_sessions_expired),
            udp_sessions_active: g(&self.udp_sessions_active),
            udp_dropped_table_full: g(&self.udp_dropped_table_full),
            udp_send_errors: g(&self.udp_send_errors),
            udp_dropped_buffer_full: g(&self.udp_dropped_buffer_full),
            udp_dropped_receive_full: drops.total(),
            udp_dropped_impairment: g(&self.udp_dropped_impairment),
            udp_delayed_impairment: g(&self.udp_delayed_impairment),
            udp_dropped_delay_full: g(&self.udp_dropped_delay_full),
            udp_delay_bytes: g(&self.udp_delay_bytes),
            http_delayed: g(&self.http_delayed),
            origin_link_udp_dropped: g(&self.origin_link_udp_dropped),
            origin_link_udp_delayed: g(&self.origin_link_udp_delayed),
            origin_link_http_delayed: g(&self.origin_link_http_delayed),
        }
    }
}

/// A running proxy.
pub struct ProxyHandle {
    http_addr: SocketAddr,
    udp_addr: SocketAddr,
    via_token: String,
    counters: Arc<Counters>,
    conn_stats: Arc<ConnStats>,
    /// What the kernel dropped at the UDP forwarder's sockets.
    drops: Arc<udp::SocketDrops>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl ProxyHandle {
    /// The address the HTTP side listens on.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The address the UDP side listens on.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// The pseudonym this proxy adds to `Via` (`netrun-` and 8 random hex
    /// digits); a request that already carries it has come round a loop.
    pub fn via_token(&self) -> &str {
        &self.via_token
    }

    /// The counters now.
    pub fn stats(&self) -> ProxyStats {
        self.counters.snapshot(&self.drops)
    }

    /// HTTP connections accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.conn_stats.accepted.load(Ordering::Relaxed)
    }

    /// Waits for the proxy to stop: once the shutdown token is cancelled (by
    /// the caller), waits up to `grace` for in-flight requests and sessions to
    /// finish. Returns false if some were still running when `grace` ran out.
    pub async fn wait(self, grace: Duration) -> bool {
        self.wait_with_stats(grace).await.0
    }

    /// [`ProxyHandle::wait`], then the final counters (in-flight requests
    /// that finished during the grace period included).
    pub async fn wait_with_stats(self, grace: Duration) -> (bool, ProxyStats) {
        self.shutdown.cancelled().await;
        self.tracker.close();
        let clean = tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok();
        (clean, self.stats())
    }
}

/// Starts the proxy on bound sockets with the real clock and no impairment.
/// It runs until `shutdown` is cancelled.
pub async fn spawn(
    http: impl Into<server::Listener>,
    udp: UdpSocket,
    config: ProxyConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<ProxyHandle> {
    spawn_with_hooks(http, udp, config, ProxyHooks::default(), shutdown).await
}

/// [`spawn`] with the cache reading `clock`, so tests can move time forward.
pub async fn spawn_with_clock(
    http: impl Into<server::Listener>,
    udp: UdpSocket,
    config: ProxyConfig,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) -> anyhow::Result<ProxyHandle> {
    let hooks = ProxyHooks {
        clock,
        ..ProxyHooks::default()
    };
    spawn_with_hooks(http, udp, config, hooks, shutdown).await
}

/// [`spawn`] with a chosen clock and impairment. `http` is a bound
/// listener, clear text or with its TLS configuration.
pub async fn spawn_with_hooks(
    http: impl Into<server::Listener>,
    udp: UdpSocket,
    config: ProxyConfig,
    hooks: ProxyHooks,
    shutdown: CancellationToken,
) -> anyhow::Result<ProxyHandle> {
    spawn_with_quick(http.into(), udp, config, hooks, shutdown, true).await
}

/// [`spawn_with_hooks`], with fresh hits answered by the server's fast
/// path or not (tests compare the two).
pub(crate) async fn spawn_with_quick(
    http: server::Listener,
    udp: UdpSocket,
    config: ProxyConfig,
    hooks: ProxyHooks,
    shutdown: CancellationToken,
    quick: bool,
) -> anyhow::Result<ProxyHandle> {
    let http_addr = http
        .tcp
        .local_addr()
        .context("reading the proxy's HTTP address")?;
    let udp_addr = udp
        .local_addr()
        .context("reading the proxy's UDP address")?;
    refuse_self_loop(http_addr, config.upstream_http, "--upstream")?;
    refuse_self_loop(udp_addr, config.upstream_udp, "--udp-upstream")?;
    // Random per instance: two netrun proxies in a chain must not take each
    // other's token for their own.
    let via_token = format!("{}-{:08x}", cache::CACHE_NAME, rand::random::<u32>());
    let counters = Arc::new(Counters::default());
    let conn_stats = Arc::new(ConnStats::default());
    let tracker = TaskTracker::new();
    // One precise timer thread for both links' delays, started by the first
    // delay (an unimpaired proxy never starts it).
    let delays = udp::delay_timer(counters.clone());

    let handler = http::ProxyService::new(
        &config,
        counters.clone(),
        hooks.clock.clone(),
        hooks.impair.clone(),
        hooks.origin_link.clone(),
        delays.clone(),
        via_token.clone(),
        http::Background {
            tracker: tracker.clone(),
            shutdown: shutdown.clone(),
        },
        quick,
    );
    let place = udp::OwnThread::new(config.udp.own_thread)
        .context("cannot start the UDP forwarder's runtime")?;
    let udp = {
        let _on = place.enter();
        crate::udp_batch::UdpIo::from_tokio(udp).context("registering the proxy's UDP socket")?
    };
    let forwarder = udp::Forwarder::new(
        Arc::new(udp),
        config.upstream_udp,
        config.udp,
        counters.clone(),
        hooks.impair,
        hooks.origin_link,
        delays,
    );
    let drops = forwarder.drops();
    forwarder
        .start(place, shutdown.clone(), tracker.clone())
        .context("cannot start the UDP forwarder's thread")?;
    tracker.spawn(server::serve(
        http,
        handler,
        config.limits.clone(),
        shutdown.clone(),
        tracker.clone(),
        conn_stats.clone(),
        "proxy",
    ));

    Ok(ProxyHandle {
        http_addr,
        udp_addr,
        via_token,
        counters,
        conn_stats,
        drops,
        shutdown,
        tracker,
    })
}

/// Refuses an upstream that is the proxy's own listening socket: every
/// request (or datagram) would be forwarded to itself until a limit is hit.
fn refuse_self_loop(listen: SocketAddr, upstream: SocketAddr, flag: &str) -> anyhow::Result<()> {
    if reaches(upstream, listen) {
        return Err(crate::Error::input(format!(
            "{flag} {upstream} is this proxy's own listening address {listen}: it would forward to itself; point {flag} at the origin"
        ))
        .into());
    }
    Ok(())
}

/// Whether connecting to `upstream` lands on a socket bound to `listen`:
/// same port, and the same address, or a wildcard bind reached through
/// loopback (connecting to the wildcard address itself means this host).
fn reaches(upstream: SocketAddr, listen: SocketAddr) -> bool {
    if upstream.port() != listen.port() {
        return false;
    }
    let (u, l) = (upstream.ip(), listen.ip());
    let local = |ip: std::net::IpAddr| ip.is_loopback() || ip.is_unspecified();
    u == l || (l.is_unspecified() && local(u)) || (u.is_unspecified() && local(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_loop_is_the_same_port_reached_through_the_same_or_a_wildcard_address() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(reaches(a("127.0.0.1:80"), a("127.0.0.1:80")));
        assert!(reaches(a("127.0.0.1:80"), a("0.0.0.0:80")));
        assert!(reaches(a("0.0.0.0:80"), a("127.0.0.1:80")));
        assert!(reaches(a("[::1]:80"), a("[::]:80")));
        assert!(!reaches(a("127.0.0.1:81"), a("127.0.0.1:80")));
        assert!(!reaches(a("127.0.0.2:80"), a("127.0.0.1:80")));
        assert!(!reaches(a("10.0.0.1:80"), a("127.0.0.1:80")));
    }
}
