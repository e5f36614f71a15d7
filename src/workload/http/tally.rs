//! The collector's tally of one HTTP run: counts by outcome, status and
//! error class, the latency histograms, and the report (and summary row)
//! built from them. Pure: samples in, an [`HttpReport`] out.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::Sample;
use crate::metrics::qos::{self, LatencyStats, LatencySummary};
use crate::metrics::summary::round3;
use crate::metrics::{CacheMark, SummaryRow};

/// The results of one HTTP run.
#[derive(Debug, Clone)]
pub struct HttpReport {
    pub started_at: SystemTime,
    /// Wall time: from the start to the last completed request.
    pub duration: Duration,
    /// Requests completed or failed.
    pub requests: u64,
    /// Requests that got a whole response (any status).
    pub responses: u64,
    /// Transport errors plus 5xx responses.
    pub errors: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Responses marked `X-Cache: HIT`.
    pub cache_hits: u64,
    /// Responses that carried an `X-Cache` header at all (HIT, MISS or BYPASS).
    pub cache_marked: u64,
    /// Body bytes of the responses marked `X-Cache: HIT`.
    pub hit_bytes: u64,
    /// From the scheduled start (closed loop: the send) to the last body byte, responses only.
    pub latency: Option<LatencySummary>,
    /// Open loop only: from the actual send to the last body byte.
    pub service: Option<LatencySummary>,
    /// Open loop only: mean and largest lateness of the actual sends
    /// against their schedule (pacer wake-up, or waiting for a free connection).
    pub pacing_mean: Option<Duration>,
    pub pacing_max: Option<Duration>,
    /// Connections opened (TCP handshakes completed) and used, those made
    /// before the clock started included.
    pub connections: u64,
    /// TLS handshakes completed (0 in clear text).
    pub tls_handshakes: u64,
    /// TCP connect times of the connections opened.
    pub connect: Option<LatencySummary>,
    /// TLS handshake times of the connections opened.
    pub tls: Option<LatencySummary>,
    /// From each request's start to its response head (connect and TLS
    /// included on a new connection, as curl's `time_starttransfer`).
    pub ttfb: Option<LatencySummary>,
    status_counts: BTreeMap<u16, u64>,
    errors_by_class: BTreeMap<String, u64>,
    interrupted: bool,
}

impl HttpReport {
    /// The metric fields of a summary row; scenario, variant, workload and
    /// target are left for the caller.
    pub fn summary(&self) -> SummaryRow {
        let secs = self.duration.as_secs_f64();
        SummaryRow {
            kind: "http".into(),
            started_at: humantime::format_rfc3339_seconds(self.started_at).to_string(),
            duration_s: Some(round3(secs)),
            sent: Some(self.requests),
            received: Some(self.responses),
            throughput_bps: qos::throughput_bps(self.bytes, self.duration).map(f64::round),
            requests: Some(self.requests),
            errors: Some(self.errors),
            requests_per_s: (secs > 0.0).then(|| round3(self.requests as f64 / secs)),
            // Empty when no response carried X-Cache: no cache was on the path.
            cache_hits: (self.cache_marked > 0).then_some(self.cache_hits),
            cache_hit_ratio: (self.cache_marked > 0 && self.responses > 0)
                .then(|| round3(self.cache_hits as f64 / self.responses as f64)),
            byte_hit_ratio: (self.cache_marked > 0 && self.bytes > 0)
                .then(|| self.hit_bytes as f64 / self.bytes as f64),
            service_mean_ms: self.service.map(|s| round3(s.mean_ms)),
            service_p99_ms: self.service.map(|s| round3(s.p99_ms)),
            pacing_mean_ms: self.pacing_mean.map(duration_ms),
            pacing_max_ms: self.pacing_max.map(duration_ms),
            interrupted: self.interrupted,
            connections: Some(self.connections),
            tls_handshakes: Some(self.tls_handshakes),
            connect_p50_ms: self.connect.map(|s| round3(s.p50_ms)),
            connect_p99_ms: self.connect.map(|s| round3(s.p99_ms)),
            tls_p50_ms: self.tls.map(|s| round3(s.p50_ms)),
            tls_p99_ms: self.tls.map(|s| round3(s.p99_ms)),
            ttfb_p50_ms: self.ttfb.map(|s| round3(s.p50_ms)),
            ttfb_p99_ms: self.ttfb.map(|s| round3(s.p99_ms)),
            ..crate::workload::latency_columns(self.latency.as_ref())
        }
    }

