use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use super::*;

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

fn cc(v: &str) -> CacheControl {
    CacheControl::parse(&headers(&[("cache-control", v)]))
}

/// No `--cache-ttl`: the RFC rules alone.
const TTL: Option<Duration> = None;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn date(secs: u64) -> String {
    httpdate::fmt_http_date(at(secs))
}

#[test]
fn parses_cache_control() {
    let c = cc("Public, MAX-AGE=30, s-maxage=\"10\", private=\"set-cookie, x\"");
    assert!(
        c.public && !c.private,
        "a qualified private is not the bare one"
    );
    assert_eq!(
        c.private_fields,
        [
            HeaderName::from_static("set-cookie"),
            HeaderName::from_static("x")
        ]
    );
    assert_eq!(c.max_age, Some(30));
    assert_eq!(c.s_maxage, Some(10));
    assert!(!c.no_store && !c.no_cache);
    let c = CacheControl::parse(&headers(&[
        ("cache-control", "no-cache"),
        ("cache-control", "no-store, max-age=abc"),
    ]));
    assert!(c.no_cache && c.no_store);
    assert_eq!(c.max_age, Some(0), "an unparsable max-age means stale");
    assert_eq!(
        CacheControl::parse(&HeaderMap::new()),
        CacheControl::default()
    );
}

#[test]
fn lifetime_from_max_age_s_maxage_expires_and_default() {
    let now = at(0);
    let h = HeaderMap::new();
    assert_eq!(
        freshness_lifetime(StatusCode::OK, &cc("max-age=30"), &h, TTL, now),
        Duration::from_secs(30)
    );
    assert_eq!(
        freshness_lifetime(StatusCode::OK, &cc("max-age=30, s-maxage=5"), &h, TTL, now),
        Duration::from_secs(5),
        "s-maxage wins for a shared cache"
    );
    // Expires − Date: 100 − 40 = 60s, whatever the local clock says.
    let h = headers(&[("expires", &date(100)), ("date", &date(40))]);
    assert_eq!(
        freshness_lifetime(StatusCode::OK, &cc(""), &h, TTL, at(1000)),
        Duration::from_secs(60)
    );
    // max-age beats Expires.
    assert_eq!(
        freshness_lifetime(StatusCode::OK, &cc("max-age=7"), &h, TTL, now),
        Duration::from_secs(7)
    );
    // No Date: Expires − response time (100 − 30 = 70s).
    let h = headers(&[("expires", &date(100))]);
    assert_eq!(
        freshness_lifetime(StatusCode::OK, &cc(""), &h, TTL, at(30)),
        Duration::from_secs(70)
    );
    // Expires in the past, or invalid: already stale.
    let h = headers(&[("expires", &date(10)), ("date", &date(40))]);
    assert_eq!(
        freshness_lifetime(StatusCode::OK, &cc(""), &h, TTL, now),
        Duration::ZERO
    );
    let h = headers(&[("expires", "0")]);
    assert_eq!(
        freshness_lifetime(StatusCode::OK, &cc(""), &h, TTL, now),
        Duration::ZERO
    );
    // Nothing said and nothing to base a heuristic on: stale at once,
    // unless the operator opted into a default TTL.
    assert_eq!(
        freshness_lifetime(StatusCode::OK, &cc("public"), &HeaderMap::new(), TTL, now),
        Duration::ZERO
    );
    let ttl = Some(Duration::from_secs(60));
    assert_eq!(
        freshness_lifetime(StatusCode::OK, &cc("public"), &HeaderMap::new(), ttl, now),
        Duration::from_secs(60)
    );
}

#[test]
fn initial_age_takes_the_larger_estimate() {
    // Date 10s before arrival, no Age header, request took 1s: 10s.
    assert_eq!(
        initial_age(None, Some(at(90)), at(99), at(100)),
        Duration::from_secs(10)
    );
    // Age 30 + 1s delay beats an apparent age of 10s.
    assert_eq!(
        initial_age(Some(30), Some(at(90)), at(99), at(100)),
        Duration::from_secs(31)
    );
    // A Date in the future (clock skew) gives no negative age.
    assert_eq!(
        initial_age(None, Some(at(200)), at(100), at(100)),
        Duration::ZERO
    );
}

fn entry(cc_value: &str, body: &[u8], clock: &ManualClock) -> CachedResponse {
    CachedResponse::new(
        StatusCode::OK,
        headers(&[("cache-control", cc_value), ("etag", "\"v1\"")]),
        Bytes::copy_from_slice(body),
        &HeaderMap::new(),
        TTL,
        clock.wall(),
        clock.wall(),
        clock.now(),
    )
}

