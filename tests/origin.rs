//! The origin on real sockets: files and headers, conditional requests,
//! keep-alive, the traversal corpus, UDP echo, every limit, clean shutdown.

mod support_origin;

use std::time::Duration;

use netrun::server::HttpLimits;
use support_origin::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

#[tokio::test]
async fn serves_each_file_type_with_its_content_type() {
    let (site, origin) = start_site().await;
    std::fs::write(site.www.join("notes.txt"), "plain text\n").unwrap();
    let cases = [
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/img/logo.png", "image/png"),
        ("/data/info.json", "application/json"),
        ("/hello.txt", "text/plain; charset=utf-8"),
        ("/notes.txt", "text/plain; charset=utf-8"),
        ("/data/large.bin", "application/octet-stream"),
    ];
    for (path, content_type) in cases {
        let reply = get(origin.http(), path).await;
        let on_disk = std::fs::read(site.www.join(&path[1..])).unwrap();
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), content_type, "{path}");
        assert_eq!(
            reply.header("content-length"),
            on_disk.len().to_string(),
            "{path}"
        );
        assert!(reply.header("etag").starts_with('"'), "{path}: strong ETag");
        httpdate::parse_http_date(reply.header("last-modified")).unwrap();
        assert!(reply.body == on_disk, "{path}: body differs from the file");
    }
    let stats = origin.handle.stats().http;
    assert_eq!(stats.requests, cases.len() as u64);
    assert_eq!(stats.status_2xx, cases.len() as u64);
}

#[tokio::test]
async fn root_and_folders_serve_their_index() {
    let (site, origin) = start_site().await;
    let index = std::fs::read(site.www.join("index.html")).unwrap();
    let docs = std::fs::read(site.www.join("docs/index.html")).unwrap();

    let root = get(origin.http(), "/").await;
    assert_eq!(root.status, 200);
    assert_eq!(root.header("content-type"), "text/html; charset=utf-8");
    assert!(root.body == index);

    let sub = get(origin.http(), "/docs/").await;
    assert_eq!(sub.status, 200);
    assert!(sub.body == docs);

    // A folder without its slash redirects, so relative links keep working.
    let redirect = get(origin.http(), "/docs?x=1").await;
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), "/docs/?x=1");

    // A folder without index.html is not listed.
    std::fs::create_dir(site.www.join("empty")).unwrap();
    assert_eq!(get(origin.http(), "/empty/").await.status, 404);
    // A file asked for as a folder does not exist.
    assert_eq!(get(origin.http(), "/hello.txt/").await.status, 404);
}

#[tokio::test]
async fn head_sends_headers_without_body() {
    let (site, origin) = start_site().await;
    let len = std::fs::metadata(site.www.join("data/large.bin"))
        .unwrap()
        .len();
    let get_reply = get(origin.http(), "/data/large.bin").await;
    let head = request(origin.http(), "HEAD", "/data/large.bin", &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), len.to_string());
    assert_eq!(head.header("content-type"), "application/octet-stream");
    assert_eq!(head.header("etag"), get_reply.header("etag"));
    assert_eq!(
        head.header("last-modified"),
        get_reply.header("last-modified")
    );
    assert!(head.body.is_empty());

    // On the wire too: nothing after the head.
    let raw_reply = raw(
        origin.http(),
        b"HEAD /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw_reply.ends_with(b"\r\n\r\n"), "{raw_reply:?}");
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let (_site, origin) = start_site().await;
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"] {
        let reply = request(origin.http(), method, "/index.html", &[]).await;
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), "GET, HEAD", "{method}");
    }
}

#[tokio::test]
async fn missing_file_is_404_with_a_short_body() {
    let (_site, origin) = start_site().await;
    let reply = get(origin.http(), "/no/such/file.html").await;
    assert_eq!(reply.status, 404);
    assert_eq!(&reply.body[..], b"404 Not Found\n");
    assert_eq!(origin.handle.stats().http.status_4xx, 1);
}

