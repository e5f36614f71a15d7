//! The Mann–Whitney U test (Wilcoxon rank-sum) of two independent samples:
//! does one tend to give larger values than the other? Ranks make it immune
//! to the outliers a busy host produces. Exact (a full permutation of the
//! midranks, so ties are handled) for small samples, the normal
//! approximation with tie and continuity corrections beyond.

use statrs::distribution::{ContinuousCDF, Normal};

/// Largest number of arrangements enumerated for the exact p-value
/// (C(20, 10) = 184 756: every repetition count a CI run would use).
const EXACT_LIMIT: u64 = 200_000;

/// The outcome of a test of `a` against `b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample: pairs (x from a, y from b) with x > y, ties counting ½.
    pub u: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether `p_value` is exact (permutation) or from the normal approximation.
    pub exact: bool,
}

/// Tests `a` against `b`; `None` when either is empty.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let ranks = midranks(a, b);
    let n1 = a.len();
    let r1: f64 = ranks[..n1].iter().sum();
    let u = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    let n = a.len() + b.len();
    if binomial(n as u64, n1 as u64).is_some_and(|c| c <= EXACT_LIMIT) {
        return Some(MannWhitney {
            u,
            p_value: exact_p(&ranks, n1, r1),
            exact: true,
        });
    }
    Some(MannWhitney {
        u,
        p_value: normal_p(u, a.len(), b.len(), &ranks),
        exact: false,
    })
}

/// The smallest two-sided p-value samples of these sizes can reach (no
/// ties): below `alpha`, a verdict is possible at all.
pub fn smallest_p(n1: usize, n2: usize) -> f64 {
    match binomial((n1 + n2) as u64, n1 as u64) {
        Some(c) => (2.0 / c as f64).min(1.0),
        None => 0.0,
    }
}

