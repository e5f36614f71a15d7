//! Header rules of a forwarding proxy: hop-by-hop fields stripped both ways
//! (RFC 9110 §7.6.1), `Via` added and recognised, body framing removed from a
//! request sent without its body, and the labels (`X-Cache`, `Cache-Status`).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, Uri, Version};

use crate::server::Body;

use crate::http_fields::{list_members, split_list_with_comments};

use super::{Label, CACHE_STATUS, X_CACHE};
use crate::proxy::cache::CacheStatus;

pub(super) fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
pub(super) const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

/// Removes hop-by-hop headers, including those the `Connection` header names
/// and every `Proxy-*` header. Runs on every request, so the usual case (none
/// of them present) costs look-ups of known names, no allocation.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = list_members(headers, header::CONNECTION)
            .into_iter()
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            // Never let a client strip the framing of the message itself.
            .filter(|n| n != header::CONTENT_LENGTH && n != header::HOST)
            .collect();
        for n in named {
            headers.remove(n);
        }
    }
    for n in &HOP_BY_HOP {
        headers.remove(n);
    }
    if headers.keys().any(|k| k.as_str().starts_with("proxy-")) {
        let proxy: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("proxy-"))
            .cloned()
            .collect();
        for n in proxy {
            headers.remove(n);
        }
    }
}

/// Removes what describes a request body, for a request sent upstream
/// without one: otherwise the upstream would wait for a body that never comes.
pub(super) fn strip_body_framing(headers: &mut HeaderMap) {
    for h in [
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONTENT_TYPE,
        header::EXPECT,
    ] {
        headers.remove(h);
    }
}

pub(super) fn upstream_request_headers(
    client: &HeaderMap,
    version: Version,
    token: &str,
) -> HeaderMap {
    let mut headers = client.clone();
    strip_hop_by_hop(&mut headers);
    let v = match version {
        Version::HTTP_10 => "1.0",
        _ => "1.1",
    };
    if let Ok(via) = HeaderValue::from_str(&format!("{v} {token}")) {
        headers.append(header::VIA, via);
    }
    headers
}

/// Whether a `Via` entry was added by the proxy named `token`
/// (`protocol received-by [comment]`, comma-separated, several lines).
pub(super) fn carries_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::VIA)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_list_with_comments)
        .filter_map(|entry| entry.split_whitespace().nth(1))
        .any(|by| by.eq_ignore_ascii_case(token))
}

/// Adds `X-Cache` and `Cache-Status` (RFC 9211) to a response (`Via` is
/// added by `handle`, with this instance's token).
pub(super) fn label(mut resp: Response<Body>, lbl: Label, status: CacheStatus) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert(X_CACHE, HeaderValue::from_static(lbl.as_str()));
    // Built from tokens and numbers only, so always a valid field value.
    if let Ok(v) = HeaderValue::from_str(&status.to_string()) {
        h.append(CACHE_STATUS, v);
    }
    resp
}
