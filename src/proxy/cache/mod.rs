//! The HTTP cache's rules and store, with no sockets: what may be stored
//! (RFC 9111 §3, as a shared cache, `storable.rs`), the directives
//! (`control.rs`), how long a response stays fresh and how old it is
//! (`freshness.rs`), one stored response (`entry.rs`), how a stored response
//! answers a request (`answer.rs`: conditionals, ranges, request freshness
//! limits) and a byte-bounded store (`store.rs`). Time comes from a
//! [`Clock`] so expiry is tested without sleeping; `http/` does the networking.

mod answer;
mod control;
mod entry;
mod freshness;
mod status;
mod storable;
mod store;
#[cfg(test)]
mod tests;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use answer::{
    not_modified, request_cache_control, requested_range, same_representation, usable, RangeAnswer,
};
pub use control::{CacheControl, CDN_CACHE_CONTROL, MAX_DELTA_SECONDS, NETRUN_CACHE_CONTROL};
pub use entry::{vary_value, CachedResponse, HitHead};
pub use freshness::{age_header, freshness_lifetime, http_date, initial_age, HEURISTIC_MAX};
pub use status::{CacheStatus, Detail, Fwd, CACHE_NAME};
pub use storable::{shareable, storable, NotStored, RequestFacts};
pub use store::{Eviction, Inserted, Lru, PolicyEviction, Store};

/// The cache key: method, host and path with query. HEAD is answered from
/// the GET entry, so callers pass `GET` for both.
pub fn cache_key(method: &http::Method, authority: &str, path_and_query: &str) -> String {
    // Built by hand: `format!` costs ~2k instructions on every hit.
    let method = method.as_str();
    let mut key = String::with_capacity(method.len() + 8 + authority.len() + path_and_query.len());
    key.push_str(method);
    key.push_str(" http://");
    key.push_str(authority);
    key.push_str(path_and_query);
    key
}
