//! A small HTTP/1.1 test client on hyper, shared by the origin and proxy
//! test helpers (included with `#[path]`): one request, read whole, bounded
//! in time.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Upper bound for one step of a test (a request, a read): generous, so a
/// slow shared machine does not fail a test that is merely slow.
pub const STEP: Duration = Duration::from_secs(10);

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A header's value, or "" when it is absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header is text"))
            .unwrap_or("")
    }

    pub fn x_cache(&self) -> &str {
        self.header("x-cache")
    }
}

/// A keep-alive HTTP/1.1 client connection.
pub async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

/// Sends one request on an open connection and reads the whole answer.
/// `Host` is `localhost` unless `headers` names one.
pub async fn send_on(
    sender: &mut SendRequest<Empty<Bytes>>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(method).uri(target);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", "localhost");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let fut = async {
        sender.ready().await.expect("connection ready");
        let resp = sender
            .send_request(req.body(Empty::new()).expect("request"))
            .await
            .expect("response");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    };
    tokio::time::timeout(STEP, fut)
        .await
        .expect("reply in time")
}

/// One request on a fresh connection, with `Host` set to `addr`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let host = addr.to_string();
    let mut all = vec![("host", host.as_str())];
    all.extend(
        headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("host")),
    );
    if let Some(h) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("host")) {
        all[0] = *h;
    }
    let mut sender = connect(addr).await;
    send_on(&mut sender, method, target, &all).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[]).await
}
