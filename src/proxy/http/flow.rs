//! The cache flow of a GET or HEAD: answered from the store when it may be,
//! else filled from the upstream (one fetch per key, revalidating what is
//! held), then stored or streamed; stale answers where RFC 9111 and RFC 5861
//! allow them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};

use crate::interim::Interim;
use crate::proxy::budget::{Budget, ChargedBuf};
use crate::proxy::cache::{
    self, not_modified, request_cache_control, requested_range, same_representation, usable,
    CacheControl, CacheStatus, CachedResponse, Detail, Fwd, RangeAnswer, RequestFacts, Store,
};
use crate::proxy::coalesce::{self, Flights, Role};
use crate::server::{add, bump};
use crate::server::{empty, full, text, Body};

use super::body::{buffer, Buffered};
use super::headers::{
    content_length, label, path_and_query, strip_body_framing, strip_hop_by_hop,
    upstream_request_headers,
};
use super::upstream::{error_response, UpstreamError};
use super::{Label, ProxyService};

/// What a coalescing leader hands to the requests waiting on it.
#[derive(Clone)]
pub(super) enum Shared {
    /// The answer is in the cache now (each waiter still checks `Vary`).
    Stored(Arc<CachedResponse>),
    /// The upstream failed; every waiter fails the same way.
    Failed(UpstreamError),
    /// An answer that was not stored: it may be meant for one user (`private`,
    /// `no-store`, `Vary: *`, another variant), so each waiter fetches its own.
    FetchYourself,
}

/// One fill of a cache key from the upstream: what the steps after the
/// exchange (refresh on 304, store or stream) need to know about it.
struct Fill<'a> {
    parts: &'a Parts,
    cache: &'a CacheState,
    key: &'a str,
    /// How the request was forwarded, for `Cache-Status` (`fwd=...`).
    kind: Fwd,
    request: RequestFacts,
    /// The origin's fields before hop-by-hop stripping: storability is
    /// decided on them, conservatively.
    origin_said: HeaderMap,
    request_time: SystemTime,
    response_time: SystemTime,
    deadline: tokio::time::Instant,
    /// A stored entry was being revalidated or replaced.
    had_stale: bool,
}

pub(super) struct CacheState {
    pub(super) store: Mutex<Store>,
    pub(super) flights: Flights<Shared>,
    /// `--cache-ttl`: freshness for responses that give none (off by default).
    pub(super) default_ttl: Option<Duration>,
    pub(super) max_entry: u64,
    /// Bounds the bodies held in memory, stored or in flight.
    pub(super) budget: Arc<Budget>,
}

