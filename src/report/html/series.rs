//! The report's numbers: exact CDF points, time series kept small by
//! per-bucket extremes, loss and jitter per time slice, request rates and
//! response mixes. Pure functions over samples, unit-tested here.

use super::data::{HttpSample, UdpSample};
use crate::metrics::{CacheMark, PacketStatus};

/// The finite values, sorted.
pub fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Exact quantile by nearest rank: the value at rank ⌈q·n⌉ (rank 1 for q = 0).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
    Some(sorted[rank - 1])
}

/// Points `(value, fraction of samples ≤ value)` of the empirical CDF. Every
/// sample when there are at most `max_points`; otherwise ranks evenly spaced
/// over the body plus ranks evenly spaced on the tail's log scale (so the
/// 99.9th percentile stays exact), the minimum and the maximum always in.
pub fn cdf_points(sorted: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let point = |rank: usize| (sorted[rank - 1], rank as f64 / n as f64);
    if n <= max_points.max(2) {
        return (1..=n).map(point).collect();
    }
    let half = (max_points / 2).max(2);
    let mut ranks: Vec<usize> = Vec::with_capacity(max_points + 2);
    for i in 0..half {
        ranks.push(1 + i * (n - 1) / (half - 1));
    }
    let decades = (n as f64).log10();
    for j in 0..half {
        let q = 1.0 - 10f64.powf(-(j as f64) * decades / (half - 1) as f64);
        ranks.push(((q * n as f64).ceil() as usize).clamp(1, n));
    }
    ranks.push(n);
    ranks.sort_unstable();
    ranks.dedup();
    ranks.into_iter().map(point).collect()
}

/// A time series thinned to at most two points per x-bucket (its lowest and
/// its highest), so spikes survive and a million samples draw as a few
/// thousand. Short series come back whole.
pub fn min_max_buckets(points: &[(f64, f64)], x0: f64, x1: f64, buckets: usize) -> Vec<(f64, f64)> {
    if points.len() <= 2 * buckets || buckets == 0 {
        return points.to_vec();
    }
    type Point = (f64, f64);
    // Per bucket: its lowest and its highest point.
    let mut slots: Vec<Option<(Point, Point)>> = vec![None; buckets];
    for &p in points {
        let i = bucket(p.0, x0, x1, buckets);
        slots[i] = Some(match slots[i] {
            None => (p, p),
            Some((lo, hi)) => (
                if p.1 < lo.1 { p } else { lo },
                if p.1 > hi.1 { p } else { hi },
            ),
        });
    }
    let mut out = Vec::with_capacity(2 * buckets);
    for (lo, hi) in slots.into_iter().flatten() {
        if lo == hi {
            out.push(lo);
        } else if lo.0 <= hi.0 {
            out.extend([lo, hi]);
        } else {
            out.extend([hi, lo]);
        }
    }
    out
}

/// One mark per bucket holding at least one of `times` (at the first such
/// time), so a million losses draw as at most `buckets` marks.
pub fn marks(times: impl Iterator<Item = f64>, x0: f64, x1: f64, buckets: usize) -> Vec<f64> {
    let mut slots: Vec<Option<f64>> = vec![None; buckets.max(1)];
    for t in times {
        let i = bucket(t, x0, x1, slots.len());
        slots[i] = Some(slots[i].map_or(t, |s: f64| s.min(t)));
    }
    slots.into_iter().flatten().collect()
}

fn bucket(x: f64, x0: f64, x1: f64, buckets: usize) -> usize {
    let span = (x1 - x0).max(f64::MIN_POSITIVE);
    (((x - x0) / span * buckets as f64).floor().max(0.0) as usize).min(buckets - 1)
}

/// Loss and jitter over one slice of a UDP workload's sending time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slice {
    pub start_ms: f64,
    pub end_ms: f64,
    pub sent: u64,
    pub lost: u64,
    /// Mean |RTT(i) − RTT(i−1)| over consecutive replies of a flow whose
    /// later datagram was sent in the slice; `None` without such a pair.
    pub jitter_ms: Option<f64>,
}

