//! Fresh hits on the server's fast path (`Handler::quick`) against hyper's
//! path, over real sockets: two proxies in front of one upstream, the fast
//! path on and off, one shared [`ManualClock`] so `Age` and `ttl` agree.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::cache_policy::Policy;
use crate::clock::ManualClock;
use crate::proxy::{CacheConfig, ProxyConfig, ProxyHandle, ProxyHooks};
use crate::server::Listener;

/// Bounds every wait of these tests.
const STEP: Duration = Duration::from_secs(10);

/// The canned answers of the test upstream, by path (the query ignored):
/// fields in the orders and shapes that decide where the proxy's own
/// fields go.
fn canned(path: &str) -> Vec<u8> {
    let big = "b".repeat(100 * 1024);
    let (head, body): (&str, &str) = match path {
        "/plain" => (
            "HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\ncontent-type: text/plain\r\netag: \"p1\"\r\nlast-modified: Tue, 01 Dec 2026 00:00:00 GMT\r\ncontent-length: 11\r\n",
            "plain body\n",
        ),
        "/dated" => (
            "HTTP/1.1 200 OK\r\ndate: Wed, 02 Dec 2099 00:00:00 GMT\r\ncache-control: max-age=60\r\ncontent-length: 5\r\n",
            "dated",
        ),
        "/chained" => (
            "HTTP/1.1 200 OK\r\nx-cache: MISS\r\ncache-status: other; fwd=uri-miss\r\nvia: 1.1 other\r\ncache-control: max-age=60\r\ncontent-length: 5\r\n",
            "chain",
        ),
        "/chunked" => (
            "HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\ntransfer-encoding: chunked\r\n",
            "",
        ),
        "/multi" => (
            "HTTP/1.1 200 OK\r\nlink: <a>; rel=preload\r\ncache-control: max-age=60\r\nlink: <b>; rel=preload\r\nx-a: 1\r\ncontent-length: 5\r\n",
            "multi",
        ),
        "/age" => (
            "HTTP/1.1 200 OK\r\nage: 3\r\ncache-control: max-age=60\r\ncontent-length: 3\r\n",
            "age",
        ),
        "/vary" => (
            "HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\nvary: accept-encoding\r\ncontent-length: 4\r\n",
            "vary",
        ),
        "/empty" => (
            "HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\ncontent-length: 0\r\n",
            "",
        ),
        "/missing" => (
            "HTTP/1.1 404 Not Found\r\ncache-control: max-age=60\r\ncontent-length: 4\r\n",
            "nope",
        ),
        "/nocache" => (
            "HTTP/1.1 200 OK\r\ncache-control: no-cache\r\netag: \"n\"\r\ncontent-length: 2\r\n",
            "nc",
        ),
        "/short" => (
            "HTTP/1.1 200 OK\r\ncache-control: max-age=2\r\ncontent-length: 5\r\n",
            "short",
        ),
        "/big" => ("HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\n", big.as_str()),
        p if p.starts_with("/k/") => (
            "HTTP/1.1 200 OK\r\ncache-control: max-age=600\r\ncontent-length: 3\r\n",
            "key",
        ),
        _ => ("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n", ""),
    };
    let mut out = head.as_bytes().to_vec();
    if path == "/chunked" {
        out.extend_from_slice(b"\r\n5\r\nhello\r\n0\r\n\r\n");
    } else if path == "/big" {
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body.as_bytes());
    } else {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// An upstream that answers every request with its path's canned bytes
/// (no body for HEAD), keeping connections open, and counts requests.
async fn upstream() -> (SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    let mut req = httparse::Request::new(&mut headers);
                    let Ok(httparse::Status::Complete(n)) = req.parse(&buf) else {
                        let mut chunk = [0u8; 4096];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => buf.extend_from_slice(&chunk[..k]),
                        }
                        continue;
                    };
                    let body_len: usize = req
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < n + body_len {
                        let mut chunk = [0u8; 4096];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => buf.extend_from_slice(&chunk[..k]),
                        }
                        continue;
                    }
                    let head = req.method == Some("HEAD");
                    let path = req.path.unwrap_or("/");
                    let path = path.split_once('?').map_or(path, |(p, _)| p).to_string();
                    buf.drain(..n + body_len);
                    seen.fetch_add(1, Ordering::Relaxed);
                    let mut answer = canned(&path);
                    if head {
                        let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                        answer.truncate(end);
                    }
                    if s.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, count)
}

