//! The UDP forwarder: each client address gets its own upstream socket (a
//! session), so replies find their way back to the right client. One task
//! reads the listening socket and owns the session table; one task per
//! session reads its upstream socket. Idle sessions are swept periodically.
//! Neither ever waits for a socket's send buffer: a datagram that does not
//! fit is dropped and counted, as a router would, so one stuck client cannot
//! hold back the others.
//!
//! They run on a thread of the forwarder's own ([`OwnThread`]), both
//! directions on one single-threaded runtime. (Round 3 tried that before
//! datagrams were read and sent in batches, and it lost 10.6 % at 50k
//! datagrams/s; with batches it loses none up to 150k–200k on two cores and
//! costs a fifth less CPU than the proxy's multi-threaded runtime;
//! bench/README.md.) With both links transparent (no impairment
//! configured) a datagram is not even shown to the link models.
//!
//! Every datagram crosses two links ([`Links`]): clients ↔ proxy and proxy ↔
//! origin, in the order it travels. Datagrams either link delays go through
//! the proxy's delay line ([`DelayLine`]): its precise timer thread
//! ([`crate::timer`]) holds them by due time and sends each within tens of
//! microseconds of it, not a task or timer per datagram; undelayed
//! datagrams never pass through it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::impair::{Direction, Impairment, Link, Verdict};
use super::{Counters, UdpForwardConfig};
use crate::server::{add, bump};
use crate::timer::Timer;
use crate::udp_batch::{self, RecvBatch, UdpIo};

pub(crate) struct Forwarder {
    socket: Arc<UdpIo>,
    /// The sessions' sockets, for what the kernel dropped at them.
    drops: Arc<SocketDrops>,
    upstream: SocketAddr,
    config: UdpForwardConfig,
    counters: Arc<Counters>,
    links: Links,
    /// Reference point for the sessions' last-activity stamps.
    epoch: Instant,
    /// The table-full warning was logged since the table last had room.
    full_warned: AtomicBool,
    /// Where delayed datagrams wait, both directions.
    line: DelayLine,
}

