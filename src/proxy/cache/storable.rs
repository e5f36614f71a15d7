//! Whether a response may be stored by this shared cache (RFC 9111 §3).

use http::header::{self, HeaderMap};
use http::StatusCode;

use super::control::CacheControl;
use crate::http_fields::split_list;

/// Why a response was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// `no-store` in the request or the response.
    NoStore,
    /// `private`: meant for one user, and this is a shared cache.
    Private,
    /// A status the cache never stores (206, 304, 1xx) or one that needs
    /// explicit freshness it did not have.
    Status(u16),
    /// The body is larger than the per-entry bound.
    TooLarge,
    /// `Vary: *` can never match a later request.
    VaryAll,
    /// The request carried `Authorization` and the response did not say it
    /// may be shared (`public`, `must-revalidate` or `s-maxage`, RFC 9111 §3.5).
    Authorization,
    /// `Set-Cookie`: a session handed to one client must never be replayed
    /// to another (nginx and Varnish do not store these either).
    SetCookie,
    /// The origin's `Connection` header names a header that decides caching
    /// (`Cache-Control`, `Vary`, `Set-Cookie`...): stripping it as hop-by-hop
    /// would change what the origin said, so the response is not stored.
    HopByHopCacheHeader,
}

/// Headers that decide whether and how a response is shared; an origin that
/// lists one in `Connection` gets its response forwarded, never stored.
const CACHING_HEADERS: [&str; 9] = [
    "cache-control",
    "cdn-cache-control",
    "netrun-cache-control",
    "surrogate-control",
    "pragma",
    "expires",
    "vary",
    "set-cookie",
    "set-cookie2",
];

/// The parts of the verdict that depend on whom a response is meant for,
/// not on its status or size: also applied to a 304 that refreshes an entry.
/// `response_headers` are as the origin sent them, hop-by-hop ones included.
pub fn shareable(
    status: StatusCode,
    request: &RequestFacts,
    response_cc: &CacheControl,
    response_headers: &HeaderMap,
) -> Result<(), NotStored> {
    // must-understand lets a cache that knows the status ignore no-store.
    let understood = status.canonical_reason().is_some();
    let no_store = response_cc.no_store && !(response_cc.must_understand && understood);
    if request.cc.no_store || no_store {
        return Err(NotStored::NoStore);
    }
    if response_cc.private {
        return Err(NotStored::Private);
    }
    if request.authorization
        && !(response_cc.public || response_cc.must_revalidate || response_cc.s_maxage.is_some())
    {
        return Err(NotStored::Authorization);
    }
    if response_headers.contains_key(header::SET_COOKIE)
        || response_headers.contains_key("set-cookie2")
    {
        return Err(NotStored::SetCookie);
    }
    let names_caching_header = response_headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_list)
        .any(|n| CACHING_HEADERS.iter().any(|c| c.eq_ignore_ascii_case(n)));
    if names_caching_header {
        return Err(NotStored::HopByHopCacheHeader);
    }
    Ok(())
}

/// Statuses that may be stored and given heuristic freshness when the origin
/// gives none (RFC 9110 §15.1's "heuristically cacheable" list).
pub(super) fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Whether the response says how long it is fresh (RFC 9111 §4.2.1).
fn explicit_freshness(cc: &CacheControl, headers: &HeaderMap) -> bool {
    cc.max_age.is_some()
        || cc.s_maxage.is_some()
        || (!cc.targeted && headers.contains_key(header::EXPIRES))
}

/// Decides whether a GET response may be stored by this shared cache
/// (RFC 9111 §3). `response_cc` is [`CacheControl::for_response`]'s;
/// `response_headers` are as the origin sent them (before hop-by-hop
/// stripping); `body_len` is the body size if known; `max_entry` the
/// per-entry bound.
pub fn storable(
    status: StatusCode,
    request: &RequestFacts,
    response_cc: &CacheControl,
    response_headers: &HeaderMap,
    body_len: Option<u64>,
    max_entry: u64,
) -> Result<(), NotStored> {
    shareable(status, request, response_cc, response_headers)?;
    let code = status.as_u16();
    // Never: partial content (ranges are served from complete responses),
    // 304 (no body), 1xx (not final).
    if code == 206 || code == 304 || status.is_informational() {
        return Err(NotStored::Status(code));
    }
    let explicit = explicit_freshness(response_cc, response_headers);
    if !explicit && !heuristically_cacheable(status) && !response_cc.public {
        return Err(NotStored::Status(code));
    }
    if response_headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_list)
        .any(|v| v == "*")
    {
        return Err(NotStored::VaryAll);
    }
    if body_len.is_some_and(|n| n > max_entry) {
        return Err(NotStored::TooLarge);
    }
    Ok(())
}

/// What the storing request tells the rules.
#[derive(Debug, Default, Clone)]
pub struct RequestFacts {
    /// Its `Cache-Control` (with `Pragma: no-cache`).
    pub cc: CacheControl,
    /// It carried `Authorization`.
    pub authorization: bool,
}
