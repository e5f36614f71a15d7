//! The UDP probe workload: open-loop timestamped datagrams to an echo service,
//! replies classified per flow, QoS computed at the end. Used by `netrun probe
//! udp` and by the scenario runner; it knows nothing of CSV files or tables.
//!
//! Threads and tasks: one pacing thread (its own, `netrun-pacer`) sends for
//! every flow at `start + i × interval`, at its normal priority, sleeping
//! then spinning for the last 200 µs (`workload/pacing.rs`; tokio's timer
//! has millisecond granularity; why not real-time priority: [`pace`]); one
//! receive task per flow drains its socket with `recvmmsg` (up to 32 replies
//! a call), classifies the replies and sends them in batches down a bounded
//! channel to the collector (this function), which calls `on_packet` off the
//! runtime's worker (the caller may write to disk there). Memory per
//! datagram: 9 bytes (a state byte and one time slot: the achieved send
//! time, replaced by the RTT once an in-time reply comes), reserved before
//! the first send; never a row per sample.
//!
//! Rows reach `on_packet` as soon as they are final: `ok`, `reordered`, `late`
//! and `dup` when the reply arrives (one extra `dup` row per extra copy), and
//! `lost` at the end, in flow and sequence order. Their `variant` and
//! `workload` are empty: the caller fills them.

use std::collections::TryReserveError;
use std::io;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::batch::Batcher;
use super::pacing::Pacing;
use super::{check_duration, Progress, Setting, SettingError};
use crate::error::Error;
use crate::metrics::qos::{
    self, FlowCounts, FlowTracker, JitterAcc, LatencyStats, ReplyClass, SendTimes,
};
use crate::metrics::summary::round3;
use crate::metrics::{PacketStatus, SummaryRow, UdpPacketRow};
use crate::shutdown::Interrupt;
use crate::udp_batch::{RecvBatch, UdpIo};
use crate::workload::probe::{self, ProbeHeader, HEADER_LEN, MAX_DATAGRAM};

/// Most datagrams one run tracks (count × flows): 9 bytes of state each,
/// so about 450 MB at the limit.
pub const MAX_DATAGRAMS: u64 = 50_000_000;

/// Replies travel to the collector in batches of this many: one channel
/// hand-off (and one wake-up of the collector) per batch, as HTTP samples do.
const BATCH: usize = 256;
/// A partial batch is handed over once its first reply is this old, so slow
/// runs still show progress.
const BATCH_AGE: Duration = Duration::from_millis(50);
/// Batches the channel holds: past that a receive task waits for the
/// collector (the replies wait in the socket's buffer meanwhile).
const QUEUED_BATCHES: usize = 64;

/// What to send, where and how fast.
#[derive(Debug, Clone, PartialEq)]
pub struct UdpProbeConfig {
    /// Echo service address.
    pub target: SocketAddr,
    /// Datagrams per flow.
    pub count: u64,
    /// Bytes per datagram, header included.
    pub size: usize,
    /// Time between sends (zero: as fast as possible).
    pub interval: Duration,
    /// A reply later than this after its send is late; the run ends this
    /// long after the last send.
    pub timeout: Duration,
    /// Parallel flows, each with its own socket.
    pub flows: u32,
}

impl UdpProbeConfig {
    /// Checks the values the wire format and the OS can take.
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.size < HEADER_LEN || self.size > MAX_DATAGRAM {
            return Err(Setting::Size.error(format!(
                "datagram size {} is out of range: the probe header takes {HEADER_LEN} bytes, \
                 so use a size from {HEADER_LEN} to {MAX_DATAGRAM} bytes",
                self.size
            )));
        }
        if self.count == 0 {
            return Err(Setting::Count.error("count must be at least 1 datagram per flow"));
        }
        if self.flows == 0 {
            return Err(Setting::Flows.error("flows must be at least 1"));
        }
        // One socket per flow.
        super::check_sockets(Setting::Flows, u64::from(self.flows), 1)?;
        check_duration(Setting::Timeout, self.timeout, false)?;
        check_duration(Setting::Interval, self.interval, true)?;
        let total = self.count.saturating_mul(u64::from(self.flows));
        if total > MAX_DATAGRAMS {
            return Err(Setting::Count.error(format!(
                "count × flows = {total} datagrams is more than one run can track \
                 (at most {MAX_DATAGRAMS}, 9 bytes of state each); split it into several runs"
            )));
        }
        Ok(())
    }
}

/// The results of one UDP probe run. Counts are over every flow.
#[derive(Debug, Clone)]
pub struct UdpReport {
    pub started_at: SystemTime,
    /// From the start to the end of the reply window (or the interruption).
    pub duration: Duration,
    /// Datagrams sent, all flows.
    pub sent: u64,
    /// received, late, duplicates, reordered and received bytes, all flows.
    pub counts: FlowCounts,
    /// `sent − received − late`.
    pub lost: u64,
    /// Replies that were not this run's datagrams.
    pub foreign: u64,
    /// Replies the probe's sockets dropped, their receive buffers full
    /// (among `lost`); `None` where the kernel does not say.
    pub receive_drops: Option<u64>,
    /// In-time round-trip times.
    pub rtt: Option<qos::LatencySummary>,
    /// RFC 3550 jitter, ms: the mean of the flows' jitter.
    pub jitter_ms: Option<f64>,
    /// Mean |RTT(i) − RTT(i−1)| over every flow's consecutive pairs, ms.
    pub ipdv_mean_ms: Option<f64>,
    /// Received bits per second, first send to last in-time reply.
    pub throughput_bps: Option<f64>,
    /// Mean and largest lateness of sends against their schedule, ms.
    pub pacing_mean_ms: Option<f64>,
    pub pacing_max_ms: Option<f64>,
    interrupted: bool,
}

