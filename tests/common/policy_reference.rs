//! Plain reference caches of unit-size objects, one per eviction policy,
//! written from each policy's definition (vectors and linear scans,
//! nothing shared with `src/cache_policy/`): the policy module's unit tests
//! and the end-to-end replay through the proxy (tests/traffic.rs) both
//! check against these.

#![allow(dead_code)]

use std::collections::VecDeque;

/// The reference: unit-weight caches over plain vectors, oldest first.
pub enum Reference {
    Lru(Vec<u64>),
    Fifo(Vec<u64>),
    Sieve {
        entries: Vec<(u64, bool)>,
        hand: Option<usize>,
    },
    S3Fifo {
        small: VecDeque<(u64, u8)>,
        main: VecDeque<(u64, u8)>,
        ghost: VecDeque<u64>,
        /// Whether anything was evicted yet (libCacheSim's `has_evicted`).
        evicted_once: bool,
    },
}

impl Reference {
    /// The policy named as `[cache] policy` names it (`lru`, `fifo`,
    /// `sieve`, `s3fifo`).
    pub fn named(policy: &str) -> Self {
        match policy {
            "lru" => Reference::Lru(Vec::new()),
            "fifo" => Reference::Fifo(Vec::new()),
            "sieve" => Reference::Sieve {
                entries: Vec::new(),
                hand: None,
            },
            "s3fifo" => Reference::S3Fifo {
                small: VecDeque::new(),
                main: VecDeque::new(),
                ghost: VecDeque::new(),
                evicted_once: false,
            },
            other => panic!("no reference for policy {other}"),
        }
    }

    /// One request; true on a hit.
    pub fn access(&mut self, key: u64, capacity: usize) -> bool {
        match self {
            Reference::Lru(v) => {
                if let Some(i) = v.iter().position(|&k| k == key) {
                    v.remove(i);
                    v.push(key);
                    return true;
                }
                if v.len() == capacity {
                    v.remove(0);
                }
                v.push(key);
                false
            }
            Reference::Fifo(v) => {
                if v.contains(&key) {
                    return true;
                }
                if v.len() == capacity {
                    v.remove(0);
                }
                v.push(key);
                false
            }
            Reference::Sieve { entries, hand } => {
                if let Some(e) = entries.iter_mut().find(|e| e.0 == key) {
                    e.1 = true;
                    return true;
                }
                if entries.len() == capacity {
                    let mut i = hand.unwrap_or(0);
                    while entries[i].1 {
                        entries[i].1 = false;
                        i = (i + 1) % entries.len();
                    }
                    entries.remove(i);
                    *hand = (i < entries.len()).then_some(i);
                }
                entries.push((key, false));
                false
            }
            Reference::S3Fifo {
                small,
                main,
                ghost,
                evicted_once,
            } => {
                let small_cap = (capacity / 10).max(1);
                let main_cap = capacity - small_cap;
                let ghost_cap = (capacity * 9 / 10).max(1);
                if let Some(e) = small.iter_mut().chain(main.iter_mut()).find(|e| e.0 == key) {
                    e.1 = (e.1 + 1).min(3);
                    return true;
                }
                // A remembered key is forgotten on arrival, before evictions.
                let ghost_hit = match ghost.iter().position(|&k| k == key) {
                    Some(i) => ghost.remove(i).is_some(),
                    None => false,
                };
                while small.len() + main.len() >= capacity {
                    *evicted_once = true;
                    if main.len() > main_cap || small.is_empty() {
                        // Main: reinsert what was used, evict the first unused.
                        while let Some((k, f)) = main.pop_front() {
                            if f == 0 {
                                break;
                            }
                            main.push_back((k, f - 1));
                        }
                    } else {
                        // Small: promote what was hit twice, evict (to ghost) the first other.
                        while let Some((k, f)) = small.pop_front() {
                            if f < 2 {
                                if ghost.len() == ghost_cap {
                                    ghost.pop_front();
                                }
                                ghost.push_back(k);
                                break;
                            }
                            main.push_back((k, 0));
                        }
                    }
                }
                // Before the first eviction a full small queue sends new
                // keys to main (libCacheSim's S3FIFO.c).
                if ghost_hit || (!*evicted_once && small.len() >= small_cap) {
                    main.push_back((key, 0));
                } else {
                    small.push_back((key, 0));
                }
                false
            }
        }
    }
}
