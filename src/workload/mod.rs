//! Workloads: UDP probe bursts and HTTP request loads, measured.
//!
//! [`udp::run_udp`] and [`http::run_http`] are the library API that
//! `netrun probe` and the scenario runner drive; [`probe`] is the datagram
//! wire format.

mod batch;
pub mod http;
mod pacing;
pub mod probe;
pub mod source;
pub mod udp;

pub use http::{run_http, HttpProbeConfig, HttpReport};
pub use udp::{run_udp, UdpProbeConfig, UdpReport};

use std::time::Duration;

use crate::metrics::qos::LatencySummary;
use crate::metrics::summary::round3;
use crate::metrics::SummaryRow;

/// How a workload reports its progress while it runs: a progress bar
/// (`netrun probe`), the runner's events, or nothing. Called from the
/// workload's tasks and its pacing thread, so implementations are cheap and
/// thread-safe; the workloads throttle [`Progress::replies`] themselves.
pub trait Progress: Send + Sync {
    /// The workload will send `total` requests or datagrams in all.
    fn set_total(&self, total: u64);
    /// `n` more requests completed (HTTP) or datagrams sent (UDP).
    fn advance(&self, n: u64);
    /// Replies so far, and errors where the workload counts them (HTTP).
    fn replies(&self, received: u64, errors: Option<u64>);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn set_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn replies(&self, _: u64, _: Option<u64>) {}
}

/// Longest `timeout`, `duration` or `interval` a workload accepts: every load
/// is bounded in time, and the arithmetic on instants cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A workload setting the engines refuse: which one, and what to do about
/// it. Callers that know where the setting came from (a scenario key, a
/// flag) place the message there by `setting`, never by its wording.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SettingError {
    pub setting: Setting,
    /// Starts with the setting's name and says which values are accepted.
    pub message: String,
}

/// The settings of [`HttpProbeConfig`] and [`UdpProbeConfig`] that are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Requests,
    Concurrency,
    Rate,
    Paths,
    Count,
    Size,
    Flows,
    Timeout,
    Interval,
    Duration,
    Streams,
    Pipeline,
}

/// File descriptors netrun keeps for itself (listeners, result files,
/// the runtime) when sockets are counted against the open-file limit.
pub const RESERVED_FDS: u64 = 64;

/// Refuses `n` of `setting` when each needs `per` sockets and together they
/// would not fit the process's open-file limit: the run would otherwise fail
/// half-way with "too many open files".
pub fn check_sockets(setting: Setting, n: u64, per: u64) -> Result<(), SettingError> {
    let Some(limit) = crate::net::open_file_limit() else {
        return Ok(());
    };
    let needed = n.saturating_mul(per);
    if needed.saturating_add(RESERVED_FDS) <= limit {
        return Ok(());
    }
    let most = limit.saturating_sub(RESERVED_FDS) / per.max(1);
    Err(setting.error(format!(
        "{} = {n} needs {needed} sockets, more than this process may open: its open-file limit \
         (RLIMIT_NOFILE) is {limit}, {RESERVED_FDS} of them kept for netrun itself; use at most \
         {most}, or raise the limit (`ulimit -n`)",
        setting.name()
    )))
}

impl Setting {
    /// The name used in messages and scenario files (`timeout`, `count`, …).
    pub fn name(self) -> &'static str {
        match self {
            Setting::Requests => "requests",
            Setting::Concurrency => "concurrency",
            Setting::Rate => "rate",
            Setting::Paths => "paths",
            Setting::Count => "count",
            Setting::Size => "size",
            Setting::Flows => "flows",
            Setting::Timeout => "timeout",
            Setting::Interval => "interval",
            Setting::Duration => "duration",
            Setting::Streams => "streams",
            Setting::Pipeline => "pipeline",
        }
    }

    fn error(self, message: impl Into<String>) -> SettingError {
        SettingError {
            setting: self,
            message: message.into(),
        }
    }
}