struct Session {
    upstream: Arc<UdpIo>,
    /// Milliseconds since `epoch` of the last datagram either way.
    last_active: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Forwarder {
    pub(crate) fn new(
        socket: Arc<UdpIo>,
        upstream: SocketAddr,
        config: UdpForwardConfig,
        counters: Arc<Counters>,
        impair: Arc<dyn Impairment>,
        origin_link: Arc<dyn Impairment>,
        timer: Timer<Held>,
    ) -> Self {
        // Bursts from many clients land on this one socket.
        crate::net::grow_udp_buffers(socket.get_ref(), crate::net::UDP_BUFFER);
        Forwarder {
            line: DelayLine {
                timer,
                counters: counters.clone(),
                limit: config.delay_buffer,
            },
            drops: Arc::new(SocketDrops::new(socket.clone())),
            socket,
            upstream,
            config,
            links: Links::new(impair, origin_link, counters.clone()),
            counters,
            epoch: Instant::now(),
            full_warned: AtomicBool::new(false),
        }
    }

    /// What the kernel dropped at the forwarder's sockets, for the counters.
    pub(crate) fn drops(&self) -> Arc<SocketDrops> {
        self.drops.clone()
    }

    fn stamp(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Forwards until `shutdown`, then closes every session.
    pub(crate) async fn run(self, shutdown: CancellationToken, tracker: TaskTracker) {
        let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
        // Sweeping at a quarter of the idle time closes a session at most
        // 25% late, without a timer per session.
        let every =
            (self.config.idle_timeout / 4).clamp(Duration::from_millis(5), Duration::from_secs(1));
        let mut sweep = tokio::time::interval(every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Up to 32 datagrams per system call each way: a busy forwarder
        // drains its queue in batches instead of one readiness round each.
        let mut batch = RecvBatch::new();
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        loop {
            tokio::select! {
                _ = &mut cancelled => break,
                _ = sweep.tick() => self.sweep(&mut sessions),
                r = self.socket.readable() => {
                    if let Err(e) = r {
                        tracing::debug!(target: "netrun::proxy", error = %e, "udp receive failed");
                        continue;
                    }
                    match batch.try_recv(&self.socket) {
                        Ok(_) => self.forward_batch(&batch, &mut sessions, &tracker),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => {
                            // ICMP errors reported on the listening socket: nothing to do.
                            tracing::debug!(target: "netrun::proxy", error = %e, "udp receive failed");
                        }
                    }
                }
            }
        }
        for (client, s) in sessions.drain() {
            s.stop.cancel();
            self.drops.forget(client);
        }
        self.line.discard();
        self.counters
            .udp_sessions_active
            .store(0, Ordering::Relaxed);
    }

    /// Forwards a batch from clients: each datagram crosses the links, the
    /// undelayed ones leave together, one send per run of the same session.
    fn forward_batch(
        &self,
        batch: &RecvBatch,
        sessions: &mut HashMap<SocketAddr, Session>,
        tracker: &TaskTracker,
    ) {
        // (index in the batch, session socket) of what leaves now.
        let mut now: Vec<(usize, Arc<UdpIo>)> = Vec::with_capacity(batch.len());
        for (i, (payload, from)) in batch.iter().enumerate() {
            if let Some(sock) = self.forward(payload, from, sessions, tracker) {
                now.push((i, sock));
            }
        }
        let payloads: Vec<&[u8]> = batch.iter().map(|(p, _)| p).collect();
        for run in now.chunk_by(|a, b| Arc::ptr_eq(&a.1, &b.1)) {
            let msgs: Vec<(&[u8], Option<SocketAddr>)> =
                run.iter().map(|(i, _)| (payloads[*i], None)).collect();
            send_now(
                &self.counters,
                &run[0].1,
                &msgs,
                &self.counters.udp_datagrams_to_upstream,
                &self.counters.udp_bytes_to_upstream,
            );
        }
    }

    /// Takes one datagram from a client across the links: the session's
    /// upstream socket when it is to leave now; `None` when it was dropped
    /// or is held by the delay line.
    fn forward(
        &self,
        payload: &[u8],
        from: SocketAddr,
        sessions: &mut HashMap<SocketAddr, Session>,
        tracker: &TaskTracker,
    ) -> Option<Arc<UdpIo>> {
        if !sessions.contains_key(&from) {
            if sessions.len() >= self.config.max_sessions {
                bump(&self.counters.udp_dropped_table_full);
                // Warn when the table fills, not once per dropped datagram.
                if !self.full_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(target: "netrun::proxy", client = %from, limit = self.config.max_sessions,
                        "udp session table full; datagrams from new clients are dropped (raise --udp-max-sessions)");
                }
                return None;
            }
            match self.open(from, tracker) {
                Ok(s) => {
                    sessions.insert(from, s);
                    bump(&self.counters.udp_sessions_opened);
                    self.counters
                        .udp_sessions_active
                        .store(sessions.len() as u64, Ordering::Relaxed);
                    tracing::info!(target: "netrun::proxy", client = %from, "udp session opened");
                }
                Err(e) => {
                    bump(&self.counters.udp_send_errors);
                    tracing::warn!(target: "netrun::proxy", client = %from, error = %e, "cannot open a udp session");
                    return None;
                }
            }
        }
        let session = sessions.get(&from)?;
        session.last_active.store(self.stamp(), Ordering::Relaxed);
        let (delay, by) = self.links.cross(Direction::ToUpstream, payload.len())?;
        if !delay.is_zero() {
            let dest = Dest::Upstream(session.upstream.clone());
            self.line.hold(delay, by, payload, dest);
            return None;
        }
        Some(session.upstream.clone())
    }

    /// A socket connected to the upstream (so only its replies arrive) and
    /// the task that relays those replies to `client`.
    fn open(&self, client: SocketAddr, tracker: &TaskTracker) -> std::io::Result<Session> {
        let local: IpAddr = match (self.upstream.ip().is_loopback(), self.upstream.is_ipv4()) {
            (true, true) => Ipv4Addr::LOCALHOST.into(),
            (true, false) => Ipv6Addr::LOCALHOST.into(),
            (false, true) => Ipv4Addr::UNSPECIFIED.into(),
            (false, false) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let upstream = std::net::UdpSocket::bind(SocketAddr::new(local, 0))?;
        crate::net::grow_udp_buffers(&upstream, crate::net::UDP_BUFFER);
        upstream.connect(self.upstream)?;
        let upstream = Arc::new(UdpIo::new(upstream)?);
        self.drops.watch(client, upstream.clone());
        let session = Session {
            upstream,
            last_active: Arc::new(AtomicU64::new(self.stamp())),
            stop: CancellationToken::new(),
        };
        let relay = Relay {
            upstream: session.upstream.clone(),
            client_socket: self.socket.clone(),
            client,
            last_active: session.last_active.clone(),
            counters: self.counters.clone(),
            links: self.links.clone(),
            epoch: self.epoch,
            line: self.line.clone(),
        };
        tracker.spawn(relay.run(session.stop.clone()));
        Ok(session)
    }

    fn sweep(&self, sessions: &mut HashMap<SocketAddr, Session>) {
        let now = self.stamp();
        let idle = self.config.idle_timeout.as_millis() as u64;
        let before = sessions.len();
        sessions.retain(|client, s| {
            let keep = now.saturating_sub(s.last_active.load(Ordering::Relaxed)) < idle;
            if !keep {
                s.stop.cancel();
                self.drops.forget(*client);
                tracing::info!(target: "netrun::proxy", %client, "udp session expired");
            }
            keep
        });
        let expired = (before - sessions.len()) as u64;
        if expired > 0 {
            self.full_warned.store(false, Ordering::Relaxed);
            add(&self.counters.udp_sessions_expired, expired);
            self.counters
                .udp_sessions_active
                .store(sessions.len() as u64, Ordering::Relaxed);
        }
    }
}

/// What the kernel dropped at the forwarder's sockets because their
/// receive buffers were full (the forwarder fell behind): the listening
/// socket's, each open session's, and what closed sessions' had dropped.
/// Read when the proxy's counters are (`SO_MEMINFO`, Linux; 0 elsewhere).
pub(crate) struct SocketDrops {
    listening: Arc<UdpIo>,
    state: Mutex<Sessions>,
}

#[derive(Default)]
struct Sessions {
    open: HashMap<SocketAddr, Arc<UdpIo>>,
    closed: u64,
}

impl SocketDrops {
    fn new(listening: Arc<UdpIo>) -> Self {
        SocketDrops {
            listening,
            state: Mutex::new(Sessions::default()),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn watch(&self, client: SocketAddr, socket: Arc<UdpIo>) {
        self.sessions().open.insert(client, socket);
    }

    /// A session closed: what its socket dropped is kept, the socket not.
    fn forget(&self, client: SocketAddr) {
        let mut st = self.sessions();
        if let Some(socket) = st.open.remove(&client) {
            st.closed += drops(socket.get_ref());
        }
    }

    /// Everything dropped so far, every socket together.
    pub(crate) fn total(&self) -> u64 {
        let st = self.sessions();
        let open: u64 = st.open.values().map(|s| drops(s.get_ref())).sum();
        drops(self.listening.get_ref()) + st.closed + open
    }
}

fn drops(socket: &std::net::UdpSocket) -> u64 {
    crate::net::udp_socket_drops(socket).unwrap_or(0)
}

/// Where the forwarder runs: on a thread of its own with a single-threaded
/// runtime, or on the proxy's runtime. On its own thread a datagram wakes
/// only that thread; on the proxy's multi-threaded runtime the worker that
/// read it often woke another to share the work (a futex call about every
/// fourth datagram at 50k/s and a second thread's wake-up), which cost the
/// proxy 14 µs of CPU a datagram against 11 on its own thread
/// (bench/README.md, session 34). One thread takes both directions: two
/// (one per direction) cost 16–17 µs, each waking for its own half. It
/// saturates sooner flat out (6.7 % lost at 300k datagrams/s against 1 %,
/// none at 150k–200k). A scenario whose UDP workloads do not go through the
/// proxy keeps it on the proxy's runtime: one thread fewer to start.
pub(crate) struct OwnThread {
    own: Option<tokio::runtime::Runtime>,
}

impl OwnThread {
    pub(crate) fn new(own: bool) -> std::io::Result<Self> {
        let own = if own {
            Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
            )
        } else {
            None
        };
        Ok(OwnThread { own })
    }

    /// While the guard lives, a socket made ready for the forwarder is
    /// watched by the runtime that will read it.
    pub(crate) fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.own.as_ref().map(|rt| rt.enter())
    }
}

impl Forwarder {
    /// Forwards until `shutdown` where `place` says; its own thread, when
    /// it has one, counts in `tracker` until it ends.
    pub(crate) fn start(
        self,
        place: OwnThread,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> std::io::Result<()> {
        let Some(runtime) = place.own else {
            tracker.spawn(self.run(shutdown, tracker.clone()));
            return Ok(());
        };
        let running = tracker.token();
        std::thread::Builder::new()
            .name("netrun-udp".into())
            .spawn(move || {
                // Sessions' relays are spawned on this runtime and end
                // with the forwarder's run (it cancels them) or with it.
                runtime.block_on(self.run(shutdown, tracker));
                drop(runtime);
                drop(running);
            })?;
        Ok(())
    }
}

/// Relays one session's upstream replies back to its client.
struct Relay {
    upstream: Arc<UdpIo>,
    client_socket: Arc<UdpIo>,
    client: SocketAddr,
    last_active: Arc<AtomicU64>,
    counters: Arc<Counters>,
    links: Links,
    epoch: Instant,
    line: DelayLine,
}

thread_local! {
    /// One receive batch per runtime thread, shared by the sessions' relays:
    /// a relay uses it only between two awaits, and a batch per session
    /// would cost 2 MiB each.
    static RELAY_BATCH: RefCell<RecvBatch> = RefCell::new(RecvBatch::new());
}

impl Relay {
    async fn run(self, stop: CancellationToken) {
        let stopped = stop.cancelled();
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                r = self.upstream.readable() => if let Err(e) = r {
                    tracing::debug!(target: "netrun::proxy", client = %self.client, error = %e, "udp upstream error");
                    continue;
                },
            }
            RELAY_BATCH.with(|b| self.relay(&mut b.borrow_mut()));
        }
    }

    /// Relays what the upstream socket holds (a batch) to the client.
    fn relay(&self, batch: &mut RecvBatch) {
        match batch.try_recv(&self.upstream) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) => {
                // Typically ECONNREFUSED: an earlier datagram met a closed port.
                bump(&self.counters.udp_send_errors);
                tracing::debug!(target: "netrun::proxy", client = %self.client, error = %e, "udp upstream error");
                return;
            }
        }
        self.last_active
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let mut now: Vec<(&[u8], Option<SocketAddr>)> = Vec::with_capacity(batch.len());
        for (payload, _) in batch.iter() {
            let Some((delay, by)) = self.links.cross(Direction::ToClient, payload.len()) else {
                continue;
            };
            if delay.is_zero() {
                now.push((payload, Some(self.client)));
            } else {
                let dest = Dest::Client(self.client_socket.clone(), self.client);
                self.line.hold(delay, by, payload, dest);
            }
        }
        // The listening socket is shared by every session: waiting on it
        // here would let one client's burst hold back the others' replies.
        send_now(
            &self.counters,
            &self.client_socket,
            &now,
            &self.counters.udp_datagrams_to_client,
            &self.counters.udp_bytes_to_client,
        );
    }
}

