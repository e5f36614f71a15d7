//! `Cache-Status` (RFC 9211): how the cache handled one request, as a value
//! the proxy builds where it decides and renders in one place.

use std::fmt;
use std::time::Instant;

use super::CachedResponse;

/// The name this cache uses in `Cache-Status`, and the start of its `Via`
/// pseudonym.
pub const CACHE_NAME: &str = "netrun";

/// Why a request went forward to the upstream (RFC 9211 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fwd {
    /// The cache was not used (no cache, a refused or too large request).
    Bypass,
    /// A method the cache does not answer.
    Method,
    /// Nothing stored under the URI.
    UriMiss,
    /// Something stored under the URI, for another `Vary` variant.
    VaryMiss,
    /// The request asked not to be answered from the cache (`no-cache`, `no-store`).
    Request,
    /// The stored response was stale.
    Stale,
}

impl Fwd {
    pub fn as_str(self) -> &'static str {
        match self {
            Fwd::Bypass => "bypass",
            Fwd::Method => "method",
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Request => "request",
            Fwd::Stale => "stale",
        }
    }
}

/// netrun's `detail` tokens (RFC 9211 §2.8): what else shaped the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// The target was not the upstream: 403.
    Refused,
    /// The request came round a forwarding loop: 508.
    Loop,
    /// `only-if-cached` and nothing usable stored: 504.
    OnlyIfCached,
    /// A range with nothing stored to cut it from: forwarded.
    Range,
    /// A HEAD's `200` agreed with the stored response and freshened it.
    HeadFreshened,
    /// Served stale while a background request revalidates (RFC 5861 §3).
    StaleWhileRevalidate,
    /// Served stale because the upstream failed (RFC 5861 §4, RFC 9111 §4.2.4).
    StaleIfError,
    /// Waited for another request's fetch of the same key.
    Coalesced,
    /// A TRACE or OPTIONS with `Max-Forwards: 0`, answered by the proxy itself.
    MaxForwards,
}

impl Detail {
    pub fn as_str(self) -> &'static str {
        match self {
            Detail::Refused => "refused",
            Detail::Loop => "loop",
            Detail::OnlyIfCached => "only-if-cached",
            Detail::Range => "range",
            Detail::HeadFreshened => "head-freshened",
            Detail::StaleWhileRevalidate => "stale-while-revalidate",
            Detail::StaleIfError => "stale-if-error",
            Detail::Coalesced => "coalesced",
            Detail::MaxForwards => "max-forwards",
        }
    }
}

/// One `Cache-Status` entry of this cache. Built with [`CacheStatus::hit`]
/// or [`CacheStatus::forward`] and the setters; shown by `Display` as the
/// field value (`netrun; fwd=uri-miss; stored`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStatus {
    /// Answered from the store without going forward.
    pub hit: bool,
    pub fwd: Option<Fwd>,
    /// Freshness left in seconds, negative when stale (§2.4).
    pub ttl: Option<i64>,
    /// The upstream's status when it answered a forward (§2.3).
    pub fwd_status: Option<u16>,
    /// The response was stored (§2.5).
    pub stored: bool,
    pub detail: Option<Detail>,
}

impl CacheStatus {
    /// Answered from `e`, with its freshness at `now`.
    pub fn hit(e: &CachedResponse, now: Instant) -> Self {
        let ttl = if e.is_fresh(now) {
            secs(e.ttl(now).as_secs())
        } else {
            -secs(e.staleness(now).as_secs())
        };
        CacheStatus {
            hit: true,
            ttl: Some(ttl),
            ..Self::default()
        }
    }

    /// Sent forward to the upstream, for `why`.
    pub fn forward(why: Fwd) -> Self {
        CacheStatus {
            fwd: Some(why),
            ..Self::default()
        }
    }

    pub fn with_fwd_status(self, status: u16) -> Self {
        CacheStatus {
            fwd_status: Some(status),
            ..self
        }
    }

    pub fn with_stored(self) -> Self {
        CacheStatus {
            stored: true,
            ..self
        }
    }

    pub fn with_detail(self, detail: Detail) -> Self {
        CacheStatus {
            detail: Some(detail),
            ..self
        }
    }
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

impl fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(CACHE_NAME)?;
        if self.hit {
            f.write_str("; hit")?;
        }
        if let Some(fwd) = self.fwd {
            write!(f, "; fwd={}", fwd.as_str())?;
        }
        if let Some(ttl) = self.ttl {
            write!(f, "; ttl={ttl}")?;
        }
        if let Some(status) = self.fwd_status {
            write!(f, "; fwd-status={status}")?;
        }
        if self.stored {
            f.write_str("; stored")?;
        }
        if let Some(detail) = self.detail {
            write!(f, "; detail={}", detail.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rfc_9211_parameters_in_one_order() {
        let cases = [
            (CacheStatus::forward(Fwd::Bypass), "netrun; fwd=bypass"),
            (
                CacheStatus::forward(Fwd::UriMiss).with_stored(),
                "netrun; fwd=uri-miss; stored",
            ),
            (
                CacheStatus::forward(Fwd::Stale).with_fwd_status(304),
                "netrun; fwd=stale; fwd-status=304",
            ),
            (
                CacheStatus::forward(Fwd::Stale)
                    .with_fwd_status(200)
                    .with_detail(Detail::HeadFreshened),
                "netrun; fwd=stale; fwd-status=200; detail=head-freshened",
            ),
            (
                CacheStatus {
                    hit: true,
                    ttl: Some(-3),
                    ..CacheStatus::default()
                }
                .with_fwd_status(503)
                .with_detail(Detail::StaleIfError),
                "netrun; hit; ttl=-3; fwd-status=503; detail=stale-if-error",
            ),
            (
                CacheStatus::forward(Fwd::VaryMiss).with_detail(Detail::OnlyIfCached),
                "netrun; fwd=vary-miss; detail=only-if-cached",
            ),
        ];
        for (status, want) in cases {
            assert_eq!(status.to_string(), want);
        }
    }
}
