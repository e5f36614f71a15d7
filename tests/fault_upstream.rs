//! Faults of the upstream during a proxied exchange (issue 26): an upstream
//! that answers garbage, resets the connection mid-body, or never finishes
//! a chunked body. Each time the client learns the answer failed (a 502, or
//! a body that ends in an error, never a short body that looks complete),
//! nothing is stored, the fault is counted, and the proxy goes on serving.

mod support_proxy;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use support_proxy::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes a `/reset` answer promises (it sends 1000).
const PROMISED: usize = 100_000;

/// An upstream that misbehaves by path. It counts the requests per path
/// and keeps the connections it must hold open.
struct BadUpstream {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<String>>>,
}

impl BadUpstream {
    async fn start() -> BadUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let h = hits.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, h.clone()));
            }
        });
        BadUpstream { addr, hits }
    }

    fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

/// Reads one request head and answers as its path says.
async fn answer(mut s: TcpStream, hits: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let target = text.split(' ').nth(1).unwrap_or("").to_string();
    hits.lock().unwrap().push(target.clone());
    // `?stream`: not storable, so the proxy streams it instead of reading it whole first.
    let (path, streamed) = match target.split_once('?') {
        Some((p, q)) => (p, q == "stream"),
        None => (target.as_str(), false),
    };
    let cacheable = if streamed {
        "Cache-Control: no-store\r\n"
    } else {
        "Cache-Control: max-age=600\r\n"
    };
    match path {
        "/garbage" => {
            let _ = s
                .write_all(b"\x00\xff\xfe SSH-2.0 not http at all\r\n\r\n")
                .await;
        }
        "/bad-status" => {
            let _ = s
                .write_all(b"HTTP/1.1 2000000 OK\r\nContent-Length: 2\r\n\r\nhi")
                .await;
        }
        "/bad-header" => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header\x01: x\r\n\r\nhi")
                .await;
        }
        "/bad-chunk" => {
            let head =
                format!("HTTP/1.1 200 OK\r\n{cacheable}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n");
            let _ = s.write_all(head.as_bytes()).await;
        }
        "/reset" => {
            let head = format!("HTTP/1.1 200 OK\r\n{cacheable}Content-Length: {PROMISED}\r\n\r\n");
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&[b'x'; 1000]).await;
            let _ = s.flush().await;
            // SO_LINGER 0: closing sends a RST, not a FIN.
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            drop(s);
            return;
        }
        "/reset-chunked" => {
            let head = format!(
                "HTTP/1.1 200 OK\r\n{cacheable}Transfer-Encoding: chunked\r\n\r\n3e8\r\n{}\r\n",
                "y".repeat(1000)
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.flush().await;
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            drop(s);
            return;
        }
        "/endless-chunked" => {
            let head = format!(
                "HTTP/1.1 200 OK\r\n{cacheable}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
            );
            let _ = s.write_all(head.as_bytes()).await;
            // Never the last chunk: hold the connection until the proxy gives up.
            let _ = s.read(&mut buf).await;
            return;
        }
        _ => {
            let _ = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: no-store\r\n\r\nok",
                )
                .await;
        }
    }
    let _ = s.shutdown().await;
}

/// How a client saw one answer: the status and whether the body arrived
/// whole (`Ok`) or ended in an error (`Err` with what arrived).
/// The connection never ends before a response head: a streamed answer
/// whose upstream body fails still gets its head out first.
async fn fetch(addr: SocketAddr, path: &str) -> (u16, Result<Bytes, String>) {
    let mut sender = connect(addr).await;
    let req = http::Request::get(path)
        .header("host", "x")
        .body(http_body_util::Empty::new())
        .unwrap();
    tokio::time::timeout(STEP, async {
        sender.ready().await.unwrap();
        let resp = sender.send_request(req).await.expect("a response head");
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| e.to_string());
        (status, body)
    })
    .await
    .expect("the proxy ends the exchange instead of holding the client")
}

async fn proxy_in_front_of(up: &BadUpstream) -> TestProxy {
    start_proxy(up.addr, udp_echo().await, |c| {
        c.upstream_timeout = Duration::from_millis(500);
    })
    .await
}

/// Afterwards the proxy still answers, from an upstream that behaves.
async fn still_serves(proxy: &TestProxy) {
    let (status, body) = fetch(proxy.http(), "/ok").await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap().as_ref(), b"ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_the_upstream_is_a_502_and_counted() {
    let up = BadUpstream::start().await;
    let proxy = proxy_in_front_of(&up).await;
    for (i, path) in ["/garbage", "/bad-status", "/bad-header"]
        .iter()
        .enumerate()
    {
        let (status, body) = fetch(proxy.http(), path).await;
        assert_eq!(status, 502, "{path}: {body:?}");
        let text = String::from_utf8_lossy(body.as_ref().unwrap()).into_owned();
        assert!(text.contains(&up.addr.to_string()), "{path}: {text}");
        let s = proxy.handle.stats();
        assert_eq!(s.upstream_errors, i as u64 + 1, "{path}");
        assert_eq!(s.stored, 0, "{path}");
    }
    // Not remembered: the next request asks again.
    assert_eq!(fetch(proxy.http(), "/garbage").await.0, 502);
    assert_eq!(up.hits("/garbage"), 2);
    still_serves(&proxy).await;
}

/// A body cut by the upstream reaches the client as a 502/504 (when the
/// proxy reads a storable answer whole before sending it) or as an aborted
/// body (when it streams), never as a clean, short body; it is not stored
/// and the next request asks the upstream again.
async fn cut_off(path: &str) {
    let up = BadUpstream::start().await;
    let proxy = proxy_in_front_of(&up).await;
    for target in [path.to_string(), format!("{path}?stream")] {
        for attempt in 1..=2 {
            let errors_before = proxy.handle.stats().upstream_errors;
            // A streamed answer whose body fails in the same read as its
            // head still gets its head out before the connection closes.
            let (status, body) = fetch(proxy.http(), &target).await;
            match (status, body) {
                (502 | 504, Ok(_)) => {}
                (200, Err(_)) => {}
                (status, Ok(b)) => panic!(
                    "{target}: the client got a {status} whose body ended cleanly after {} bytes",
                    b.len()
                ),
                (status, Err(e)) => panic!("{target}: {status} and an aborted body: {e}"),
            }
            after_the_cut(&proxy, &up, &target, errors_before, attempt).await;
        }
    }
    still_serves(&proxy).await;
}

/// After a cut answer: counted as an upstream error, nothing stored, and
/// every attempt reached the upstream.
async fn after_the_cut(
    proxy: &TestProxy,
    up: &BadUpstream,
    target: &str,
    errors_before: u64,
    attempt: usize,
) {
    let handle = &proxy.handle;
    eventually(
        &format!("{target}: the cut counted as an upstream error"),
        STEP,
        || handle.stats().upstream_errors == errors_before + 1,
    )
    .await;
    assert_eq!(
        proxy.handle.stats().stored,
        0,
        "{target}: a cut body stored"
    );
    assert_eq!(up.hits(target), attempt, "{target}: served from cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_mid_body_is_never_a_complete_answer() {
    cut_off("/reset").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_mid_chunked_body_is_never_a_complete_answer() {
    cut_off("/reset-chunked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_that_never_ends_is_cut_off() {
    cut_off("/endless-chunked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunk_is_never_a_complete_answer() {
    cut_off("/bad-chunk").await;
}