    /// Responses per HTTP status code.
    pub fn status_counts(&self) -> &BTreeMap<u16, u64> {
        &self.status_counts
    }

    /// Transport errors per class: `refused`, `reset`, `timeout`, `bad_response`, `other`.
    pub fn errors_by_class(&self) -> &BTreeMap<String, u64> {
        &self.errors_by_class
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted
    }
}

/// Aggregates the samples of a run into its report: counts by outcome,
/// status and error class, and the latency statistics.
#[derive(Debug, Default)]
pub(super) struct Tally {
    latency: LatencyStats,
    service: LatencyStats,
    status_counts: BTreeMap<u16, u64>,
    errors_by_class: BTreeMap<String, u64>,
    requests: u64,
    pub(super) responses: u64,
    pub(super) errors: u64,
    bytes: u64,
    hits: u64,
    hit_bytes: u64,
    marked: u64,
    /// Open loop: sum, largest and count of the sends' lateness.
    late_sum: Duration,
    late_max: Duration,
    late_n: u64,
    connect: LatencyStats,
    tls: LatencyStats,
    ttfb: LatencyStats,
}

impl Tally {
    /// Counts one finished request. Latency is over responses only; the
    /// service time only means something apart from it in an open loop.
    pub(super) fn add(&mut self, s: &Sample, open_loop: bool) {
        self.requests += 1;
        self.bytes += s.bytes;
        if let Some(d) = s.timing.connect {
            self.connect.record(d);
        }
        if let Some(d) = s.timing.tls {
            self.tls.record(d);
        }
        if let Some(d) = s.timing.ttfb {
            self.ttfb.record(d);
        }
        if let Some(late) = s.late {
            self.late_sum += late;
            self.late_max = self.late_max.max(late);
            self.late_n += 1;
        }
        match (s.status, s.error) {
            (Some(code), _) => {
                self.responses += 1;
                *self.status_counts.entry(code).or_insert(0) += 1;
                if code >= 500 {
                    self.errors += 1;
                }
                if s.cache == CacheMark::Hit {
                    self.hits += 1;
                    self.hit_bytes += s.bytes;
                }
                if s.cache != CacheMark::None {
                    self.marked += 1;
                }
                self.latency.record(s.latency);
                if open_loop {
                    self.service.record(s.service);
                }
            }
            (None, class) => {
                self.errors += 1;
                *self
                    .errors_by_class
                    .entry(class.unwrap_or("other").to_string())
                    .or_insert(0) += 1;
            }
        }
    }

    pub(super) fn report(
        self,
        started_at: SystemTime,
        duration: Duration,
        interrupted: bool,
    ) -> HttpReport {
        HttpReport {
            started_at,
            duration,
            requests: self.requests,
            responses: self.responses,
            errors: self.errors,
            bytes: self.bytes,
            cache_hits: self.hits,
            cache_marked: self.marked,
            hit_bytes: self.hit_bytes,
            latency: self.latency.summary(),
            service: self.service.summary(),
            pacing_mean: (self.late_n > 0).then(|| self.late_sum.div_f64(self.late_n as f64)),
            pacing_max: (self.late_n > 0).then_some(self.late_max),
            connections: self.connect.count(),
            tls_handshakes: self.tls.count(),
            connect: self.connect.summary(),
            tls: self.tls.summary(),
            ttfb: self.ttfb.summary(),
            status_counts: self.status_counts,
            errors_by_class: self.errors_by_class,
            interrupted,
        }
    }
}

/// A duration in milliseconds, to the microsecond.
fn duration_ms(d: Duration) -> f64 {
    round3(qos::ns_to_ms(d.as_nanos() as f64))
}

#[cfg(test)]
mod tests {
    use super::super::{Timing, Want};
    use super::*;
    use std::time::Instant;

    fn sample(status: Option<u16>, cache: CacheMark, error: Option<&'static str>) -> Sample {
        Sample {
            client: 0,
            want: Want::Listed(0),
            status,
            bytes: 100,
            latency: Duration::from_millis(10),
            service: Duration::from_millis(4),
            late: None,
            started: Instant::now(),
            cache,
            error,
            timing: Timing::default(),
        }
    }

