//! The cache's RFC behaviour end to end, on real sockets: freshness and
//! heuristics (RFC 9111), targeted fields (RFC 9213), stale serving (RFC
//! 5861 and §4.2.4), ranges, HEAD freshening and 1xx forwarding. The
//! upstream is a scripted raw TCP server, so exact bytes (a 103 before the
//! final response, a HEAD answer) can be sent and every request it got seen.

#[allow(unused_imports)] // the shared HTTP client helpers are not needed here
mod support_proxy;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use netrun::proxy::ProxyStats;
use support_proxy::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(10);

/// A raw upstream that answers each connection with the next scripted
/// response and closes it; once the script is used up it stops listening,
/// so later connections are refused (an unreachable origin).
struct Scripted {
    addr: SocketAddr,
    /// The request heads it received, in order.
    seen: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn start(script: Vec<String>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            for response in script {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let head = read_head(&mut s).await;
                log.lock().unwrap().push(head);
                let _ = s.write_all(response.as_bytes()).await;
                let _ = s.shutdown().await;
            }
            // The listener is dropped here: the origin is gone.
        });
        Scripted { addr, seen }
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn request(&self, i: usize) -> String {
        self.seen.lock().unwrap()[i].clone()
    }
}

async fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match tokio::time::timeout(LIMIT, s.read(&mut byte)).await {
            Ok(Ok(1)) => buf.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A complete upstream response: status line, `headers` (CRLF-separated
/// lines, may be empty), then `body` with its length.
fn response(status: &str, headers: &str, body: &str) -> String {
    let mut h = String::new();
    for line in headers.lines().filter(|l| !l.trim().is_empty()) {
        h.push_str(line.trim());
        h.push_str("\r\n");
    }
    format!(
        "HTTP/1.1 {status}\r\n{h}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn now_date() -> String {
    httpdate::fmt_http_date(SystemTime::now())
}

/// Sends one request (`extra` header lines included) and reads the whole
/// answer, as a raw string: interim responses show up as they were sent.
async fn send(proxy: SocketAddr, method: &str, path: &str, extra: &str) -> String {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut out))
        .await
        .expect("the proxy did not finish its answer")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The final response's body (after the last blank line).
fn body(raw: &str) -> &str {
    raw.rsplit_once("\r\n\r\n").map_or("", |(_, b)| b)
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    let head = raw.rsplit_once("\r\n\r\n").map_or(raw, |(h, _)| h);
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

async fn proxy_for(up: &Scripted) -> TestProxy {
    start_proxy(up.addr, udp_echo().await, |_| {}).await
}

fn stats(p: &TestProxy) -> ProxyStats {
    p.handle.stats()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_said_means_no_reuse_and_last_modified_gives_a_heuristic() {
    let ten_days_ago = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(864_000));
    let up = Scripted::start(vec![
        response("200 OK", "", "first"),
        response("200 OK", "", "second"),
        response(
            "200 OK",
            &format!("last-modified: {ten_days_ago}\ndate: {}", now_date()),
            "old file",
        ),
    ])
    .await;
    let proxy = proxy_for(&up).await;
    assert_eq!(body(&send(proxy.http(), "GET", "/none", "").await), "first");
    let again = send(proxy.http(), "GET", "/none", "").await;
    assert_eq!(
        body(&again),
        "second",
        "no freshness, no validator: fetched again"
    );
    assert_eq!(up.requests(), 2);

    assert_eq!(
        body(&send(proxy.http(), "GET", "/lm", "").await),
        "old file"
    );
    // A tenth of ten days is a day: an hour later it is still fresh.
    proxy.clock.advance(Duration::from_secs(3600));
    let hit = send(proxy.http(), "GET", "/lm", "").await;
    assert_eq!(header(&hit, "x-cache"), Some("HIT"), "{hit}");
    assert_eq!(body(&hit), "old file");
    assert_eq!(up.requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targeted_fields_override_cache_control() {
    let up = Scripted::start(vec![
        response(
            "200 OK",
            "cache-control: no-store\ncdn-cache-control: max-age=60",
            "for cdns",
        ),
        response(
            "200 OK",
            "cache-control: max-age=60\ncdn-cache-control: max-age=60\nnetrun-cache-control: no-store",
            "not for netrun",
        ),
        response("200 OK", "cache-control: max-age=60", "fetched again"),
    ])
    .await;
    let proxy = proxy_for(&up).await;
    send(proxy.http(), "GET", "/cdn", "").await;
    let hit = send(proxy.http(), "GET", "/cdn", "").await;
    assert_eq!(header(&hit, "x-cache"), Some("HIT"), "{hit}");
    assert_eq!(
        header(&hit, "cdn-cache-control"),
        Some("max-age=60"),
        "forwarded unchanged"
    );
    send(proxy.http(), "GET", "/ours", "").await;
    let again = send(proxy.http(), "GET", "/ours", "").await;
    assert_eq!(
        body(&again),
        "fetched again",
        "Netrun-Cache-Control: no-store wins"
    );
    assert_eq!(up.requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_if_error_covers_a_503_and_an_unreachable_origin() {
    let up = Scripted::start(vec![
        response(
            "200 OK",
            "cache-control: max-age=1, stale-if-error=60",
            "kept",
        ),
        response("503 Service Unavailable", "", "down"),
    ])
    .await;
    let proxy = proxy_for(&up).await;
    assert_eq!(body(&send(proxy.http(), "GET", "/s", "").await), "kept");
    proxy.clock.advance(Duration::from_secs(5));
    let r = send(proxy.http(), "GET", "/s", "").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(body(&r), "kept");
    let status = header(&r, "cache-status").unwrap_or_default();
    assert!(status.contains("detail=stale-if-error"), "{status}");
    assert!(status.contains("ttl=-4"), "stale for 4 s: {status}");
    // The script is used up: the origin no longer listens.
    let r = send(proxy.http(), "GET", "/s", "").await;
    assert_eq!(body(&r), "kept", "{r}");
    // Past the stale-if-error window, the client sees the failure.
    proxy.clock.advance(Duration::from_secs(120));
    let r = send(proxy.http(), "GET", "/s", "").await;
    assert!(r.starts_with("HTTP/1.1 502"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_origin_gets_stale_answers_unless_the_response_forbids_them() {
    let up = Scripted::start(vec![
        response("200 OK", "cache-control: max-age=1", "plain"),
        response(
            "200 OK",
            "cache-control: max-age=1, must-revalidate",
            "strict",
        ),
    ])
    .await;
    let proxy = proxy_for(&up).await;
    send(proxy.http(), "GET", "/plain", "").await;
    send(proxy.http(), "GET", "/strict", "").await;
    proxy.clock.advance(Duration::from_secs(30));
    let r = send(proxy.http(), "GET", "/plain", "").await;
    assert_eq!(
        body(&r),
        "plain",
        "disconnected: stale is allowed (RFC 9111 §4.2.4)"
    );
    let r = send(proxy.http(), "GET", "/strict", "").await;
    assert!(r.starts_with("HTTP/1.1 502"), "must-revalidate: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_without_stale_if_error_reaches_the_client() {
    let up = Scripted::start(vec![
        response("200 OK", "cache-control: max-age=1", "old"),
        response("503 Service Unavailable", "", "down"),
    ])
    .await;
    let proxy = proxy_for(&up).await;
    send(proxy.http(), "GET", "/x", "").await;
    proxy.clock.advance(Duration::from_secs(5));
    let r = send(proxy.http(), "GET", "/x", "").await;
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_answers_at_once_and_refreshes_in_the_background() {
    let up = Scripted::start(vec![
        response(
            "200 OK",
            "cache-control: max-age=1, stale-while-revalidate=60\netag: \"v1\"",
            "one",
        ),
        response("200 OK", "cache-control: max-age=60\netag: \"v2\"", "two"),
    ])
    .await;
    let proxy = proxy_for(&up).await;
    send(proxy.http(), "GET", "/swr", "").await;
    proxy.clock.advance(Duration::from_secs(3));
    let r = send(proxy.http(), "GET", "/swr", "").await;
    assert_eq!(body(&r), "one", "the stale answer, at once");
    let status = header(&r, "cache-status").unwrap_or_default();
    assert!(status.contains("detail=stale-while-revalidate"), "{status}");
    eventually("the background revalidation", LIMIT, || up.requests() == 2).await;
    assert!(
        up.request(1)
            .to_ascii_lowercase()
            .contains("if-none-match: \"v1\""),
        "revalidated with the stored ETag: {}",
        up.request(1)
    );
    eventually("the refreshed entry", LIMIT, || stats(&proxy).stored == 2).await;
    let r = send(proxy.http(), "GET", "/swr", "").await;
    assert_eq!(body(&r), "two");
    assert_eq!(header(&r, "x-cache"), Some("HIT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_are_cut_from_the_stored_response() {
    let up = Scripted::start(vec![response(
        "200 OK",
        "cache-control: max-age=60\netag: \"r1\"",
        "0123456789",
    )])
    .await;
    let proxy = proxy_for(&up).await;
    assert_eq!(
        body(&send(proxy.http(), "GET", "/r", "").await),
        "0123456789"
    );
    let cases = [
        ("bytes=2-4", "206", "234", Some("bytes 2-4/10")),
        ("bytes=7-", "206", "789", Some("bytes 7-9/10")),
        ("bytes=-3", "206", "789", Some("bytes 7-9/10")),
        ("bytes=8-100", "206", "89", Some("bytes 8-9/10")),
        ("bytes=10-", "416", "", Some("bytes */10")),
        ("bytes=0-1,4-5", "200", "0123456789", None),
        ("items=0-1", "200", "0123456789", None),
    ];
    for (range, status, want, content_range) in cases {
        let r = send(proxy.http(), "GET", "/r", &format!("Range: {range}\r\n")).await;
        assert!(r.starts_with(&format!("HTTP/1.1 {status}")), "{range}: {r}");
        assert_eq!(body(&r), want, "{range}");
        assert_eq!(header(&r, "content-range"), content_range, "{range}");
        assert_eq!(
            header(&r, "content-length"),
            Some(want.len().to_string().as_str())
        );
    }
    // If-Range that names another version: the whole response.
    let r = send(
        proxy.http(),
        "GET",
        "/r",
        "Range: bytes=0-0\r\nIf-Range: \"old\"\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let r = send(
        proxy.http(),
        "GET",
        "/r",
        "Range: bytes=0-0\r\nIf-Range: \"r1\"\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 206"), "{r}");
    assert_eq!(up.requests(), 1, "every range came from the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_freshens_the_stored_response() {
    let up = Scripted::start(vec![
        response(
            "200 OK",
            "cache-control: max-age=1\netag: \"h1\"\nx-version: 1",
            "hello",
        ),
        // The HEAD's answer: same validator and length, new headers, no body.
        "HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\netag: \"h1\"\r\nx-version: 2\r\n\
         content-length: 5\r\nconnection: close\r\n\r\n"
            .to_string(),
    ])
    .await;
    let proxy = proxy_for(&up).await;
    send(proxy.http(), "GET", "/h", "").await;
    proxy.clock.advance(Duration::from_secs(10));
    let head = send(proxy.http(), "HEAD", "/h", "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(up.request(1).starts_with("HEAD /h "), "{}", up.request(1));
    let r = send(proxy.http(), "GET", "/h", "").await;
    assert_eq!(header(&r, "x-cache"), Some("HIT"), "{r}");
    assert_eq!(header(&r, "x-version"), Some("2"));
    assert_eq!(body(&r), "hello");
    assert_eq!(up.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_responses_reach_the_client_and_are_not_stored() {
    let final_response = response("200 OK", "cache-control: max-age=60", "ok");
    let up = Scripted::start(vec![format!(
        "HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n{final_response}"
    )])
    .await;
    let proxy = proxy_for(&up).await;
    let r = send(proxy.http(), "GET", "/early", "").await;
    assert!(
        r.starts_with(
            "HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n"
        ),
        "{r}"
    );
    assert_eq!(body(&r), "ok");
    let r = send(proxy.http(), "GET", "/early", "").await;
    assert!(r.starts_with("HTTP/1.1 200 OK"), "a hit has no 103: {r}");
    assert_eq!(header(&r, "link"), None, "the 103's fields were not stored");
    assert_eq!(up.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_sends_its_max_age() {
    use netrun::origin::{self, OriginConfig};
    use netrun::server::HttpLimits;
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("a.txt"), "a").unwrap();
    for (max_age, want) in [
        (Some(Duration::from_secs(90)), Some("max-age=90")),
        (None, None),
    ] {
        let token = tokio_util::sync::CancellationToken::new();
        let o = origin::spawn(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            OriginConfig {
                www: www.path().to_path_buf(),
                limits: HttpLimits::default(),
                max_age,
            },
            token.clone(),
        )
        .await
        .unwrap();
        let r = send(o.http_addr(), "GET", "/a.txt", "").await;
        assert_eq!(header(&r, "cache-control"), want, "{r}");
        token.cancel();
    }
}

/// If-None-Match is a list of entity-tags, and an entity-tag may hold a
/// comma: split on bare commas, `"a,b"` never matched itself and a
/// malformed `"a,"x"` matched a stored `"x"` (issue 20, item 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_none_match_respects_commas_inside_entity_tags() {
    let up = Scripted::start(vec![
        response(
            "200 OK",
            "cache-control: max-age=60\netag: \"a,b\"",
            "comma",
        ),
        response("200 OK", "cache-control: max-age=60\netag: \"x\"", "plain"),
    ])
    .await;
    let proxy = proxy_for(&up).await;
    send(proxy.http(), "GET", "/comma", "").await;
    send(proxy.http(), "GET", "/plain", "").await;
    let cases = [
        ("/comma", "\"a,b\"", "304"),
        ("/comma", "\"z\", W/\"a,b\"", "304"),
        ("/comma", "\"a\"", "200"),
        ("/comma", "\"b\"", "200"),
        ("/plain", "\"a,\"x\"", "200"),
        ("/plain", "\"a,\", \"x\"", "304"),
    ];
    for (path, inm, status) in cases {
        let r = send(
            proxy.http(),
            "GET",
            path,
            &format!("If-None-Match: {inm}\r\n"),
        )
        .await;
        assert!(
            r.starts_with(&format!("HTTP/1.1 {status}")),
            "{path} If-None-Match: {inm}: {r}"
        );
    }
    assert_eq!(up.requests(), 2, "every answer came from the store");
}

/// An If-Modified-Since later than now is invalid (RFC 9110 §13.1.3): the
/// proxy ignores it as the origin does, instead of answering 304.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_if_modified_since_is_ignored() {
    let last_week = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(7 * 86_400));
    let up = Scripted::start(vec![response(
        "200 OK",
        &format!("cache-control: max-age=60\nlast-modified: {last_week}"),
        "dated",
    )])
    .await;
    let proxy = proxy_for(&up).await;
    send(proxy.http(), "GET", "/d", "").await;
    let tomorrow = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(86_400));
    let r = send(
        proxy.http(),
        "GET",
        "/d",
        &format!("If-Modified-Since: {tomorrow}\r\n"),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(body(&r), "dated");
    let r = send(
        proxy.http(),
        "GET",
        "/d",
        &format!("If-Modified-Since: {last_week}\r\n"),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 304"), "{r}");
    assert_eq!(up.requests(), 1);
}

/// TRACE with `Max-Forwards: 0` is answered by the proxy (RFC 9110 §7.6.2),
/// without credentials; with more hops left it goes on with one fewer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_with_no_hops_left_is_answered_by_the_proxy() {
    let up = Scripted::start(vec![response("200 OK", "", "from upstream")]).await;
    let proxy = proxy_for(&up).await;
    let r = send(
        proxy.http(),
        "TRACE",
        "/t",
        "Max-Forwards: 0\r\nAuthorization: secret\r\nX-Mine: 1\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    // The echo is itself a message head: its body starts after the first blank line.
    let echo = r.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    assert_eq!(header(&r, "content-type"), Some("message/http"), "{r}");
    assert!(echo.starts_with("TRACE /t HTTP/1.1\r\n"), "{r}");
    assert!(echo.contains("x-mine: 1\r\n"), "{r}");
    assert!(!echo.contains("secret"), "{r}");
    assert_eq!(up.requests(), 0, "nothing went upstream");

    let r = send(proxy.http(), "TRACE", "/t", "Max-Forwards: 3\r\n").await;
    assert_eq!(body(&r), "from upstream");
    assert!(
        up.request(0)
            .to_ascii_lowercase()
            .contains("max-forwards: 2\r\n"),
        "{}",
        up.request(0)
    );
}

/// A Range on a stale entry: revalidated first (the upstream says 304),
/// then cut from the refreshed entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_on_a_stale_entry_is_cut_after_revalidation() {
    let up = Scripted::start(vec![
        response(
            "200 OK",
            "cache-control: max-age=1\netag: \"s1\"",
            "0123456789",
        ),
        "HTTP/1.1 304 Not Modified\r\ncache-control: max-age=60\r\netag: \"s1\"\r\n\
         connection: close\r\n\r\n"
            .to_string(),
    ])
    .await;
    let proxy = proxy_for(&up).await;
    send(proxy.http(), "GET", "/s", "").await;
    proxy.clock.advance(Duration::from_secs(10));
    let r = send(proxy.http(), "GET", "/s", "Range: bytes=3-5\r\n").await;
    assert!(r.starts_with("HTTP/1.1 206"), "{r}");
    assert_eq!(body(&r), "345");
    assert_eq!(header(&r, "content-range"), Some("bytes 3-5/10"));
    let revalidation = up.request(1).to_ascii_lowercase();
    assert!(
        revalidation.contains("if-none-match: \"s1\""),
        "{revalidation}"
    );
    assert!(!revalidation.contains("range:"), "{revalidation}");
    assert_eq!(up.requests(), 2);
}