impl UdpReport {
    /// The metric fields of a summary row; scenario, variant, workload and
    /// target are left for the caller.
    pub fn summary(&self) -> SummaryRow {
        SummaryRow {
            kind: "udp".into(),
            started_at: humantime::format_rfc3339_seconds(self.started_at).to_string(),
            duration_s: Some(round3(self.duration.as_secs_f64())),
            sent: Some(self.sent),
            received: Some(self.counts.received),
            lost: Some(self.lost),
            loss_percent: qos::loss_percent(self.lost, self.sent).map(round3),
            late: Some(self.counts.late),
            duplicates: Some(self.counts.duplicates),
            reordered: Some(self.counts.reordered),
            jitter_ms: self.jitter_ms.map(round3),
            ipdv_mean_ms: self.ipdv_mean_ms.map(round3),
            throughput_bps: self.throughput_bps.map(f64::round),
            foreign: Some(self.foreign),
            receive_drops: self.receive_drops,
            pacing_mean_ms: self.pacing_mean_ms.map(round3),
            pacing_max_ms: self.pacing_max_ms.map(round3),
            interrupted: self.interrupted,
            ..super::latency_columns(self.rtt.as_ref())
        }
    }

    /// Whether cancellation stopped the run before it finished.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// Whether any reply at all (in time or late) came back.
    pub fn any_reply(&self) -> bool {
        self.counts.received + self.counts.late + self.counts.duplicates > 0
    }
}

/// A reply, classified, on its way to the collector.
struct Event {
    flow: u32,
    seq: u64,
    send_ns: u64,
    rtt_ns: u64,
    class: ReplyClass,
}

/// What the pacing thread achieved.
struct Paced {
    /// Datagrams sent per flow (the same for every flow).
    sent: u64,
    /// Achieved time of the first send, ns since start (each datagram's is
    /// in its flow's [`SendTimes`]).
    first_send_ns: Option<u64>,
    lateness_sum_ns: f64,
    lateness_max_ns: u64,
}

/// What a receive task gathered.
struct Received {
    tracker: FlowTracker,
    foreign: u64,
    last_reply_ns: Option<u64>,
}

/// Runs the probe to completion (or until stopped), streaming per-datagram
/// rows to `on_packet`. A stop (`cancel`, or an [`Interrupt`]'s first
/// signal) ends the sending and still waits for replies in flight; an abort
/// (its second) ends that wait too.
pub async fn run_udp<P: Progress + Clone + 'static>(
    config: &UdpProbeConfig,
    on_packet: &mut (dyn FnMut(UdpPacketRow) + Send),
    progress: &P,
    cancel: impl Into<Interrupt>,
) -> anyhow::Result<UdpReport> {
    let interrupt: Interrupt = cancel.into();
    let cancel = interrupt.stop_token();
    config.validate().map_err(Error::from)?;
    let run_id: u64 = rand::random();
    let flows = config.flows;
    progress.set_total(config.count * u64::from(flows));
    progress.replies(0, None);

    let trackers = reserve(config)?;
    let send_times: Vec<SendTimes> = trackers.iter().map(FlowTracker::send_times).collect();
    let (senders, receivers) = open_sockets(config)?;
    // The flows' sockets, to ask the kernel at the end what it dropped.
    let watched = senders
        .iter()
        .map(std::net::UdpSocket::try_clone)
        .collect::<std::io::Result<Vec<_>>>()
        .context("cannot open a UDP socket")?;

    let started_at = SystemTime::now();
    let start = Instant::now();
    let (end_tx, end_rx) = watch::channel(None::<SendEnd>);
    let (tx, mut rx) = mpsc::channel::<Vec<Event>>(QUEUED_BATCHES);

    let mut tasks = Vec::with_capacity(flows as usize);
    for ((flow, socket), tracker) in (0u32..).zip(receivers).zip(trackers) {
        tasks.push(tokio::spawn(receive_flow(
            flow,
            socket,
            run_id,
            tracker,
            config.timeout,
            config.size,
            start,
            end_rx.clone(),
            tx.clone(),
            interrupt.clone(),
        )));
    }
    drop(tx);
    drop(end_rx);

    // A thread of its own, not one of tokio's blocking pool: it spins the
    // last 200 µs before each send, which a pool thread shared with file
    // writes should not.
    let (paced_tx, paced_rx) = tokio::sync::oneshot::channel();
    {
        let (count, size, interval) = (config.count, config.size, config.interval);
        let (cancel, progress) = (cancel.clone(), progress.clone());
        thread::Builder::new()
            .name("netrun-pacer".into())
            .spawn(move || {
                let result = pace(
                    senders, send_times, run_id, count, size, interval, start, &cancel, &progress,
                );
                // Always open the reply window, even after an error, so the
                // receivers end (after an error, not knowing what was sent,
                // they wait the whole timeout).
                let sent = result.as_ref().map_or(u64::MAX, |p| p.sent);
                let _ = end_tx.send(Some(SendEnd {
                    at: Instant::now(),
                    sent,
                }));
                let _ = paced_tx.send(result);
            })
            .context("cannot start the UDP pacing thread")?;
    }

    collect_replies(&mut rx, on_packet, progress).await;

    // A pacer that panicked dropped its sender (and `end_tx`, which ended
    // the receivers).
    let paced = paced_rx
        .await
        .map_err(|_| anyhow::anyhow!("the UDP pacing thread failed"))??;
    let mut flows_rx = Vec::with_capacity(tasks.len());
    for t in tasks {
        flows_rx.push(t.await.context("a UDP receive task failed")??);
    }
    let run = RunTimes {
        started_at,
        duration: start.elapsed(),
        interrupted: cancel.is_cancelled(),
        receive_drops: watched.iter().map(crate::net::udp_socket_drops).sum(),
    };
    Ok(summarise(config, run, &paced, &flows_rx, on_packet))
}