struct Proxy {
    addr: SocketAddr,
    handle: ProxyHandle,
    token: CancellationToken,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

async fn start(
    upstream: SocketAddr,
    clock: Arc<ManualClock>,
    cache: CacheConfig,
    quick: bool,
) -> Proxy {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut config = ProxyConfig::new(upstream, upstream);
    config.cache = Some(cache);
    let hooks = ProxyHooks {
        clock,
        ..ProxyHooks::default()
    };
    let token = CancellationToken::new();
    let handle = super::super::spawn_with_quick(
        Listener::from(tcp),
        udp,
        config,
        hooks,
        token.clone(),
        quick,
    )
    .await
    .unwrap();
    Proxy {
        addr,
        handle,
        token,
    }
}

impl Proxy {
    fn quick(&self) -> u64 {
        self.handle.counters.quick.load(Ordering::Relaxed)
    }

    /// Sends `bytes` in one write and reads until the proxy closes, the
    /// proxy's `Via` token replaced by `<via>` (each instance has its own).
    async fn exchange(&self, bytes: &[u8]) -> String {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(STEP, s.read_to_end(&mut out))
            .await
            .expect("the proxy closes")
            .ok();
        String::from_utf8_lossy(&without_dates(&out)).replace(self.handle.via_token(), "<via>")
    }
}

/// The `Date` of `/dated`, kept in answers.
const STORED_DATE: &str = "Wed, 02 Dec 2099 00:00:00 GMT";

/// The bytes with every `date: ` value the server wrote blanked.
fn without_dates(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(i) = rest.windows(8).position(|w| w == b"\r\ndate: ") {
        out.extend_from_slice(&rest[..i + 8]);
        let end = (i + 8 + 29).min(rest.len());
        if rest[i + 8..end] == *STORED_DATE.as_bytes() {
            out.extend_from_slice(STORED_DATE.as_bytes());
        } else {
            out.extend_from_slice(b"<date>");
        }
        rest = &rest[end..];
    }
    out.extend_from_slice(rest);
    out
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

fn with(path: &str, field: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{field}\r\n\r\n")
}

fn closing(req: &str) -> String {
    req.replacen("\r\n", "\r\nConnection: close\r\n", 1)
}

/// The paths stored before the corpus runs.
const STORED: [&str; 12] = [
    "/plain", "/dated", "/chained", "/chunked", "/multi", "/age", "/vary", "/empty", "/missing",
    "/nocache", "/short", "/big",
];

/// Requests of every kind, each with whether the fast path answers it
/// (sent alone, after the entries were stored and the clock moved on).
fn corpus() -> Vec<(String, bool)> {
    let mut all: Vec<(String, bool)> = Vec::new();
    for path in [
        "/plain", "/dated", "/chained", "/chunked", "/multi", "/age", "/big",
    ] {
        all.push((get(path), true));
        all.push((format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"), true));
    }
    all.extend([
        (with("/plain", "If-None-Match: \"p1\""), false),
        (get("/plain?q=1"), false), // another key: a miss
        (get("/plain?q=1"), true),
        (with("/plain", "Accept: */*\r\nUser-Agent: t"), true),
        (with("/plain", "Connection: keep-alive"), true),
        (with("/plain", "If-None-Match: \"zz\""), false),
        (
            with("/plain", "If-Modified-Since: Wed, 02 Dec 2099 00:00:00 GMT"),
            false,
        ),
        (with("/plain", "Range: bytes=0-3"), false),
        (
            with("/plain", "Range: bytes=0-3\r\nIf-Range: \"p1\""),
            false,
        ),
        (with("/plain", "Cache-Control: max-age=0"), false),
        (with("/plain", "Cache-Control: max-stale"), false),
        (with("/plain", "Pragma: no-cache"), false),
        (with("/plain", "Authorization: Basic eDp5"), false),
        (with("/plain", "Via: 1.1 elsewhere"), false),
        (get("/vary"), false),
        (with("/vary", "Accept-Encoding: gzip"), false),
        (get("/empty"), false),
        ("HEAD /empty HTTP/1.1\r\nHost: x\r\n\r\n".into(), true),
        (get("/missing"), false),
        (get("/nocache"), false),
        (get("/short"), false), // stale: refetched
        (get("/short"), true),
        (
            "GET /plain HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n".into(),
            false,
        ),
        (
            "GET /plain HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".into(),
            false,
        ),
        ("OPTIONS /plain HTTP/1.1\r\nHost: x\r\n\r\n".into(), false),
        (get("/plain"), true),
        // Last: a POST that succeeds drops the stored /age.
        (
            "POST /age HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".into(),
            false,
        ),
        (get("/age"), false),
        (get("/age"), true),
        // Two Hosts: hyper's 400, and the connection closes.
        (with("/plain", "host: other:81"), false),
    ]);
    all
}

async fn pair(upstream: SocketAddr) -> (Proxy, Proxy, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let fast = start(upstream, clock.clone(), CacheConfig::default(), true).await;
    let slow = start(upstream, clock.clone(), CacheConfig::default(), false).await;
    (fast, slow, clock)
}

/// Both proxies answer `req`, alone on a connection, alike.
async fn same_answer(fast: &Proxy, slow: &Proxy, req: &str) -> String {
    let req = closing(req);
    let a = fast.exchange(req.as_bytes()).await;
    let b = slow.exchange(req.as_bytes()).await;
    assert!(!a.is_empty(), "no answer to {req:?}");
    assert_eq!(a, b, "{req:?}");
    a
}

#[tokio::test]
async fn fast_and_hyper_paths_answer_alike() {
    let (upstream, _) = upstream().await;
    let (fast, slow, clock) = pair(upstream).await;
    for path in STORED {
        same_answer(&fast, &slow, &get(path)).await;
    }
    assert_eq!(fast.quick(), 0, "misses are hyper's");
    clock.advance(Duration::from_secs(5));
    let corpus = corpus();
    let mut want = 0;
    for (req, quick) in &corpus {
        let before = fast.quick();
        let answer = same_answer(&fast, &slow, req).await;
        assert_eq!(
            fast.quick() - before,
            u64::from(*quick),
            "{req:?}\n{answer}"
        );
        want += u64::from(*quick);
    }
    // Age from the shared clock, the stored Age and Date counted once.
    // Refetched by `max-age=0`: new again.
    let plain = same_answer(&fast, &slow, &get("/plain")).await;
    assert!(
        plain.contains("content-length: 11\r\nage: 0\r\nx-cache: HIT\r\ncache-status: netrun; hit; ttl=60\r\nvia: 1.1 <via>\r\nconnection: close\r\ndate: <date>\r\n\r\n"),
        "{plain}"
    );
    let chunked = same_answer(&fast, &slow, &get("/chunked")).await;
    assert!(
        chunked.contains("cache-control: max-age=60\r\nage: 5\r\ncontent-length: 5\r\nx-cache: HIT\r\ncache-status: netrun; hit; ttl=55\r\n"),
        "{chunked}"
    );
    let dated = same_answer(&fast, &slow, &get("/dated")).await;
    assert_eq!(dated.matches("date: ").count(), 1, "{dated}");
    assert!(
        dated.contains(&format!("date: {STORED_DATE}\r\n")),
        "{dated}"
    );
    assert!(
        dated.contains("via: 1.1 <via>\r\nconnection: close\r\n\r\n"),
        "{dated}"
    );
    let chained = same_answer(&fast, &slow, &get("/chained")).await;
    assert!(
        chained.contains("cache-status: other; fwd=uri-miss\r\ncache-status: netrun; hit; ttl=55\r\nvia: 1.1 other\r\nvia: 1.1 <via>\r\n"),
        "{chained}"
    );
    want += 4;
    // All of it pipelined on one connection, in one write: hyper answers
    // the requests the fast path leaves, one at a time, until the HTTP/1.0
    // one, which hands it the connection for good. By now `/plain?q=1` and
    // `/short` are fresh hits as well: 14 + 4 + `HEAD /empty` + 2.
    let mut pipelined: String = corpus.iter().map(|(r, _)| r.as_str()).collect();
    pipelined.push_str(&closing(&get("/plain")));
    let a = fast.exchange(pipelined.as_bytes()).await;
    let b = slow.exchange(pipelined.as_bytes()).await;
    assert_eq!(a, b);
    want += 21;
    assert_eq!((fast.quick(), slow.quick()), (want, 0));
    // The same requests counted the same way.
    let (mut fs, mut ss) = (fast.handle.stats(), slow.handle.stats());
    // How many connections the upstream pool opened depends on timing.
    fs.upstream_connections = 0;
    ss.upstream_connections = 0;
    assert_eq!(fs, ss);
}

#[tokio::test]
async fn pipelined_hits_come_back_in_order() {
    let (upstream, fetched) = upstream().await;
    let clock = Arc::new(ManualClock::new());
    let proxy = start(upstream, clock, CacheConfig::default(), true).await;
    for path in ["/plain", "/chained"] {
        proxy.exchange(closing(&get(path)).as_bytes()).await;
    }
    let mut reqs = String::new();
    for i in 0..100 {
        reqs.push_str(&get(if i % 2 == 0 { "/plain" } else { "/chained" }));
    }
    reqs.push_str("HEAD /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let got = proxy.exchange(reqs.as_bytes()).await;
    let mut rest = got.as_str();
    for i in 0..101 {
        let end = rest.find("\r\n\r\n").unwrap() + 4;
        let head = &rest[..end];
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("x-cache: HIT\r\n"), "{head}");
        let body = match i {
            100 => {
                assert!(head.contains("content-length: 11\r\n"), "{head}");
                assert!(
                    head.ends_with("connection: close\r\ndate: <date>\r\n\r\n"),
                    "{head}"
                );
                ""
            }
            _ if i % 2 == 0 => "plain body\n",
            _ => "chain",
        };
        assert_eq!(&rest[end..end + body.len()], body, "answer {i}");
        rest = &rest[end + body.len()..];
    }
    assert!(rest.is_empty(), "{rest}");
    assert_eq!(proxy.quick(), 101);
    let stats = proxy.handle.stats();
    assert_eq!((stats.requests, stats.hits, stats.misses), (103, 101, 2));
    assert_eq!(stats.bytes_from_cache, 50 * (11 + 5));
    assert_eq!(fetched.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn one_connection_mixes_hits_misses_and_conditionals() {
    let (upstream, fetched) = upstream().await;
    let (fast, slow, _clock) = pair(upstream).await;
    for p in [&fast, &slow] {
        p.exchange(closing(&get("/plain")).as_bytes()).await;
    }
    let reqs = [
        get("/plain"),
        "HEAD /plain HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
        get("/multi"), // a miss
        with("/plain", "If-None-Match: \"p1\""),
        get("/plain"),
        get("/multi"),
        closing(&get("/plain")),
    ];
    let all = reqs.concat();
    let a = fast.exchange(all.as_bytes()).await;
    let b = slow.exchange(all.as_bytes()).await;
    assert_eq!(a, b);
    // Status lines and labels in order (a body runs into the next head).
    let mut lines: Vec<(usize, &str)> = ["HTTP/1.1 ", "x-cache: "]
        .iter()
        .flat_map(|p| a.match_indices(p))
        .map(|(i, _)| (i, &a[i..i + a[i..].find("\r\n").unwrap()]))
        .collect();
    lines.sort();
    let statuses: Vec<&str> = lines.into_iter().map(|(_, l)| l).collect();
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 200 OK",
            "x-cache: HIT",
            "HTTP/1.1 200 OK",
            "x-cache: HIT",
            "HTTP/1.1 200 OK",
            "x-cache: MISS",
            "HTTP/1.1 304 Not Modified",
            "x-cache: HIT",
            "HTTP/1.1 200 OK",
            "x-cache: HIT",
            "HTTP/1.1 200 OK",
            "x-cache: HIT",
            "HTTP/1.1 200 OK",
            "x-cache: HIT",
        ]
    );
    // hyper answers the miss and the conditional alone; the hits around
    // them are the fast path's.
    assert_eq!(fast.quick(), 5);
    assert_eq!(fast.handle.stats().hits, slow.handle.stats().hits);
    assert_eq!(fetched.load(Ordering::Relaxed), 4);
}

/// Capacity for two entries, evicting by `policy`; `/k/a` and `/k/b`
/// stored, `/k/a` hit through the fast path, then `/k/c` stored: which of
/// the first two is still there.
async fn kept_after_a_fast_hit(policy: Policy) -> HashMap<&'static str, bool> {
    let (upstream, _) = upstream().await;
    let cache = CacheConfig {
        policy,
        capacity_objects: Some(2),
        ..CacheConfig::default()
    };
    let proxy = start(upstream, Arc::new(ManualClock::new()), cache, true).await;
    for path in ["/k/a", "/k/b", "/k/a", "/k/c"] {
        proxy.exchange(closing(&get(path)).as_bytes()).await;
    }
    assert_eq!(proxy.quick(), 1);
    let mut kept = HashMap::new();
    for path in ["/k/a", "/k/b"] {
        // HEAD with `only-if-cached` asks without storing anything again.
        let req = format!(
            "HEAD {path} HTTP/1.1\r\nHost: x\r\nCache-Control: only-if-cached\r\nConnection: close\r\n\r\n"
        );
        let answer = proxy.exchange(req.as_bytes()).await;
        kept.insert(path, answer.contains("x-cache: HIT"));
    }
    assert_eq!(proxy.handle.stats().evictions, 1);
    kept
}

#[tokio::test]
async fn eviction_order_counts_fast_path_hits() {
    let lru = kept_after_a_fast_hit(Policy::Lru).await;
    assert_eq!((lru["/k/a"], lru["/k/b"]), (true, false), "LRU");
    let fifo = kept_after_a_fast_hit(Policy::Fifo).await;
    assert_eq!((fifo["/k/a"], fifo["/k/b"]), (false, true), "FIFO");
}

#[tokio::test]
async fn an_impaired_link_keeps_hits_on_hypers_path() {
    let (upstream, _) = upstream().await;
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let link = crate::proxy::LinkConfig {
        delay: Duration::from_millis(1),
        ..Default::default()
    };
    let hooks = ProxyHooks::links(link, crate::proxy::LinkConfig::default());
    let token = CancellationToken::new();
    let handle = super::super::spawn_with_quick(
        Listener::from(tcp),
        udp,
        ProxyConfig::new(upstream, upstream),
        hooks,
        token.clone(),
        true,
    )
    .await
    .unwrap();
    let proxy = Proxy {
        addr,
        handle,
        token,
    };
    for _ in 0..2 {
        proxy.exchange(closing(&get("/plain")).as_bytes()).await;
    }
    let stats = proxy.handle.stats();
    assert_eq!((stats.hits, stats.http_delayed), (1, 4));
    assert_eq!(proxy.quick(), 0);
}