#[test]
fn expiry_follows_the_injected_clock() {
    let clock = ManualClock::new();
    let e = entry("max-age=10", b"x", &clock);
    assert!(e.is_fresh(clock.now()));
    assert_eq!(e.ttl(clock.now()), Duration::from_secs(10));
    clock.advance(Duration::from_secs(9));
    assert!(e.is_fresh(clock.now()));
    assert_eq!(e.age(clock.now()), Duration::from_secs(9));
    clock.advance(Duration::from_secs(1));
    assert!(!e.is_fresh(clock.now()), "stale once age reaches max-age");
    // no-cache: stored, but never fresh.
    let e = entry("no-cache", b"x", &clock);
    assert!(!e.is_fresh(clock.now()));
}

#[test]
fn age_header_counts_towards_expiry() {
    let clock = ManualClock::new();
    let e = CachedResponse::new(
        StatusCode::OK,
        headers(&[("cache-control", "max-age=10"), ("age", "8")]),
        Bytes::new(),
        &HeaderMap::new(),
        TTL,
        clock.wall(),
        clock.wall(),
        clock.now(),
    );
    assert_eq!(e.ttl(clock.now()), Duration::from_secs(2));
}

#[test]
fn refresh_after_304_restarts_freshness_and_merges_headers() {
    let clock = ManualClock::new();
    let e = entry("max-age=10", b"body", &clock);
    clock.advance(Duration::from_secs(20));
    assert!(!e.is_fresh(clock.now()));
    let r = e.refreshed(
        &headers(&[("cache-control", "max-age=30"), ("etag", "\"v1\"")]),
        &HeaderMap::new(),
        TTL,
        clock.wall(),
        clock.wall(),
        clock.now(),
    );
    assert!(r.is_fresh(clock.now()));
    assert_eq!(r.lifetime, Duration::from_secs(30));
    assert_eq!(r.body, Bytes::from_static(b"body"));
}

#[test]
fn huge_age_and_max_age_are_clamped_not_overflowed() {
    let clock = ManualClock::new();
    let h = headers(&[
        ("cache-control", "max-age=99999999999999999999999"),
        ("age", "18446744073709551615"),
    ]);
    assert_eq!(age_header(&h), Some(MAX_DELTA_SECONDS));
    assert_eq!(
        CacheControl::parse(&h).max_age,
        Some(MAX_DELTA_SECONDS),
        "a max-age too long for u64 is very long, not invalid"
    );
    assert_eq!(age_header(&headers(&[("age", "-1")])), None);
    assert_eq!(age_header(&headers(&[("age", "12s")])), None);
    // Even an unclamped value cannot overflow the sum with the delay.
    assert_eq!(
        initial_age(Some(u64::MAX), None, at(0), at(5)),
        Duration::from_secs(MAX_DELTA_SECONDS + 5)
    );
    let e = CachedResponse::new(
        StatusCode::OK,
        headers(&[
            ("cache-control", "max-age=60"),
            ("age", "18446744073709551615"),
        ]),
        Bytes::new(),
        &HeaderMap::new(),
        TTL,
        clock.wall(),
        clock.wall() + Duration::from_secs(1),
        clock.now(),
    );
    clock.advance(Duration::from_secs(3600));
    assert!(!e.is_fresh(clock.now()));
    assert_eq!(e.ttl(clock.now()), Duration::ZERO);
    assert_eq!(
        e.age(clock.now()),
        Duration::from_secs(MAX_DELTA_SECONDS + 1 + 3600)
    );
    // The worst case still saturates instead of panicking.
    let worst = CachedResponse {
        initial_age: Duration::MAX,
        ..e
    };
    assert_eq!(worst.age(clock.now()), Duration::MAX);
}

