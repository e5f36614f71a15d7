//! The byte-bounded store of entries. Which entry goes when room is needed
//! is the [`Eviction`] policy's choice (least recently used by default); the
//! store keeps the entries, the byte accounting and the bounds.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;

use super::entry::CachedResponse;
use crate::cache_policy::{Evictor, Policy};

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inserted {
    /// Whether the entry is now in the store.
    pub stored: bool,
    /// Entries pushed out to make room.
    pub evicted: u64,
}

/// Chooses which entry leaves when the store needs room. The store tells it
/// every key that comes in, is used or goes out, and asks it for a victim;
/// it never sees entries or bytes beyond the weight of each key, so a policy
/// is pure bookkeeping and testable alone.
pub trait Eviction: Debug + Send {
    /// `key` was stored with `weight` bytes (it was not in the store).
    fn inserted(&mut self, key: &Arc<str>, weight: u64);
    /// `key` (in the store) answered a lookup.
    fn used(&mut self, key: &Arc<str>);
    /// `key` left the store (removed, replaced or evicted).
    fn removed(&mut self, key: &str);
    /// The key to evict next, still in the store until `removed` is called;
    /// `None` when the policy tracks nothing.
    fn victim(&mut self) -> Option<Arc<str>>;
    /// `key` is about to be stored, before the evictions that make room
    /// for it (S3-FIFO looks it up in its ghost queue now, as libCacheSim
    /// does when the request arrives).
    fn arriving(&mut self, _key: &str) {}
}

/// Least recently used first.
#[derive(Debug, Default)]
pub struct Lru {
    /// Use order: the smallest tick is the least recently used. Keys are
    /// shared with the store, so marking a hit copies no string.
    order: BTreeMap<u64, Arc<str>>,
    ticks: HashMap<Arc<str>, u64>,
    tick: u64,
}

impl Lru {
    fn touch(&mut self, key: &Arc<str>) {
        self.tick += 1;
        if let Some(old) = self.ticks.insert(key.clone(), self.tick) {
            self.order.remove(&old);
        }
        self.order.insert(self.tick, key.clone());
    }
}

impl Eviction for Lru {
    fn inserted(&mut self, key: &Arc<str>, _weight: u64) {
        self.touch(key);
    }

    fn used(&mut self, key: &Arc<str>) {
        self.touch(key);
    }

    fn removed(&mut self, key: &str) {
        if let Some(tick) = self.ticks.remove(key) {
            self.order.remove(&tick);
        }
    }

    fn victim(&mut self) -> Option<Arc<str>> {
        self.order.first_key_value().map(|(_, k)| k.clone())
    }
}

/// An [`Eviction`] by one of the [`Policy`]s of `cache_policy` (LRU, FIFO,
/// SIEVE, S3-FIFO), counting either bytes or objects against its capacity.
#[derive(Debug)]
pub struct PolicyEviction {
    evictor: Evictor<Arc<str>>,
    /// Count each entry as 1 (a capacity in objects) instead of its bytes.
    objects: bool,
}

impl PolicyEviction {
    /// `capacity` in bytes, or in objects when `objects`.
    pub fn new(policy: Policy, capacity: u64, objects: bool) -> Self {
        PolicyEviction {
            evictor: Evictor::new(policy, capacity),
            objects,
        }
    }
}

impl Eviction for PolicyEviction {
    fn inserted(&mut self, key: &Arc<str>, weight: u64) {
        let weight = if self.objects { 1 } else { weight };
        // The store made room already (same capacity, same units), so this
        // evicts nothing; were it to, those keys would be dropped from the
        // policy's view only, and the store's own bound still holds.
        let mut evicted = Vec::new();
        self.evictor.insert(key.clone(), weight, &mut evicted);
    }

    fn used(&mut self, key: &Arc<str>) {
        self.evictor.hit(key);
    }

    fn removed(&mut self, key: &str) {
        self.evictor.remove(&Arc::from(key));
    }

