//! How a stored response answers a request, without sockets: whether the
//! request may use it unrevalidated (RFC 9111 §5.2.1), the client's own
//! conditionals, a single byte range, and whether a HEAD's `200` still
//! describes the stored body.

use std::time::{Duration, Instant, SystemTime};

use http::header::{self, HeaderMap};

use super::{http_date, CacheControl, CachedResponse};
use crate::http_fields;

/// An entry the request may use without going upstream: fresh enough for
/// its `max-age` and `min-fresh`, or stale within its `max-stale` when the
/// response does not forbid that (RFC 9111 §5.2.1).
pub fn usable(e: &CachedResponse, req_cc: &CacheControl, now: Instant) -> bool {
    let secs = Duration::from_secs;
    if req_cc.no_cache || req_cc.max_age.is_some_and(|max| e.age(now) >= secs(max)) {
        return false;
    }
    if e.is_fresh(now) {
        return req_cc.min_fresh.map_or(true, |m| e.ttl(now) >= secs(m));
    }
    req_cc
        .max_stale
        .is_some_and(|m| !e.cc.forbids_stale() && e.staleness(now) <= secs(m))
}

/// Whether a `200` to a HEAD describes the stored body: no validator or
/// length it carries differs from the stored one (RFC 9111 §4.3.5).
pub fn same_representation(e: &CachedResponse, head: &HeaderMap) -> bool {
    [header::ETAG, header::LAST_MODIFIED, header::CONTENT_LENGTH]
        .iter()
        .all(|name| match (head.get(name), e.headers.get(name)) {
            (Some(new), Some(old)) => new == old,
            (Some(new), None) if name == header::CONTENT_LENGTH => {
                new.to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    == Some(e.body.len())
            }
            _ => true,
        })
}

/// Request `Cache-Control`, with HTTP/1.0 `Pragma: no-cache` as `no-cache`.
pub fn request_cache_control(headers: &HeaderMap) -> CacheControl {
    let mut cc = CacheControl::parse(headers);
    if !headers.contains_key(header::CACHE_CONTROL)
        && headers.get_all(header::PRAGMA).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.to_ascii_lowercase().contains("no-cache"))
        })
    {
        cc.no_cache = true;
    }
    cc
}

/// Whether the client's own conditionals say it already has `e` (the
/// shared rules of [`crate::http_fields::not_modified`]), `now` being the
/// wall clock. Without `Last-Modified`, the stored `Date` stands in for
/// `If-Modified-Since` (RFC 9111 §4.3.2).
pub fn not_modified(req: &HeaderMap, e: &CachedResponse, now: SystemTime) -> bool {
    // Most hits ask nothing conditional: skip reading the stored validators.
    if !req.contains_key(header::IF_NONE_MATCH) && !req.contains_key(header::IF_MODIFIED_SINCE) {
        return false;
    }
    let etag = e.etag().and_then(|v| v.to_str().ok());
    let modified = e
        .last_modified()
        .or_else(|| e.headers.get(header::DATE))
        .and_then(http_date);
    http_fields::not_modified(req, etag, modified, now)
}

/// What a GET's `Range` asks of a stored complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No range, one that is ignored (several ranges, bad syntax, another
    /// unit, an `If-Range` that does not match): the whole response.
    Full,
    /// Bytes `first..=last`.
    Part(usize, usize),
    /// A range past the end: 416.
    Unsatisfiable,
}

/// Reads a single `bytes=` range (RFC 9110 §14.1.2): `a-b`, `a-` or `-n`,
/// honoured only when `If-Range`, if sent, names the stored response by
/// its strong ETag or exact `Last-Modified` (§13.1.5).
pub fn requested_range(req: &HeaderMap, e: &CachedResponse) -> RangeAnswer {
    let Some(spec) = req.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeAnswer::Full;
    };
    let etag = e.etag().and_then(|v| v.to_str().ok());
    let modified = e.last_modified().and_then(http_date);
    if !http_fields::if_range_holds(req, etag, modified) {
        return RangeAnswer::Full;
    }
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    let Some((a, b)) = set.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let len = e.body.len();
    let num = |t: &str| -> Option<usize> {
        let t = t.trim();
        (!t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse().unwrap_or(usize::MAX))
    };
    let (first, last) = match (num(a), num(b), b.trim().is_empty()) {
        (None, Some(n), _) if a.trim().is_empty() => {
            if n == 0 || len == 0 {
                return RangeAnswer::Unsatisfiable;
            }
            (len.saturating_sub(n), len - 1)
        }
        (Some(f), None, true) => (f, len.saturating_sub(1)),
        (Some(f), Some(l), _) if l >= f => (f, l.min(len.saturating_sub(1))),
        _ => return RangeAnswer::Full,
    };
    if first >= len {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Part(first, last)
}

#[cfg(test)]
mod tests;
