//! The knobs of one direction of a packet link, and the compact forms users
//! write for the composite ones (`p=1%,r=30%`, `droptail:150KiB`,
//! `codel:target=5ms`, `every=10s,lasting=500ms`). Parsing only: the
//! behaviour lives in `pipe.rs`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::units::{format_duration, parse_duration, BitRate, ByteSize};

use super::trace::Trace;

/// One direction of a link: what happens to every packet crossing it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DirConfig {
    /// Fixed one-way propagation delay, after the queue.
    pub delay: Duration,
    /// Each packet's delay is `delay` ± up to `jitter` (uniform, never below
    /// zero); packets keep their order unless `reorder_percent` says.
    pub jitter: Duration,
    /// Chance in percent (0–100) that a packet is lost (Bernoulli).
    pub loss_percent: f64,
    /// Gilbert / Gilbert–Elliott burst loss, on top of `loss_percent`.
    pub burst_loss: Option<Gilbert>,
    /// Chance in percent that a packet is sent twice.
    pub duplicate_percent: f64,
    /// Chance in percent that a packet skips the delay (as netem's
    /// `reorder`), overtaking those still on their way.
    pub reorder_percent: f64,
    /// How fast the link drains its queue.
    pub service: Service,
    /// The queue in front of the link.
    pub queue: Queue,
    /// Periodic outages: the link delivers nothing while one lasts.
    pub outage: Option<Outage>,
    /// Seed of the direction's random generator.
    pub seed: u64,
}

impl DirConfig {
    /// True when the direction passes every packet at once, untouched.
    pub fn is_clean(&self) -> bool {
        self.delay.is_zero()
            && self.jitter.is_zero()
            && self.loss_percent <= 0.0
            && self.burst_loss.is_none()
            && self.duplicate_percent <= 0.0
            && self.reorder_percent <= 0.0
            && self.service == Service::Unlimited
            && self.outage.is_none()
    }
}

/// How the link serves its queue.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Service {
    /// No bottleneck: packets leave the queue as they come (outages aside).
    #[default]
    Unlimited,
    /// A constant rate in bits per second.
    Rate(f64),
    /// Mahimahi delivery opportunities (1500 bytes each), repeating.
    Trace(Arc<Trace>),
}

/// The Gilbert–Elliott model: a good and a bad state; `p` is the chance to
/// go from good to bad at a packet, `r` from bad to good; a packet is lost
/// with chance `h` in the bad state and `k` in the good one (netem's
/// `gemodel` takes the same four, naming the last two 1-h and 1-k). Plain
/// Gilbert: `h` = 1, `k` = 0. Chances are fractions (0–1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gilbert {
    pub p: f64,
    pub r: f64,
    pub h: f64,
    pub k: f64,
}

impl Gilbert {
    /// The long-run share of packets lost: π_bad·h + π_good·k.
    pub fn stationary_loss(&self) -> f64 {
        let bad = self.p / (self.p + self.r);
        bad * self.h + (1.0 - bad) * self.k
    }
}

/// The queue discipline and its hard limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Queue {
    pub kind: QueueKind,
    pub limit: Limit,
}

impl Default for Queue {
    /// Droptail of 1000 packets, Linux's default `txqueuelen`.
    fn default() -> Self {
        Queue {
            kind: QueueKind::DropTail,
            limit: Limit::Packets(1000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QueueKind {
    /// Drop arrivals while the queue is full.
    DropTail,
    /// RFC 8289 CoDel: drop at the head while the sojourn time stays above
    /// `target` for an `interval`.
    Codel {
        target: Duration,
        interval: Duration,
    },
}

/// How much a queue holds before it drops arrivals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Packets(usize),
    Bytes(u64),
}

/// Periodic outages: every `every`, the link is down for the last `lasting`
/// of the period (so a run starts with the link up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub every: Duration,
    pub lasting: Duration,
}

/// `key=value,key=value` pairs, each key once.
fn pairs(s: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not key=value"))?;
        let k = k.trim();
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(format!("`{k}` is given twice"));
        }
        out.push((k, v.trim()));
    }
    Ok(out)
}

/// A percentage `30%` (or a bare `30`, also percent) as a fraction.
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let n = t.strip_suffix('%').unwrap_or(t).trim();
    let v: f64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage; write e.g. 1% or 0.5%"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("`{s}` is not between 0% and 100%"));
    }
    Ok(v)
}

impl std::str::FromStr for Gilbert {
    type Err = String;

    /// `p=1%,r=30%[,h=100%,k=0%]`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut g = Gilbert {
            p: f64::NAN,
            r: f64::NAN,
            h: 1.0,
            k: 0.0,
        };
        for (k, v) in pairs(s)? {
            let f = parse_percent(v)? / 100.0;
            match k {
                "p" => g.p = f,
                "r" => g.r = f,
                "h" => g.h = f,
                "k" => g.k = f,
                other => return Err(format!("unknown burst-loss key `{other}`; use p, r, h, k")),
            }
        }
        if g.p.is_nan() || g.r.is_nan() {
            return Err(format!(
                "burst loss `{s}` needs p and r, e.g. p=1%,r=30% (p: good→bad, r: bad→good)"
            ));
        }
        if g.r <= 0.0 {
            return Err("burst loss r must be above 0% (else a burst never ends)".to_string());
        }
        Ok(g)
    }
}

impl std::str::FromStr for Queue {
    type Err = String;

