//! Mahimahi packet-delivery traces: one line per delivery opportunity of
//! 1500 bytes, the time in whole milliseconds since the start, never going
//! back; the trace repeats with the last line's time as its period. Parsed
//! here, and generated (`netrun link trace ...`) so netrun ships its own
//! rather than copies of third-party ones.

use std::time::Duration;

/// The bytes one delivery opportunity carries.
pub const OPPORTUNITY: usize = 1500;

/// A parsed trace: its opportunities in ms, and a name for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    name: String,
    ms: Vec<u64>,
}

impl Trace {
    /// Parses `text` (named `name` in errors): blank lines and `#` comments
    /// are skipped.
    pub fn parse(name: &str, text: &str) -> Result<Trace, String> {
        let mut ms = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let t = line.split('#').next().unwrap_or("").trim();
            if t.is_empty() {
                continue;
            }
            let v: u64 = t.parse().map_err(|_| {
                format!(
                    "{name}:{}: `{t}` is not a whole number of milliseconds",
                    i + 1
                )
            })?;
            if ms.last().is_some_and(|&last| v < last) {
                return Err(format!("{name}:{}: {v} ms goes back in time", i + 1));
            }
            ms.push(v);
        }
        match ms.last() {
            None => Err(format!("{name}: the trace has no delivery opportunity")),
            Some(0) => Err(format!(
                "{name}: the last opportunity is at 0 ms, so the trace has no period"
            )),
            Some(_) => Ok(Trace {
                name: name.to_string(),
                ms,
            }),
        }
    }

    /// Reads and parses the trace file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Trace, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the trace {}: {e}", path.display()))?;
        Trace::parse(&path.display().to_string(), &text)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long the trace lasts before it repeats.
    pub fn period(&self) -> Duration {
        Duration::from_millis(self.ms.last().copied().unwrap_or(1))
    }

    /// The opportunities' offsets within a period, in ms.
    pub fn opportunities(&self) -> &[u64] {
        &self.ms
    }

    /// The trace's average rate in bits per second.
    pub fn mean_rate(&self) -> f64 {
        (self.ms.len() * OPPORTUNITY * 8) as f64 / self.period().as_secs_f64()
    }
}

/// The shapes `netrun link trace` writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A constant rate (bits per second) for one period of `ms`.
    Constant { rate_bps: f64, ms: u64 },
    /// Rates held for `step_ms` each, in turn.
    Steps { rates_bps: Vec<f64>, step_ms: u64 },
    /// `rate_bps` for `on_ms`, then nothing for `off_ms`.
    OnOff {
        rate_bps: f64,
        on_ms: u64,
        off_ms: u64,
    },
}

impl std::str::FromStr for Shape {
    type Err = String;

    /// `constant:12Mbit/s[,period=1s]`, `steps:24Mbit/s+6Mbit/s[,step=2s]`,
    /// `onoff:12Mbit/s[,on=2s,off=500ms]`.
    fn from_str(s: &str) -> Result<Shape, String> {
        use crate::units::{parse_duration, BitRate};
        let (kind, rest) = s.split_once(':').ok_or_else(|| {
            format!("`{s}` is not a trace shape; write constant:12Mbit/s, steps:24Mbit/s+6Mbit/s or onoff:12Mbit/s")
        })?;
        let mut parts = rest.split(',').map(str::trim);
        let rates = parts.next().unwrap_or("");
        let mut opts = std::collections::BTreeMap::new();
        for p in parts {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("`{p}` is not key=value"))?;
            opts.insert(k.trim(), parse_duration(v)?);
        }
        let ms = |key: &str, default: u64| -> Result<u64, String> {
            let d = opts.get(key).map_or(default, |d| d.as_millis() as u64);
            if d == 0 {
                return Err(format!("`{key}` must be at least 1ms"));
            }
            Ok(d)
        };
        let rate = |r: &str| -> Result<f64, String> {
            let b: BitRate = r.parse()?;
            Ok(b.bits_per_sec())
        };
        let allowed: &[&str] = match kind {
            "constant" => &["period"],
            "steps" => &["step"],
            "onoff" => &["on", "off"],
            other => {
                return Err(format!(
                    "unknown trace shape `{other}`; use constant, steps or onoff"
                ))
            }
        };
        if let Some(k) = opts.keys().find(|k| !allowed.contains(k)) {
            return Err(format!(
                "`{k}` does not apply to a {kind} trace; use {}",
                allowed.join(", ")
            ));
        }
        Ok(match kind {
            "constant" => Shape::Constant {
                rate_bps: rate(rates)?,
                ms: ms("period", 1000)?,
            },
            "steps" => Shape::Steps {
                rates_bps: rates.split('+').map(rate).collect::<Result<_, _>>()?,
                step_ms: ms("step", 2000)?,
            },
            _ => Shape::OnOff {
                rate_bps: rate(rates)?,
                on_ms: ms("on", 2000)?,
                off_ms: ms("off", 500)?,
            },
        })
    }
}

