//! Synthetic objects: `/objects/<key>/<size>` answers exactly `<size>`
//! bytes derived from the key, generated per request and never stored,
//! with an ETag and Last-Modified fixed per (key, size), so any catalog or
//! trace maps onto an origin without files.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

use crate::http_fields::not_modified;
use crate::server::{empty, text, Body, BoxError};
use crate::traffic::rng::{mix, Rng};

/// The path prefix, as `traffic::OBJECTS_PREFIX`.
const PREFIX: &str = crate::traffic::OBJECTS_PREFIX;
/// The largest object served: bounded so one request cannot ask for a
/// stream without end.
pub const MAX_OBJECT: u64 = 1 << 30;
/// The repeated block of a body: big enough to look like content, small
/// enough to build per request.
const BLOCK: usize = 16 * 1024;

/// `(key, size)` when `path` names a synthetic object; `Err` with the
/// reason when it is under `/objects/` but malformed.
pub(super) fn parse(path: &str) -> Option<Result<(&str, u64), String>> {
    let rest = path.strip_prefix(PREFIX)?;
    let Some((key, size)) = rest.split_once('/') else {
        return Some(Err("write /objects/<key>/<size in bytes>".into()));
    };
    if key.is_empty() {
        return Some(Err(
            "the key is empty; write /objects/<key>/<size in bytes>".into(),
        ));
    }
    Some(match size.parse::<u64>() {
        Ok(n) if n <= MAX_OBJECT => Ok((key, n)),
        Ok(_) => Err(format!("objects are at most {MAX_OBJECT} bytes")),
        Err(_) => Err(format!("`{size}` is not a size in bytes")),
    })
}

/// A stable hash of the key (FNV-1a, then mixed), the seed of everything about it.
fn key_hash(key: &str, size: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix(h ^ mix(size))
}

/// The answer for object (`key`, `size`): 200 with the body (none for
/// HEAD), or 304 when the request's validators match.
pub(super) fn serve(
    req_headers: &HeaderMap,
    key: &str,
    size: u64,
    want_body: bool,
    cache_control: Option<&HeaderValue>,
    now: std::time::SystemTime,
) -> Response<Body> {
    let h = key_hash(key, size);
    let etag = format!("\"obj-{h:016x}-{size:x}\"");
    // A fixed date in 2020–2021, so heuristic freshness has a basis too.
    let modified = UNIX_EPOCH + Duration::from_secs(1_577_836_800 + h % 31_536_000);
    let mut headers = HeaderMap::new();
    if let Some(cc) = cache_control {
        headers.insert(header::CACHE_CONTROL, cc.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(modified)) {
        headers.insert(header::LAST_MODIFIED, v);
    }
    if not_modified(req_headers, Some(&etag), Some(modified), now) {
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        *r.headers_mut() = headers;
        return r;
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    let body = if want_body {
        ObjectBody::new(h, size).boxed()
    } else {
        empty()
    };
    let mut r = Response::new(body);
    *r.headers_mut() = headers;
    r
}

/// A malformed `/objects/` path: 404 with the reason.
pub(super) fn malformed(why: &str) -> Response<Body> {
    text(StatusCode::NOT_FOUND, format!("404 Not Found: {why}\n"))
}

/// The body: one block from the key's seed, sent again and again (a
/// reference-counted clone, no copy) up to the size.
struct ObjectBody {
    block: Bytes,
    remaining: u64,
}

impl ObjectBody {
    fn new(seed: u64, size: u64) -> Self {
        let len = usize::try_from(size).map_or(BLOCK, |s| s.min(BLOCK));
        let mut rng = Rng::new(seed);
        let mut block = Vec::with_capacity(len + 8);
        while block.len() < len {
            block.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        block.truncate(len);
        ObjectBody {
            block: Bytes::from(block),
            remaining: size,
        }
    }
}

impl http_body::Body for ObjectBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let n =
            usize::try_from(this.remaining).map_or(this.block.len(), |r| r.min(this.block.len()));
        this.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(this.block.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn paths_parse_into_key_and_size() {
        assert_eq!(parse("/objects/42/16384"), Some(Ok(("42", 16384))));
        assert_eq!(parse("/index.html"), None);
        assert!(parse("/objects/42").is_some_and(|r| r.is_err()));
        assert!(parse("/objects//5").is_some_and(|r| r.is_err()));
        assert!(parse("/objects/a/b/5").is_some_and(|r| r.is_err()));
        assert!(parse("/objects/a/99999999999").is_some_and(|r| r.is_err()));
    }

    async fn body_of(r: Response<Body>) -> Bytes {
        r.into_body().collect().await.expect("a body").to_bytes()
    }

    #[tokio::test]
    async fn bodies_have_the_size_and_are_the_same_each_time_per_key() {
        let none = HeaderMap::new();
        for size in [0u64, 1, 7, 16 * 1024, 40_000] {
            let a = body_of(serve(&none, "k", size, true, None, SystemTime::now())).await;
            let b = body_of(serve(&none, "k", size, true, None, SystemTime::now())).await;
            assert_eq!(a.len() as u64, size);
            assert_eq!(a, b);
        }
        let a = body_of(serve(&none, "a", 64, true, None, SystemTime::now())).await;
        let b = body_of(serve(&none, "b", 64, true, None, SystemTime::now())).await;
        assert_ne!(a, b);
        let r = serve(&none, "k", 10, false, None, SystemTime::now());
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "10");
        assert!(body_of(r).await.is_empty(), "HEAD: no body");
    }

    #[test]
    fn validators_are_fixed_per_key_and_size_and_answer_304() {
        let none = HeaderMap::new();
        let r = serve(&none, "k", 10, true, None, SystemTime::now());
        let etag = r.headers()[header::ETAG].clone();
        assert_eq!(
            serve(&none, "k", 10, true, None, SystemTime::now()).headers()[header::ETAG],
            etag
        );
        assert_ne!(
            serve(&none, "k", 11, true, None, SystemTime::now()).headers()[header::ETAG],
            etag
        );
        let mut cond = HeaderMap::new();
        cond.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            serve(&cond, "k", 10, true, None, SystemTime::now()).status(),
            StatusCode::NOT_MODIFIED
        );
    }
}
