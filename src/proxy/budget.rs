//! The proxy's memory for response bodies, bounded whatever clients do.
//! Every body the proxy reads whole (to store it) is charged to one
//! [`Budget`] while it is being read, and the charge lives as long as the
//! bytes do: in the cache, in responses still being sent to slow readers,
//! and after eviction until the last reader is done. A body that would go
//! past the budget is streamed instead of buffered.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::Counters;

/// Bytes of response bodies the proxy may hold at once. The current total is
/// the `response_bytes_held` counter.
pub(crate) struct Budget {
    limit: u64,
    counters: Arc<Counters>,
}

impl Budget {
    pub(crate) fn new(limit: u64, counters: Arc<Counters>) -> Arc<Self> {
        Arc::new(Budget { limit, counters })
    }

    /// Takes `n` bytes if they fit.
    fn try_take(&self, n: u64) -> bool {
        self.counters
            .response_bytes_held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                held.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, n: u64) {
        self.counters
            .response_bytes_held
            .fetch_sub(n, Ordering::Relaxed);
    }
}

/// A body being read whole, with the budget it holds: its capacity, not its
/// length, since that is what was allocated.
pub(crate) struct ChargedBuf {
    buf: Vec<u8>,
    charge: Charge,
}

impl ChargedBuf {
    /// An empty buffer; `expected` (a `Content-Length`) is reserved at once
    /// if it fits, so the buffer is allocated once at its final size.
    pub(crate) fn new(budget: &Arc<Budget>, expected: Option<u64>) -> Self {
        let mut b = ChargedBuf {
            buf: Vec::new(),
            charge: Charge {
                budget: budget.clone(),
                bytes: 0,
            },
        };
        if let Some(n) = expected.and_then(|n| usize::try_from(n).ok()) {
            b.grow_to(n);
        }
        b
    }

    /// Makes room for `capacity` bytes if the budget allows it.
    fn grow_to(&mut self, capacity: usize) -> bool {
        let have = self.buf.capacity();
        if capacity <= have {
            return true;
        }
        if !self.charge.grow((capacity - have) as u64) {
            return false;
        }
        self.buf.reserve_exact(capacity - self.buf.len());
        // Should the allocation be larger than asked, charge that too.
        let extra = self.buf.capacity().saturating_sub(capacity) as u64;
        self.charge.force(extra);
        true
    }

    /// Appends `data` if the budget allows the (possibly grown) buffer;
    /// false, with nothing appended, when it does not.
    pub(crate) fn extend(&mut self, data: &[u8]) -> bool {
        let needed = self.buf.len() + data.len();
        if needed > self.buf.capacity() {
            // Double as a Vec would (amortised copies), or grow just enough
            // when doubling does not fit the budget.
            let doubled = needed.max(self.buf.capacity().saturating_mul(2));
            if !self.grow_to(doubled) && !self.grow_to(needed) {
                return false;
            }
        }
        self.buf.extend_from_slice(data);
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The bytes read, still charged until every copy of them is dropped.
    pub(crate) fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for ChargedBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

/// Budget held; given back when dropped.
struct Charge {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Charge {
    fn grow(&mut self, n: u64) -> bool {
        if n == 0 {
            return true;
        }
        let ok = self.budget.try_take(n);
        if ok {
            self.bytes += n;
        }
        ok
    }

    /// Charges memory that is already allocated, limit or not, so the
    /// count stays true.
    fn force(&mut self, n: u64) {
        if n > 0 {
            self.budget
                .counters
                .response_bytes_held
                .fetch_add(n, Ordering::Relaxed);
            self.bytes += n;
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(c: &Counters) -> u64 {
        c.response_bytes_held.load(Ordering::Relaxed)
    }

    #[test]
    fn a_body_stays_charged_until_its_last_copy_is_dropped() {
        let counters = Arc::new(Counters::default());
        let budget = Budget::new(1000, counters.clone());
        let mut a = ChargedBuf::new(&budget, Some(600));
        assert_eq!(held(&counters), 600);
        assert!(a.extend(&[1; 600]));
        assert_eq!(held(&counters), 600, "reserved up front, no growth");
        // A second body does not fit beside the first.
        let mut b = ChargedBuf::new(&budget, None);
        assert!(b.extend(&[2; 300]));
        assert!(!b.extend(&[2; 200]), "past the limit");
        assert_eq!(b.len(), 300);
        let first = a.freeze();
        let copy = first.clone();
        drop(first);
        assert!(held(&counters) >= 900);
        drop(copy);
        assert!(held(&counters) <= 400);
        drop(b);
        assert_eq!(held(&counters), 0);
    }

    #[test]
    fn a_declared_length_over_the_limit_reserves_nothing() {
        let counters = Arc::new(Counters::default());
        let budget = Budget::new(100, counters.clone());
        let mut b = ChargedBuf::new(&budget, Some(1_000_000));
        assert_eq!(held(&counters), 0);
        assert!(b.extend(&[0; 50]));
        assert!(!b.extend(&[0; 60]));
        assert!(held(&counters) <= 100);
    }
}
