//! Pure QoS maths: latency statistics (HdrHistogram percentiles, exact
//! min/mean/max/stddev), RFC 3550 jitter, ipdv, the classification of probe
//! replies (ok, reordered, late, duplicate, lost) and throughput. No sockets,
//! no clocks: callers pass nanosecond timestamps, so every case is testable by hand.

use std::collections::TryReserveError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency the histogram holds: one hour, in microseconds. Larger
/// values saturate (they still count, at this value).
pub const HIST_MAX_US: u64 = 3_600_000_000;

/// Streaming latency statistics: O(1) memory whatever the sample count.
/// Percentiles come from an HdrHistogram with microsecond resolution and 3
/// significant digits (exact below 2.048 ms, within 0.1% above); min, max,
/// mean and the population standard deviation are exact (Welford).
#[derive(Debug, Clone)]
pub struct LatencyStats {
    /// Made at the first sample: an empty one (TLS times in clear text, a
    /// workload that never connects) costs no 180 KB of counts.
    hist: Option<Histogram<u64>>,
    count: u64,
    min_ns: u64,
    max_ns: u64,
    mean_ns: f64,
    m2: f64,
}

/// A summary of [`LatencyStats`], in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub stddev_ms: f64,
}

impl Default for LatencyStats {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyStats {
    pub fn new() -> Self {
        LatencyStats {
            hist: None,
            count: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            mean_ns: 0.0,
            m2: 0.0,
        }
    }

