//! What one direction of a link did: packets in and out, each impairment's
//! count, and the queue's sojourn times (an HdrHistogram in µs).

use std::time::Duration;

use hdrhistogram::Histogram;

/// Counts of one direction since the link started.
#[derive(Debug, Clone)]
pub struct Counters {
    /// Packets that reached the link (before any impairment).
    pub packets: u64,
    /// Their bytes (IP packets, headers included).
    pub bytes: u64,
    /// Packets delivered at the far end (duplicates included).
    pub delivered: u64,
    /// Delivered packets that were held back at all (queue, delay, outage).
    pub delayed: u64,
    /// Packets lost by the Bernoulli `loss_percent`.
    pub lost: u64,
    /// Packets lost by the Gilbert(–Elliott) burst model.
    pub burst_lost: u64,
    /// Extra copies made by `duplicate_percent`.
    pub duplicated: u64,
    /// Packets that skipped the delay (`reorder_percent`).
    pub reordered: u64,
    /// Packets the queue dropped: full (droptail and every queue's limit) or
    /// CoDel's head drops.
    pub queue_drops: u64,
    /// Packets the kernel dropped before the link read them: the TUN
    /// device's queue to the link (its `txqueuelen`) was full while the
    /// link's thread was kept from reading (a busy machine).
    pub kernel_drops: u64,
    /// Time packets waited in the queue, in µs, for those that left it.
    pub sojourn: Histogram<u64>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            packets: 0,
            bytes: 0,
            delivered: 0,
            delayed: 0,
            lost: 0,
            burst_lost: 0,
            duplicated: 0,
            reordered: 0,
            queue_drops: 0,
            kernel_drops: 0,
            sojourn: new_histogram(),
        }
    }
}

/// µs from 1 to an hour, 3 significant digits: auto-resizing, so a record
/// never fails.
fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new(3).unwrap_or_else(|_| unreachable!("3 digits are valid"));
    h.auto(true);
    h
}

impl Counters {
    pub(super) fn record_sojourn(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2);
        // Auto-resizing histograms accept any value.
        let _ = self.sojourn.record(us);
    }

    /// The sojourn time at quantile `q` (0–1); zero when nothing was queued.
    pub fn sojourn_at(&self, q: f64) -> Duration {
        if self.sojourn.is_empty() {
            return Duration::ZERO;
        }
        Duration::from_micros(self.sojourn.value_at_quantile(q))
    }

    /// Everything this direction dropped, whichever way.
    pub fn dropped(&self) -> u64 {
        self.lost + self.burst_lost + self.queue_drops + self.kernel_drops
    }

    /// The counts since `before` (a snapshot of the same direction), with
    /// the sojourn histogram of that span.
    pub fn since(&self, before: &Counters) -> Counters {
        let mut sojourn = self.sojourn.clone();
        // Both histograms come from the same direction, `before` earlier, so
        // every count it holds is in `self` too.
        let _ = sojourn.subtract(&before.sojourn);
        Counters {
            packets: self.packets - before.packets.min(self.packets),
            bytes: self.bytes - before.bytes.min(self.bytes),
            delivered: self.delivered - before.delivered.min(self.delivered),
            delayed: self.delayed - before.delayed.min(self.delayed),
            lost: self.lost - before.lost.min(self.lost),
            burst_lost: self.burst_lost - before.burst_lost.min(self.burst_lost),
            duplicated: self.duplicated - before.duplicated.min(self.duplicated),
            reordered: self.reordered - before.reordered.min(self.reordered),
            queue_drops: self.queue_drops - before.queue_drops.min(self.queue_drops),
            kernel_drops: self.kernel_drops - before.kernel_drops.min(self.kernel_drops),
            sojourn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_subtracts_counts_and_sojourns() {
        let mut a = Counters {
            packets: 3,
            ..Counters::default()
        };
        a.record_sojourn(Duration::from_millis(1));
        let before = a.clone();
        a.packets = 10;
        a.lost = 2;
        a.record_sojourn(Duration::from_millis(20));
        let d = a.since(&before);
        assert_eq!((d.packets, d.lost, d.dropped()), (7, 2, 2));
        assert_eq!(d.sojourn.len(), 1);
        assert!(d.sojourn_at(0.5) >= Duration::from_millis(19));
        assert_eq!(Counters::default().sojourn_at(0.99), Duration::ZERO);
    }
}