    fn victim(&mut self) -> Option<Arc<str>> {
        // Taken out of the policy's queues now (S3-FIFO remembers it in its
        // ghost queue); the store's `removed` for it then finds nothing.
        self.evictor.evict()
    }

    fn arriving(&mut self, key: &str) {
        self.evictor.arriving(&Arc::from(key));
    }
}

/// A byte-bounded store. The total weight of its entries never exceeds
/// `capacity`, and no single entry may weigh more than `max_entry`, so one
/// large object cannot flush the whole cache.
#[derive(Debug)]
pub struct Store {
    capacity: u64,
    /// `capacity_objects`: at most this many entries as well.
    max_objects: Option<u64>,
    max_entry: u64,
    entries: HashMap<Arc<str>, Slot>,
    eviction: Box<dyn Eviction>,
    used: u64,
}

#[derive(Debug)]
struct Slot {
    key: Arc<str>,
    entry: Arc<CachedResponse>,
    weight: u64,
}

impl Store {
    /// A least-recently-used store of `capacity` bytes whose entries are
    /// each at most `capacity / 8` bytes (see [`Store::per_entry_bound`]).
    pub fn new(capacity: u64) -> Self {
        Self::with_eviction(capacity, Box::new(Lru::default()))
    }

    /// A store of `capacity` bytes that evicts as `eviction` chooses.
    pub fn with_eviction(capacity: u64, eviction: Box<dyn Eviction>) -> Self {
        Store {
            capacity,
            max_objects: None,
            max_entry: Self::per_entry_bound(capacity),
            entries: HashMap::new(),
            eviction,
            used: 0,
        }
    }

    /// A store of `capacity` bytes evicting by `policy`; with `objects`,
    /// the policy counts entries against that many instead of bytes (as
    /// cache simulators do), and the byte capacity still bounds memory.
    pub fn with_policy(capacity: u64, objects: Option<u64>, policy: Policy) -> Self {
        let eviction = match objects {
            Some(n) => PolicyEviction::new(policy, n, true),
            None => PolicyEviction::new(policy, capacity, false),
        };
        let mut store = Self::with_eviction(capacity, Box::new(eviction));
        store.max_objects = objects;
        store
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
        let slot = self.entries.get(key)?;
        self.eviction.used(&slot.key);
        Some(slot.entry.clone())
    }

    /// The entry for `key` if `take` accepts it, only then marked as just
    /// used: a lookup that ends up answered elsewhere (and looked up again
    /// there) must not count twice for the policy (S3-FIFO counts hits).
    pub fn get_if(
        &mut self,
        key: &str,
        take: impl FnOnce(&CachedResponse) -> bool,
    ) -> Option<Arc<CachedResponse>> {
        let slot = self.entries.get(key)?;
        if !take(&slot.entry) {
            return None;
        }
        self.eviction.used(&slot.key);
        Some(slot.entry.clone())
    }

    /// Stores `entry` under `key` (replacing any older one), evicting what
    /// the policy chooses until it fits. An entry over the per-entry bound
    /// is not stored, and the older one is dropped (it is outdated).
    pub fn insert(&mut self, key: &str, entry: Arc<CachedResponse>) -> Inserted {
        self.remove(key);
        let weight = entry.weight(key);
        if weight > self.max_entry || weight > self.capacity {
            return Inserted::default();
        }
        self.eviction.arriving(key);
        let mut evicted = 0;
        let full = |s: &Self| {
            s.used + weight > s.capacity
                || s.max_objects.is_some_and(|n| s.entries.len() as u64 >= n)
        };
        while full(self) {
            let Some(victim) = self.eviction.victim() else {
                break;
            };
            // A policy that names a key the store lacks must still forget it,
            // or the loop would ask for it forever.
            if !self.remove(&victim) {
                self.eviction.removed(&victim);
                continue;
            }
            evicted += 1;
        }
        let key: Arc<str> = Arc::from(key);
        self.eviction.inserted(&key, weight);
        self.entries
            .insert(key.clone(), Slot { key, entry, weight });
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
                self.eviction.removed(key);
                self.used -= slot.weight;
                true
            }
            None => false,
        }
    }
}