    pub fn record(&mut self, d: Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn record_ns(&mut self, ns: u64) {
        // Round to the nearest µs; a sub-µs sample counts as 1 µs (the floor).
        let us = ((ns + 500) / 1000).max(1);
        self.hist
            .get_or_insert_with(|| {
                Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
            })
            .saturating_record(us);
        self.count += 1;
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        let x = ns as f64;
        let delta = x - self.mean_ns;
        self.mean_ns += delta / self.count as f64;
        self.m2 += delta * (x - self.mean_ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// `None` when nothing was recorded.
    pub fn summary(&self) -> Option<LatencySummary> {
        let hist = self.hist.as_ref().filter(|_| self.count > 0)?;
        let (min_ms, max_ms) = (ns_to_ms(self.min_ns as f64), ns_to_ms(self.max_ns as f64));
        // The histogram reports a bucket's highest equivalent value, which can
        // exceed the exact maximum (p99 7.0 ms beside max 6.9 ms); clamp it.
        let q = |q: f64| (hist.value_at_quantile(q) as f64 / 1000.0).clamp(min_ms, max_ms);
        Some(LatencySummary {
            count: self.count,
            min_ms,
            mean_ms: ns_to_ms(self.mean_ns),
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms,
            stddev_ms: ns_to_ms((self.m2 / self.count as f64).sqrt()),
        })
    }
}

pub fn ns_to_ms(ns: f64) -> f64 {
    ns / 1_000_000.0
}

/// RFC 3550 interarrival jitter and RFC 3393-style ipdv over consecutive
/// replies, fed in sequence order. With round-trip times, the difference of
/// transit-time differences between replies i−1 and i is `D = RTT(i) − RTT(i−1)`
/// (the unknown clock offset cancels); then `J += (|D| − J) / 16` and
/// `ipdv_mean = mean |D|`. The first reply only sets the reference.
#[derive(Debug, Clone, Copy, Default)]
pub struct JitterAcc {
    prev_ns: Option<f64>,
    jitter_ns: f64,
    sum_abs_d_ns: f64,
    pairs: u64,
}

impl JitterAcc {
    pub fn push(&mut self, rtt_ns: f64) {
        if let Some(prev) = self.prev_ns {
            let d = (rtt_ns - prev).abs();
            self.jitter_ns += (d - self.jitter_ns) / 16.0;
            self.sum_abs_d_ns += d;
            self.pairs += 1;
        }
        self.prev_ns = Some(rtt_ns);
    }

    /// Pairs of consecutive replies seen.
    pub fn pairs(&self) -> u64 {
        self.pairs
    }

    /// RFC 3550 jitter, nanoseconds; `None` with fewer than two replies.
    pub fn jitter_ns(&self) -> Option<f64> {
        (self.pairs > 0).then_some(self.jitter_ns)
    }

    /// Mean |RTT(i) − RTT(i−1)|, nanoseconds; `None` with fewer than two replies.
    pub fn ipdv_mean_ns(&self) -> Option<f64> {
        (self.pairs > 0).then(|| self.sum_abs_d_ns / self.pairs as f64)
    }

    /// Sum of |D| (to pool ipdv over several flows).
    pub fn sum_abs_d_ns(&self) -> f64 {
        self.sum_abs_d_ns
    }
}

/// What a probe reply was, on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyClass {
    /// First copy, within its timeout, no higher sequence number seen before it.
    Ok,
    /// First copy, within its timeout, after a reply with a higher sequence number.
    Reordered,
    /// First copy, after its own timeout (`RTT > timeout`): not received, not lost.
    Late,
    /// A further copy of a datagram that already had a reply.
    Dup,
    /// A sequence number this flow never sent (counted as foreign).
    Unknown,
}

/// Per-datagram state: a byte and a time slot per sequence number.
const NONE: u8 = 0;
const IN_TIME: u8 = 1;
const LATE: u8 = 2;

/// One 8-byte time slot per datagram of a flow, shared by its sender and
/// its [`FlowTracker`]: the sender records each datagram's send time there
/// ([`SendTimes::record`], before sending it), and an in-time reply replaces
/// it with the RTT. A datagram needs its send time only while unanswered
/// (a lost datagram's row gives it) and its RTT only once answered, so one
/// slot holds both in turn: 8 bytes a datagram instead of 16.
///
/// The two writes to a slot never race: the sender's comes before the
/// datagram leaves, the tracker's after its reply came back. Whoever reads
/// them all at the end does so once both sides have finished (joined).
#[derive(Debug, Clone)]
pub struct SendTimes(Arc<Vec<AtomicU64>>);

impl SendTimes {
    /// Records that datagram `seq` is sent at `ns` (ns since the run's
    /// start). Call it before sending. A `seq` past the flow's count is ignored.
    pub fn record(&self, seq: u64, ns: u64) {
        if let Some(slot) = usize::try_from(seq).ok().and_then(|i| self.0.get(i)) {
            slot.store(ns, Ordering::Relaxed);
        }
    }
}

/// Classifies the replies of one flow. Memory: 9 bytes per datagram (a state
/// byte and a time slot: the send time until an in-time reply, then the RTT
/// in ns, kept so that jitter is computed in sequence order even when
/// replies arrive reordered); no per-sample rows are kept.
///
/// Definitions (docs/src/probe.md documents them for users):
/// - a reply whose RTT exceeds `timeout` is **late**; it is neither received nor lost;
/// - **lost** = sent − received − late: no reply at all by the end of the run,
///   which is `timeout` after the last send;
/// - **reordered** = an in-time first copy arriving after a first copy with a
///   higher sequence number (it is still received);
/// - **duplicates** = every further copy of a datagram already answered.
///
/// So `sent == received + late + lost` always holds.
#[derive(Debug)]
pub struct FlowTracker {
    timeout_ns: u64,
    state: Vec<u8>,
    /// Send time while `state` is NONE or LATE; RTT once IN_TIME.
    times: SendTimes,
    highest_seq: Option<u64>,
    pub counts: FlowCounts,
}

/// Counters of one flow (or of several, added up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCounts {
    pub received: u64,
    pub late: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Reply bytes of in-time first copies (for throughput).
    pub received_bytes: u64,
}

impl FlowCounts {
    pub fn add(&mut self, o: &FlowCounts) {
        self.received += o.received;
        self.late += o.late;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.received_bytes += o.received_bytes;
    }
}

impl FlowTracker {
    /// A tracker for `count` datagrams (9 bytes of state each), or why
    /// that memory cannot be had: an allocation that fails is an error to
    /// report, not an abort.
    pub fn try_new(count: u64, timeout: Duration) -> Result<Self, TryReserveError> {
        // A count past the address space is a capacity overflow too.
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        let mut state = Vec::new();
        state.try_reserve_exact(n)?;
        state.resize(n, NONE);
        let mut times = Vec::new();
        times.try_reserve_exact(n)?;
        times.resize_with(n, || AtomicU64::new(0));
        Ok(FlowTracker {
            timeout_ns: u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX),
            state,
            times: SendTimes(Arc::new(times)),
            highest_seq: None,
            counts: FlowCounts::default(),
        })
    }

