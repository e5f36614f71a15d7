//! The run record (`run.json`) a run writes with its CSVs: what the whole
//! scenario was, which share of it this run ran (`--shard`, `--segment`),
//! its expectations. `netrun merge` reads it, so failing to write it fails
//! the run (the HTML report, for people, stays best-effort).

use super::Barrier;
use crate::report::gate::GateConfig;
use crate::report::run_record::{ExpectationInfo, RunInfo, ShardedFile, StartInfo, UnitInfo};
use crate::scenario::{ExpectationResult, Scenario};
use crate::shard::Part;

/// Which share of a whole scenario a run is.
#[derive(Debug, Clone)]
pub struct Share<'a> {
    /// The scenario as its file says (with `--repeat`): the record
    /// describes this, whatever share of the load a `--segment` applies.
    pub whole: &'a Scenario,
    /// The units run: positions in [`super::schedule`] of the whole, in order.
    pub positions: Vec<usize>,
    /// `--shard K/N`.
    pub shard: Option<Part>,
    /// `--segment K/N`.
    pub segment: Option<Part>,
    /// `--start-at`: the barrier the first variant's workloads wait at,
    /// one for every scenario of the command (the later ones find it past).
    pub barrier: Option<&'a Barrier>,
    /// With `--shard`: every scenario of the sharded run, in order.
    pub sharded_run: Vec<ShardedFile>,
}

impl<'a> Share<'a> {
    /// Every unit of `scenario`, unsplit.
    pub fn whole(scenario: &'a Scenario) -> Self {
        Share {
            whole: scenario,
            positions: (0..super::schedule(scenario).len()).collect(),
            shard: None,
            segment: None,
            barrier: None,
            sharded_run: Vec::new(),
        }
    }

    /// The run record of a run of this share.
    pub(super) fn record(
        &self,
        run_id: &str,
        interrupted: bool,
        expectations: &[ExpectationResult],
    ) -> RunInfo {
        let s = self.whole;
        let expectations = expectations.iter().map(ExpectationInfo::from).collect();
        let mut info = RunInfo::new(s, run_id, interrupted, expectations, None);
        let schedule = super::schedule(s);
        info.units = self
            .positions
            .iter()
            .filter_map(|&position| {
                let &(variant, repetition) = schedule.get(position)?;
                Some(UnitInfo {
                    position,
                    variant: s.variants.get(variant)?.label.clone(),
                    repetition,
                })
            })
            .collect();
        info.units_total = schedule.len();
        info.shard = self.shard;
        info.segment = self.segment;
        info.gate = Some(GateConfig::of(s));
        info.start = self
            .barrier
            .and_then(Barrier::released)
            .map(|r| StartInfo::of(r.at.0, r.started, r.late_ms()));
        info.scenario_digest = s.digest.clone();
        info.sharded_run.clone_from(&self.sharded_run);
        info
    }
}
