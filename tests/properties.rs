//! Property tests (proptest) of the pure parts: what must hold for every
//! input, not only the hand-computed cases beside each module. Statistics
//! (interval coverage, Mann–Whitney symmetry), histogram merge (the parts
//! added up are the whole), unit round trips, shard and segment arithmetic
//! (the parts cover the whole exactly once) and the seeded link model.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

use netrun::metrics::histogram::{self, decode, encode, latency_histogram, record_ms};
use netrun::proxy::impair::{Direction, Impairment, Verdict, MAX_QUEUE};
use netrun::proxy::{Link, LinkConfig, LinkModel};
use netrun::shard::{Part, MAX_PARTS};
use netrun::stats;
use netrun::units::{format_duration, parse_duration, BitRate, ByteSize};

/// Finite sample values as a run produces them (latencies, rates).
fn sample() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(-1e6f64..1e6, 1..40)
}

mod statistics {
    use super::*;

    /// Found by the property below: with ties the exact p-value can fall
    /// under the tie-free floor (ranks 1.5, 1.5, 3: only the observed
    /// arrangement is as extreme, 1 of 3).
    #[test]
    fn ties_can_reach_below_the_tie_free_floor() {
        let t = stats::mann_whitney(&[90.0], &[-95.0, -95.0]).unwrap();
        assert!(t.exact);
        assert!((t.p_value - 1.0 / 3.0).abs() < 1e-12, "{t:?}");
        assert!((stats::smallest_p(1, 2) - 2.0 / 3.0).abs() < 1e-12);
    }

    proptest! {
        /// Swapping the samples gives the same p-value and the other U
        /// (U_a + U_b = n1 × n2), whatever the ties.
        #[test]
        fn mann_whitney_is_symmetric(a in sample(), b in sample(), ties in 0u32..3) {
            // Rounding makes ties common, as in millisecond latencies.
            let round = |v: &[f64]| -> Vec<f64> {
                v.iter().map(|x| (x / 10f64.powi(ties as i32 * 2)).round()).collect()
            };
            let (a, b) = (round(&a), round(&b));
            let ab = stats::mann_whitney(&a, &b).unwrap();
            let ba = stats::mann_whitney(&b, &a).unwrap();
            prop_assert!((ab.p_value - ba.p_value).abs() < 1e-9, "{ab:?} {ba:?}");
            prop_assert_eq!(ab.exact, ba.exact);
            let n1n2 = (a.len() * b.len()) as f64;
            prop_assert!((ab.u + ba.u - n1n2).abs() < 1e-6, "{ab:?} {ba:?}");
            prop_assert!((0.0..=1.0).contains(&ab.p_value));
            // smallest_p is the floor without ties; with ties the exact
            // distribution is lumpy and the observed arrangement alone
            // (1 of C(n, n1)) can be as extreme: half the tie-free floor.
            let mut all: Vec<f64> = a.iter().chain(&b).copied().collect();
            all.sort_by(f64::total_cmp);
            let floor = if all.windows(2).any(|w| w[0] == w[1]) { 0.5 } else { 1.0 };
            prop_assert!(ab.p_value >= floor * stats::smallest_p(a.len(), b.len()) - 1e-12,
                "{a:?} {b:?} {ab:?}");
        }

        /// A sample against itself shows no difference at all.
        #[test]
        fn mann_whitney_of_a_sample_against_itself_is_one(a in sample()) {
            let t = stats::mann_whitney(&a, &a).unwrap();
            prop_assert!((t.p_value - 1.0).abs() < 1e-9, "{t:?}");
        }

        /// Intervals hold their estimate, are ordered, and widen with the level.
        #[test]
        fn t_intervals_are_nested_around_the_mean(v in prop::collection::vec(-1e6f64..1e6, 2..40)) {
            let i95 = stats::t_interval(&v, 0.95).unwrap();
            let i99 = stats::t_interval(&v, 0.99).unwrap();
            prop_assert!(i95.low <= i95.estimate && i95.estimate <= i95.high, "{i95:?}");
            prop_assert!(i99.low <= i95.low + 1e-9 && i95.high <= i99.high + 1e-9);
        }

        #[test]
        fn wilson_stays_in_zero_one_around_p(n in 1u64..100_000, k_frac in 0.0f64..=1.0) {
            let k = ((n as f64) * k_frac).round() as u64;
            let i = stats::wilson(k, n, 0.95).unwrap();
            prop_assert!(0.0 <= i.low && i.low <= i.estimate && i.estimate <= i.high && i.high <= 1.0,
                "{k}/{n}: {i:?}");
            let d = stats::newcombe_difference(k, n, k, n, 0.95).unwrap();
            prop_assert!(d.contains(0.0), "{d:?}");
        }
    }