/// The two links every datagram crosses, and the counters of what each did.
#[derive(Clone)]
struct Links {
    /// Clients ↔ proxy.
    clients: Arc<dyn Impairment>,
    /// Proxy ↔ origin.
    origin: Arc<dyn Impairment>,
    counters: Arc<Counters>,
    /// Neither link can ever act: every datagram passes at once, unasked.
    transparent: bool,
}

/// Which links held a datagram back: each counts it as delayed once the
/// delay line holds it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct DelayedBy {
    clients: bool,
    origin: bool,
}

impl Links {
    fn new(
        clients: Arc<dyn Impairment>,
        origin: Arc<dyn Impairment>,
        counters: Arc<Counters>,
    ) -> Self {
        Links {
            transparent: clients.is_transparent() && origin.is_transparent(),
            clients,
            origin,
            counters,
        }
    }

    /// Takes a datagram of `len` bytes across both links going `dir`, in
    /// the order it meets them: the second link sees it arrive once the
    /// first has delayed it, so its rate queue starts from then. `None`:
    /// a link dropped it (counted on that link). Otherwise the total delay
    /// (zero: forward now) and which links delayed it.
    fn cross(&self, dir: Direction, len: usize) -> Option<(Duration, DelayedBy)> {
        if self.transparent {
            return Some((Duration::ZERO, DelayedBy::default()));
        }
        let order = match dir {
            Direction::ToUpstream => [Link::ClientsProxy, Link::ProxyOrigin],
            Direction::ToClient => [Link::ProxyOrigin, Link::ClientsProxy],
        };
        let now = std::time::Instant::now();
        let mut total = Duration::ZERO;
        let mut by = DelayedBy::default();
        for link in order {
            let (model, dropped) = match link {
                Link::ClientsProxy => (&self.clients, &self.counters.udp_dropped_impairment),
                Link::ProxyOrigin => (&self.origin, &self.counters.origin_link_udp_dropped),
            };
            match model.datagram_arriving(dir, len, now + total) {
                Verdict::Forward => {}
                Verdict::Drop => {
                    bump(dropped);
                    return None;
                }
                Verdict::Delay(d) => {
                    total += d;
                    match link {
                        Link::ClientsProxy => by.clients = true,
                        Link::ProxyOrigin => by.origin = true,
                    }
                }
            }
        }
        Some((total, by))
    }
}