/// The run's per-datagram state, reserved before anything is sent: each
/// flow's reply tracker (9 bytes a datagram, the pacer's send times
/// included). Memory that cannot be had is an error that says so, not an
/// abort.
fn reserve(config: &UdpProbeConfig) -> Result<Vec<FlowTracker>, Error> {
    let fail = |e: TryReserveError| {
        let total = config.count.saturating_mul(u64::from(config.flows));
        Error::Runtime(format!(
            "cannot reserve memory to track {total} datagrams ({} MiB, 9 bytes each): {e}; \
             lower count or flows, or split the workload into several runs",
            total.saturating_mul(9) >> 20
        ))
    };
    (0..config.flows)
        .map(|_| FlowTracker::try_new(config.count, config.timeout).map_err(fail))
        .collect()
}

/// When a run started, how long it took, and whether it was cut short.
struct RunTimes {
    started_at: SystemTime,
    duration: Duration,
    interrupted: bool,
    /// What the kernel dropped at the flows' sockets, all flows.
    receive_drops: Option<u64>,
}

/// Below this interval between sends, a flow whose replies the kernel
/// stamps reads them on a clock ([`ReplySocket::Polled`]).
const POLL_BELOW: Duration = Duration::from_millis(1);
/// How often a polled flow reads its socket (tokio's timer has millisecond
/// granularity). At 300k replies/s that is 300 replies, ~300 KiB of the
/// socket's 4 MiB buffer.
const POLL_EVERY: Duration = Duration::from_millis(1);

/// Where a flow's receive task reads its replies, and what wakes it.
enum ReplySocket {
    /// Woken by the runtime when the socket turns readable: each reply read
    /// at once, as a reply without a kernel stamp must be to be timed right.
    Readable(UdpIo),
    /// Read every [`POLL_EVERY`] (at once again while a read fills the
    /// batch), the socket unwatched by the runtime. With kernel stamps the
    /// time a reply waits in the socket is not part of its RTT, and at tens
    /// of thousands of replies a second the receive thread wakes a thousand
    /// times a second instead of for every reply or two: the cores are left
    /// to what is measured.
    Polled {
        socket: std::net::UdpSocket,
        tick: tokio::time::Interval,
        /// The last read filled the batch: more may wait.
        more: bool,
    },
}

/// Whether a flow reads its replies on a clock: only with kernel stamps
/// (else a reply must be read at once to be timed right), with sends under
/// [`POLL_BELOW`] apart but not as fast as possible (a rate not known), and
/// with a receive buffer (`buffer` bytes, as the kernel reports it) that
/// holds four ticks' worth of replies at `size` bytes plus 1 KiB of the
/// kernel's own per datagram: a tick late by three still loses nothing.
fn polls(stamped: bool, interval: Duration, size: usize, buffer: usize) -> bool {
    if !stamped || interval.is_zero() || interval >= POLL_BELOW {
        return false;
    }
    let per_tick = POLL_EVERY.as_nanos().div_ceil(interval.as_nanos());
    let need = 4 * per_tick * (size as u128 + 1024);
    buffer as u128 >= need
}

impl ReplySocket {
    /// How a flow reads `socket` at this `interval`: polled where the kernel
    /// stamps its replies and they come faster than [`POLL_BELOW`].
    fn new(socket: std::net::UdpSocket, interval: Duration, size: usize) -> io::Result<Self> {
        // Replies stamped by the kernel as they arrive: an RTT then ends
        // when the reply reached this host, not when the receive task got
        // to it ([`BatchClock`]). Without stamps it ends at the receive.
        let stamped = match crate::udp_batch::stamp_arrivals(&socket) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "no kernel receive timestamps; RTTs end when the probe reads a reply");
                false
            }
        };
        let buffer = socket2::SockRef::from(&socket)
            .recv_buffer_size()
            .unwrap_or(0);
        if polls(stamped, interval, size, buffer) {
            let mut tick = tokio::time::interval(POLL_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            return Ok(ReplySocket::Polled {
                socket,
                tick,
                more: false,
            });
        }
        // Watched for readability only: the pacer's sends on the clone
        // never wake the receive task's thread.
        Ok(ReplySocket::Readable(UdpIo::new(socket)?))
    }

    /// Waits until replies may be waiting.
    async fn ready(&mut self) -> io::Result<()> {
        match self {
            ReplySocket::Readable(socket) => socket.readable().await,
            ReplySocket::Polled { tick, more, .. } => {
                if !*more {
                    tick.tick().await;
                }
                Ok(())
            }
        }
    }

    /// Receives a batch of replies without waiting; `WouldBlock` when none.
    fn recv(&mut self, batch: &mut RecvBatch) -> io::Result<usize> {
        match self {
            ReplySocket::Readable(socket) => batch.try_recv(socket),
            ReplySocket::Polled { socket, more, .. } => {
                *more = false;
                let n = batch.recv_unwatched(socket)?;
                *more = n >= batch.room();
                Ok(n)
            }
        }
    }
}

