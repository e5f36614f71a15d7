//! The HTTP cache's rules and store, with no sockets: what may be stored
//! (RFC 9111 §3, as a shared cache), how long it stays fresh (§4.2.1), how old
//! it is (§4.2.3), and a byte-bounded LRU store. Time comes from a [`Clock`]
//! so expiry is tested without sleeping; `http.rs` does the networking.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

/// Where the cache reads the time. Freshness is measured on the monotonic
/// clock; the wall clock is only compared with the origin's `Date`/`Expires`.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic time, for ages and residence in the cache.
    fn now(&self) -> Instant;
    /// Wall-clock time, for comparing with HTTP dates.
    fn wall(&self) -> SystemTime;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to: tests advance it past `max-age`
/// instead of sleeping.
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    wall_base: SystemTime,
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> Self {
        ManualClock {
            base: Instant::now(),
            wall_base: SystemTime::now(),
            offset: Mutex::new(Duration::ZERO),
        }
    }

    /// Moves both clocks forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }

    fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + self.offset()
    }
    fn wall(&self) -> SystemTime {
        self.wall_base + self.offset()
    }
}

/// The cache directives the proxy acts on, from a request's `Cache-Control`
/// or from the field that governs a response (see [`CacheControl::for_response`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    /// Bare `no-cache`: every use must be revalidated.
    pub no_cache: bool,
    /// `no-cache="a, b"`: the named fields are never served without
    /// revalidation, so the stored copy goes without them.
    pub no_cache_fields: Vec<HeaderName>,
    /// Bare `private`: a shared cache stores nothing.
    pub private: bool,
    /// `private="a, b"`: a shared cache stores the response without those fields.
    pub private_fields: Vec<HeaderName>,
    pub public: bool,
    /// `must-revalidate` or `proxy-revalidate`: never served stale.
    pub must_revalidate: bool,
    /// `must-understand`: `no-store` may be ignored for a status the cache understands.
    pub must_understand: bool,
    /// `max-age` in seconds (an unparsable value counts as 0: stale at once).
    pub max_age: Option<u64>,
    /// `s-maxage` in seconds; for a shared cache it overrides `max-age`.
    pub s_maxage: Option<u64>,
    /// RFC 5861 `stale-while-revalidate`, seconds past freshness.
    pub stale_while_revalidate: Option<u64>,
    /// RFC 5861 `stale-if-error`, seconds past freshness.
    pub stale_if_error: Option<u64>,
    /// Request `max-stale` (bare: any staleness, [`MAX_DELTA_SECONDS`]).
    pub max_stale: Option<u64>,
    /// Request `min-fresh`.
    pub min_fresh: Option<u64>,
    /// Request `only-if-cached`: 504 rather than going upstream.
    pub only_if_cached: bool,
    /// The directives came from a targeted field (RFC 9213), which replaces
    /// `Cache-Control` and `Expires` for this cache.
    pub targeted: bool,
}

/// `Netrun-Cache-Control`: cache directives for netrun alone (RFC 9213).
pub const NETRUN_CACHE_CONTROL: HeaderName = HeaderName::from_static("netrun-cache-control");
/// `CDN-Cache-Control` (RFC 9213): directives for every CDN-like cache.
pub const CDN_CACHE_CONTROL: HeaderName = HeaderName::from_static("cdn-cache-control");