/// Most entries the proxy's timer holds at once (datagrams and delayed
/// HTTP messages); past it new datagrams are dropped as a full buffer.
const LINE_MAX_HELD: usize = 65_536;

/// The precise timer behind a proxy's delays: it sends each held datagram
/// when due, and wakes delayed HTTP messages ([`Timer::sleep`]).
pub(crate) fn delay_timer(counters: Arc<Counters>) -> Timer<Held> {
    Timer::new("netrun-delay", LINE_MAX_HELD, move |h| {
        send_held(&counters, h)
    })
}

/// Where a held datagram goes once due.
enum Dest {
    /// A session's socket, connected to the upstream.
    Upstream(Arc<UdpIo>),
    /// The listening socket, to this client.
    Client(Arc<UdpIo>, SocketAddr),
}

/// A datagram waiting in the delay line.
pub(crate) struct Held {
    payload: Bytes,
    dest: Dest,
}

/// The sending side of a forwarder's delay line.
#[derive(Clone)]
struct DelayLine {
    timer: Timer<Held>,
    counters: Arc<Counters>,
    /// Most payload bytes held at once (`--udp-delay-buffer`), whatever the
    /// delay and the datagrams' sizes: a long delay would otherwise grow the
    /// proxy by the whole traffic of that delay.
    limit: u64,
}