#[test]
fn a_refresh_does_not_count_the_stored_age_again() {
    let clock = ManualClock::new();
    let e = CachedResponse::new(
        StatusCode::OK,
        headers(&[
            ("cache-control", "max-age=10"),
            ("age", "8"),
            ("etag", "\"a\""),
        ]),
        Bytes::from_static(b"body"),
        &HeaderMap::new(),
        TTL,
        clock.wall(),
        clock.wall(),
        clock.now(),
    );
    assert_eq!(e.initial_age, Duration::from_secs(8));
    assert!(!e.headers.contains_key(header::AGE), "Age is not stored");
    clock.advance(Duration::from_secs(5));
    // The 304 comes straight from the origin: no Age, so age 0 again.
    let r = e.refreshed(
        &headers(&[("etag", "\"a\"")]),
        &HeaderMap::new(),
        TTL,
        clock.wall(),
        clock.wall(),
        clock.now(),
    );
    assert_eq!(r.initial_age, Duration::ZERO);
    assert_eq!(r.ttl(clock.now()), Duration::from_secs(10));
    assert!(!r.headers.contains_key(header::AGE));
    // A 304 that carries its own Age counts that one only.
    let r = e.refreshed(
        &headers(&[("age", "3")]),
        &HeaderMap::new(),
        TTL,
        clock.wall(),
        clock.wall(),
        clock.now(),
    );
    assert_eq!(r.initial_age, Duration::from_secs(3));
    assert!(!r.headers.contains_key(header::AGE));
}

#[test]
fn storability_rules() {
    let ok = StatusCode::OK;
    let none = CacheControl::default();
    let req = RequestFacts::default();
    let h = HeaderMap::new();
    let max = 1000;
    assert_eq!(storable(ok, &req, &none, &h, Some(10), max), Ok(()));
    assert_eq!(
        storable(ok, &req, &cc("no-store"), &h, Some(10), max),
        Err(NotStored::NoStore)
    );
    assert_eq!(
        storable(
            ok,
            &RequestFacts {
                cc: cc("no-store"),
                authorization: false
            },
            &none,
            &h,
            Some(10),
            max
        ),
        Err(NotStored::NoStore)
    );
    assert_eq!(
        storable(ok, &req, &cc("private, max-age=60"), &h, Some(10), max),
        Err(NotStored::Private)
    );
    // Server errors: only with explicit freshness (501 is heuristically cacheable).
    for code in [500, 502, 503, 504] {
        let s = StatusCode::from_u16(code).unwrap();
        assert_eq!(
            storable(s, &req, &cc("max-age=60"), &h, Some(10), max),
            Ok(())
        );
        assert_eq!(
            storable(s, &req, &none, &h, Some(10), max),
            Err(NotStored::Status(code))
        );
    }
    assert_eq!(
        storable(StatusCode::NOT_IMPLEMENTED, &req, &none, &h, Some(10), max),
        Ok(())
    );
    assert_eq!(
        storable(
            StatusCode::PARTIAL_CONTENT,
            &req,
            &cc("max-age=60"),
            &h,
            Some(10),
            max
        ),
        Err(NotStored::Status(206))
    );
    assert_eq!(
        storable(ok, &req, &none, &h, Some(1001), max),
        Err(NotStored::TooLarge)
    );
    assert_eq!(storable(ok, &req, &none, &h, Some(1000), max), Ok(()));
    // 404 is cacheable by default; 403 only with explicit freshness.
    assert_eq!(
        storable(StatusCode::NOT_FOUND, &req, &none, &h, None, max),
        Ok(())
    );
    assert_eq!(
        storable(StatusCode::FORBIDDEN, &req, &none, &h, None, max),
        Err(NotStored::Status(403))
    );
    assert_eq!(
        storable(StatusCode::FORBIDDEN, &req, &cc("max-age=5"), &h, None, max),
        Ok(())
    );
    assert_eq!(
        storable(
            ok,
            &req,
            &none,
            &headers(&[("vary", "accept, *")]),
            None,
            max
        ),
        Err(NotStored::VaryAll)
    );
}

#[test]
fn vary_selects_the_variant() {
    let clock = ManualClock::new();
    let e = CachedResponse::new(
        StatusCode::OK,
        headers(&[("vary", "Accept-Encoding")]),
        Bytes::new(),
        &headers(&[("accept-encoding", "gzip")]),
        TTL,
        clock.wall(),
        clock.wall(),
        clock.now(),
    );
    assert!(e.matches_vary(&headers(&[("accept-encoding", "gzip")])));
    assert!(!e.matches_vary(&headers(&[("accept-encoding", "br")])));
    assert!(!e.matches_vary(&HeaderMap::new()));
}

