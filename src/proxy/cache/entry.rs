//! One stored response: its age and freshness on the monotonic clock, the
//! `Vary` variant it answers, and its refresh after a 304.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use super::control::CacheControl;
use super::freshness::{age_header, freshness_lifetime, http_date, initial_age};
use crate::http_fields::split_list;

/// One stored response.
#[derive(Debug, Clone)]
pub struct CachedResponse {
    pub status: StatusCode,
    /// Response headers, hop-by-hop ones and `Age` already removed (the age
    /// lives in `initial_age`; a stored `Age` would be counted twice).
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it was received (or last revalidated), on the monotonic clock.
    pub stored_at: Instant,
    /// Its age when received (`Age`, `Date` and the request's duration).
    pub initial_age: Duration,
    /// How long it is fresh, counted from its generation (zero for
    /// `no-cache`: every use is revalidated).
    pub lifetime: Duration,
    /// The request headers named by `Vary`, as the storing request sent them
    /// to the origin: each the combined value of all its lines, normalised
    /// (see [`vary_value`]).
    pub vary: Vec<(HeaderName, Option<Vec<u8>>)>,
    /// The directives that govern it ([`CacheControl::for_response`]): when
    /// it may be served stale.
    pub cc: CacheControl,
    /// Its head as a fresh hit goes on the wire, made on the first hit the
    /// HTTP/1.1 fast path answers from it.
    pub hit_head: OnceLock<HitHead>,
}

/// The head of a fresh hit on this entry as written on the wire, serialized
/// once: the status line and header lines with two gaps, where each hit's
/// `Age` and `Cache-Status` values go. The HTTP side builds it (it knows the
/// order hyper writes fields in).
#[derive(Debug, Clone)]
pub struct HitHead {
    /// The lines, without the gaps' values.
    pub bytes: Box<[u8]>,
    /// Offset in `bytes` where the `Age` value goes.
    pub age_at: usize,
    /// Offset in `bytes` where this cache's `Cache-Status` value goes.
    pub status_at: usize,
    /// Whether the lines include a `date` line (then nobody adds one).
    pub dated: bool,
}

impl HitHead {
    /// Appends the head with `age` and `status` in their gaps.
    pub fn write(&self, out: &mut Vec<u8>, age: &[u8], status: &[u8]) {
        let ((first, a), (second, b)) = if self.age_at <= self.status_at {
            ((self.age_at, age), (self.status_at, status))
        } else {
            ((self.status_at, status), (self.age_at, age))
        };
        out.extend_from_slice(&self.bytes[..first]);
        out.extend_from_slice(a);
        out.extend_from_slice(&self.bytes[first..second]);
        out.extend_from_slice(b);
        out.extend_from_slice(&self.bytes[second..]);
    }
}

/// Fixed bookkeeping cost per entry, so many tiny entries still count.
const ENTRY_OVERHEAD: u64 = 128;

