//! Per-sample records on their way to a workload's collector, gathered in
//! batches: one channel hand-off (and one wake-up of the collector) per
//! batch, not per request or datagram. The HTTP load's worker threads and
//! the UDP probe's receive tasks both batch this way; each decides how it
//! shares its batcher and when it looks at the clock.

use std::time::{Duration, Instant};

/// A batch being filled: handed out whole once it holds `cap` items, or
/// once its first item is `max_age` old, so slow runs still show progress.
pub(super) struct Batcher<T> {
    items: Vec<T>,
    /// When the first item of the batch came.
    since: Instant,
    cap: usize,
    max_age: Duration,
}

impl<T> Batcher<T> {
    pub(super) fn new(cap: usize, max_age: Duration) -> Self {
        Batcher {
            items: Vec::with_capacity(cap),
            since: Instant::now(),
            cap,
            max_age,
        }
    }

    /// Adds `item`, which came at `now`; the whole batch when that filled
    /// it or its first item is `max_age` old by now.
    pub(super) fn push(&mut self, item: T, now: Instant) -> Option<Vec<T>> {
        if self.items.is_empty() {
            self.since = now;
        }
        self.items.push(item);
        if self.items.len() >= self.cap || now.saturating_duration_since(self.since) >= self.max_age
        {
            return self.take();
        }
        None
    }

    /// When the waiting items are due to go even if the batch is not full;
    /// `None` when nothing waits.
    pub(super) fn due(&self) -> Option<Instant> {
        (!self.items.is_empty()).then(|| self.since + self.max_age)
    }

    /// The waiting items, if any, leaving an empty batch.
    pub(super) fn take(&mut self) -> Option<Vec<T>> {
        if self.items.is_empty() {
            return None;
        }
        Some(std::mem::replace(
            &mut self.items,
            Vec::with_capacity(self.cap),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_when_full_or_old_and_take_empties_it() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut b = Batcher::new(3, ms(50));
        assert_eq!(b.due(), None);
        assert_eq!(b.take(), None);
        assert_eq!(b.push(1, t0), None);
        assert_eq!(b.due(), Some(t0 + ms(50)));
        assert_eq!(b.push(2, t0 + ms(10)), None);
        assert_eq!(b.push(3, t0 + ms(20)), Some(vec![1, 2, 3]));
        assert_eq!(b.due(), None);
        // The age counts from the first item of the new batch.
        assert_eq!(b.push(4, t0 + ms(60)), None);
        assert_eq!(b.due(), Some(t0 + ms(110)));
        assert_eq!(b.push(5, t0 + ms(110)), Some(vec![4, 5]));
        assert_eq!(b.push(6, t0 + ms(120)), None);
        assert_eq!(b.take(), Some(vec![6]));
        assert_eq!(b.take(), None);
    }
}