    /// Where this flow's sender records its send times.
    pub fn send_times(&self) -> SendTimes {
        self.times.clone()
    }

    /// Classifies a reply for `seq`, sent at `send_ns`, received at `recv_ns`
    /// (same clock), `bytes` long.
    pub fn on_reply(&mut self, seq: u64, send_ns: u64, recv_ns: u64, bytes: usize) -> ReplyClass {
        let Some(i) = usize::try_from(seq).ok().filter(|&i| i < self.state.len()) else {
            return ReplyClass::Unknown;
        };
        if self.state[i] != NONE {
            self.counts.duplicates += 1;
            return ReplyClass::Dup;
        }
        let rtt = recv_ns.saturating_sub(send_ns);
        let after_higher = self.highest_seq.is_some_and(|h| h > seq);
        self.highest_seq = Some(self.highest_seq.map_or(seq, |h| h.max(seq)));
        if rtt > self.timeout_ns {
            self.state[i] = LATE;
            self.counts.late += 1;
            return ReplyClass::Late;
        }
        self.state[i] = IN_TIME;
        self.times.0[i].store(rtt, Ordering::Relaxed);
        self.counts.received += 1;
        self.counts.received_bytes += bytes as u64;
        if after_higher {
            self.counts.reordered += 1;
            ReplyClass::Reordered
        } else {
            ReplyClass::Ok
        }
    }

    /// Whether `seq` never had any reply (in time or late).
    pub fn unanswered(&self, seq: u64) -> bool {
        usize::try_from(seq)
            .ok()
            .and_then(|i| self.state.get(i))
            .is_some_and(|&s| s == NONE)
    }

    /// Lost among the first `sent` datagrams.
    pub fn lost(&self, sent: u64) -> u64 {
        sent.saturating_sub(self.counts.received + self.counts.late)
    }

    /// The send time recorded for `seq` (ns since the start), while it has
    /// no in-time reply (its slot then holds the RTT instead): what a lost
    /// datagram's row shows. `None` past the flow's count.
    pub fn send_ns(&self, seq: u64) -> Option<u64> {
        let i = usize::try_from(seq).ok()?;
        match self.state.get(i)? {
            &IN_TIME => None,
            _ => Some(self.times.0[i].load(Ordering::Relaxed)),
        }
    }

    /// In-time RTTs in sequence order (ns), for jitter and latency statistics.
    pub fn rtts_in_seq_order(&self) -> impl Iterator<Item = u64> + '_ {
        self.state
            .iter()
            .zip(self.times.0.iter())
            .filter(|(&s, _)| s == IN_TIME)
            .map(|(_, t)| t.load(Ordering::Relaxed))
    }
}

/// `lost / sent × 100`; `None` when nothing was sent.
pub fn loss_percent(lost: u64, sent: u64) -> Option<f64> {
    (sent > 0).then(|| lost as f64 * 100.0 / sent as f64)
}

