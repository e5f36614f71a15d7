//! The upstream transport: one exchange with the origin over the keep-alive
//! pool, across the proxy ↔ origin link, with its deadline and the errors a
//! client is told (502, 504, 413).

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Uri};
use http_body::Body as _;
use http_body_util::BodyExt;

use crate::interim::Interim;
use crate::proxy::impair::{Direction, Impairment};
use crate::proxy::DelayTimer;
use crate::server::{bump, empty, is_body_too_large};
use crate::server::{closing, text, Body, BoxError};

use super::body::{PacedBody, UpstreamBody};
use super::headers::{label, path_and_query, strip_hop_by_hop, upstream_request_headers};
use super::{Label, ProxyService};
use crate::proxy::cache::CacheStatus;

/// A failed upstream exchange, ready to become a 502 or 504.
#[derive(Debug, Clone)]
pub(super) struct UpstreamError {
    pub(super) status: StatusCode,
    pub(super) message: String,
}

impl UpstreamError {
    /// The upstream gave no answer at all (refused, reset, silent): the
    /// cache is disconnected, so RFC 9111 §4.2.4 lets it answer stale.
    pub(super) fn disconnected(&self) -> bool {
        matches!(
            self.status,
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT
        )
    }
}

impl ProxyService {
    /// Forwards a request without the cache, streaming both bodies.
    pub(super) async fn forward(
        &self,
        parts: Parts,
        body: Body,
        lbl: Label,
        status: CacheStatus,
    ) -> (Response<Body>, Label) {
        let headers = upstream_request_headers(&parts.headers, parts.version, &self.via_token);
        let deadline = tokio::time::Instant::now() + self.timeout;
        let resp = match self
            .send(
                parts.method.clone(),
                path_and_query(&parts.uri),
                headers,
                body,
                deadline,
                parts.extensions.get::<Interim>(),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return (label(error_response(&e), lbl, status), lbl),
        };
        let (mut rparts, rbody) = resp.into_parts();
        strip_hop_by_hop(&mut rparts.headers);
        let body = self.upstream_body(VecDeque::new(), rbody);
        (label(Response::from_parts(rparts, body), lbl, status), lbl)
    }

    pub(super) fn stream(
        &self,
        rparts: http::response::Parts,
        prefix: VecDeque<Bytes>,
        rest: Body,
        status: CacheStatus,
    ) -> Response<Body> {
        let body = self.upstream_body(prefix, rest);
        label(Response::from_parts(rparts, body), Label::Miss, status)
    }

    fn upstream_body(&self, prefix: VecDeque<Bytes>, rest: Body) -> Body {
        UpstreamBody::new(prefix, rest, self.timeout, self.counters.clone()).boxed()
    }