impl Slice {
    pub fn mid_ms(&self) -> f64 {
        (self.start_ms + self.end_ms) / 2.0
    }

    pub fn loss_percent(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.lost as f64 * 100.0 / self.sent as f64)
    }
}

/// Cuts the sending time into `count` equal slices (by send time) and
/// counts loss and jitter in each.
pub fn udp_slices(samples: &[UdpSample], count: usize) -> Vec<Slice> {
    let Some(end) = samples.iter().map(|s| s.send_ms).reduce(f64::max) else {
        return Vec::new();
    };
    let count = count.max(1);
    let end = end.max(1e-3);
    let width = end / count as f64;
    let mut slices: Vec<Slice> = (0..count)
        .map(|i| Slice {
            start_ms: i as f64 * width,
            end_ms: (i + 1) as f64 * width,
            sent: 0,
            lost: 0,
            jitter_ms: None,
        })
        .collect();
    let mut jitter = vec![(0.0f64, 0u64); count];
    for s in samples.iter().filter(|s| s.status != PacketStatus::Dup) {
        let i = bucket(s.send_ms, 0.0, end, count);
        slices[i].sent += 1;
        if s.status == PacketStatus::Lost {
            slices[i].lost += 1;
        }
    }
    // Consecutive replies per flow in sequence order, as ipdv_mean_ms counts them.
    let mut order: Vec<&UdpSample> = samples
        .iter()
        .filter(|s| s.status != PacketStatus::Dup && s.rtt_ms.is_some())
        .collect();
    order.sort_by_key(|s| (s.rep, s.flow, s.seq));
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if (a.rep, a.flow) != (b.rep, b.flow) {
            continue;
        }
        if let (Some(ra), Some(rb)) = (a.rtt_ms, b.rtt_ms) {
            let i = bucket(b.send_ms, 0.0, end, count);
            jitter[i].0 += (rb - ra).abs();
            jitter[i].1 += 1;
        }
    }
    for (s, (sum, n)) in slices.iter_mut().zip(jitter) {
        s.jitter_ms = (n > 0).then(|| sum / n as f64);
    }
    slices
}

/// Responses completed per second in `count` equal slices of the workload's
/// time (start + latency), the mean over the repetitions; empty when the
/// file has no start times.
/// Each sample stands for `weight` requests (a report keeps every k-th
/// request of a huge run: [`super::data::MAX_HTTP_SAMPLES`]).
pub fn completions_per_second(
    samples: &[HttpSample],
    count: usize,
    weight: u64,
) -> Vec<(f64, f64)> {
    let ends: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.start_ms.map(|t| t + s.latency_ms))
        .collect();
    let Some(end) = ends.iter().copied().reduce(f64::max) else {
        return Vec::new();
    };
    let count = count.max(1);
    let end = end.max(1e-3);
    let width = end / count as f64;
    let reps = samples.iter().map(|s| s.rep).max().map_or(1, |r| r + 1) as f64;
    let mut n = vec![0u64; count];
    for t in ends {
        n[bucket(t, 0.0, end, count)] += weight.max(1);
    }
    n.into_iter()
        .enumerate()
        .map(|(i, c)| ((i as f64 + 0.5) * width, c as f64 / reps / (width / 1000.0)))
        .collect()
}

/// The cache hit ratio (HIT over responses marked HIT, MISS or BYPASS) in
/// `count` slices of the workload's time, by start: how the cache warms up.
/// Empty when no response was marked (no cache on the path) or no times.
pub fn hit_ratio_over_time(samples: &[HttpSample], count: usize) -> Vec<(f64, f64)> {
    let marked: Vec<(f64, bool)> = samples
        .iter()
        .filter(|s| s.cache != CacheMark::None)
        .filter_map(|s| s.start_ms.map(|t| (t, s.cache == CacheMark::Hit)))
        .collect();
    let Some(end) = marked.iter().map(|m| m.0).reduce(f64::max) else {
        return Vec::new();
    };
    let count = count.max(1);
    let end = end.max(1e-3);
    let width = end / count as f64;
    let mut hits = vec![0u64; count];
    let mut all = vec![0u64; count];
    for (t, hit) in marked {
        let i = bucket(t, 0.0, end, count);
        all[i] += 1;
        hits[i] += u64::from(hit);
    }
    (0..count)
        .filter(|&i| all[i] > 0)
        .map(|i| ((i as f64 + 0.5) * width, hits[i] as f64 / all[i] as f64))
        .collect()
}

