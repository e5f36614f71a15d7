//! Cache eviction policies, pure: which keys a cache of a given capacity
//! keeps and which it evicts, for LRU, FIFO, SIEVE and S3-FIFO as
//! libCacheSim defines them (so hit ratios compare with the literature).
//! Entries carry a weight (bytes, or 1 to count objects); the proxy's store
//! keeps the values and asks an [`Evictor`] what to drop.

mod queue;

use std::fmt;
use std::hash::Hash;
use std::str::FromStr;

use queue::{Queue, NIL};

/// Which entry a full cache drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Policy {
    /// Least recently used: a hit moves the entry to the front.
    #[default]
    Lru,
    /// First in, first out: hits change nothing.
    Fifo,
    /// SIEVE (Zhang et al., NSDI '24): FIFO order, a visited bit set by hits,
    /// and a hand that walks from the oldest entry clearing bits and evicts
    /// the first unvisited entry, staying where it stopped.
    Sieve,
    /// S3-FIFO (Yang et al., SOSP '23): a small FIFO (10 % of capacity) for
    /// new entries, a main FIFO (90 %) with 2-bit access counts, a ghost FIFO
    /// of evicted keys (90 % of capacity). An entry hit twice while in the
    /// small queue moves to main when it reaches the small queue's end (as
    /// libCacheSim's default threshold); one found in the ghost queue
    /// enters main directly.
    S3Fifo,
}

impl Policy {
    pub const ALL: [Policy; 4] = [Policy::Lru, Policy::Fifo, Policy::Sieve, Policy::S3Fifo];

