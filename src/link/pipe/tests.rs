//! The model against hand-computed timelines and, for the random knobs,
//! against their expected values over many seeded packets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::link::config::{Gilbert, Outage, Queue};
use crate::link::trace::{generate, Shape};

/// A test packet: its number and size.
#[derive(Debug, Clone, PartialEq)]
struct Pkt(u64, usize);

impl Packet for Pkt {
    fn size(&self) -> usize {
        self.1
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Offers `n` packets of `size` bytes every `gap` from `t0`, popping what is
/// due as time goes; returns (delivery time, packet) in delivery order.
fn run(
    pipe: &mut Pipe<Pkt>,
    t0: Instant,
    n: u64,
    size: usize,
    gap: Duration,
) -> Vec<(Instant, Pkt)> {
    let mut out = Vec::new();
    let drain = |pipe: &mut Pipe<Pkt>, out: &mut Vec<(Instant, Pkt)>, until: Instant| {
        while let Some(next) = pipe.next_wake().filter(|n| *n <= until) {
            pipe.advance(next);
            while let Some(p) = pipe.pop_due(next) {
                out.push((next, p));
            }
        }
    };
    for i in 0..n {
        let t = t0 + gap * i as u32;
        drain(pipe, &mut out, t);
        pipe.offer(t, Pkt(i, size));
        while let Some(p) = pipe.pop_due(t) {
            out.push((t, p));
        }
    }
    drain(pipe, &mut out, t0 + Duration::from_secs(3600));
    out
}

#[test]
fn a_clean_pipe_passes_everything_at_once() {
    let t0 = Instant::now();
    let mut p = Pipe::new(DirConfig::default(), t0);
    let out = run(&mut p, t0, 100, 1500, ms(1));
    assert_eq!(out.len(), 100);
    assert!(out.iter().all(|(t, pkt)| *t == t0 + ms(pkt.0)));
    let c = p.counters();
    assert_eq!(
        (c.packets, c.delivered, c.delayed, c.bytes),
        (100, 100, 0, 150_000)
    );
    assert_eq!(c.sojourn_at(0.99), Duration::ZERO);
}

#[test]
fn delay_and_jitter_keep_the_order_unless_reorder_asks() {
    let t0 = Instant::now();
    let cfg = DirConfig {
        delay: ms(10),
        jitter: ms(5),
        seed: 3,
        ..DirConfig::default()
    };
    let mut p = Pipe::new(cfg.clone(), t0);
    let out = run(&mut p, t0, 10_000, 100, Duration::from_micros(100));
    let order: Vec<u64> = out.iter().map(|(_, p)| p.0).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "in order");
    assert!(out
        .iter()
        .all(|(t, p)| *t >= t0 + Duration::from_micros(100) * p.0 as u32 + ms(5)));
    assert_eq!(p.counters().delayed, 10_000);

    let mut p = Pipe::new(
        DirConfig {
            reorder_percent: 10.0,
            jitter: Duration::ZERO,
            ..cfg
        },
        t0,
    );
    let out = run(&mut p, t0, 10_000, 100, Duration::from_micros(100));
    let reordered = p.counters().reordered;
    assert!((800..1200).contains(&reordered), "{reordered}");
    let late = out.windows(2).filter(|w| w[0].1 .0 > w[1].1 .0).count();
    assert!(late > 0, "some packets overtake");
    // A reordered packet skips the delay: it arrives as it was sent.
    assert_eq!(
        out.iter()
            .filter(|(t, p)| *t == t0 + Duration::from_micros(100) * p.0 as u32)
            .count() as u64,
        reordered
    );
}

#[test]
fn bernoulli_loss_and_duplicates_are_counted_and_seeded() {
    let t0 = Instant::now();
    let cfg = DirConfig {
        loss_percent: 1.0,
        duplicate_percent: 2.0,
        seed: 9,
        ..DirConfig::default()
    };
    let mut a = Pipe::new(cfg.clone(), t0);
    let out = run(&mut a, t0, 100_000, 100, Duration::from_micros(10));
    let c = a.counters();
    assert!((900..1100).contains(&c.lost), "{}", c.lost);
    assert!((1800..2200).contains(&c.duplicated), "{}", c.duplicated);
    assert_eq!(out.len() as u64, 100_000 - c.lost + c.duplicated);
    assert_eq!(c.delivered, out.len() as u64);
    let mut b = Pipe::new(cfg, t0);
    run(&mut b, t0, 100_000, 100, Duration::from_micros(10));
    assert_eq!(b.counters().lost, c.lost, "same seed, same decisions");
}

#[test]
fn gilbert_holds_its_stationary_loss_and_burst_length_over_a_million_packets() {
    let g: Gilbert = "p=1%,r=30%".parse().unwrap();
    let t0 = Instant::now();
    let mut p = Pipe::new(
        DirConfig {
            burst_loss: Some(g),
            seed: 42,
            ..DirConfig::default()
        },
        t0,
    );
    let n = 1_000_000u64;
    let (mut lost, mut bursts, mut in_burst) = (0u64, 0u64, false);
    for i in 0..n {
        let before = p.counters().burst_lost;
        p.offer(t0, Pkt(i, 100));
        while p.pop_due(t0).is_some() {}
        let gone = p.counters().burst_lost > before;
        lost += gone as u64;
        if gone && !in_burst {
            bursts += 1;
        }
        in_burst = gone;
    }
    let rate = lost as f64 / n as f64;
    let want = 0.01 / 0.31;
    assert!((rate / want - 1.0).abs() < 0.1, "loss {rate} vs {want}");
    let mean_burst = lost as f64 / bursts as f64;
    assert!(
        (mean_burst / (1.0 / 0.3) - 1.0).abs() < 0.1,
        "burst {mean_burst}"
    );
    assert_eq!(p.counters().lost, 0);
    assert_eq!(p.counters().burst_lost, lost);
}

#[test]
fn rate_serialises_and_droptail_drops_what_does_not_fit() {
    let t0 = Instant::now();
    // 1500 bytes at 12 Mbit/s: 1 ms each.
    let cfg = DirConfig {
        service: Service::Rate(12e6),
        queue: "droptail:5".parse().unwrap(),
        ..DirConfig::default()
    };
    let mut p = Pipe::new(cfg.clone(), t0);
    let out = run(&mut p, t0, 10, 1500, Duration::ZERO);
    // One on the wire at once, five queued, four dropped.
    assert_eq!(p.counters().queue_drops, 4);
    let times: Vec<Duration> = out.iter().map(|(t, _)| *t - t0).collect();
    assert_eq!(times, (1..=6).map(ms).collect::<Vec<_>>());
    let max = p.counters().sojourn_at(1.0);
    assert!(max >= ms(5) && max < ms(5) + ms(5) / 100, "{max:?}");

    let bytes = DirConfig {
        queue: "droptail:3000".parse().unwrap(),
        ..cfg.clone()
    };
    assert_eq!(
        bytes.queue,
        Queue {
            kind: QueueKind::DropTail,
            limit: Limit::Packets(3000)
        }
    );
    let bytes = DirConfig {
        queue: "droptail:3KB".parse().unwrap(),
        ..cfg
    };
    let mut p = Pipe::new(bytes, t0);
    run(&mut p, t0, 10, 1500, Duration::ZERO);
    assert_eq!(p.counters().queue_drops, 7, "two of 1500 bytes fit in 3000");
}

/// A fifth more than the link's rate for 20 s: droptail fills and stays
/// full; CoDel drops at the head until the sojourn is back near its target.
#[test]
fn codel_keeps_the_sojourn_near_target_where_droptail_fills_up() {
    let t0 = Instant::now();
    let base = DirConfig {
        service: Service::Rate(10e6),
        ..DirConfig::default()
    };
    let gap = Duration::from_micros(1000); // 12 Mbit/s of 1500-byte packets
    let mut tail = Pipe::new(
        DirConfig {
            queue: "droptail:1000".parse().unwrap(),
            ..base.clone()
        },
        t0,
    );
    run(&mut tail, t0, 20_000, 1500, gap);
    let mut codel = Pipe::new(
        DirConfig {
            queue: "codel".parse().unwrap(),
            ..base
        },
        t0,
    );
    run(&mut codel, t0, 20_000, 1500, gap);
    let (t, c) = (tail.counters(), codel.counters());
    eprintln!(
        "codel drops {} p50 {:?} p99 {:?}; droptail drops {} p50 {:?}",
        c.queue_drops,
        c.sojourn_at(0.5),
        c.sojourn_at(0.99),
        t.queue_drops,
        t.sojourn_at(0.5)
    );
    assert!(t.sojourn_at(0.5) > ms(900), "{:?}", t.sojourn_at(0.5));
    assert!(c.queue_drops > 3000, "{}", c.queue_drops);
    // Unresponsive traffic makes CoDel's drop rate climb slowly (it is made
    // for flows that back off), yet the queue stays a fraction of droptail's.
    assert!(
        c.sojourn_at(0.5) * 5 < t.sojourn_at(0.5),
        "{:?}",
        c.sojourn_at(0.5)
    );
}

/// CoDel lets a burst through: its sojourn exceeds the target for less
/// than an interval, so nothing is dropped.
#[test]
fn codel_does_not_drop_a_short_burst() {
    let t0 = Instant::now();
    let cfg = DirConfig {
        service: Service::Rate(12e6),
        queue: "codel:target=5ms,interval=100ms".parse().unwrap(),
        ..DirConfig::default()
    };
    let mut p = Pipe::new(cfg, t0);
    let out = run(&mut p, t0, 50, 1500, Duration::ZERO);
    assert_eq!(out.len(), 50);
    assert_eq!(p.counters().queue_drops, 0);
}

#[test]
fn a_trace_delivers_1500_bytes_per_opportunity_and_repeats() {
    let lines = generate(&Shape::Constant {
        rate_bps: 12e6,
        ms: 10,
    });
    let text: String = lines.iter().map(|t| format!("{t}\n")).collect();
    let trace = Arc::new(Trace::parse("c", &text).unwrap());
    let t0 = Instant::now();
    let mut p = Pipe::new(
        DirConfig {
            service: Service::Trace(trace.clone()),
            ..DirConfig::default()
        },
        t0,
    );
    // 30 full packets at once: one per ms, across three repetitions.
    let out = run(&mut p, t0, 30, 1500, Duration::ZERO);
    let times: Vec<Duration> = out.iter().map(|(t, _)| *t - t0).collect();
    assert_eq!(times, (1..=30).map(ms).collect::<Vec<_>>());
    // Small packets share an opportunity; a big one spans two.
    let mut p = Pipe::new(
        DirConfig {
            service: Service::Trace(trace),
            ..DirConfig::default()
        },
        t0,
    );
    let out = run(&mut p, t0, 6, 500, Duration::ZERO);
    assert_eq!(out.iter().filter(|(t, _)| *t == t0 + ms(1)).count(), 3);
    assert_eq!(out.iter().filter(|(t, _)| *t == t0 + ms(2)).count(), 3);
}

#[test]
fn an_idle_trace_does_not_bank_its_opportunities() {
    let trace = Arc::new(Trace::parse("c", "1\n2\n3\n4\n").unwrap());
    let t0 = Instant::now();
    let mut p = Pipe::new(
        DirConfig {
            service: Service::Trace(trace),
            ..DirConfig::default()
        },
        t0,
    );
    let late = t0 + ms(10_500) + Duration::from_micros(500);
    p.offer(late, Pkt(0, 1500));
    p.offer(late, Pkt(1, 1500));
    assert_eq!(p.next_wake(), Some(t0 + ms(10_501)));
    p.advance(t0 + ms(10_501));
    assert_eq!(p.pop_due(t0 + ms(10_501)), Some(Pkt(0, 1500)));
    assert_eq!(p.pop_due(t0 + ms(10_501)), None);
    assert_eq!(p.next_wake(), Some(t0 + ms(10_502)));
}

#[test]
fn an_outage_holds_packets_until_the_link_is_back() {
    let t0 = Instant::now();
    let cfg = DirConfig {
        outage: Some(Outage {
            every: ms(100),
            lasting: ms(20),
        }),
        ..DirConfig::default()
    };
    let mut p = Pipe::new(cfg.clone(), t0);
    let out = run(&mut p, t0, 200, 100, ms(1));
    for (t, pkt) in &out {
        let sent = pkt.0 % 100;
        let want = if sent >= 80 {
            ms(pkt.0 - sent + 100)
        } else {
            ms(pkt.0)
        };
        assert_eq!(*t - t0, want, "packet {}", pkt.0);
    }
    assert_eq!(p.counters().delayed, 40);
    // With a trace, the opportunities during an outage are lost.
    let trace = Arc::new(
        Trace::parse(
            "c",
            &(1..=100).map(|t| format!("{t}\n")).collect::<String>(),
        )
        .unwrap(),
    );
    let mut p = Pipe::new(
        DirConfig {
            service: Service::Trace(trace),
            ..cfg
        },
        t0,
    );
    let out = run(&mut p, t0, 100, 1500, Duration::ZERO);
    assert_eq!(out[78].0 - t0, ms(79));
    assert_eq!(
        out[79].0 - t0,
        ms(100),
        "the last opportunity of a period counts"
    );
    assert_eq!(out[80].0 - t0, ms(101));
}
