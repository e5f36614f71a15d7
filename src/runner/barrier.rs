//! The start barrier of `--start-at`: no workload starts before the
//! instant. The first variant's services start first, then its workloads
//! wait for the instant; the instant they were released is what the run
//! record calls the run's actual start. Later variants find it past and go.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::shutdown::Interrupt;
use crate::start_at::StartAt;

/// How the barrier went: asked for, and when the workloads were let go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Released {
    pub at: StartAt,
    pub started: SystemTime,
}

impl Released {
    /// How late the workloads started against the instant, milliseconds
    /// (the wake-up's lateness, or how far past it the run got ready).
    pub fn late_ms(&self) -> f64 {
        self.at.skew_ms(self.started)
    }
}

/// One run's barrier; `None` instant: no barrier, never waits.
#[derive(Debug, Default)]
pub struct Barrier {
    at: Option<StartAt>,
    released: OnceLock<Released>,
}

impl Barrier {
    pub fn new(at: Option<StartAt>) -> Self {
        Barrier {
            at,
            released: OnceLock::new(),
        }
    }

    /// Waits until the instant (at once when it is past or already
    /// waited for), or until the run is stopped.
    pub async fn wait(&self, cancel: &Interrupt) {
        let Some(at) = self.at else { return };
        if self.released.get().is_some() {
            return;
        }
        if let Ok(ahead) = at.0.duration_since(SystemTime::now()) {
            tracing::info!(
                "waiting {} for --start-at {at}",
                crate::units::format_duration(round_ms(ahead))
            );
            tokio::select! {
                () = tokio::time::sleep(ahead) => {}
                () = cancel.stop_token().cancelled() => return,
            }
        }
        let _ = self.released.set(Released {
            at,
            started: SystemTime::now(),
        });
    }

    /// How the barrier went, once it let the workloads go.
    pub fn released(&self) -> Option<Released> {
        self.released.get().copied()
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_the_instant_once() {
        let at = StartAt(SystemTime::now() + Duration::from_millis(30));
        let b = Barrier::new(Some(at));
        let cancel = Interrupt::new();
        b.wait(&cancel).await;
        let r = b.released().expect("released");
        assert!(r.started >= at.0, "not before the instant");
        assert!(r.late_ms() >= 0.0);
        // A second variant finds it released and does not wait again.
        b.wait(&cancel).await;
        assert_eq!(b.released(), Some(r));
    }

    #[tokio::test]
    async fn a_past_instant_releases_at_once_and_says_how_late() {
        let at = StartAt(SystemTime::now() - Duration::from_secs(2));
        let b = Barrier::new(Some(at));
        b.wait(&Interrupt::new()).await;
        assert!(b.released().expect("released").late_ms() >= 2000.0);
    }

    #[tokio::test]
    async fn stopping_the_run_ends_the_wait_unreleased() {
        let b = Barrier::new(Some(StartAt(SystemTime::now() + Duration::from_secs(3600))));
        let cancel = Interrupt::new();
        cancel.stop();
        b.wait(&cancel).await;
        assert_eq!(b.released(), None);
    }

    #[tokio::test]
    async fn no_instant_no_barrier() {
        let b = Barrier::new(None);
        b.wait(&Interrupt::new()).await;
        assert_eq!(b.released(), None);
    }
}