#[tokio::test]
async fn if_none_match_revalidates_with_304() {
    let (_site, origin) = start_site().await;
    let first = get(origin.http(), "/style.css").await;
    let etag = first.header("etag").to_string();

    let same = request(
        origin.http(),
        "GET",
        "/style.css",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(same.status, 304);
    assert!(same.body.is_empty());
    assert_eq!(same.header("etag"), etag);

    let listed = format!("\"nope\", {etag}");
    let in_list = request(
        origin.http(),
        "HEAD",
        "/style.css",
        &[("if-none-match", &listed)],
    )
    .await;
    assert_eq!(in_list.status, 304);

    let other = request(
        origin.http(),
        "GET",
        "/style.css",
        &[("if-none-match", "\"nope\"")],
    )
    .await;
    assert_eq!(other.status, 200);
    assert!(other.body == first.body);
    assert_eq!(origin.handle.stats().http.not_modified, 2);
}

#[tokio::test]
async fn if_modified_since_revalidates_with_304() {
    let (site, origin) = start_site().await;
    let first = get(origin.http(), "/hello.txt").await;
    let last_modified = first.header("last-modified").to_string();

    let same = request(
        origin.http(),
        "GET",
        "/hello.txt",
        &[("if-modified-since", &last_modified)],
    )
    .await;
    assert_eq!(same.status, 304);
    assert!(same.body.is_empty());

    let old = "Mon, 01 Jan 2001 00:00:00 GMT";
    let older = request(
        origin.http(),
        "GET",
        "/hello.txt",
        &[("if-modified-since", old)],
    )
    .await;
    assert_eq!(older.status, 200);

    // A changed file gets a new validator: the old one no longer matches.
    let path = site.www.join("hello.txt");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(1))
        .unwrap();
    let etag = first.header("etag").to_string();
    let changed = request(
        origin.http(),
        "GET",
        "/hello.txt",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), etag);
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
    let (site, origin) = start_site().await;
    let css = std::fs::read(site.www.join("style.css")).unwrap();
    let mut conn = connect(origin.http()).await;
    for i in 0..50 {
        let path = if i % 2 == 0 { "/style.css" } else { "/nope" };
        let reply = send_on(&mut conn, "GET", path, &[]).await;
        if i % 2 == 0 {
            assert_eq!(reply.status, 200);
            assert!(reply.body == css);
        } else {
            assert_eq!(reply.status, 404);
        }
    }
    let stats = origin.handle.stats().http;
    assert_eq!(stats.connections, 1, "all 50 requests on one connection");
    assert_eq!(stats.requests, 50);
}

#[tokio::test]
async fn large_file_arrives_byte_exact() {
    let (site, origin) = start_site().await;
    let on_disk = std::fs::read(site.www.join("data/large.bin")).unwrap();
    assert_eq!(on_disk.len(), 1 << 20);
    let reply = get(origin.http(), "/data/large.bin").await;
    assert_eq!(reply.status, 200);
    assert!(reply.body == on_disk, "1 MiB body differs");
    assert_eq!(origin.handle.stats().http.bytes_sent, 1 << 20);
}

#[tokio::test]
async fn traversal_corpus_never_leaves_www() {
    let (site, origin) = start_site().await;
    // The symlinks really do lead to the secret: only the server stops them.
    let via_link = std::fs::read_to_string(site.www.join("link-secret.txt")).unwrap();
    assert!(via_link.contains(&site.marker));

    let corpus = include_str!("fixtures/traversal.txt");
    let targets: Vec<&str> = corpus
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(targets.len() >= 40, "corpus has {} entries", targets.len());

    // The same request shape does fetch a file that is inside.
    let sanity = raw(
        origin.http(),
        b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&sanity), 200);

    let mut failures = Vec::new();
    for target in &targets {
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let response = raw(origin.http(), request.as_bytes()).await;
        let status = status_of(&response);
        let text = String::from_utf8_lossy(&response);
        if text.contains(&site.marker) {
            failures.push(format!("{target}: LEAKED THE SECRET ({status})"));
        } else if ![400, 403, 404].contains(&status) {
            failures.push(format!("{target}: status {status}"));
        }
    }
    assert!(
        failures.is_empty(),
        "unsafe answers:\n{}",
        failures.join("\n")
    );
    // Still serving after the whole corpus.
    assert_eq!(get(origin.http(), "/").await.status, 200);
    assert!(origin.handle.stats().http.refused_paths > 40);
}

