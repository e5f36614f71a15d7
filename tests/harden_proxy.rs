//! The proxy against the attacks of an outside review (issue 11): sessions
//! leaking through the shared cache, Vary poisoning, Host rules, forwarding
//! loops and memory that clients could grow without bound.

mod support_proxy;

use netrun::proxy::{self, ProxyConfig};
use support_proxy::*;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

/// Item 1: a response that sets a cookie is never stored, so one client's
/// session is never replayed to another (nginx's and Varnish's choice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_with_set_cookie_is_not_stored() {
    let (up, proxy) = setup().await;
    let alice = request(proxy.http(), "GET", "/cookie", &[("x-user", "alice")]).await;
    assert_eq!(alice.status, 200);
    assert_eq!(alice.header("set-cookie"), "session=alice");
    assert!(!alice.header("cache-status").contains("stored"));
    let other = get(proxy.http(), "/cookie").await;
    assert_ne!(other.x_cache(), "HIT");
    assert_eq!(other.header("set-cookie"), "session=");
    assert_eq!(other.body, "hello ");
    assert_eq!(up.hits("/cookie"), 2);
    assert_eq!(proxy.handle.stats().stored, 0);
}

/// Item 3: a header the client names in `Connection` never reaches the
/// origin, so it must not select the stored variant either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vary_is_keyed_on_the_headers_the_origin_saw() {
    let (_up, proxy) = setup().await;
    // The attacker's German header is hop-by-hop: the origin sees no language.
    let poison = request(
        proxy.http(),
        "GET",
        "/vary-lang",
        &[("accept-language", "de"), ("connection", "accept-language")],
    )
    .await;
    assert_eq!(poison.body, "lang=");
    // A client without the header gets the variant stored for "none"...
    let plain = get(proxy.http(), "/vary-lang").await;
    assert_eq!(plain.body, "lang=");
    assert_eq!(plain.x_cache(), "HIT");
    // ...and a German one does not.
    let german = request(
        proxy.http(),
        "GET",
        "/vary-lang",
        &[("accept-language", "de")],
    )
    .await;
    assert_eq!(german.body, "lang=de", "served the attacker's variant");
    assert_ne!(german.x_cache(), "HIT");
}

/// Item 3: RFC 9111 §4.1 compares the combined value of a repeated header,
/// not its first line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vary_compares_every_line_of_a_repeated_header() {
    let (_up, proxy) = setup().await;
    let addr = proxy.http();
    let first = request(
        addr,
        "GET",
        "/vary-lang",
        &[("accept-language", "fr"), ("accept-language", "de")],
    )
    .await;
    assert_eq!(first.body, "lang=fr|de");
    // The same value on one line, spaced differently, is the same variant.
    let combined = request(addr, "GET", "/vary-lang", &[("accept-language", "fr,  de")]).await;
    assert_eq!(combined.x_cache(), "HIT");
    assert_eq!(combined.body, "lang=fr|de");
    let other = request(
        addr,
        "GET",
        "/vary-lang",
        &[("accept-language", "fr"), ("accept-language", "en")],
    )
    .await;
    assert_eq!(
        other.body, "lang=fr|en",
        "a different second line must miss"
    );
    assert_ne!(other.x_cache(), "HIT");
}

/// Item 3: an origin that lists `Cache-Control` in its `Connection` header
/// still said `private`: stripping the hop-by-hop header must not make the
/// response storable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storability_follows_what_the_origin_said_before_stripping() {
    let (up, proxy) = setup().await;
    let alice = request(proxy.http(), "GET", "/conn-private", &[("x-user", "alice")]).await;
    assert_eq!(alice.body, "for=alice");
    let bob = request(proxy.http(), "GET", "/conn-private", &[("x-user", "bob")]).await;
    assert_eq!(bob.body, "for=bob", "alice's private answer was replayed");
    assert_eq!(up.hits("/conn-private"), 2);
}