/// Bits per second for `bytes` over `elapsed`; `None` for an empty interval.
pub fn throughput_bps(bytes: u64, elapsed: Duration) -> Option<f64> {
    let s = elapsed.as_secs_f64();
    (s > 0.0).then(|| bytes as f64 * 8.0 / s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn jitter_and_ipdv_by_hand() {
        // RTTs 10, 12, 11, 15 ms → |D| = 2, 1, 4 ms.
        // J1 = 0 + (2 − 0)/16 = 0.125; J2 = 0.125 + (1 − 0.125)/16 = 0.1796875;
        // J3 = 0.1796875 + (4 − 0.1796875)/16 = 0.418457031…
        // ipdv = (2 + 1 + 4) / 3 = 2.333…
        let mut acc = JitterAcc::default();
        assert_eq!(acc.jitter_ns(), None);
        acc.push((10 * MS) as f64);
        assert_eq!(acc.jitter_ns(), None, "one reply is no pair");
        for r in [12, 11, 15] {
            acc.push((r * MS) as f64);
        }
        assert_eq!(acc.pairs(), 3);
        let j = ns_to_ms(acc.jitter_ns().unwrap());
        assert!(close(j, 0.418_457_031_25), "{j}");
        let ipdv = ns_to_ms(acc.ipdv_mean_ns().unwrap());
        assert!(close(ipdv, 7.0 / 3.0), "{ipdv}");
    }

    #[test]
    fn constant_rtt_has_no_jitter() {
        let mut acc = JitterAcc::default();
        for _ in 0..10 {
            acc.push(5e6);
        }
        assert_eq!(acc.jitter_ns(), Some(0.0));
        assert_eq!(acc.ipdv_mean_ns(), Some(0.0));
    }

    #[test]
    fn latency_stats_by_hand() {
        // 1, 2, 3, 4 ms: mean 2.5, population variance (2.25+0.25+0.25+2.25)/4 = 1.25.
        let mut s = LatencyStats::new();
        assert!(s.summary().is_none());
        for ms in [4u64, 2, 1, 3] {
            s.record(Duration::from_millis(ms));
        }
        let sum = s.summary().unwrap();
        assert_eq!(sum.count, 4);
        assert_eq!(sum.min_ms, 1.0);
        assert_eq!(sum.max_ms, 4.0);
        assert!(close(sum.mean_ms, 2.5));
        assert!(close(sum.stddev_ms, 1.25f64.sqrt()));
        // p50: the smallest value with ≥ 50% of samples at or below it (2 of 4).
        assert_eq!(sum.p50_ms, 2.0);
        // p90: ceil(0.9 × 4) = 4th sample, 4 ms. From 2.048 ms to 4.095 ms
        // buckets are 2 µs wide (3 significant digits) and HdrHistogram
        // reports a bucket's highest value: 4000–4001 µs → 4.001 ms, which is
        // clamped to the exact maximum, 4 ms: no percentile exceeds the max.
        assert_eq!(sum.p90_ms, 4.0);
        assert_eq!(sum.p99_ms, 4.0);
    }

    #[test]
    fn percentiles_of_a_hundred_samples() {
        // 1..=100 µs: p50 = 50 µs, p90 = 90 µs, p99 = 99 µs, exact below 2048 µs.
        let mut s = LatencyStats::new();
        for us in 1..=100u64 {
            s.record_ns(us * 1000);
        }
        let sum = s.summary().unwrap();
        assert_eq!(sum.p50_ms, 0.050);
        assert_eq!(sum.p90_ms, 0.090);
        assert_eq!(sum.p99_ms, 0.099);
        assert_eq!(sum.p999_ms, 0.100);
        assert!(close(sum.mean_ms, 0.0505));
    }

    #[test]
    fn a_tracker_too_big_for_memory_is_an_error_not_an_abort() {
        assert!(FlowTracker::try_new(u64::MAX, Duration::from_secs(1)).is_err());
        assert!(FlowTracker::try_new(1 << 60, Duration::from_secs(1)).is_err());
        let t = FlowTracker::try_new(3, Duration::from_secs(1)).unwrap();
        assert!(t.unanswered(2));
    }

    #[test]
    fn one_slot_holds_the_send_time_until_an_in_time_reply_puts_the_rtt_there() {
        let mut t = FlowTracker::try_new(4, Duration::from_millis(100)).unwrap();
        let sender = t.send_times();
        for seq in 0..4 {
            sender.record(seq, 1_000 + seq * MS);
        }
        sender.record(4, 7); // past the count: ignored
        assert_eq!(t.on_reply(0, 1_000, 1_000 + 5 * MS, 10), ReplyClass::Ok);
        assert_eq!(
            t.on_reply(1, 1_000 + MS, 1_000 + 300 * MS, 10),
            ReplyClass::Late
        );
        assert_eq!(
            t.on_reply(3, 1_000 + 3 * MS, 1_000 + 10 * MS, 10),
            ReplyClass::Ok
        );
        // Answered in time: the RTT, no send time left.
        assert_eq!(t.send_ns(0), None);
        assert_eq!(t.rtts_in_seq_order().collect::<Vec<_>>(), [5 * MS, 7 * MS]);
        // Late or unanswered: the send time is still there.
        assert_eq!(t.send_ns(1), Some(1_000 + MS));
        assert_eq!(t.send_ns(2), Some(1_000 + 2 * MS));
        assert_eq!(t.send_ns(4), None);
        // A duplicate changes nothing.
        assert_eq!(t.on_reply(0, 1_000, 1_000 + 50 * MS, 10), ReplyClass::Dup);
        assert_eq!(t.rtts_in_seq_order().next(), Some(5 * MS));
    }

    #[test]
    fn loss_with_duplicates_reordering_and_late_by_hand() {
        // 8 datagrams sent, timeout 100 ms, send i at i ms.
        // Arrivals: 0 ok, 2 ok, 1 reordered (after 2), 2 dup, 4 late (RTT 150 ms),
        // 3 reordered (after 4), 3 dup, 6 ok; 5 and 7 never answered → lost 2.
        let mut t = FlowTracker::try_new(8, Duration::from_millis(100)).unwrap();
        let send = |i: u64| i * MS;
        let r = |t: &mut FlowTracker, seq: u64, rtt_ms: u64| {
            t.on_reply(seq, send(seq), send(seq) + rtt_ms * MS, 100)
        };
        assert_eq!(r(&mut t, 0, 10), ReplyClass::Ok);
        assert_eq!(r(&mut t, 2, 10), ReplyClass::Ok);
        assert_eq!(r(&mut t, 1, 12), ReplyClass::Reordered);
        assert_eq!(r(&mut t, 2, 11), ReplyClass::Dup);
        assert_eq!(r(&mut t, 4, 150), ReplyClass::Late);
        assert_eq!(r(&mut t, 3, 20), ReplyClass::Reordered);
        assert_eq!(r(&mut t, 3, 21), ReplyClass::Dup);
        assert_eq!(r(&mut t, 6, 14), ReplyClass::Ok);
        assert_eq!(r(&mut t, 8, 1), ReplyClass::Unknown, "never sent");
        assert_eq!(r(&mut t, 4, 160), ReplyClass::Dup, "copy of a late reply");

        let c = t.counts;
        assert_eq!(c.received, 5);
        assert_eq!(c.late, 1);
        assert_eq!(c.duplicates, 3);
        assert_eq!(c.reordered, 2);
        assert_eq!(c.received_bytes, 500);
        assert_eq!(t.lost(8), 2);
        assert_eq!(c.received + c.late + t.lost(8), 8);
        assert!(t.unanswered(5) && t.unanswered(7) && !t.unanswered(4));
        assert_eq!(loss_percent(t.lost(8), 8), Some(25.0));

        // Jitter runs over in-time replies in sequence order (0,1,2,3,6):
        // RTTs 10, 12, 10, 20, 14 → |D| 2, 2, 10, 6 → ipdv 5 ms.
        let rtts: Vec<u64> = t.rtts_in_seq_order().map(|r| r / MS).collect();
        assert_eq!(rtts, [10, 12, 10, 20, 14]);
        let mut acc = JitterAcc::default();
        t.rtts_in_seq_order().for_each(|r| acc.push(r as f64));
        assert!(close(ns_to_ms(acc.ipdv_mean_ns().unwrap()), 5.0));
    }

    #[test]
    fn loss_percent_and_throughput() {
        assert_eq!(loss_percent(10, 100), Some(10.0));
        assert_eq!(loss_percent(0, 0), None);
        assert_eq!(
            throughput_bps(1000, Duration::from_millis(500)),
            Some(16_000.0)
        );
        assert_eq!(throughput_bps(1000, Duration::ZERO), None);
    }
}