impl DelayLine {
    /// Queues a copy of `payload` for `dest` in `delay`; never waits. Past
    /// the byte limit the datagram is tail-dropped (counted), as a router
    /// with a full queue would; the line counts it as delayed once held, or
    /// as a buffer-full drop if the timer holds too many entries.
    fn hold(&self, delay: Duration, by: DelayedBy, payload: &[u8], dest: Dest) {
        let due = std::time::Instant::now() + delay;
        let n = payload.len() as u64;
        let reserved = self.counters.udp_delay_bytes.fetch_update(
            Ordering::Relaxed,
            Ordering::Relaxed,
            |held| (held + n <= self.limit).then_some(held + n),
        );
        if reserved.is_err() {
            bump(&self.counters.udp_dropped_delay_full);
            return;
        }
        let held = Held {
            payload: Bytes::copy_from_slice(payload),
            dest,
        };
        if self.timer.at(due, held).is_err() {
            release(&self.counters, n);
            bump(&self.counters.udp_dropped_buffer_full);
            return;
        }
        if by.clients {
            bump(&self.counters.udp_delayed_impairment);
        }
        if by.origin {
            bump(&self.counters.origin_link_udp_delayed);
        }
    }

    /// Drops the datagrams still held (at shutdown), giving back their bytes.
    fn discard(&self) {
        self.timer.retain(|h| {
            release(&self.counters, h.payload.len() as u64);
            false
        });
    }
}

/// Gives back the delay line's byte budget of a datagram sent or dropped.
fn release(counters: &Counters, n: u64) {
    counters.udp_delay_bytes.fetch_sub(n, Ordering::Relaxed);
}

fn send_held(counters: &Counters, h: Held) {
    let n = h.payload.len() as u64;
    release(counters, n);
    let (r, sent, bytes) = match &h.dest {
        Dest::Upstream(sock) => (
            sock.get_ref().send(&h.payload),
            &counters.udp_datagrams_to_upstream,
            &counters.udp_bytes_to_upstream,
        ),
        Dest::Client(sock, to) => (
            sock.get_ref().send_to(&h.payload, *to),
            &counters.udp_datagrams_to_client,
            &counters.udp_bytes_to_client,
        ),
    };
    match send_or_drop(counters, r) {
        Sent::Yes => {
            bump(sent);
            add(bytes, n);
        }
        Sent::BufferFull => {}
        Sent::Failed(e) => {
            tracing::debug!(target: "netrun::proxy", error = %e, "udp send of a delayed datagram failed");
        }
    }
}

