//! Zipf ranks: rank `r` of `n` drawn with probability ∝ r^-alpha, by
//! Hörmann and Derflinger's rejection-inversion (1996), as Apache Commons
//! and rand_distr do: O(1) memory and time whatever `n`, any `alpha > 0`.

use super::rng::Rng;

#[derive(Debug, Clone, PartialEq)]
pub struct Zipf {
    n: f64,
    alpha: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    s: f64,
}

impl Zipf {
    /// `n >= 1` ranks, exponent `alpha > 0` (checked by the caller).
    pub fn new(n: u64, alpha: f64) -> Self {
        let mut z = Zipf {
            n: n.max(1) as f64,
            alpha,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            s: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.s = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// A rank in `1..=n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_integral_n + rng.next_f64() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.alpha * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.alpha) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.alpha)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x − 1) / x`, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The maximum-likelihood exponent of draws from ranks `1..=n`: the
    /// `a` where the model's mean of ln r equals the sample's (bisection).
    fn fitted_alpha(counts: &[u64]) -> f64 {
        let total: u64 = counts.iter().sum();
        let mean_ln = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| c as f64 * ((i + 1) as f64).ln())
            .sum::<f64>()
            / total as f64;
        let model_mean_ln = |a: f64| {
            let (mut num, mut den) = (0.0, 0.0);
            for r in 1..=counts.len() {
                let w = (r as f64).powf(-a);
                num += w * (r as f64).ln();
                den += w;
            }
            num / den
        };
        // The model's mean of ln r falls as a grows.
        let (mut lo, mut hi) = (0.0, 5.0);
        for _ in 0..60 {
            let mid = (lo + hi) / 2.0;
            if model_mean_ln(mid) > mean_ln {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        (lo + hi) / 2.0
    }

    #[test]
    fn a_million_draws_fit_their_exponent_within_two_hundredths() {
        for (alpha, n) in [(0.6, 10_000u64), (0.8, 20_000), (1.0, 1_000), (1.3, 5_000)] {
            let zipf = Zipf::new(n, alpha);
            let mut rng = Rng::new(42);
            let mut counts = vec![0u64; n as usize];
            for _ in 0..1_000_000 {
                let r = zipf.sample(&mut rng);
                assert!((1..=n).contains(&r));
                counts[(r - 1) as usize] += 1;
            }
            let fitted = fitted_alpha(&counts);
            assert!(
                (fitted - alpha).abs() < 0.02,
                "alpha {alpha}, n {n}: fitted {fitted}"
            );
        }
    }

    #[test]
    fn one_rank_is_always_drawn_and_the_first_rank_leads() {
        let mut rng = Rng::new(1);
        assert!((0..100).all(|_| Zipf::new(1, 0.8).sample(&mut rng) == 1));
        let zipf = Zipf::new(100, 1.0);
        let ones = (0..10_000).filter(|_| zipf.sample(&mut rng) == 1).count();
        // P(1) = 1 / H(100) ≈ 0.1927.
        assert!((1800..2060).contains(&ones), "{ones}");
    }
}
