//! Fresh cache hits answered by the server's clear-text HTTP/1.1 fast path
//! ([`Handler::quick`](crate::server::Handler::quick)), without hyper: only
//! the requests hyper's path would answer from the store as it is, with the
//! same bytes, counters, policy touch and access line. Everything else
//! (conditionals, ranges, request directives, `Vary`, stale entries,
//! misses) is declined and goes through `route` as before.

use std::io::Write as _;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::{Method, StatusCode};

use crate::proxy::cache::{self, CacheStatus, CachedResponse, HitHead};
use crate::server::{add, bump, QuickBody, QuickRequest};

use super::{log_request, Label, ProxyService, CACHE_STATUS, X_CACHE};

impl ProxyService {
    /// Answers `req` from a fresh stored response, or `None` if hyper's
    /// path must (the store and the policy untouched then).
    pub(super) fn quick_hit(&self, req: &QuickRequest<'_>, out: &mut Vec<u8>) -> Option<QuickBody> {
        if !self.quick {
            return None;
        }
        let cache = self.cache.as_ref()?;
        if req.headers.iter().any(|h| changes_the_answer(h.name)) {
            return None;
        }
        let start = Instant::now();
        let key = cache::cache_key(&Method::GET, &self.authority, req.target);
        let now = self.clock.now();
        let e = cache
            .store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_if(&key, |e| served_as_stored(e, req.head, now))?;
        let head = e.hit_head.get_or_init(|| self.hit_head(&e));
        let mut age = itoa_buf();
        let age = format_u64(&mut age, e.age(now).as_secs());
        let mut status = [0u8; 64];
        let status = render(&mut status, &CacheStatus::hit(&e, now))?;
        head.write(out, age, status);
        bump(&self.counters.requests);
        bump(&self.counters.hits);
        bump(&self.counters.quick);
        let body = if req.head {
            bytes::Bytes::new()
        } else {
            add(&self.counters.bytes_from_cache, e.body.len() as u64);
            e.body.clone()
        };
        log_request(req.method(), req.target, 200, Label::Hit, start, req.peer);
        Some(if head.dated {
            QuickBody::Dated(body)
        } else {
            QuickBody::Bytes(body)
        })
    }

    /// The head hyper writes for a fresh hit on `e` (`serve_entry`, `label`
    /// and `handle` in that order: `Age`, `Content-Length`, `X-Cache`,
    /// `Cache-Status`, `Via` set on the stored fields), with the two values
    /// that change per hit left as gaps.
    fn hit_head(&self, e: &CachedResponse) -> HitHead {
        let mut fields = e.headers.clone();
        fields.insert(header::AGE, HeaderValue::from_static("0"));
        fields.insert(header::CONTENT_LENGTH, HeaderValue::from(e.body.len()));
        fields.insert(X_CACHE, HeaderValue::from_static(Label::Hit.as_str()));
        fields.append(CACHE_STATUS, HeaderValue::from_static("0"));
        if let Some(via) = &self.via {
            fields.append(header::VIA, via.clone());
        }
        // Ours is the last `Cache-Status` line: an upstream's come first.
        let statuses = fields.get_all(CACHE_STATUS).iter().count();
        let mut bytes = b"HTTP/1.1 200 OK\r\n".to_vec();
        let (mut age_at, mut status_at, mut seen, mut dated) = (0, 0, 0, false);
        for (name, value) in &fields {
            bytes.extend_from_slice(name.as_str().as_bytes());
            bytes.extend_from_slice(b": ");
            if name == header::AGE {
                age_at = bytes.len();
            } else if name == CACHE_STATUS && {
                seen += 1;
                seen == statuses
            } {
                status_at = bytes.len();
            } else {
                dated |= name == header::DATE;
                bytes.extend_from_slice(value.as_bytes());
            }
            bytes.extend_from_slice(b"\r\n");
        }
        HitHead {
            bytes: bytes.into_boxed_slice(),
            age_at,
            status_at,
            dated,
        }
    }
}

/// Whether hyper's path answers a plain GET (or HEAD, `head`) from `e` as
/// stored: a fresh `200` that selects no `Vary` variant. hyper writes an
/// empty GET body's `content-length: 0` elsewhere: left to it.
fn served_as_stored(e: &CachedResponse, head: bool, now: Instant) -> bool {
    e.status == StatusCode::OK
        && e.vary.is_empty()
        && e.is_fresh(now)
        && (head || !e.body.is_empty())
}

/// Request fields that can change what the cache answers, or whether it
/// answers at all: conditionals and ranges (`serve_entry`), the request's
/// own directives (`Cache-Control`, `Pragma`), `Via` (loop detection) and
/// credentials.
fn changes_the_answer(name: &str) -> bool {
    let n = name.as_bytes();
    (n.len() > 3 && n[..3].eq_ignore_ascii_case(b"if-"))
        || [
            &b"range"[..],
            b"cache-control",
            b"pragma",
            b"via",
            b"authorization",
        ]
        .iter()
        .any(|f| n.eq_ignore_ascii_case(f))
}

/// `Cache-Status` as `label` writes it (its `Display`), into `buf`.
fn render<'a>(buf: &'a mut [u8; 64], status: &CacheStatus) -> Option<&'a [u8]> {
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "{status}").ok()?;
    let len = usize::try_from(cursor.position()).ok()?;
    Some(&buf[..len])
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// `n` in decimal, as `HeaderValue::from(u64)` writes it.
fn format_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 99, 12345, u64::MAX] {
            let mut buf = itoa_buf();
            assert_eq!(format_u64(&mut buf, n), n.to_string().as_bytes());
        }
    }

    #[test]
    fn fields_that_change_the_answer() {
        for name in [
            "If-None-Match",
            "if-modified-since",
            "If-Range",
            "If-Match",
            "if-unmodified-since",
            "Range",
            "Cache-Control",
            "PRAGMA",
            "Via",
            "Authorization",
        ] {
            assert!(changes_the_answer(name), "{name}");
        }
        for name in ["Host", "Accept", "User-Agent", "If", "Ranges", "Connection"] {
            assert!(!changes_the_answer(name), "{name}");
        }
    }

    #[test]
    fn cache_status_renders_as_its_display() {
        let status = CacheStatus {
            hit: true,
            ttl: Some(-1234567),
            ..CacheStatus::default()
        };
        let mut buf = [0u8; 64];
        assert_eq!(
            render(&mut buf, &status).unwrap(),
            status.to_string().as_bytes()
        );
    }
}