/// One connected socket per flow: a blocking one for the pacing thread and
/// its clone for the flow's receive task.
fn open_sockets(
    config: &UdpProbeConfig,
) -> anyhow::Result<(Vec<std::net::UdpSocket>, Vec<ReplySocket>)> {
    let flows = config.flows;
    let bind: SocketAddr = if config.target.is_ipv4() {
        "0.0.0.0:0".parse().expect("valid address")
    } else {
        "[::]:0".parse().expect("valid address")
    };
    let mut senders = Vec::with_capacity(flows as usize);
    let mut receivers = Vec::with_capacity(flows as usize);
    for _ in 0..flows {
        let socket = std::net::UdpSocket::bind(bind)
            .with_context(|| format!("cannot open a UDP socket ({bind})"))?;
        // Connected: the kernel keeps other senders' datagrams away, and a
        // closed port shows up as ICMP errors we can ignore.
        socket
            .connect(config.target)
            .with_context(|| format!("cannot reach {}", config.target))?;
        socket.set_nonblocking(true)?;
        crate::net::grow_udp_buffers(&socket, crate::net::UDP_BUFFER);
        senders.push(socket.try_clone()?);
        receivers.push(ReplySocket::new(socket, config.interval, config.size)?);
    }
    Ok((senders, receivers))
}

/// The collector: the only place reply rows are handed out, a batch at a
/// time as the receive tasks classify them.
async fn collect_replies(
    rx: &mut mpsc::Receiver<Vec<Event>>,
    on_packet: &mut (dyn FnMut(UdpPacketRow) + Send),
    progress: &dyn Progress,
) {
    let mut received = 0u64;
    while let Some(batch) = rx.recv().await {
        // `on_packet` may write rows to disk: the worker's other tasks (the
        // receive tasks among them) move to another thread meanwhile.
        off_the_runtime(|| {
            for ev in batch {
                let status = match ev.class {
                    ReplyClass::Ok => PacketStatus::Ok,
                    ReplyClass::Reordered => PacketStatus::Reordered,
                    ReplyClass::Late => PacketStatus::Late,
                    ReplyClass::Dup => PacketStatus::Dup,
                    ReplyClass::Unknown => continue,
                };
                if matches!(status, PacketStatus::Ok | PacketStatus::Reordered) {
                    received += 1;
                }
                on_packet(UdpPacketRow {
                    variant: String::new(),
                    workload: String::new(),
                    flow: ev.flow,
                    seq: ev.seq,
                    send_offset_ms: round3(qos::ns_to_ms(ev.send_ns as f64)),
                    rtt_ms: Some(round3(qos::ns_to_ms(ev.rtt_ns as f64))),
                    status,
                    repetition: None,
                });
            }
        });
        progress.replies(received, None);
    }
    progress.replies(received, None);
}

/// Runs `f`, which may block on a disk, without holding up the other tasks
/// of a multi-threaded runtime (its worker's tasks are handed over first);
/// elsewhere (a current-thread runtime, as in some tests) it just runs it.
fn off_the_runtime<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// After the run: a row for each datagram never answered, then the
/// statistics over every flow, both in flow and sequence order.
fn summarise(
    config: &UdpProbeConfig,
    run: RunTimes,
    paced: &Paced,
    flows_rx: &[Received],
    on_packet: &mut (dyn FnMut(UdpPacketRow) + Send),
) -> UdpReport {
    let mut counts = FlowCounts::default();
    let mut lost = 0;
    let mut foreign = 0;
    let mut last_reply_ns = None::<u64>;
    let mut latency = LatencyStats::new();
    let (mut jitter_sum, mut jitter_flows) = (0.0, 0u32);
    let (mut abs_d_sum, mut pairs) = (0.0, 0u64);
    for (flow, r) in (0u32..).zip(flows_rx) {
        for seq in 0..paced.sent {
            if r.tracker.unanswered(seq) {
                on_packet(UdpPacketRow {
                    variant: String::new(),
                    workload: String::new(),
                    flow,
                    seq,
                    send_offset_ms: round3(qos::ns_to_ms(
                        r.tracker.send_ns(seq).unwrap_or(0) as f64
                    )),
                    rtt_ms: None,
                    status: PacketStatus::Lost,
                    repetition: None,
                });
            }
        }
        counts.add(&r.tracker.counts);
        lost += r.tracker.lost(paced.sent);
        foreign += r.foreign;
        last_reply_ns = last_reply_ns.max(r.last_reply_ns);
        let mut acc = JitterAcc::default();
        for rtt in r.tracker.rtts_in_seq_order() {
            latency.record_ns(rtt);
            acc.push(rtt as f64);
        }
        if let Some(j) = acc.jitter_ns() {
            jitter_sum += j;
            jitter_flows += 1;
        }
        abs_d_sum += acc.sum_abs_d_ns();
        pairs += acc.pairs();
    }

    let sent = paced.sent * u64::from(config.flows);
    let throughput_bps = match (paced.first_send_ns, last_reply_ns) {
        (Some(first), Some(last)) => qos::throughput_bps(
            counts.received_bytes,
            Duration::from_nanos(last.saturating_sub(first)),
        ),
        _ => None,
    };
    let paced_run = !config.interval.is_zero();
    UdpReport {
        started_at: run.started_at,
        duration: run.duration,
        sent,
        counts,
        lost,
        foreign,
        receive_drops: run.receive_drops,
        rtt: latency.summary(),
        jitter_ms: (jitter_flows > 0).then(|| qos::ns_to_ms(jitter_sum / f64::from(jitter_flows))),
        ipdv_mean_ms: (pairs > 0).then(|| qos::ns_to_ms(abs_d_sum / pairs as f64)),
        throughput_bps,
        // With interval 0 there is no schedule to be late against.
        pacing_mean_ms: (paced_run && sent > 0)
            .then(|| qos::ns_to_ms(paced.lateness_sum_ns / sent as f64)),
        pacing_max_ms: (paced_run && sent > 0).then(|| qos::ns_to_ms(paced.lateness_max_ns as f64)),
        interrupted: run.interrupted,
    }
}

