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

/// Largest UDP payload over IPv4 (65535 − 8 UDP − 20 IP header bytes);
/// the buffer is a little larger so nothing is ever truncated.
const BUF: usize = 65535;
/// Peers remembered for the "new sender" log line; past it the set restarts.
const MAX_REMEMBERED_PEERS: usize = 4096;

/// A running UDP echo service.
pub struct UdpEcho {
    addr: SocketAddr,
    counters: Arc<Counters>,
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
}

impl fmt::Display for UdpStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "udp: {} datagrams echoed ({} bytes), {} send errors",
            self.datagrams_echoed, self.bytes_echoed, self.send_errors
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
    crate::net::grow_udp_buffers(&socket, crate::net::UDP_BUFFER);
    let counters = Arc::new(Counters::default());
    tracker.spawn(echo(socket, shutdown, counters.clone()));
    Ok(UdpEcho { addr, counters })
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
        }
    }
}

async fn echo(socket: UdpSocket, shutdown: CancellationToken, counters: Arc<Counters>) {
    // One buffer, one loop: replies leave in arrival order, so the echo adds
    // no reordering of its own to what a probe measures.
    let mut buf = vec![0u8; BUF];
    let mut seen: HashSet<SocketAddr> = HashSet::new();
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(got) => got,
                Err(e) => {
                    // E.g. an ICMP error reported on some platforms: it
                    // concerns one peer, never the service.
                    counters.recv_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(target: LOG_TARGET, error = %e, "udp receive failed");
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        if seen.len() >= MAX_REMEMBERED_PEERS {
            seen.clear();
        }
        if seen.insert(peer) {
            tracing::info!(target: LOG_TARGET, %peer, bytes = n, "udp echo: new sender");
        }
        // An unconnected socket never waits for one peer: send_to only
        // waits for room in the local send buffer.
        match socket.send_to(&buf[..n], peer).await {
            Ok(_) => {
                counters.datagrams.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => {
                counters.send_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target: LOG_TARGET, %peer, error = %e, "udp echo send failed");
            }
        }
    }
    tracing::debug!(target: LOG_TARGET, "udp echo stopped");
}
