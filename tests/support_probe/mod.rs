//! Test servers for the probe tests: UDP echo services that misbehave on
//! purpose, and a small HTTP server that counts requests and can mark cache
//! hits or fail. Everything binds 127.0.0.1:0 and lives until the test ends.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use netrun::server::{self, Body, ConnStats, Handler, HttpLimits};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How a UDP echo server treats the datagrams it gets.
#[derive(Debug, Clone, Copy)]
pub enum Echo {
    /// Returns each datagram unchanged.
    Plain,
    /// Drops the n-th, 2n-th, … datagram it receives (1-based), echoes the rest.
    DropEvery(u64),
    /// Echoes each datagram after a fixed delay.
    Delay(Duration),
    /// Echoes each datagram twice.
    Duplicate,
    /// Swaps pairs: holds datagram 2k and echoes it right after 2k+1.
    SwapPairs,
    /// Echoes each datagram, then also sends a datagram of garbage.
    Garbage,
}

/// Starts a UDP echo server with `mode`; returns its address.
pub async fn udp_echo(mode: Echo) -> SocketAddr {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        let mut n_seen = 0u64;
        let mut held: Option<(Vec<u8>, SocketAddr)> = None;
        loop {
            let (n, peer) = match held {
                // A held datagram goes out anyway if no partner comes soon.
                Some(_) => match tokio::time::timeout(
                    Duration::from_millis(100),
                    socket.recv_from(&mut buf),
                )
                .await
                {
                    Ok(r) => r.unwrap(),
                    Err(_) => {
                        let (d, p) = held.take().unwrap();
                        socket.send_to(&d, p).await.unwrap();
                        continue;
                    }
                },
                None => socket.recv_from(&mut buf).await.unwrap(),
            };
            n_seen += 1;
            let data = buf[..n].to_vec();
            match mode {
                Echo::Plain => {
                    let _ = socket.send_to(&data, peer).await;
                }
                Echo::DropEvery(k) => {
                    if n_seen % k != 0 {
                        let _ = socket.send_to(&data, peer).await;
                    }
                }
                Echo::Delay(d) => {
                    let socket = socket.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(d).await;
                        let _ = socket.send_to(&data, peer).await;
                    });
                }
                Echo::Duplicate => {
                    let _ = socket.send_to(&data, peer).await;
                    let _ = socket.send_to(&data, peer).await;
                }
                Echo::SwapPairs => match held.take() {
                    None => held = Some((data, peer)),
                    Some((first, first_peer)) => {
                        let _ = socket.send_to(&data, peer).await;
                        let _ = socket.send_to(&first, first_peer).await;
                    }
                },
                Echo::Garbage => {
                    let _ = socket.send_to(&data, peer).await;
                    let _ = socket.send_to(b"garbage, not a probe reply", peer).await;
                }
            }
        }
    });
    addr
}

/// An address where nothing listens (bound, then closed).
pub fn closed_udp_port() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

/// An address where nothing accepts TCP connections.
pub fn closed_tcp_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A running test HTTP server.
pub struct TestHttp {
    pub addr: SocketAddr,
    /// Requests handled.
    pub requests: Arc<AtomicU64>,
    /// Connections accepted and so on.
    pub stats: Arc<ConnStats>,
    shutdown: CancellationToken,
}

impl TestHttp {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> u64 {
        self.stats.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TestHttp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Answers by path: `/hit` 200 with `X-Cache: HIT`, `/miss` 200 with
/// `X-Cache: MISS`, `/error` 500, `/slow` after 2 s, `/stall-once` after
/// 500 ms the first time and at once after that, anything else 200 with
/// the body `hello` (5 bytes).
struct TestHandler {
    requests: Arc<AtomicU64>,
    stalled: Arc<std::sync::atomic::AtomicBool>,
}

impl Handler for TestHandler {
    fn handle(
        &self,
        req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> impl std::future::Future<Output = Response<Body>> + Send {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let path = req.uri().path().to_string();
        let stall = path == "/stall-once" && !self.stalled.swap(true, Ordering::SeqCst);
        async move {
            if stall {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let builder = Response::builder();
            match path.as_str() {
                "/hit" => builder
                    .header("X-Cache", "HIT")
                    .body(server::full("cached")),
                "/miss" => builder
                    .header("X-Cache", "MISS")
                    .body(server::full("fresh")),
                "/error" => builder.status(500).body(server::full("boom")),
                "/slow" => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    builder.body(server::full("late"))
                }
                _ => builder.body(server::full("hello")),
            }
            .unwrap()
        }
    }
}

pub async fn http_server() -> TestHttp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicU64::new(0));
    let stats = Arc::new(ConnStats::default());
    let shutdown = CancellationToken::new();
    tokio::spawn(server::serve(
        listener,
        Arc::new(TestHandler {
            requests: requests.clone(),
            stalled: Arc::default(),
        }),
        HttpLimits::default(),
        shutdown.clone(),
        TaskTracker::new(),
        stats.clone(),
        "test",
    ));
    TestHttp {
        addr,
        requests,
        stats,
        shutdown,
    }
}