#[tokio::test]
async fn udp_echo_returns_each_senders_own_datagrams() {
    let (_site, origin) = start_site().await;
    let echo = origin.udp();
    let sizes = [1usize, 128, 1472, 65507];
    let senders = 4u8;
    let mut tasks = Vec::new();
    for id in 0..senders {
        tasks.push(tokio::spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            socket.connect(echo).await.unwrap();
            let mut buf = vec![0u8; 65535];
            for (round, &size) in sizes.iter().enumerate() {
                // Each sender's payload is its own pattern, so a mixed-up
                // reply cannot pass.
                let payload: Vec<u8> = (0..size)
                    .map(|i| {
                        (i as u8)
                            .wrapping_mul(31)
                            .wrapping_add(id * 64 + round as u8)
                    })
                    .collect();
                // UDP may drop even on loopback when kernel buffers are small
                // (a 64 KiB datagram takes ~128 KiB of them): resend a few
                // times, but every reply that arrives must be our own.
                let mut echoed = false;
                for _attempt in 0..5 {
                    socket.send(&payload).await.unwrap();
                    let wait = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf));
                    let Ok(reply) = wait.await else { continue };
                    let n = reply.unwrap();
                    if n != size && sizes[..round].contains(&n) {
                        continue; // a late echo of an earlier resend
                    }
                    assert_eq!(n, size, "sender {id}");
                    assert!(
                        buf[..n] == payload[..],
                        "sender {id} size {size}: payload differs"
                    );
                    echoed = true;
                    break;
                }
                assert!(echoed, "sender {id}: no echo of {size} bytes after 5 tries");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = origin.handle.stats().udp;
    assert_eq!(
        stats.datagrams_echoed,
        u64::from(senders) * sizes.len() as u64
    );
    assert_eq!(
        stats.bytes_echoed,
        u64::from(senders) * sizes.iter().sum::<usize>() as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_flooder_does_not_hold_back_other_senders() {
    let (_site, origin) = start_site().await;
    let echo = origin.udp();
    // A sender that floods and never reads its echoes.
    let flooder = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let flood = tokio::spawn(async move {
        let payload = [7u8; 1472];
        for _ in 0..5000 {
            flooder.send_to(&payload, echo).await.unwrap();
        }
        flooder
    });
    // Meanwhile another sender still gets every reply promptly.
    let probe = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    probe.connect(echo).await.unwrap();
    let mut buf = [0u8; 64];
    let mut answered = 0;
    for i in 0..50u32 {
        probe.send(&i.to_be_bytes()).await.unwrap();
        // Tolerate a rare drop under the flood, never a stall.
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), probe.recv(&mut buf)).await
        {
            assert_eq!(buf[..n], i.to_be_bytes(), "a reply that is not ours");
            answered += 1;
        }
    }
    assert!(answered >= 45, "only {answered}/50 echoes during the flood");
    let _flooder = flood.await.unwrap();
    assert!(origin.handle.stats().udp.datagrams_echoed >= 50);
}

#[tokio::test]
async fn oversized_header_gets_431() {
    let site = site();
    let limits = HttpLimits {
        max_header_size: 1024,
        ..HttpLimits::default()
    };
    let origin = start(&site.www, limits).await;

    let small = format!(
        "GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(500)
    );
    assert_eq!(status_of(&raw(origin.http(), small.as_bytes()).await), 200);

    // Under hyper's 8 KiB buffer minimum, yet still refused: the limit is exact.
    let big = format!(
        "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(2000)
    );
    assert_eq!(status_of(&raw(origin.http(), big.as_bytes()).await), 431);

    // Many small headers add up the same way.
    let many: String = (0..80).map(|i| format!("X-H{i}: value\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{many}\r\n");
    assert_eq!(status_of(&raw(origin.http(), many.as_bytes()).await), 431);

    // The default limit (16 KiB) holds too.
    let default = start(&site.www, HttpLimits::default()).await;
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_eq!(status_of(&raw(default.http(), huge.as_bytes()).await), 431);

    assert_eq!(get(origin.http(), "/").await.status, 200, "still serving");
    assert!(origin.handle.stats().http.connection_errors >= 2);
}

#[tokio::test]
async fn slowloris_is_cut_off_after_the_header_timeout() {
    let site = site();
    let limits = HttpLimits {
        header_timeout: Duration::from_millis(200),
        ..HttpLimits::default()
    };
    let origin = start(&site.www, limits).await;
    let started = std::time::Instant::now();
    let mut stream = TcpStream::connect(origin.http()).await.unwrap();
    stream
        .write_all(b"GET /index.html HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // The server must close the connection on its own; the helper bounds the wait.
    let got = read_until_closed(&mut stream).await;
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "closed too early"
    );
    assert!(status_of(&got) != 200, "half a request must not be served");

    // A connection that never sends a byte is closed too.
    let mut silent = TcpStream::connect(origin.http()).await.unwrap();
    read_until_closed(&mut silent).await;

    assert!(origin.handle.stats().http.connection_errors >= 2);
    assert_eq!(get(origin.http(), "/").await.status, 200, "still serving");
}

#[tokio::test]
async fn connection_limit_makes_new_connections_wait() {
    let site = site();
    let limits = HttpLimits {
        max_connections: 2,
        header_timeout: Duration::from_secs(60),
        ..HttpLimits::default()
    };
    let origin = start(&site.www, limits).await;
    let request = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n";

    // Two keep-alive connections, each served once and then held open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(origin.http()).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(STEP, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status_of(&buf[..n]), 200);
        held.push(s);
    }

    // The third connects (kernel backlog) but is not served while both are open.
    let mut third = TcpStream::connect(origin.http()).await.unwrap();
    third
        .write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(early.is_err(), "third connection served past the limit");
    assert!(origin.handle.stats().http.connections_waited >= 1);

    // Closing one frees a slot: the waiting connection is served.
    drop(held.remove(0));
    let got = read_until_closed(&mut third).await;
    assert_eq!(status_of(&got), 200);
}

#[tokio::test]
async fn a_client_that_never_reads_loses_its_slot_after_the_write_timeout() {
    let site = site();
    // Far larger than loopback socket buffers: the write must stall.
    std::fs::write(site.www.join("big.bin"), vec![7u8; 32 << 20]).unwrap();
    let limits = HttpLimits {
        max_connections: 1,
        write_timeout: Duration::from_millis(300),
        ..HttpLimits::default()
    };
    let origin = start(&site.www, limits).await;

    // Asks for 32 MiB and never reads a byte, holding the only slot.
    let mut hog = TcpStream::connect(origin.http()).await.unwrap();
    hog.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    // The next client is served once the stalled one is cut off (the
    // helper bounds the wait with STEP).
    let reply = get(origin.http(), "/hello.txt").await;
    assert_eq!(reply.status, 200);
    let stats = origin.handle.stats().http;
    assert!(stats.connection_errors >= 1, "{stats:?}");
    assert!(stats.connections_waited >= 1, "{stats:?}");
    drop(hog);
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let site = site();
    let limits = HttpLimits {
        max_body_size: 1024,
        ..HttpLimits::default()
    };
    let origin = start(&site.www, limits).await;

    // Declared too large: refused before reading it.
    let declared = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n";
    assert_eq!(status_of(&raw(origin.http(), declared).await), 413);

    // Chunked, no length announced: refused once the limit is crossed.
    let chunk = "a".repeat(1500);
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    assert_eq!(
        status_of(&raw(origin.http(), chunked.as_bytes()).await),
        413
    );

    // A small body is read and ignored, and the connection stays usable.
    let small = "GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
                 GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let both = String::from_utf8_lossy(&raw(origin.http(), small.as_bytes()).await).to_string();
    assert_eq!(both.matches("HTTP/1.1 200 OK").count(), 2, "{both}");

    assert_eq!(origin.handle.stats().http.limit_hits, 2);
}

#[tokio::test]
async fn shutdown_finishes_in_flight_responses_then_closes() {
    let site = site();
    // Larger than loopback socket buffers, so the response is still being
    // written when the shutdown comes.
    let big: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(site.www.join("big.bin"), &big).unwrap();
    let origin = start(&site.www, HttpLimits::default()).await;
    let addr = origin.http();

    let mut streaming = connect(addr).await;
    let resp = tokio::time::timeout(STEP, async {
        streaming.ready().await.unwrap();
        let req = http::Request::get("/big.bin")
            .header("host", "x")
            .body(http_body_util::Empty::new())
            .unwrap();
        streaming.send_request(req).await.unwrap()
    })
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let idle = connect(addr).await;

    origin.token.cancel();
    // The download is blocked on its reader, so the origin cannot be done yet.
    assert!(
        !origin
            .handle
            .wait_for_tasks(Duration::from_millis(200))
            .await
    );

    let reader = tokio::spawn(async move {
        use http_body_util::BodyExt;
        resp.into_body().collect().await.map(|b| b.to_bytes())
    });
    assert!(
        origin.handle.wait(STEP).await,
        "in-flight work did not finish"
    );
    let body = reader.await.unwrap().expect("body completes");
    assert_eq!(body.len(), big.len());
    assert!(body == big, "body differs");
    drop(idle);

    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener still open after shutdown"
    );
}