#[test]
fn store_evicts_least_recently_used_within_the_byte_bound() {
    let clock = ManualClock::new();
    let mut store = Store::new(8 * 1024);
    assert_eq!(store.max_entry(), 1024);
    let body = vec![b'x'; 700];
    let mut evicted = 0;
    for i in 0..40 {
        let key = format!("GET http://h/{i}");
        let r = store.insert(&key, Arc::new(entry("max-age=60", &body, &clock)));
        assert!(r.stored);
        evicted += r.evicted;
        assert!(store.used_bytes() <= 8 * 1024);
        // Keep object 0 hot: it must survive.
        assert!(
            store.get("GET http://h/0").is_some(),
            "hot entry evicted at {i}"
        );
    }
    assert!(evicted > 0);
    assert_eq!(store.len() as u64 + evicted, 40);
    assert!(store.get("GET http://h/1").is_none(), "cold entry kept");
    assert!(store.get("GET http://h/39").is_some());
}

#[test]
fn store_refuses_oversized_entries_and_replaces_in_place() {
    let clock = ManualClock::new();
    let mut store = Store::new(8 * 1024);
    let r = store.insert("k", Arc::new(entry("", &[0; 100], &clock)));
    assert!(r.stored);
    let used = store.used_bytes();
    let r = store.insert("k", Arc::new(entry("", &[0; 200], &clock)));
    assert!(r.stored);
    assert_eq!(store.used_bytes(), used + 100);
    assert_eq!(store.len(), 1);
    let r = store.insert("k", Arc::new(entry("", &[0; 2000], &clock)));
    assert_eq!(r, Inserted::default());
    assert!(store.is_empty(), "the outdated entry is dropped too");
    assert_eq!(store.used_bytes(), 0);
}

#[test]
fn keys_include_method_host_and_query() {
    let k = cache_key(&http::Method::GET, "127.0.0.1:8000", "/a?b=1");
    assert_eq!(k, "GET http://127.0.0.1:8000/a?b=1");
    assert_ne!(k, cache_key(&http::Method::GET, "127.0.0.1:8000", "/a?b=2"));
}

#[test]
fn heuristic_freshness_is_a_tenth_of_the_age_of_last_modified_capped() {
    let h = headers(&[("last-modified", &date(0)), ("date", &date(1000))]);
    let ok = StatusCode::OK;
    assert_eq!(
        freshness_lifetime(ok, &cc(""), &h, TTL, at(1000)),
        Duration::from_secs(100)
    );
    // Only for heuristically cacheable statuses, or with `public`.
    let created = StatusCode::CREATED;
    assert_eq!(
        freshness_lifetime(created, &cc(""), &h, TTL, at(1000)),
        Duration::ZERO
    );
    assert_eq!(
        freshness_lifetime(created, &cc("public"), &h, TTL, at(1000)),
        Duration::from_secs(100)
    );
    // A year-old file gets at most a day.
    let h = headers(&[("last-modified", &date(0)), ("date", &date(365 * 86400))]);
    assert_eq!(
        freshness_lifetime(ok, &cc(""), &h, TTL, at(0)),
        HEURISTIC_MAX
    );
    // Explicit freshness wins over the heuristic, even a zero one.
    let h = headers(&[("last-modified", &date(0)), ("date", &date(1000))]);
    assert_eq!(
        freshness_lifetime(ok, &cc("max-age=0"), &h, TTL, at(1000)),
        Duration::ZERO
    );
    // --cache-ttl replaces the heuristic, not explicit freshness.
    let ttl = Some(Duration::from_secs(7));
    assert_eq!(
        freshness_lifetime(ok, &cc(""), &h, ttl, at(1000)),
        Duration::from_secs(7)
    );
    assert_eq!(
        freshness_lifetime(ok, &cc("max-age=3"), &h, ttl, at(1000)),
        Duration::from_secs(3)
    );
}

#[test]
fn a_response_with_neither_freshness_nor_last_modified_is_stale_at_once() {
    let clock = ManualClock::new();
    let e = CachedResponse::new(
        StatusCode::OK,
        headers(&[("date", &httpdate::fmt_http_date(clock.wall()))]),
        Bytes::from_static(b"x"),
        &HeaderMap::new(),
        TTL,
        clock.wall(),
        clock.wall(),
        clock.now(),
    );
    assert!(!e.is_fresh(clock.now()));
}

#[test]
fn age_lists_count_their_first_member() {
    assert_eq!(age_header(&headers(&[("age", "7200, 0")])), Some(7200));
    assert_eq!(age_header(&headers(&[("age", "0, 7200")])), Some(0));
    assert_eq!(
        age_header(&headers(&[("age", "7200"), ("age", "0")])),
        Some(7200)
    );
    assert_eq!(age_header(&headers(&[("age", "abc, 5")])), None);
}

