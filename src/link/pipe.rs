//! One direction of a packet link as a pure state machine: packets are
//! offered at an instant, cross loss, duplication, the queue and its server
//! (a rate, a delivery trace, outages), then the propagation delay, and are
//! popped when due. Time is always passed in, so tests run 10^6 packets
//! through it without sleeping; the TUN mover only carries out its answers.
//!
//! The order follows netem and Mahimahi: loss (Gilbert state first, then
//! Bernoulli) and duplication on arrival, the queue (droptail or CoDel at
//! dequeue), serialisation, then delay ± jitter clamped so packets keep
//! their order, except the `reorder_percent` that skip the delay.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use super::config::{DirConfig, Limit, QueueKind, Service};
use super::counters::Counters;
use super::trace::{Trace, OPPORTUNITY};

/// What crosses a link: anything with a size in bytes.
pub trait Packet: Clone {
    fn size(&self) -> usize;
}

impl Packet for Vec<u8> {
    fn size(&self) -> usize {
        self.len()
    }
}

/// A packet waiting in the queue, with when it arrived.
#[derive(Debug, Clone)]
struct Queued<P> {
    at: Instant,
    p: P,
}

/// A packet partly served by a trace's opportunities.
#[derive(Debug, Clone)]
struct InService<P> {
    q: Queued<P>,
    taken: Instant,
    sent: usize,
}

/// RFC 8289's state (section 5's pseudo-code, names kept).
#[derive(Debug, Clone)]
struct Codel {
    target: Duration,
    interval: Duration,
    first_above_time: Option<Instant>,
    drop_next: Instant,
    count: u32,
    lastcount: u32,
    dropping: bool,
}

/// Where a trace's server is: the `index`th opportunity of repetition `cycle`.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    cycle: u64,
    index: usize,
}

/// One direction of a link (see the module doc).
pub struct Pipe<P> {
    c: DirConfig,
    epoch: Instant,
    rng: ChaCha8Rng,
    bad: bool,
    queue: VecDeque<Queued<P>>,
    queued_bytes: u64,
    codel: Option<Codel>,
    /// Rate: when the packet on the wire has been sent.
    link_free: Instant,
    /// Trace: the next opportunity, and the packet it continues.
    cursor: Cursor,
    in_service: Option<InService<P>>,
    /// Delivered in order of their due time (the clamp keeps it sorted).
    flight: VecDeque<(Instant, P)>,
    /// Packets that skipped the delay, also sorted by due time.
    early: VecDeque<(Instant, P)>,
    last_due: Instant,
    counters: Counters,
}