    #[test]
    fn the_tally_counts_each_outcome_once() {
        let mut t = Tally::default();
        t.add(&sample(Some(200), CacheMark::Hit, None), false);
        t.add(&sample(Some(200), CacheMark::Miss, None), false);
        t.add(&sample(Some(503), CacheMark::None, None), false);
        t.add(&sample(None, CacheMark::None, Some("timeout")), false);
        t.add(&sample(None, CacheMark::None, None), false);
        let r = t.report(SystemTime::UNIX_EPOCH, Duration::from_secs(1), false);
        assert_eq!(
            (r.requests, r.responses, r.errors, r.bytes),
            (5, 3, 3, 500),
            "5xx and transport failures are both errors"
        );
        assert_eq!((r.cache_hits, r.cache_marked), (1, 2));
        assert_eq!(r.latency.map(|l| l.count), Some(3), "responses only");
        assert_eq!(r.service, None, "closed loop: no separate service time");
        assert_eq!(r.status_counts, BTreeMap::from([(200, 2), (503, 1)]));
        assert_eq!(
            r.errors_by_class,
            BTreeMap::from([("other".to_string(), 1), ("timeout".to_string(), 1)])
        );
    }

    #[test]
    fn an_open_loop_tally_reports_mean_and_largest_lateness_errors_included() {
        let mut t = Tally::default();
        for (ms, error) in [(2, None), (4, None), (0, Some("reset"))] {
            let mut s = sample(error.is_none().then_some(200), CacheMark::None, error);
            s.late = Some(Duration::from_millis(ms));
            t.add(&s, true);
        }
        let row = t
            .report(SystemTime::UNIX_EPOCH, Duration::from_secs(1), false)
            .summary();
        assert_eq!(
            (row.pacing_mean_ms, row.pacing_max_ms),
            (Some(2.0), Some(4.0))
        );
        let mut closed = Tally::default();
        closed.add(&sample(Some(200), CacheMark::None, None), false);
        let row = closed
            .report(SystemTime::UNIX_EPOCH, Duration::from_secs(1), false)
            .summary();
        assert_eq!((row.pacing_mean_ms, row.pacing_max_ms), (None, None));
    }

    #[test]
    fn an_open_loop_tally_keeps_service_time_apart_from_latency() {
        let mut t = Tally::default();
        t.add(&sample(Some(200), CacheMark::None, None), true);
        let r = t.report(SystemTime::UNIX_EPOCH, Duration::from_secs(1), true);
        assert_eq!(r.latency.map(|l| l.max_ms), Some(10.0));
        assert_eq!(r.service.map(|l| l.max_ms), Some(4.0));
        assert!(r.interrupted());
    }

    #[test]
    fn connections_and_handshakes_are_counted_from_the_requests_that_opened_them() {
        let mut t = Tally::default();
        let ms = Duration::from_millis;
        let mut first = sample(Some(200), CacheMark::None, None);
        first.timing = Timing {
            connect: Some(ms(1)),
            tls: Some(ms(3)),
            ttfb: Some(ms(6)),
            protocol: None,
        };
        t.add(&first, false);
        let mut reused = sample(Some(200), CacheMark::None, None);
        reused.timing.ttfb = Some(ms(2));
        t.add(&reused, false);
        let mut failed = sample(None, CacheMark::None, Some("tls_untrusted"));
        failed.timing.connect = Some(ms(1));
        t.add(&failed, false);
        let row = t
            .report(SystemTime::UNIX_EPOCH, Duration::from_secs(1), false)
            .summary();
        assert_eq!((row.connections, row.tls_handshakes), (Some(2), Some(1)));
        assert_eq!(row.tls_p50_ms, Some(3.0));
        assert_eq!(row.ttfb_p50_ms, Some(2.0));
        assert!(row.ttfb_p99_ms.is_some_and(|p| p >= 5.9));
        let clear = Tally::default()
            .report(SystemTime::UNIX_EPOCH, Duration::from_secs(1), false)
            .summary();
        assert_eq!(clear.tls_p50_ms, None);
    }
}