/// Item 4: RFC 9112 §3.2 — an HTTP/1.1 request without `Host`, with two, or
/// with an invalid one gets 400; HTTP/1.0 may leave it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_rules_are_enforced() {
    let (up, proxy) = setup().await;
    let addr = proxy.http();
    for bad in [
        "GET /index.html HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: user@host\r\nConnection: close\r\n\r\n",
        "GET /index.html HTTP/1.1\r\nHost: host:port\r\nConnection: close\r\n\r\n",
    ] {
        let r = raw(addr, bad).await;
        assert_eq!(status_line(&r), "HTTP/1.1 400 Bad Request", "{bad:?}: {r}");
    }
    assert_eq!(up.hits("/index.html"), 0, "a bad request went upstream");
    let ok = raw(addr, "GET /index.html HTTP/1.0\r\n\r\n").await;
    assert!(status_line(&ok).ends_with("200 OK"), "{ok}");
    let ok = raw(
        addr,
        "GET /index.html HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(status_line(&ok).ends_with("200 OK"), "{ok}");
}

/// Item 6: a proxy whose upstream is its own listening address would
/// forward to itself for ever; it refuses to start, for HTTP and for UDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_refuses_itself_as_upstream() {
    let echo = udp_echo().await;
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let own = http.local_addr().unwrap();
    let config = ProxyConfig::new(own, echo);
    let err = proxy::spawn(http, udp, config, CancellationToken::new())
        .await
        .err()
        .expect("a self-loop must be refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("--upstream") && msg.contains(&own.to_string()),
        "{msg}"
    );

    let upstream = Upstream::start().await;
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let own_udp = udp.local_addr().unwrap();
    let config = ProxyConfig::new(upstream.addr, own_udp);
    let err = proxy::spawn(http, udp, config, CancellationToken::new())
        .await
        .err()
        .expect("a UDP self-loop must be refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("--udp-upstream"), "{msg}");

    // Listening on every address and forwarding to loopback is the same loop.
    let http = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = http.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = ProxyConfig::new(([127, 0, 0, 1], port).into(), echo);
    assert!(proxy::spawn(http, udp, config, CancellationToken::new())
        .await
        .is_err());
}

/// Item 6: two proxies pointed at each other: the request comes back to the
/// first one carrying its own `Via` token and is answered 508, instead of
/// filling both proxies' connection slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_carrying_our_via_token_is_a_loop() {
    let echo = udp_echo().await;
    let a_http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b_http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a_addr, b_addr) = (a_http.local_addr().unwrap(), b_http.local_addr().unwrap());
    let stop = CancellationToken::new();
    let udp = || async { UdpSocket::bind("127.0.0.1:0").await.unwrap() };
    let a = proxy::spawn(
        a_http,
        udp().await,
        ProxyConfig::new(b_addr, echo),
        stop.clone(),
    )
    .await
    .unwrap();
    let b = proxy::spawn(
        b_http,
        udp().await,
        ProxyConfig::new(a_addr, echo),
        stop.clone(),
    )
    .await
    .unwrap();
    assert_ne!(
        a.via_token(),
        b.via_token(),
        "each proxy needs its own token"
    );
    let r = get(a_addr, "/loop").await;
    assert_eq!(r.status, 508);
    assert!(String::from_utf8_lossy(&r.body).contains("loop"));
    // One trip round the loop, not a flood: A, B, then A refuses.
    assert!(a.stats().requests <= 3, "{:?}", a.stats());
    assert!(b.stats().requests <= 2, "{:?}", b.stats());

    // Another proxy's token (a netrun in front of this one) is no loop.
    let up = Upstream::start().await;
    let c = start_proxy(up.addr, echo, |_| {}).await;
    let r = request(c.http(), "GET", "/x", &[("via", "1.1 netrun-someoneelse")]).await;
    assert_eq!(r.status, 200);
    let token = c.handle.via_token().to_string();
    let r = request(
        c.http(),
        "GET",
        "/x",
        &[("via", &format!("1.0 a, 1.1 {token}"))],
    )
    .await;
    assert_eq!(r.status, 508);
    stop.cancel();
}