/// The status classes [`status_mix`] counts, in order.
pub const STATUS_CLASSES: [&str; 6] = ["2xx", "3xx", "4xx", "5xx", "other", "no response"];
/// The cache verdicts [`cache_mix`] counts, in order.
pub const CACHE_CLASSES: [&str; 4] = ["HIT", "MISS", "BYPASS", "unmarked"];

/// The position of `status` in [`STATUS_CLASSES`].
pub fn status_class(status: Option<u16>) -> usize {
    match status {
        Some(200..=299) => 0,
        Some(300..=399) => 1,
        Some(400..=499) => 2,
        Some(500..=599) => 3,
        Some(_) => 4,
        None => 5,
    }
}

/// The position of `cache` in [`CACHE_CLASSES`].
pub fn cache_class(cache: CacheMark) -> usize {
    match cache {
        CacheMark::Hit => 0,
        CacheMark::Miss => 1,
        CacheMark::Bypass => 2,
        CacheMark::None => 3,
    }
}

/// How many requests ended in each status class.
pub fn status_mix(samples: &[HttpSample]) -> Vec<(&'static str, u64)> {
    let mut counts = [0u64; 6];
    for s in samples {
        counts[status_class(s.status)] += 1;
    }
    STATUS_CLASSES.into_iter().zip(counts).collect()
}

