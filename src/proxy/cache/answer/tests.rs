//! Table tests of how a stored response answers a request, on hand-made
//! entries and an injected clock.

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use super::*;
use crate::proxy::cache::{CacheStatus, Clock, ManualClock};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn date(secs: u64) -> String {
    httpdate::fmt_http_date(at(secs))
}

/// A 200 stored at `clock`'s now, received at wall time `at(1000)`.
fn entry(clock: &ManualClock, fields: &[(&str, &str)], body: &str) -> CachedResponse {
    CachedResponse::new(
        StatusCode::OK,
        headers(fields),
        Bytes::copy_from_slice(body.as_bytes()),
        &HeaderMap::new(),
        None,
        at(1000),
        at(1000),
        clock.now(),
    )
}

/// (what, entry, request or response fields, expected)
type Case<'a, T> = (&'a str, &'a CachedResponse, &'a [(&'a str, &'a str)], T);

fn cc(v: &str) -> CacheControl {
    request_cache_control(&headers(&[("cache-control", v)]))
}

#[test]
fn usable_follows_the_request_limits() {
    let clock = ManualClock::new();
    let e = entry(&clock, &[("cache-control", "max-age=60")], "x");
    let strict = entry(
        &clock,
        &[("cache-control", "max-age=60, must-revalidate")],
        "x",
    );
    let now = clock.now();
    let later = |s: u64| now + Duration::from_secs(s);
    // (what, entry, request directives, seconds after storing, usable)
    let cases: &[(&str, &CachedResponse, &str, u64, bool)] = &[
        ("fresh, nothing asked", &e, "", 0, true),
        ("fresh, no-cache", &e, "no-cache", 0, false),
        ("younger than max-age", &e, "max-age=10", 5, true),
        ("older than max-age", &e, "max-age=10", 10, false),
        ("enough freshness left", &e, "min-fresh=30", 20, true),
        ("too little freshness left", &e, "min-fresh=50", 20, false),
        ("stale", &e, "", 65, false),
        ("stale within max-stale", &e, "max-stale=10", 65, true),
        ("stale past max-stale", &e, "max-stale=3", 65, false),
        ("bare max-stale", &e, "max-stale", 10_000, true),
        (
            "must-revalidate forbids max-stale",
            &strict,
            "max-stale=10",
            65,
            false,
        ),
    ];
    for (what, e, req, after, want) in cases {
        assert_eq!(usable(e, &cc(req), later(*after)), *want, "{what}");
    }
    // HTTP/1.0's Pragma: no-cache counts only without Cache-Control.
    let pragma = request_cache_control(&headers(&[("pragma", "no-cache")]));
    assert!(!usable(&e, &pragma, now));
    let both = request_cache_control(&headers(&[
        ("pragma", "no-cache"),
        ("cache-control", "max-age=5"),
    ]));
    assert!(usable(&e, &both, now));
}

#[test]
fn requested_range_table() {
    let clock = ManualClock::new();
    let lm = date(100);
    let fields = [
        ("cache-control", "max-age=1"),
        ("etag", "\"r1\""),
        ("last-modified", lm.as_str()),
    ];
    let e = entry(&clock, &fields, "0123456789");
    let weak = entry(&clock, &[("etag", "W/\"r1\"")], "0123456789");
    let empty = entry(&clock, &fields, "");
    use RangeAnswer::*;
    let cases: &[Case<RangeAnswer>] = &[
        ("no range", &e, &[], Full),
        ("a-b", &e, &[("range", "bytes=2-4")], Part(2, 4)),
        ("a-", &e, &[("range", "bytes=7-")], Part(7, 9)),
        ("-n", &e, &[("range", "bytes=-3")], Part(7, 9)),
        (
            "-n past the start",
            &e,
            &[("range", "bytes=-20")],
            Part(0, 9),
        ),
        (
            "-0 is unsatisfiable",
            &e,
            &[("range", "bytes=-0")],
            Unsatisfiable,
        ),
        (
            "5-3 is invalid: ignored",
            &e,
            &[("range", "bytes=5-3")],
            Full,
        ),
        (
            "past the end is cut",
            &e,
            &[("range", "bytes=8-100")],
            Part(8, 9),
        ),
        (
            "starting at the end",
            &e,
            &[("range", "bytes=10-")],
            Unsatisfiable,
        ),
        ("several ranges", &e, &[("range", "bytes=0-1,4-5")], Full),
        ("another unit", &e, &[("range", "items=0-1")], Full),
        ("no numbers", &e, &[("range", "bytes=-")], Full),
        ("not numbers", &e, &[("range", "bytes=a-b")], Full),
        (
            "empty body, a-",
            &empty,
            &[("range", "bytes=0-")],
            Unsatisfiable,
        ),
        (
            "empty body, -n",
            &empty,
            &[("range", "bytes=-1")],
            Unsatisfiable,
        ),
        ("empty body, no range", &empty, &[], Full),
        (
            "If-Range strong match",
            &e,
            &[("range", "bytes=0-0"), ("if-range", "\"r1\"")],
            Part(0, 0),
        ),
        (
            "If-Range other tag",
            &e,
            &[("range", "bytes=0-0"), ("if-range", "\"r0\"")],
            Full,
        ),
        (
            "If-Range weak tag",
            &e,
            &[("range", "bytes=0-0"), ("if-range", "W/\"r1\"")],
            Full,
        ),
        (
            "stored tag weak",
            &weak,
            &[("range", "bytes=0-0"), ("if-range", "\"r1\"")],
            Full,
        ),
        (
            "If-Range the date",
            &e,
            &[("range", "bytes=0-0"), ("if-range", lm.as_str())],
            Part(0, 0),
        ),
        (
            "If-Range another date",
            &e,
            &[("range", "bytes=0-0"), ("if-range", &date(99))],
            Full,
        ),
    ];
    for (what, e, req, want) in cases {
        assert_eq!(requested_range(&headers(req), e), *want, "{what}");
    }
    // A stale entry is cut the same way: staleness is for the flow to
    // settle (it revalidates first), not for the range.
    clock.advance(Duration::from_secs(3600));
    assert!(!e.is_fresh(clock.now()));
    assert_eq!(
        requested_range(&headers(&[("range", "bytes=2-4")]), &e),
        Part(2, 4)
    );
}

