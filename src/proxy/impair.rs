//! Link impairments (delay, jitter, loss, rate) the proxy applies in each
//! direction, on each of its two links ([`Link`]: clients ↔ proxy, proxy ↔
//! origin). The forwarders ask an [`Impairment`] about every datagram and
//! HTTP message; [`LinkModel`] is the seeded model behind `[links.*]` and the
//! `netrun proxy --delay/--upstream-delay/...` flags. Its decisions are pure
//! functions of the seed, the traffic and an injected clock, so they are
//! unit-tested without sleeping; the forwarders only carry them out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// Which way traffic is going through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to upstream.
    ToUpstream,
    /// Upstream back to the client.
    ToClient,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::ToUpstream => 0,
            Direction::ToClient => 1,
        }
    }

    /// Mixed into the seed so the two directions draw independent sequences.
    fn seed_salt(self) -> u64 {
        match self {
            Direction::ToUpstream => 0x5555_5555_5555_5555,
            Direction::ToClient => 0xAAAA_AAAA_AAAA_AAAA,
        }
    }
}

/// The links the proxy models. The names are the scenario's
/// (`[links.clients_proxy]`, `[links.proxy_origin]`) and stay stable: they
/// will also name kernel-shaped links between network namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Link {
    /// Between the clients and the proxy: every exchange through the proxy
    /// crosses it, cache hits included.
    ClientsProxy,
    /// Between the proxy and the origin: only what the proxy sends upstream
    /// (misses, revalidations, bypassed requests, UDP) and the answers.
    ProxyOrigin,
}

impl Link {
    /// The scenario name of the link.
    pub fn as_str(self) -> &'static str {
        match self {
            Link::ClientsProxy => "clients_proxy",
            Link::ProxyOrigin => "proxy_origin",
        }
    }

    /// Mixed into the seed so two links with the same seed draw independent
    /// sequences. Zero for the clients' link: its decisions are the ones
    /// `[impair]` always gave for a seed.
    fn seed_salt(self) -> u64 {
        match self {
            Link::ClientsProxy => 0,
            Link::ProxyOrigin => 0x0F0F_0F0F_F0F0_F0F0,
        }
    }
}

/// What to do with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it on now.
    Forward,
    /// Pass it on once this much time has passed (counted as delayed).
    Delay(Duration),
    /// Drop it (counted as an impairment drop).
    Drop,
}

/// A link model applied by the proxy. Implementations must be cheap: they
/// run in the forwarding hot path.
pub trait Impairment: Send + Sync + 'static {
    /// Decides the fate of a datagram of `len` bytes going `dir`.
    fn datagram(&self, _dir: Direction, _len: usize) -> Verdict {
        Verdict::Forward
    }

    /// [`Impairment::datagram`] for a datagram that reaches this link at
    /// `at`, later than now: it is still crossing the link before (the other
    /// side of the proxy), so a rate-limited link queues it from then.
    fn datagram_arriving(&self, dir: Direction, len: usize, _at: Instant) -> Verdict {
        self.datagram(dir, len)
    }

    /// Extra delay before an HTTP message (request head upstream, response
    /// head back to the client) goes `dir`.
    fn http_delay(&self, _dir: Direction) -> Duration {
        Duration::ZERO
    }

    /// Whether HTTP bodies going `dir` must be paced with [`Impairment::http_body_wait`].
    fn paces_http_bodies(&self, _dir: Direction) -> bool {
        false
    }

    /// How long `len` bytes of an HTTP body going `dir` wait for the link:
    /// queueing behind earlier traffic plus their own serialisation. Never a
    /// drop: TCP would retransmit.
    fn http_body_wait(&self, _dir: Direction, _len: usize) -> Duration {
        Duration::ZERO
    }

    /// True when the model never drops, delays or paces anything, whatever
    /// the traffic: the UDP forwarder then passes datagrams on without
    /// asking it about each one. A model that might ever act says false.
    fn is_transparent(&self) -> bool {
        false
    }
}

