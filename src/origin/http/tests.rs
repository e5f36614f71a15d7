use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::body::{content_type, etag_for};

#[test]
fn content_types_by_extension() {
    assert_eq!(
        content_type(Path::new("a/index.HTML")),
        "text/html; charset=utf-8"
    );
    assert_eq!(content_type(Path::new("logo.png")), "image/png");
    assert_eq!(content_type(Path::new("info.json")), "application/json");
    assert_eq!(
        content_type(Path::new("large.bin")),
        "application/octet-stream"
    );
    assert_eq!(
        content_type(Path::new("README")),
        "application/octet-stream"
    );
    // The types the old hand-written table gave stay the same.
    for (file, want) in [
        ("s.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.svg", "image/svg+xml"),
        ("a.jpeg", "image/jpeg"),
        ("a.wasm", "application/wasm"),
        ("a.woff2", "font/woff2"),
        ("a.pdf", "application/pdf"),
    ] {
        assert_eq!(content_type(Path::new(file)), want, "{file}");
    }
}

#[test]
fn etag_is_quoted_and_changes_with_mtime() {
    let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
    let a = etag_for(10, t);
    assert!(a.starts_with('"') && a.ends_with('"'), "{a}");
    assert_ne!(a, etag_for(10, t + Duration::from_nanos(1)));
    assert_ne!(a, etag_for(11, t));
}

/// The fast path for kept files (`Handler::quick`) against hyper's path,
/// over real sockets.
mod quick {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use crate::clock::ManualClock;
    use crate::origin::OriginConfig;
    use crate::server::{HttpLimits, Listener};

    /// Bounds every wait of these tests.
    const STEP: Duration = Duration::from_secs(10);

    struct Origin {
        addr: SocketAddr,
        http: super::super::HttpOrigin,
        token: CancellationToken,
        tracker: TaskTracker,
    }

    impl Drop for Origin {
        fn drop(&mut self) {
            self.token.cancel();
        }
    }

    async fn start(www: &Path, limits: HttpLimits, quick: bool) -> Origin {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        // Files are kept once a second old: the origin's clock is ahead.
        let clock = Arc::new(ManualClock::new());
        clock.advance(Duration::from_secs(5));
        let config = OriginConfig {
            www: www.to_path_buf(),
            limits,
            max_age: Some(Duration::from_secs(60)),
        };
        let (token, tracker) = (CancellationToken::new(), TaskTracker::new());
        let http = super::super::spawn_with(
            Listener::from(tcp),
            config,
            clock,
            token.clone(),
            &tracker,
            quick,
        )
        .await
        .unwrap();
        Origin {
            addr,
            http,
            token,
            tracker,
        }
    }