impl CacheControl {
    /// Parses every `Cache-Control` line of `headers`. Directive names are
    /// case-insensitive; unknown directives are ignored.
    pub fn parse(headers: &HeaderMap) -> Self {
        let mut cc = CacheControl::default();
        for value in headers.get_all(header::CACHE_CONTROL) {
            let Ok(text) = value.to_str() else { continue };
            for directive in split_list(text) {
                let (name, arg) = match directive.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim())),
                    None => (directive, None),
                };
                cc.apply(&name.to_ascii_lowercase(), arg);
            }
        }
        cc
    }

    /// The directives that govern a stored response for this cache: the
    /// first valid targeted field, most specific first (`Netrun-Cache-Control`,
    /// then `CDN-Cache-Control`), else `Cache-Control` (RFC 9213 §2.2). An
    /// invalid targeted field is ignored as if absent.
    pub fn for_response(headers: &HeaderMap) -> Self {
        [NETRUN_CACHE_CONTROL, CDN_CACHE_CONTROL]
            .iter()
            .find_map(|name| Self::parse_targeted(headers, name))
            .unwrap_or_else(|| Self::parse(headers))
    }

    /// Reads one Cache-Control directive (`arg` as written, quotes included).
    fn apply(&mut self, name: &str, arg: Option<&str>) {
        let unquoted = arg.map(|a| a.trim_matches('"'));
        let seconds = || Some(unquoted.and_then(delta_seconds).unwrap_or(0));
        match name {
            "no-store" => self.no_store = true,
            "no-cache" => match unquoted.map(field_names) {
                Some(names) => self.no_cache_fields.extend(names),
                None => self.no_cache = true,
            },
            "private" => match unquoted.map(field_names) {
                Some(names) => self.private_fields.extend(names),
                None => self.private = true,
            },
            "public" => self.public = true,
            "must-revalidate" | "proxy-revalidate" => self.must_revalidate = true,
            "must-understand" => self.must_understand = true,
            "max-age" => self.max_age = seconds(),
            "s-maxage" => self.s_maxage = seconds(),
            "stale-while-revalidate" => self.stale_while_revalidate = seconds(),
            "stale-if-error" => self.stale_if_error = seconds(),
            "max-stale" => {
                self.max_stale =
                    Some(unquoted.map_or(MAX_DELTA_SECONDS, |a| delta_seconds(a).unwrap_or(0)))
            }
            "min-fresh" => self.min_fresh = seconds(),
            "only-if-cached" => self.only_if_cached = true,
            _ => {}
        }
    }

    /// A targeted field is a Structured Field Dictionary (RFC 9213 §2.1):
    /// `None` when it is absent, does not parse, or holds a directive of the
    /// wrong type (`max-age="10"`), so the next field down applies.
    fn parse_targeted(headers: &HeaderMap, name: &HeaderName) -> Option<Self> {
        let lines: Vec<&str> = headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().ok())
            .collect::<Option<_>>()?;
        if lines.is_empty() {
            return None;
        }
        let dict: sfv::Dictionary = sfv::Parser::new(&lines.join(", ")).parse().ok()?;
        let mut cc = CacheControl {
            targeted: true,
            ..CacheControl::default()
        };
        for (key, entry) in &dict {
            let sfv::ListEntry::Item(item) = entry else {
                return None;
            };
            let name = key.as_str();
            let value = &item.bare_item;
            match name {
                "max-age" | "s-maxage" | "stale-while-revalidate" | "stale-if-error" => {
                    let n = i64::from(value.as_integer()?);
                    let n = u64::try_from(n).ok()?.min(MAX_DELTA_SECONDS).to_string();
                    cc.apply(name, Some(&n));
                }
                "no-cache" | "private" if value.as_string().is_some() => {
                    let list = value.as_string()?.as_str();
                    cc.apply(name, Some(list));
                }
                "no-store" | "no-cache" | "private" | "public" | "must-revalidate"
                | "proxy-revalidate" | "must-understand" => match value.as_boolean() {
                    Some(true) => cc.apply(name, None),
                    Some(false) => {}
                    None => return None,
                },
                _ => {}
            }
        }
        Some(cc)
    }

    /// Whether these directives forbid serving the response stale, even
    /// when the origin is unreachable (RFC 9111 §4.2.4; `s-maxage` implies
    /// `proxy-revalidate` for a shared cache).
    pub fn forbids_stale(&self) -> bool {
        self.no_cache || self.must_revalidate || self.s_maxage.is_some()
    }
}

/// The header names of a qualified `no-cache="a, b"` / `private="a"`.
fn field_names(list: &str) -> Vec<HeaderName> {
    list.split(',')
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect()
}

/// The largest delta-seconds value a cache must handle (RFC 9111 §1.2.2):
/// larger ones, however many digits they have, count as this.
pub const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// Parses delta-seconds (`Age`, `max-age`, `s-maxage`): digits only, clamped
/// to [`MAX_DELTA_SECONDS`] so no later sum of durations can overflow.
fn delta_seconds(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Too many digits for a u64 is still "very large", not invalid.
    Some(
        t.parse::<u64>()
            .map_or(MAX_DELTA_SECONDS, |n| n.min(MAX_DELTA_SECONDS)),
    )
}