impl<P: Packet> Pipe<P> {
    /// A direction configured by `c`, whose clock (outages, trace
    /// repetitions) starts at `epoch`.
    pub fn new(c: DirConfig, epoch: Instant) -> Self {
        let codel = match c.queue.kind {
            QueueKind::DropTail => None,
            QueueKind::Codel { target, interval } => Some(Codel {
                target,
                interval,
                first_above_time: None,
                drop_next: epoch,
                count: 0,
                lastcount: 0,
                dropping: false,
            }),
        };
        Pipe {
            rng: ChaCha8Rng::seed_from_u64(c.seed),
            c,
            epoch,
            bad: false,
            queue: VecDeque::new(),
            queued_bytes: 0,
            codel,
            link_free: epoch,
            cursor: Cursor { cycle: 0, index: 0 },
            in_service: None,
            flight: VecDeque::new(),
            early: VecDeque::new(),
            last_due: epoch,
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &DirConfig {
        &self.c
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// `p` reaches the link at `now` (which never goes back between calls).
    pub fn offer(&mut self, now: Instant, p: P) {
        self.counters.packets += 1;
        self.counters.bytes += p.size() as u64;
        if self.burst_lost() {
            self.counters.burst_lost += 1;
            return;
        }
        if self.c.loss_percent > 0.0 && self.rng.random::<f64>() * 100.0 < self.c.loss_percent {
            self.counters.lost += 1;
            return;
        }
        if self.c.duplicate_percent > 0.0
            && self.rng.random::<f64>() * 100.0 < self.c.duplicate_percent
        {
            self.counters.duplicated += 1;
            self.admit(now, p.clone());
        }
        self.admit(now, p);
        self.advance(now);
    }

    /// The Gilbert chain moves one packet on; whether that packet is lost.
    fn burst_lost(&mut self) -> bool {
        let Some(g) = self.c.burst_loss else {
            return false;
        };
        let leave = if self.bad { g.r } else { g.p };
        if self.rng.random::<f64>() < leave {
            self.bad = !self.bad;
        }
        let chance = if self.bad { g.h } else { g.k };
        chance >= 1.0 || (chance > 0.0 && self.rng.random::<f64>() < chance)
    }

    /// Into the queue, unless it is full.
    fn admit(&mut self, now: Instant, p: P) {
        let len = p.size() as u64;
        let full = match self.c.queue.limit {
            Limit::Packets(n) => self.queue.len() >= n,
            Limit::Bytes(b) => self.queued_bytes + len > b,
        };
        if full {
            self.counters.queue_drops += 1;
            return;
        }
        self.queued_bytes += len;
        self.queue.push_back(Queued { at: now, p });
    }

    /// Serves the queue up to `now`: every packet whose turn on the link has
    /// come leaves the queue and is scheduled for delivery.
    pub fn advance(&mut self, now: Instant) {
        match self.c.service.clone() {
            Service::Unlimited => {
                while let Some(t) = self.queue.front().map(|q| self.up_at(q.at)) {
                    if t > now {
                        break;
                    }
                    if let Some(q) = self.take(t) {
                        self.schedule(t, t, q);
                    }
                }
            }
            Service::Rate(bps) => {
                while let Some(t) = self
                    .queue
                    .front()
                    .map(|q| self.up_at(q.at.max(self.link_free)))
                {
                    if t > now {
                        break;
                    }
                    if let Some(q) = self.take(t) {
                        let secs = (q.p.size() as f64 * 8.0 / bps).min(3600.0);
                        self.link_free = t + Duration::from_secs_f64(secs);
                        self.schedule(t, self.link_free, q);
                    }
                }
            }
            Service::Trace(trace) => self.serve_trace(&trace, now),
        }
    }

    /// Spends the trace's opportunities up to `now` on the queue.
    fn serve_trace(&mut self, trace: &Trace, now: Instant) {
        while let Some(t) = self.next_opportunity(trace) {
            if t > now {
                return;
            }
            let mut credit = OPPORTUNITY;
            loop {
                let mut s = match self.in_service.take() {
                    Some(s) => s,
                    None => match self.take(t) {
                        Some(q) => InService {
                            q,
                            taken: t,
                            sent: 0,
                        },
                        None => break,
                    },
                };
                let rest = s.q.p.size().saturating_sub(s.sent).max(1);
                if rest > credit {
                    s.sent += credit;
                    self.in_service = Some(s);
                    break;
                }
                credit -= rest;
                self.schedule(s.taken, t, s.q);
                if credit == 0 {
                    break;
                }
            }
            self.step(trace);
        }
    }

    /// The next opportunity with something to send, not in an outage (the
    /// cursor moves past those without); `None` when nothing waits.
    fn next_opportunity(&mut self, trace: &Trace) -> Option<Instant> {
        let ready = match (&self.in_service, self.queue.front()) {
            (Some(s), _) => s.taken,
            (None, Some(q)) => q.at,
            (None, None) => return None,
        };
        let mut t = self.opportunity(trace, self.cursor);
        if t < ready {
            self.seek(trace, ready);
            t = self.opportunity(trace, self.cursor);
        }
        while self.down(t) {
            let up = self.up_at(t);
            self.seek(trace, up);
            t = self.opportunity(trace, self.cursor);
        }
        Some(t)
    }

    fn opportunity(&self, trace: &Trace, c: Cursor) -> Instant {
        let ms = trace.opportunities()[c.index];
        self.epoch + trace.period() * c.cycle as u32 + Duration::from_millis(ms)
    }

    fn step(&mut self, trace: &Trace) {
        self.cursor.index += 1;
        if self.cursor.index == trace.opportunities().len() {
            self.cursor = Cursor {
                cycle: self.cursor.cycle + 1,
                index: 0,
            };
        }
    }

    /// Moves the cursor to the first opportunity at or after `t`.
    fn seek(&mut self, trace: &Trace, t: Instant) {
        let since = t.saturating_duration_since(self.epoch).as_nanos();
        let period = trace.period().as_nanos().max(1);
        let cycle = (since / period) as u64;
        let offset = since % period;
        let ms = trace.opportunities();
        let index = ms.partition_point(|&m| u128::from(m) * 1_000_000 < offset);
        let last = ms.len() - 1;
        // A period's last opportunity is at the next one's start.
        self.cursor = if offset == 0 && cycle > 0 && u128::from(ms[last]) * 1_000_000 == period {
            Cursor {
                cycle: cycle - 1,
                index: ms.partition_point(|&m| m < ms[last]),
            }
        } else if index == ms.len() {
            Cursor {
                cycle: cycle + 1,
                index: 0,
            }
        } else {
            Cursor { cycle, index }
        };
    }

    /// Whether the link is in an outage at `t`.
    fn down(&self, t: Instant) -> bool {
        self.up_at(t) != t
    }

    /// `t`, or the end of the outage `t` falls in.
    fn up_at(&self, t: Instant) -> Instant {
        let Some(o) = self.c.outage else {
            return t;
        };
        let every = o.every.as_nanos().max(1);
        let phase = t.saturating_duration_since(self.epoch).as_nanos() % every;
        let up_for = every - o.lasting.as_nanos();
        if phase >= up_for {
            t + Duration::from_nanos((every - phase) as u64)
        } else {
            t
        }
    }

    /// The head of the queue leaves it at `t` (a packet that arrived by
    /// then), through CoDel when that is the queue: `None` when nothing is
    /// left to send.
    fn take(&mut self, t: Instant) -> Option<Queued<P>> {
        let Some(mut codel) = self.codel.take() else {
            return self.pop(t);
        };
        let q = self.codel_dequeue(&mut codel, t);
        self.codel = Some(codel);
        q
    }

    fn pop(&mut self, t: Instant) -> Option<Queued<P>> {
        if self.queue.front().is_some_and(|q| q.at <= t) {
            let q = self.queue.pop_front()?;
            self.queued_bytes -= q.p.size() as u64;
            Some(q)
        } else {
            None
        }
    }

    /// RFC 8289 section 5.5's `dequeue`.
    fn codel_dequeue(&mut self, c: &mut Codel, now: Instant) -> Option<Queued<P>> {
        let (mut r, mut ok_to_drop) = self.codel_dodequeue(c, now);
        if r.is_none() {
            c.dropping = false;
            return None;
        }
        if c.dropping {
            if !ok_to_drop {
                c.dropping = false;
            }
            while now >= c.drop_next && c.dropping {
                self.counters.queue_drops += u64::from(r.is_some());
                c.count += 1;
                (r, ok_to_drop) = self.codel_dodequeue(c, now);
                if !ok_to_drop {
                    c.dropping = false;
                } else {
                    c.drop_next = control_law(c.drop_next, c.interval, c.count);
                }
            }
        } else if ok_to_drop {
            self.counters.queue_drops += 1;
            (r, _) = self.codel_dodequeue(c, now);
            c.dropping = true;
            let delta = c.count.saturating_sub(c.lastcount);
            c.count = 1;
            if delta > 1 && now.saturating_duration_since(c.drop_next) < 16 * c.interval {
                c.count = delta;
            }
            c.drop_next = control_law(now, c.interval, c.count);
            c.lastcount = c.count;
        }
        r
    }

    /// RFC 8289 section 5.4's `dodequeue`: the head, and whether its
    /// sojourn has stayed above target for an interval.
    fn codel_dodequeue(&mut self, c: &mut Codel, now: Instant) -> (Option<Queued<P>>, bool) {
        let Some(q) = self.pop(now) else {
            c.first_above_time = None;
            return (None, false);
        };
        let sojourn = now.saturating_duration_since(q.at);
        let mut ok_to_drop = false;
        if sojourn < c.target || self.queued_bytes <= OPPORTUNITY as u64 {
            c.first_above_time = None;
        } else {
            match c.first_above_time {
                None => c.first_above_time = Some(now + c.interval),
                Some(f) if now >= f => ok_to_drop = true,
                Some(_) => {}
            }
        }
        (Some(q), ok_to_drop)
    }

    /// `q` left the queue at `taken` and the bottleneck at `sent`: it is due
    /// after the propagation delay, or at once if it is reordered.
    fn schedule(&mut self, taken: Instant, sent: Instant, q: Queued<P>) {
        self.counters
            .record_sojourn(taken.saturating_duration_since(q.at));
        let reorder = self.c.reorder_percent > 0.0
            && self.rng.random::<f64>() * 100.0 < self.c.reorder_percent;
        let due = if reorder {
            self.counters.reordered += 1;
            self.early.push_back((sent, q.p));
            sent
        } else {
            let due = (sent + self.propagation()).max(self.last_due);
            self.last_due = due;
            self.flight.push_back((due, q.p));
            due
        };
        if due > q.at {
            self.counters.delayed += 1;
        }
    }

    /// `delay` + uniform(−jitter, +jitter), clamped at zero.
    fn propagation(&mut self) -> Duration {
        if self.c.jitter.is_zero() {
            return self.c.delay;
        }
        let j = self.c.jitter.as_secs_f64();
        let d = self.c.delay.as_secs_f64() + self.rng.random_range(-j..=j);
        Duration::from_secs_f64(d.max(0.0))
    }

    /// The next packet due by `now`, in due order.
    pub fn pop_due(&mut self, now: Instant) -> Option<P> {
        let f = self.flight.front().map(|e| e.0);
        let e = self.early.front().map(|e| e.0);
        let from_early = match (f, e) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(f), Some(e)) => e < f,
        };
        let list = if from_early {
            &mut self.early
        } else {
            &mut self.flight
        };
        if list.front().is_some_and(|(due, _)| *due <= now) {
            self.counters.delivered += 1;
            list.pop_front().map(|(_, p)| p)
        } else {
            None
        }
    }

    /// When something next happens on its own (a packet due, the server's
    /// next turn); `None` when the direction is idle until a packet comes.
    pub fn next_wake(&mut self) -> Option<Instant> {
        let due = [self.flight.front(), self.early.front()]
            .into_iter()
            .flatten()
            .map(|e| e.0)
            .min();
        let serve = match self.c.service.clone() {
            Service::Unlimited => self.queue.front().map(|q| self.up_at(q.at)),
            Service::Rate(_) => self
                .queue
                .front()
                .map(|q| self.up_at(q.at.max(self.link_free))),
            Service::Trace(trace) => self.next_opportunity(&trace),
        };
        match (due, serve) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Packets in the queue or on their way.
    pub fn backlog(&self) -> usize {
        self.queue.len() + self.flight.len() + self.early.len() + self.in_service.is_some() as usize
    }
}

/// RFC 8289's `control_law`: the next drop `interval / √count` after `t`.
fn control_law(t: Instant, interval: Duration, count: u32) -> Instant {
    t + interval.div_f64(f64::from(count.max(1)).sqrt())
}

#[cfg(test)]
mod tests;