/// Sends `msgs` on `sock` at once, never waiting, counting each in `sent`
/// and `bytes`: what does not fit in the socket's buffer is dropped and
/// counted, as a router would, so one stuck client cannot hold back others.
fn send_now(
    counters: &Counters,
    sock: &UdpIo,
    msgs: &[(&[u8], Option<SocketAddr>)],
    sent: &AtomicU64,
    bytes: &AtomicU64,
) {
    let mut i = 0;
    while i < msgs.len() {
        match udp_batch::try_send(sock, &msgs[i..]) {
            Ok(k) => {
                let k = k.max(1).min(msgs.len() - i);
                add(sent, k as u64);
                add(
                    bytes,
                    msgs[i..i + k].iter().map(|(p, _)| p.len() as u64).sum(),
                );
                i += k;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                add(&counters.udp_dropped_buffer_full, (msgs.len() - i) as u64);
                return;
            }
            Err(e) => {
                bump(&counters.udp_send_errors);
                tracing::debug!(target: "netrun::proxy", to = ?msgs[i].1, error = %e, "udp send failed");
                i += 1;
            }
        }
    }
}

/// What became of a datagram handed to a non-blocking send.
#[derive(Debug)]
enum Sent {
    Yes,
    /// The socket's send buffer was full: dropped (counted).
    BufferFull,
    /// Any other failure (counted as a send error).
    Failed(std::io::Error),
}

