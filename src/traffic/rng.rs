//! SplitMix64: a small seeded generator whose sequence is fixed by this
//! file alone, so a scenario's `seed` draws the same requests whatever
//! version of `rand` the build uses. Counter-based use ([`Rng::at`]) lets
//! request `i` be drawn without drawing requests `0..i` first.

/// A SplitMix64 stream (Steele, Lea & Flood 2014).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective mix of 64 bits.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The stream for item `index` of purpose `stream` under `seed`:
    /// independent of every other (seed, stream, index).
    pub fn at(seed: u64, stream: u64, index: u64) -> Self {
        Rng::new(mix(
            mix(seed ^ mix(stream.wrapping_add(GOLDEN))).wrapping_add(index)
        ))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1]: safe to take the logarithm of.
    pub fn next_open(&mut self) -> f64 {
        1.0 - self.next_f64()
    }

    /// A standard normal draw (Box–Muller, one of the pair).
    pub fn next_normal(&mut self) -> f64 {
        let (u, v) = (self.next_open(), self.next_f64());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// An exponential draw of mean 1.
    pub fn next_exp(&mut self) -> f64 {
        -self.next_open().ln()
    }
}
