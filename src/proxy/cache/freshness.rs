//! How long a response stays fresh (RFC 9111 §4.2.1, heuristics §4.2.2) and
//! how old it was when it arrived (§4.2.3), from its fields and dates.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

use super::control::{delta_seconds, CacheControl, MAX_DELTA_SECONDS};
use super::storable::heuristically_cacheable;

/// The longest heuristic freshness given, however old `Last-Modified` is.
pub const HEURISTIC_MAX: Duration = Duration::from_secs(24 * 3600);

/// The share of the time since `Last-Modified` given as heuristic freshness.
const HEURISTIC_FRACTION: u32 = 10;

/// How long a response stays fresh after it was generated (RFC 9111
/// §4.2.1): `s-maxage`, else `max-age`, else `Expires − Date` (with the
/// `response_time` standing in for a missing `Date`; an unparsable `Expires`
/// means already stale; a targeted field's directives replace `Expires`).
/// With none of those: `default_ttl` if the operator set one (a deviation
/// from the RFC), else heuristic freshness for a heuristically cacheable or
/// `public` response: a tenth of the time since `Last-Modified`, at most
/// [`HEURISTIC_MAX`] (§4.2.2). Anything else is stale at once.
pub fn freshness_lifetime(
    status: StatusCode,
    cc: &CacheControl,
    headers: &HeaderMap,
    default_ttl: Option<Duration>,
    response_time: SystemTime,
) -> Duration {
    if let Some(s) = cc.s_maxage {
        return Duration::from_secs(s);
    }
    if let Some(s) = cc.max_age {
        return Duration::from_secs(s);
    }
    let date = || {
        headers
            .get(header::DATE)
            .and_then(http_date)
            .unwrap_or(response_time)
    };
    if let (false, Some(expires)) = (cc.targeted, headers.get(header::EXPIRES)) {
        let Some(expires) = http_date(expires) else {
            return Duration::ZERO;
        };
        return expires.duration_since(date()).unwrap_or(Duration::ZERO);
    }
    if let Some(ttl) = default_ttl {
        return ttl;
    }
    if !(heuristically_cacheable(status) || cc.public) {
        return Duration::ZERO;
    }
    let Some(modified) = headers.get(header::LAST_MODIFIED).and_then(http_date) else {
        return Duration::ZERO;
    };
    let since = date().duration_since(modified).unwrap_or(Duration::ZERO);
    (since / HEURISTIC_FRACTION).min(HEURISTIC_MAX)
}

/// The age of a response when it arrived (RFC 9111 §4.2.3): the larger of
/// the apparent age (`response_time − Date`) and the `Age` header plus the
/// time the request took.
pub fn initial_age(
    age_header: Option<u64>,
    date: Option<SystemTime>,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Duration {
    let apparent = date
        .and_then(|d| response_time.duration_since(d).ok())
        .unwrap_or(Duration::ZERO);
    let delay = response_time
        .duration_since(request_time)
        .unwrap_or(Duration::ZERO);
    let age = age_header.unwrap_or(0).min(MAX_DELTA_SECONDS);
    let corrected = Duration::from_secs(age).saturating_add(delay);
    apparent.max(corrected)
}

/// Parses an HTTP date leniently, as caches in the field do: the formats of
/// RFC 9110 §5.6.7 in any letter case, with a weekday that need not match
/// the date (`Thu Aug  8 02:01:18 2050` is a Monday). Spacing, digits and
/// the zone stay strict: anything else is invalid.
pub fn http_date(v: &HeaderValue) -> Option<SystemTime> {
    let text = v.to_str().ok()?.trim();
    if let Ok(t) = httpdate::parse_http_date(text) {
        return Some(t);
    }
    // `AUG` → `Aug`, `gMT` → `GMT`, keeping every space where it was.
    let mut cased = String::with_capacity(text.len());
    let mut prev_alpha = false;
    for c in text.chars() {
        let alpha = c.is_ascii_alphabetic();
        cased.push(if alpha && !prev_alpha {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        prev_alpha = alpha;
    }
    let cased = cased.replace("Gmt", "GMT");
    let day_end = cased
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(cased.len());
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        .iter()
        .find_map(|wd| httpdate::parse_http_date(&format!("{wd}{}", &cased[day_end..])).ok())
}

/// The `Age` header as seconds, clamped to [`MAX_DELTA_SECONDS`]: the first
/// member when it is a list or repeated (`Age: 7200, 0` is 7200), none when
/// that member is not a valid delta-seconds.
pub fn age_header(headers: &HeaderMap) -> Option<u64> {
    let first = headers.get(header::AGE)?.to_str().ok()?;
    delta_seconds(first.split(',').next()?)
}