    proptest! {
        // Each case draws thousands of resamples: fewer cases.
        #![proptest_config(ProptestConfig::with_cases(12))]

        #[test]
        fn bootstrap_intervals_stay_within_the_sample(v in prop::collection::vec(0f64..1e4, 2..30), seed: u64) {
            for stat in [stats::Statistic::Mean, stats::Statistic::Median] {
                let i = stats::bootstrap_ci(&v, stat, 0.95, seed).unwrap();
                prop_assert!(i.low <= i.high, "{i:?}");
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(lo - 1e-9 <= i.low && i.high <= hi + 1e-9, "{i:?} outside [{lo}, {hi}]");
            }
        }
    }

    /// Coverage: over many seeded samples from a known distribution, the
    /// 95 % t interval holds the true mean about 95 % of the time.
    #[test]
    fn t_interval_covers_the_true_mean_95_percent_of_the_time() {
        let mut rng = ChaCha8Rng::seed_from_u64(26);
        let trials = 4000;
        let mut covered = 0;
        for _ in 0..trials {
            // Normal(10, 3) by Box–Muller, n = 12.
            let v: Vec<f64> = (0..12)
                .map(|_| {
                    let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
                    10.0 + 3.0 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
                })
                .collect();
            if stats::t_interval(&v, 0.95).unwrap().contains(10.0) {
                covered += 1;
            }
        }
        let rate = covered as f64 / trials as f64;
        // ±3 standard errors of a 95 % rate over 4000 trials.
        assert!((0.9396..=0.9604).contains(&rate), "coverage {rate}");
    }

    /// Wilson's interval keeps close to its level even near p = 0, where
    /// loss rates live (the Wald interval would not).
    #[test]
    fn wilson_covers_small_proportions() {
        let mut rng = ChaCha8Rng::seed_from_u64(27);
        for (p, n) in [(0.01, 200u64), (0.05, 100), (0.3, 50), (0.5, 20)] {
            let trials = 2000;
            let mut covered = 0;
            for _ in 0..trials {
                let k = (0..n).filter(|_| rng.random::<f64>() < p).count() as u64;
                if stats::wilson(k, n, 0.95).unwrap().contains(p) {
                    covered += 1;
                }
            }
            let rate = covered as f64 / trials as f64;
            assert!(rate >= 0.92, "p {p} n {n}: coverage {rate}");
        }
    }
}

mod histograms {
    use super::*;

    /// Latencies in ms from 1 µs to past the histogram's hour.
    fn latencies() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(
            prop_oneof![0.0f64..2.0, 0.0f64..5_000.0, 3_000_000f64..4_000_000.0],
            0..200,
        )
    }

    proptest! {
        // Each case compresses a few histograms (slow in a debug build).
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Recording the parts separately, writing each to `histograms.csv`'s
        /// text and adding the decoded parts gives the histogram of the whole.
        #[test]
        fn merging_parts_gives_the_whole(values in latencies(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..5)) {
            let mut whole = latency_histogram();
            for &v in &values {
                record_ms(&mut whole, v);
            }
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(values.len() + 1)).collect();
            bounds.push(0);
            bounds.push(values.len());
            bounds.sort_unstable();
            let mut merged = latency_histogram();
            for w in bounds.windows(2) {
                let mut part = latency_histogram();
                for &v in &values[w[0]..w[1]] {
                    record_ms(&mut part, v);
                }
                let text = encode(&part).unwrap();
                merged.add(decode(&text).unwrap()).unwrap();
            }
            prop_assert_eq!(merged.len(), whole.len());
            let buckets = |h: &hdrhistogram::Histogram<u64>| -> Vec<(u64, u64)> {
                h.iter_recorded().map(|b| (b.value_iterated_to(), b.count_at_value())).collect()
            };
            prop_assert_eq!(buckets(&merged), buckets(&whole));
            for q in [0.0, 50.0, 90.0, 99.0, 100.0] {
                prop_assert_eq!(
                    histogram::percentile_ms(&merged, q, None),
                    histogram::percentile_ms(&whole, q, None)
                );
            }
        }

        /// Whatever text a `histograms.csv` holds, decoding returns an error
        /// or a histogram, never a panic.
        #[test]
        fn decoding_any_text_does_not_panic(text in ".{0,200}") {
            let _ = decode(&text);
        }
    }
}

