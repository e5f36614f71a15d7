//! The live view of a run: a progress bar per workload on a terminal, or a
//! line when each workload starts and ends when there are no bars.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar};

use crate::report::progress;
use crate::runner::{Event, Observer, WorkloadPos};

/// Shows a run as it happens: a bar per workload on a terminal, or a line
/// when each workload starts and ends (`announce`) when there are no bars.
/// The summary table and expectations are printed from the finished run.
pub struct LiveView {
    pub(super) mp: MultiProgress,
    announce: bool,
    /// The bars of running workloads, by variant run, then workload name.
    bars: Mutex<HashMap<(usize, u32), HashMap<String, Bar>>>,
}

struct Bar {
    pb: ProgressBar,
    /// The reply counts the bar's message shows, so it is rewritten only when they change.
    shown: Option<(u64, Option<u64>)>,
}

impl LiveView {
    pub fn new(mp: MultiProgress, announce: bool) -> Self {
        LiveView {
            mp,
            announce,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn with_bar(&self, at: &WorkloadPos<'_>, f: impl FnOnce(&mut Bar)) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let key = (at.variant.index, at.variant.repetition);
        if let Some(bar) = bars.get_mut(&key).and_then(|b| b.get_mut(at.workload)) {
            f(bar);
        }
    }

    fn take_bar(&self, at: &WorkloadPos<'_>) -> Option<Bar> {
        let mut bars = self.bars.lock().ok()?;
        let key = (at.variant.index, at.variant.repetition);
        bars.get_mut(&key)?.remove(at.workload)
    }
}

/// `workload`, or `variant:workload` when the scenario has several variants.
fn bar_name(at: &WorkloadPos<'_>) -> String {
    if at.variant.count > 1 {
        format!("{}:{}", at.variant.label, at.workload)
    } else {
        at.workload.to_string()
    }
}

impl Observer for LiveView {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::WorkloadStarted {
                at,
                kind,
                target,
                total,
            } => {
                let name = bar_name(at);
                if self.announce {
                    outln!("  started {name} ({kind} -> {target})");
                }
                let pb = progress::workload_bar(&self.mp, &name, *total);
                if let Ok(mut bars) = self.bars.lock() {
                    bars.entry((at.variant.index, at.variant.repetition))
                        .or_default()
                        .insert(at.workload.to_string(), Bar { pb, shown: None });
                }
            }
            Event::WorkloadProgress { at, progress: p } => self.with_bar(at, |bar| {
                if bar.pb.length() != Some(p.total) {
                    bar.pb.set_length(p.total);
                }
                bar.pb.set_position(p.done);
                let replies = (p.received, p.errors);
                if bar.shown != Some(replies) {
                    bar.shown = Some(replies);
                    bar.pb
                        .set_message(progress::replies_message(p.received, p.errors));
                }
            }),
            Event::WorkloadFinished { at, row } => {
                if let Some(bar) = self.take_bar(at) {
                    bar.pb.finish();
                }
                if self.announce {
                    let how = if row.interrupted {
                        "interrupted"
                    } else {
                        "finished"
                    };
                    outln!(
                        "  {how} {} in {:.2}s",
                        bar_name(at),
                        row.duration_s.unwrap_or_default()
                    );
                }
            }
            Event::WorkloadFailed { at, .. } => {
                // The error itself is reported once the run stops.
                if let Some(bar) = self.take_bar(at) {
                    bar.pb.abandon();
                }
            }
            // Expectations are printed with the summary table, after the run.
            Event::RunStarted { .. }
            | Event::VariantStarted(_)
            | Event::VariantFinished { .. }
            | Event::ExpectationsChecked { .. } => {}
        }
    }
}
