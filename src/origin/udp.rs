//! UDP echo: every datagram goes back to its sender unchanged. One loop
//! owns the socket and never waits on a particular peer, so a flood from one
//! sender cannot hold back the replies to another beyond its share.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::LOG_TARGET;
use crate::udp_batch::{self, RecvBatch, UdpIo};

/// Peers remembered for the "new sender" log line; past it the set restarts.
const MAX_REMEMBERED_PEERS: usize = 4096;

/// A running UDP echo service.
pub struct UdpEcho {
    addr: SocketAddr,
    counters: Arc<Counters>,
    /// The echo's socket, to ask the kernel what it dropped.
    watched: std::net::UdpSocket,
}

/// A snapshot of the UDP echo counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct UdpStats {
    /// Datagrams received and sent back.
    pub datagrams_echoed: u64,
    /// Payload bytes sent back.
    pub bytes_echoed: u64,
    /// Datagrams whose echo could not be sent (e.g. the sender went away).
    pub send_errors: u64,
    /// Failed receives (the loop carries on).
    pub recv_errors: u64,
    /// Datagrams the kernel dropped at the echo's socket, its receive
    /// buffer full (the echo fell behind); never echoed, so a probe counts
    /// them lost. Linux; 0 elsewhere.
    pub receive_drops: u64,
}

impl fmt::Display for UdpStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "udp: {} datagrams echoed ({} bytes), {} send errors, {} dropped with the receive buffer full",
            self.datagrams_echoed, self.bytes_echoed, self.send_errors, self.receive_drops
        )
    }
}

#[derive(Debug, Default)]
struct Counters {
    datagrams: AtomicU64,
    bytes: AtomicU64,
    send_errors: AtomicU64,
    recv_errors: AtomicU64,
}

/// Starts echoing on `socket` until `shutdown` is cancelled; the loop runs
/// on `tracker`.
pub fn spawn(
    socket: UdpSocket,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> std::io::Result<UdpEcho> {
    let addr = socket.local_addr()?;
    // Watched for readability only: a send never wakes the runtime.
    let socket = UdpIo::from_tokio(socket)?;
    crate::net::grow_udp_buffers(socket.get_ref(), crate::net::UDP_BUFFER);
    let watched = socket.get_ref().try_clone()?;
    let counters = Arc::new(Counters::default());
    tracker.spawn(echo(socket, shutdown, counters.clone()));
    Ok(UdpEcho {
        addr,
        counters,
        watched,
    })
}

impl UdpEcho {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> UdpStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        UdpStats {
            datagrams_echoed: get(&self.counters.datagrams),
            bytes_echoed: get(&self.counters.bytes),
            send_errors: get(&self.counters.send_errors),
            recv_errors: get(&self.counters.recv_errors),
            receive_drops: crate::net::udp_socket_drops(&self.watched).unwrap_or(0),
        }
    }
}

async fn echo(socket: UdpIo, shutdown: CancellationToken, counters: Arc<Counters>) {
    // One batch, one loop: replies leave in arrival order, so the echo adds
    // no reordering of its own to what a probe measures. A batch drains up
    // to 32 queued datagrams in one system call and answers them in one.
    let mut batch = RecvBatch::new();
    let mut seen: HashSet<SocketAddr> = HashSet::new();
    loop {
        tokio::select! {
            r = socket.readable() => if let Err(e) = r {
                counters.recv_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target: LOG_TARGET, error = %e, "udp receive failed");
                continue;
            },
            _ = shutdown.cancelled() => break,
        }
        match batch.try_recv(&socket) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                // E.g. an ICMP error reported on some platforms: it
                // concerns one peer, never the service.
                counters.recv_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target: LOG_TARGET, error = %e, "udp receive failed");
                continue;
            }
        }
        let replies: Vec<(&[u8], Option<SocketAddr>)> =
            batch.iter().map(|(p, from)| (p, Some(from))).collect();
        for &(p, peer) in &replies {
            let Some(peer) = peer else { continue };
            if seen.len() >= MAX_REMEMBERED_PEERS {
                seen.clear();
            }
            if seen.insert(peer) {
                tracing::info!(target: LOG_TARGET, %peer, bytes = p.len(), "udp echo: new sender");
            }
        }
        if !send_all(&socket, &replies, &counters, &shutdown).await {
            break;
        }
    }
    tracing::debug!(target: LOG_TARGET, "udp echo stopped");
}

/// Sends every reply, waiting for room in the local send buffer (an
/// unconnected socket never waits for one peer). False if `shutdown` came
/// first.
async fn send_all(
    socket: &UdpIo,
    replies: &[(&[u8], Option<SocketAddr>)],
    counters: &Counters,
    shutdown: &CancellationToken,
) -> bool {
    let mut sent = 0;
    while sent < replies.len() {
        match udp_batch::try_send(socket, &replies[sent..]) {
            Ok(k) => {
                let bytes: usize = replies[sent..sent + k].iter().map(|(p, _)| p.len()).sum();
                counters.datagrams.fetch_add(k as u64, Ordering::Relaxed);
                counters.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                sent += k;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tokio::select! {
                    _ = socket.writable() => {}
                    _ = shutdown.cancelled() => return false,
                }
            }
            Err(e) => {
                counters.send_errors.fetch_add(1, Ordering::Relaxed);
                let peer = replies[sent].1;
                tracing::debug!(target: LOG_TARGET, ?peer, error = %e, "udp echo send failed");
                sent += 1;
            }
        }
    }
    true
}