    /// The name used in scenario files, flags and result labels.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Lru => "lru",
            Policy::Fifo => "fifo",
            Policy::Sieve => "sieve",
            Policy::S3Fifo => "s3fifo",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy name that is not one of [`Policy::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cache policy `{0}`; use one of \"lru\", \"fifo\", \"sieve\", \"s3fifo\"")]
pub struct UnknownPolicy(pub String);

impl FromStr for Policy {
    type Err = UnknownPolicy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPolicy(s.to_string()))
    }
}

/// The share of an S3-FIFO cache given to its small queue, and the ghost
/// queue's size as a share of the capacity (libCacheSim's defaults).
const S3FIFO_SMALL: f64 = 0.10;
const S3FIFO_GHOST: f64 = 0.90;
/// S3-FIFO's access counter saturates here (2 bits).
const S3FIFO_MAX_FREQ: u8 = 3;
/// Hits while in the small queue that move an entry to main when it leaves
/// small: libCacheSim's default `move_to_main_threshold` (the paper's text
/// says one; libCacheSim's figures use two, and netrun follows the code).
const S3FIFO_PROMOTE: u8 = 2;

/// The keys of a cache of `capacity` (in the unit of the weights), in the
/// order and with the state its [`Policy`] needs.
#[derive(Debug)]
pub struct Evictor<K> {
    policy: Policy,
    capacity: u64,
    state: State<K>,
}

#[derive(Debug)]
enum State<K> {
    /// LRU and FIFO: one queue, newest at the head.
    Queue(Queue<K>),
    /// SIEVE: one queue and the hand (`NIL`: start from the tail).
    Sieve {
        queue: Queue<K>,
        hand: usize,
    },
    S3Fifo(Box<S3Fifo<K>>),
}

#[derive(Debug)]
struct S3Fifo<K> {
    small: Queue<K>,
    main: Queue<K>,
    ghost: Queue<K>,
    small_capacity: u64,
    main_capacity: u64,
    ghost_capacity: u64,
    /// Whether anything was evicted yet: until then, once the small queue
    /// is full, new entries go to main (libCacheSim's `S3FIFO.c`, which
    /// keeps what arrives before the cache first fills a little longer).
    evicted_once: bool,
    /// A key found (and forgotten) in the ghost queue by [`Evictor::arriving`],
    /// to go to main when it is inserted.
    returning: Option<K>,
}

impl<K: Clone + Eq + Hash> Evictor<K> {
    pub fn new(policy: Policy, capacity: u64) -> Self {
        let state = match policy {
            Policy::Lru | Policy::Fifo => State::Queue(Queue::new()),
            Policy::Sieve => State::Sieve {
                queue: Queue::new(),
                hand: NIL,
            },
            Policy::S3Fifo => {
                // At least one unit each, so a tiny cache still admits entries.
                let small = ((capacity as f64 * S3FIFO_SMALL) as u64).max(1);
                State::S3Fifo(Box::new(S3Fifo {
                    small: Queue::new(),
                    main: Queue::new(),
                    ghost: Queue::new(),
                    small_capacity: small,
                    main_capacity: capacity.saturating_sub(small),
                    ghost_capacity: ((capacity as f64 * S3FIFO_GHOST) as u64).max(1),
                    evicted_once: false,
                    returning: None,
                }))
            }
        };
        Evictor {
            policy,
            capacity,
            state,
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Total weight of the entries kept (never above the capacity).
    pub fn used(&self) -> u64 {
        match &self.state {
            State::Queue(q) | State::Sieve { queue: q, .. } => q.used(),
            State::S3Fifo(s) => s.small.used() + s.main.used(),
        }
    }

    /// Entries kept (the S3-FIFO ghost queue holds no entries).
    pub fn len(&self) -> usize {
        match &self.state {
            State::Queue(q) | State::Sieve { queue: q, .. } => q.len(),
            State::S3Fifo(s) => s.small.len() + s.main.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, key: &K) -> bool {
        match &self.state {
            State::Queue(q) | State::Sieve { queue: q, .. } => q.find(key).is_some(),
            State::S3Fifo(s) => s.small.find(key).is_some() || s.main.find(key).is_some(),
        }
    }

    /// Marks a use of `key`: what a hit does under the policy. False when
    /// the key is not kept (a miss, which changes nothing here).
    pub fn hit(&mut self, key: &K) -> bool {
        match &mut self.state {
            State::Queue(q) => {
                let Some(at) = q.find(key) else {
                    return false;
                };
                if self.policy == Policy::Lru {
                    q.move_to_head(at);
                }
                true
            }
            State::Sieve { queue, .. } => {
                let Some(at) = queue.find(key) else {
                    return false;
                };
                queue.node_mut(at).freq = 1;
                true
            }
            State::S3Fifo(s) => {
                let found = s.small.find(key).map(|at| (&mut s.small, at));
                let found = found.or_else(|| s.main.find(key).map(|at| (&mut s.main, at)));
                let Some((queue, at)) = found else {
                    return false;
                };
                let node = queue.node_mut(at);
                node.freq = (node.freq + 1).min(S3FIFO_MAX_FREQ);
                true
            }
        }
    }

    /// Adds `key` (absent: a miss being filled), evicting entries until it
    /// fits; each evicted key is pushed to `evicted`. False (and nothing
    /// evicted) when the entry can never fit: heavier than the capacity.
    /// (libCacheSim's S3-FIFO also refuses entries as heavy as its small
    /// queue, so below 20 unit-weight slots it caches nothing; netrun admits
    /// them to the small queue.)
    pub fn insert(&mut self, key: K, weight: u64, evicted: &mut Vec<K>) -> bool {
        if weight > self.capacity {
            return false;
        }
        // A key S3-FIFO remembers is looked up (and forgotten) before the
        // evictions this insertion makes, which could push it out of the
        // ghost queue, as libCacheSim looks it up when the request arrives.
        self.arriving(&key);
        let ghost_hit = match &mut self.state {
            State::S3Fifo(s) => s.returning.take().is_some_and(|k| k == key),
            _ => false,
        };
        while self.used() + weight > self.capacity {
            match self.evict() {
                Some(k) => evicted.push(k),
                None => break,
            }
        }
        match &mut self.state {
            State::Queue(q) | State::Sieve { queue: q, .. } => {
                q.push_head(key, weight, 0);
            }
            State::S3Fifo(s) => {
                let small_full = s.small.used() >= s.small_capacity;
                if ghost_hit || (!s.evicted_once && small_full) {
                    s.main.push_head(key, weight, 0);
                } else {
                    s.small.push_head(key, weight, 0);
                }
            }
        }
        true
    }

    /// `key` is about to be inserted, before the evictions that make room
    /// for it: S3-FIFO looks it up (and forgets it) in its ghost queue now,
    /// so those evictions cannot push it out first. [`Evictor::insert`]
    /// does this itself; a caller that evicts on its own calls it first.
    pub fn arriving(&mut self, key: &K) {
        if let State::S3Fifo(s) = &mut self.state {
            if s.ghost.remove(key).is_some() {
                s.returning = Some(key.clone());
            }
        }
    }

    /// A whole request as a cache simulator sees it: a hit, or a miss that
    /// inserts `key`. Returns whether it was a hit.
    pub fn access(&mut self, key: &K, weight: u64, evicted: &mut Vec<K>) -> bool {
        if self.hit(key) {
            return true;
        }
        self.insert(key.clone(), weight, evicted);
        false
    }

    /// Drops `key` without counting an eviction (an entry replaced or
    /// invalidated). False when it was not kept.
    pub fn remove(&mut self, key: &K) -> bool {
        match &mut self.state {
            State::Queue(q) => q.remove(key).is_some(),
            State::Sieve { queue, hand } => {
                let Some(at) = queue.find(key) else {
                    return false;
                };
                if *hand == at {
                    *hand = queue.newer(at);
                }
                queue.remove_at(at);
                true
            }
            State::S3Fifo(s) => s.small.remove(key).or_else(|| s.main.remove(key)).is_some(),
        }
    }

    /// Evicts one entry by the policy and returns its key; `None` when empty.
    pub fn evict(&mut self) -> Option<K> {
        match &mut self.state {
            State::Queue(q) => q.pop_tail().map(|(k, _, _)| k),
            State::Sieve { queue, hand } => sieve_evict(queue, hand),
            State::S3Fifo(s) => s.evict(),
        }
    }
}

/// SIEVE's eviction: from the hand (or the oldest entry), towards newer
/// entries and round again from the oldest, clear visited bits until an
/// unvisited entry; evict it and leave the hand at the next newer one.
fn sieve_evict<K: Clone + Eq + Hash>(queue: &mut Queue<K>, hand: &mut usize) -> Option<K> {
    if queue.len() == 0 {
        return None;
    }
    let mut at = if *hand == NIL { queue.tail() } else { *hand };
    while queue.node(at).freq > 0 {
        queue.node_mut(at).freq = 0;
        at = match queue.newer(at) {
            NIL => queue.tail(),
            newer => newer,
        };
    }
    *hand = queue.newer(at);
    Some(queue.remove_at(at).0)
}

impl<K: Clone + Eq + Hash> S3Fifo<K> {
    /// One eviction, as libCacheSim's `S3FIFO_evict`: from main when main is
    /// over its share or the small queue is empty, else from small.
    fn evict(&mut self) -> Option<K> {
        self.evicted_once = true;
        if self.main.used() > self.main_capacity || self.small.len() == 0 {
            self.evict_main().or_else(|| self.evict_small())
        } else {
            self.evict_small().or_else(|| self.evict_main())
        }
    }

    /// The small queue's oldest entries: hit often enough since insertion
    /// → moved to main; otherwise evicted, its key remembered in the ghost
    /// queue. Stops at the first eviction.
    fn evict_small(&mut self) -> Option<K> {
        while let Some((key, weight, freq)) = self.small.pop_tail() {
            if freq >= S3FIFO_PROMOTE {
                self.main.push_head(key, weight, 0);
            } else {
                self.remember(key.clone(), weight);
                return Some(key);
            }
        }
        None
    }

    /// The main queue's oldest entries: accessed since they were last
    /// reinserted → reinserted with one access less; otherwise evicted.
    fn evict_main(&mut self) -> Option<K> {
        while let Some((key, weight, freq)) = self.main.pop_tail() {
            if freq >= 1 {
                self.main
                    .push_head(key, weight, freq.min(S3FIFO_MAX_FREQ) - 1);
            } else {
                return Some(key);
            }
        }
        None
    }

    fn remember(&mut self, key: K, weight: u64) {
        self.ghost.remove(&key);
        while self.ghost.len() > 0 && self.ghost.used() + weight > self.ghost_capacity {
            self.ghost.pop_tail();
        }
        self.ghost.push_head(key, weight, 0);
    }
}

#[cfg(test)]
mod tests;