    fn site() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let www = dir.path().join("www");
        std::fs::create_dir_all(www.join("sub")).unwrap();
        std::fs::write(www.join("hello.txt"), "hello, world\n").unwrap();
        std::fs::write(www.join("index.html"), "<p>home</p>\n").unwrap();
        std::fs::write(www.join("sub/index.html"), "<p>sub</p>\n").unwrap();
        let one_k: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(www.join("1k.bin"), one_k).unwrap();
        std::fs::write(www.join("60k.bin"), vec![9u8; 60 * 1024]).unwrap();
        std::fs::write(www.join("big.bin"), big()).unwrap();
        (dir, www)
    }

    /// A file too large to keep: sent with sendfile(2).
    fn big() -> Vec<u8> {
        (0..300 * 1024u32).map(|i| (i % 253) as u8).collect()
    }

    /// Sends `bytes` in one write and reads until the server closes.
    async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        read_to_close(&mut s).await
    }

    async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
        let mut out = Vec::new();
        tokio::time::timeout(STEP, s.read_to_end(&mut out))
            .await
            .expect("the server closes")
            .ok();
        out
    }

    /// The bytes with every `date: ` value blanked (it moves each second).
    fn without_dates(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut rest = bytes;
        while let Some(i) = rest.windows(8).position(|w| w == b"\r\ndate: ") {
            out.extend_from_slice(&rest[..i + 8]);
            out.extend_from_slice(b"<date>");
            rest = &rest[(i + 8 + 29).min(rest.len())..];
        }
        out.extend_from_slice(rest);
        out
    }

    fn get(path: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
    }

    /// The response head at the front of `bytes`: its text, its length in
    /// bytes and its `content-length`.
    fn response_head(bytes: &[u8]) -> (String, usize, usize) {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&bytes[..end]).to_string();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        (head, end, len)
    }

    /// Requests of every kind: plain ones the fast path answers, and the
    /// ones it leaves to hyper (conditionals, bodies, other methods,
    /// HTTP/1.0, odd hosts, folders, missing files, objects).
    fn corpus() -> Vec<String> {
        let mut all = vec![
            get("/hello.txt"),
            get("/1k.bin"),
            get("/1k.bin?v=1"),
            get("/60k.bin"),
            get("/big.bin"),
            "HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            "GET /hello.txt HTTP/1.1\r\nhost: localhost:8080\r\nAccept: */*\r\nUser-Agent: t\r\n\r\n".into(),
            "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n".into(),
            "GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"nope\"\r\n\r\n".into(),
            "HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            "GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT\r\n\r\n".into(),
            "GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n".into(),
            "POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".into(),
            "GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".into(),
            "GET /hello.txt HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n".into(),
            "GET /hello.txt HTTP/1.1\r\nHost: [::1]:80\r\n\r\n".into(),
            get("/sub"),
            get("/sub/"),
            get("/"),
            get("/missing.txt"),
            get("/../secret"),
            get("/objects/a/10"),
            get("/%68ello.txt"),
        ];
        // Every request once more, plain ones answered from the table by now.
        all.extend(all.clone());
        all
    }

    /// Both origins answer `req` alike, byte for byte but the date, on a
    /// connection of its own and closing it.
    async fn same_answer(fast: SocketAddr, slow: SocketAddr, req: &str) {
        let closing = req.replacen("\r\n", "\r\nConnection: close\r\n", 1);
        let a = exchange(fast, closing.as_bytes()).await;
        let b = exchange(slow, closing.as_bytes()).await;
        assert!(!a.is_empty(), "no answer to {req:?}");
        assert_eq!(
            String::from_utf8_lossy(&without_dates(&a)),
            String::from_utf8_lossy(&without_dates(&b)),
            "{req:?}"
        );
    }

    #[tokio::test]
    async fn fast_and_hyper_paths_answer_alike() {
        let (_dir, www) = site();
        let fast = start(&www, HttpLimits::default(), true).await;
        let slow = start(&www, HttpLimits::default(), false).await;
        for req in corpus() {
            same_answer(fast.addr, slow.addr, &req).await;
        }
        // All of it pipelined on one connection, in one write: fast answers,
        // then hyper's from the first request it must answer, in order.
        let mut pipelined: String = corpus().concat();
        pipelined.push_str("GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let a = exchange(fast.addr, pipelined.as_bytes()).await;
        let b = exchange(slow.addr, pipelined.as_bytes()).await;
        assert_eq!(
            String::from_utf8_lossy(&without_dates(&a)),
            String::from_utf8_lossy(&without_dates(&b))
        );
        // The same requests counted the same way.
        assert_eq!(fast.http.stats(), slow.http.stats());
        let quick = |o: &Origin| o.http.counters.quick.load(Ordering::Relaxed);
        // Alone: the 10 plain requests for files in each half of the
        // corpus; pipelined: the 9 before the POST (hyper answers the
        // conditionals and the range one at a time between them, and takes
        // the connection for good at the POST, whose body it reads).
        assert_eq!((quick(&fast), quick(&slow)), (29, 0));
    }

    #[tokio::test]
    async fn pipelined_plain_requests_come_back_in_order() {
        let (_dir, www) = site();
        let origin = start(&www, HttpLimits::default(), true).await;
        // Kept by the first answer.
        let warm = get("/1k.bin").replacen("\r\n", "\r\nConnection: close\r\n", 1);
        exchange(origin.addr, warm.as_bytes()).await;
        let warm = get("/hello.txt").replacen("\r\n", "\r\nConnection: close\r\n", 1);
        exchange(origin.addr, warm.as_bytes()).await;
        let mut reqs = String::new();
        for i in 0..100 {
            reqs.push_str(&get(if i % 2 == 0 { "/1k.bin" } else { "/hello.txt" }));
        }
        reqs.push_str("HEAD /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let got = exchange(origin.addr, reqs.as_bytes()).await;
        let text = String::from_utf8_lossy(&got);
        assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 101);
        let one_k: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
        let want_len = 50 * (1024 + 13) + 13;
        let heads = text.matches("\r\n\r\n").count();
        assert_eq!(heads, 101);
        // The bodies in order: 1k, hello, 1k, hello, ...
        let mut rest = &got[..];
        let mut body_bytes = 0;
        for i in 0..101 {
            let (_, end, len) = response_head(rest);
            let body_len = if i == 100 { 0 } else { len };
            let body = &rest[end..end + body_len];
            if i == 100 {
                assert_eq!(len, 13);
            } else if i % 2 == 0 {
                assert!(body == &one_k[..], "answer {i}");
            } else {
                assert_eq!(body, b"hello, world\n", "answer {i}");
            }
            body_bytes += body_len;
            rest = &rest[end + body_len..];
        }
        assert!(rest.is_empty());
        assert_eq!(body_bytes, want_len - 13);
        let stats = origin.http.stats();
        assert_eq!((stats.requests, stats.status_2xx), (103, 103));
        assert_eq!(origin.http.counters.quick.load(Ordering::Relaxed), 103);
    }

    #[tokio::test]
    async fn a_large_file_is_sent_byte_exact() {
        let (_dir, www) = site();
        let origin = start(&www, HttpLimits::default(), true).await;
        let warm = get("/hello.txt").replacen("\r\n", "\r\nConnection: close\r\n", 1);
        exchange(origin.addr, warm.as_bytes()).await;
        let mut reqs = String::new();
        for _ in 0..3 {
            reqs.push_str(&get("/big.bin"));
            reqs.push_str(&get("/hello.txt"));
        }
        reqs.push_str("GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let got = exchange(origin.addr, reqs.as_bytes()).await;
        let big = big();
        let mut rest = &got[..];
        for i in 0..7 {
            let (head, end, len) = response_head(rest);
            if i % 2 == 0 {
                assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
                assert!(rest[end..end + len] == big[..], "answer {i}");
            } else {
                assert_eq!(&rest[end..end + len], b"hello, world\n", "answer {i}");
            }
            rest = &rest[end + len..];
        }
        assert!(rest.is_empty());
        let stats = origin.http.stats();
        assert_eq!(stats.bytes_sent, 4 * big.len() as u64 + 4 * 13);
        assert_eq!(origin.http.counters.quick.load(Ordering::Relaxed), 8);
    }

    #[tokio::test]
    async fn a_head_sent_a_byte_at_a_time_is_answered() {
        let (_dir, www) = site();
        let origin = start(&www, HttpLimits::default(), true).await;
        let req = get("/hello.txt");
        for _ in 0..2 {
            let mut s = TcpStream::connect(origin.addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            for b in req.bytes() {
                s.write_all(&[b]).await.unwrap();
                tokio::task::yield_now().await;
            }
            s.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let text = String::from_utf8(read_to_close(&mut s).await).unwrap();
            assert_eq!(text.matches("\r\n\r\nhello, world\n").count(), 2, "{text}");
        }
    }

    /// A connection moves from the fast path to hyper at a request the fast
    /// path leaves to hyper, and plain requests after it are still answered.
    #[tokio::test]
    async fn a_connection_moves_to_hyper_and_keeps_serving() {
        let (_dir, www) = site();
        let origin = start(&www, HttpLimits::default(), true).await;
        exchange(
            origin.addr,
            b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        let mut s = TcpStream::connect(origin.addr).await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        for req in [
            get("/hello.txt"),
            "GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n".into(),
            "POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi".into(),
            get("/hello.txt"),
        ] {
            s.write_all(req.as_bytes()).await.unwrap();
            let n = tokio::time::timeout(STEP, s.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let want = if req.contains("If-None") {
                "HTTP/1.1 304"
            } else if req.starts_with("POST") {
                "HTTP/1.1 405"
            } else {
                "HTTP/1.1 200"
            };
            assert!(text.starts_with(want), "{req:?}: {text}");
        }
        let stats = origin.http.stats();
        assert_eq!((stats.requests, stats.not_modified), (5, 1));
    }

    #[tokio::test]
    async fn slow_and_idle_heads_are_cut_off_at_the_header_timeout() {
        let (_dir, www) = site();
        let limits = HttpLimits {
            header_timeout: Duration::from_millis(200),
            ..HttpLimits::default()
        };
        let origin = start(&www, limits, true).await;
        let started = std::time::Instant::now();
        let mut s = TcpStream::connect(origin.addr).await.unwrap();
        s.write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        let got = read_to_close(&mut s).await;
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
        assert_eq!(origin.http.stats().connection_errors, 1);

        // Idle after a request: closed too, and not counted as an error.
        let mut s = TcpStream::connect(origin.addr).await.unwrap();
        s.write_all(get("/hello.txt").as_bytes()).await.unwrap();
        let got = read_to_close(&mut s).await;
        assert!(got.starts_with(b"HTTP/1.1 200 OK"));
        assert_eq!(origin.http.stats().connection_errors, 1);
    }

    #[tokio::test]
    async fn a_client_that_never_reads_is_closed_at_the_write_timeout() {
        let (_dir, www) = site();
        let limits = HttpLimits {
            max_connections: 1,
            write_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        };
        let origin = start(&www, limits, true).await;
        exchange(
            origin.addr,
            b"GET /60k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        // 2,000 pipelined requests for a kept 60 KiB file, ~120 MB of
        // answers: far more than socket buffers hold. Never read.
        let mut hog = TcpStream::connect(origin.addr).await.unwrap();
        let reqs = get("/60k.bin").repeat(2000);
        let writing = tokio::spawn(async move {
            let _ = hog.write_all(reqs.as_bytes()).await;
            hog
        });
        // The only slot frees once the hog is cut off.
        let got = exchange(
            origin.addr,
            b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(got.starts_with(b"HTTP/1.1 200 OK"));
        let stats = origin.http.stats();
        assert_eq!(stats.connection_errors, 1, "{stats:?}");
        drop(writing.await.unwrap());
    }

    #[tokio::test]
    async fn a_file_rewritten_on_disk_is_served_new() {
        let (_dir, www) = site();
        let origin = start(&www, HttpLimits::default(), true).await;
        let path = www.join("hello.txt");
        let req = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        for _ in 0..2 {
            assert!(exchange(origin.addr, req)
                .await
                .ends_with(b"hello, world\n"));
        }
        // Same size, later ctime: another version.
        after_the_next_ctime_tick(&path);
        std::fs::write(&path, "HELLO, WORLD\n").unwrap();
        assert!(exchange(origin.addr, req)
            .await
            .ends_with(b"HELLO, WORLD\n"));
        std::fs::write(&path, "bye\n").unwrap();
        let got = exchange(origin.addr, req).await;
        assert!(got.ends_with(b"\r\n\r\nbye\n"));
        std::fs::remove_file(&path).unwrap();
        assert!(exchange(origin.addr, req)
            .await
            .starts_with(b"HTTP/1.1 404"));
    }

    #[tokio::test]
    async fn shutdown_closes_idle_fast_connections() {
        let (_dir, www) = site();
        let origin = start(&www, HttpLimits::default(), true).await;
        let mut s = TcpStream::connect(origin.addr).await.unwrap();
        let mut buf = vec![0u8; 4096];
        for _ in 0..2 {
            s.write_all(get("/hello.txt").as_bytes()).await.unwrap();
            let n = tokio::time::timeout(STEP, s.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
        }
        origin.token.cancel();
        origin.tracker.close();
        assert!(tokio::time::timeout(STEP, origin.tracker.wait())
            .await
            .is_ok());
        assert!(read_to_close(&mut s).await.is_empty());
    }

    /// Returns once a file written in `path`'s folder gets a later ctime
    /// than `path` has (bounded: the file system's clock ticks within
    /// milliseconds).
    fn after_the_next_ctime_tick(path: &Path) {
        use std::os::unix::fs::MetadataExt;
        let stamp = |p: &Path| {
            let m = std::fs::metadata(p).unwrap();
            (m.ctime(), m.ctime_nsec())
        };
        let kept = stamp(path);
        let probe = path.with_extension("tick");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while stamp(&{
            std::fs::write(&probe, b"tick").unwrap();
            probe.clone()
        }) <= kept
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the file clock never ticked"
            );
            std::thread::yield_now();
        }
    }
}