#[tokio::test]
async fn spawn_refuses_a_missing_or_non_folder_www() {
    let site = site();
    for bad in [
        site.dir.path().join("nope"),
        site.dir.path().join("secret.txt"),
    ] {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let config = netrun::origin::OriginConfig {
            www: bad.clone(),
            limits: HttpLimits::default(),
            max_age: None,
        };
        let err = netrun::origin::spawn(http, udp, config, Default::default())
            .await
            .err()
            .expect("spawn must fail");
        assert_eq!(netrun::error::exit_code(&err), 2, "{err:#}");
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&bad.display().to_string()) && msg.contains("--www"),
            "{msg}"
        );
    }
}

/// Plain names are looked up inline beneath the www folder; anything with a
/// symlink on the way takes the canonicalizing path. Both must give the
/// answers the rules promise: symlinks that stay inside are served (with the
/// target's content type), ones that leave are refused, odd file types are
/// never opened, and a file changed on disk is served anew.
#[tokio::test]
async fn inline_and_symlink_lookups_agree_with_the_rules() {
    let (site, origin) = start_site().await;
    let www = &site.www;
    std::os::unix::fs::symlink("style.css", www.join("alias.txt")).unwrap();
    std::os::unix::fs::symlink("docs", www.join("manual")).unwrap();
    std::os::unix::fs::symlink("../..", www.join("docs/up")).unwrap();
    let css = std::fs::read(www.join("style.css")).unwrap();

    let alias = get(origin.http(), "/alias.txt").await;
    assert_eq!(alias.status, 200);
    assert!(alias.body == css);
    // The content type follows the file the link leads to.
    assert_eq!(alias.header("content-type"), "text/css; charset=utf-8");
    let manual = get(origin.http(), "/manual/").await;
    assert_eq!(manual.status, 200);
    assert!(manual.body == std::fs::read(www.join("docs/index.html")).unwrap());
    assert_eq!(get(origin.http(), "/manual").await.status, 301);
    // Out through a link to a folder, at any depth: refused, never a redirect.
    for p in [
        "/outside/secret.txt",
        "/docs/up/secret.txt",
        "/outside",
        "/docs/up/",
    ] {
        let r = get(origin.http(), p).await;
        assert_eq!(r.status, 403, "{p}");
        assert!(!String::from_utf8_lossy(&r.body).contains(&site.marker));
    }

    // A FIFO is never opened (opening one for reading would wait for a writer).
    let fifo = www.join("pipe.txt");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    assert_eq!(get(origin.http(), "/pipe.txt").await.status, 404);

    // HEAD: the length and validators of GET, no body.
    let head = request(origin.http(), "HEAD", "/data/large.bin", &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), (1u64 << 20).to_string());
    assert!(head.body.is_empty());

    // Rewritten in place with the same size, then replaced by a rename:
    // every request sees what is on disk now.
    let path = www.join("hello.txt");
    let before = get(origin.http(), "/hello.txt").await.body;
    for round in 0..3u8 {
        let mut next = before.to_vec();
        next[0] = b'0' + round;
        std::fs::write(&path, &next).unwrap();
        assert!(
            get(origin.http(), "/hello.txt").await.body == next,
            "round {round}"
        );
    }
    let tmp = www.join("hello.new");
    std::fs::write(&tmp, "replaced\n").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert_eq!(
        &get(origin.http(), "/hello.txt").await.body[..],
        b"replaced\n"
    );
    // A file replaced by a symlink leading out is refused at once.
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("../secret.txt", &path).unwrap();
    assert_eq!(get(origin.http(), "/hello.txt").await.status, 403);
}

