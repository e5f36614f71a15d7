//! The UDP probe against echo services that misbehave on purpose: counts
//! must be exact, RTTs must reflect injected delay.

mod support_probe;

use std::net::SocketAddr;
use std::time::Duration;

use indicatif::ProgressBar;
use netrun::metrics::{PacketStatus, UdpPacketRow};
use netrun::workload::Setting;
use netrun::workload::{run_udp, UdpProbeConfig, UdpReport};
use support_probe::{closed_udp_port, udp_echo, Echo};
use tokio_util::sync::CancellationToken;

fn config(target: SocketAddr, count: u64) -> UdpProbeConfig {
    UdpProbeConfig {
        target,
        count,
        size: 64,
        interval: Duration::from_millis(1),
        timeout: Duration::from_secs(1),
        flows: 1,
    }
}

async fn probe(config: &UdpProbeConfig) -> (UdpReport, Vec<UdpPacketRow>) {
    let mut rows = Vec::new();
    let report = run_udp(
        config,
        &mut |row| rows.push(row),
        &ProgressBar::hidden(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    (report, rows)
}

fn with_status(rows: &[UdpPacketRow], status: PacketStatus) -> usize {
    rows.iter().filter(|r| r.status == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_echo_gets_every_reply() {
    let addr = udp_echo(Echo::Plain).await;
    let (report, rows) = probe(&config(addr, 50)).await;
    let s = report.summary();
    assert_eq!(s.kind, "udp");
    assert_eq!(
        (s.sent, s.received, s.lost, s.late),
        (Some(50), Some(50), Some(0), Some(0))
    );
    assert_eq!(
        (s.duplicates, s.reordered, s.foreign),
        (Some(0), Some(0), Some(0))
    );
    // Nothing overflowed the probe's own socket (the kernel's count).
    assert_eq!(s.receive_drops, Some(0));
    assert_eq!(s.loss_percent, Some(0.0));
    assert!(s.latency_min_ms.unwrap() > 0.0);
    assert!(s.latency_min_ms <= s.latency_p50_ms && s.latency_p50_ms <= s.latency_max_ms);
    assert!(s.jitter_ms.is_some() && s.ipdv_mean_ms.is_some());
    assert!(s.throughput_bps.unwrap() > 0.0);
    assert!(s.pacing_mean_ms.is_some() && s.pacing_max_ms.is_some());
    assert!(!s.interrupted && !report.interrupted());
    // One row per datagram, each with its RTT.
    assert_eq!(rows.len(), 50);
    assert!(rows
        .iter()
        .all(|r| r.status == PacketStatus::Ok && r.rtt_ms.is_some()));
    let mut seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..50).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_is_exact_when_every_tenth_datagram_is_dropped() {
    let addr = udp_echo(Echo::DropEvery(10)).await;
    let (report, rows) = probe(&config(addr, 100)).await;
    let s = report.summary();
    assert_eq!(
        (s.sent, s.received, s.lost),
        (Some(100), Some(90), Some(10))
    );
    assert_eq!(s.loss_percent, Some(10.0));
    assert_eq!(s.late, Some(0));
    assert_eq!(with_status(&rows, PacketStatus::Lost), 10);
    // The server drops its 10th, 20th, … arrival: sequence numbers 9, 19, …
    let lost: Vec<u64> = rows
        .iter()
        .filter(|r| r.status == PacketStatus::Lost)
        .map(|r| r.seq)
        .collect();
    assert_eq!(lost, (0..10).map(|k| k * 10 + 9).collect::<Vec<_>>());
    assert!(rows
        .iter()
        .filter(|r| r.status == PacketStatus::Lost)
        .all(|r| r.rtt_ms.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtt_reflects_a_fixed_reply_delay() {
    let addr = udp_echo(Echo::Delay(Duration::from_millis(20))).await;
    let (report, _) = probe(&config(addr, 20)).await;
    let s = report.summary();
    assert_eq!((s.received, s.lost), (Some(20), Some(0)));
    assert!(s.latency_min_ms.unwrap() >= 20.0, "{:?}", s.latency_min_ms);
    assert!(s.latency_p50_ms.unwrap() >= 20.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_replies_are_counted_once() {
    let addr = udp_echo(Echo::Duplicate).await;
    let (report, rows) = probe(&config(addr, 40)).await;
    let s = report.summary();
    assert_eq!((s.sent, s.received, s.lost), (Some(40), Some(40), Some(0)));
    assert_eq!(s.duplicates, Some(40));
    assert_eq!(with_status(&rows, PacketStatus::Dup), 40);
    assert_eq!(
        with_status(&rows, PacketStatus::Ok) + with_status(&rows, PacketStatus::Reordered),
        40
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_pairs_are_reordered_not_lost() {
    let addr = udp_echo(Echo::SwapPairs).await;
    let (report, rows) = probe(&config(addr, 40)).await;
    let s = report.summary();
    assert_eq!(
        (s.received, s.lost, s.duplicates),
        (Some(40), Some(0), Some(0))
    );
    assert!(s.reordered.unwrap() > 0, "{:?}", s.reordered);
    assert_eq!(
        with_status(&rows, PacketStatus::Reordered) as u64,
        s.reordered.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_replies_are_foreign_and_ignored() {
    let addr = udp_echo(Echo::Garbage).await;
    let (report, rows) = probe(&config(addr, 30)).await;
    let s = report.summary();
    assert_eq!(s.foreign, Some(30));
    assert_eq!(
        (s.received, s.lost, s.duplicates),
        (Some(30), Some(0), Some(0))
    );
    assert_eq!(rows.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_after_their_timeout_are_late_not_received() {
    // Every reply takes 100 ms; the timeout is 30 ms. The window closes
    // 30 ms after the last send, so early datagrams' replies arrive late and
    // the last ones' never arrive in the window: lost.
    let addr = udp_echo(Echo::Delay(Duration::from_millis(100))).await;
    let mut cfg = config(addr, 20);
    cfg.interval = Duration::from_millis(10);
    cfg.timeout = Duration::from_millis(30);
    let (report, rows) = probe(&cfg).await;
    let s = report.summary();
    assert_eq!(s.received, Some(0));
    assert!(s.late.unwrap() > 0, "{:?}", s.late);
    assert_eq!(s.late.unwrap() + s.lost.unwrap(), 20);
    assert_eq!(
        with_status(&rows, PacketStatus::Late) as u64,
        s.late.unwrap()
    );
    assert!(
        s.latency_min_ms.is_none(),
        "late replies are not in the RTT figures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_flows_each_count_their_own() {
    let addr = udp_echo(Echo::Plain).await;
    let mut cfg = config(addr, 25);
    cfg.flows = 3;
    let (report, rows) = probe(&cfg).await;
    let s = report.summary();
    assert_eq!((s.sent, s.received, s.lost), (Some(75), Some(75), Some(0)));
    for flow in 0..3 {
        assert_eq!(rows.iter().filter(|r| r.flow == flow).count(), 25);
    }
}

/// Sends under 1 ms apart: the replies, stamped by the kernel, are read on
/// a clock rather than as each arrives; every one is still counted once,
/// with an RTT above zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_read_on_a_clock_are_all_counted_and_timed() {
    let addr = udp_echo(Echo::Plain).await;
    let mut cfg = config(addr, 2000);
    cfg.interval = Duration::from_micros(100);
    let (report, rows) = probe(&cfg).await;
    let s = report.summary();
    assert_eq!(
        (s.sent, s.received, s.lost, s.late, s.duplicates),
        (Some(2000), Some(2000), Some(0), Some(0), Some(0))
    );
    assert!(s.latency_min_ms.unwrap() > 0.0);
    assert!(rows.iter().all(|r| r.rtt_ms.is_some_and(|ms| ms >= 0.0)));
    assert_eq!(
        with_status(&rows, PacketStatus::Ok) + with_status(&rows, PacketStatus::Reordered),
        2000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_interval_sends_as_fast_as_possible() {
    let addr = udp_echo(Echo::Plain).await;
    let mut cfg = config(addr, 200);
    cfg.interval = Duration::ZERO;
    let (report, _) = probe(&cfg).await;
    let s = report.summary();
    assert_eq!(s.sent, Some(200));
    assert_eq!(s.received.unwrap() + s.late.unwrap() + s.lost.unwrap(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_listening_means_everything_lost_not_a_crash() {
    let mut cfg = config(closed_udp_port(), 10);
    cfg.timeout = Duration::from_millis(200);
    let (report, rows) = probe(&cfg).await;
    let s = report.summary();
    assert_eq!((s.sent, s.received, s.lost), (Some(10), Some(0), Some(10)));
    assert_eq!(s.loss_percent, Some(100.0));
    assert!(!report.any_reply());
    assert_eq!(with_status(&rows, PacketStatus::Lost), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_returns_what_was_gathered() {
    let addr = udp_echo(Echo::Plain).await;
    let mut cfg = config(addr, 1_000_000);
    cfg.timeout = Duration::from_secs(1);
    let cancel = CancellationToken::new();
    let mut rows = 0;
    let report = run_udp(
        &cfg,
        &mut |_row| {
            rows += 1;
            if rows == 10 {
                cancel.cancel();
            }
        },
        &ProgressBar::hidden(),
        &cancel,
    )
    .await
    .unwrap();
    assert!(report.interrupted());
    let s = report.summary();
    assert!(s.interrupted);
    assert!(s.sent.unwrap() < 1_000_000);
    assert!(s.received.unwrap() >= 10);
    // Replies still in flight at the cancel get their timeout: a plain echo loses nothing.
    assert_eq!(s.lost, Some(0), "{s:?}");
    assert_eq!(
        s.received.unwrap() + s.late.unwrap() + s.lost.unwrap(),
        s.sent.unwrap()
    );
}

#[tokio::test]
async fn sizes_below_the_header_are_input_errors() {
    let mut cfg = config(closed_udp_port(), 5);
    cfg.size = 4;
    let err = cfg.validate().unwrap_err();
    assert_eq!(err.setting, Setting::Size);
    assert!(err.to_string().contains("32"), "{err}");
    let err = run_udp(
        &cfg,
        &mut |_| {},
        &ProgressBar::hidden(),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(netrun::error::exit_code(&err), netrun::error::EXIT_INPUT);

    let setting = |c: &UdpProbeConfig| c.validate().map_err(|e| e.setting);
    cfg.size = 70_000;
    assert_eq!(setting(&cfg), Err(Setting::Size));
    cfg.size = 64;
    cfg.count = 0;
    assert_eq!(setting(&cfg), Err(Setting::Count));
    cfg.count = 1;
    cfg.flows = 0;
    assert_eq!(setting(&cfg), Err(Setting::Flows));
    cfg.flows = 1;
    cfg.interval = std::time::Duration::from_secs(25 * 3600);
    assert_eq!(setting(&cfg), Err(Setting::Interval));
    cfg.interval = std::time::Duration::ZERO;
    cfg.flows = 2;
    cfg.count = netrun::workload::udp::MAX_DATAGRAMS;
    assert_eq!(setting(&cfg), Err(Setting::Count));
}