/// The pacer is done: when, and how many datagrams each flow sent.
#[derive(Debug, Clone, Copy)]
struct SendEnd {
    at: Instant,
    sent: u64,
}

/// How long to keep listening once every datagram is answered, in multiples
/// of the largest RTT seen: late duplicates still get counted (irtt waits 3×).
const GRACE_RTTS: u32 = 3;

/// When a flow stops listening: `timeout` after the last send, or sooner,
/// [`GRACE_RTTS`] × the largest RTT after the last reply once every
/// datagram sent has its reply.
fn listen_until(
    end: SendEnd,
    timeout: Duration,
    answered: u64,
    last_reply: Option<Instant>,
    max_rtt: Duration,
) -> Instant {
    let full = end.at + timeout;
    if answered < end.sent {
        return full;
    }
    let from = last_reply.map_or(end.at, |r| r.max(end.at));
    (from + max_rtt * GRACE_RTTS).min(full)
}

/// Receives one flow's replies until `timeout` after the last send, or
/// until shortly after every datagram is answered.
#[allow(clippy::too_many_arguments)]
async fn receive_flow(
    flow: u32,
    mut socket: ReplySocket,
    run_id: u64,
    tracker: FlowTracker,
    timeout: Duration,
    size: usize,
    start: Instant,
    mut end_rx: watch::Receiver<Option<SendEnd>>,
    tx: mpsc::Sender<Vec<Event>>,
    interrupt: Interrupt,
) -> anyhow::Result<Received> {
    let mut batch = Batch::new(tx);
    let mut st = FlowState {
        flow,
        run_id,
        tracker,
        foreign: 0,
        last_reply_ns: None,
        answered: 0,
        last_reply: None,
        max_rtt: Duration::ZERO,
    };
    // Replies are this flow's own datagrams: slots of their size (one
    // `recvmmsg` drains up to 32 queued replies) instead of a 64 KiB
    // buffer and a `recv` each. A longer reply (an echo that pads) is cut
    // to `size` and counted as that many bytes. Each with the kernel's
    // arrival stamp.
    let mut replies = RecvBatch::with_slot_bytes(size).with_arrival_stamps();
    // The abort and both timers live across the loop's turns, each timer
    // reset only when its instant changes: made anew per reply, they would
    // cost a timer-wheel insertion and removal (and a waiter list's lock)
    // for every datagram.
    let aborted = interrupt.aborted();
    tokio::pin!(aborted);
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
    let listen_timer = tokio::time::sleep_until(far);
    tokio::pin!(listen_timer);
    let mut listen_at = None::<Instant>;
    let batch_timer = tokio::time::sleep_until(far);
    tokio::pin!(batch_timer);
    let mut batch_at = None::<tokio::time::Instant>;
    loop {
        let deadline = end_rx
            .borrow()
            .map(|end| listen_until(end, timeout, st.answered, st.last_reply, st.max_rtt));
        if let Some(at) = deadline.filter(|&at| listen_at != Some(at)) {
            listen_timer.as_mut().reset(at.into());
            listen_at = Some(at);
        }
        let batch_due = batch.due();
        if let Some(at) = batch_due.filter(|&at| batch_at != Some(at)) {
            batch_timer.as_mut().reset(at);
        }
        batch_at = batch_due;
        // A stop ends the sender, not this loop: replies to what was
        // already sent get their full `timeout`, so an interrupted run does
        // not count as lost what was merely still in flight. An abort (the
        // second Ctrl-C) ends the wait.
        tokio::select! {
            biased;
            _ = &mut aborted => break,
            _ = &mut listen_timer, if deadline.is_some() => break,
            changed = end_rx.changed(), if deadline.is_none() => {
                // The pacer always signals before it ends; a dropped sender
                // means it died, so stop waiting.
                if changed.is_err() { break; }
            }
            _ = &mut batch_timer, if batch_due.is_some() => batch.hand_over().await,
            r = socket.ready() => {
                r.context("cannot receive UDP replies")?;
                match socket.recv(&mut replies) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    // ICMP port unreachable from an earlier send: nobody
                    // listens (yet); those datagrams count as lost.
                    Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) => continue,
                    Err(e) => return Err(e).context("cannot receive UDP replies"),
                }
                // One reading of the clocks for the batch: its replies were
                // all waiting when the call returned.
                let clock = BatchClock::read(start);
                for (payload, _, arrived) in replies.iter_stamped() {
                    if let Some(ev) = st.on_datagram(payload, &clock, arrived) {
                        batch.push(ev, clock.now).await;
                    }
                }
            }
        }
    }
    batch.hand_over().await;
    Ok(Received {
        tracker: st.tracker,
        foreign: st.foreign,
        last_reply_ns: st.last_reply_ns,
    })
}