    /// `droptail`, `droptail:1000` (packets), `droptail:150KiB` (bytes),
    /// `codel`, `codel:target=5ms,interval=100ms[,limit=1000]`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        let mut q = Queue::default();
        match kind.trim() {
            "droptail" => {
                if !rest.trim().is_empty() {
                    q.limit = parse_limit(rest)?;
                }
            }
            "codel" => {
                let (mut target, mut interval) =
                    (Duration::from_millis(5), Duration::from_millis(100));
                for (k, v) in pairs(rest)? {
                    match k {
                        "target" => target = parse_duration(v)?,
                        "interval" => interval = parse_duration(v)?,
                        "limit" => q.limit = parse_limit(v)?,
                        other => {
                            return Err(format!(
                                "unknown codel key `{other}`; use target, interval, limit"
                            ))
                        }
                    }
                }
                if target.is_zero() || interval.is_zero() {
                    return Err("codel's target and interval must be above zero".to_string());
                }
                q.kind = QueueKind::Codel { target, interval };
            }
            other => {
                return Err(format!(
                    "unknown queue `{other}`; use droptail[:PACKETS|:BYTES] or codel[:target=5ms,interval=100ms]"
                ))
            }
        }
        Ok(q)
    }
}

/// `1000` (packets) or `150KiB` (bytes: any size unit).
pub fn parse_limit(s: &str) -> Result<Limit, String> {
    let t = s.trim();
    let limit = if let Ok(n) = t.parse::<usize>() {
        Limit::Packets(n)
    } else {
        Limit::Bytes(t.parse::<ByteSize>()?.bytes())
    };
    match limit {
        Limit::Packets(0) | Limit::Bytes(0) => Err("a queue limit must be above zero".to_string()),
        l => Ok(l),
    }
}

impl std::str::FromStr for Outage {
    type Err = String;

    /// `every=10s,lasting=500ms`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (mut every, mut lasting) = (None, None);
        for (k, v) in pairs(s)? {
            match k {
                "every" => every = Some(parse_duration(v)?),
                "lasting" => lasting = Some(parse_duration(v)?),
                other => return Err(format!("unknown outage key `{other}`; use every, lasting")),
            }
        }
        let (Some(every), Some(lasting)) = (every, lasting) else {
            return Err(format!(
                "outage `{s}` needs every and lasting, e.g. every=10s,lasting=500ms"
            ));
        };
        if lasting.is_zero() || lasting >= every {
            return Err(format!(
                "an outage lasting {} every {} must last more than zero and less than its period",
                format_duration(lasting),
                format_duration(every)
            ));
        }
        Ok(Outage { every, lasting })
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = match self.limit {
            Limit::Packets(n) => format!("{n} packets"),
            Limit::Bytes(b) => format!("{b} bytes"),
        };
        match self.kind {
            QueueKind::DropTail => write!(f, "droptail of {limit}"),
            QueueKind::Codel { target, interval } => write!(
                f,
                "codel (target {}, interval {}, limit {limit})",
                format_duration(target),
                format_duration(interval)
            ),
        }
    }
}

impl fmt::Display for DirConfig {
    /// The knobs that are set, e.g. `delay 10ms, rate 20Mbit/s, droptail of 1000 packets`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.delay.is_zero() {
            parts.push(format!("delay {}", format_duration(self.delay)));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter {}", format_duration(self.jitter)));
        }
        if self.loss_percent > 0.0 {
            parts.push(format!("loss {}%", self.loss_percent));
        }
        if let Some(g) = self.burst_loss {
            parts.push(format!(
                "burst loss p={}% r={}% (h={}% k={}%)",
                g.p * 100.0,
                g.r * 100.0,
                g.h * 100.0,
                g.k * 100.0
            ));
        }
        if self.duplicate_percent > 0.0 {
            parts.push(format!("duplicate {}%", self.duplicate_percent));
        }
        if self.reorder_percent > 0.0 {
            parts.push(format!("reorder {}%", self.reorder_percent));
        }
        match &self.service {
            Service::Unlimited => {}
            Service::Rate(bps) => parts.push(format!("rate {}, {}", BitRate(*bps), self.queue)),
            Service::Trace(t) => parts.push(format!("trace {}, {}", t.name(), self.queue)),
        }
        if let Some(o) = self.outage {
            parts.push(format!(
                "outage of {} every {}",
                format_duration(o.lasting),
                format_duration(o.every)
            ));
        }
        if parts.is_empty() {
            return f.write_str("clean");
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compact_forms_parse() {
        let g: Gilbert = "p=1%,r=30%".parse().unwrap();
        assert_eq!((g.p, g.r, g.h, g.k), (0.01, 0.3, 1.0, 0.0));
        assert!((g.stationary_loss() - 0.01 / 0.31).abs() < 1e-12);
        assert!("p=1%"
            .parse::<Gilbert>()
            .unwrap_err()
            .contains("needs p and r"));
        assert!("p=1%,r=0".parse::<Gilbert>().is_err());

        let q: Queue = "droptail:150KiB".parse().unwrap();
        assert_eq!(q.limit, Limit::Bytes(150 * 1024));
        assert_eq!(
            "droptail:20".parse::<Queue>().unwrap().limit,
            Limit::Packets(20)
        );
        assert_eq!("droptail".parse::<Queue>().unwrap(), Queue::default());
        let c: Queue = "codel:target=2ms".parse().unwrap();
        assert_eq!(
            c.kind,
            QueueKind::Codel {
                target: Duration::from_millis(2),
                interval: Duration::from_millis(100)
            }
        );
        assert!("red"
            .parse::<Queue>()
            .unwrap_err()
            .contains("unknown queue"));

        let o: Outage = "every=10s,lasting=500ms".parse().unwrap();
        assert_eq!(o.lasting, Duration::from_millis(500));
        assert!("every=1s,lasting=2s".parse::<Outage>().is_err());
        assert!("every=1s,every=2s"
            .parse::<Outage>()
            .unwrap_err()
            .contains("twice"));
    }
}
