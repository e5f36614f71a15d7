use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::body::{content_type, etag_for};

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
