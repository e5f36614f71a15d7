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

use std::net::SocketAddr;

use crate::shutdown::Interrupt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

pub use crate::scenario::ExpectationResult;
pub use barrier::{Barrier, Released};
pub use events::{Event, Observer, ProgressCounts, Silent, VariantPos, WorkloadPos};
pub use expect::check_expectations;
pub use hosts::preflight;
pub use output::{Outputs, RowFile};

use crate::metrics::histogram;
use crate::metrics::records::Tagged;
use crate::metrics::{HttpRequestRow, SummaryRow, UdpPacketRow};
use crate::net::{bind_tcp, bind_udp};
use crate::netns::{self, Role};
use crate::origin::{self, OriginConfig, OriginHandle};
use crate::proxy::{self, ProxyConfig, ProxyHandle, ProxyStats};
use crate::scenario::{
    Mode, Order, Plan, Scenario, Service, Target, Variant, Workload, WorkloadKind,
};
use crate::server::HttpLimits;
use crate::workload::http::run_http;
use crate::workload::udp::run_udp;
use hdrhistogram::Histogram;

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
    let all: Vec<usize> = (0..schedule(scenario).len()).collect();
    run_scenario_units(scenario, &all, &Barrier::default(), out, observer, cancel).await
}

/// Runs only these units of the scenario (positions in [`schedule`], in
/// order: a `--shard`'s share) and writes their results under `out`.
pub async fn run_scenario_units(
    scenario: &Scenario,
    positions: &[usize],
    barrier: &Barrier,
    out: &std::path::Path,
    observer: &Arc<dyn Observer>,
    cancel: impl Into<Interrupt>,
) -> anyhow::Result<ScenarioRun> {
    let units = schedule(scenario);
    let units = positions.iter().filter_map(|&p| units.get(p).copied());
    let cancel: Interrupt = cancel.into();
    let cancel = &cancel;
    hosts::preflight(scenario)?;
    let run_id = new_run_id();
    observer.event(&Event::RunStarted {
        scenario,
        run_id: &run_id,
    });
    let outputs = Outputs::create(out, &scenario.name)?;
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
        let (mut r, err) =
            run_variant(scenario, variant, pos, &outputs, observer, barrier, cancel).await;
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
    let written = outputs.finish(&place, &rows, &run_id, &timestamp);
    let log_written = log.map_or(Ok(()), |l| l.commit_to(place.services_log()));
    outputs.tidy(&place);
    if let Some(e) = failure {
        if let Err(w) = written.and(log_written) {
            tracing::error!("also failed to write the results: {w:#}");
        }
        return Err(e);
    }
    written?;
    log_written?;

    let expectations = if interrupted {
        Vec::new()
    } else {
        let results = check_expectations(scenario, &rows);
        observer.event(&Event::ExpectationsChecked { results: &results });
        results
    };
    Ok(ScenarioRun {
        scenario: scenario.name.clone(),
        run_id,
        rows,
        expectations,
        interrupted,
        summary_csv: place.summary,
        results_dir: place.dir,
    })
}

/// The runs of a scenario, in order: `(variant index, repetition from 1)`.
/// Round after round, every variant once per round, so a machine that slows
/// down halfway hurts every variant alike; `shuffled` draws each round's
/// order from the scenario's seed.
pub fn schedule(scenario: &Scenario) -> Vec<(usize, u32)> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(scenario.order_seed);
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

/// The services of one variant.
struct Services {
    token: CancellationToken,
    origin: Option<OriginHandle>,
    proxy: Option<ProxyHandle>,
    origin_http: SocketAddr,
    origin_udp: Option<SocketAddr>,
    proxy_http: SocketAddr,
    proxy_udp: Option<SocketAddr>,
}

