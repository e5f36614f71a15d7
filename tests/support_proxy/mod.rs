//! A small upstream for the proxy tests: a hyper server on port 0 that counts
//! the requests it gets per path and answers with whatever a path asks for
//! (cache headers, errors, validators, large bodies, a gated slow answer),
//! plus a UDP echo and a tiny HTTP client.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
#[path = "../common/http.rs"]
mod http_client;
pub use http_client::*;

use netrun::proxy::{self, ManualClock, ProxyConfig, ProxyHandle};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

type TestBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// Size of the `/large` bodies.
pub const LARGE: usize = 2 * 1024 * 1024;

/// The byte at offset `i` of a large body: a pattern that catches reordering.
pub fn large_byte(i: usize) -> u8 {
    (i % 251) as u8
}

pub fn large_body() -> Vec<u8> {
    (0..LARGE).map(large_byte).collect()
}

/// The test upstream.
pub struct Upstream {
    pub addr: SocketAddr,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    /// `/slow` waits for a permit here before answering.
    gate: Arc<Semaphore>,
}

impl Upstream {
    /// Starts the upstream; it runs until the test's runtime ends.
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let gate = Arc::new(Semaphore::new(0));
        let (h, g) = (hits.clone(), gate.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (h, g) = (h.clone(), g.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (h, g) = (h.clone(), g.clone());
                        async move { Ok::<_, Infallible>(answer(req, &h, &g).await) }
                    });
                    // No Date header: ages then depend only on the proxy's
                    // (hand-driven) clock, not on where a real second ends.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .auto_date_header(false)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream { addr, hits, gate }
    }

    /// Requests received for `path` (query excluded).
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Lets every waiting (and future) `/slow` request answer.
    pub fn release_slow(&self) {
        self.gate.add_permits(10_000);
    }
}

