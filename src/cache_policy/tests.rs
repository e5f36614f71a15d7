//! Each policy against a plain reference implementation written from its
//! definition (vectors and linear scans, nothing shared with the module),
//! request by request on a seeded skewed trace, plus hand-worked cases.

use std::collections::VecDeque;

use super::*;

/// A skewed trace of `n` keys from `keys` (low keys far more popular),
/// from a fixed seed: SplitMix64, then u³ to skew.
fn skewed_trace(n: usize, keys: u64, seed: u64) -> Vec<u64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            (u * u * u * keys as f64) as u64
        })
        .collect()
}

/// The reference: unit-weight caches over plain vectors, oldest first.
enum Reference {
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
        evicted_once: bool,
    },
}

impl Reference {
    fn new(policy: Policy) -> Self {
        match policy {
            Policy::Lru => Reference::Lru(Vec::new()),
            Policy::Fifo => Reference::Fifo(Vec::new()),
            Policy::Sieve => Reference::Sieve {
                entries: Vec::new(),
                hand: None,
            },
            Policy::S3Fifo => Reference::S3Fifo {
                small: VecDeque::new(),
                main: VecDeque::new(),
                ghost: VecDeque::new(),
                evicted_once: false,
            },
        }
    }

    /// One request; true on a hit.
    fn access(&mut self, key: u64, capacity: usize) -> bool {
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

#[test]
fn every_policy_matches_its_reference_request_by_request() {
    let trace = skewed_trace(20_000, 2_000, 7);
    for policy in Policy::ALL {
        for capacity in [1usize, 2, 5, 10, 37, 100, 500] {
            let mut cache = Evictor::new(policy, capacity as u64);
            let mut reference = Reference::new(policy);
            let mut evicted = Vec::new();
            let mut hits = 0;
            for (i, &key) in trace.iter().enumerate() {
                let got = cache.access(&key, 1, &mut evicted);
                let want = reference.access(key, capacity);
                assert_eq!(
                    got, want,
                    "{policy} capacity {capacity}: request {i} (key {key})"
                );
                assert!(cache.len() <= capacity && cache.used() <= capacity as u64);
                hits += u64::from(got);
            }
            let misses = trace.len() as u64 - hits;
            assert_eq!(
                evicted.len() as u64,
                misses - cache.len() as u64,
                "{policy} capacity {capacity}: every miss inserts, so evictions = misses − kept"
            );
        }
    }
}

fn run(policy: Policy, capacity: u64, keys: &str) -> (String, Vec<char>) {
    let mut cache = Evictor::new(policy, capacity);
    let mut evicted = Vec::new();
    let hits: String = keys
        .chars()
        .map(|k| {
            if cache.access(&k, 1, &mut evicted) {
                'h'
            } else {
                'm'
            }
        })
        .collect();
    (hits, evicted)
}

#[test]
fn hand_worked_cases() {
    // A B A C: LRU drops B (A was used since), FIFO drops A (first in).
    assert_eq!(run(Policy::Lru, 2, "ABAC"), ("mmhm".into(), vec!['B']));
    assert_eq!(run(Policy::Fifo, 2, "ABAC"), ("mmhm".into(), vec!['A']));
    // SIEVE: C arrives, the hand starts at A (visited: cleared, passed) and
    // evicts B, the newest, so it restarts from the oldest next time: D
    // arrives and A, unvisited now, goes.
    assert_eq!(
        run(Policy::Sieve, 2, "ABACD"),
        ("mmhmm".into(), vec!['B', 'A'])
    );
    // S3-FIFO with 3 slots: small 1, main 2, ghost 2. A fills small; until
    // the first eviction, B and C go to main (small is full). D evicts A
    // from small to the ghost queue; A returns (forgotten by the ghost queue
    // on arrival), evicts D from small the same way and enters main
    // directly; main is now over its share, so E evicts B, the oldest
    // unused entry in main.
    let mut cache = Evictor::new(Policy::S3Fifo, 3);
    let mut evicted = Vec::new();
    let hits: String = "ABCDAE"
        .chars()
        .map(|k| {
            if cache.access(&k, 1, &mut evicted) {
                'h'
            } else {
                'm'
            }
        })
        .collect();
    assert_eq!((hits.as_str(), evicted), ("mmmmmm", vec!['A', 'D', 'B']));
    assert!(cache.contains(&'A') && cache.contains(&'C') && cache.contains(&'E'));
    // Two hits while in small promote to main on eviction; one does not.
    assert_eq!(
        run(Policy::S3Fifo, 2, "ABAACB"),
        ("mmhhmm".into(), vec!['B', 'C'])
    );
    assert_eq!(run(Policy::S3Fifo, 2, "ABACB"), ("mmhmh".into(), vec!['A']));
}

#[test]
fn byte_weights_keep_the_total_within_capacity_and_refuse_oversized_entries() {
    for policy in Policy::ALL {
        let mut cache = Evictor::new(policy, 1000);
        let mut evicted = Vec::new();
        assert!(!cache.insert("huge", 1001, &mut evicted), "{policy}");
        for (i, key) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
            cache.access(key, 60 + 10 * i as u64, &mut evicted);
            assert!(cache.used() <= 1000, "{policy}");
        }
        assert!(cache.remove(&"f") || !cache.contains(&"f"), "{policy}");
        assert!(!cache.contains(&"f"), "{policy}");
    }
}

#[test]
fn a_removed_entry_under_the_sieve_hand_moves_the_hand_on() {
    let mut cache = Evictor::new(Policy::Sieve, 3);
    let mut evicted = Vec::new();
    for k in ["a", "b", "c"] {
        cache.access(&k, 1, &mut evicted);
    }
    cache.hit(&"a");
    cache.access(&"d", 1, &mut evicted); // hand passes a, evicts b, rests on c
    assert_eq!(evicted, vec!["b"]);
    assert!(cache.remove(&"c"));
    cache.access(&"e", 1, &mut evicted); // fits: 3 entries
    cache.access(&"f", 1, &mut evicted); // hand on d (unvisited) → evicted
    assert_eq!(evicted, vec!["b", "d"]);
}

#[test]
fn policies_parse_from_their_names() {
    for p in Policy::ALL {
        assert_eq!(p.name().parse::<Policy>(), Ok(p));
    }
    let err = "arc".parse::<Policy>().unwrap_err().to_string();
    assert!(err.contains("\"s3fifo\""), "{err}");
}
