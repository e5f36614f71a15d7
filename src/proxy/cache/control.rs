//! `Cache-Control` and its targeted variants (RFC 9111 §5.2, RFC 9213) parsed
//! into the directives the proxy acts on.

use http::header::{self, HeaderMap, HeaderName};

use crate::http_fields::split_list;

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
pub(super) fn delta_seconds(text: &str) -> Option<u64> {
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
