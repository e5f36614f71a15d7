//! The report's model: the runs shown, one series (key) per variant of a
//! run, and the workloads they ran.

use super::data::{HttpSamples, RunData, UdpSamples};
use super::page::escape;
use super::MAX_RUNS;

/// The runs of a report and how they are named and styled.
pub(super) struct Model {
    pub(super) runs: Vec<RunData>,
    /// Runs before this index are not drawn (old history).
    pub(super) first_shown: usize,
    pub(super) keys: Vec<Key>,
}

/// One series of every chart: a variant of a run.
#[derive(Debug, Clone)]
pub(super) struct Key {
    pub(super) run: usize,
    pub(super) variant: String,
    pub(super) label: String,
    pub(super) style: usize,
}

/// A workload as it appears in the summaries (the same name in another
/// scenario is another workload).
pub(super) struct WorkloadId {
    pub(super) scenario: String,
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) target: String,
}

impl Model {
    pub(super) fn new(runs: Vec<RunData>) -> Model {
        let first_shown = runs.len().saturating_sub(MAX_RUNS);
        let many = runs.len() > 1;
        let mut keys: Vec<Key> = Vec::new();
        for (i, run) in runs.iter().enumerate().skip(first_shown) {
            for row in &run.rows {
                if keys.iter().any(|k| k.run == i && k.variant == row.variant) {
                    continue;
                }
                let label = match (many, row.variant.as_str()) {
                    (false, "default") => run.label.clone(),
                    (false, v) => v.to_string(),
                    (true, "default") => run.label.clone(),
                    (true, v) => format!("{}: {v}", run.label),
                };
                keys.push(Key {
                    run: i,
                    variant: row.variant.clone(),
                    // Drawn by the chart library too: no bidi controls there either.
                    label: super::page::visible(&label).into_owned(),
                    style: keys.len(),
                });
            }
        }
        Model {
            runs,
            first_shown,
            keys,
        }
    }

    pub(super) fn title(&self) -> String {
        let mut names: Vec<&str> = Vec::new();
        for run in self.shown_runs() {
            for r in &run.rows {
                if !names.contains(&r.scenario.as_str()) {
                    names.push(&r.scenario);
                }
            }
        }
        let runs = self.runs.len();
        let what = if runs > 1 {
            format!(" ({runs} runs)")
        } else {
            String::new()
        };
        format!("netrun report: {}{what}", names.join(", "))
    }

    /// ` of <run>` when several runs are shown, to name a section's run.
    pub(super) fn of_run(&self, run: &RunData) -> String {
        if self.runs.len() > 1 {
            format!(" of {}", escape(&run.label))
        } else {
            String::new()
        }
    }

    pub(super) fn shown_runs(&self) -> &[RunData] {
        &self.runs[self.first_shown..]
    }

    pub(super) fn hidden_runs(&self) -> usize {
        self.first_shown
    }

    pub(super) fn workloads(&self) -> Vec<WorkloadId> {
        let mut out: Vec<WorkloadId> = Vec::new();
        for run in self.shown_runs() {
            for r in &run.rows {
                if !out
                    .iter()
                    .any(|w| w.scenario == r.scenario && w.name == r.workload)
                {
                    out.push(WorkloadId {
                        scenario: r.scenario.clone(),
                        name: r.workload.clone(),
                        kind: r.kind.clone(),
                        target: r.target.clone(),
                    });
                }
            }
        }
        out
    }

    /// The series that ran workload `w`.
    pub(super) fn keys_of(&self, w: &WorkloadId) -> Vec<&Key> {
        self.keys
            .iter()
            .filter(|k| {
                self.runs[k.run].rows.iter().any(|r| {
                    r.variant == k.variant && r.workload == w.name && r.scenario == w.scenario
                })
            })
            .collect()
    }

    pub(super) fn several_scenarios(&self) -> bool {
        let mut names = self
            .shown_runs()
            .iter()
            .flat_map(|r| &r.rows)
            .map(|r| &r.scenario);
        let first = names.next();
        names.any(|n| Some(n) != first)
    }
}

pub(super) fn udp_of<'a>(run: &'a RunData, k: &Key, w: &WorkloadId) -> Option<&'a UdpSamples> {
    run.udp
        .iter()
        .find(|s| s.variant == k.variant && s.workload == w.name)
}

pub(super) fn http_of<'a>(run: &'a RunData, k: &Key, w: &WorkloadId) -> Option<&'a HttpSamples> {
    run.http
        .iter()
        .find(|s| s.variant == k.variant && s.workload == w.name)
}