/// What a receive task knows of its flow while replies come in.
struct FlowState {
    flow: u32,
    run_id: u64,
    tracker: FlowTracker,
    foreign: u64,
    last_reply_ns: Option<u64>,
    /// Datagrams with a reply (in time or late), the last reply, the
    /// largest RTT: when listening may end.
    answered: u64,
    last_reply: Option<Instant>,
    max_rtt: Duration,
}

/// The clocks read once for a batch of replies, right after the receive:
/// the probe's monotonic clock (ns since the run's start, and as an
/// instant) and the wall clock, which the kernel's arrival stamps are on.
struct BatchClock {
    recv_ns: u64,
    now: Instant,
    wall: SystemTime,
}

/// A reading of both clocks whose monotonic readings before and after the
/// wall clock's lie this close is taken at once: the pair is one instant.
const TIGHT_PAIR: Duration = Duration::from_micros(2);
/// Most tries at a tight pair; the tightest is kept.
const PAIR_TRIES: usize = 4;

impl BatchClock {
    /// Reads both clocks as one instant: the wall clock between two
    /// monotonic readings, their midpoint its twin. A thread preempted
    /// between the two would move every stamp of the batch by as long as
    /// it waited (at load 14, RTTs of 1 µs), so a loose pair is read again,
    /// up to [`PAIR_TRIES`] times.
    fn read(start: Instant) -> Self {
        let mut best: Option<(Duration, Instant, SystemTime)> = None;
        for _ in 0..PAIR_TRIES {
            let before = Instant::now();
            let wall = SystemTime::now();
            let span = before.elapsed();
            if best.map_or(true, |(s, ..)| span < s) {
                best = Some((span, before + span / 2, wall));
            }
            if span <= TIGHT_PAIR {
                break;
            }
        }
        let (_, now, wall) = best.expect("at least one try");
        BatchClock {
            recv_ns: u64::try_from(now.saturating_duration_since(start).as_nanos())
                .unwrap_or(u64::MAX),
            now,
            wall,
        }
    }

    /// When a reply sent at `send_ns` reached the probe's socket, ns since
    /// the start, from its kernel arrival stamp ([`arrival_ns`]).
    fn arrival_ns(&self, send_ns: u64, arrived: Option<SystemTime>) -> u64 {
        // A stamp later than the reading (a wall clock stepped back) says
        // nothing: no wait.
        let waited = arrived.and_then(|at| self.wall.duration_since(at).ok());
        arrival_ns(send_ns, self.recv_ns, waited)
    }
}

/// When a reply reached the probe, ns since the start: the receive task's
/// reading `recv_ns` less how long the reply had waited by then since the
/// kernel stamped its arrival (`waited`, on the wall clock). The stamp moves
/// the reading to the monotonic clock by the batch's one reading of both
/// clocks. Used only when it lies after the send (`send_ns`): no stamp, or
/// one a wall-clock step put before the send, gives `recv_ns` itself. So an
/// RTT is never longer than the one measured without stamps, and never zero.
fn arrival_ns(send_ns: u64, recv_ns: u64, waited: Option<Duration>) -> u64 {
    let waited_ns = waited.map(|w| u64::try_from(w.as_nanos()).unwrap_or(u64::MAX));
    match waited_ns.and_then(|w| recv_ns.checked_sub(w)) {
        Some(at) if at > send_ns => at,
        _ => recv_ns,
    }
}

impl FlowState {
    /// Classifies one datagram, read at `clock`, stamped `arrived` by the
    /// kernel: the reply's row-to-be, or `None` for a datagram that is not
    /// one of this flow's (counted as foreign).
    fn on_datagram(
        &mut self,
        payload: &[u8],
        clock: &BatchClock,
        arrived: Option<SystemTime>,
    ) -> Option<Event> {
        let header = probe::decode(payload, self.run_id).filter(|h| h.flow == self.flow);
        let Some(h) = header else {
            self.foreign += 1;
            return None;
        };
        let recv_ns = clock.arrival_ns(h.send_ns, arrived);
        let now = clock.now;
        let class = self
            .tracker
            .on_reply(h.seq, h.send_ns, recv_ns, payload.len());
        let rtt_ns = recv_ns.saturating_sub(h.send_ns);
        match class {
            ReplyClass::Unknown => {
                self.foreign += 1;
                return None;
            }
            ReplyClass::Ok | ReplyClass::Reordered => {
                self.last_reply_ns = self.last_reply_ns.max(Some(recv_ns));
            }
            ReplyClass::Late | ReplyClass::Dup => {}
        }
        if matches!(
            class,
            ReplyClass::Ok | ReplyClass::Reordered | ReplyClass::Late
        ) {
            self.answered += 1;
            self.last_reply = Some(now);
            self.max_rtt = self.max_rtt.max(Duration::from_nanos(rtt_ns));
        }
        Some(Event {
            flow: self.flow,
            seq: h.seq,
            send_ns: h.send_ns,
            rtt_ns,
            class,
        })
    }
}

