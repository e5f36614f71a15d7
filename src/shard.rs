//! `K/N` parts of a whole: which share of a run's units a `--shard` runs, and
//! how much of a workload's load a `--segment` applies. Pure arithmetic: K
//! counts from 1 (as Playwright's `--shard=1/4`), shares differ by at most
//! one and the remainder goes to the first parts, so the N parts always add
//! up to the whole.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// Part `k` of `n` (1 ≤ k ≤ n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Part {
    pub k: u32,
    pub n: u32,
}

/// The most parts a run can be split into: more agents or CI jobs than this
/// is a typo, not a plan.
pub const MAX_PARTS: u32 = 10_000;

impl Part {
    /// The whole: part 1 of 1.
    pub const WHOLE: Part = Part { k: 1, n: 1 };

    pub fn new(k: u32, n: u32) -> Result<Part, String> {
        if n == 0 || n > MAX_PARTS {
            return Err(format!("N must be from 1 to {MAX_PARTS}, not {n}"));
        }
        if k == 0 || k > n {
            return Err(format!(
                "K must be from 1 to N ({n}), not {k}: the parts are 1/{n} … {n}/{n}"
            ));
        }
        Ok(Part { k, n })
    }

    /// This part's share of `total`: `total / n`, plus one for the first
    /// `total % n` parts.
    pub fn share(self, total: u64) -> u64 {
        let (n, k) = (u64::from(self.n), u64::from(self.k));
        total / n + u64::from(k <= total % n)
    }

    /// This part's contiguous range of `len` items in order: the parts'
    /// ranges follow each other and cover `0..len` exactly once.
    pub fn range(self, len: usize) -> Range<usize> {
        let len64 = len as u64;
        let before: u64 = (1..self.k)
            .map(|k| Part { k, n: self.n }.share(len64))
            .sum();
        let start = usize::try_from(before).unwrap_or(len);
        let end = usize::try_from(before + self.share(len64)).unwrap_or(len);
        start..end
    }

    pub fn is_whole(self) -> bool {
        self.n == 1
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl FromStr for Part {
    type Err = String;

    /// `K/N`, e.g. `2/3`.
    fn from_str(s: &str) -> Result<Part, String> {
        let form = "give K/N with 1 ≤ K ≤ N, e.g. 1/3 (K counts from 1)";
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not K/N; {form}"))?;
        let num = |t: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("`{s}` is not K/N: `{t}` is not a whole number; {form}"))
        };
        Part::new(num(k)?, num(n)?).map_err(|e| format!("`{s}`: {e} (K/N, K counts from 1)"))
    }
}

/// A short digest of a file's bytes (FNV-1a, 64 bits, in hex): enough to
/// tell two versions of a scenario file apart, not a security measure.
pub fn digest(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_fnv1a() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(digest(b""), "cbf29ce484222325");
        assert_eq!(digest(b"a"), "af63dc4c8601ec8c");
        assert_eq!(digest(b"foobar"), "85944171f73967e8");
    }

    #[test]
    fn parses_k_of_n_and_refuses_the_rest() {
        assert_eq!("2/3".parse(), Ok(Part { k: 2, n: 3 }));
        assert_eq!("1/1".parse(), Ok(Part::WHOLE));
        for bad in ["0/3", "4/3", "x", "1/0", "1/x", "-1/3", "1/3/4", ""] {
            let e = bad.parse::<Part>().unwrap_err();
            assert!(e.contains("K/N"), "{bad}: {e}");
        }
        assert!("0/3".parse::<Part>().unwrap_err().contains("counts from 1"));
    }

    #[test]
    fn shares_add_up_with_the_remainder_first() {
        let shares: Vec<u64> = (1..=3).map(|k| Part { k, n: 3 }.share(10)).collect();
        assert_eq!(shares, [4, 3, 3]);
        let shares: Vec<u64> = (1..=4).map(|k| Part { k, n: 4 }.share(2)).collect();
        assert_eq!(shares, [1, 1, 0, 0]);
        for total in 0..40u64 {
            for n in 1..8 {
                let sum: u64 = (1..=n).map(|k| Part { k, n }.share(total)).sum();
                assert_eq!(sum, total, "{total} in {n}");
            }
        }
    }

    #[test]
    fn ranges_follow_each_other_and_cover_everything_once() {
        let r: Vec<Range<usize>> = (1..=3).map(|k| Part { k, n: 3 }.range(7)).collect();
        assert_eq!(r, [0..3, 3..5, 5..7]);
        for len in 0..30 {
            for n in 1..9 {
                let mut next = 0;
                for k in 1..=n {
                    let r = Part { k, n }.range(len);
                    assert_eq!(r.start, next);
                    next = r.end;
                }
                assert_eq!(next, len);
            }
        }
    }
}
