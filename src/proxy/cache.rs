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

/// The `Cache-Control` directives the proxy acts on (request or response).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    /// `max-age` in seconds (an unparsable value counts as 0: stale at once).
    pub max_age: Option<u64>,
    /// `s-maxage` in seconds; for a shared cache it overrides `max-age`.
    pub s_maxage: Option<u64>,
}

impl CacheControl {
    /// Parses every `Cache-Control` line of `headers`. Directive names are
    /// case-insensitive; unknown directives are ignored; `private="x"` and
    /// `no-cache="x"` count as the bare directive (the safer reading).
    pub fn parse(headers: &HeaderMap) -> Self {
        let mut cc = CacheControl::default();
        for value in headers.get_all(header::CACHE_CONTROL) {
            let Ok(text) = value.to_str() else { continue };
            for directive in split_list(text) {
                let (name, arg) = match directive.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                    None => (directive, None),
                };
                let seconds = || Some(arg.and_then(delta_seconds).unwrap_or(0));
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => cc.no_store = true,
                    "no-cache" => cc.no_cache = true,
                    "private" => cc.private = true,
                    "public" => cc.public = true,
                    "must-revalidate" | "proxy-revalidate" => cc.must_revalidate = true,
                    "max-age" => cc.max_age = seconds(),
                    "s-maxage" => cc.s_maxage = seconds(),
                    _ => {}
                }
            }
        }
        cc
    }
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
    /// A status the cache never stores (5xx, 206, 304, 1xx) or one that needs
    /// explicit freshness it did not have.
    Status(u16),
    /// The body is larger than the per-entry bound.
    TooLarge,
    /// `Vary: *` can never match a later request.
    VaryAll,
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
const CACHING_HEADERS: [&str; 8] = [
    "cache-control",
    "cdn-cache-control",
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
    request_cc: &CacheControl,
    response_cc: &CacheControl,
    response_headers: &HeaderMap,
) -> Result<(), NotStored> {
    if request_cc.no_store || response_cc.no_store {
        return Err(NotStored::NoStore);
    }
    if response_cc.private {
        return Err(NotStored::Private);
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

/// Statuses that may be stored with the default TTL when the origin gives no
/// freshness (RFC 9110 §15.1's "heuristically cacheable" list).
fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Decides whether a GET response may be stored by this shared cache.
/// `response_headers` are as the origin sent them (before hop-by-hop
/// stripping); `body_len` is the body size if known; `max_entry` the
/// per-entry bound.
pub fn storable(
    status: StatusCode,
    request_cc: &CacheControl,
    response_cc: &CacheControl,
    response_headers: &HeaderMap,
    body_len: Option<u64>,
    max_entry: u64,
) -> Result<(), NotStored> {
    shareable(request_cc, response_cc, response_headers)?;
    let code = status.as_u16();
    // Never: server errors (a transient failure must not be replayed),
    // partial content (we do not assemble ranges), 304 (no body), 1xx.
    if status.is_server_error() || code == 206 || code == 304 || status.is_informational() {
        return Err(NotStored::Status(code));
    }
    let explicit = response_cc.max_age.is_some()
        || response_cc.s_maxage.is_some()
        || response_headers.contains_key(header::EXPIRES);
    if !explicit && !heuristically_cacheable(status) {
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

/// How long a response stays fresh after it was generated (RFC 9111
/// §4.2.1): `s-maxage`, else `max-age`, else `Expires − Date` (with the
/// `response_time` standing in for a missing `Date`; an unparsable `Expires`
/// means already stale), else `default_ttl`.
pub fn freshness_lifetime(
    cc: &CacheControl,
    headers: &HeaderMap,
    default_ttl: Duration,
    response_time: SystemTime,
) -> Duration {
    if let Some(s) = cc.s_maxage {
        return Duration::from_secs(s);
    }
    if let Some(s) = cc.max_age {
        return Duration::from_secs(s);
    }
    if let Some(expires) = headers.get(header::EXPIRES) {
        let Some(expires) = http_date(expires) else {
            return Duration::ZERO;
        };
        let date = headers
            .get(header::DATE)
            .and_then(http_date)
            .unwrap_or(response_time);
        return expires.duration_since(date).unwrap_or(Duration::ZERO);
    }
    default_ttl
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

fn http_date(v: &HeaderValue) -> Option<SystemTime> {
    httpdate::parse_http_date(v.to_str().ok()?).ok()
}

/// The `Age` header as seconds, if valid, clamped to [`MAX_DELTA_SECONDS`].
pub fn age_header(headers: &HeaderMap) -> Option<u64> {
    delta_seconds(headers.get(header::AGE)?.to_str().ok()?)
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
        default_ttl: Duration,
        request_time: SystemTime,
        response_time: SystemTime,
        now: Instant,
    ) -> Self {
        let cc = CacheControl::parse(&headers);
        let lifetime = if cc.no_cache {
            Duration::ZERO
        } else {
            freshness_lifetime(&cc, &headers, default_ttl, response_time)
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
        default_ttl: Duration,
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

    const TTL: Duration = Duration::from_secs(60);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(at(secs))
    }

    #[test]
    fn parses_cache_control() {
        let c = cc("Public, MAX-AGE=30, s-maxage=\"10\", private=\"set-cookie, x\"");
        assert!(c.public && c.private);
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
            freshness_lifetime(&cc("max-age=30"), &h, TTL, now),
            Duration::from_secs(30)
        );
        assert_eq!(
            freshness_lifetime(&cc("max-age=30, s-maxage=5"), &h, TTL, now),
            Duration::from_secs(5),
            "s-maxage wins for a shared cache"
        );
        // Expires − Date: 100 − 40 = 60s, whatever the local clock says.
        let h = headers(&[("expires", &date(100)), ("date", &date(40))]);
        assert_eq!(
            freshness_lifetime(&cc(""), &h, TTL, at(1000)),
            Duration::from_secs(60)
        );
        // max-age beats Expires.
        assert_eq!(
            freshness_lifetime(&cc("max-age=7"), &h, TTL, now),
            Duration::from_secs(7)
        );
        // No Date: Expires − response time (100 − 30 = 70s).
        let h = headers(&[("expires", &date(100))]);
        assert_eq!(
            freshness_lifetime(&cc(""), &h, TTL, at(30)),
            Duration::from_secs(70)
        );
        // Expires in the past, or invalid: already stale.
        let h = headers(&[("expires", &date(10)), ("date", &date(40))]);
        assert_eq!(freshness_lifetime(&cc(""), &h, TTL, now), Duration::ZERO);
        let h = headers(&[("expires", "0")]);
        assert_eq!(freshness_lifetime(&cc(""), &h, TTL, now), Duration::ZERO);
        // Nothing said: the default TTL.
        assert_eq!(
            freshness_lifetime(&cc("public"), &HeaderMap::new(), TTL, now),
            TTL
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
        let h = HeaderMap::new();
        let max = 1000;
        assert_eq!(storable(ok, &none, &none, &h, Some(10), max), Ok(()));
        assert_eq!(
            storable(ok, &none, &cc("no-store"), &h, Some(10), max),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            storable(ok, &cc("no-store"), &none, &h, Some(10), max),
            Err(NotStored::NoStore)
        );
        assert_eq!(
            storable(ok, &none, &cc("private, max-age=60"), &h, Some(10), max),
            Err(NotStored::Private)
        );
        for code in [500, 502, 503, 504] {
            let s = StatusCode::from_u16(code).unwrap();
            assert_eq!(
                storable(s, &none, &cc("max-age=60"), &h, Some(10), max),
                Err(NotStored::Status(code))
            );
        }
        assert_eq!(
            storable(
                StatusCode::PARTIAL_CONTENT,
                &none,
                &cc("max-age=60"),
                &h,
                Some(10),
                max
            ),
            Err(NotStored::Status(206))
        );
        assert_eq!(
            storable(ok, &none, &none, &h, Some(1001), max),
            Err(NotStored::TooLarge)
        );
        assert_eq!(storable(ok, &none, &none, &h, Some(1000), max), Ok(()));
        // 404 is cacheable by default; 403 only with explicit freshness.
        assert_eq!(
            storable(StatusCode::NOT_FOUND, &none, &none, &h, None, max),
            Ok(())
        );
        assert_eq!(
            storable(StatusCode::FORBIDDEN, &none, &none, &h, None, max),
            Err(NotStored::Status(403))
        );
        assert_eq!(
            storable(
                StatusCode::FORBIDDEN,
                &none,
                &cc("max-age=5"),
                &h,
                None,
                max
            ),
            Ok(())
        );
        assert_eq!(
            storable(
                ok,
                &none,
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
    fn cookies_and_connection_listed_cache_headers_are_never_shared() {
        let none = CacheControl::default();
        let h = headers(&[("set-cookie", "session=1")]);
        assert_eq!(shareable(&none, &none, &h), Err(NotStored::SetCookie));
        let h = headers(&[("connection", "close, Cache-Control")]);
        assert_eq!(
            shareable(&none, &none, &h),
            Err(NotStored::HopByHopCacheHeader)
        );
        let h = headers(&[("connection", "x-trace"), ("x-trace", "1")]);
        assert_eq!(shareable(&none, &none, &h), Ok(()));
        let ok = storable(
            StatusCode::OK,
            &none,
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