/// Small files settled on disk are kept in memory between requests; each
/// use is checked against the disk, so a rewrite of the same size, a rename
/// over it or a symlink put in its place is seen by the very next request.
#[tokio::test]
async fn kept_small_files_follow_the_disk() {
    let site = site();
    let clock = std::sync::Arc::new(netrun::clock::ManualClock::new());
    let origin = start_with_clock(&site.www, HttpLimits::default(), clock.clone()).await;
    let path = site.www.join("hello.txt");
    let first = std::fs::read(&path).unwrap();
    // Only files unchanged for a second are kept (a write always moves
    // ctime to now): the origin's clock moves past that, then the file is
    // served twice (read, kept).
    clock.advance(Duration::from_secs(2));
    for _ in 0..2 {
        assert!(get(origin.http(), "/hello.txt").await.body == first);
    }
    // The rewrite must carry a later ctime than the kept version, as it
    // would a second later: on a file system whose clock ticks every few
    // milliseconds, wait for the next tick.
    after_the_next_ctime_tick(&path);
    let mut same_size = first.clone();
    same_size[0] ^= 0x20;
    std::fs::write(&path, &same_size).unwrap();
    assert!(get(origin.http(), "/hello.txt").await.body == same_size);
    let tmp = site.www.join("hello.new");
    std::fs::write(&tmp, &first).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert!(get(origin.http(), "/hello.txt").await.body == first);
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("../secret.txt", &path).unwrap();
    let r = get(origin.http(), "/hello.txt").await;
    assert_eq!(r.status, 403);
    assert!(!String::from_utf8_lossy(&r.body).contains(&site.marker));
}

