//! Adding up the summary rows of one workload measured by N `--segment`
//! agents at once: counts and rates are summed, percentiles come from the
//! sum of the agents' latency histograms (exact, not an average of
//! percentiles), min and max are the extremes, mean and standard deviation
//! are pooled. Pure: rows and histograms in, one row out.

use hdrhistogram::Histogram;

use crate::metrics::histogram::percentile_ms;
use crate::metrics::qos;
use crate::metrics::summary::round3;
use crate::metrics::SummaryRow;

/// The sum of `Some` values; `None` when every row left the column empty.
fn sum(rows: &[&SummaryRow], f: impl Fn(&SummaryRow) -> Option<u64>) -> Option<u64> {
    rows.iter().filter_map(|r| f(r)).reduce(|a, b| a + b)
}

fn sum_f(rows: &[&SummaryRow], f: impl Fn(&SummaryRow) -> Option<f64>) -> Option<f64> {
    rows.iter().filter_map(|r| f(r)).reduce(|a, b| a + b)
}

fn max_f(rows: &[&SummaryRow], f: impl Fn(&SummaryRow) -> Option<f64>) -> Option<f64> {
    rows.iter().filter_map(|r| f(r)).reduce(f64::max)
}

fn min_f(rows: &[&SummaryRow], f: impl Fn(&SummaryRow) -> Option<f64>) -> Option<f64> {
    rows.iter().filter_map(|r| f(r)).reduce(f64::min)
}

/// The mean of a column over the rows, each weighted by `weight` (rows
/// without a value or a weight are left out).
fn weighted(
    rows: &[&SummaryRow],
    f: impl Fn(&SummaryRow) -> Option<f64>,
    weight: impl Fn(&SummaryRow) -> Option<u64>,
) -> Option<f64> {
    let (mut total, mut n) = (0.0, 0u64);
    for r in rows {
        if let (Some(v), Some(w)) = (f(r), weight(r)) {
            total += v * w as f64;
            n += w;
        }
    }
    (n > 0).then(|| total / n as f64)
}

/// The population standard deviation of the union of the rows' samples,
/// from each row's count, mean and standard deviation.
fn pooled_stddev(rows: &[&SummaryRow], mean: f64) -> Option<f64> {
    let (mut m2, mut n) = (0.0, 0u64);
    for r in rows {
        if let (Some(c), Some(m), Some(s)) = (r.received, r.latency_mean_ms, r.latency_stddev_ms) {
            m2 += c as f64 * (s * s + (m - mean) * (m - mean));
            n += c;
        }
    }
    (n > 0).then(|| (m2 / n as f64).sqrt())
}

/// How far apart the agents started the workload: the latest `started_at`
/// minus the earliest, milliseconds; `None` when a start does not parse.
fn start_skew_ms(rows: &[&SummaryRow]) -> Option<f64> {
    let starts = rows
        .iter()
        .map(|r| humantime::parse_rfc3339(&r.started_at).ok())
        .collect::<Option<Vec<_>>>()?;
    let (first, last) = (starts.iter().min()?, starts.iter().max()?);
    Some(round3(crate::start_at::signed_ms(*first, *last)))
}

