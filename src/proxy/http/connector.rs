//! The proxy's connections to its upstream: TCP, then TLS for an https://
//! upstream (ALPN picks HTTP/2 or HTTP/1.1). The keep-alive pool above it
//! reuses each connection, so the handshakes counted here are per upstream
//! connection, never per request. A handshake that fails says why
//! (`HandshakeError`); one that stalls ends at the upstream deadline.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::proxy::Counters;
use crate::server::{bump, BoxError};
use crate::tls::ClientTls;

/// Opens upstream connections for hyper's pool: TCP, then TLS when set.
#[derive(Clone)]
pub(super) struct Connector {
    tcp: HttpConnector,
    /// The upstream's address as a URI: connections go there whatever name
    /// requests carry (a TLS name need not resolve).
    address: Uri,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Longest a TLS handshake may take (the upstream deadline).
    handshake_timeout: Duration,
    counters: Arc<Counters>,
}

impl Connector {
    pub(super) fn new(
        address: std::net::SocketAddr,
        tls: Option<&ClientTls>,
        timeout: Duration,
        counters: Arc<Counters>,
    ) -> Connector {
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        // The scheme says how requests look (`:scheme` on HTTP/2); whether
        // to speak TLS is this connector's setting, not the URI's.
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(timeout));
        let address = Uri::builder()
            .scheme("http")
            .authority(address.to_string())
            .path_and_query("/")
            .build()
            .expect("a socket address is a valid authority");
        Connector {
            tcp,
            address,
            tls: tls.map(|t| (TlsConnector::from(t.config.clone()), t.name.clone())),
            handshake_timeout: timeout,
            counters,
        }
    }
}

/// A TLS handshake with the upstream failed: kept apart from other I/O
/// errors so the 502 says which certificate check (or protocol) failed.
#[derive(Debug)]
pub(super) struct HandshakeError(pub(super) io::Error);

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS handshake: {}", self.0)
    }
}

impl std::error::Error for HandshakeError {}

impl HandshakeError {
    /// What a client is told, by the class of the failure.
    pub(super) fn reason(&self) -> String {
        match crate::tls::failure_class(&self.0) {
            "tls_expired" => "presented a certificate that has expired or is not yet valid".into(),
            "tls_name" => "presented a certificate for another name".into(),
            "tls_untrusted" => "presented a certificate no trusted CA signed (give its CA with --upstream-ca, or --upstream-insecure when only measuring)".into(),
            "tls_not_tls" => "does not speak TLS (is it an http:// upstream?)".into(),
            "reset" => format!("closed the connection during the TLS handshake ({})", self.0),
            _ => format!("failed the TLS handshake ({})", self.0),
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<UpstreamStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(BoxError::from)
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let connecting = self.tcp.call(self.address.clone());
        let tls = self.tls.clone();
        let timeout = self.handshake_timeout;
        let counters = self.counters.clone();
        Box::pin(async move {
            let tcp = connecting.await.map_err(BoxError::from)?.into_inner();
            bump(&counters.upstream_connections);
            let Some((connector, name)) = tls else {
                return Ok(TokioIo::new(UpstreamStream::Plain(tcp)));
            };
            let stream = match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(HandshakeError(e).into()),
                Err(_) => {
                    return Err(HandshakeError(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no handshake within {}",
                            crate::units::format_duration(timeout)
                        ),
                    ))
                    .into())
                }
            };
            bump(&counters.upstream_tls_handshakes);
            Ok(TokioIo::new(UpstreamStream::Tls(Box::new(stream))))
        })
    }
}

/// One upstream connection, clear text or TLS.
pub(super) enum UpstreamStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection for UpstreamStream {
    fn connected(&self) -> Connected {
        match self {
            UpstreamStream::Plain(s) => s.connected(),
            UpstreamStream::Tls(s) => {
                let (tcp, session) = s.get_ref();
                let connected = tcp.connected();
                if session.alpn_protocol() == Some(crate::tls::ALPN_H2) {
                    connected.negotiated_h2()
                } else {
                    connected
                }
            }
        }
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            UpstreamStream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpstreamStream::Plain(s) => s.is_write_vectored(),
            UpstreamStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