/// Splits a comma-separated header list, keeping commas inside quotes.
fn split_list(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// Why a response was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotStored {
    /// `no-store` in the request or the response.
    NoStore,
    /// `private`: meant for one user, and this is a shared cache.
    Private,
    /// A status the cache never stores (206, 304, 1xx) or one that needs
    /// explicit freshness it did not have.
    Status(u16),
    /// The body is larger than the per-entry bound.
    TooLarge,
    /// `Vary: *` can never match a later request.
    VaryAll,
    /// The request carried `Authorization` and the response did not say it
    /// may be shared (`public`, `must-revalidate` or `s-maxage`, RFC 9111 §3.5).
    Authorization,
    /// `Set-Cookie`: a session handed to one client must never be replayed
    /// to another (nginx and Varnish do not store these either).
    SetCookie,
    /// The origin's `Connection` header names a header that decides caching
    /// (`Cache-Control`, `Vary`, `Set-Cookie`...): stripping it as hop-by-hop
    /// would change what the origin said, so the response is not stored.
    HopByHopCacheHeader,
}

/// Headers that decide whether and how a response is shared; an origin that
/// lists one in `Connection` gets its response forwarded, never stored.
const CACHING_HEADERS: [&str; 9] = [
    "cache-control",
    "cdn-cache-control",
    "netrun-cache-control",
    "surrogate-control",
    "pragma",
    "expires",
    "vary",
    "set-cookie",
    "set-cookie2",
];

/// The parts of the verdict that depend on whom a response is meant for,
/// not on its status or size: also applied to a 304 that refreshes an entry.
/// `response_headers` are as the origin sent them, hop-by-hop ones included.
pub fn shareable(
    status: StatusCode,
    request: &RequestFacts,
    response_cc: &CacheControl,
    response_headers: &HeaderMap,
) -> Result<(), NotStored> {
    // must-understand lets a cache that knows the status ignore no-store.
    let understood = status.canonical_reason().is_some();
    let no_store = response_cc.no_store && !(response_cc.must_understand && understood);
    if request.cc.no_store || no_store {
        return Err(NotStored::NoStore);
    }
    if response_cc.private {
        return Err(NotStored::Private);
    }
    if request.authorization
        && !(response_cc.public || response_cc.must_revalidate || response_cc.s_maxage.is_some())
    {
        return Err(NotStored::Authorization);
    }
    if response_headers.contains_key(header::SET_COOKIE)
        || response_headers.contains_key("set-cookie2")
    {
        return Err(NotStored::SetCookie);
    }
    let names_caching_header = response_headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_list)
        .any(|n| CACHING_HEADERS.iter().any(|c| c.eq_ignore_ascii_case(n)));
    if names_caching_header {
        return Err(NotStored::HopByHopCacheHeader);
    }
    Ok(())
}

/// Statuses that may be stored and given heuristic freshness when the origin
/// gives none (RFC 9110 §15.1's "heuristically cacheable" list).
fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Whether the response says how long it is fresh (RFC 9111 §4.2.1).
fn explicit_freshness(cc: &CacheControl, headers: &HeaderMap) -> bool {
    cc.max_age.is_some()
        || cc.s_maxage.is_some()
        || (!cc.targeted && headers.contains_key(header::EXPIRES))
}

/// Decides whether a GET response may be stored by this shared cache
/// (RFC 9111 §3). `response_cc` is [`CacheControl::for_response`]'s;
/// `response_headers` are as the origin sent them (before hop-by-hop
/// stripping); `body_len` is the body size if known; `max_entry` the
/// per-entry bound.
pub fn storable(
    status: StatusCode,
    request: &RequestFacts,
    response_cc: &CacheControl,
    response_headers: &HeaderMap,
    body_len: Option<u64>,
    max_entry: u64,
) -> Result<(), NotStored> {
    shareable(status, request, response_cc, response_headers)?;
    let code = status.as_u16();
    // Never: partial content (ranges are served from complete responses),
    // 304 (no body), 1xx (not final).
    if code == 206 || code == 304 || status.is_informational() {
        return Err(NotStored::Status(code));
    }
    let explicit = explicit_freshness(response_cc, response_headers);
    if !explicit && !heuristically_cacheable(status) && !response_cc.public {
        return Err(NotStored::Status(code));
    }
    if response_headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_list)
        .any(|v| v == "*")
    {
        return Err(NotStored::VaryAll);
    }
    if body_len.is_some_and(|n| n > max_entry) {
        return Err(NotStored::TooLarge);
    }
    Ok(())
}