    pub(super) async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: Body,
        deadline: tokio::time::Instant,
        interim: Option<&Interim>,
    ) -> Result<Response<Body>, UpstreamError> {
        bump(&self.counters.upstream_fetches);
        let uri: Uri =
            match format!("{}://{}{}", self.scheme, self.authority, path_and_query).parse() {
                Ok(u) => u,
                Err(e) => {
                    return Err(UpstreamError {
                        status: StatusCode::BAD_REQUEST,
                        message: format!("request target `{path_and_query}` is not valid: {e}"),
                    })
                }
            };
        if let Ok(host) = HeaderValue::from_str(&self.authority) {
            headers.insert(header::HOST, host);
        }
        // Without a body the request can be sent again as it was: kept for
        // an HTTP/2 upstream that refuses it unprocessed.
        let again = body
            .is_end_stream()
            .then(|| (method.clone(), uri.clone(), headers.clone()));
        let req = upstream_request(method, uri, headers, body, interim);
        // The link's delays count against the deadline: the proxy's timer
        // runs from when it sends, as it would over a real path.
        let mut sent = tokio::time::timeout_at(deadline, self.over_origin_link(req)).await;
        if let (Ok(Err(e)), Some((method, uri, headers))) = (&sent, again) {
            if crate::http2::refused_unprocessed(e) || crate::http2::canceled_unsent(e) {
                // RFC 9113 §8.7: a stream above a GOAWAY's last stream id,
                // or reset with REFUSED_STREAM, was never processed, so it
                // is safe to send once more, on another connection (the
                // pool no longer hands out the one that went away); so is
                // one the client never sent (a connection that went away
                // before it was written: hyper's "canceled").
                bump(&self.counters.upstream_retries);
                tracing::debug!(target: "netrun::proxy", "upstream {} refused the request unprocessed ({}); sending it again", self.upstream, describe(e));
                let req = upstream_request(method, uri, headers, empty(), interim);
                sent = tokio::time::timeout_at(deadline, self.over_origin_link(req)).await;
            }
        }
        let result = match sent {
            Ok(Ok(resp)) => return Ok(resp),
            Err(_) => UpstreamError {
                status: StatusCode::GATEWAY_TIMEOUT,
                message: format!(
                    "upstream {} did not answer within {}",
                    self.upstream,
                    crate::units::format_duration(self.timeout)
                ),
            },
            // The client's body went over --max-body-size while it was being
            // forwarded (chunked, so not refused up front): the client's fault.
            Ok(Err(e)) if is_body_too_large(&e) => {
                tracing::warn!(target: "netrun::proxy", limit = self.max_body, "request body too large (413)");
                return Err(UpstreamError {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    message: format!("request body larger than {} bytes", self.max_body),
                });
            }
            Ok(Err(e)) => UpstreamError {
                status: StatusCode::BAD_GATEWAY,
                message: format!("upstream {} {}", self.upstream, describe(&e)),
            },
        };
        bump(&self.counters.upstream_errors);
        tracing::warn!(target: "netrun::proxy", "{}", result.message);
        Err(result)
    }

    /// One exchange with the upstream across the proxy ↔ origin link: the
    /// request waits for the link's delay going up, the response head for
    /// its delay coming back, and the body is paced at the link's rate. Only
    /// upstream traffic calls this, so a cache hit never pays the link.
    async fn over_origin_link(
        &self,
        req: Request<Body>,
    ) -> Result<Response<Body>, hyper_util::client::legacy::Error> {
        let link = &self.origin_link;
        link_delay(
            link,
            Direction::ToUpstream,
            &self.counters.origin_link_http_delayed,
            &self.delays,
        )
        .await;
        let resp = self.client.request(req).await?;
        link_delay(
            link,
            Direction::ToClient,
            &self.counters.origin_link_http_delayed,
            &self.delays,
        )
        .await;
        let resp = resp.map(|body| body.map_err(BoxError::from).boxed());
        Ok(if link.paces_http_bodies(Direction::ToClient) {
            let link = link.clone();
            let delays = self.delays.clone();
            resp.map(|body| PacedBody::new(body, link, delays).boxed())
        } else {
            resp
        })
    }
}

/// The request to the upstream; 1xx from the upstream go on to the client
/// (RFC 9110 §15.2), hop-by-hop headers removed; they are never stored.
fn upstream_request(
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    interim: Option<&Interim>,
) -> Request<Body> {
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    if let Some(interim) = interim.cloned() {
        hyper::ext::on_informational(&mut req, move |res| {
            let mut headers = res.headers().clone();
            strip_hop_by_hop(&mut headers);
            interim.send(res.status(), &headers);
        });
    }
    req
}

/// Holds an HTTP message back for `link`'s delay (and jitter) going `dir`,
/// counting it in `delayed` when it waits. The wait is the precise timer's.
pub(super) async fn link_delay(
    link: &Arc<dyn Impairment>,
    dir: Direction,
    delayed: &AtomicU64,
    delays: &DelayTimer,
) {
    let delay = link.http_delay(dir);
    if !delay.is_zero() {
        bump(delayed);
        delays.sleep(delay).await;
    }
}

pub(super) fn error_response(e: &UpstreamError) -> Response<Body> {
    let resp = text(e.status, format!("{}\n", e.message));
    if e.status == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the client's body was not read.
        closing(resp)
    } else {
        resp
    }
}

/// Says what went wrong with an upstream exchange, from the error chain.
pub(super) fn describe(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut io_kind = None;
    let mut incomplete = false;
    let mut handshake = None;
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            incomplete |= h.is_incomplete_message();
        }
        if let Some(h) = s.downcast_ref::<super::connector::HandshakeError>() {
            handshake = Some(h.reason());
        }
        source = s.source();
    }
    use std::io::ErrorKind::*;
    let cause = chain.join(": ");
    if let Some(reason) = handshake {
        return reason;
    }
    match io_kind {
        Some(ConnectionRefused) => "refused the connection".to_string(),
        Some(ConnectionReset | ConnectionAborted | BrokenPipe) => {
            format!("reset the connection ({cause})")
        }
        _ if incomplete => "closed the connection before answering".to_string(),
        _ if e.is_connect() => format!("could not be reached ({cause})"),
        _ => format!("failed ({cause})"),
    }
}
