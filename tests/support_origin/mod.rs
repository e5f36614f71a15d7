//! Helpers for the origin tests: a temporary copy of `www/` with a secret
//! file just outside it, an in-process origin on port 0, and small HTTP
//! clients (hyper for well-formed requests, raw TCP for everything else).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[path = "../common/http.rs"]
mod http_client;
pub use http_client::*;

use netrun::origin::{self, OriginConfig, OriginHandle};
use netrun::server::HttpLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// A temporary folder holding `secret.txt` and a copy of the repository's
/// `www/` (with symlinks pointing out of it).
pub struct Site {
    pub dir: tempfile::TempDir,
    pub www: PathBuf,
    /// A string that only exists in `secret.txt`, outside www.
    pub marker: String,
}

pub fn site() -> Site {
    let dir = tempfile::tempdir().expect("temp dir");
    let www = dir.path().join("www");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("www"), &www);
    let marker = format!("SECRET-MARKER-{}-{:x}", std::process::id(), rand_u64());
    std::fs::write(dir.path().join("secret.txt"), format!("{marker}\n")).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("../secret.txt", www.join("link-secret.txt")).unwrap();
        std::os::unix::fs::symlink("..", www.join("outside")).unwrap();
    }
    Site { dir, www, marker }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// An origin running in-process on 127.0.0.1:0.
pub struct Origin {
    pub handle: OriginHandle,
    pub token: CancellationToken,
}

impl Origin {
    pub fn http(&self) -> SocketAddr {
        self.handle.http_addr()
    }

    pub fn udp(&self) -> SocketAddr {
        self.handle.udp_addr()
    }
}

pub async fn start(www: &Path, limits: HttpLimits) -> Origin {
    start_with_clock(www, limits, netrun::clock::system()).await
}

/// [`start`] with the origin reading the time from `clock`.
pub async fn start_with_clock(
    www: &Path,
    limits: HttpLimits,
    clock: std::sync::Arc<dyn netrun::clock::Clock>,
) -> Origin {
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let token = CancellationToken::new();
    let config = OriginConfig {
        www: www.to_path_buf(),
        limits,
        max_age: None,
    };
    let handle = origin::spawn_with_clock(http, udp, config, clock, token.clone())
        .await
        .expect("origin starts");
    Origin { handle, token }
}

/// A site and an origin serving it with default limits.
pub async fn start_site() -> (Site, Origin) {
    let site = site();
    let origin = start(&site.www, HttpLimits::default()).await;
    (site, origin)
}

/// Writes `bytes` on a new connection and reads until the server closes it
/// (or resets it); returns what arrived.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_until_closed(&mut stream).await
}

pub async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(STEP, read_all)
        .await
        .expect("server closes the connection in time");
    out
}

/// The status code of a raw HTTP/1.1 response, 0 if there is none.
pub fn status_of(response: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(response);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}