/// A perfect link.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoImpairment;

impl Impairment for NoImpairment {
    fn is_transparent(&self) -> bool {
        true
    }
}

/// The knobs of a [`LinkModel`]; each applies to each direction separately.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkConfig {
    /// Fixed one-way delay (a round trip through the proxy gets twice this).
    pub delay: Duration,
    /// Each message's delay is `delay` ± up to `jitter` (uniform), never below
    /// zero. Jitter larger than `delay` is allowed; the clamp at zero then
    /// raises the mean delay a little. Messages may overtake each other, as on
    /// a real jittery path.
    pub jitter: Duration,
    /// Chance, in percent (0–100), that a datagram is dropped. UDP only: HTTP
    /// rides on TCP, which would retransmit, so loss does not apply to it.
    pub loss_percent: f64,
    /// Link rate in bits per second; 0 is unlimited. Datagrams and HTTP
    /// response bodies are serialised on a virtual link per direction and
    /// queue behind each other; datagrams past [`MAX_QUEUE`] of backlog are
    /// tail-dropped, HTTP bodies just wait (request bodies are not paced).
    pub rate_bps: f64,
    /// Seed of the random generators: the same seed and traffic give the
    /// same decisions.
    pub seed: u64,
}

impl LinkConfig {
    /// True when the model would never touch anything.
    pub fn is_none(&self) -> bool {
        self.delay.is_zero()
            && self.jitter.is_zero()
            && self.loss_percent <= 0.0
            && self.rate_bps <= 0.0
    }
}

impl std::fmt::Display for LinkConfig {
    /// `delay 10ms ±5ms loss 1% rate 10Mbit/s seed 1`, or `no impairment`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::units::{format_duration, BitRate};
        if self.is_none() {
            return f.write_str("no impairment");
        }
        write!(f, "delay {}", format_duration(self.delay))?;
        if !self.jitter.is_zero() {
            write!(f, " ±{}", format_duration(self.jitter))?;
        }
        write!(
            f,
            " loss {}% rate {} seed {}",
            self.loss_percent,
            BitRate(self.rate_bps),
            self.seed
        )
    }
}

/// Longest backlog the rate-limited virtual link queues; a datagram that
/// would wait longer is tail-dropped, as a router with a full queue would.
pub const MAX_QUEUE: Duration = Duration::from_secs(1);

/// The seeded link model: loss, then delay ± jitter, then serialisation at
/// `rate` behind the datagrams already queued in the same direction.
#[derive(Debug)]
pub struct LinkModel {
    config: LinkConfig,
    link: Link,
    /// One generator and queue per direction, so traffic one way does not
    /// change the decisions taken the other way.
    dirs: [Mutex<DirState>; 2],
}

/// One direction's state: its random generator and when its virtual link
/// has finished sending what is queued.
#[derive(Debug)]
struct DirState {
    rng: ChaCha8Rng,
    busy_until: Option<Instant>,
}

impl DirState {
    fn new(seed: u64, dir: Direction) -> Self {
        DirState {
            rng: ChaCha8Rng::seed_from_u64(seed ^ dir.seed_salt()),
            busy_until: None,
        }
    }

    /// The pure decision for one datagram of `len` bytes arriving at `now`.
    fn datagram(&mut self, c: &LinkConfig, now: Instant, len: usize) -> Verdict {
        if c.loss_percent > 0.0 && self.rng.random::<f64>() * 100.0 < c.loss_percent {
            return Verdict::Drop;
        }
        let mut wait = Duration::ZERO;
        if c.rate_bps > 0.0 {
            let backlog = self
                .busy_until
                .map_or(Duration::ZERO, |b| b.saturating_duration_since(now));
            if backlog > MAX_QUEUE {
                return Verdict::Drop;
            }
            wait = self.serialise(c, now, len);
        }
        wait += self.propagation(c);
        if wait.is_zero() {
            Verdict::Forward
        } else {
            Verdict::Delay(wait)
        }
    }