/// The lines of a trace of `shape`: opportunities spread evenly over each
/// millisecond run at the rate asked (a fraction carried over, so the mean
/// rate is exact over the period).
pub fn generate(shape: &Shape) -> Vec<u64> {
    let segments: Vec<(f64, u64)> = match shape {
        Shape::Constant { rate_bps, ms } => vec![(*rate_bps, *ms)],
        Shape::Steps { rates_bps, step_ms } => rates_bps.iter().map(|&r| (r, *step_ms)).collect(),
        Shape::OnOff {
            rate_bps,
            on_ms,
            off_ms,
        } => vec![(*rate_bps, *on_ms), (0.0, *off_ms)],
    };
    let mut out = Vec::new();
    let mut start = 0u64;
    for (rate, len) in segments {
        let per_ms = rate / 8.0 / OPPORTUNITY as f64 / 1000.0;
        let mut credit = 0.0;
        for t in start + 1..=start + len {
            credit += per_ms;
            while credit >= 1.0 - 1e-9 {
                out.push(t);
                credit -= 1.0;
            }
        }
        start += len;
    }
    // The period is the last line's time: an idle tail still needs a line
    // to make the trace last as long as asked. An opportunity there is the
    // price (Mahimahi's own traces have the same property).
    if out.last() != Some(&start) && start > 0 {
        out.push(start);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_parses_and_repeats_with_its_last_time() {
        let t = Trace::parse("t", "1\n1\n# comment\n3\n\n4\n").unwrap();
        assert_eq!(t.opportunities(), [1, 1, 3, 4]);
        assert_eq!(t.period(), Duration::from_millis(4));
        assert_eq!(t.mean_rate(), 4.0 * 1500.0 * 8.0 / 0.004);
        assert!(Trace::parse("t", "2\n1\n")
            .unwrap_err()
            .contains("back in time"));
        assert!(Trace::parse("t", "").is_err());
        assert!(Trace::parse("t", "0\n").is_err());
        assert!(Trace::parse("t", "x\n").unwrap_err().contains("t:1"));
    }

    #[test]
    fn generated_traces_have_the_rate_asked() {
        let twelve = generate(&Shape::Constant {
            rate_bps: 12e6,
            ms: 1000,
        });
        assert_eq!(twelve.len(), 1000, "12 Mbit/s is one opportunity per ms");
        assert_eq!(twelve[..3], [1, 2, 3]);
        let text: String = twelve.iter().map(|t| format!("{t}\n")).collect();
        let t = Trace::parse("c", &text).unwrap();
        assert!((t.mean_rate() - 12e6).abs() < 1.0);

        let steps = generate(&Shape::Steps {
            rates_bps: vec![24e6, 6e6],
            step_ms: 100,
        });
        assert_eq!(steps.iter().filter(|&&t| t <= 100).count(), 200);
        assert_eq!(steps.iter().filter(|&&t| t > 100).count(), 50);

        let onoff = generate(&Shape::OnOff {
            rate_bps: 12e6,
            on_ms: 100,
            off_ms: 50,
        });
        assert_eq!(
            onoff.len(),
            101,
            "100 on, and the marker of the period's end"
        );
        assert_eq!(onoff.last(), Some(&150));

        assert_eq!(
            "steps:24Mbit/s+6Mbit/s,step=100ms".parse::<Shape>(),
            Ok(Shape::Steps {
                rates_bps: vec![24e6, 6e6],
                step_ms: 100
            })
        );
        assert!("onoff:1Mbit/s,step=1s"
            .parse::<Shape>()
            .unwrap_err()
            .contains("does not apply"));
    }
}