#[test]
fn targeted_fields_replace_cache_control_and_expires() {
    let resp = |pairs: &[(&str, &str)]| CacheControl::for_response(&headers(pairs));
    // CDN-Cache-Control wins over Cache-Control, both ways.
    let c = resp(&[
        ("cache-control", "max-age=3600"),
        ("cdn-cache-control", "max-age=1"),
    ]);
    assert_eq!((c.max_age, c.targeted), (Some(1), true));
    let c = resp(&[
        ("cache-control", "no-store"),
        ("cdn-cache-control", "max-age=60"),
    ]);
    assert!(!c.no_store);
    let c = resp(&[
        ("cache-control", "max-age=60"),
        ("cdn-cache-control", "no-store"),
    ]);
    assert!(c.no_store);
    let c = resp(&[
        ("cache-control", "max-age=60"),
        ("cdn-cache-control", "private"),
    ]);
    assert!(c.private);
    // Netrun-Cache-Control is more specific still.
    let c = resp(&[
        ("cdn-cache-control", "max-age=60"),
        ("netrun-cache-control", "max-age=5"),
    ]);
    assert_eq!(c.max_age, Some(5));
    // An invalid field (bad syntax, or a string where a number goes) is ignored.
    for bad in ["max-age=10000, &&&&&", "max-age=\"10000\"", "max-age=-1"] {
        let c = resp(&[("cache-control", "no-store"), ("cdn-cache-control", bad)]);
        assert!(c.no_store && !c.targeted, "{bad}");
    }
    // Expires does not count when a targeted field governs.
    for targeted in ["max-age=0", "foo"] {
        let h = headers(&[
            ("cdn-cache-control", targeted),
            ("expires", &date(10_000)),
            ("date", &date(0)),
        ]);
        let c = CacheControl::for_response(&h);
        assert_eq!(
            freshness_lifetime(StatusCode::OK, &c, &h, TTL, at(0)),
            Duration::ZERO,
            "{targeted}"
        );
    }
}

#[test]
fn qualified_no_cache_and_private_drop_only_the_named_fields() {
    let clock = ManualClock::new();
    let e = CachedResponse::new(
        StatusCode::OK,
        headers(&[
            ("cache-control", "max-age=60, no-cache=\"a\", private=\"B\""),
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
        ]),
        Bytes::new(),
        &HeaderMap::new(),
        TTL,
        clock.wall(),
        clock.wall(),
        clock.now(),
    );
    assert!(
        e.is_fresh(clock.now()),
        "a qualified no-cache does not force revalidation"
    );
    assert!(!e.headers.contains_key("a") && !e.headers.contains_key("b"));
    assert_eq!(e.headers["c"], "3");
    let req = RequestFacts::default();
    let h = HeaderMap::new();
    assert_eq!(
        storable(StatusCode::OK, &req, &cc("private=\"x\""), &h, None, 100),
        Ok(())
    );
}

#[test]
fn stale_serving_windows() {
    let clock = ManualClock::new();
    let none = CacheControl::default();
    let e = entry(
        "max-age=10, stale-while-revalidate=5, stale-if-error=20",
        b"x",
        &clock,
    );
    clock.advance(Duration::from_secs(12));
    assert!(!e.is_fresh(clock.now()));
    assert_eq!(e.staleness(clock.now()), Duration::from_secs(2));
    assert!(e.may_serve_while_revalidating(clock.now()));
    assert!(e.may_serve_on_error(&none, clock.now(), false));
    clock.advance(Duration::from_secs(5));
    assert!(
        !e.may_serve_while_revalidating(clock.now()),
        "past the window"
    );
    assert!(e.may_serve_on_error(&none, clock.now(), false));
    clock.advance(Duration::from_secs(20));
    assert!(
        !e.may_serve_on_error(&none, clock.now(), true),
        "past stale-if-error"
    );
    // Without stale-if-error: stale only when the upstream is unreachable.
    let e = entry("max-age=1", b"x", &clock);
    clock.advance(Duration::from_secs(100));
    assert!(!e.may_serve_on_error(&none, clock.now(), false));
    assert!(e.may_serve_on_error(&none, clock.now(), true));
    // A request's stale-if-error counts too.
    assert!(e.may_serve_on_error(&cc("stale-if-error=200"), clock.now(), false));
    // must-revalidate, proxy-revalidate, s-maxage and no-cache forbid it.
    for forbid in [
        "max-age=1, must-revalidate",
        "max-age=1, proxy-revalidate",
        "s-maxage=1",
        "no-cache",
    ] {
        let e = entry(
            &format!("{forbid}, stale-if-error=999, stale-while-revalidate=999"),
            b"x",
            &clock,
        );
        clock.advance(Duration::from_secs(2));
        assert!(!e.may_serve_on_error(&none, clock.now(), true), "{forbid}");
        assert!(!e.may_serve_while_revalidating(clock.now()), "{forbid}");
    }
}

