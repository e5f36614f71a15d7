//! What the runner tells its caller while it works. The runner never prints:
//! it sends typed [`Event`]s to an [`Observer`], which `commands/run.rs`
//! renders (bars, started/finished lines) and other consumers may record.
//!
//! Events borrow from the run, so sending one costs no allocation; an
//! observer that keeps them copies what it needs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::ExpectationResult;
use crate::metrics::SummaryRow;
use crate::scenario::Scenario;
use crate::workload::Progress;

/// Receives the runner's events, in the order they happen. Workloads of a
/// parallel block report from several tasks (and pacing threads) at once.
pub trait Observer: Send + Sync {
    fn event(&self, event: &Event<'_>);
}

/// Ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: &Event<'_>) {}
}

/// Any `Fn(&Event)` observes: handy in tests.
impl<F: Fn(&Event<'_>) + Send + Sync> Observer for F {
    fn event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// Which run of which variant an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantPos<'a> {
    pub scenario: &'a str,
    /// Position in `Scenario::variants`, from 0.
    pub index: usize,
    /// How many variants the scenario has.
    pub count: usize,
    /// The variant's label (`default` without a matrix).
    pub label: &'a str,
    /// Which repetition of the variant this is, from 1 (always 1 while a run
    /// holds each variant once).
    pub repetition: u32,
}

/// Which workload of which variant run an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadPos<'a> {
    pub variant: VariantPos<'a>,
    pub workload: &'a str,
}

/// How far a workload has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProgressCounts {
    /// Requests completed (HTTP) or datagrams sent (UDP).
    pub done: u64,
    /// Requests or datagrams the workload will send in all (an upper bound
    /// when it also has a `duration`).
    pub total: u64,
    /// Replies so far.
    pub received: u64,
    /// Failed requests so far (HTTP; `None` for UDP).
    pub errors: Option<u64>,
}

/// One thing that happened during a scenario run.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The run begins; `run_id` tags its results.
    RunStarted {
        scenario: &'a Scenario,
        run_id: &'a str,
    },
    /// The services of a variant are up; its workloads start next.
    VariantStarted(VariantPos<'a>),
    /// A workload starts sending.
    WorkloadStarted {
        at: WorkloadPos<'a>,
        /// `http` or `udp`.
        kind: &'a str,
        /// `proxy` or `origin`.
        target: &'a str,
        /// Requests or datagrams it will send in all.
        total: u64,
    },
    /// A workload sent or received more (often: once per request or datagram).
    WorkloadProgress {
        at: WorkloadPos<'a>,
        progress: ProgressCounts,
    },
    /// A workload ended (or was interrupted: `row.interrupted`) with its results.
    WorkloadFinished {
        at: WorkloadPos<'a>,
        row: &'a SummaryRow,
    },
    /// A workload could not run or failed; the run stops after this variant.
    WorkloadFailed {
        at: WorkloadPos<'a>,
        error: &'a anyhow::Error,
    },
    /// A variant's services are stopped; `rows` are its workloads' results.
    VariantFinished {
        variant: VariantPos<'a>,
        rows: &'a [SummaryRow],
    },
    /// The scenario's `[expect]` thresholds were checked against every row
    /// (not sent when the run was interrupted).
    ExpectationsChecked { results: &'a [ExpectationResult] },
}

/// Owned copy of a [`WorkloadPos`], for the workload's progress reports
/// that outlive the runner's borrows (the UDP pacing thread).
struct OwnedPos {
    scenario: String,
    index: usize,
    count: usize,
    label: String,
    repetition: u32,
    workload: String,
}

impl OwnedPos {
    fn pos(&self) -> WorkloadPos<'_> {
        WorkloadPos {
            variant: VariantPos {
                scenario: &self.scenario,
                index: self.index,
                count: self.count,
                label: &self.label,
                repetition: self.repetition,
            },
            workload: &self.workload,
        }
    }
}

/// A workload's [`Progress`], turned into [`Event::WorkloadProgress`].
#[derive(Clone)]
pub(super) struct ProgressEvents {
    inner: Arc<ProgressInner>,
}

struct ProgressInner {
    observer: Arc<dyn Observer>,
    at: OwnedPos,
    total: AtomicU64,
    done: AtomicU64,
    received: AtomicU64,
    /// `u64::MAX` while the workload counts no errors.
    errors: AtomicU64,
}

impl ProgressEvents {
    pub(super) fn new(observer: Arc<dyn Observer>, at: WorkloadPos<'_>, total: u64) -> Self {
        let v = at.variant;
        ProgressEvents {
            inner: Arc::new(ProgressInner {
                observer,
                at: OwnedPos {
                    scenario: v.scenario.to_string(),
                    index: v.index,
                    count: v.count,
                    label: v.label.to_string(),
                    repetition: v.repetition,
                    workload: at.workload.to_string(),
                },
                total: AtomicU64::new(total),
                done: AtomicU64::new(0),
                received: AtomicU64::new(0),
                errors: AtomicU64::new(u64::MAX),
            }),
        }
    }

    fn send(&self) {
        let i = &self.inner;
        let errors = i.errors.load(Ordering::Relaxed);
        let progress = ProgressCounts {
            done: i.done.load(Ordering::Relaxed),
            total: i.total.load(Ordering::Relaxed),
            received: i.received.load(Ordering::Relaxed),
            errors: (errors != u64::MAX).then_some(errors),
        };
        i.observer.event(&Event::WorkloadProgress {
            at: i.at.pos(),
            progress,
        });
    }
}

impl Progress for ProgressEvents {
    fn set_total(&self, total: u64) {
        self.inner.total.store(total, Ordering::Relaxed);
        self.send();
    }

    fn advance(&self, n: u64) {
        self.inner.done.fetch_add(n, Ordering::Relaxed);
        self.send();
    }

    fn replies(&self, received: u64, errors: Option<u64>) {
        self.inner.received.store(received, Ordering::Relaxed);
        self.inner
            .errors
            .store(errors.unwrap_or(u64::MAX), Ordering::Relaxed);
        self.send();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn progress_reports_running_totals_with_their_position() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let observer: Arc<dyn Observer> = Arc::new(move |e: &Event<'_>| {
            if let Event::WorkloadProgress { at, progress } = e {
                let v = at.variant;
                sink.lock().unwrap().push((
                    format!("{}/{}#{}/{}", v.label, v.index, v.repetition, at.workload),
                    *progress,
                ));
            }
        });
        let at = WorkloadPos {
            variant: VariantPos {
                scenario: "s",
                index: 1,
                count: 2,
                label: "cache.enabled=false",
                repetition: 1,
            },
            workload: "fetch",
        };
        let p = ProgressEvents::new(observer, at, 10);
        p.advance(3);
        p.replies(2, Some(1));
        p.clone().advance(1);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert!(seen
            .iter()
            .all(|(id, _)| id == "cache.enabled=false/1#1/fetch"));
        assert_eq!(
            seen[2].1,
            ProgressCounts {
                done: 4,
                total: 10,
                received: 2,
                errors: Some(1)
            }
        );
        assert_eq!(seen[0].1.errors, None);
    }
}