#[test]
fn not_modified_uses_the_stored_validators() {
    let clock = ManualClock::new();
    let now = at(1000);
    let dated = date(500);
    let with_lm = entry(
        &clock,
        &[("etag", "\"a,b\""), ("last-modified", &date(100))],
        "x",
    );
    let date_only = entry(&clock, &[("date", &dated)], "x");
    let bare = entry(&clock, &[], "x");
    let cases: &[Case<bool>] = &[
        (
            "comma etag",
            &with_lm,
            &[("if-none-match", "\"a,b\"")],
            true,
        ),
        ("half of it", &with_lm, &[("if-none-match", "\"a\"")], false),
        ("star", &bare, &[("if-none-match", "*")], true),
        (
            "IMS after Last-Modified",
            &with_lm,
            &[("if-modified-since", &date(200))],
            true,
        ),
        (
            "IMS before Last-Modified",
            &with_lm,
            &[("if-modified-since", &date(50))],
            false,
        ),
        (
            "IMS in the future",
            &with_lm,
            &[("if-modified-since", &date(5000))],
            false,
        ),
        (
            "Date stands in",
            &date_only,
            &[("if-modified-since", &date(600))],
            true,
        ),
        (
            "Date stands in, earlier",
            &date_only,
            &[("if-modified-since", &date(400))],
            false,
        ),
        (
            "nothing to compare",
            &bare,
            &[("if-modified-since", &date(600))],
            false,
        ),
    ];
    for (what, e, req, want) in cases {
        assert_eq!(not_modified(&headers(req), e, now), *want, "{what}");
    }
}

#[test]
fn same_representation_table() {
    let clock = ManualClock::new();
    let lm = date(100);
    let full = entry(
        &clock,
        &[
            ("etag", "\"v1\""),
            ("last-modified", &lm),
            ("content-length", "5"),
        ],
        "hello",
    );
    let no_length = entry(&clock, &[("etag", "\"v1\"")], "hello");
    let cases: &[Case<bool>] = &[
        (
            "same everything",
            &full,
            &[
                ("etag", "\"v1\""),
                ("last-modified", &lm),
                ("content-length", "5"),
            ],
            true,
        ),
        ("no validators said", &full, &[], true),
        ("another etag", &full, &[("etag", "\"v2\"")], false),
        (
            "another date",
            &full,
            &[("last-modified", &date(101))],
            false,
        ),
        ("another length", &full, &[("content-length", "6")], false),
        (
            "length against the body",
            &no_length,
            &[("content-length", "5")],
            true,
        ),
        (
            "length against the body, differs",
            &no_length,
            &[("content-length", "4")],
            false,
        ),
        (
            "an etag where none was stored",
            &entry(&clock, &[], "hello"),
            &[("etag", "\"v1\"")],
            true,
        ),
    ];
    for (what, e, head, want) in cases {
        assert_eq!(same_representation(e, &headers(head)), *want, "{what}");
    }
}

#[test]
fn hits_report_their_ttl_negative_when_stale() {
    let clock = ManualClock::new();
    let e = entry(&clock, &[("cache-control", "max-age=60")], "x");
    let at = |s: u64| -> Instant { clock.now() + Duration::from_secs(s) };
    assert_eq!(
        CacheStatus::hit(&e, at(3)).to_string(),
        "netrun; hit; ttl=57"
    );
    assert_eq!(
        CacheStatus::hit(&e, at(70)).to_string(),
        "netrun; hit; ttl=-10"
    );
}
