//! The scenario runner: for each variant, start the services the topology
//! asks for, run the workloads (in order or all at once), collect summary
//! rows and per-sample rows, stop the services, then write the results.
//!
//! Ctrl-C cancels the workloads only: the services keep running until the
//! workloads have returned what they gathered, then everything is written
//! (a second Ctrl-C ends the waiting). An interrupted run's files go beside
//! the last complete run's, under `<name>.interrupted`.

mod barrier;
pub mod events;
mod expect;
mod hosts;
pub mod output;
mod record;
mod services;

use crate::shutdown::Interrupt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use futures_util::future::join_all;

pub use crate::scenario::ExpectationResult;
pub use barrier::{Barrier, Released};
pub use events::{Event, Observer, ProgressCounts, Silent, VariantPos, WorkloadPos};
pub use expect::check_expectations;
pub use hosts::preflight;
pub use output::{Outputs, RowFile};
pub use record::Share;

use crate::metrics::histogram;
use crate::metrics::records::Tagged;
use crate::metrics::{HttpRequestRow, SummaryRow, UdpPacketRow};
use crate::netns::{self, Role};
use crate::report::csv_stream::escape_controls;
use crate::report::run_record::RunInfo;
use crate::scenario::{Mode, Order, Scenario, Target, Variant, Workload, WorkloadKind};
use crate::workload::http::run_http;
use crate::workload::udp::run_udp;
use hdrhistogram::Histogram;
use services::{attach_link_counters, attach_service_counters, Services};

/// How long services get to finish in-flight work when a variant ends.
const SERVICE_GRACE: Duration = Duration::from_secs(5);

/// What a scenario run produced.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    pub scenario: String,
    pub run_id: String,
    /// One row per variant and workload, in run order.
    pub rows: Vec<SummaryRow>,
    pub expectations: Vec<ExpectationResult>,
    /// Ctrl-C stopped the run before every workload finished.
    pub interrupted: bool,
    /// Where the results went.
    pub summary_csv: PathBuf,
    pub results_dir: PathBuf,
    /// The run record written beside the results (`run.json`).
    pub record: RunInfo,
}

impl ScenarioRun {
    pub fn expectations_failed(&self) -> bool {
        self.expectations.iter().any(|e| !e.passed)
    }
}

/// Runs every variant of `scenario` and writes its results under `out`,
/// telling `observer` what happens as it goes.
pub async fn run_scenario(
    scenario: &Scenario,
    out: &std::path::Path,
    observer: &Arc<dyn Observer>,
    cancel: impl Into<Interrupt>,
) -> anyhow::Result<ScenarioRun> {
    run_scenario_units(scenario, &Share::whole(scenario), out, observer, cancel).await
}

/// Runs `scenario` (the whole, or a `--segment`'s share of its load) for
/// the units of `share` (a `--shard`'s, or all) and writes their results
/// and run record under `out`.
pub async fn run_scenario_units(
    scenario: &Scenario,
    share: &Share<'_>,
    out: &std::path::Path,
    observer: &Arc<dyn Observer>,
    cancel: impl Into<Interrupt>,
) -> anyhow::Result<ScenarioRun> {
    let units = schedule(scenario);
    let units = share
        .positions
        .iter()
        .filter_map(|&p| units.get(p).copied());
    let cancel: Interrupt = cancel.into();
    let cancel = &cancel;
    hosts::preflight(scenario)?;
    let run_id = new_run_id();
    observer.event(&Event::RunStarted {
        scenario,
        run_id: &run_id,
    });
    let mut outputs = Outputs::create(out, &scenario.name)?;
    if scenario.variants.iter().any(|v| v.plan.tls.makes_ca()) {
        outputs.make_ca()?;
    }
    let outputs = outputs;
    let log = crate::report::atomic::AtomicFile::create(outputs.services_log())?;
    crate::logging::capture_start(log);
    crate::logging::capture_note(&format!(
        "# netrun run {run_id}: scenario {} ({})",
        scenario.name,
        scenario.source.display()
    ));

    let mut rows = Vec::new();
    let mut failure = None;
    for (index, repetition) in units {
        if cancel.is_stopped() {
            break;
        }
        let variant = &scenario.variants[index];
        crate::logging::capture_note(&format!(
            "# variant {}, repetition {repetition}",
            variant.label
        ));
        let pos = VariantPos {
            scenario: &scenario.name,
            index,
            count: scenario.variants.len(),
            label: &variant.label,
            repetition,
        };
        let (mut r, err) = run_variant(
            scenario,
            variant,
            pos,
            &outputs,
            observer,
            share.barrier,
            cancel,
        )
        .await;
        rows.append(&mut r);
        if let Some(e) = err {
            failure = Some(e);
            break;
        }
    }

    let log = crate::logging::capture_stop();
    if rows.is_empty() {
        if let Some(e) = failure.take() {
            // Nothing was measured: keep the previous results rather than
            // replace them with empty files (dropping the temporaries removes them).
            drop(log);
            drop(outputs);
            return Err(e);
        }
    }
    // Whatever happened, keep what was gathered; an interrupted run's
    // results go beside those of the last complete run, never over them.
    let interrupted = cancel.is_stopped() || rows.iter().any(|r| r.interrupted);
    let place = outputs.place(interrupted);
    let timestamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let expectations = if interrupted || failure.is_some() {
        Vec::new()
    } else {
        check_expectations(scenario, &rows)
    };
    let record = share.record(&run_id, interrupted, &expectations);
    // The log goes with the results it describes: when they could not be
    // written, the earlier run's log stays beside the earlier run's results.
    let written = outputs.finish(&place, &rows, &record, &timestamp, log);
    outputs.tidy(&place);
    if let Some(e) = failure {
        if let Err(w) = written {
            tracing::error!("also failed to write the results: {w:#}");
        }
        return Err(e);
    }
    written?;

    if !interrupted {
        observer.event(&Event::ExpectationsChecked {
            results: &expectations,
        });
    }
    Ok(ScenarioRun {
        scenario: scenario.name.clone(),
        run_id,
        rows,
        expectations,
        interrupted,
        summary_csv: place.summary,
        results_dir: place.dir,
        record,
    })
}

