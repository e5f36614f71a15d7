//! `run.json`: what a run was asked to do and what it ran on, written beside
//! the sample CSVs so a report rebuilt from disk shows the same settings,
//! verdicts and host facts as the one made at the end of the run.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::report::atomic::AtomicFile;
use crate::report::gate::GateConfig;
use crate::report::plan;
use crate::scenario::{ExpectationResult, Scenario};
use crate::shard::Part;

/// File name of the run description inside `results/<name>/`.
pub const RUN_JSON: &str = "run.json";

/// The contents of `run.json`. Every field is optional on reading
/// (`#[serde(default)]`) so files from older or newer netruns still load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunInfo {
    pub scenario: String,
    pub description: String,
    /// The scenario file, as given on the command line.
    pub source: String,
    pub run_id: String,
    /// RFC 3339 UTC, when the run finished (its results were written).
    pub finished_at: String,
    pub netrun_version: String,
    pub host: HostInfo,
    pub interrupted: bool,
    pub variants: Vec<VariantInfo>,
    pub expectations: Vec<ExpectationInfo>,
    /// Present when the run was checked against `--baseline`.
    pub baseline: Option<BaselineInfo>,
    /// A digest of the scenario file's text (FNV-1a, 64 bits, hex):
    /// `netrun merge` refuses to join runs of different versions of a file.
    pub scenario_digest: String,
    /// The (variant, repetition) units this run ran, with their positions
    /// in the whole scenario's run order (`--shard` runs some of them).
    pub units: Vec<UnitInfo>,
    /// How many units the whole scenario has: variants × repetitions.
    pub units_total: usize,
    /// `--shard K/N` of this run.
    pub shard: Option<Part>,
    /// `--segment K/N`: this run applied the K-th share of every workload's
    /// load (the settings above are the whole scenario's).
    pub segment: Option<Part>,
    /// The results folders `netrun merge` joined into this run.
    pub merged_from: Vec<String>,
    /// With `--shard`: every scenario of the sharded run (all the files
    /// given, in order), so `netrun merge` knows every unit and names the
    /// shard a missing scenario was in.
    pub sharded_run: Vec<ShardedFile>,
    /// What a `netrun merge --partial` lacked (`shard 2/3: scenario b`);
    /// empty for a complete run.
    pub partial: Vec<String>,
    /// What `--baseline` gates for this scenario (its `[gate]`, or the
    /// defaults with the origin's workloads as controls): `netrun merge
    /// --baseline` gates the merged rows by it.
    pub gate: Option<GateConfig>,
    /// `--start-at`: when this run's workloads were held for and started.
    pub start: Option<StartInfo>,
    /// Merged from `--segment` agents: each agent's start, by segment.
    pub agents: Vec<AgentStart>,
    /// Merged from `--segment` agents that all had `--start-at`: the latest
    /// agent's `started_at` minus the earliest's, milliseconds.
    pub start_skew_ms: Option<f64>,
}

/// How a `--start-at` barrier went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StartInfo {
    /// The instant asked for, RFC 3339 UTC (ms).
    pub start_at: String,
    /// When the workloads started, RFC 3339 UTC (ms).
    pub started_at: String,
    /// `started_at − start_at`, milliseconds: the wake-up's lateness, or
    /// how far past the instant the run got ready.
    pub start_late_ms: f64,
}

/// One `--segment` agent's start, in a merged run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentStart {
    /// `K/N`.
    pub segment: String,
    /// The agent's `--start-at` instant, RFC 3339 UTC (ms); empty without.
    pub start_at: Option<String>,
    /// When its workloads started, RFC 3339 UTC (ms); empty without `--start-at`.
    pub started_at: Option<String>,
    /// How late that was against its `--start-at`, milliseconds.
    pub start_late_ms: Option<f64>,
}

impl AgentStart {
    pub fn new(segment: String, start: Option<&StartInfo>) -> Self {
        AgentStart {
            segment,
            start_at: start.map(|s| s.start_at.clone()),
            started_at: start.map(|s| s.started_at.clone()),
            start_late_ms: start.map(|s| s.start_late_ms),
        }
    }
}

impl StartInfo {
    /// The record of a barrier that let the workloads go.
    pub fn of(at: std::time::SystemTime, started: std::time::SystemTime, late_ms: f64) -> Self {
        StartInfo {
            start_at: humantime::format_rfc3339_millis(at).to_string(),
            started_at: humantime::format_rfc3339_millis(started).to_string(),
            start_late_ms: crate::metrics::summary::round3(late_ms),
        }
    }
}

/// One scenario of a sharded run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardedFile {
    pub scenario: String,
    pub scenario_digest: String,
    /// Its variants × repetitions.
    pub units: usize,
}

/// One run of one variant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UnitInfo {
    /// From 0, in the whole scenario's run order (rounds of variants, as
    /// `repeat` and `order` make it).
    pub position: usize,
    pub variant: String,
    pub repetition: u32,
}