impl ProxyService {
    /// A GET or HEAD the cache may answer: fresh or allowed-stale hits are
    /// served from the store, the rest goes upstream (revalidating what is
    /// held), one fetch per key at a time.
    pub(super) async fn through_cache(
        &self,
        parts: Parts,
        cache: &CacheState,
        key: &str,
        req_cc: &CacheControl,
    ) -> (Response<Body>, Label) {
        let now = self.clock.now();
        let entry = cache
            .store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key);
        let (stale, kind) = match entry {
            Some(e) if e.matches_vary(&parts.headers) => {
                if usable(&e, req_cc, now) {
                    let status = CacheStatus::hit(&e, now);
                    return (self.serve_entry(&parts, &e, Label::Hit, status), Label::Hit);
                }
                if !req_cc.no_cache && e.may_serve_while_revalidating(now) {
                    self.revalidate_in_background(&parts, key, e.clone());
                    let status =
                        CacheStatus::hit(&e, now).with_detail(Detail::StaleWhileRevalidate);
                    return (self.serve_entry(&parts, &e, Label::Hit, status), Label::Hit);
                }
                let kind = if req_cc.no_cache {
                    Fwd::Request
                } else {
                    Fwd::Stale
                };
                (Some(e), kind)
            }
            Some(_) => (None, Fwd::VaryMiss),
            None => (None, Fwd::UriMiss),
        };
        if req_cc.only_if_cached {
            let resp = text(
                StatusCode::GATEWAY_TIMEOUT,
                "not in the cache, and the request said only-if-cached\n",
            );
            let status = CacheStatus::forward(kind).with_detail(Detail::OnlyIfCached);
            return (label(resp, Label::Miss, status), Label::Miss);
        }
        if parts.method == Method::HEAD {
            return self.head_through(parts, cache, key, stale, kind).await;
        }
        if stale.is_none() && parts.headers.contains_key(header::RANGE) {
            // Nothing to cut the range from: the upstream answers it (206s
            // are not stored).
            let status = CacheStatus::forward(kind).with_detail(Detail::Range);
            return self.forward(parts, empty(), Label::Miss, status).await;
        }
        self.fetch_coalesced(&parts, cache, key, stale, req_cc, kind)
            .await
    }

    /// A HEAD that the cache cannot answer goes upstream as HEAD (not worth
    /// fetching a body to store). A `200` that agrees with a stored entry's
    /// validators and length freshens it, like a 304 would; one that does
    /// not means the stored body is outdated (RFC 9111 §4.3.5).
    async fn head_through(
        &self,
        mut parts: Parts,
        cache: &CacheState,
        key: &str,
        stale: Option<Arc<CachedResponse>>,
        kind: Fwd,
    ) -> (Response<Body>, Label) {
        let status = CacheStatus::forward(kind);
        strip_body_framing(&mut parts.headers);
        let Some(e) = stale else {
            return self.forward(parts, empty(), Label::Miss, status).await;
        };
        let headers = upstream_request_headers(&parts.headers, parts.version, &self.via_token);
        let request_time = self.clock.wall();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let path = path_and_query(&parts.uri);
        let resp = match self
            .send(
                Method::HEAD,
                path,
                headers,
                empty(),
                deadline,
                parts.extensions.get::<Interim>(),
            )
            .await
        {
            Ok(r) => r,
            Err(err) => {
                return (
                    label(error_response(&err), Label::Miss, status),
                    Label::Miss,
                )
            }
        };
        let (mut rparts, _) = resp.into_parts();
        strip_hop_by_hop(&mut rparts.headers);
        if rparts.status != StatusCode::OK {
            return (
                label(Response::from_parts(rparts, empty()), Label::Miss, status),
                Label::Miss,
            );
        }
        if !same_representation(&e, &rparts.headers) {
            self.store_remove(cache, key);
            return (
                label(Response::from_parts(rparts, empty()), Label::Miss, status),
                Label::Miss,
            );
        }
        let fresh = Arc::new(e.refreshed(
            &rparts.headers,
            &parts.headers,
            cache.default_ttl,
            request_time,
            self.clock.wall(),
            self.clock.now(),
        ));
        self.store_insert(cache, key, fresh.clone());
        let status = status
            .with_fwd_status(200)
            .with_detail(Detail::HeadFreshened);
        (
            self.serve_entry(&parts, &fresh, Label::Miss, status),
            Label::Miss,
        )
    }

    /// Refreshes a stale entry upstream while the client has already been
    /// answered from it (`stale-while-revalidate`); skipped when a fetch of
    /// the key is already under way.
    fn revalidate_in_background(&self, parts: &Parts, key: &str, stale: Arc<CachedResponse>) {
        let Some(me) = self.me.upgrade() else { return };
        let mut req = Request::new(());
        *req.uri_mut() = parts.uri.clone();
        *req.version_mut() = parts.version;
        *req.headers_mut() = parts.headers.clone();
        req.headers_mut().remove(header::RANGE);
        let (parts, ()) = req.into_parts();
        let key = key.to_string();
        // On the proxy's tracker, so its shutdown waits for the refresh;
        // cancelled with the proxy (the waiters of the flight then fetch
        // for themselves, as when a leader's client goes away).
        let shutdown = self.background.shutdown.clone();
        self.background.tracker.spawn(async move {
            let Some(cache) = &me.cache else { return };
            if let Role::Lead(leader) = cache.flights.join(&key) {
                let req_cc = request_cache_control(&parts.headers);
                let refresh =
                    me.fetch_and_store(&parts, cache, &key, Some(stale), &req_cc, Fwd::Stale);
                tokio::select! {
                    (_, _, shared) = refresh => leader.finish(shared),
                    () = shutdown.cancelled() => {}
                }
            }
        });
    }

    /// A cacheable GET that the cache cannot answer: one request per key
    /// goes upstream, the others wait for its answer.
    async fn fetch_coalesced(
        &self,
        parts: &Parts,
        cache: &CacheState,
        key: &str,
        stale: Option<Arc<CachedResponse>>,
        req_cc: &CacheControl,
        kind: Fwd,
    ) -> (Response<Body>, Label) {
        loop {
            match cache.flights.join(key) {
                Role::Lead(leader) => {
                    // The flight before ours may have just stored the answer.
                    let now = self.clock.now();
                    let current = cache
                        .store
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(key);
                    if let Some(e) = current {
                        let is_new = stale.as_ref().map_or(true, |s| !Arc::ptr_eq(s, &e));
                        if is_new && e.matches_vary(&parts.headers) && usable(&e, req_cc, now) {
                            drop(leader);
                            let status = CacheStatus::hit(&e, now);
                            return (self.serve_entry(parts, &e, Label::Hit, status), Label::Hit);
                        }
                    }
                    let (resp, lbl, shared) = self
                        .fetch_and_store(parts, cache, key, stale, req_cc, kind)
                        .await;
                    leader.finish(shared);
                    return (resp, lbl);
                }
                Role::Follow(rx) => {
                    bump(&self.counters.coalesced);
                    let Some(shared) = coalesce::follow(rx).await else {
                        continue; // the leader's client went away: try again
                    };
                    match shared {
                        Shared::Stored(e) if e.matches_vary(&parts.headers) => {
                            let now = self.clock.now();
                            let status = CacheStatus::hit(&e, now).with_detail(Detail::Coalesced);
                            return (self.serve_entry(parts, &e, Label::Hit, status), Label::Hit);
                        }
                        Shared::Failed(err) => {
                            let now = self.clock.now();
                            if let Some(e) = stale
                                .as_ref()
                                .filter(|e| e.may_serve_on_error(req_cc, now, err.disconnected()))
                            {
                                let status =
                                    CacheStatus::hit(e, now).with_detail(Detail::StaleIfError);
                                return (
                                    self.serve_entry(parts, e, Label::Hit, status),
                                    Label::Hit,
                                );
                            }
                            let status = CacheStatus::forward(kind).with_detail(Detail::Coalesced);
                            return (
                                label(error_response(&err), Label::Miss, status),
                                Label::Miss,
                            );
                        }
                        Shared::Stored(_) | Shared::FetchYourself => {
                            let (resp, lbl, _) = self
                                .fetch_and_store(parts, cache, key, None, req_cc, kind)
                                .await;
                            return (resp, lbl);
                        }
                    }
                }
            }
        }
    }

    /// Fills (or revalidates) `key` from the upstream and decides what the
    /// cache keeps: a failed exchange may be answered from `stale`, a 304
    /// refreshes it, any other answer is stored or streamed through.
    async fn fetch_and_store(
        &self,
        parts: &Parts,
        cache: &CacheState,
        key: &str,
        stale: Option<Arc<CachedResponse>>,
        req_cc: &CacheControl,
        kind: Fwd,
    ) -> (Response<Body>, Label, Shared) {
        let (headers, conditional) = self.fill_request_headers(parts, stale.as_deref());
        let request_time = self.clock.wall();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let resp = match self
            .send(
                Method::GET,
                path_and_query(&parts.uri),
                headers,
                empty(),
                deadline,
                parts.extensions.get::<Interim>(),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return self.answer_fetch_error(parts, stale.as_ref(), req_cc, kind, e),
        };
        let (mut rparts, body) = resp.into_parts();
        let fill = Fill {
            parts,
            cache,
            key,
            kind,
            request: RequestFacts {
                cc: req_cc.clone(),
                authorization: parts.headers.contains_key(header::AUTHORIZATION),
            },
            // Whether to store is decided on what the origin said: a
            // `Cache-Control: private` it named in `Connection` is still private.
            origin_said: rparts.headers.clone(),
            request_time,
            response_time: self.clock.wall(),
            deadline,
            had_stale: stale.is_some(),
        };
        strip_hop_by_hop(&mut rparts.headers);
        if let Some(answer) = self.stale_for_server_error(parts, &stale, req_cc, rparts.status) {
            return answer;
        }
        match (conditional, rparts.status, &stale) {
            (true, StatusCode::NOT_MODIFIED, Some(e)) => {
                self.refresh_not_modified(&fill, e, &rparts.headers)
            }
            _ => self.store_or_stream(&fill, rparts, body).await,
        }
    }

    /// The upstream request of a fill: the client's conditionals and ranges
    /// removed (the cache wants the whole representation and answers them
    /// itself afterwards), the stale entry's validators added. Also returns
    /// whether the request is a revalidation.
    fn fill_request_headers(
        &self,
        parts: &Parts,
        stale: Option<&CachedResponse>,
    ) -> (HeaderMap, bool) {
        let mut headers = upstream_request_headers(&parts.headers, parts.version, &self.via_token);
        strip_body_framing(&mut headers);
        for h in [
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_MATCH,
            header::IF_UNMODIFIED_SINCE,
            header::IF_RANGE,
            header::RANGE,
        ] {
            headers.remove(h);
        }
        let mut conditional = false;
        if let Some(e) = stale {
            if let Some(etag) = e.etag() {
                headers.insert(header::IF_NONE_MATCH, etag.clone());
                conditional = true;
            }
            if let Some(lm) = e.last_modified() {
                headers.insert(header::IF_MODIFIED_SINCE, lm.clone());
                conditional = true;
            }
        }
        if conditional {
            bump(&self.counters.revalidations);
        }
        (headers, conditional)
    }

    /// The upstream could not be asked: the stale entry where the response
    /// or the request allows it (RFC 5861 `stale-if-error`), else a 502/504.
    fn answer_fetch_error(
        &self,
        parts: &Parts,
        stale: Option<&Arc<CachedResponse>>,
        req_cc: &CacheControl,
        kind: Fwd,
        e: UpstreamError,
    ) -> (Response<Body>, Label, Shared) {
        let now = self.clock.now();
        if let Some(s) = stale.filter(|s| s.may_serve_on_error(req_cc, now, e.disconnected())) {
            let status = CacheStatus::hit(s, now).with_detail(Detail::StaleIfError);
            let resp = self.serve_entry(parts, s, Label::Hit, status);
            return (resp, Label::Hit, Shared::Failed(e));
        }
        (
            label(error_response(&e), Label::Miss, CacheStatus::forward(kind)),
            Label::Miss,
            Shared::Failed(e),
        )
    }

    /// A 304 to a revalidation: the stored entry refreshed with its fields,
    /// kept while still storable, and served.
    fn refresh_not_modified(
        &self,
        fill: &Fill<'_>,
        stored: &CachedResponse,
        not_modified: &HeaderMap,
    ) -> (Response<Body>, Label, Shared) {
        bump(&self.counters.revalidated_unmodified);
        let fresh = Arc::new(stored.refreshed(
            not_modified,
            &fill.parts.headers,
            fill.cache.default_ttl,
            fill.request_time,
            fill.response_time,
            self.clock.now(),
        ));
        // A 304 may change the entry's storability (a new `private`, a
        // `Set-Cookie`): then this client gets it and nobody else does.
        let verdict = cache::storable(
            stored.status,
            &fill.request,
            &CacheControl::for_response(&fill.origin_said),
            &fill.origin_said,
            None,
            fill.cache.max_entry,
        );
        let kept = if verdict.is_ok() {
            self.store_insert(fill.cache, fill.key, fresh.clone())
        } else {
            self.store_remove(fill.cache, fill.key);
            false
        };
        let status = CacheStatus::forward(fill.kind).with_fwd_status(304);
        let shared = if kept {
            Shared::Stored(fresh.clone())
        } else {
            Shared::FetchYourself
        };
        let resp = self.serve_entry(fill.parts, &fresh, Label::Hit, status);
        (resp, Label::Hit, shared)
    }

    /// Any other answer to a fill: stored when RFC 9111 allows it and it fits
    /// both an entry and the memory budget, else streamed through untouched,
    /// holding no more of it in memory than is in flight.
    async fn store_or_stream(
        &self,
        fill: &Fill<'_>,
        rparts: http::response::Parts,
        body: Body,
    ) -> (Response<Body>, Label, Shared) {
        let cache = fill.cache;
        let verdict = cache::storable(
            rparts.status,
            &fill.request,
            &CacheControl::for_response(&fill.origin_said),
            &fill.origin_said,
            content_length(&rparts.headers),
            cache.max_entry,
        );
        if fill.had_stale && verdict.is_err() {
            self.store_remove(cache, fill.key); // the old entry is outdated
        }
        let mut status = CacheStatus::forward(fill.kind);
        if fill.had_stale {
            status = status.with_fwd_status(rparts.status.as_u16());
        }
        // Not to be stored (too large, no-store, private, 5xx...).
        if verdict.is_err() {
            let resp = self.stream(rparts, VecDeque::new(), body, status);
            return (resp, Label::Miss, Shared::FetchYourself);
        }
        let buf = ChargedBuf::new(
            &cache.budget,
            content_length(&rparts.headers).filter(|&n| n <= cache.max_entry),
        );
        match buffer(body, buf, cache.max_entry, fill.deadline, &self.counters).await {
            Buffered::Complete(bytes) => {
                let entry = Arc::new(CachedResponse::new(
                    rparts.status,
                    rparts.headers,
                    bytes,
                    &fill.parts.headers,
                    cache.default_ttl,
                    fill.request_time,
                    fill.response_time,
                    self.clock.now(),
                ));
                let (status, shared) = if self.store_insert(cache, fill.key, entry.clone()) {
                    (status.with_stored(), Shared::Stored(entry.clone()))
                } else {
                    (status, Shared::FetchYourself)
                };
                let resp = self.serve_entry(fill.parts, &entry, Label::Miss, status);
                (resp, Label::Miss, shared)
            }
            Buffered::Failed(e) => {
                bump(&self.counters.upstream_errors);
                let resp = label(error_response(&e), Label::Miss, status);
                (resp, Label::Miss, Shared::Failed(e))
            }
            Buffered::Overflow(prefix, next, rest) => {
                // Too large for an entry, or for the memory left: stream the rest.
                self.store_remove(cache, fill.key);
                let resp = self.stream(rparts, VecDeque::from([prefix, next]), rest, status);
                (resp, Label::Miss, Shared::FetchYourself)
            }
        }
    }

    /// A stale entry in place of a 500, 502, 503 or 504 from the upstream,
    /// when `stale-if-error` allows it (RFC 5861 §4); the error's body is dropped.
    fn stale_for_server_error(
        &self,
        parts: &Parts,
        stale: &Option<Arc<CachedResponse>>,
        req_cc: &CacheControl,
        status: StatusCode,
    ) -> Option<(Response<Body>, Label, Shared)> {
        if !matches!(status.as_u16(), 500 | 502 | 503 | 504) {
            return None;
        }
        let e = stale.as_ref()?;
        let now = self.clock.now();
        if !e.may_serve_on_error(req_cc, now, false) {
            return None;
        }
        let cache_status = CacheStatus::hit(e, now)
            .with_fwd_status(status.as_u16())
            .with_detail(Detail::StaleIfError);
        let resp = self.serve_entry(parts, e, Label::Hit, cache_status);
        Some((resp, Label::Hit, Shared::FetchYourself))
    }

    /// Answers from a complete response (stored or just fetched), honouring
    /// the client's own `If-None-Match` / `If-Modified-Since` and HEAD.
    fn serve_entry(
        &self,
        parts: &Parts,
        e: &CachedResponse,
        lbl: Label,
        cache_status: CacheStatus,
    ) -> Response<Body> {
        let mut headers = e.headers.clone();
        // Entries keep no `Age` header; a hit, or a fresh answer that was
        // already old when it arrived, gets the computed one.
        if lbl == Label::Hit || !e.initial_age.is_zero() {
            let age = e.age(self.clock.now()).as_secs();
            headers.insert(header::AGE, HeaderValue::from(age));
        }
        let not_modified =
            e.status == StatusCode::OK && not_modified(&parts.headers, e, self.clock.wall());
        let total = e.body.len();
        let range = if parts.method == Method::GET && e.status == StatusCode::OK {
            requested_range(&parts.headers, e)
        } else {
            RangeAnswer::Full
        };
        let (status, body) = if not_modified {
            headers.remove(header::CONTENT_LENGTH);
            (StatusCode::NOT_MODIFIED, empty())
        } else if let RangeAnswer::Unsatisfiable = range {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                headers.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::RANGE_NOT_SATISFIABLE, empty())
        } else {
            let (status, bytes) = match range {
                RangeAnswer::Part(first, last) => {
                    let v = format!("bytes {first}-{last}/{total}");
                    if let Ok(v) = HeaderValue::from_str(&v) {
                        headers.insert(header::CONTENT_RANGE, v);
                    }
                    (StatusCode::PARTIAL_CONTENT, e.body.slice(first..=last))
                }
                _ => (e.status, e.body.clone()),
            };
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            if parts.method == Method::HEAD {
                (status, empty())
            } else {
                if lbl == Label::Hit {
                    add(&self.counters.bytes_from_cache, bytes.len() as u64);
                }
                (status, full(bytes))
            }
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        label(resp, lbl, cache_status)
    }

    fn store_insert(&self, cache: &CacheState, key: &str, entry: Arc<CachedResponse>) -> bool {
        let mut store = cache.store.lock().unwrap_or_else(|e| e.into_inner());
        let r = store.insert(key, entry);
        self.update_gauges(&store);
        drop(store);
        add(&self.counters.evictions, r.evicted);
        if r.stored {
            bump(&self.counters.stored);
        }
        r.stored
    }

    pub(super) fn store_remove(&self, cache: &CacheState, key: &str) {
        let mut store = cache.store.lock().unwrap_or_else(|e| e.into_inner());
        if store.remove(key) {
            self.update_gauges(&store);
        }
    }

    fn update_gauges(&self, store: &Store) {
        use std::sync::atomic::Ordering::Relaxed;
        self.counters.cache_bytes.store(store.used_bytes(), Relaxed);
        self.counters
            .cache_entries
            .store(store.len() as u64, Relaxed);
    }
}
