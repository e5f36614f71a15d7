//! How a workload's pacing thread waits for the instant of its next send:
//! the UDP probe's datagrams and the open-loop HTTP load's requests. One
//! loop for both; only the HTTP pacer takes real-time priority.

use std::thread;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Below this much time to go, a thread without real-time priority spins
/// instead of sleeping (OS sleeps overshoot by 50–100 µs or more).
const SPIN: Duration = Duration::from_micros(200);
/// Longest single sleep, so cancellation is noticed quickly.
const MAX_NAP: Duration = Duration::from_millis(10);

/// A pacing thread's way of waiting. On a busy host a normal thread that
/// wakes from its sleep waits for a core: with 8–11 runnable tasks on 2
/// cores the HTTP ramp's sends stalled for 100–430 ms now and then, all at
/// once. Where Linux allows it (root or `CAP_SYS_NICE`) the thread takes
/// the lowest real-time priority, as the precise timer does
/// (`crate::timer`), and sleeps to the instant without spinning: it uses
/// the CPU only to send. Otherwise it sleeps, then spins the last
/// moment. Take it on the thread that paces, and only there: the priority
/// stays with that thread (so never on a pool's thread that other work
/// reuses).
pub(super) struct Pacing {
    real_time: bool,
}

impl Pacing {
    /// Moves the calling thread to real-time priority where allowed, and
    /// asks for sleeps that end on time.
    pub(super) fn take() -> Self {
        crate::timer::minimal_timer_slack();
        Pacing {
            real_time: crate::timer::real_time_priority(),
        }
    }

    /// Sleep then spin, at the thread's own priority: for the UDP pacer,
    /// whose real-time preemptions would starve what it measures
    /// (`workload::udp::pace`).
    pub(super) fn normal() -> Self {
        Pacing { real_time: false }
    }

    /// Waits until `due`; false on cancellation.
    pub(super) fn wait_until(&self, due: Instant, cancel: &CancellationToken) -> bool {
        wait_until_with(due, cancel, !self.real_time)
    }
}

/// Waits until `due` in naps of at most `MAX_NAP` (so cancellation is
/// noticed); with `spin`, the last `SPIN` is spent yielding instead of
/// sleeping (a thread with real-time priority sleeps it out instead: the
/// kernel wakes it on time). False when cancelled first.
fn wait_until_with(due: Instant, cancel: &CancellationToken, spin: bool) -> bool {
    loop {
        if cancel.is_cancelled() {
            return false;
        }
        let now = Instant::now();
        if now >= due {
            return true;
        }
        let left = due - now;
        if !spin {
            thread::sleep(left.min(MAX_NAP));
        } else if left > SPIN {
            thread::sleep((left - SPIN).min(MAX_NAP));
        } else {
            // Let the receivers run on a busy machine; returns at once otherwise.
            thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways of waiting end at or after the instant, never before, and
    /// a cancelled token ends the wait at once.
    #[test]
    fn a_wait_ends_at_its_instant_or_on_cancellation() {
        let cancel = CancellationToken::new();
        for spin in [true, false] {
            let due = Instant::now() + Duration::from_millis(2);
            assert!(wait_until_with(due, &cancel, spin));
            assert!(Instant::now() >= due);
        }
        cancel.cancel();
        let far = Instant::now() + Duration::from_secs(3600);
        assert!(!wait_until_with(far, &cancel, true));
        assert!(!wait_until_with(far, &cancel, false));
    }
}
