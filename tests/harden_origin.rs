//! The origin against the attacks of an outside review (issue 11): Host
//! rules, and client mistakes that used to be answered as server faults.

mod support_origin;

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use support_origin::*;

fn status_line(response: &[u8]) -> String {
    String::from_utf8_lossy(response)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Item 4: RFC 9112 §3.2 — an HTTP/1.1 request without `Host`, with two, or
/// with an invalid one gets 400; HTTP/1.0 may leave it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_rules_are_enforced() {
    let (_site, origin) = start_site().await;
    for bad in [
        "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a/b\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a:99999\r\nConnection: close\r\n\r\n",
    ] {
        let r = raw(origin.http(), bad.as_bytes()).await;
        assert_eq!(status_line(&r), "HTTP/1.1 400 Bad Request", "{bad:?}");
    }
    let ok = raw(origin.http(), b"GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(status_line(&ok), "HTTP/1.0 200 OK");
    let ok = raw(
        origin.http(),
        b"GET / HTTP/1.1\r\nHost: example.org:80\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_line(&ok), "HTTP/1.1 200 OK");
    assert_eq!(origin.handle.stats().http.status_5xx, 0);
}

/// Item 5: a name the file system cannot hold, a symlink loop or a path
/// longer than any file path are the client's mistakes: 404 or 414, not 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_errors_are_client_errors() {
    let (site, origin) = start_site().await;
    std::os::unix::fs::symlink("loop", site.www.join("loop")).unwrap();
    std::os::unix::fs::symlink("ping", site.www.join("pong")).unwrap();
    std::os::unix::fs::symlink("pong", site.www.join("ping")).unwrap();
    let long_segment = format!("/{}", "a".repeat(300));
    let r = get(origin.http(), &long_segment).await;
    assert_eq!(r.status, 404);
    let r = get(origin.http(), &format!("/index.html/{}", "b".repeat(300))).await;
    assert_eq!(r.status, 404);
    for p in ["/loop", "/ping", "/loop/x"] {
        let r = get(origin.http(), p).await;
        assert_eq!(r.status, 404, "{p}");
    }
    let long_path = "/abc".repeat(1100);
    let r = get(origin.http(), &long_path).await;
    assert_eq!(r.status, 414);
    let stats = origin.handle.stats().http;
    assert_eq!(stats.status_5xx, 0, "{stats:?}");
}

/// Item 5 on the command line: a flood of such mistakes logs no ERROR line
/// and only a few warnings (rate-limited), not one line per request.
#[test]
fn lookup_errors_log_rate_limited_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "hi").unwrap();
    std::os::unix::fs::symlink("loop", www.join("loop")).unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--www",
        ])
        .arg(&www)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let addr: std::net::SocketAddr = line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let mut codes = Vec::new();
    for i in 0..40 {
        let path = if i % 2 == 0 {
            format!("/{}", "x".repeat(300))
        } else {
            "/loop".to_string()
        };
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(STEP)).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        codes.push(out.get(9..12).unwrap_or("").to_string());
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(codes.iter().all(|c| c == "404"), "{codes:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("ERROR"), "{text}");
    let warnings = text.lines().filter(|l| l.contains("WARN")).count();
    assert!(warnings <= 4, "{warnings} warnings:\n{text}");
}