impl Services {
    /// Starts the services the plan asks for: here, or each in its network
    /// namespace of `ns` (where the plan has them listen on every address),
    /// reached at the address of the link the caller comes over.
    async fn start(
        scenario: &Scenario,
        plan: &Plan,
        ns: Option<&netns::Hosts>,
    ) -> anyhow::Result<Services> {
        let token = CancellationToken::new();
        let file = scenario.source.display().to_string();
        let at = |ip: fn() -> std::net::IpAddr, a: SocketAddr| match ns {
            Some(_) => SocketAddr::new(ip(), a.port()),
            None => a,
        };
        // (the clients' view, the proxy's view) of the origin.
        let (origin, (origin_http, upstream_http), (origin_udp, upstream_udp)) =
            match plan.topology.origin {
                Service::Spawn { http, udp } => {
                    let config = OriginConfig {
                        www: plan.topology.www.clone(),
                        limits: HttpLimits::default(),
                        max_age: plan.origin_max_age,
                    };
                    let start = async {
                        let l = bind_tcp(http, &format!("topology.origin.http in {file}")).await?;
                        let u = bind_udp(udp, &format!("topology.origin.udp in {file}")).await?;
                        origin::spawn(l, u, config, token.clone())
                            .await
                            .context("cannot start the origin")
                    };
                    let h = match ns {
                        Some(ns) => ns.runtime(Role::Origin).enter(start).await??,
                        None => start.await?,
                    };
                    let (a, b) = (h.http_addr(), h.udp_addr());
                    let clients = netns::origin_addr_for_clients;
                    let proxy = netns::origin_addr_for_proxy;
                    (
                        Some(h),
                        (at(clients, a), at(proxy, a)),
                        (Some(at(clients, b)), Some(at(proxy, b))),
                    )
                }
                Service::External { http, udp } => (None, (http, http), (udp, udp)),
            };
        let (proxy, proxy_http, proxy_udp) = match plan.topology.proxy {
            Service::Spawn { http, udp } => {
                // Validation guarantees a UDP upstream whenever a UDP workload goes
                // through the proxy; without one, the proxy's UDP side is unused.
                let udp_upstream = upstream_udp.unwrap_or(SocketAddr::new(upstream_http.ip(), 9));
                let config = ProxyConfig {
                    cache: plan.cache.proxy_cache(),
                    ..ProxyConfig::new(upstream_http, udp_upstream)
                };
                let hooks = hosts::in_process(plan).proxy_hooks();
                let start = async {
                    let l = bind_tcp(http, &format!("topology.proxy.http in {file}")).await?;
                    let u = bind_udp(udp, &format!("topology.proxy.udp in {file}")).await?;
                    proxy::spawn_with_hooks(l, u, config, hooks, token.clone())
                        .await
                        .context("cannot start the proxy")
                };
                let h = match ns {
                    Some(ns) => ns.runtime(Role::Proxy).enter(start).await??,
                    None => start.await?,
                };
                let (a, b) = (h.http_addr(), h.udp_addr());
                (
                    Some(h),
                    at(netns::proxy_addr, a),
                    Some(at(netns::proxy_addr, b)),
                )
            }
            Service::External { http, udp } => (None, http, udp),
        };
        Ok(Services {
            token,
            origin,
            proxy,
            origin_http,
            origin_udp,
            proxy_http,
            proxy_udp,
        })
    }

    fn http_addr(&self, target: Target) -> SocketAddr {
        match target {
            Target::Proxy => self.proxy_http,
            Target::Origin => self.origin_http,
        }
    }

    fn udp_addr(&self, target: Target) -> Option<SocketAddr> {
        match target {
            Target::Proxy => self.proxy_udp,
            Target::Origin => self.origin_udp,
        }
    }

    fn proxy_stats(&self) -> Option<ProxyStats> {
        self.proxy.as_ref().map(|p| p.stats())
    }

    async fn stop(self, grace: Duration) {
        self.token.cancel();
        if let Some(p) = self.proxy {
            if !p.wait(grace).await && !grace.is_zero() {
                tracing::warn!("the proxy did not stop within {grace:?}");
            }
        }
        if let Some(o) = self.origin {
            if !o.wait(grace).await && !grace.is_zero() {
                tracing::warn!("the origin did not stop within {grace:?}");
            }
        }
    }
}