/// What the run ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostInfo {
    /// Logical cores the OS reports.
    pub cores: usize,
    pub os: String,
    pub arch: String,
}

impl HostInfo {
    pub fn this_host() -> Self {
        HostInfo {
            cores: crate::server::cores().map_or(0, |n| n.get()),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
        }
    }
}

/// One variant's resolved settings, as `netrun check` prints them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VariantInfo {
    pub label: String,
    /// The `[matrix]` keys and values of this variant.
    pub overrides: Vec<(String, String)>,
    /// `(key, text)`: mode, seed, origin, proxy, cache, one line per link.
    pub settings: Vec<(String, String)>,
    pub workloads: Vec<WorkloadInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkloadInfo {
    pub name: String,
    pub kind: String,
    pub target: String,
    /// The resolved settings in one line.
    pub settings: String,
}

/// One `[expect]` threshold checked against one variant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExpectationInfo {
    pub variant: String,
    /// The repetition of the variant, from 1.
    pub repetition: u32,
    pub workload: String,
    pub metric: String,
    /// As written: `<= 1`.
    pub expected: String,
    pub actual: Option<f64>,
    pub passed: bool,
}

impl From<&ExpectationResult> for ExpectationInfo {
    fn from(e: &ExpectationResult) -> Self {
        ExpectationInfo {
            variant: e.variant.clone(),
            repetition: e.repetition,
            workload: e.workload.clone(),
            metric: e.metric.clone(),
            expected: e.expected.clone(),
            actual: e.actual,
            passed: e.passed,
        }
    }
}

/// A recorded expectation as the checker gives them (JUnit, `--json`).
impl From<&ExpectationInfo> for ExpectationResult {
    fn from(e: &ExpectationInfo) -> Self {
        ExpectationResult {
            variant: e.variant.clone(),
            repetition: e.repetition,
            workload: e.workload.clone(),
            metric: e.metric.clone(),
            expected: e.expected.clone(),
            actual: e.actual,
            passed: e.passed,
        }
    }
}

/// The `--baseline` check of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BaselineInfo {
    /// The baseline file or folder given.
    pub source: String,
    /// Figures worse by more than this (percent) and the noise floor fail the run.
    pub tolerance_percent: f64,
    /// Every gated figure with its verdict.
    pub findings: Vec<BaselineFinding>,
    /// Why worse verdicts counted as inconclusive, when the host itself changed.
    pub host_changed: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BaselineFinding {
    pub variant: String,
    pub workload: String,
    pub metric: String,
    /// `worse`, `better`, `same`, `small` or `inconclusive`.
    pub verdict: String,
    /// The whole finding as the terminal prints it.
    pub text: String,
}

impl RunInfo {
    /// The description of a finished run of `scenario`.
    pub fn new(
        scenario: &Scenario,
        run_id: &str,
        interrupted: bool,
        expectations: Vec<ExpectationInfo>,
        baseline: Option<BaselineInfo>,
    ) -> Self {
        let variants = scenario
            .variants
            .iter()
            .map(|v| VariantInfo {
                label: v.label.clone(),
                overrides: v.overrides.clone(),
                settings: plan::settings(&v.plan)
                    .into_iter()
                    .map(|(k, t)| (k.to_string(), t))
                    .collect(),
                workloads: v
                    .plan
                    .workloads
                    .iter()
                    .map(|w| WorkloadInfo {
                        name: w.name.clone(),
                        kind: w.kind.as_str().to_string(),
                        target: w.target.as_str().to_string(),
                        settings: plan::workload_text(w),
                    })
                    .collect(),
            })
            .collect();
        RunInfo {
            scenario: scenario.name.clone(),
            description: scenario.description.clone(),
            source: scenario.source.display().to_string(),
            run_id: run_id.to_string(),
            finished_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                .to_string(),
            netrun_version: env!("CARGO_PKG_VERSION").to_string(),
            host: HostInfo::this_host(),
            interrupted,
            variants,
            expectations,
            baseline,
            ..RunInfo::default()
        }
    }

    /// Writes `dir/run.json` atomically.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        self.stage(dir)?.commit()
    }

    /// [`RunInfo::write`], staged for [`crate::atomic_file::commit_all`].
    pub fn stage(&self, dir: &Path) -> anyhow::Result<crate::atomic_file::Staged> {
        let path = dir.join(RUN_JSON);
        let mut file = AtomicFile::create(&path)?;
        serde_json::to_writer_pretty(&mut file, self)
            .with_context(|| format!("cannot write {}", path.display()))?;
        std::io::Write::write_all(&mut file, b"\n")?;
        file.stage()
    }

    /// Reads `dir/run.json`; `None` when there is none (results of an older
    /// netrun), an error when it exists but cannot be read.
    pub fn read(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join(RUN_JSON);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let info = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a netrun run description", path.display()))?;
        Ok(Some(info))
    }
}