/// The runs of a scenario, in order: `(variant index, repetition from 1)`.
/// Round after round, every variant once per round, so a machine that slows
/// down halfway hurts every variant alike; `shuffled` draws each round's
/// order from the scenario's seed.
pub fn schedule(scenario: &Scenario) -> Vec<(usize, u32)> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(scenario.order_seed);
    let mut out = Vec::new();
    for repetition in 1..=scenario.repeat.max(1) {
        let mut round: Vec<usize> = (0..scenario.variants.len()).collect();
        if scenario.order == Order::Shuffled {
            round.shuffle(&mut rng);
        }
        out.extend(round.into_iter().map(|v| (v, repetition)));
    }
    out
}

/// A run id that sorts by time: `20261125T171500Z-1a2b`.
pub fn new_run_id() -> String {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let compact: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("{compact}-{:04x}", rand::random::<u16>())
}

/// Runs one variant. Rows gathered before a failure are returned with it,
/// so they are written like any other result.
async fn run_variant(
    scenario: &Scenario,
    variant: &Variant,
    pos: VariantPos<'_>,
    outputs: &Outputs,
    observer: &Arc<dyn Observer>,
    barrier: Option<&Barrier>,
    cancel: &Interrupt,
) -> (Vec<SummaryRow>, Option<anyhow::Error>) {
    let plan = &variant.plan;
    let ns = match hosts::create(plan).await {
        Ok(ns) => ns,
        Err(e) => {
            return (
                Vec::new(),
                Some(e.context("cannot make the network namespaces")),
            )
        }
    };
    let services = match Services::start(scenario, plan, ns.as_ref(), outputs.run_ca()).await {
        Ok(s) => s,
        Err(e) => {
            hosts::remove(ns).await;
            return (Vec::new(), Some(e));
        }
    };
    observer.event(&Event::VariantStarted(pos));
    // The services are up: `--start-at` holds the first variant's workloads here.
    if let Some(b) = barrier {
        b.wait(cancel).await;
    }
    let ctx = VariantCtx {
        scenario,
        variant,
        pos,
        outputs,
        services: &services,
        clients: ns.as_ref().map(|h| h.runtime(Role::Clients)),
        observer,
        cancel,
    };
    let mut rows = Vec::new();
    let mut err = None;
    match plan.mode {
        Mode::Sequential => {
            for w in &plan.workloads {
                if cancel.is_stopped() {
                    break;
                }
                let before = services.counters();
                let links_before = link_counts(ns.as_ref());
                match ctx.run_workload(w).await {
                    Ok(mut row) => {
                        attach_service_counters(&mut row, w, &before, &services.counters());
                        attach_link_counters(&mut row, &links_before, &link_counts(ns.as_ref()));
                        rows.push(row);
                    }
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
        }
        Mode::Parallel => {
            let before = services.counters();
            let links_before = link_counts(ns.as_ref());
            let results = join_all(plan.workloads.iter().map(|w| ctx.run_workload(w))).await;
            let after = services.counters();
            let links_after = link_counts(ns.as_ref());
            let only_udp = plan
                .workloads
                .iter()
                .filter(|o| o.kind.as_str() == "udp")
                .count()
                == 1;
            for (w, r) in plan.workloads.iter().zip(results) {
                match r {
                    Ok(mut row) => {
                        attach_link_counters(&mut row, &links_before, &links_after);
                        // The counters cover the whole block: the proxy's belong
                        // to a workload only if no other of its kind used the
                        // proxy, the echo's only if no other UDP workload ran
                        // (`only_udp`).
                        let alone = plan
                            .workloads
                            .iter()
                            .filter(|o| {
                                o.target == Target::Proxy && o.kind.as_str() == w.kind.as_str()
                            })
                            .count()
                            == 1;
                        attach_service_counters(
                            &mut row,
                            w,
                            &before.only(alone, only_udp),
                            &after.only(alone, only_udp),
                        );
                        rows.push(row);
                    }
                    Err(e) => {
                        err.get_or_insert(e);
                    }
                }
            }
        }
    }
    // After a second Ctrl-C nothing is waited for.
    let grace = if cancel.is_aborted() {
        Duration::ZERO
    } else {
        SERVICE_GRACE
    };
    services.stop(grace).await;
    hosts::remove(ns).await;
    observer.event(&Event::VariantFinished {
        variant: pos,
        rows: &rows,
    });
    (rows, err)
}

/// A row callback that labels each row with its variant, workload and
/// repetition and
/// streams it into `file`.
/// The user-space links' counts now (none on loopback).
fn link_counts(ns: Option<&netns::Hosts>) -> services::LinkCounts {
    ns.map(netns::Hosts::link_counters).unwrap_or_default()
}

fn tagger<'a, T: Tagged + crate::metrics::records::CsvRow + Default>(
    file: &'a RowFile<T>,
    variant: &'a str,
    workload: &'a str,
    repetition: u32,
) -> impl FnMut(T) + Send + 'a {
    move |mut row: T| {
        row.tag(variant, workload, repetition);
        file.push(&row);
    }
}