/// What the storing request tells the rules.
#[derive(Debug, Default, Clone)]
pub struct RequestFacts {
    /// Its `Cache-Control` (with `Pragma: no-cache`).
    pub cc: CacheControl,
    /// It carried `Authorization`.
    pub authorization: bool,
}

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

/// The cache key: method, host and path with query. HEAD is answered from
/// the GET entry, so callers pass `GET` for both.
pub fn cache_key(method: &http::Method, authority: &str, path_and_query: &str) -> String {
    format!("{method} http://{authority}{path_and_query}")
}

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

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inserted {
    /// Whether the entry is now in the store.
    pub stored: bool,
    /// Entries pushed out to make room.
    pub evicted: u64,
}

/// A byte-bounded store with least-recently-used eviction. The total weight
/// of its entries never exceeds `capacity`, and no single entry may weigh more
/// than `max_entry`, so one large object cannot flush the whole cache.
#[derive(Debug)]
pub struct Store {
    capacity: u64,
    max_entry: u64,
    entries: HashMap<Arc<str>, Slot>,
    /// Use order: the smallest tick is the least recently used. Keys are
    /// shared with `entries`, so marking a hit copies no string.
    order: BTreeMap<u64, Arc<str>>,
    tick: u64,
    used: u64,
}

#[derive(Debug)]
struct Slot {
    key: Arc<str>,
    entry: Arc<CachedResponse>,
    weight: u64,
    tick: u64,
}

impl Store {
    /// A store of `capacity` bytes whose entries are each at most
    /// `capacity / 8` bytes (see [`Store::per_entry_bound`]).
    pub fn new(capacity: u64) -> Self {
        Store {
            capacity,
            max_entry: Self::per_entry_bound(capacity),
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            used: 0,
        }
    }

    /// The largest entry a store of `capacity` bytes accepts: an eighth, so
    /// at least eight objects always fit and a big file cannot evict
    /// everything else.
    pub fn per_entry_bound(capacity: u64) -> u64 {
        capacity / 8
    }

    pub fn max_entry(&self) -> u64 {
        self.max_entry
    }

    /// Total weight stored, in bytes (always `<= capacity`).
    pub fn used_bytes(&self) -> u64 {
        self.used
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for `key`, marked as just used.
    pub fn get(&mut self, key: &str) -> Option<Arc<CachedResponse>> {
        self.tick += 1;
        let tick = self.tick;
        let slot = self.entries.get_mut(key)?;
        self.order.remove(&slot.tick);
        slot.tick = tick;
        self.order.insert(tick, slot.key.clone());
        Some(slot.entry.clone())
    }

    /// Stores `entry` under `key` (replacing any older one), evicting least
    /// recently used entries until it fits. An entry over the per-entry bound
    /// is not stored, and the older one is dropped (it is outdated).
    pub fn insert(&mut self, key: &str, entry: Arc<CachedResponse>) -> Inserted {
        self.remove(key);
        let weight = entry.weight(key);
        if weight > self.max_entry || weight > self.capacity {
            return Inserted::default();
        }
        let mut evicted = 0;
        while self.used + weight > self.capacity {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.entries.remove(&victim) {
                self.used -= slot.weight;
                evicted += 1;
            }
        }
        self.tick += 1;
        let key: Arc<str> = Arc::from(key);
        self.order.insert(self.tick, key.clone());
        self.entries.insert(
            key.clone(),
            Slot {
                key,
                entry,
                weight,
                tick: self.tick,
            },
        );
        self.used += weight;
        Inserted {
            stored: true,
            evicted,
        }
    }

    /// Drops the entry for `key`, if any.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.entries.remove(key) {
            Some(slot) => {
                self.order.remove(&slot.tick);
                self.used -= slot.weight;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
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
}
