//! The HTTP field rules on any headers: the shared `http_fields` module
//! (list splitting, entity-tags, the conditionals, Max-Forwards) and the
//! proxy's Cache-Control (with CDN-Cache-Control and the netrun-targeted
//! field), Vary, Range, dates and Age, and the cache's storability and
//! freshness decisions. Never a panic; list members never hold the
//! separating comma; a range it serves lies inside the body.
//!
//! Input: two bytes of status, two of body length, four of seconds the
//! entry has been stored, then request header lines, an empty line, and
//! response header lines (`name: value`, one per line).

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, VARY};
use http::StatusCode;
use netrun::http_fields::{self, EntityTag};
use netrun::proxy::cache::{
    age_header, http_date, not_modified, request_cache_control, requested_range,
    same_representation, storable, usable, vary_value, CacheControl, CachedResponse, RangeAnswer,
    RequestFacts,
};

fn headers(text: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(n, v);
        }
    }
    map
}

/// The field rules origin and proxy share.
fn shared_rules(req: &HeaderMap, resp: &HeaderMap, now: SystemTime) {
    for v in req.values().chain(resp.values()) {
        let Ok(text) = v.to_str() else {
            continue;
        };
        for member in http_fields::split_list(text) {
            assert_eq!(
                member,
                member.trim(),
                "{text:?}: member {member:?} untrimmed"
            );
            let _ = EntityTag::parse(member);
        }
        let _ = http_fields::split_list_with_comments(text);
    }
    let etag = resp.get(http::header::ETAG).and_then(|v| v.to_str().ok());
    let last_modified = resp.get(http::header::LAST_MODIFIED).and_then(http_date);
    let _ = http_fields::none_match(req, etag);
    let _ = http_fields::modified_since(req, now);
    let _ = http_fields::not_modified(req, etag, last_modified, now);
    let _ = http_fields::if_range_holds(req, etag, last_modified);
    let _ = http_fields::max_forwards(req);
    // An entity-tag always matches itself weakly, and strongly unless weak.
    if let Some(tag) = etag.and_then(EntityTag::parse) {
        assert!(tag.weak_eq(&tag));
        assert_eq!(tag.strong_eq(&tag), !tag.weak);
    }
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if data.len() < 8 {
            return;
        }
        let status = StatusCode::from_u16(100 + u16::from_be_bytes([data[0], data[1]]) % 500)
            .unwrap_or(StatusCode::OK);
        let body_len = usize::from(u16::from_be_bytes([data[2], data[3]])) % 4096;
        let stored_for = u64::from(u32::from_be_bytes([data[4], data[5], data[6], data[7]]));
        let rest = &data[8..];
        let split = rest
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap_or(rest.len());
        let req = headers(&rest[..split]);
        let resp = headers(rest.get(split + 2..).unwrap_or_default());

        let req_cc = request_cache_control(&req);
        let resp_cc = CacheControl::for_response(&resp);
        let _ = CacheControl::parse(&resp);
        let facts = RequestFacts {
            cc: req_cc.clone(),
            authorization: req.contains_key(AUTHORIZATION),
        };
        let _ = storable(
            status,
            &facts,
            &resp_cc,
            &resp,
            Some(body_len as u64),
            1 << 20,
        );
        let _ = age_header(&resp);
        for v in resp.values().chain(req.values()) {
            let _ = http_date(v);
        }
        for v in resp.get_all(VARY) {
            if let Ok(text) = v.to_str() {
                for name in text.split(',') {
                    if let Ok(n) = HeaderName::from_bytes(name.trim().as_bytes()) {
                        let _ = vary_value(&req, &n);
                    }
                }
            }
        }

        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        shared_rules(&req, &resp, t);
        let now = Instant::now();
        let body = Bytes::from(vec![b'x'; body_len]);
        let entry = CachedResponse::new(
            status,
            resp.clone(),
            body,
            &req,
            Some(Duration::from_secs(60)),
            t,
            t + Duration::from_millis(1),
            now,
        );
        let later = now + Duration::from_secs(stored_for);
        let _ = usable(&entry, &req_cc, later);
        let _ = entry.may_serve_on_error(&req_cc, later, stored_for % 2 == 0);
        let _ = entry.may_serve_while_revalidating(later);
        let _ = entry.matches_vary(&req);
        let _ = entry.ttl(later);
        let _ = not_modified(&req, &entry, t + Duration::from_secs(stored_for));
        let _ = same_representation(&entry, &resp);
        match requested_range(&req, &entry) {
            RangeAnswer::Part(first, last) => {
                assert!(
                    first <= last && last < body_len,
                    "{first}-{last} of {body_len}"
                );
            }
            RangeAnswer::Full | RangeAnswer::Unsatisfiable => {}
        }
    });
}