/// A refused setting is invalid input (exit 2).
impl From<SettingError> for crate::Error {
    fn from(e: SettingError) -> Self {
        crate::Error::Input(e.message)
    }
}

/// Checks a workload duration against `(0, MAX_DURATION]` (or `[0, …]` when
/// zero is meaningful); the message names the setting.
fn check_duration(setting: Setting, d: Duration, zero_ok: bool) -> Result<(), SettingError> {
    let what = setting.name();
    if d.is_zero() && !zero_ok {
        return Err(setting.error(format!("{what} is 0; give a positive duration such as 1s")));
    }
    if d > MAX_DURATION {
        return Err(setting.error(format!(
            "{what} is {}; at most 24h is accepted",
            crate::units::format_duration(d)
        )));
    }
    Ok(())
}

/// A summary row with only the latency columns filled (rounded to µs), to
/// complete with struct update syntax: `SummaryRow { kind, ..latency_columns(l) }`.
fn latency_columns(summary: Option<&LatencySummary>) -> SummaryRow {
    let ms = |f: fn(&LatencySummary) -> f64| summary.map(|r| round3(f(r)));
    SummaryRow {
        latency_min_ms: ms(|r| r.min_ms),
        latency_mean_ms: ms(|r| r.mean_ms),
        latency_p50_ms: ms(|r| r.p50_ms),
        latency_p90_ms: ms(|r| r.p90_ms),
        latency_p99_ms: ms(|r| r.p99_ms),
        latency_max_ms: ms(|r| r.max_ms),
        latency_stddev_ms: ms(|r| r.stddev_ms),
        latency_p999_ms: ms(|r| r.p999_ms),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each summary field lands in its own column: a swap would mislabel a percentile.
    #[test]
    fn latency_columns_map_each_field_to_its_column() {
        let l = LatencySummary {
            count: 9,
            min_ms: 1.0,
            mean_ms: 2.0,
            p50_ms: 3.0,
            p90_ms: 4.0,
            p99_ms: 5.0,
            p999_ms: 6.0,
            max_ms: 7.0,
            stddev_ms: 8.0,
        };
        let r = latency_columns(Some(&l));
        let got = [
            r.latency_min_ms,
            r.latency_mean_ms,
            r.latency_p50_ms,
            r.latency_p90_ms,
            r.latency_p99_ms,
            r.latency_p999_ms,
            r.latency_max_ms,
            r.latency_stddev_ms,
        ];
        let want = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0].map(Some);
        assert_eq!(got, want);
        assert_eq!(latency_columns(None), SummaryRow::default());
    }

    /// Known samples through the whole chain: histogram, summary, row, CSV
    /// file, and back by column name. 1..=1000 µs are held exactly.
    #[test]
    fn known_samples_land_in_their_percentile_columns_of_the_csv() {
        let mut stats = crate::metrics::qos::LatencyStats::new();
        for us in (1..=1000u64).rev() {
            stats.record(Duration::from_micros(us));
        }
        let row = latency_columns(stats.summary().as_ref());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        // csv writes the header from the row's field names, as the summary writer does.
        let mut w = csv::Writer::from_path(&path).unwrap();
        w.serialize(&row).unwrap();
        w.flush().unwrap();
        let mut r = csv::Reader::from_path(&path).unwrap();
        let header = r.headers().unwrap().clone();
        let record = r.records().next().unwrap().unwrap();
        let col = |name: &str| -> f64 {
            let i = header.iter().position(|h| h == name).unwrap();
            record[i].parse().unwrap()
        };
        assert_eq!(col("latency_min_ms"), 0.001);
        assert_eq!(col("latency_p50_ms"), 0.5);
        assert_eq!(col("latency_p90_ms"), 0.9);
        assert_eq!(col("latency_p99_ms"), 0.99);
        assert_eq!(col("latency_p999_ms"), 0.999);
        assert_eq!(col("latency_max_ms"), 1.0);
        assert!((col("latency_mean_ms") - 0.5005).abs() <= 0.001);
    }
}
