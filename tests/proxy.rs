//! The caching proxy against a counting test upstream, on real sockets.

mod support_proxy;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use netrun::proxy::{CacheConfig, ProxyStats, UdpForwardConfig};
use support_proxy::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miss_then_hit() {
    let (up, proxy) = setup().await;
    let first = get(proxy.http(), "/index.html").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.x_cache(), "MISS");
    assert_eq!(first.header("cache-status"), "netrun; fwd=uri-miss; stored");
    assert!(first.header("via").contains("1.1 netrun"));
    assert_eq!(first.body, "<html>/index.html</html>");

    proxy.clock.advance(Duration::from_secs(3));
    let second = get(proxy.http(), "/index.html").await;
    assert_eq!(second.x_cache(), "HIT");
    assert_eq!(second.header("age"), "3");
    assert_eq!(second.header("cache-status"), "netrun; hit; ttl=57");
    assert_eq!(second.header("content-type"), "text/html");
    assert_eq!(second.body, first.body);
    assert_eq!(up.hits("/index.html"), 1);

    let s = proxy.handle.stats();
    assert_eq!((s.requests, s.hits, s.misses, s.bypasses), (2, 1, 1, 0));
    assert_eq!(s.bytes_from_cache, first.body.len() as u64);
    assert_eq!(s.bytes_from_upstream, first.body.len() as u64);
    assert_eq!(s.upstream_fetches, 1);
    assert_eq!(s.cache_entries, 1);

    // The query is part of the key.
    assert_eq!(get(proxy.http(), "/index.html?v=2").await.x_cache(), "MISS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_upstream_fetch_for_100_concurrent_misses() {
    let (up, proxy) = setup().await;
    let addr = proxy.http();
    let clients: Vec<_> = (0..100)
        .map(|_| tokio::spawn(async move { get(addr, "/slow").await }))
        .collect();
    // Hold the upstream until every other client is waiting on the leader.
    let handle = &proxy.handle;
    eventually("99 coalesced waiters", LIMIT, || {
        handle.stats().coalesced == 99 && up.hits("/slow") == 1
    })
    .await;
    up.release_slow();
    let mut labels = Vec::new();
    for c in clients {
        let r = c.await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "worth the wait");
        labels.push(r.x_cache().to_string());
    }
    assert_eq!(up.hits("/slow"), 1, "the upstream was asked once");
    assert_eq!(labels.iter().filter(|l| *l == "MISS").count(), 1);
    assert_eq!(labels.iter().filter(|l| *l == "HIT").count(), 99);
    let s = proxy.handle.stats();
    assert_eq!(s.upstream_fetches, 1);
    assert_eq!(s.coalesced, 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_and_private_are_never_cached() {
    let (up, proxy) = setup().await;
    for _ in 0..3 {
        let r = get(proxy.http(), "/nostore").await;
        assert_eq!((r.status.as_u16(), r.x_cache()), (200, "MISS"));
        assert_eq!(r.header("cache-status"), "netrun; fwd=uri-miss");
        let r = get(proxy.http(), "/private").await;
        assert_eq!((r.status.as_u16(), r.x_cache()), (200, "MISS"));
        assert_eq!(r.body, "mine");
    }
    assert_eq!(up.hits("/nostore"), 3);
    assert_eq!(up.hits("/private"), 3);
    assert_eq!(proxy.handle.stats().cache_entries, 0);

    // A request's own no-store bypasses the cache.
    get(proxy.http(), "/index.html").await;
    let r = request(
        proxy.http(),
        "GET",
        "/index.html",
        &[("cache-control", "no-store")],
    )
    .await;
    assert_eq!(r.x_cache(), "BYPASS");
    assert_eq!(up.hits("/index.html"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_expiry_then_revalidation_with_304() {
    let (up, proxy) = setup().await;
    assert_eq!(get(proxy.http(), "/short").await.x_cache(), "MISS");
    proxy.clock.advance(Duration::from_secs(9));
    assert_eq!(get(proxy.http(), "/short").await.x_cache(), "HIT");
    assert_eq!(up.hits("/short"), 1);

    // Past max-age=10: revalidated with If-None-Match, the 304 refreshes it.
    proxy.clock.advance(Duration::from_secs(2));
    let r = get(proxy.http(), "/short").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.x_cache(), "HIT");
    assert_eq!(
        r.header("cache-status"),
        "netrun; fwd=stale; fwd-status=304"
    );
    assert_eq!(r.body, "short-lived");
    assert_eq!(up.hits("/short"), 2);
    let s = proxy.handle.stats();
    assert_eq!((s.revalidations, s.revalidated_unmodified), (1, 1));

    // Fresh again for another 10s.
    proxy.clock.advance(Duration::from_secs(5));
    let r = get(proxy.http(), "/short").await;
    assert_eq!(r.x_cache(), "HIT");
    assert_eq!(r.header("age"), "5");
    assert_eq!(up.hits("/short"), 2);

    // A client's own validator gets a 304 from the cache.
    let r = request(
        proxy.http(),
        "GET",
        "/short",
        &[("if-none-match", "\"short-v1\"")],
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(up.hits("/short"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_no_cache_forces_revalidation() {
    let (up, proxy) = setup().await;
    get(proxy.http(), "/short").await;
    let r = request(
        proxy.http(),
        "GET",
        "/short",
        &[("cache-control", "no-cache")],
    )
    .await;
    assert_eq!(r.x_cache(), "HIT");
    assert_eq!(
        r.header("cache-status"),
        "netrun; fwd=request; fwd-status=304"
    );
    assert_eq!(up.hits("/short"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_without_explicit_freshness_are_not_cached() {
    let (up, proxy) = setup().await;
    for _ in 0..3 {
        let r = get(proxy.http(), "/error").await;
        assert_eq!(r.status, 500);
        assert_eq!(r.x_cache(), "MISS");
        assert_eq!(r.body, "boom");
    }
    assert_eq!(up.hits("/error"), 3);
    assert_eq!(proxy.handle.stats().stored, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_keeps_the_byte_bound() {
    let upstream = Upstream::start().await;
    let capacity = 64 * 1024;
    let proxy = start_proxy(upstream.addr, udp_echo().await, |c| {
        c.cache = Some(CacheConfig {
            capacity,
            default_ttl: None,
            ..CacheConfig::default()
        })
    })
    .await;
    for i in 0..40 {
        let r = get(proxy.http(), &format!("/size/4000/{i}")).await;
        assert_eq!(r.x_cache(), "MISS");
        assert_eq!(r.body.len(), 4000);
        assert!(proxy.handle.stats().cache_bytes <= capacity);
    }
    let s = proxy.handle.stats();
    assert_eq!(s.stored, 40);
    assert!(s.evictions > 0, "{s:?}");
    assert_eq!(s.cache_entries + s.evictions, 40);
    assert!(
        s.cache_bytes <= capacity && s.cache_bytes > capacity / 2,
        "{s:?}"
    );
    // The newest is still there, the oldest went first.
    assert_eq!(get(proxy.http(), "/size/4000/39").await.x_cache(), "HIT");
    assert_eq!(get(proxy.http(), "/size/4000/0").await.x_cache(), "MISS");
    // Over the per-entry bound (capacity/8 = 8KiB): forwarded, never stored.
    assert_eq!(get(proxy.http(), "/size/9000/big").await.x_cache(), "MISS");
    assert_eq!(get(proxy.http(), "/size/9000/big").await.x_cache(), "MISS");
    assert_eq!(upstream.hits("/size/9000/big"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_gives_502() {
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = gone.local_addr().unwrap();
    drop(gone);
    let proxy = start_proxy(addr, udp_echo().await, |_| {}).await;
    for _ in 0..2 {
        let r = get(proxy.http(), "/index.html").await;
        assert_eq!(r.status, 502);
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains(&addr.to_string()), "{body}");
        assert!(body.contains("refused"), "{body}");
    }
    let s = proxy.handle.stats();
    assert_eq!(
        (s.upstream_errors, s.stored),
        (2, 0),
        "the next request retries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_hang_gives_504_to_every_waiter() {
    let upstream = Upstream::start().await;
    let proxy = start_proxy(upstream.addr, udp_echo().await, |c| {
        c.upstream_timeout = Duration::from_millis(200);
    })
    .await;
    let addr = proxy.http();
    let clients: Vec<_> = (0..5)
        .map(|_| tokio::spawn(async move { get(addr, "/hang").await }))
        .collect();
    for c in clients {
        let r = c.await.unwrap();
        assert_eq!(r.status, 504);
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains("did not answer within 200ms"), "{body}");
        assert!(body.contains(&upstream.addr.to_string()), "{body}");
    }
    let s = proxy.handle.stats();
    assert_eq!(s.stored, 0);
    assert!(s.upstream_errors >= 1);
    // The next request tries again.
    assert_eq!(get(addr, "/hang").await.status, 504);
    assert_eq!(proxy.handle.stats().upstream_errors, s.upstream_errors + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_only_for_the_upstream() {
    let (up, proxy) = setup().await;
    let r = raw(
        proxy.http(),
        "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    assert!(r.contains("not an open proxy"), "{r}");
    let other_port = format!("http://127.0.0.1:{}/index.html", up.addr.port() + 1);
    assert_eq!(
        request(proxy.http(), "GET", &other_port, &[]).await.status,
        403
    );

    let port = up.addr.port();
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let r = request(proxy.http(), "GET", &format!("http://{host}/abs"), &[]).await;
        assert_eq!(r.status, 200, "{host}");
        assert_eq!(r.body, "<html>/abs</html>");
    }
    // Both spellings share one cache entry with the origin-form path.
    assert_eq!(up.hits("/abs"), 1);
    assert_eq!(get(proxy.http(), "/abs").await.x_cache(), "HIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_is_answered_from_the_stored_get() {
    let (up, proxy) = setup().await;
    let full = get(proxy.http(), "/page").await;
    let r = request(proxy.http(), "HEAD", "/page", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.x_cache(), "HIT");
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), full.body.len().to_string());
    assert_eq!(up.hits("/page"), 1);
    // A HEAD miss is forwarded as HEAD.
    let r = request(proxy.http(), "HEAD", "/other", &[]).await;
    assert_eq!((r.status.as_u16(), r.x_cache()), (200, "MISS"));
    assert!(r.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_streamed_byte_exact() {
    let upstream = Upstream::start().await;
    let proxy = start_proxy(upstream.addr, udp_echo().await, |c| {
        c.cache = Some(CacheConfig {
            capacity: 1024 * 1024, // per-entry bound 128KiB < 2MiB
            default_ttl: None,
            ..CacheConfig::default()
        })
    })
    .await;
    let expected = large_body();
    for path in ["/large", "/large-chunked"] {
        for _ in 0..2 {
            let r = get(proxy.http(), path).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.x_cache(), "MISS", "{path}");
            assert_eq!(r.body.len(), LARGE, "{path}");
            assert!(r.body == expected, "{path}: body differs");
        }
        assert_eq!(upstream.hits(path), 2);
    }
    let s = proxy.handle.stats();
    assert_eq!(s.stored, 0);
    assert_eq!(s.bytes_from_upstream, 4 * LARGE as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cache_mode_bypasses_everything() {
    let upstream = Upstream::start().await;
    let proxy = start_proxy(upstream.addr, udp_echo().await, |c| c.cache = None).await;
    for _ in 0..3 {
        let r = get(proxy.http(), "/index.html").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.x_cache(), "BYPASS");
        assert_eq!(r.header("cache-status"), "netrun; fwd=bypass");
    }
    assert_eq!(upstream.hits("/index.html"), 3);
    let s = proxy.handle.stats();
    assert_eq!((s.bypasses, s.hits, s.misses), (3, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let (_up, proxy) = setup().await;
    let r = request(
        proxy.http(),
        "GET",
        "/headers",
        &[
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
        ],
    )
    .await;
    let via = format!("1.1 {}", proxy.handle.via_token());
    assert!(via.starts_with("1.1 netrun-"), "{via}");
    assert_eq!(r.body, format!("via={via};hop=false"));
    assert!(!r.headers.contains_key("x-secret-hop"));
    assert!(!r.headers.contains_key("keep-alive"));
    assert_eq!(r.header("x-end-to-end"), "kept");
    assert_eq!(r.header("via"), via);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http10_request_like_the_course_client() {
    let (up, proxy) = setup().await;
    for expected in ["MISS", "HIT"] {
        let r = raw(proxy.http(), "GET /index.html HTTP/1.0\r\n\r\n").await;
        let lower = r.to_ascii_lowercase();
        assert!(r.starts_with("HTTP/1."), "{r}");
        assert!(r.contains(" 200 OK"), "{r}");
        assert!(
            lower.contains(&format!("x-cache: {}", expected.to_ascii_lowercase())),
            "{r}"
        );
        assert!(r.ends_with("<html>/index.html</html>"), "{r}");
    }
    assert_eq!(up.hits("/index.html"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_clean() {
    let (_up, proxy) = setup().await;
    get(proxy.http(), "/index.html").await;
    proxy.shutdown.cancel();
    assert!(proxy.handle.wait(Duration::from_secs(5)).await);
}

// ---- UDP ----

/// Forwarding on its own thread (`netrun proxy`) and on the proxy's
/// runtime (a scenario without UDP through the proxy) alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_clients_each_get_their_own_datagrams_back() {
    for own_thread in [true, false] {
        udp_clients_each_get_their_own(own_thread).await;
    }
}

async fn udp_clients_each_get_their_own(own_thread: bool) {
    let upstream = Upstream::start().await;
    let proxy = start_proxy(upstream.addr, udp_echo().await, |c| {
        c.udp.own_thread = own_thread;
    })
    .await;
    let target = proxy.handle.udp_addr();
    let clients: Vec<_> = (0..20u32)
        .map(|c| {
            tokio::spawn(async move {
                let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                sock.connect(target).await.unwrap();
                // Windows of 5 in flight: every client is active at once, but
                // no socket buffer overflows (loss here would be the test's, not the proxy's).
                let mut got = HashSet::new();
                let mut buf = vec![0u8; 2048];
                for window in 0..10u32 {
                    let mut sent = HashSet::new();
                    for i in window * 5..window * 5 + 5 {
                        let payload =
                            format!("client {c} datagram {i} {}", "x".repeat((i * 7) as usize));
                        sock.send(payload.as_bytes()).await.unwrap();
                        sent.insert(payload.into_bytes());
                    }
                    for _ in 0..sent.len() {
                        let n = tokio::time::timeout(LIMIT, sock.recv(&mut buf))
                            .await
                            .expect("echo reply missing")
                            .unwrap();
                        let d = buf[..n].to_vec();
                        assert!(
                            sent.contains(&d),
                            "client {c} got a datagram it did not send"
                        );
                        assert!(got.insert(d), "client {c} got a duplicate");
                    }
                }
                got.len()
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.await.unwrap(), 50, "own thread: {own_thread}");
    }
    // A client can read its last reply before the relay that sent it has
    // bumped the counter: stop the proxy so every task has finished.
    proxy.shutdown.cancel();
    let (_, s) = proxy.handle.wait_with_stats(LIMIT).await;
    assert_eq!(s.udp_sessions_opened, 20);
    assert_eq!(s.udp_datagrams_to_upstream, 1000);
    assert_eq!(s.udp_datagrams_to_client, 1000);
    assert_eq!(s.udp_bytes_to_upstream, s.udp_bytes_to_client);
    assert_eq!(s.udp_dropped_table_full + s.udp_send_errors, 0);
}

/// A burst of datagrams queued at once is forwarded in batches (runs of one
/// size leave as one segmented send): every datagram comes back whole, in
/// order, and is counted once each way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_burst_comes_back_complete_and_in_order() {
    for own_thread in [true, false] {
        a_udp_burst_comes_back(own_thread).await;
    }
}

async fn a_udp_burst_comes_back(own_thread: bool) {
    let upstream = Upstream::start().await;
    let proxy = start_proxy(upstream.addr, udp_echo().await, |c| {
        c.udp.own_thread = own_thread;
    })
    .await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(proxy.handle.udp_addr()).await.unwrap();
    // 60 of one size, then a shorter and a longer one, all sent before any
    // reply is read.
    let burst: Vec<Vec<u8>> = (0..60u8)
        .map(|i| vec![i; 64])
        .chain([vec![60; 10], vec![61; 300]])
        .collect();
    for d in &burst {
        sock.send(d).await.unwrap();
    }
    let mut buf = vec![0u8; 2048];
    for (i, d) in burst.iter().enumerate() {
        let n = tokio::time::timeout(LIMIT, sock.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("reply {i} missing"))
            .unwrap();
        assert_eq!(&buf[..n], &d[..], "reply {i}");
    }
    proxy.shutdown.cancel();
    let (_, s) = proxy.handle.wait_with_stats(LIMIT).await;
    let bytes: u64 = burst.iter().map(|d| d.len() as u64).sum();
    assert_eq!(
        (s.udp_datagrams_to_upstream, s.udp_datagrams_to_client),
        (62, 62)
    );
    assert_eq!(
        (s.udp_bytes_to_upstream, s.udp_bytes_to_client),
        (bytes, bytes)
    );
    assert_eq!(s.udp_dropped_buffer_full + s.udp_send_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_udp_sessions_expire() {
    let upstream = Upstream::start().await;
    let proxy = start_proxy(upstream.addr, udp_echo().await, |c| {
        c.udp = UdpForwardConfig {
            max_sessions: 16,
            idle_timeout: Duration::from_millis(100),
            ..UdpForwardConfig::default()
        }
    })
    .await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(proxy.handle.udp_addr()).await.unwrap();
    let mut buf = [0u8; 64];
    sock.send(b"ping").await.unwrap();
    let n = tokio::time::timeout(LIMIT, sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(proxy.handle.stats().udp_sessions_active, 1);
    let handle = &proxy.handle;
    eventually("the idle session to expire", LIMIT, || {
        let s = handle.stats();
        s.udp_sessions_expired == 1 && s.udp_sessions_active == 0
    })
    .await;
    // Talking again opens a new session that works.
    sock.send(b"again").await.unwrap();
    let n = tokio::time::timeout(LIMIT, sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"again");
    assert_eq!(proxy.handle.stats().udp_sessions_opened, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_session_table_bound_holds() {
    let upstream = Upstream::start().await;
    let proxy = start_proxy(upstream.addr, udp_echo().await, |c| {
        c.udp = UdpForwardConfig {
            max_sessions: 4,
            idle_timeout: Duration::from_secs(60),
            ..UdpForwardConfig::default()
        }
    })
    .await;
    let mut socks = Vec::new();
    for _ in 0..6 {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.connect(proxy.handle.udp_addr()).await.unwrap();
        socks.push(Arc::new(s));
    }
    let mut buf = [0u8; 64];
    // The first four get sessions and answers.
    for s in &socks[..4] {
        s.send(b"hello").await.unwrap();
        let n = tokio::time::timeout(LIMIT, s.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"hello");
    }
    // The other two are dropped and counted.
    for s in &socks[4..] {
        s.send(b"hello").await.unwrap();
    }
    let handle = &proxy.handle;
    eventually("two drops counted", LIMIT, || {
        handle.stats().udp_dropped_table_full == 2
    })
    .await;
    let s = proxy.handle.stats();
    assert_eq!((s.udp_sessions_active, s.udp_sessions_opened), (4, 4));
    assert_eq!(s.udp_datagrams_to_upstream, 4);
}

// ---- Regressions ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_age_header_neither_panics_nor_poisons_the_entry() {
    let (up, proxy) = setup().await;
    let first = get(proxy.http(), "/huge-age").await;
    assert_eq!((first.status.as_u16(), first.x_cache()), (200, "MISS"));
    assert_eq!(first.body, "very old");
    // Age is clamped to 2^31 s (RFC 9111 §1.2.2): far past max-age=60.
    assert_eq!(first.header("age"), (1u64 << 31).to_string());
    // Later lookups compute the stored entry's age again: they must not panic.
    for _ in 0..3 {
        proxy.clock.advance(Duration::from_secs(1));
        let r = get(proxy.http(), "/huge-age").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "very old");
        assert_eq!(r.x_cache(), "MISS", "older than max-age: never fresh");
    }
    assert_eq!(up.hits("/huge-age"), 4);
    assert_eq!(get(proxy.http(), "/index.html").await.status, 200);
}

/// Reads responses from `s` until the server closes it.
async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut out))
        .await
        .expect("server did not close the connection")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_head_with_a_body_are_answered_and_keep_the_connection() {
    let (up, proxy) = setup().await;
    // A GET with a body, then a second request on the same connection: the
    // upstream (which reads bodies) gets neither the body nor its headers.
    let mut s = TcpStream::connect(proxy.http()).await.unwrap();
    s.write_all(
        b"GET /body-len HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nabc\
          GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let both = read_all(&mut s).await;
    assert_eq!(both.matches("HTTP/1.1 200 OK").count(), 2, "{both}");
    assert!(both.contains("len=0;cl=;te=;ct=;expect="), "{both}");
    assert!(both.contains("<html>/index.html</html>"), "{both}");
    assert_eq!(up.hits("/body-len"), 1);

    // A HEAD miss with a body is forwarded as a bodiless HEAD.
    let mut s = TcpStream::connect(proxy.http()).await.unwrap();
    s.write_all(
        b"HEAD /body-len?head HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello\
          GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let both = read_all(&mut s).await;
    assert_eq!(both.matches("HTTP/1.1 200 OK").count(), 2, "{both}");
    assert!(both.contains("x-cache: MISS"), "{both}");
    assert_eq!(up.hits("/body-len"), 2);
    assert_eq!(proxy.handle.stats().upstream_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_waiters_never_share_a_vary_star_answer() {
    let (up, proxy) = setup().await;
    let addr = proxy.http();
    let clients: Vec<_> = ["alice", "bob"]
        .into_iter()
        .map(|user| {
            tokio::spawn(async move {
                let r = request(addr, "GET", "/vary-star", &[("x-user", user)]).await;
                (user, r)
            })
        })
        .collect();
    // Hold the upstream until the second request waits on the first.
    let handle = &proxy.handle;
    eventually("one coalesced waiter", LIMIT, || {
        handle.stats().coalesced == 1 && up.hits("/vary-star") == 1
    })
    .await;
    up.release_slow();
    for c in clients {
        let (user, r) = c.await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, format!("for={user}"), "{user} got another's answer");
        assert_eq!(r.x_cache(), "MISS");
    }
    assert_eq!(up.hits("/vary-star"), 2, "the waiter fetched its own");
    assert_eq!(proxy.handle.stats().stored, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_responses_stream_through_without_buffering() {
    let (up, proxy) = setup().await;
    let mut sender = connect(proxy.http()).await;
    let req = http::Request::get("/large-nostore-gated")
        .header("host", "x")
        .body(http_body_util::Empty::new())
        .unwrap();
    // The upstream holds back the second half: a proxy that read the whole
    // body before answering would give no head here (and then a 504).
    let resp = tokio::time::timeout(STEP, async {
        sender.ready().await.unwrap();
        sender.send_request(req).await.unwrap()
    })
    .await
    .expect("response head while the upstream is still sending");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-cache"], "MISS");
    let mut body = resp.into_body();
    let mut got = Vec::new();
    use http_body_util::BodyExt;
    while got.len() < LARGE / 2 {
        let frame = tokio::time::timeout(STEP, body.frame())
            .await
            .expect("first half in time")
            .expect("body continues")
            .unwrap();
        if let Ok(d) = frame.into_data() {
            got.extend_from_slice(&d);
        }
    }
    up.release_slow();
    let rest = tokio::time::timeout(STEP, body.collect())
        .await
        .expect("rest in time")
        .unwrap()
        .to_bytes();
    got.extend_from_slice(&rest);
    assert_eq!(got.len(), LARGE);
    assert!(got == large_body(), "body differs");
    let s = proxy.handle.stats();
    assert_eq!((s.stored, s.cache_entries), (0, 0));
    assert_eq!(s.bytes_from_upstream, LARGE as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_request_body_over_the_limit_gets_413() {
    let upstream = Upstream::start().await;
    let proxy = start_proxy(upstream.addr, udp_echo().await, |c| {
        c.limits.max_body_size = 1024;
    })
    .await;
    let chunk = "a".repeat(1500);
    for method in ["POST", "GET"] {
        let req = format!(
            "{method} /body-len HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
            chunk.len()
        );
        let r = raw(proxy.http(), &req).await;
        assert!(r.starts_with("HTTP/1.1 413"), "{method}: {r}");
        assert!(r.contains("larger than 1024 bytes"), "{method}: {r}");
    }
    // Under the limit it goes through.
    let small = "POST /body-len HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let r = raw(proxy.http(), small).await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("len=3"), "{r}");
    assert_eq!(
        proxy.handle.stats().upstream_errors,
        0,
        "not the upstream's fault"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_stalling_mid_body_is_cut_off() {
    let upstream = Upstream::start().await;
    let proxy = start_proxy(upstream.addr, udp_echo().await, |c| {
        c.upstream_timeout = Duration::from_millis(300);
    })
    .await;
    let mut sender = connect(proxy.http()).await;
    let req = http::Request::get("/stall")
        .header("host", "x")
        .body(http_body_util::Empty::new())
        .unwrap();
    let resp = tokio::time::timeout(STEP, async {
        sender.ready().await.unwrap();
        sender.send_request(req).await.unwrap()
    })
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    use http_body_util::BodyExt;
    let body = tokio::time::timeout(STEP, resp.into_body().collect())
        .await
        .expect("the proxy ends a stalled body instead of holding the client");
    // Aborted (what a client of a 2000-byte body sees) or at least short.
    if let Ok(b) = body {
        assert!(
            b.to_bytes().len() < 2000,
            "a stalled body cannot be complete"
        );
    }
    let handle = &proxy.handle;
    eventually("the stall counted as an upstream error", LIMIT, || {
        handle.stats().upstream_errors == 1
    })
    .await;
    assert_eq!(get(proxy.http(), "/index.html").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_methods_invalidate_only_when_they_succeed() {
    let (up, proxy) = setup().await;
    assert_eq!(get(proxy.http(), "/mutable").await.x_cache(), "MISS");
    assert_eq!(get(proxy.http(), "/mutable").await.x_cache(), "HIT");

    // A failed POST changed nothing: the entry stays.
    let r = request(proxy.http(), "POST", "/mutable", &[("x-fail", "1")]).await;
    assert_eq!(r.status, 500);
    assert_eq!(get(proxy.http(), "/mutable").await.x_cache(), "HIT");

    // A successful one did: the next GET goes upstream.
    for method in ["POST", "PUT", "DELETE"] {
        let r = request(proxy.http(), method, "/mutable", &[]).await;
        assert_eq!(r.status, 204, "{method}");
        let r = get(proxy.http(), "/mutable").await;
        assert_eq!(r.x_cache(), "MISS", "{method}");
        assert_eq!(r.body, "current");
    }
    assert_eq!(up.hits("/mutable"), 1 + 1 + 3 * 2);
}

/// A forwarder that falls behind: what the kernel dropped at its listening
/// socket is counted, so every datagram sent is either forwarded or a
/// counted drop. Here the forwarder runs on this test's thread (not its own
/// thread), which is busy while a burst larger than any receive buffer it
/// can have (4 MiB asked, which the kernel doubles) arrives.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "current_thread")]
async fn udp_datagrams_dropped_at_the_forwarders_socket_are_counted() {
    let upstream = Upstream::start().await;
    let proxy = start_proxy(upstream.addr, udp_echo().await, |c| {
        c.udp.own_thread = false;
    })
    .await;
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(proxy.handle.udp_addr()).unwrap();
    // 11.2 MB of payload, sent without an await.
    let sent = 8000u64;
    for _ in 0..sent {
        tx.send(&[1u8; 1400]).unwrap();
    }
    let accounted = |s: &ProxyStats| {
        s.udp_datagrams_to_upstream
            + s.udp_dropped_buffer_full
            + s.udp_send_errors
            + s.udp_dropped_receive_full
    };
    let handle = &proxy.handle;
    eventually("every datagram forwarded or counted", LIMIT, || {
        accounted(&handle.stats()) >= sent
    })
    .await;
    let s = proxy.handle.stats();
    assert!(s.udp_dropped_receive_full > 0, "{s:?}");
    assert_eq!(accounted(&s), sent, "{s:?}");
    // Still counted after the proxy stopped (its sessions closed).
    proxy.shutdown.cancel();
    let (_, end) = proxy.handle.wait_with_stats(LIMIT).await;
    assert!(end.udp_dropped_receive_full >= s.udp_dropped_receive_full);
}