    /// Time until `len` bytes have crossed the rate-limited link, queued
    /// behind what is already on it. Unlike datagrams, never tail-dropped.
    fn serialise(&mut self, c: &LinkConfig, now: Instant, len: usize) -> Duration {
        if c.rate_bps <= 0.0 {
            return Duration::ZERO;
        }
        let start = self.busy_until.map_or(now, |b| b.max(now));
        // Capped so an absurdly low rate cannot overflow a Duration.
        let secs = (len as f64 * 8.0 / c.rate_bps).min(3600.0);
        let done = start + Duration::from_secs_f64(secs);
        self.busy_until = Some(done);
        done - now
    }

    /// `delay` + uniform(−jitter, +jitter), clamped at zero.
    fn propagation(&mut self, c: &LinkConfig) -> Duration {
        if c.jitter.is_zero() {
            return c.delay;
        }
        let j = c.jitter.as_secs_f64();
        let d = c.delay.as_secs_f64() + self.rng.random_range(-j..=j);
        Duration::from_secs_f64(d.max(0.0))
    }
}

impl LinkModel {
    /// The clients ↔ proxy link (what `[impair]` always was).
    pub fn new(config: LinkConfig) -> Self {
        Self::on(Link::ClientsProxy, config)
    }

    /// The model of `link`: its own random sequences for the same seed.
    pub fn on(link: Link, config: LinkConfig) -> Self {
        let seed = config.seed ^ link.seed_salt();
        LinkModel {
            config,
            link,
            dirs: [
                Mutex::new(DirState::new(seed, Direction::ToUpstream)),
                Mutex::new(DirState::new(seed, Direction::ToClient)),
            ],
        }
    }

    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Which link this models.
    pub fn link(&self) -> Link {
        self.link
    }

    fn state(&self, dir: Direction) -> std::sync::MutexGuard<'_, DirState> {
        // The state stays consistent even if a holder panicked: every
        // update is a single assignment.
        self.dirs[dir.index()]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// [`Impairment::datagram`] with the arrival time given, so tests can
    /// drive the rate queue without sleeping.
    pub fn datagram_at(&self, dir: Direction, len: usize, now: Instant) -> Verdict {
        self.state(dir).datagram(&self.config, now, len)
    }
}

impl Impairment for LinkModel {
    fn datagram(&self, dir: Direction, len: usize) -> Verdict {
        self.datagram_at(dir, len, Instant::now())
    }

    fn datagram_arriving(&self, dir: Direction, len: usize, at: Instant) -> Verdict {
        self.datagram_at(dir, len, at)
    }

    fn http_delay(&self, dir: Direction) -> Duration {
        self.state(dir).propagation(&self.config)
    }

    fn paces_http_bodies(&self, _dir: Direction) -> bool {
        self.config.rate_bps > 0.0
    }

    fn http_body_wait(&self, dir: Direction, len: usize) -> Duration {
        self.http_body_wait_at(dir, len, Instant::now())
    }

    fn is_transparent(&self) -> bool {
        self.config.is_none()
    }
}