#[test]
fn must_understand_and_authorization_rules() {
    let h = HeaderMap::new();
    let req = RequestFacts::default();
    let mu = cc("max-age=60, no-store, must-understand");
    assert_eq!(storable(StatusCode::OK, &req, &mu, &h, None, 100), Ok(()));
    let unknown = StatusCode::from_u16(599).unwrap();
    assert_eq!(
        storable(unknown, &req, &mu, &h, None, 100),
        Err(NotStored::NoStore)
    );
    let auth = RequestFacts {
        authorization: true,
        ..RequestFacts::default()
    };
    assert_eq!(
        storable(StatusCode::OK, &auth, &cc("max-age=60"), &h, None, 100),
        Err(NotStored::Authorization)
    );
    for ok in [
        "max-age=60, public",
        "max-age=60, must-revalidate",
        "s-maxage=60",
    ] {
        assert_eq!(
            storable(StatusCode::OK, &auth, &cc(ok), &h, None, 100),
            Ok(()),
            "{ok}"
        );
    }
}

#[test]
fn dates_are_read_leniently_but_not_loosely() {
    let v = |s: &str| http_date(&HeaderValue::from_str(s).unwrap());
    let want = v("Thu, 18 Aug 2050 02:01:18 GMT").unwrap();
    assert_eq!(v("Thu, 18 AUG 2050 02:01:18 gMT"), Some(want));
    assert_eq!(v("thu, 18 Aug 2050 02:01:18 GMT"), Some(want));
    assert_eq!(
        v("Mon, 18 Aug 2050 02:01:18 GMT"),
        Some(want),
        "wrong weekday"
    );
    assert!(
        v("Thu Aug  8 02:01:18 2050").is_some(),
        "asctime, wrong weekday"
    );
    for bad in [
        "Thu, 18 Aug 2050 02:01:18 UTC",
        "Thu, 18 Aug 50 02:01:18 GMT",
        "Thu, 18 Aug 2050  02:01:18 GMT",
        "Thu, 18-Aug-2050 02:01:18 GMT",
        "Thu, 18 Aug 2050 2:01:18 GMT",
        "0",
    ] {
        assert_eq!(v(bad), None, "{bad}");
    }
}

#[test]
fn cookies_and_connection_listed_cache_headers_are_never_shared() {
    let none = CacheControl::default();
    let req = RequestFacts::default();
    let ok = StatusCode::OK;
    let h = headers(&[("set-cookie", "session=1")]);
    assert_eq!(shareable(ok, &req, &none, &h), Err(NotStored::SetCookie));
    let h = headers(&[("connection", "close, Cache-Control")]);
    assert_eq!(
        shareable(ok, &req, &none, &h),
        Err(NotStored::HopByHopCacheHeader)
    );
    let h = headers(&[("connection", "x-trace"), ("x-trace", "1")]);
    assert_eq!(shareable(ok, &req, &none, &h), Ok(()));
    let ok = storable(
        StatusCode::OK,
        &req,
        &none,
        &headers(&[("set-cookie", "a=b")]),
        None,
        100,
    );
    assert_eq!(ok, Err(NotStored::SetCookie));
}

#[test]
fn vary_values_are_combined_and_list_whitespace_ignored() {
    let name = HeaderName::from_static("accept-language");
    let two = headers(&[("accept-language", "fr"), ("accept-language", "de")]);
    let one = headers(&[("accept-language", "fr ,  de")]);
    let other = headers(&[("accept-language", "fr"), ("accept-language", "en")]);
    assert_eq!(vary_value(&two, &name), vary_value(&one, &name));
    assert_ne!(vary_value(&two, &name), vary_value(&other, &name));
    assert_eq!(vary_value(&HeaderMap::new(), &name), None);
    assert_ne!(
        vary_value(&headers(&[("accept-language", "")]), &name),
        None,
        "an empty value is not an absent header"
    );
}