struct VariantCtx<'a> {
    scenario: &'a Scenario,
    variant: &'a Variant,
    pos: VariantPos<'a>,
    outputs: &'a Outputs,
    services: &'a Services,
    /// With network namespaces: the clients' runtime, where workloads run.
    clients: Option<&'a netns::NsRuntime>,
    observer: &'a Arc<dyn Observer>,
    cancel: &'a Interrupt,
}

impl VariantCtx<'_> {
    /// Runs one workload and reports its start and its end (results or error).
    async fn run_workload(&self, w: &Workload) -> anyhow::Result<SummaryRow> {
        if !w.start_after.is_zero() {
            // Ctrl-C ends the wait; the workload then stops at once.
            tokio::select! {
                _ = self.cancel.stop_token().cancelled() => {}
                _ = tokio::time::sleep(w.start_after) => {}
            }
        }
        let at = WorkloadPos {
            variant: self.pos,
            workload: &w.name,
        };
        let total = match &w.kind {
            WorkloadKind::Http(h) => h
                .probe_config(self.services.http_addr(w.target))
                .planned_requests(),
            WorkloadKind::Udp(u) => u.count.saturating_mul(u64::from(u.flows)),
        };
        self.observer.event(&Event::WorkloadStarted {
            at,
            kind: w.kind.as_str(),
            target: w.target.as_str(),
            total,
        });
        let started_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let progress = events::ProgressEvents::new(self.observer.clone(), at, total);
        let measured = match self.clients {
            Some(rt) => rt.enter(self.measure(w, &progress)).await.and_then(|r| r),
            None => self.measure(w, &progress).await,
        };
        match measured {
            Ok((mut row, hist)) => {
                row.scenario.clone_from(&self.scenario.name);
                row.variant.clone_from(&self.variant.label);
                row.workload.clone_from(&w.name);
                row.kind = w.kind.as_str().to_string();
                row.target = w.target.as_str().to_string();
                row.cache = (w.target == Target::Proxy
                    && self.variant.plan.topology.proxy.is_spawned())
                .then_some(self.variant.plan.cache.enabled);
                row.started_at = started_at;
                row.repetition = self.pos.repetition;
                self.outputs.keep_histogram(&row, &hist);
                row.topology = self.variant.plan.topology.hosts.as_str().to_string();
                self.observer
                    .event(&Event::WorkloadFinished { at, row: &row });
                Ok(row)
            }
            Err(error) => {
                self.observer
                    .event(&Event::WorkloadFailed { at, error: &error });
                Err(error)
            }
        }
    }

    /// Drives the workload's engine against its target, streaming its
    /// per-sample rows into the variant's files and recording their
    /// latencies into the row's histogram (kept for `netrun merge`).
    async fn measure(
        &self,
        w: &Workload,
        progress: &events::ProgressEvents,
    ) -> anyhow::Result<(SummaryRow, Histogram<u64>)> {
        let label = &self.variant.label;
        let mut hist = histogram::latency_histogram();
        match &w.kind {
            WorkloadKind::Http(h) => {
                let mut config = h.probe_config(self.services.http_addr(w.target));
                // A TLS service: HTTPS, trusting what the run gave it (its CA).
                if let Some(trust) = self.services.client_trust(w.target) {
                    config.use_tls(trust)?;
                    if let Some(name) = self.services.tls_name(w.target) {
                        config.wire.tls =
                            config.wire.tls.take().map(|t| t.named(name)).transpose()?;
                    }
                }
                let mut tag = tagger(&self.outputs.requests, label, &w.name, self.pos.repetition);
                let mut sink = |mut row: HttpRequestRow| {
                    if let Some(ms) = histogram::http_latency_ms(&row) {
                        histogram::record_ms(&mut hist, ms);
                    }
                    // A path is text from a file: no raw control bytes in the CSV.
                    if let std::borrow::Cow::Owned(p) = escape_controls(&row.path) {
                        row.path = p;
                    }
                    tag(row);
                };
                let report = run_http(&config, &mut sink, progress, self.cancel.stop_token())
                    .await
                    .with_context(|| format!("workload `{}` failed", w.name))?;
                Ok((report.summary(), hist))
            }
            WorkloadKind::Udp(u) => {
                let addr = self.services.udp_addr(w.target).with_context(|| {
                    format!(
                        "workload `{}` targets the {} but it has no UDP address",
                        w.name,
                        w.target.as_str()
                    )
                })?;
                let config = u.probe_config(addr);
                let mut tag = tagger(&self.outputs.packets, label, &w.name, self.pos.repetition);
                let mut sink = |row: UdpPacketRow| {
                    if let Some(ms) = histogram::udp_latency_ms(&row) {
                        histogram::record_ms(&mut hist, ms);
                    }
                    tag(row);
                };
                let report = run_udp(&config, &mut sink, progress, self.cancel)
                    .await
                    .with_context(|| format!("workload `{}` failed", w.name))?;
                Ok((report.summary(), hist))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(repeat: u32, order: &str) -> Scenario {
        let mut s = crate::scenario::parse(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/unit.toml"),
            &format!(
                "order = \"{order}\"\nseed = 3\n[[workload]]\nkind = \"udp\"\nname = \"q\"\n\
                 [matrix]\n\"workload.q.count\" = [1, 2, 3]\n"
            ),
        )
        .unwrap();
        s.repeat = repeat;
        s
    }

    #[test]
    fn repetitions_run_round_after_round() {
        assert_eq!(
            schedule(&scenario(2, "interleaved")),
            [(0, 1), (1, 1), (2, 1), (0, 2), (1, 2), (2, 2)]
        );
        assert_eq!(
            schedule(&scenario(1, "interleaved")),
            [(0, 1), (1, 1), (2, 1)]
        );
    }

    #[test]
    fn shuffled_rounds_are_seeded_and_complete() {
        let a = schedule(&scenario(20, "shuffled"));
        assert_eq!(
            a,
            schedule(&scenario(20, "shuffled")),
            "same seed, same order"
        );
        for (round, chunk) in (1..).zip(a.chunks(3)) {
            let mut variants: Vec<usize> = chunk.iter().map(|&(v, _)| v).collect();
            variants.sort_unstable();
            assert_eq!(variants, [0, 1, 2], "every variant once per round");
            assert!(chunk.iter().all(|&(_, r)| r == round));
        }
        let interleaved: Vec<(usize, u32)> = schedule(&scenario(20, "interleaved"));
        assert_ne!(a, interleaved, "20 rounds of 3 are not all in file order");
    }
}