mod units {
    use super::*;

    proptest! {
        #[test]
        fn byte_sizes_round_trip(b: u64) {
            let shown = ByteSize(b).to_string();
            prop_assert_eq!(shown.parse::<ByteSize>(), Ok(ByteSize(b)), "{}", shown);
        }

        #[test]
        fn byte_sizes_in_units_round_trip(n in 0u64..1 << 20, unit in prop::sample::select(vec![("KiB", 1u64 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("kB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000)])) {
            let written = format!("{n}{}", unit.0);
            prop_assert_eq!(written.parse::<ByteSize>(), Ok(ByteSize(n * unit.1)));
        }

        #[test]
        fn bit_rates_round_trip(bps in prop_oneof![Just(0.0), 1e-3f64..1e12]) {
            let shown = BitRate(bps).to_string();
            if bps == 0.0 {
                prop_assert_eq!(shown.as_str(), "unlimited");
            } else {
                let back: BitRate = shown.parse().map_err(TestCaseError::fail)?;
                prop_assert!((back.0 - bps).abs() <= bps * 1e-12, "{bps} → {shown} → {back:?}");
            }
        }

        /// What `format_duration` prints (in plans, tables, run.json),
        /// `parse_duration` reads back exactly.
        #[test]
        fn durations_round_trip(secs in 0u64..10 * 365 * 86_400, nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            let shown = format_duration(d);
            prop_assert_eq!(parse_duration(&shown), Ok(d), "{}", shown);
        }

        /// Any text is a size, a rate and a duration, or an error; never a panic.
        #[test]
        fn any_text_parses_or_is_refused(s in ".{0,30}") {
            let _ = s.parse::<ByteSize>();
            let _ = s.parse::<BitRate>();
            let _ = parse_duration(&s);
            let _ = s.parse::<Part>();
        }
    }
}

mod parts {
    use super::*;

    fn part() -> impl Strategy<Value = u32> {
        prop_oneof![1u32..10, 1u32..=MAX_PARTS]
    }

    proptest! {
        /// The N shares of any total add up to it, differ by at most one,
        /// and the larger ones come first.
        #[test]
        fn shares_add_up(n in part(), total: u64) {
            let shares: Vec<u64> = (1..=n).map(|k| Part::new(k, n).unwrap().share(total)).collect();
            let sum: u128 = shares.iter().map(|&s| u128::from(s)).sum();
            prop_assert_eq!(sum, u128::from(total));
            prop_assert!(shares.windows(2).all(|w| w[0] >= w[1] && w[0] - w[1] <= 1));
        }

        /// The ranges of the N parts follow each other and cover `0..len`
        /// exactly once.
        #[test]
        fn ranges_cover_everything_once(n in prop_oneof![1u32..10, 1u32..300], len in 0usize..5_000) {
            let mut next = 0;
            for k in 1..=n {
                let r = Part::new(k, n).unwrap().range(len);
                prop_assert_eq!(r.start, next);
                prop_assert!(r.end >= r.start);
                next = r.end;
            }
            prop_assert_eq!(next, len);
        }

        #[test]
        fn parts_round_trip_through_text(n in part(), k_frac in 0.0f64..1.0) {
            let k = 1 + ((n - 1) as f64 * k_frac) as u32;
            let p = Part::new(k, n).unwrap();
            prop_assert_eq!(p.to_string().parse::<Part>(), Ok(p));
        }

        /// `--segment K/N` of a scenario: the N agents' requests,
        /// concurrency, flows and datagrams add up to the scenario's.
        #[test]
        fn segments_add_up_to_the_scenario(
            n in 1u32..8,
            requests in 8u64..100_000,
            concurrency in 8u32..500,
            count in 8u64..100_000,
            flows in 1u32..20,
        ) {
            use netrun::scenario::WorkloadKind;
            let text = format!(
                "[topology]\norigin = {{ address = \"127.0.0.1:8000\", udp_address = \"127.0.0.1:9000\" }}\n\
                 proxy = {{ address = \"127.0.0.1:8080\", udp_address = \"127.0.0.1:9090\" }}\n\
                 [[workload]]\nkind = \"http\"\nname = \"h\"\nrequests = {requests}\nconcurrency = {concurrency}\nrate = 1000\n\
                 [[workload]]\nkind = \"udp\"\nname = \"u\"\ncount = {count}\nflows = {flows}\n"
            );
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/prop.toml");
            let whole = netrun::scenario::parse(&path, &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (mut req, mut conc, mut dgrams, mut rate) = (0u64, 0u64, 0u64, 0f64);
            for k in 1..=n {
                let s = netrun::scenario::segment::segment(&whole, Part::new(k, n).unwrap())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                for w in &s.variants[0].plan.workloads {
                    match &w.kind {
                        WorkloadKind::Http(h) => {
                            req += h.requests;
                            conc += u64::from(h.concurrency);
                            rate += h.rate.unwrap_or(0.0);
                        }
                        WorkloadKind::Udp(u) => dgrams += u.count * u64::from(u.flows),
                    }
                }
            }
            prop_assert_eq!(req, requests);
            prop_assert_eq!(conc, u64::from(concurrency));
            prop_assert!((rate - 1000.0).abs() < 1e-6, "rates add up to {rate}");
            prop_assert_eq!(dgrams, count * u64::from(flows));
        }
    }
}

mod link_models {
    use super::*;

    fn config() -> impl Strategy<Value = LinkConfig> {
        (
            0u64..200_000,
            0u64..200_000,
            0.0f64..=100.0,
            prop_oneof![Just(0.0), 1e3f64..1e10],
            any::<u64>(),
        )
            .prop_map(|(delay_us, jitter_us, loss, rate, seed)| LinkConfig {
                delay: Duration::from_micros(delay_us),
                jitter: Duration::from_micros(jitter_us),
                loss_percent: loss,
                rate_bps: rate,
                seed,
            })
    }

    /// Arrivals (gap after the previous one, datagram size).
    fn traffic() -> impl Strategy<Value = Vec<(u64, usize)>> {
        prop::collection::vec((0u64..5_000, 1usize..65_507), 1..300)
    }

    fn verdicts(m: &LinkModel, t0: Instant, traffic: &[(u64, usize)]) -> Vec<Verdict> {
        let mut now = t0;
        traffic
            .iter()
            .map(|&(gap_us, len)| {
                now += Duration::from_micros(gap_us);
                m.datagram_at(Direction::ToClient, len, now)
            })
            .collect()
    }

    proptest! {
        /// The same seed and traffic give the same decisions, on either link.
        #[test]
        fn decisions_are_a_function_of_seed_and_traffic(c in config(), traffic in traffic(), origin_link: bool) {
            let link = if origin_link { Link::ProxyOrigin } else { Link::ClientsProxy };
            let t0 = Instant::now();
            let a = verdicts(&LinkModel::on(link, c), t0, &traffic);
            let b = verdicts(&LinkModel::on(link, c), t0, &traffic);
            prop_assert_eq!(a, b);
        }

        /// Without a rate, every delay is `delay ± jitter`, clamped at zero,
        /// and nothing is dropped without loss.
        #[test]
        fn delays_stay_within_the_jitter(c in config(), traffic in traffic()) {
            let c = LinkConfig { rate_bps: 0.0, loss_percent: 0.0, ..c };
            let m = LinkModel::new(c);
            let lo = c.delay.saturating_sub(c.jitter);
            let hi = c.delay + c.jitter;
            for v in verdicts(&m, Instant::now(), &traffic) {
                let d = match v {
                    Verdict::Forward => Duration::ZERO,
                    Verdict::Delay(d) => d,
                    Verdict::Drop => return Err(TestCaseError::fail("dropped without loss")),
                };
                // One nanosecond of float rounding either side.
                prop_assert!(d + Duration::from_nanos(1) >= lo && d <= hi + Duration::from_nanos(1),
                    "{d:?} outside [{lo:?}, {hi:?}]");
            }
            prop_assert_eq!(m.http_delay(Direction::ToUpstream) <= hi + Duration::from_nanos(1), true);
        }

        /// Loss of 0 % drops nothing, 100 % everything.
        #[test]
        fn loss_bounds_hold(c in config(), traffic in traffic()) {
            let none = LinkModel::new(LinkConfig { loss_percent: 0.0, rate_bps: 0.0, ..c });
            prop_assert!(verdicts(&none, Instant::now(), &traffic).iter().all(|v| *v != Verdict::Drop));
            let all = LinkModel::new(LinkConfig { loss_percent: 100.0, ..c });
            prop_assert!(verdicts(&all, Instant::now(), &traffic).iter().all(|v| *v == Verdict::Drop));
        }

        /// A rate-limited link never delivers faster than its rate: the
        /// datagrams it forwards leave one after another, each at least its
        /// own serialisation time after the previous one finished, and
        /// none waits past the queue bound plus its own serialisation.
        #[test]
        fn a_rate_limited_link_keeps_its_rate(rate in 1e5f64..1e9, seed: u64, traffic in traffic()) {
            let c = LinkConfig { rate_bps: rate, seed, ..LinkConfig::default() };
            let m = LinkModel::new(c);
            let t0 = Instant::now();
            let mut now = t0;
            let mut last_done: Option<Instant> = None;
            for &(gap_us, len) in &traffic {
                now += Duration::from_micros(gap_us);
                let own = Duration::from_secs_f64(len as f64 * 8.0 / rate);
                match m.datagram_at(Direction::ToUpstream, len, now) {
                    Verdict::Drop => {
                        let backlog = last_done.map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
                        prop_assert!(backlog > MAX_QUEUE, "dropped with a backlog of {backlog:?}");
                    }
                    Verdict::Forward => return Err(TestCaseError::fail("a rate-limited datagram left at once")),
                    Verdict::Delay(d) => {
                        let done = now + d;
                        let start = last_done.map_or(now, |l| l.max(now));
                        // Within a microsecond of float rounding.
                        let slack = Duration::from_micros(1);
                        prop_assert!(done + slack >= start + own, "left early: {d:?}");
                        prop_assert!(done <= start + own + slack, "waited too long: {d:?}");
                        prop_assert!(d <= MAX_QUEUE + own + slack);
                        last_done = Some(done);
                    }
                }
            }
        }

        /// HTTP bodies are never dropped: each waits for the bodies queued
        /// before it plus its own serialisation time.
        #[test]
        fn http_bodies_wait_for_the_link(rate in 1e3f64..1e10, lens in prop::collection::vec(0usize..1 << 20, 1..50)) {
            let m = LinkModel::new(LinkConfig { rate_bps: rate, ..LinkConfig::default() });
            prop_assert!(m.paces_http_bodies(Direction::ToClient));
            let now = Instant::now();
            let mut expected = 0f64;
            for (i, len) in lens.into_iter().enumerate() {
                expected += (len as f64 * 8.0 / rate).min(3600.0);
                let wait = m.http_body_wait_at(Direction::ToClient, len, now).as_secs_f64();
                let slack = 1e-6 * (i + 1) as f64;
                prop_assert!((wait - expected).abs() <= slack, "{wait}s, expected {expected}s");
            }
        }
    }
}
