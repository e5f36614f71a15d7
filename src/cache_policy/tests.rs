//! Each policy against a plain reference implementation written from its
//! definition (tests/common/policy_reference.rs, shared with tests/traffic.rs),
//! request by request on a seeded skewed trace, plus hand-worked cases.

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

#[path = "../../tests/common/policy_reference.rs"]
mod policy_reference;
use policy_reference::Reference;

#[test]
fn every_policy_matches_its_reference_request_by_request() {
    let trace = skewed_trace(20_000, 2_000, 7);
    for policy in Policy::ALL {
        for capacity in [1usize, 2, 5, 10, 37, 100, 500] {
            let mut cache = Evictor::new(policy, capacity as u64);
            let mut reference = Reference::named(&policy.to_string());
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
