//! Memory the proxy holds under attack (issue 11, item 2): bounded by its
//! flags whatever clients do. Checked on the proxy's own accounting
//! counters; docs/src/proxy.md ("Memory") gives RSS measured by hand under the same attacks.

mod support_proxy;

use std::time::Duration;

use netrun::proxy::{self, ProxyConfig};
use support_proxy::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(10);

/// Item 2: the UDP delay line is bounded in bytes; past the bound datagrams
/// are tail-dropped and counted, whatever their size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_udp_delay_line_is_bounded_in_bytes() {
    use netrun::proxy::{LinkConfig, LinkModel, ProxyHooks};
    use std::sync::Arc;
    let echo = udp_echo().await;
    let up = Upstream::start().await;
    let mut config = ProxyConfig::new(up.addr, echo);
    config.udp.delay_buffer = 1 << 20;
    let hooks = ProxyHooks {
        impair: Arc::new(LinkModel::new(LinkConfig {
            delay: Duration::from_secs(30),
            ..LinkConfig::default()
        })),
        ..ProxyHooks::default()
    };
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stop = CancellationToken::new();
    let p = proxy::spawn_with_hooks(http, udp, config, hooks, stop.clone())
        .await
        .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let payload = vec![7u8; 65_507];
    let sent = 64;
    for _ in 0..sent {
        client.send_to(&payload, p.udp_addr()).await.unwrap();
        // Paced a little so the proxy's receive buffer is not what drops them.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eventually("every datagram accounted for", LIMIT, || {
        let s = p.stats();
        s.udp_delayed_impairment + s.udp_dropped_delay_full + s.udp_dropped_buffer_full >= sent
    })
    .await;
    let s = p.stats();
    assert!(s.udp_dropped_delay_full > 0, "{s:?}");
    assert!(s.udp_delay_bytes <= 1 << 20, "{s:?}");
    assert!(s.udp_delayed_impairment <= 16, "{s:?}");
    stop.cancel();
}

/// Item 2: clients that ask for large objects and never read them cannot
/// make the proxy hold more response bytes than its flags allow: past the
/// in-flight limit, misses are streamed, not buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_memory_stays_within_the_flags_when_clients_never_read() {
    const MIB: u64 = 1 << 20;
    let up = Upstream::start().await;
    let echo = udp_echo().await;
    let proxy = start_proxy(up.addr, echo, |c| {
        c.cache = Some(netrun::proxy::CacheConfig {
            capacity: 48 * MIB,
            max_inflight: 8 * MIB,
            ..netrun::proxy::CacheConfig::default()
        });
    })
    .await;
    let limit = 56 * MIB;
    // 16 objects of 6 MB, each more than the kernel's socket buffers (4 MiB
    // at most) take off the proxy's hands: 96 MB wanted, 56 MiB allowed.
    let clients = 16;
    let mut held = Vec::new();
    for i in 0..clients {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        // A small window: the kernel absorbs little of what is sent.
        sock.set_recv_buffer_size(4096).unwrap();
        let std: std::net::TcpStream = {
            sock.connect(&proxy.http().into()).unwrap();
            sock.into()
        };
        std.set_nonblocking(true).unwrap();
        let mut s = TcpStream::from_std(std).unwrap();
        let req = format!("GET /size/6000000/k{i} HTTP/1.1\r\nHost: x\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        held.push(s);
        let now = proxy.handle.stats();
        assert!(now.response_bytes_held <= limit, "{now:?}");
    }
    eventually("every request answered", LIMIT, || {
        proxy.handle.stats().misses == clients
    })
    .await;
    let s = proxy.handle.stats();
    assert!(s.response_bytes_held <= limit, "{s:?}");
    assert!(s.streamed_over_limit > 0, "{s:?}");
    // Clients that go away release what their responses pinned.
    drop(held);
    eventually("pinned bodies released", LIMIT, || {
        let s = proxy.handle.stats();
        s.response_bytes_held <= s.cache_bytes
    })
    .await;
    // The data are still right for a client that reads.
    let r = get(proxy.http(), "/size/6000000/k0").await;
    assert_eq!(r.body.len(), 6_000_000);
}