fn whole(
    status: StatusCode,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response<TestBody> {
    let mut b = Response::builder().status(status);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(Full::new(body.into()).boxed()).unwrap()
}

async fn answer(
    req: Request<Incoming>,
    hits: &Mutex<HashMap<String, usize>>,
    gate: &Arc<Semaphore>,
) -> Response<TestBody> {
    let path = req.uri().path().to_string();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let inm = req
        .headers()
        .get("if-none-match")
        .map(|v| v.to_str().unwrap().to_string());
    let echo_via = req
        .headers()
        .get("via")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let saw_hop = req.headers().contains_key("x-hop") || req.headers().contains_key("keep-alive");
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let user = header("x-user");
    let fail = req.headers().contains_key("x-fail");
    let method = req.method().clone();
    match path.as_str() {
        "/huge-age" => whole(
            StatusCode::OK,
            &[
                ("cache-control", "max-age=60"),
                ("age", "18446744073709551615"),
            ],
            "very old",
        ),
        "/body-len" => {
            // Reads the request body first, as a real origin does: a request
            // that announces a body it never sends makes this wait.
            let seen = format!(
                "cl={};te={};ct={};expect={}",
                header("content-length"),
                header("transfer-encoding"),
                header("content-type"),
                header("expect")
            );
            let body = req.into_body().collect().await;
            let len = body.map_or(usize::MAX, |b| b.to_bytes().len());
            whole(
                StatusCode::OK,
                &[("cache-control", "max-age=60")],
                format!("len={len};{seen}"),
            )
        }
        "/vary-star" => {
            gate.acquire().await.unwrap().forget();
            whole(
                StatusCode::OK,
                &[("cache-control", "max-age=60"), ("vary", "*")],
                format!("for={user}"),
            )
        }
        "/mutable" if method == http::Method::GET => whole(
            StatusCode::OK,
            &[("cache-control", "max-age=60")],
            "current",
        ),
        "/mutable" if fail => whole(StatusCode::INTERNAL_SERVER_ERROR, &[], "not changed"),
        "/mutable" => whole(StatusCode::NO_CONTENT, &[], Bytes::new()),
        "/large-nostore-gated" => {
            // no-store, 2 MiB: the first half, then the rest once released.
            let body = large_body();
            let half = LARGE / 2;
            let first = Bytes::copy_from_slice(&body[..half]);
            let rest = Bytes::copy_from_slice(&body[half..]);
            let gate = gate.clone();
            let frames = futures_util::StreamExt::chain(
                futures_util::stream::iter([Ok(Frame::data(first))]),
                futures_util::stream::once(async move {
                    gate.acquire().await.unwrap().forget();
                    Ok(Frame::data(rest))
                }),
            );
            Response::builder()
                .header("cache-control", "no-store")
                .header("content-length", LARGE.to_string())
                .body(StreamBody::new(frames).boxed())
                .unwrap()
        }
        "/stall" => {
            // Announces 2000 bytes, sends 1000, then nothing ever again.
            let frames = futures_util::StreamExt::chain(
                futures_util::stream::iter([Ok(Frame::data(Bytes::from(vec![b's'; 1000])))]),
                futures_util::stream::once(std::future::pending()),
            );
            Response::builder()
                .header("cache-control", "no-store")
                .header("content-length", "2000")
                .body(StreamBody::new(frames).boxed())
                .unwrap()
        }
        "/cookie" => whole(
            StatusCode::OK,
            &[
                ("cache-control", "max-age=60"),
                ("set-cookie", &format!("session={user}")),
            ],
            format!("hello {user}"),
        ),
        "/vary-lang" => {
            // Every Accept-Language line the upstream saw, in order.
            let langs: Vec<&str> = req
                .headers()
                .get_all("accept-language")
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            whole(
                StatusCode::OK,
                &[("cache-control", "max-age=60"), ("vary", "accept-language")],
                format!("lang={}", langs.join("|")),
            )
        }
        "/conn-private" => whole(
            StatusCode::OK,
            &[
                ("connection", "cache-control"),
                ("cache-control", "private, max-age=60"),
            ],
            format!("for={user}"),
        ),
        "/nostore" => whole(StatusCode::OK, &[("cache-control", "no-store")], "secret"),
        "/private" => whole(
            StatusCode::OK,
            &[("cache-control", "private, max-age=60")],
            "mine",
        ),
        "/error" => whole(StatusCode::INTERNAL_SERVER_ERROR, &[], "boom"),
        "/short" => {
            if inm.as_deref() == Some("\"short-v1\"") {
                whole(
                    StatusCode::NOT_MODIFIED,
                    &[("cache-control", "max-age=10"), ("etag", "\"short-v1\"")],
                    Bytes::new(),
                )
            } else {
                whole(
                    StatusCode::OK,
                    &[("cache-control", "max-age=10"), ("etag", "\"short-v1\"")],
                    "short-lived",
                )
            }
        }
        "/changing" => whole(
            StatusCode::OK,
            &[("cache-control", "max-age=10"), ("etag", "\"changing-v2\"")],
            "new content",
        ),
        "/slow" => {
            gate.acquire().await.unwrap().forget();
            whole(
                StatusCode::OK,
                &[("cache-control", "max-age=60")],
                "worth the wait",
            )
        }
        "/hang" => std::future::pending().await,
        "/large" => whole(
            StatusCode::OK,
            &[("cache-control", "max-age=60")],
            large_body(),
        ),
        "/large-chunked" => {
            // No Content-Length: 32 chunks of 64 KiB.
            let chunks: Vec<Result<Frame<Bytes>, Infallible>> = large_body()
                .chunks(64 * 1024)
                .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
                .collect();
            let body = StreamBody::new(futures_util::stream::iter(chunks));
            Response::builder()
                .header("cache-control", "max-age=60")
                .body(body.boxed())
                .unwrap()
        }
        "/headers" => whole(
            StatusCode::OK,
            &[
                ("cache-control", "no-store"),
                ("connection", "x-secret-hop"),
                ("x-secret-hop", "1"),
                ("keep-alive", "timeout=5"),
                ("x-end-to-end", "kept"),
            ],
            format!("via={echo_via};hop={saw_hop}"),
        ),
        p if p.starts_with("/size/") => {
            // /size/N/name: N bytes, cacheable.
            let n: usize = p.split('/').nth(2).unwrap().parse().unwrap();
            whole(
                StatusCode::OK,
                &[("cache-control", "max-age=60")],
                vec![b'z'; n],
            )
        }
        // Like `netrun serve`'s default: a minute of explicit freshness.
        _ => whole(
            StatusCode::OK,
            &[
                ("content-type", "text/html"),
                ("cache-control", "max-age=60"),
            ],
            format!("<html>{path}</html>"),
        ),
    }
}

/// A UDP echo service; returns its address.
pub async fn udp_echo() -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            if let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let _ = sock.send_to(&buf[..n], from).await;
            }
        }
    });
    addr
}

/// A running proxy with a hand-driven clock.
pub struct TestProxy {
    pub handle: ProxyHandle,
    pub clock: Arc<ManualClock>,
    pub shutdown: CancellationToken,
}

impl TestProxy {
    pub fn http(&self) -> SocketAddr {
        self.handle.http_addr()
    }
}

/// Starts a proxy in front of `upstream_http` / `upstream_udp`, after
/// `tweak` adjusts the default config.
pub async fn start_proxy(
    upstream_http: SocketAddr,
    upstream_udp: SocketAddr,
    tweak: impl FnOnce(&mut ProxyConfig),
) -> TestProxy {
    let mut config = ProxyConfig::new(upstream_http, upstream_udp);
    config.upstream_timeout = Duration::from_secs(5);
    tweak(&mut config);
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let clock = Arc::new(ManualClock::new());
    let shutdown = CancellationToken::new();
    let handle = proxy::spawn_with_clock(http, udp, config, clock.clone(), shutdown.clone())
        .await
        .unwrap();
    TestProxy {
        handle,
        clock,
        shutdown,
    }
}

/// Polls `cond` until it holds, failing the test after `limit`.
pub async fn eventually(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The test upstream, a UDP echo and a proxy with default settings in front.
pub async fn setup() -> (Upstream, TestProxy) {
    let upstream = Upstream::start().await;
    let echo = udp_echo().await;
    let proxy = start_proxy(upstream.addr, echo, |_| {}).await;
    (upstream, proxy)
}

/// Sends raw bytes on a new connection and reads until the server closes.
pub async fn raw(addr: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("server did not close the connection")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}
