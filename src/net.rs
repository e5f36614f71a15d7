//! Binding sockets with errors that name the address and the setting to change.

use std::net::SocketAddr;

use tokio::net::{TcpListener, UdpSocket};

use crate::error::Error;

/// Binds a TCP listener; `hint` names the flag or scenario key that sets `addr`.
pub async fn bind_tcp(addr: SocketAddr, hint: &str) -> Result<TcpListener, Error> {
    let bound = if dual_stack(addr) {
        dual_stack_socket(addr, socket2::Type::STREAM).and_then(|s| {
            s.listen(1024)?;
            TcpListener::from_std(s.into())
        })
    } else {
        TcpListener::bind(addr).await
    };
    bound.map_err(|source| Error::Bind {
        addr,
        hint: hint.to_string(),
        source,
    })
}

/// Binds a UDP socket; `hint` names the flag or scenario key that sets `addr`.
pub async fn bind_udp(addr: SocketAddr, hint: &str) -> Result<UdpSocket, Error> {
    let bound = if dual_stack(addr) {
        dual_stack_socket(addr, socket2::Type::DGRAM).and_then(|s| UdpSocket::from_std(s.into()))
    } else {
        UdpSocket::bind(addr).await
    };
    bound.map_err(|source| Error::Bind {
        addr,
        hint: hint.to_string(),
        source,
    })
}

/// The IPv6 wildcard (`[::]`) listens dual-stack: IPv4 clients too.
fn dual_stack(addr: SocketAddr) -> bool {
    addr.is_ipv6() && addr.ip().is_unspecified()
}

/// A non-blocking socket bound to the IPv6 wildcard with `IPV6_V6ONLY`
/// off, whatever `net.ipv6.bindv6only` says, so IPv4 clients reach it as
/// `::ffff:a.b.c.d`; `SO_REUSEADDR` as tokio sets it for TCP listeners.
fn dual_stack_socket(addr: SocketAddr, kind: socket2::Type) -> std::io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(socket2::Domain::IPV6, kind, None)?;
    socket.set_only_v6(false)?;
    if kind == socket2::Type::STREAM {
        socket.set_reuse_address(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Largest UDP payload over IPv4 (65 535 − 8 bytes of UDP header − 20 of IP
/// header): the biggest datagram a probe sends or the proxy forwards.
pub const MAX_DATAGRAM: usize = 65_507;

/// Kernel buffer size netrun asks for on every UDP socket it opens.
pub const UDP_BUFFER: usize = 4 << 20;

/// Asks for larger kernel buffers on a UDP socket, so a burst of big
/// datagrams is queued rather than dropped: one 64 KiB datagram takes about
/// 128 KiB of buffer, and the usual default is ~208 KiB. Best effort: the
/// kernel caps the size (`net.core.rmem_max` / `wmem_max` on Linux).
pub fn grow_udp_buffers<S: std::os::fd::AsFd>(socket: &S, bytes: usize) {
    let sock = socket2::SockRef::from(socket);
    if let Err(e) = sock.set_recv_buffer_size(bytes) {
        tracing::debug!(error = %e, "cannot enlarge the UDP receive buffer");
    }
    if let Err(e) = sock.set_send_buffer_size(bytes) {
        tracing::debug!(error = %e, "cannot enlarge the UDP send buffer");
    }
}

/// Resolves `HOST:PORT` (a name such as `localhost` is allowed) to one address.
pub async fn resolve(target: &str, what: &str) -> Result<SocketAddr, Error> {
    if let Ok(addr) = target.parse() {
        return Ok(addr);
    }
    let mut addrs = tokio::net::lookup_host(target).await.map_err(|e| {
        Error::input(format!(
            "{what} `{target}` is not a HOST:PORT address that resolves ({e}); write e.g. 127.0.0.1:9000"
        ))
    })?;
    addrs
        .next()
        .ok_or_else(|| Error::input(format!("{what} `{target}` resolves to no address")))
}

/// The process's open-file limit (the soft `RLIMIT_NOFILE`), which bounds
/// the sockets it can hold at once; `None` when unknown or unlimited.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}
