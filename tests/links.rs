//! The proxy's two links end to end: `clients_proxy` (every exchange through
//! the proxy, hits included) and `proxy_origin` (only what goes upstream),
//! measured by the probe engines against the origin serving `www/`. Time
//! bounds are lower bounds, or upper bounds with a wide margin where the
//! point is that a link was *not* crossed: a loaded host only adds delay.

use std::time::Duration;

use netrun::metrics::records::{CacheMark, HttpRequestRow};
use netrun::origin::OriginHandle;
use netrun::proxy::{LinkConfig, ProxyConfig, ProxyHandle, ProxyHooks};
use netrun::workload::http::HttpReport;
use netrun::workload::udp::UdpReport;
use tokio_util::sync::CancellationToken;

#[path = "common/stack.rs"]
mod common_stack;

struct Stack {
    origin: OriginHandle,
    proxy: ProxyHandle,
    token: CancellationToken,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

async fn stack(clients: LinkConfig, origin: LinkConfig, cache: bool) -> Stack {
    let token = CancellationToken::new();
    let hooks = ProxyHooks::links(clients, origin);
    let (origin, proxy) = if cache {
        common_stack::origin_and_proxy(hooks, &token).await
    } else {
        let no_cache = |c: &mut ProxyConfig| c.cache = None;
        common_stack::origin_and_proxy_with(hooks, no_cache, &token).await
    };
    Stack {
        origin,
        proxy,
        token,
    }
}

fn clean() -> LinkConfig {
    LinkConfig {
        seed: 42,
        ..LinkConfig::default()
    }
}

fn delay(ms: u64) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(ms),
        ..clean()
    }
}

/// `requests` GETs of `paths` in turn, one at a time, against `target`; the
/// report and every request's row.
async fn http(
    target: std::net::SocketAddr,
    paths: &[&str],
    requests: u64,
) -> (HttpReport, Vec<HttpRequestRow>) {
    let (report, rows) =
        common_stack::http_probe(target, paths, requests, 1, Duration::from_secs(20)).await;
    assert_eq!(report.errors, 0, "{rows:?}");
    assert_eq!(rows.len() as u64, requests);
    (report, rows)
}

/// `count` datagrams every `interval`; the probe waits `timeout` for the last replies.
async fn udp(s: &Stack, count: u64, interval: Duration, timeout: Duration) -> UdpReport {
    common_stack::udp_probe(s.proxy.udp_addr(), count, 64, interval, timeout).await
}

fn latencies(rows: &[HttpRequestRow], mark: CacheMark) -> Vec<f64> {
    rows.iter()
        .filter(|r| r.cache == mark)
        .map(|r| r.latency_ms)
        .collect()
}

#[tokio::test]
async fn without_the_cache_every_request_pays_the_origin_link() {
    let s = stack(clean(), delay(10), false).await;
    let (_, rows) = http(s.proxy.http_addr(), &["/index.html", "/style.css"], 10).await;
    for r in &rows {
        assert_eq!(r.cache, CacheMark::Bypass, "{r:?}");
        // 10 ms up, 10 ms back.
        assert!(r.latency_ms >= 20.0, "{r:?}");
    }
    let p = s.proxy.stats();
    assert_eq!(p.upstream_fetches, 10);
    assert_eq!(
        p.origin_link_http_delayed, 20,
        "each request and response head"
    );
    assert_eq!(p.http_delayed, 0, "the clients' link is clean");
}

#[tokio::test]
async fn with_the_cache_only_misses_pay_the_origin_link() {
    let s = stack(clean(), delay(10), true).await;
    let (_, rows) = http(s.proxy.http_addr(), &["/index.html", "/style.css"], 20).await;
    let misses = latencies(&rows, CacheMark::Miss);
    let hits = latencies(&rows, CacheMark::Hit);
    assert_eq!((misses.len(), hits.len()), (2, 18), "{rows:?}");
    assert!(misses.iter().all(|&ms| ms >= 20.0), "misses {misses:?}");
    // A hit never crosses the origin's link (the counters below say so
    // exactly): loopback speed, for most of them even on a busy host.
    let fast = hits.iter().filter(|&&ms| ms < 20.0).count();
    assert!(fast * 2 > hits.len(), "hits {hits:?}");
    let p = s.proxy.stats();
    assert_eq!(p.upstream_fetches, 2);
    assert_eq!(p.origin_link_http_delayed, 4);
}