/// `If-Modified-Since` is judged by the origin's clock: a date an hour
/// ahead of the real clock is in the past for an origin whose clock is a
/// day ahead, so it is used (304); the same date is ignored as one in the
/// future by an origin on the real clock (200).
#[tokio::test]
async fn if_modified_since_is_judged_by_the_origins_clock() {
    let site = site();
    let ahead = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
    let ims = [("if-modified-since", ahead.as_str())];
    let clock = std::sync::Arc::new(netrun::clock::ManualClock::new());
    clock.advance(Duration::from_secs(86_400));
    let later = start_with_clock(&site.www, HttpLimits::default(), clock).await;
    assert_eq!(
        request(later.http(), "GET", "/hello.txt", &ims)
            .await
            .status,
        304
    );
    let now = start(&site.www, HttpLimits::default()).await;
    assert_eq!(
        request(now.http(), "GET", "/hello.txt", &ims).await.status,
        200
    );
}

/// Returns once a file written in `path`'s folder gets a later ctime than
/// `path` has (bounded: the file system's clock ticks within milliseconds).
fn after_the_next_ctime_tick(path: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let stamp = |p: &std::path::Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.ctime(), m.ctime_nsec())
    };
    let kept = stamp(path);
    let probe = path.with_extension("tick");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        std::fs::write(&probe, b"tick").unwrap();
        if stamp(&probe) > kept {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the file clock never ticked"
        );
        std::thread::yield_now();
    }
    std::fs::remove_file(&probe).unwrap();
}

/// An echo that cannot keep up counts what the kernel dropped at its
/// socket: here its runtime (this test's thread) is busy while a burst
/// larger than any receive buffer it can have (it asks for 4 MiB, which
/// the kernel doubles) arrives, so echoed + dropped = sent, with drops.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "current_thread")]
async fn udp_datagrams_the_echo_socket_dropped_are_counted() {
    let (_site, origin) = start_site().await;
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(origin.udp()).unwrap();
    // 11.2 MB of payload, sent without an await: the echo reads none of it meanwhile.
    let sent = 8000u64;
    for _ in 0..sent {
        tx.send(&[1u8; 1400]).unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let stats = loop {
        let s = origin.handle.stats().udp;
        if s.datagrams_echoed + s.receive_drops >= sent {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "{s:?} of {sent}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(stats.receive_drops > 0, "{stats:?}");
    assert_eq!(
        stats.datagrams_echoed + stats.receive_drops,
        sent,
        "{stats:?}"
    );
}