/// Midranks (1-based, ties share their mean rank) of `a` then `b`, in input order.
fn midranks(a: &[f64], b: &[f64]) -> Vec<f64> {
    let all: Vec<f64> = a.iter().chain(b).copied().collect();
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&i, &j| all[i].total_cmp(&all[j]));
    let mut ranks = vec![0.0; all.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && all[order[j + 1]] == all[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// The two-sided exact p-value: the share of all ways to pick `n1` of the
/// ranks whose sum is at least as far from its mean as the observed `r1`.
fn exact_p(ranks: &[f64], n1: usize, r1: f64) -> f64 {
    let expected = n1 as f64 * (ranks.len() + 1) as f64 / 2.0;
    let observed = (r1 - expected).abs() - 1e-9;
    let (mut extreme, mut total) = (0u64, 0u64);
    let mut pick: Vec<usize> = (0..n1).collect();
    loop {
        let sum: f64 = pick.iter().map(|&i| ranks[i]).sum();
        total += 1;
        if (sum - expected).abs() >= observed {
            extreme += 1;
        }
        if !next_combination(&mut pick, ranks.len()) {
            break;
        }
    }
    extreme as f64 / total as f64
}

/// Advances `pick` (sorted indices below `n`) to the next combination in
/// lexicographic order; false after the last.
fn next_combination(pick: &mut [usize], n: usize) -> bool {
    let k = pick.len();
    let mut i = k;
    while i > 0 {
        i -= 1;
        if pick[i] < n - k + i {
            pick[i] += 1;
            for j in i + 1..k {
                pick[j] = pick[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

/// Normal approximation: z from U with the tie-corrected variance and a
/// continuity correction of ½.
fn normal_p(u: f64, n1: usize, n2: usize, ranks: &[f64]) -> f64 {
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let n = n1f + n2f;
    let mut sorted = ranks.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[i] {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    let mu = n1f * n2f / 2.0;
    let var = n1f * n2f / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        // Every value equal: no evidence of any difference.
        return 1.0;
    }
    let z = ((u - mu).abs() - 0.5).max(0.0) / var.sqrt();
    let normal = Normal::new(0.0, 1.0).expect("the standard normal is valid");
    (2.0 * (1.0 - normal.cdf(z))).min(1.0)
}

/// C(n, k), or `None` past u64.
fn binomial(n: u64, k: u64) -> Option<u64> {
    let k = k.min(n - k.min(n));
    let mut c: u64 = 1;
    for i in 0..k {
        c = c.checked_mul(n - i)? / (i + 1);
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two samples of five with a given U (no ties): a's values interleave b's.
    fn with_u(u: usize) -> (Vec<f64>, Vec<f64>) {
        // b = 10, 20, 30, 40, 50; a's values beat u of b's in total.
        let b: Vec<f64> = (1..=5).map(|i| f64::from(i) * 10.0).collect();
        let mut a = vec![1.0; 5];
        let mut left = u;
        for (i, x) in a.iter_mut().enumerate().rev() {
            let beats = left.min(5);
            // Distinct values (no ties), each above `beats` of b's.
            *x = beats as f64 * 10.0 + 5.0 + i as f64 * 0.01;
            left -= beats;
        }
        (a, b)
    }

    #[test]
    fn exact_p_matches_the_table_for_five_and_five() {
        // Counts of U = 0, 1, 2, 3 among the C(10,5) = 252 arrangements are
        // 1, 1, 2, 3: P(U ≤ 2) = 4/252, P(U ≤ 3) = 7/252. Two-sided, doubled.
        // So the textbook critical value at α = 0.05 is U = 2.
        for (u, p) in [(0, 2.0 / 252.0), (2, 8.0 / 252.0), (3, 14.0 / 252.0)] {
            let (a, b) = with_u(u);
            let r = mann_whitney(&a, &b).unwrap();
            assert_eq!(r.u, u as f64, "{a:?} {b:?}");
            assert!(r.exact);
            assert!((r.p_value - p).abs() < 1e-12, "U={u}: {}", r.p_value);
        }
        assert!(mann_whitney(&with_u(2).0, &with_u(2).1).unwrap().p_value < 0.05);
        assert!(mann_whitney(&with_u(3).0, &with_u(3).1).unwrap().p_value > 0.05);
        assert!((smallest_p(5, 5) - 2.0 / 252.0).abs() < 1e-15);
        assert!(
            smallest_p(3, 3) > 0.05,
            "three and three can never be significant"
        );
    }

    #[test]
    fn normal_approximation_with_ties() {
        // a = 1, 2, 2 and b = 2, 3, 4: midranks 1, 3, 3 | 3, 5, 6; R1 = 7, U = 1.
        // σ² = 9/12 × (7 − 24/30) = 4.65, z = (|1 − 4.5| − 0.5)/√4.65 = 1.39122,
        // p = 2(1 − Φ(1.39122)) = 0.16416.
        let ranks = midranks(&[1.0, 2.0, 2.0], &[2.0, 3.0, 4.0]);
        assert_eq!(ranks, [1.0, 3.0, 3.0, 3.0, 5.0, 6.0]);
        let p = normal_p(1.0, 3, 3, &ranks);
        assert!((p - 0.16416).abs() < 1e-4, "{p}");
        // Every value tied: no difference at all.
        let r = mann_whitney(&[1.0; 30], &[1.0; 30]).unwrap();
        assert!(!r.exact);
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn large_samples_use_the_normal_approximation() {
        let a: Vec<f64> = (0..100).map(f64::from).collect();
        let b: Vec<f64> = (50..150).map(f64::from).collect();
        let r = mann_whitney(&a, &b).unwrap();
        assert!(!r.exact);
        // a beats b in 0 + 1 + … + 49 pairs and ties 50 (½ each): U = 1250 of 10000.
        assert_eq!(r.u, 1250.0);
        assert!(r.p_value < 1e-15);
        let same = mann_whitney(&a, &a).unwrap();
        assert!(same.p_value > 0.99);
    }
}