#[tokio::test]
async fn the_clients_link_delays_every_exchange_and_leaves_the_origin_alone() {
    let s = stack(delay(3), clean(), true).await;
    let (_, rows) = http(s.proxy.http_addr(), &["/index.html"], 10).await;
    assert_eq!(latencies(&rows, CacheMark::Hit).len(), 9, "{rows:?}");
    // Hits included: 3 ms in, 3 ms back.
    assert!(rows.iter().all(|r| r.latency_ms >= 6.0), "{rows:?}");
    assert_eq!(s.proxy.stats().http_delayed, 20);

    // Straight to the origin: nothing crosses the proxy.
    let before = s.proxy.stats();
    let (report, _) = http(s.origin.http_addr(), &["/index.html"], 10).await;
    assert_eq!(s.proxy.stats(), before);
    // Nothing crossed the proxy (the counters above); how fast the direct
    // path was is not asserted: on a busy host it can take 6 ms too.
    assert!(report.latency.is_some());
}

#[tokio::test]
async fn udp_pays_both_links_each_way() {
    let s = stack(delay(3), delay(5), true).await;
    let r = udp(&s, 50, Duration::from_millis(2), Duration::from_secs(2)).await;
    assert_eq!(r.lost, 0);
    let rtt = r.rtt.expect("replies");
    // (3 + 5) ms each way.
    assert!(rtt.min_ms >= 16.0, "min RTT {} ms", rtt.min_ms);
    let p = s.proxy.stats();
    // Each datagram was held by both links, once each way.
    assert_eq!(p.udp_delayed_impairment, 100);
    assert_eq!(p.origin_link_udp_delayed, 100);
    assert_eq!(p.udp_dropped_impairment + p.origin_link_udp_dropped, 0);
}

#[tokio::test]
async fn loss_on_each_link_is_counted_on_that_link() {
    let lossy = LinkConfig {
        loss_percent: 5.0,
        ..clean()
    };
    for (clients, origin) in [(lossy, clean()), (clean(), lossy), (lossy, lossy)] {
        let s = stack(clients, origin, true).await;
        // Replies that come at all come within a millisecond: a short wait.
        let r = udp(
            &s,
            1000,
            Duration::from_micros(200),
            Duration::from_millis(500),
        )
        .await;
        let p = s.proxy.stats();
        let (on_clients, on_origin) = (p.udp_dropped_impairment, p.origin_link_udp_dropped);
        assert_eq!(on_clients > 0, clients.loss_percent > 0.0, "{p:?}");
        assert_eq!(on_origin > 0, origin.loss_percent > 0.0, "{p:?}");
        // Loopback loses nothing else at this pace (a starved host would
        // show it as a buffer-full drop).
        assert_eq!(
            r.lost,
            on_clients + on_origin + p.udp_dropped_buffer_full,
            "probe lost {}, links dropped {on_clients} + {on_origin}",
            r.lost
        );
    }
}

#[tokio::test]
async fn an_origin_link_rate_slows_downloads_but_not_cache_hits() {
    // 16 Mbit/s: the 1 MiB file takes about 0.52 s to cross the link.
    let rate = 16e6;
    let link = LinkConfig {
        rate_bps: rate,
        ..clean()
    };
    let bits = (8u64 << 20) as f64;

    let off = stack(clean(), link, false).await;
    let (_, rows) = http(off.proxy.http_addr(), &["/data/large.bin"], 1).await;
    assert_eq!((rows[0].bytes, rows[0].cache), (1 << 20, CacheMark::Bypass));
    let bps = bits / (rows[0].latency_ms / 1e3);
    assert!(
        bps <= rate * 1.05,
        "cache off: {bps} bit/s over a {rate} bit/s link"
    );

    let on = stack(clean(), link, true).await;
    let (_, rows) = http(on.proxy.http_addr(), &["/data/large.bin"], 2).await;
    assert_eq!(rows[0].cache, CacheMark::Miss);
    let miss_bps = bits / (rows[0].latency_ms / 1e3);
    assert!(miss_bps <= rate * 1.05, "miss: {miss_bps} bit/s");
    assert_eq!((rows[1].bytes, rows[1].cache), (1 << 20, CacheMark::Hit));
    // The hit never crosses the slow link: one upstream fetch for the two
    // requests (a count, not a speed, so a busy host cannot fail it).
    assert_eq!(on.proxy.stats().upstream_fetches, 1);
}