/// One row for the agents' rows of one workload (same variant, workload
/// and repetition), with `hist` the sum of their latency histograms.
/// Labels come from the first row; `rows` is not empty.
pub fn add_rows(rows: &[&SummaryRow], hist: &Histogram<u64>) -> SummaryRow {
    let Some(first) = rows.first() else {
        return SummaryRow::default();
    };
    let received = sum(rows, |r| r.received);
    let sent = sum(rows, |r| r.sent);
    let lost = sum(rows, |r| r.lost);
    let cache_hits = sum(rows, |r| r.cache_hits);
    let min = min_f(rows, |r| r.latency_min_ms);
    let max = max_f(rows, |r| r.latency_max_ms);
    let mean = weighted(rows, |r| r.latency_mean_ms, |r| r.received);
    let clamp = min.zip(max);
    // From the summed histogram whenever any agent measured the column and
    // the sum holds samples: an agent with no replies (its columns empty)
    // must not blank out the others' percentiles.
    let q = |p: f64, had: fn(&SummaryRow) -> Option<f64>| {
        (rows.iter().any(|r| had(r).is_some()) && !hist.is_empty())
            .then(|| round3(percentile_ms(hist, p, clamp)))
    };
    SummaryRow {
        started_at: rows
            .iter()
            .map(|r| r.started_at.clone())
            .min()
            .unwrap_or_default(),
        duration_s: max_f(rows, |r| r.duration_s),
        sent,
        received,
        lost,
        loss_percent: lost
            .zip(sent)
            .and_then(|(l, s)| qos::loss_percent(l, s))
            .map(round3),
        late: sum(rows, |r| r.late),
        duplicates: sum(rows, |r| r.duplicates),
        reordered: sum(rows, |r| r.reordered),
        latency_min_ms: min,
        latency_mean_ms: mean.map(round3),
        latency_p50_ms: q(50.0, |r| r.latency_p50_ms),
        latency_p90_ms: q(90.0, |r| r.latency_p90_ms),
        latency_p99_ms: q(99.0, |r| r.latency_p99_ms),
        latency_max_ms: max,
        latency_stddev_ms: mean.and_then(|m| pooled_stddev(rows, m)).map(round3),
        jitter_ms: weighted(rows, |r| r.jitter_ms, |r| r.received).map(round3),
        ipdv_mean_ms: weighted(rows, |r| r.ipdv_mean_ms, |r| r.received).map(round3),
        throughput_bps: sum_f(rows, |r| r.throughput_bps).map(f64::round),
        requests: sum(rows, |r| r.requests),
        errors: sum(rows, |r| r.errors),
        requests_per_s: sum_f(rows, |r| r.requests_per_s).map(round3),
        cache_hits,
        cache_hit_ratio: match (cache_hits, received) {
            (Some(h), Some(n)) if n > 0 => Some(round3(h as f64 / n as f64)),
            _ => None,
        },
        latency_p999_ms: q(99.9, |r| r.latency_p999_ms),
        service_mean_ms: weighted(rows, |r| r.service_mean_ms, |r| r.received).map(round3),
        // No histogram of service times is kept: the agents' largest p99
        // is an upper bound of the whole's.
        service_p99_ms: max_f(rows, |r| r.service_p99_ms),
        foreign: sum(rows, |r| r.foreign),
        pacing_mean_ms: weighted(rows, |r| r.pacing_mean_ms, |r| r.sent).map(round3),
        pacing_max_ms: max_f(rows, |r| r.pacing_max_ms),
        proxy_hits: sum(rows, |r| r.proxy_hits),
        proxy_upstream_fetches: sum(rows, |r| r.proxy_upstream_fetches),
        proxy_bytes_from_cache: sum(rows, |r| r.proxy_bytes_from_cache),
        proxy_dropped: sum(rows, |r| r.proxy_dropped),
        interrupted: rows.iter().any(|r| r.interrupted),
        proxy_delayed: sum(rows, |r| r.proxy_delayed),
        clients_proxy_delayed: sum(rows, |r| r.clients_proxy_delayed),
        clients_proxy_dropped: sum(rows, |r| r.clients_proxy_dropped),
        proxy_origin_delayed: sum(rows, |r| r.proxy_origin_delayed),
        proxy_origin_dropped: sum(rows, |r| r.proxy_origin_dropped),
        start_skew_ms: start_skew_ms(rows),
        // Weighted by requests: the parts' byte counts are not kept.
        byte_hit_ratio: weighted(rows, |r| r.byte_hit_ratio, |r| r.requests),
        upstream_bytes: sum(rows, |r| r.upstream_bytes),
        cache_evictions: sum(rows, |r| r.cache_evictions),
        receive_drops: sum(rows, |r| r.receive_drops),
        origin_dropped: sum(rows, |r| r.origin_dropped),
        ..(*first).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::histogram::{latency_histogram, record_ms};

    /// Two agents: one saw 1..=100 µs, the other 101..=300 µs.
    #[test]
    fn two_agents_add_up_by_hand() {
        let row = |lo: u64, hi: u64, secs: f64| {
            let n = hi - lo + 1;
            let values: Vec<f64> = (lo..=hi).map(|u| u as f64 / 1000.0).collect();
            let mean = values.iter().sum::<f64>() / n as f64;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            SummaryRow {
                workload: "w".into(),
                kind: "http".into(),
                started_at: format!("2026-01-01T00:00:0{lo}Z")
                    .chars()
                    .take(20)
                    .collect(),
                duration_s: Some(secs),
                sent: Some(n + 1),
                received: Some(n),
                requests: Some(n + 1),
                errors: Some(1),
                requests_per_s: Some((n + 1) as f64 / secs),
                cache_hits: Some(n / 2),
                latency_min_ms: Some(lo as f64 / 1000.0),
                latency_max_ms: Some(hi as f64 / 1000.0),
                latency_mean_ms: Some(mean),
                latency_stddev_ms: Some(var.sqrt()),
                latency_p50_ms: Some(0.0),
                latency_p99_ms: Some(0.0),
                ..SummaryRow::default()
            }
        };
        let (a, b) = (row(1, 100, 1.0), row(101, 300, 2.0));
        let mut hist = latency_histogram();
        for us in 1..=300u64 {
            record_ms(&mut hist, us as f64 / 1000.0);
        }
        let m = add_rows(&[&a, &b], &hist);
        assert_eq!(
            (m.sent, m.received, m.errors),
            (Some(302), Some(300), Some(2))
        );
        assert_eq!(m.requests_per_s, Some(101.0 + 100.5));
        assert_eq!(m.cache_hits, Some(150));
        assert_eq!(m.cache_hit_ratio, Some(0.5));
        assert_eq!(m.duration_s, Some(2.0));
        assert_eq!(
            (m.latency_min_ms, m.latency_max_ms),
            (Some(0.001), Some(0.3))
        );
        // The median of 1..=300 µs, not the mean of the agents' medians.
        assert_eq!(m.latency_p50_ms, Some(0.15));
        assert_eq!(m.latency_p99_ms, Some(0.297));
        assert_eq!(
            m.latency_p90_ms, None,
            "empty in the agents' rows, empty here"
        );
        // 150.5 µs, rounded to the µs as every ms column is.
        let mean = m.latency_mean_ms.unwrap_or_default();
        assert!((mean - 0.1505).abs() < 0.000_6, "{mean}");
        // Population stddev of 1..=300 µs: sqrt((300² − 1) / 12) = 86.6 µs.
        assert_eq!(m.latency_stddev_ms, Some(0.087));
        assert_eq!(m.workload, "w");
    }

    #[test]
    fn start_skew_is_the_spread_of_the_agents_starts() {
        let at = |t: &str| SummaryRow {
            started_at: t.to_string(),
            ..SummaryRow::default()
        };
        let (a, b, c) = (
            at("2026-12-02T10:00:00.004Z"),
            at("2026-12-02T10:00:00.000Z"),
            at("2026-12-02T10:00:00.021Z"),
        );
        assert_eq!(start_skew_ms(&[&a, &b, &c]), Some(21.0));
        assert_eq!(start_skew_ms(&[&a]), Some(0.0));
        assert_eq!(start_skew_ms(&[&a, &at("")]), None, "a start unknown");
    }

    /// The first agent got no reply (its percentile columns are empty): the
    /// others' samples still give the whole's percentiles.
    #[test]
    fn an_agent_without_replies_does_not_blank_the_percentiles() {
        let silent = SummaryRow {
            workload: "u".into(),
            sent: Some(100),
            received: Some(0),
            lost: Some(100),
            ..SummaryRow::default()
        };
        let answered = SummaryRow {
            sent: Some(100),
            received: Some(100),
            lost: Some(0),
            latency_min_ms: Some(0.1),
            latency_max_ms: Some(0.2),
            latency_p50_ms: Some(0.15),
            latency_p90_ms: Some(0.19),
            latency_p99_ms: Some(0.2),
            latency_p999_ms: Some(0.2),
            ..silent.clone()
        };
        let mut hist = latency_histogram();
        for us in 101..=200u64 {
            record_ms(&mut hist, us as f64 / 1000.0);
        }
        let m = add_rows(&[&silent, &answered, &answered], &hist);
        assert_eq!(m.latency_p50_ms, Some(0.15));
        assert_eq!(m.latency_p99_ms, Some(0.199));
        assert!(m.latency_p90_ms.is_some() && m.latency_p999_ms.is_some());
        assert_eq!(m.loss_percent, Some(33.333));
    }
}