impl CachedResponse {
    /// Builds an entry from a complete response.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        request_headers: &HeaderMap,
        default_ttl: Option<Duration>,
        request_time: SystemTime,
        response_time: SystemTime,
        now: Instant,
    ) -> Self {
        let cc = CacheControl::for_response(&headers);
        let lifetime = if cc.no_cache {
            Duration::ZERO
        } else {
            freshness_lifetime(status, &cc, &headers, default_ttl, response_time)
        };
        let initial_age = initial_age(
            age_header(&headers),
            headers.get(header::DATE).and_then(http_date),
            request_time,
            response_time,
        );
        // The received Age is folded into initial_age; keeping the header
        // would count it again after a 304 refresh merges headers.
        let mut headers = headers;
        headers.remove(header::AGE);
        // Fields named by `no-cache="..."` may not be served unrevalidated,
        // and those named by `private="..."` not stored by a shared cache:
        // the stored copy goes without both.
        for name in cc.no_cache_fields.iter().chain(&cc.private_fields) {
            headers.remove(name);
        }
        let vary = vary_names(&headers)
            .into_iter()
            .map(|name| {
                let value = vary_value(request_headers, &name);
                (name, value)
            })
            .collect();
        CachedResponse {
            status,
            headers,
            body,
            stored_at: now,
            initial_age,
            lifetime,
            vary,
            cc,
            hit_head: OnceLock::new(),
        }
    }

    /// How long it has been stale (zero while fresh).
    pub fn staleness(&self, now: Instant) -> Duration {
        self.age(now).saturating_sub(self.lifetime)
    }

    /// Whether a stale entry may be served while a background request
    /// revalidates it (RFC 5861 §3).
    pub fn may_serve_while_revalidating(&self, now: Instant) -> bool {
        !self.cc.forbids_stale()
            && self
                .cc
                .stale_while_revalidate
                .is_some_and(|s| self.staleness(now) < Duration::from_secs(s))
    }

    /// Whether a stale entry may stand in for an upstream that failed.
    /// `disconnected`: the upstream could not be reached at all, which RFC
    /// 9111 §4.2.4 lets a cache answer stale unless the response forbids it;
    /// otherwise (a 500, 502, 503 or 504) only `stale-if-error` allows it,
    /// from the response or the request (RFC 5861 §4), within its window.
    pub fn may_serve_on_error(
        &self,
        request_cc: &CacheControl,
        now: Instant,
        disconnected: bool,
    ) -> bool {
        if self.cc.forbids_stale() {
            return false;
        }
        let window = match (self.cc.stale_if_error, request_cc.stale_if_error) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        match window {
            Some(s) => self.staleness(now) < Duration::from_secs(s),
            None => disconnected,
        }
    }

    /// Current age (RFC 9111 §4.2.3): initial age plus time in the cache.
    pub fn age(&self, now: Instant) -> Duration {
        self.initial_age
            .saturating_add(now.saturating_duration_since(self.stored_at))
    }

    pub fn is_fresh(&self, now: Instant) -> bool {
        self.age(now) < self.lifetime
    }

    /// Freshness left (zero when stale).
    pub fn ttl(&self, now: Instant) -> Duration {
        self.lifetime.saturating_sub(self.age(now))
    }

    /// Bytes this entry counts against the capacity: body, headers and a
    /// fixed overhead.
    pub fn weight(&self, key: &str) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len() + 4)
            .sum();
        self.body.len() as u64 + headers as u64 + key.len() as u64 + ENTRY_OVERHEAD
    }

    pub fn etag(&self) -> Option<&HeaderValue> {
        self.headers.get(header::ETAG)
    }

    pub fn last_modified(&self) -> Option<&HeaderValue> {
        self.headers.get(header::LAST_MODIFIED)
    }

    /// Whether a later request selects this variant (same `Vary` headers,
    /// compared as RFC 9111 §4.1 says: combined lines, list whitespace
    /// ignored). `request_headers` must be those the origin would see.
    pub fn matches_vary(&self, request_headers: &HeaderMap) -> bool {
        self.vary
            .iter()
            .all(|(name, value)| vary_value(request_headers, name) == *value)
    }

    /// The entry after a 304 (RFC 9111 §4.3.4): the 304's headers replace
    /// the stored ones of the same name (except framing), and the freshness
    /// clock restarts.
    #[allow(clippy::too_many_arguments)]
    pub fn refreshed(
        &self,
        not_modified_headers: &HeaderMap,
        request_headers: &HeaderMap,
        default_ttl: Option<Duration>,
        request_time: SystemTime,
        response_time: SystemTime,
        now: Instant,
    ) -> Self {
        let mut headers = self.headers.clone();
        for name in not_modified_headers.keys() {
            if name == header::CONTENT_LENGTH || name == header::CONTENT_ENCODING {
                continue;
            }
            headers.remove(name);
            for v in not_modified_headers.get_all(name) {
                headers.append(name.clone(), v.clone());
            }
        }
        CachedResponse::new(
            self.status,
            headers,
            self.body.clone(),
            request_headers,
            default_ttl,
            request_time,
            response_time,
            now,
        )
    }
}

/// The value of a header named by `Vary`, normalised the way RFC 9111 §4.1
/// allows: all its lines combined, and whitespace around list commas
/// dropped, so `a, b` on one line equals `a` and `b` on two. A value that is
/// not text is compared byte for byte, lines joined by commas.
pub fn vary_value(headers: &HeaderMap, name: &HeaderName) -> Option<Vec<u8>> {
    let lines: Vec<&HeaderValue> = headers.get_all(name).iter().collect();
    if lines.is_empty() {
        return None;
    }
    let text: Result<Vec<&str>, _> = lines.iter().map(|v| v.to_str()).collect();
    Some(match text {
        Ok(text) => text
            .into_iter()
            .flat_map(split_list)
            .collect::<Vec<_>>()
            .join(",")
            .into_bytes(),
        Err(_) => lines
            .iter()
            .map(|v| v.as_bytes())
            .collect::<Vec<_>>()
            .join(&b","[..]),
    })
}

fn vary_names(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_list)
        .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
        .collect()
}