/// Runs one variant. Rows gathered before a failure are returned with it,
/// so they are written like any other result.
async fn run_variant(
    scenario: &Scenario,
    variant: &Variant,
    pos: VariantPos<'_>,
    outputs: &Outputs,
    observer: &Arc<dyn Observer>,
    barrier: &Barrier,
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
    let services = match Services::start(scenario, plan, ns.as_ref()).await {
        Ok(s) => s,
        Err(e) => {
            hosts::remove(ns).await;
            return (Vec::new(), Some(e));
        }
    };
    observer.event(&Event::VariantStarted(pos));
    // The services are up: `--start-at` holds the first variant's workloads here.
    barrier.wait(cancel).await;
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
                let before = services.proxy_stats();
                match ctx.run_workload(w).await {
                    Ok(mut row) => {
                        attach_proxy_counters(&mut row, w, before, services.proxy_stats());
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
            let before = services.proxy_stats();
            let results = join_all(plan.workloads.iter().map(|w| ctx.run_workload(w))).await;
            let after = services.proxy_stats();
            for (w, r) in plan.workloads.iter().zip(results) {
                match r {
                    Ok(mut row) => {
                        // The counters cover the whole block: they belong to a
                        // workload only if no other of its kind used the proxy.
                        let alone = plan
                            .workloads
                            .iter()
                            .filter(|o| {
                                o.target == Target::Proxy && o.kind.as_str() == w.kind.as_str()
                            })
                            .count()
                            == 1;
                        if alone {
                            attach_proxy_counters(&mut row, w, before, after);
                        }
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

/// Adds the proxy's own view of a workload (counter deltas) beside the client's figures.
fn attach_proxy_counters(
    row: &mut SummaryRow,
    w: &Workload,
    before: Option<ProxyStats>,
    after: Option<ProxyStats>,
) {
    let (Some(b), Some(a)) = (before, after) else {
        return;
    };
    if w.target != Target::Proxy {
        return;
    }
    match w.kind {
        WorkloadKind::Http(_) => {
            row.proxy_hits = Some(a.hits.saturating_sub(b.hits));
            row.proxy_upstream_fetches =
                Some(a.upstream_fetches.saturating_sub(b.upstream_fetches));
            row.proxy_bytes_from_cache =
                Some(a.bytes_from_cache.saturating_sub(b.bytes_from_cache));
            let clients = a.http_delayed.saturating_sub(b.http_delayed);
            let origin = a
                .origin_link_http_delayed
                .saturating_sub(b.origin_link_http_delayed);
            row.clients_proxy_delayed = Some(clients);
            row.proxy_origin_delayed = Some(origin);
            row.proxy_delayed = Some(clients + origin);
        }
        WorkloadKind::Udp(_) => {
            let drops = |s: &ProxyStats| {
                s.udp_dropped_impairment
                    + s.origin_link_udp_dropped
                    + s.udp_dropped_table_full
                    + s.udp_dropped_buffer_full
                    + s.udp_dropped_delay_full
                    + s.udp_send_errors
            };
            let delta = |f: fn(&ProxyStats) -> u64| f(&a).saturating_sub(f(&b));
            row.proxy_dropped = Some(delta(drops));
            row.clients_proxy_dropped = Some(delta(|s| s.udp_dropped_impairment));
            row.proxy_origin_dropped = Some(delta(|s| s.origin_link_udp_dropped));
            let clients = delta(|s| s.udp_delayed_impairment);
            let origin = delta(|s| s.origin_link_udp_delayed);
            row.clients_proxy_delayed = Some(clients);
            row.proxy_origin_delayed = Some(origin);
            row.proxy_delayed = Some(clients + origin);
        }
    }
}

/// A row callback that labels each row with its variant, workload and
/// repetition and
/// streams it into `file`.
fn tagger<'a, T: Tagged + serde::Serialize + Default>(
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
                let config = h.probe_config(self.services.http_addr(w.target));
                let mut tag = tagger(&self.outputs.requests, label, &w.name, self.pos.repetition);
                let mut sink = |row: HttpRequestRow| {
                    if let Some(ms) = histogram::http_latency_ms(&row) {
                        histogram::record_ms(&mut hist, ms);
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
