//! The real stack in-process for tests: the repository's `www/` served by an
//! origin on free loopback ports, behind a proxy with the given hooks (clock,
//! impairments). Included with `#[path]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::ProgressBar;

use netrun::metrics::HttpRequestRow;
use netrun::origin::{self, OriginConfig, OriginHandle};
use netrun::proxy::{self, ProxyConfig, ProxyHandle, ProxyHooks};
use netrun::server::HttpLimits;
use netrun::workload::http::{run_http, HttpProbeConfig, HttpReport};
use netrun::workload::udp::{run_udp, UdpProbeConfig, UdpReport};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

/// Starts the origin and a proxy in front of it; both stop when `token` is cancelled.
pub async fn origin_and_proxy(
    hooks: ProxyHooks,
    token: &CancellationToken,
) -> (OriginHandle, ProxyHandle) {
    origin_and_proxy_with(hooks, |_| {}, token).await
}

/// [`origin_and_proxy`] with the proxy's configuration changed by `edit`
/// (e.g. the cache turned off).
pub async fn origin_and_proxy_with(
    hooks: ProxyHooks,
    edit: impl FnOnce(&mut ProxyConfig),
    token: &CancellationToken,
) -> (OriginHandle, ProxyHandle) {
    let www = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("www");
    let origin = origin::spawn(
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        UdpSocket::bind("127.0.0.1:0").await.expect("bind"),
        OriginConfig {
            www,
            limits: HttpLimits::default(),
            max_age: Some(origin::DEFAULT_MAX_AGE),
        },
        token.clone(),
    )
    .await
    .expect("origin");
    let mut config = ProxyConfig::new(origin.http_addr(), origin.udp_addr());
    edit(&mut config);
    let proxy = proxy::spawn_with_hooks(
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        UdpSocket::bind("127.0.0.1:0").await.expect("bind"),
        config,
        hooks,
        token.clone(),
    )
    .await
    .expect("proxy");
    (origin, proxy)
}

/// One UDP probe flow of `count` datagrams of `size` bytes to `target`,
/// samples discarded: the tests read the report.
#[allow(dead_code)] // not every suite that includes this file probes UDP
pub async fn udp_probe(
    target: SocketAddr,
    count: u64,
    size: usize,
    interval: Duration,
    timeout: Duration,
) -> UdpReport {
    let config = UdpProbeConfig {
        target,
        count,
        size,
        interval,
        timeout,
        flows: 1,
    };
    run_udp(
        &config,
        &mut |_| {},
        &ProgressBar::hidden(),
        &CancellationToken::new(),
    )
    .await
    .expect("probe")
}

/// `requests` closed-loop GETs of `paths` in turn over `concurrency`
/// keep-alive connections to `target`: the report and every request's row.
#[allow(dead_code)] // not every suite that includes this file probes HTTP
pub async fn http_probe(
    target: SocketAddr,
    paths: &[&str],
    requests: u64,
    concurrency: u32,
    timeout: Duration,
) -> (HttpReport, Vec<HttpRequestRow>) {
    let config = HttpProbeConfig {
        authority: target.to_string(),
        target,
        paths: paths.iter().map(|p| p.to_string()).collect(),
        requests,
        concurrency,
        keep_alive: true,
        rate: None,
        duration: None,
        timeout,
        traffic: Default::default(),
        wire: Default::default(),
        threads: None,
    };
    let mut rows = Vec::new();
    let report = run_http(
        &config,
        &mut |r| rows.push(r),
        &ProgressBar::hidden(),
        &CancellationToken::new(),
    )
    .await
    .expect("probe");
    (report, rows)
}