/// Counts a non-blocking send's outcome: a full buffer is a drop, anything
/// else but success a send error.
fn send_or_drop(counters: &Counters, r: std::io::Result<usize>) -> Sent {
    match r {
        Ok(_) => Sent::Yes,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            bump(&counters.udp_dropped_buffer_full);
            Sent::BufferFull
        }
        Err(e) => {
            bump(&counters.udp_send_errors);
            Sent::Failed(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::UdpSocket;

    use super::super::impair::{LinkConfig, LinkModel};
    use super::*;

    /// A send that would block is dropped and counted at once; the loop
    /// never waits for that socket. A socket the runtime has not yet seen
    /// writable answers `try_send` exactly as a full one does, which makes
    /// the full-buffer case reproducible (on loopback a real UDP send buffer
    /// hardly ever fills).
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_send_buffer_drops_the_datagram_instead_of_waiting() {
        let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let counters = Counters::default();
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.connect(target.local_addr().unwrap()).await.unwrap();
        let r = send_or_drop(&counters, sock.try_send(b"x"));
        assert!(matches!(r, Sent::BufferFull), "{r:?}");
        assert_eq!(counters.udp_dropped_buffer_full.load(Ordering::Relaxed), 1);
        assert_eq!(counters.udp_send_errors.load(Ordering::Relaxed), 0);

        // Once writable (as `open` waits for), datagrams go through.
        sock.writable().await.unwrap();
        assert!(matches!(
            send_or_drop(&counters, sock.try_send(b"y")),
            Sent::Yes
        ));
        let mut buf = [0u8; 8];
        let n = target.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"y");

        // Other failures are send errors, not drops.
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            send_or_drop(&counters, Err(refused)),
            Sent::Failed(_)
        ));
        assert_eq!(counters.udp_send_errors.load(Ordering::Relaxed), 1);
    }

    /// Held datagrams leave by due time, whatever order they came in, from
    /// the timer's thread, never before it; each is counted as delayed and
    /// then as sent. At shutdown what is still held is dropped and its bytes
    /// given back.
    #[tokio::test(flavor = "current_thread")]
    async fn the_delay_line_releases_datagrams_by_due_time() {
        let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(target.local_addr().unwrap()).unwrap();
        let sock = Arc::new(UdpIo::new(sock).unwrap());
        let counters = Arc::new(Counters::default());
        let line = DelayLine {
            timer: delay_timer(counters.clone()),
            counters: counters.clone(),
            limit: 1 << 20,
        };
        let by = DelayedBy {
            clients: true,
            origin: false,
        };
        let t0 = std::time::Instant::now();
        for (ms, name) in [(40, "c"), (10, "a"), (25, "b")] {
            line.hold(
                Duration::from_millis(ms),
                by,
                name.as_bytes(),
                Dest::Upstream(sock.clone()),
            );
        }
        let mut buf = [0u8; 8];
        let mut order = Vec::new();
        for want in [10, 25, 40] {
            let n = target.recv(&mut buf).await.unwrap();
            // Never early: at least the asked delay after the hold.
            assert!(t0.elapsed() >= Duration::from_millis(want));
            order.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(order, ["a", "b", "c"]);
        assert_eq!(counters.udp_delayed_impairment.load(Ordering::Relaxed), 3);
        assert_eq!(
            counters.udp_datagrams_to_upstream.load(Ordering::Relaxed),
            3
        );
        assert_eq!(counters.udp_delay_bytes.load(Ordering::Relaxed), 0);

        line.hold(Duration::from_secs(60), by, b"late", Dest::Upstream(sock));
        assert_eq!(counters.udp_delay_bytes.load(Ordering::Relaxed), 4);
        line.discard();
        assert!(line.timer.is_empty());
        assert_eq!(counters.udp_delay_bytes.load(Ordering::Relaxed), 0);
    }

    /// Past `--udp-delay-buffer` bytes held, datagrams are tail-dropped.
    #[tokio::test(flavor = "current_thread")]
    async fn the_delay_line_holds_at_most_its_byte_limit() {
        let target = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sock = Arc::new(UdpIo::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap());
        let counters = Arc::new(Counters::default());
        let line = DelayLine {
            timer: delay_timer(counters.clone()),
            counters: counters.clone(),
            limit: 10,
        };
        let to = target.local_addr().unwrap();
        for _ in 0..3 {
            let dest = Dest::Client(sock.clone(), to);
            line.hold(Duration::from_secs(60), DelayedBy::default(), b"1234", dest);
        }
        assert_eq!(counters.udp_dropped_delay_full.load(Ordering::Relaxed), 1);
        assert_eq!(counters.udp_delay_bytes.load(Ordering::Relaxed), 8);
        assert_eq!(line.timer.len(), 2);
    }

    fn links(clients: LinkConfig, origin: LinkConfig) -> Links {
        Links::new(
            Arc::new(LinkModel::on(Link::ClientsProxy, clients)),
            Arc::new(LinkModel::on(Link::ProxyOrigin, origin)),
            Arc::new(Counters::default()),
        )
    }

    #[test]
    fn a_datagram_pays_both_links_and_a_drop_counts_on_its_link() {
        let ms = Duration::from_millis;
        let delay = |d| LinkConfig {
            delay: d,
            ..LinkConfig::default()
        };
        let l = links(delay(ms(3)), delay(ms(5)));
        let both = DelayedBy {
            clients: true,
            origin: true,
        };
        assert_eq!(l.cross(Direction::ToUpstream, 10), Some((ms(8), both)));
        assert_eq!(l.cross(Direction::ToClient, 10), Some((ms(8), both)));

        let only_origin = links(LinkConfig::default(), delay(ms(5)));
        let (d, by) = only_origin.cross(Direction::ToClient, 10).unwrap();
        assert_eq!((d, by.clients, by.origin), (ms(5), false, true));

        let lossy = LinkConfig {
            loss_percent: 100.0,
            ..LinkConfig::default()
        };
        let l = links(LinkConfig::default(), lossy);
        assert_eq!(l.cross(Direction::ToUpstream, 10), None);
        assert_eq!(
            l.counters.origin_link_udp_dropped.load(Ordering::Relaxed),
            1
        );
        assert_eq!(l.counters.udp_dropped_impairment.load(Ordering::Relaxed), 0);
        // The clients' link meets a reply last, an upstream datagram first.
        let l = links(lossy, lossy);
        assert_eq!(l.cross(Direction::ToClient, 10), None);
        assert_eq!(
            l.counters.origin_link_udp_dropped.load(Ordering::Relaxed),
            1
        );
        assert_eq!(l.cross(Direction::ToUpstream, 10), None);
        assert_eq!(l.counters.udp_dropped_impairment.load(Ordering::Relaxed), 1);
    }
}