/// A receive task's replies not yet handed to the collector.
struct Batch {
    events: Batcher<Event>,
    tx: mpsc::Sender<Vec<Event>>,
}

impl Batch {
    fn new(tx: mpsc::Sender<Vec<Event>>) -> Self {
        Batch {
            events: Batcher::new(BATCH, BATCH_AGE),
            tx,
        }
    }

    /// Adds a reply received at `now`; a full (or old) batch goes to the
    /// collector at once.
    async fn push(&mut self, ev: Event, now: Instant) {
        if let Some(full) = self.events.push(ev, now) {
            let _ = self.tx.send(full).await;
        }
    }

    /// When the waiting replies go even if the batch is not full; `None`
    /// when none wait.
    fn due(&self) -> Option<tokio::time::Instant> {
        self.events.due().map(tokio::time::Instant::from_std)
    }

    /// Hands the waiting replies to the collector, waiting while its queue
    /// is full. A collector gone (the run is ending) leaves nothing to do.
    async fn hand_over(&mut self) {
        if let Some(rest) = self.events.take() {
            let _ = self.tx.send(rest).await;
        }
    }
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Sends datagram `i` of every flow at `start + i × interval`, recording the
/// achieved send times. Blocking: runs on its own thread, at its normal
/// priority. Unlike the HTTP open-loop pacer it does not take real-time
/// priority: at 50k datagrams/s a real-time pacer preempts the echo and the
/// proxy it measures, and on a quiet machine the RTT through the proxy went
/// from 0.9–5.3 ms (normal priority) to 59–154 ms with 6 % loss
/// (bench/README.md, session 31); woken for every datagram it also cost more
/// CPU than spinning (16 µs a datagram against 10).
#[allow(clippy::too_many_arguments)]
fn pace(
    sockets: Vec<std::net::UdpSocket>,
    send_times: Vec<SendTimes>,
    run_id: u64,
    count: u64,
    size: usize,
    interval: Duration,
    start: Instant,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> anyhow::Result<Paced> {
    let interval_ns = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
    let mut bufs: Vec<Vec<u8>> = (0u32..)
        .zip(&sockets)
        .map(|(flow, _)| {
            let mut b = vec![0u8; size];
            let h = ProbeHeader {
                run_id,
                flow,
                seq: 0,
                send_ns: 0,
            };
            probe::encode(&h, &mut b).expect("size validated");
            b
        })
        .collect();
    // Each flow's send times were reserved for `count` ([`reserve`]): the
    // hot loop never allocates.
    let mut paced = Paced {
        sent: 0,
        first_send_ns: None,
        lateness_sum_ns: 0.0,
        lateness_max_ns: 0,
    };
    let pacing = Pacing::normal();
    for seq in 0..count {
        let due_ns = interval_ns.saturating_mul(seq);
        let due = start + Duration::from_nanos(due_ns);
        let now = Instant::now();
        if due > now {
            if !pacing.wait_until(due, cancel) {
                break;
            }
        } else if cancel.is_cancelled() {
            break;
        }
        for (flow, socket) in (0u32..).zip(&sockets) {
            let now_ns = elapsed_ns(start);
            let buf = &mut bufs[flow as usize];
            probe::write_header(
                &ProbeHeader {
                    run_id,
                    flow,
                    seq,
                    send_ns: now_ns,
                },
                buf,
            );
            // Recorded before the datagram leaves: its reply may come back
            // (and put the RTT in the same slot) before `send` returns.
            send_times[flow as usize].record(seq, now_ns);
            paced.first_send_ns.get_or_insert(now_ns);
            send(socket, buf, cancel)?;
            let late = now_ns.saturating_sub(due_ns);
            paced.lateness_sum_ns += late as f64;
            paced.lateness_max_ns = paced.lateness_max_ns.max(late);
        }
        paced.sent += 1;
        progress.advance(sockets.len() as u64);
    }
    Ok(paced)
}

/// Sends one datagram on a non-blocking socket: waits out a full send buffer,
/// and skips past the ICMP "port unreachable" a previous send left pending
/// (the datagram then counts as sent, and lost).
fn send(
    socket: &std::net::UdpSocket,
    buf: &[u8],
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let mut refused = 0;
    loop {
        match socket.send(buf) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if cancel.is_cancelled() {
                    return Ok(());
                }
                thread::yield_now();
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && refused < 2 => refused += 1,
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return Ok(()),
            Err(e) => return Err(e).context("cannot send UDP datagram"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replies are read on a clock only when stamped, paced under 1 ms
    /// but not flat out, and with buffer room for four ticks of them.
    #[test]
    fn replies_are_polled_only_when_stamped_fast_and_buffered() {
        let us = Duration::from_micros;
        let four_mib = 8 << 20; // as the kernel reports a 4 MiB buffer
        assert!(polls(true, us(20), 128, four_mib));
        assert!(!polls(false, us(20), 128, four_mib));
        assert!(!polls(true, Duration::ZERO, 128, four_mib));
        assert!(!polls(true, us(1000), 128, four_mib));
        assert!(polls(true, us(999), 128, four_mib));
        // 50 replies a tick of 1152 bytes, four ticks: 230,400 bytes.
        assert!(polls(true, us(20), 128, 230_400));
        assert!(!polls(true, us(20), 128, 230_399));
    }

    /// The kernel's stamp moves a reply's arrival back to when it reached
    /// the socket, never to or before its send: an implausible stamp gives
    /// the receive's own reading.
    #[test]
    fn a_stamp_moves_the_arrival_back_but_never_to_the_send() {
        let us = Duration::from_micros;
        // No stamp: the reading.
        assert_eq!(arrival_ns(1_000, 50_000, None), 50_000);
        // Waited 30 µs in the socket: 30 µs earlier.
        assert_eq!(arrival_ns(1_000, 50_000, Some(us(30))), 20_000);
        assert_eq!(arrival_ns(1_000, 50_000, Some(Duration::ZERO)), 50_000);
        // Waited as long as since the send or longer (a wall clock that
        // stepped forward meanwhile): the reading.
        assert_eq!(arrival_ns(1_000, 50_000, Some(us(49))), 50_000);
        assert_eq!(arrival_ns(1_000, 50_000, Some(us(60))), 50_000);
        assert_eq!(arrival_ns(1_000, 50_000, Some(Duration::MAX)), 50_000);
        // A stamp after the reading (a wall clock stepped back): the reading.
        let clock = BatchClock::read(Instant::now());
        let future = clock.wall + Duration::from_secs(1);
        assert_eq!(clock.arrival_ns(0, Some(future)), clock.recv_ns);
        let past = clock.wall - Duration::from_nanos(clock.recv_ns / 2);
        assert_eq!(
            clock.arrival_ns(0, Some(past)),
            clock.recv_ns - clock.recv_ns / 2
        );
    }

    /// Real sockets: a reply that waited in the probe's socket is timed
    /// from when it arrived there, earlier than the receive's reading by at
    /// least the wait and later than its send; on a socket not asked to
    /// stamp it is timed at the reading.
    #[tokio::test(flavor = "current_thread")]
    async fn a_reply_that_waited_in_the_socket_is_timed_from_its_arrival() {
        let echo = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        echo.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let start = Instant::now();
        let wait = Duration::from_millis(5);
        for stamped in [true, false] {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.connect(echo.local_addr().unwrap()).unwrap();
            let io = UdpIo::new(sock).unwrap();
            let mut batch = RecvBatch::with_slot_bytes(64);
            if stamped {
                io.stamp_arrivals().unwrap();
                batch = batch.with_arrival_stamps();
            }
            let send_ns = elapsed_ns(start);
            io.get_ref().send(b"probe").unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = echo.recv_from(&mut buf).unwrap();
            echo.send_to(&buf[..n], from).unwrap();
            batch.recv_when_ready(&io).await.unwrap();
            // The wait measured: the reply is read `wait` later than the
            // receive found it (and the kernel stamped it before that).
            std::thread::sleep(wait);
            let clock = BatchClock::read(start);
            let (payload, _, arrived) = batch.iter_stamped().next().unwrap();
            assert_eq!(payload, b"probe");
            let at = clock.arrival_ns(send_ns, arrived);
            let wait_ns = wait.as_nanos() as u64;
            if stamped {
                assert!(arrived.is_some(), "the kernel stamps a reply");
                assert!(at > send_ns, "arrival {at} ns after the send {send_ns} ns");
                assert!(
                    at + wait_ns <= clock.recv_ns,
                    "arrival {at} ns at least {wait_ns} ns before the reading {} ns",
                    clock.recv_ns
                );
            } else {
                assert_eq!(arrived, None);
                assert_eq!(at, clock.recv_ns);
            }
        }
    }

    #[test]
    fn listening_ends_a_grace_after_the_last_reply_never_past_the_timeout() {
        let t0 = Instant::now();
        let end = SendEnd { at: t0, sent: 10 };
        let timeout = Duration::from_secs(2);
        let rtt = Duration::from_millis(1);
        // Replies missing: the whole timeout.
        assert_eq!(listen_until(end, timeout, 9, Some(t0), rtt), t0 + timeout);
        // All in: 3 × the largest RTT after the last reply.
        let last = t0 + Duration::from_millis(5);
        assert_eq!(
            listen_until(end, timeout, 10, Some(last), rtt),
            last + rtt * 3
        );
        // A huge RTT never stretches it past the timeout.
        assert_eq!(
            listen_until(end, timeout, 10, Some(last), Duration::from_secs(5)),
            t0 + timeout
        );
        // Nothing sent (cancelled before the first send): done at once.
        let none = SendEnd { at: t0, sent: 0 };
        assert_eq!(listen_until(none, timeout, 0, None, Duration::ZERO), t0);
    }
}
