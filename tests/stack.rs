//! The real stack in-process: `netrun serve`'s origin behind `netrun proxy`'s
//! cache, measured by `netrun probe`'s HTTP engine. Each side's counters
//! must agree with what the others saw.

use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use netrun::metrics::{CacheMark, HttpRequestRow};
use netrun::origin::OriginHandle;
use netrun::proxy::{ManualClock, ProxyHandle, ProxyHooks};
use netrun::workload::http::HttpReport;
use tokio_util::sync::CancellationToken;

#[path = "common/stack.rs"]
mod common_stack;

struct Stack {
    origin: OriginHandle,
    proxy: ProxyHandle,
    clock: Arc<ManualClock>,
    token: CancellationToken,
}

async fn stack() -> Stack {
    let token = CancellationToken::new();
    let clock = Arc::new(ManualClock::new());
    let hooks = ProxyHooks {
        clock: clock.clone(),
        ..ProxyHooks::default()
    };
    let (origin, proxy) = common_stack::origin_and_proxy(hooks, &token).await;
    Stack {
        origin,
        proxy,
        clock,
        token,
    }
}

async fn load(
    stack: &Stack,
    path: &str,
    requests: u64,
    concurrency: u32,
) -> (HttpReport, Vec<HttpRequestRow>) {
    let addr = stack.proxy.http_addr();
    common_stack::http_probe(
        addr,
        &[path],
        requests,
        concurrency,
        Duration::from_secs(10),
    )
    .await
}

#[tokio::test]
async fn miss_then_hits_then_revalidation_with_the_origins_validators() {
    let s = stack().await;
    let (first, rows) = load(&s, "/index.html", 1, 1).await;
    assert_eq!(rows[0].cache, CacheMark::Miss);
    assert_eq!(first.cache_hits, 0);
    let (again, _) = load(&s, "/index.html", 20, 4).await;
    assert_eq!(again.cache_hits, 20);
    assert_eq!(
        s.origin.stats().http.requests,
        1,
        "only the miss reached the origin"
    );

    // The origin sends no Cache-Control: the proxy's default TTL (60 s) applies.
    // Past it, the proxy revalidates with the origin's ETag and gets a 304.
    s.clock.advance(Duration::from_secs(61));
    let (after, rows) = load(&s, "/index.html", 1, 1).await;
    assert_eq!(rows[0].status, Some(200));
    assert_eq!(rows[0].bytes, 584);
    assert_eq!(
        after.cache_hits, 1,
        "a revalidated entry is served as a hit"
    );
    let p = s.proxy.stats();
    assert_eq!(p.revalidations, 1);
    assert_eq!(p.revalidated_unmodified, 1);
    let o = s.origin.stats().http;
    assert_eq!(o.requests, 2);
    assert_eq!(
        o.not_modified, 1,
        "the origin answered the revalidation with 304"
    );
    assert_eq!(p.hits, 21);
    s.token.cancel();
    assert!(s.proxy.wait(Duration::from_secs(5)).await);
    assert!(s.origin.wait(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_hundred_concurrent_misses_on_the_large_file_fetch_it_once() {
    let s = stack().await;
    let (report, rows) = load(&s, "/data/large.bin", 100, 100).await;
    assert_eq!(report.responses, 100);
    assert_eq!(report.errors, 0);
    assert!(
        rows.iter().all(|r| r.bytes == 1 << 20),
        "every client got the whole file"
    );
    assert_eq!(
        rows.iter().filter(|r| r.cache == CacheMark::Miss).count(),
        1
    );
    assert_eq!(report.cache_hits, 99);
    assert_eq!(s.origin.stats().http.requests, 1);
    let p = s.proxy.stats();
    assert_eq!(p.upstream_fetches, 1);
    assert_eq!(p.bytes_from_cache, 99 << 20);
    s.token.cancel();
}

#[tokio::test]
async fn udp_through_the_forwarder_to_the_origins_echo() {
    use netrun::workload::udp::{run_udp, UdpProbeConfig};
    let s = stack().await;
    let config = UdpProbeConfig {
        target: s.proxy.udp_addr(),
        count: 200,
        size: 512,
        interval: Duration::from_micros(500),
        timeout: Duration::from_secs(1),
        flows: 3,
    };
    let report = run_udp(
        &config,
        &mut |_| {},
        &ProgressBar::hidden(),
        &CancellationToken::new(),
    )
    .await
    .expect("probe");
    let row = report.summary();
    assert_eq!(row.sent, Some(600));
    assert_eq!(row.foreign, Some(0));
    // Loopback can drop under a noisy neighbour; what arrived must add up.
    let (received, lost, late) = (
        row.received.unwrap_or(0),
        row.lost.unwrap_or(0),
        row.late.unwrap_or(0),
    );
    assert_eq!(received + lost + late, 600);
    let p = s.proxy.stats();
    assert_eq!(p.udp_sessions_opened, 3, "one session per flow");
    assert_eq!(p.udp_dropped_table_full, 0);
    // Each hop can only pass on what it got: client → proxy → origin → proxy → client.
    let echoed = s.origin.stats().udp.datagrams_echoed;
    let replies = received + late + row.duplicates.unwrap_or(0);
    assert!(p.udp_datagrams_to_upstream <= 600);
    assert!(echoed <= p.udp_datagrams_to_upstream);
    assert!(p.udp_datagrams_to_client <= echoed);
    assert!(replies <= p.udp_datagrams_to_client);
    if lost == 0 {
        assert_eq!(
            (
                p.udp_datagrams_to_upstream,
                echoed,
                p.udp_datagrams_to_client
            ),
            (600, 600, 600)
        );
    }
    s.token.cancel();
}