/// How many responses the proxy marked HIT, MISS or BYPASS (or left unmarked).
pub fn cache_mix(samples: &[HttpSample]) -> Vec<(&'static str, u64)> {
    let mut counts = [0u64; 4];
    for s in samples {
        counts[cache_class(s.cache)] += 1;
    }
    CACHE_CLASSES.into_iter().zip(counts).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(flow: u32, seq: u64, send_ms: f64, rtt: Option<f64>) -> UdpSample {
        UdpSample {
            rep: 0,
            flow,
            seq,
            send_ms,
            rtt_ms: rtt,
            status: if rtt.is_some() {
                PacketStatus::Ok
            } else {
                PacketStatus::Lost
            },
        }
    }

    #[test]
    fn quantiles_are_exact_nearest_rank() {
        let v = sorted((1..=1000).rev().map(f64::from));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 0.5), Some(500.0));
        assert_eq!(quantile(&v, 0.99), Some(990.0));
        assert_eq!(quantile(&v, 0.999), Some(999.0));
        assert_eq!(quantile(&v, 1.0), Some(1000.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn cdf_keeps_every_small_sample_and_the_exact_tail_of_a_large_one() {
        let small = sorted([3.0, 1.0, 2.0].into_iter());
        assert_eq!(
            cdf_points(&small, 100),
            vec![(1.0, 1.0 / 3.0), (2.0, 2.0 / 3.0), (3.0, 1.0)]
        );
        let big = sorted((1..=1_000_000).map(f64::from));
        let pts = cdf_points(&big, 400);
        assert!(pts.len() <= 402, "{}", pts.len());
        assert_eq!(pts.first(), Some(&(1.0, 1e-6)));
        assert_eq!(pts.last(), Some(&(1e6, 1.0)));
        // Every point is a real sample at its exact rank.
        assert!(pts.iter().all(|&(v, f)| (v / 1e6 - f).abs() < 1e-12));
        // The tail is dense: points beyond the 99.9th and the 99.99th percentile.
        assert!(pts.iter().filter(|p| p.1 > 0.999).count() >= 20);
        assert!(pts.iter().any(|p| p.1 > 0.9999 && p.1 < 1.0));
    }

    #[test]
    fn min_max_buckets_keep_the_spikes() {
        let mut pts: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64, 1.0)).collect();
        pts[54_321].1 = 50.0;
        pts[7].1 = 0.1;
        let thin = min_max_buckets(&pts, 0.0, 100_000.0, 500);
        assert!(thin.len() <= 1000, "{}", thin.len());
        assert!(thin.contains(&(54_321.0, 50.0)));
        assert!(thin.contains(&(7.0, 0.1)));
        assert!(thin.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
        let short = [(0.0, 1.0), (1.0, 2.0)];
        assert_eq!(min_max_buckets(&short, 0.0, 1.0, 500), short.to_vec());
    }

    #[test]
    fn marks_collapse_per_bucket() {
        let m = marks([0.5, 0.6, 9.9, 5.0].into_iter(), 0.0, 10.0, 10);
        assert_eq!(m, vec![0.5, 5.0, 9.9]);
    }

    #[test]
    fn slices_count_loss_and_jitter_where_it_happened() {
        // Flow 0: RTTs 1, 3, lost, 2 sent at 0, 10, 20, 30 ms; flow 1: 1, 1 at 0, 30.
        let s = [
            udp(0, 0, 0.0, Some(1.0)),
            udp(0, 1, 10.0, Some(3.0)),
            udp(0, 2, 20.0, None),
            udp(0, 3, 30.0, Some(2.0)),
            udp(1, 0, 0.0, Some(1.0)),
            udp(1, 1, 30.0, Some(1.0)),
        ];
        let sl = udp_slices(&s, 2);
        assert_eq!(sl.len(), 2);
        assert_eq!((sl[0].sent, sl[0].lost), (3, 0));
        assert_eq!((sl[1].sent, sl[1].lost), (3, 1));
        assert_eq!(sl[1].loss_percent(), Some(100.0 / 3.0));
        // Slice 0 (0–15 ms): |3−1| = 2. Slice 1: |2−3| = 1 (the loss is skipped) and |1−1| = 0.
        assert_eq!(sl[0].jitter_ms, Some(2.0));
        assert_eq!(sl[1].jitter_ms, Some(0.5));
        assert!(udp_slices(&[], 10).is_empty());
    }

    #[test]
    fn completions_per_second_in_slices() {
        let req = |start: f64, lat: f64| HttpSample {
            rep: 0,
            start_ms: Some(start),
            latency_ms: lat,
            status: Some(200),
            cache: CacheMark::Hit,
        };
        // Ends at 100, 100, 250 and 400 ms: 4 slices of 100 ms.
        let r = completions_per_second(
            &[
                req(0.0, 100.0),
                req(50.0, 50.0),
                req(200.0, 50.0),
                req(300.0, 100.0),
            ],
            4,
            1,
        );
        let rates: Vec<f64> = r.iter().map(|p| p.1.round()).collect();
        assert_eq!(rates, vec![0.0, 20.0, 10.0, 10.0]);
        assert_eq!(r[0].0, 50.0);
        // Two repetitions of the same load: the mean rate, not the sum.
        let twice: Vec<HttpSample> = [req(0.0, 100.0), req(50.0, 50.0)]
            .into_iter()
            .chain([req(0.0, 100.0), req(50.0, 50.0)].map(|s| HttpSample { rep: 1, ..s }))
            .collect();
        let r = completions_per_second(&twice, 1, 1);
        assert_eq!(r[0].1.round(), 20.0, "2 responses in 100 ms per repetition");
        let old = HttpSample {
            start_ms: None,
            ..req(0.0, 1.0)
        };
        assert!(completions_per_second(&[old], 4, 1).is_empty());
    }

    #[test]
    fn mixes_count_classes() {
        let req = |status: Option<u16>, cache| HttpSample {
            rep: 0,
            start_ms: None,
            latency_ms: 1.0,
            status,
            cache,
        };
        let s = [
            req(Some(200), CacheMark::Hit),
            req(Some(304), CacheMark::Miss),
            req(Some(503), CacheMark::Miss),
            req(None, CacheMark::None),
        ];
        let status = status_mix(&s);
        assert_eq!(status[0], ("2xx", 1));
        assert_eq!(status[1], ("3xx", 1));
        assert_eq!(status[3], ("5xx", 1));
        assert_eq!(status[5], ("no response", 1));
        assert_eq!(cache_mix(&s)[1], ("MISS", 2));
    }
}
