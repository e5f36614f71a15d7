//! TLS and HTTP/2 on real sockets: the origin over HTTPS (HTTP/1.1 and
//! HTTP/2 by ALPN) and h2c with prior knowledge, the probe's timings and
//! counts, and every way a handshake can fail ending in a counted error,
//! never a hang.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use netrun::origin::{self, OriginConfig, OriginHandle};
use netrun::server::{HttpLimits, Listener};
use netrun::tls::{self, Identity, Trust};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// An origin serving a one-file folder on `bind` (port 0), over TLS with
/// `identity` if given.
async fn origin(
    bind: &str,
    identity: Option<&Identity>,
    limits: HttpLimits,
) -> (tempfile::TempDir, OriginHandle, CancellationToken) {
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "<p>hello</p>\n").unwrap();
    let tcp = TcpListener::bind(bind).await.unwrap();
    let udp = UdpSocket::bind(bind).await.unwrap();
    let listener = Listener {
        workers: None,
        tcp,
        tls: identity.map(|id| tls::server_config(id).unwrap()),
    };
    let config = OriginConfig {
        www: www.path().to_path_buf(),
        limits,
        max_age: None,
    };
    let token = CancellationToken::new();
    let handle = origin::spawn(listener, udp, config, token.clone())
        .await
        .unwrap();
    (www, handle, token)
}

#[tokio::test]
async fn a_clear_text_client_on_a_tls_port_is_told_to_use_https() {
    let id = Identity::made(&[]).unwrap();
    let (_www, origin, token) = origin("127.0.0.1:0", Some(&id), HttpLimits::default()).await;
    let mut s = TcpStream::connect(origin.http_addr()).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut reply))
        .await
        .expect("the server closes the connection")
        .unwrap();
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains("use https://"), "{text}");
    assert_eq!(origin.stats().http.connection_errors, 1);
    token.cancel();
}

#[tokio::test]
async fn a_silent_client_on_a_tls_port_is_closed_after_the_header_timeout() {
    let id = Identity::made(&[]).unwrap();
    let limits = HttpLimits {
        header_timeout: Duration::from_millis(200),
        ..HttpLimits::default()
    };
    let (_www, origin, token) = origin("127.0.0.1:0", Some(&id), limits).await;
    let mut s = TcpStream::connect(origin.http_addr()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut reply))
        .await
        .expect("the server closes the connection")
        .unwrap();
    assert!(reply.is_empty());
    assert_eq!(origin.stats().http.connection_errors, 1);
    token.cancel();
}

#[test]
fn the_made_certificate_and_key_round_trip_through_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let id = Identity::made(&["example.test".into()]).unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    id.write_pem(&cert, &key).unwrap();
    let again = Identity::from_files(&cert, &key).unwrap();
    assert_eq!(again.chain, id.chain);
    let ca = id
        .write_ca(&dir.path().join("sub/ca.pem"))
        .unwrap()
        .unwrap();
    assert!(Path::new(&ca).exists());
    let _ = Arc::new(tls::client_config(&Trust::CaFile(ca), &[tls::ALPN_H2]).unwrap());
}

#[test]
fn bad_certificate_files_exit_2_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    for command in ["serve", "proxy"] {
        let out = assert_cmd::Command::cargo_bin("netrun")
            .unwrap()
            .args([command, "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(&junk)
            .arg("--tls-key")
            .arg(&junk)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("junk.pem") && err.contains("BEGIN CERTIFICATE"),
            "{err}"
        );
    }
    let out = assert_cmd::Command::cargo_bin("netrun")
        .unwrap()
        .args(["probe", "http", "https://127.0.0.1:1/", "--ca"])
        .arg(&junk)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
