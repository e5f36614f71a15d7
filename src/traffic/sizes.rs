//! Object sizes: one fixed size, or a lognormal or Pareto distribution
//! capped at `max`, drawn per object so a key's size never changes.

use std::fmt;
use std::str::FromStr;

use super::rng::Rng;
use crate::units::ByteSize;

/// How big a catalog's objects are, in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeDist {
    Fixed(u64),
    /// `median × e^(sigma·Z)`, Z standard normal, within 1 ..= max.
    LogNormal {
        median: u64,
        sigma: f64,
        max: u64,
    },
    /// `min / U^(1/shape)`, U uniform in (0, 1], within min ..= max.
    Pareto {
        min: u64,
        shape: f64,
        max: u64,
    },
}

impl SizeDist {
    /// One object's size, at least 1 byte.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        let size = match *self {
            SizeDist::Fixed(n) => n,
            SizeDist::LogNormal { median, sigma, max } => {
                let x = median as f64 * (sigma * rng.next_normal()).exp();
                (x.round() as u64).min(max)
            }
            SizeDist::Pareto { min, shape, max } => {
                let x = min as f64 / rng.next_open().powf(1.0 / shape);
                (x.round() as u64).clamp(min, max)
            }
        };
        size.max(1)
    }

    /// The largest size it can give.
    pub fn max(&self) -> u64 {
        match *self {
            SizeDist::Fixed(n) => n.max(1),
            SizeDist::LogNormal { max, .. } | SizeDist::Pareto { max, .. } => max.max(1),
        }
    }
}

impl SizeDist {
    /// Refuses parameters that give no sensible sizes, saying which.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            SizeDist::Fixed(_) => Ok(()),
            SizeDist::LogNormal { median, sigma, max } => {
                if !(sigma.is_finite() && sigma > 0.0 && sigma <= 10.0) {
                    return Err(format!("sigma {sigma} is out of range; give a number above 0 and at most 10 (1.5 is typical of web objects)"));
                }
                if median == 0 || max < median {
                    return Err(format!("median {median} B and max {max} B: give a median of at least 1 B and a max at least as large"));
                }
                Ok(())
            }
            SizeDist::Pareto { min, shape, max } => {
                if !(shape.is_finite() && shape > 0.0 && shape <= 100.0) {
                    return Err(format!("shape {shape} is out of range; give a number above 0 and at most 100 (1.2 is a heavy tail)"));
                }
                if min == 0 || max < min {
                    return Err(format!("min {min} B and max {max} B: give a min of at least 1 B and a max at least as large"));
                }
                Ok(())
            }
        }
    }
}

/// `16KiB`, `lognormal:median=16KiB,sigma=1.5,max=8MiB` or
/// `pareto:min=1KiB,shape=1.2,max=64MiB` (the command line's form).
impl FromStr for SizeDist {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let Some((kind, params)) = s.split_once(':') else {
            return s.parse::<ByteSize>().map(|b| SizeDist::Fixed(b.bytes()));
        };
        let get = |name: &str| -> Result<String, String> {
            params
                .split(',')
                .find_map(|kv| kv.split_once('=').filter(|(k, _)| k.trim() == name))
                .map(|(_, v)| v.trim().to_string())
                .ok_or_else(|| format!("`{s}` lacks `{name}=`; e.g. {}", EXAMPLES))
        };
        let size = |v: String| v.parse::<ByteSize>().map(ByteSize::bytes);
        let number = |name: &str, v: String| {
            v.parse::<f64>()
                .map_err(|_| format!("{name} `{v}` is not a number"))
        };
        let d = match kind.trim() {
            "lognormal" => SizeDist::LogNormal {
                median: size(get("median")?)?,
                sigma: number("sigma", get("sigma")?)?,
                max: size(get("max")?)?,
            },
            "pareto" => SizeDist::Pareto {
                min: size(get("min")?)?,
                shape: number("shape", get("shape")?)?,
                max: size(get("max")?)?,
            },
            other => {
                return Err(format!(
                    "unknown size distribution `{other}`; use a size or one of {EXAMPLES}"
                ))
            }
        };
        d.check()?;
        Ok(d)
    }
}

const EXAMPLES: &str =
    "`lognormal:median=16KiB,sigma=1.5,max=8MiB`, `pareto:min=1KiB,shape=1.2,max=64MiB`";

impl fmt::Display for SizeDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SizeDist::Fixed(n) => write!(f, "{}", ByteSize(n)),
            SizeDist::LogNormal { median, sigma, max } => write!(
                f,
                "lognormal (median {}, sigma {sigma}, max {})",
                ByteSize(median),
                ByteSize(max)
            ),
            SizeDist::Pareto { min, shape, max } => write!(
                f,
                "pareto (min {}, shape {shape}, max {})",
                ByteSize(min),
                ByteSize(max)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(d: SizeDist, n: usize) -> Vec<u64> {
        let mut rng = Rng::new(9);
        let mut v: Vec<u64> = (0..n).map(|_| d.sample(&mut rng)).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn lognormal_sizes_have_their_median_and_respect_the_cap() {
        let v = draws(
            SizeDist::LogNormal {
                median: 16384,
                sigma: 1.5,
                max: 8 << 20,
            },
            100_001,
        );
        let median = v[50_000] as f64;
        assert!((median / 16384.0 - 1.0).abs() < 0.03, "{median}");
        assert!(*v.last().unwrap_or(&0) <= 8 << 20 && v[0] >= 1);
    }

    #[test]
    fn pareto_sizes_start_at_min_and_have_the_tail_of_their_shape() {
        let d = SizeDist::Pareto {
            min: 1024,
            shape: 1.2,
            max: 64 << 20,
        };
        let v = draws(d, 100_000);
        assert!(v[0] >= 1024 && *v.last().unwrap_or(&0) <= 64 << 20);
        // P(X > 10·min) = 10^-1.2 ≈ 0.0631.
        let over = v.iter().filter(|&&s| s > 10 * 1024).count() as f64 / 1e5;
        assert!((over - 0.0631).abs() < 0.004, "{over}");
        assert_eq!(SizeDist::Fixed(0).sample(&mut Rng::new(1)), 1);
    }

    #[test]
    fn the_command_line_form_parses_and_is_checked() {
        assert_eq!("16KiB".parse(), Ok(SizeDist::Fixed(16384)));
        assert_eq!(
            "pareto:min=1KiB,shape=1.2,max=64MiB".parse(),
            Ok(SizeDist::Pareto {
                min: 1024,
                shape: 1.2,
                max: 64 << 20
            })
        );
        let bad = |s: &str| s.parse::<SizeDist>().expect_err(s);
        assert!(bad("lognormal:median=1KiB,max=2KiB").contains("`sigma=`"));
        assert!(bad("lognormal:median=1KiB,sigma=0,max=2KiB").contains("sigma 0"));
        assert!(bad("weibull:k=1").contains("unknown size distribution"));
    }
}