impl LinkModel {
    /// [`Impairment::http_body_wait`] at a given time, for tests.
    pub fn http_body_wait_at(&self, dir: Direction, len: usize, now: Instant) -> Duration {
        self.state(dir).serialise(&self.config, now, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LinkConfig {
        LinkConfig {
            seed: 7,
            ..LinkConfig::default()
        }
    }

    fn decisions(m: &LinkModel, dir: Direction, n: usize) -> Vec<Verdict> {
        let now = Instant::now();
        (0..n).map(|_| m.datagram_at(dir, 100, now)).collect()
    }

    #[test]
    fn an_empty_config_forwards_everything() {
        let m = LinkModel::new(cfg());
        assert!(m.config().is_none());
        assert!(decisions(&m, Direction::ToClient, 100)
            .iter()
            .all(|v| *v == Verdict::Forward));
        assert_eq!(m.http_delay(Direction::ToUpstream), Duration::ZERO);
        // The forwarder skips only a model that can never act.
        assert!(m.is_transparent() && NoImpairment.is_transparent());
        for c in [
            LinkConfig {
                delay: Duration::from_micros(1),
                ..cfg()
            },
            LinkConfig {
                jitter: Duration::from_micros(1),
                ..cfg()
            },
            LinkConfig {
                loss_percent: 0.1,
                ..cfg()
            },
            LinkConfig {
                rate_bps: 1e9,
                ..cfg()
            },
        ] {
            assert!(!LinkModel::new(c).is_transparent(), "{c:?}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions() {
        let c = LinkConfig {
            loss_percent: 30.0,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(5),
            ..cfg()
        };
        let a = decisions(&LinkModel::new(c), Direction::ToUpstream, 1000);
        let b = decisions(&LinkModel::new(c), Direction::ToUpstream, 1000);
        assert_eq!(a, b);
        let other = LinkModel::new(LinkConfig { seed: 8, ..c });
        assert_ne!(a, decisions(&other, Direction::ToUpstream, 1000));
        // The directions draw independent sequences.
        let m = LinkModel::new(c);
        assert_ne!(a, decisions(&m, Direction::ToClient, 1000));
    }

    #[test]
    fn each_link_draws_its_own_sequence_for_one_seed() {
        let c = LinkConfig {
            loss_percent: 30.0,
            ..cfg()
        };
        let clients = LinkModel::new(c);
        assert_eq!(clients.link(), Link::ClientsProxy);
        let origin = LinkModel::on(Link::ProxyOrigin, c);
        let a = decisions(&clients, Direction::ToUpstream, 1000);
        assert_ne!(a, decisions(&origin, Direction::ToUpstream, 1000));
        // The clients' link keeps the decisions `[impair]` gave for a seed.
        let again = LinkModel::on(Link::ClientsProxy, c);
        assert_eq!(a, decisions(&again, Direction::ToUpstream, 1000));
    }

    #[test]
    fn a_datagram_arriving_later_queues_from_its_arrival() {
        let m = LinkModel::on(
            Link::ProxyOrigin,
            LinkConfig {
                rate_bps: 1e6,
                ..cfg()
            },
        );
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Arrives in 50 ms: the link is idle then, only its own 10 ms.
        assert_eq!(
            m.datagram_arriving(Direction::ToClient, 1250, t0 + ms(50)),
            Verdict::Delay(ms(10))
        );
        // The next one at 55 ms waits for the first to finish (at 60 ms).
        assert_eq!(
            m.datagram_arriving(Direction::ToClient, 1250, t0 + ms(55)),
            Verdict::Delay(ms(15))
        );
    }

    #[test]
    fn loss_matches_the_asked_percentage() {
        for pct in [1.0, 10.0, 50.0] {
            let m = LinkModel::new(LinkConfig {
                loss_percent: pct,
                ..cfg()
            });
            let n = 100_000;
            let drops = decisions(&m, Direction::ToUpstream, n)
                .iter()
                .filter(|v| **v == Verdict::Drop)
                .count();
            let got = drops as f64 * 100.0 / n as f64;
            assert!((got - pct).abs() <= 1.0, "asked {pct}%, got {got}%");
        }
        let all = LinkModel::new(LinkConfig {
            loss_percent: 100.0,
            ..cfg()
        });
        assert!(decisions(&all, Direction::ToClient, 1000)
            .iter()
            .all(|v| *v == Verdict::Drop));
    }

    #[test]
    fn delay_and_jitter_stay_within_bounds() {
        let fixed = LinkModel::new(LinkConfig {
            delay: Duration::from_millis(10),
            ..cfg()
        });
        assert_eq!(
            fixed.datagram_at(Direction::ToUpstream, 10, Instant::now()),
            Verdict::Delay(Duration::from_millis(10))
        );
        assert_eq!(
            fixed.http_delay(Direction::ToClient),
            Duration::from_millis(10)
        );

        let m = LinkModel::new(LinkConfig {
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(5),
            ..cfg()
        });
        let (lo, hi) = (Duration::from_millis(5), Duration::from_millis(15));
        let mut seen = std::collections::HashSet::new();
        for v in decisions(&m, Direction::ToClient, 10_000) {
            let Verdict::Delay(d) = v else {
                panic!("{v:?}")
            };
            assert!(d >= lo && d <= hi, "{d:?}");
            seen.insert(d.as_micros() / 1000);
        }
        assert!(seen.len() > 5, "jitter should spread delays: {seen:?}");

        // Jitter beyond the delay is clamped at zero, never negative.
        let wide = LinkModel::new(LinkConfig {
            delay: Duration::from_millis(1),
            jitter: Duration::from_millis(10),
            ..cfg()
        });
        for _ in 0..1000 {
            assert!(wide.http_delay(Direction::ToUpstream) <= Duration::from_millis(11));
        }
    }

    #[test]
    fn rate_serialises_datagrams_one_after_the_other() {
        // 1 Mbit/s: 1250 bytes take 10 ms on the wire.
        let m = LinkModel::new(LinkConfig {
            rate_bps: 1e6,
            ..cfg()
        });
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let d = |at: Duration| m.datagram_at(Direction::ToUpstream, 1250, t0 + at);
        assert_eq!(d(ms(0)), Verdict::Delay(ms(10)));
        // Arrives while the first is still on the wire: queues behind it.
        assert_eq!(d(ms(1)), Verdict::Delay(ms(19)));
        // Arrives after the link went idle: only its own serialisation.
        assert_eq!(d(ms(100)), Verdict::Delay(ms(10)));
        // The other direction has its own link.
        assert_eq!(
            m.datagram_at(Direction::ToClient, 125, t0),
            Verdict::Delay(ms(1))
        );

        // Rate and delay add up: serialisation, then propagation.
        let both = LinkModel::new(LinkConfig {
            rate_bps: 1e6,
            delay: ms(5),
            ..cfg()
        });
        assert_eq!(
            both.datagram_at(Direction::ToClient, 1250, t0),
            Verdict::Delay(ms(15))
        );
    }

    #[test]
    fn http_bodies_queue_on_the_link_but_are_never_dropped() {
        let m = LinkModel::new(LinkConfig {
            rate_bps: 1e6,
            ..cfg()
        });
        assert!(m.paces_http_bodies(Direction::ToClient));
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(m.http_body_wait_at(Direction::ToClient, 1250, t0), ms(10));
        // Two seconds of backlog: waits, unlike a datagram.
        assert_eq!(
            m.http_body_wait_at(Direction::ToClient, 250_000, t0),
            ms(2010)
        );
        // Datagrams share the same link and find it full.
        assert_eq!(m.datagram_at(Direction::ToClient, 10, t0), Verdict::Drop);
        assert!(!LinkModel::new(cfg()).paces_http_bodies(Direction::ToClient));
    }

    #[test]
    fn a_full_queue_tail_drops() {
        let m = LinkModel::new(LinkConfig {
            rate_bps: 1e6,
            ..cfg()
        });
        let t0 = Instant::now();
        // A burst of 10 ms datagrams: the first 101 fit in the one-second
        // backlog (the last starts exactly at the limit), the rest are dropped.
        let verdicts: Vec<_> = (0..150)
            .map(|_| m.datagram_at(Direction::ToUpstream, 1250, t0))
            .collect();
        let kept = verdicts.iter().filter(|v| **v != Verdict::Drop).count();
        assert_eq!(kept, 101);
        assert!(verdicts[101..].iter().all(|v| *v == Verdict::Drop));
        // Once the queue drains, datagrams pass again.
        assert_eq!(
            m.datagram_at(Direction::ToUpstream, 1250, t0 + Duration::from_secs(2)),
            Verdict::Delay(Duration::from_millis(10))
        );
    }
}
