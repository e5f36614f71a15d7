use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap, HeaderValue};

use super::body::{content_type, etag_for, not_modified};

fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn content_types_by_extension() {
    assert_eq!(
        content_type(Path::new("a/index.HTML")),
        "text/html; charset=utf-8"
    );
    assert_eq!(content_type(Path::new("logo.png")), "image/png");
    assert_eq!(content_type(Path::new("info.json")), "application/json");
    assert_eq!(
        content_type(Path::new("large.bin")),
        "application/octet-stream"
    );
    assert_eq!(
        content_type(Path::new("README")),
        "application/octet-stream"
    );
    // The types the old hand-written table gave stay the same.
    for (file, want) in [
        ("s.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.svg", "image/svg+xml"),
        ("a.jpeg", "image/jpeg"),
        ("a.wasm", "application/wasm"),
        ("a.woff2", "font/woff2"),
        ("a.pdf", "application/pdf"),
    ] {
        assert_eq!(content_type(Path::new(file)), want, "{file}");
    }
}

#[test]
fn etag_is_quoted_and_changes_with_mtime() {
    let t = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
    let a = etag_for(10, t);
    assert!(a.starts_with('"') && a.ends_with('"'), "{a}");
    assert_ne!(a, etag_for(10, t + Duration::from_nanos(1)));
    assert_ne!(a, etag_for(11, t));
}

#[test]
fn conditional_requests() {
    let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
    let tag = etag_for(3, t);
    let date = httpdate::fmt_http_date(t);
    let inm = |v: &str| headers(&[(header::IF_NONE_MATCH, v)]);
    assert!(not_modified(&inm(&tag), Some(&tag), Some(t)));
    assert!(not_modified(
        &inm(&format!("\"x\", W/{tag}")),
        Some(&tag),
        Some(t)
    ));
    assert!(not_modified(&inm("*"), Some(&tag), Some(t)));
    assert!(!not_modified(&inm("\"other\""), Some(&tag), Some(t)));
    // If-None-Match wins even when the date would match.
    let both = headers(&[
        (header::IF_NONE_MATCH, "\"other\""),
        (header::IF_MODIFIED_SINCE, &date),
    ]);
    assert!(!not_modified(&both, Some(&tag), Some(t)));
    let ims = |v: &str| headers(&[(header::IF_MODIFIED_SINCE, v)]);
    assert!(not_modified(&ims(&date), Some(&tag), Some(t)));
    let earlier = httpdate::fmt_http_date(t - Duration::from_secs(5));
    assert!(!not_modified(&ims(&earlier), Some(&tag), Some(t)));
    assert!(!not_modified(&ims("yesterday"), Some(&tag), Some(t)));
    let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    assert!(!not_modified(&ims(&future), Some(&tag), Some(t)));
}
