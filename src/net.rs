//! Binding sockets with errors that name the address and the setting to change.

use std::net::SocketAddr;
use std::num::NonZeroUsize;

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

/// Binds `count` TCP listeners to one address, each with `SO_REUSEPORT`,
/// so that the kernel spreads new connections among them (by a hash of the
/// client's address and port, not by how busy each one is); with port 0
/// the first picks the port and the others take the same. A `count` of one
/// binds as [`bind_tcp`] does. Returns the first and the others.
/// binds as [`bind_tcp`] does, without `SO_REUSEPORT`, so that a second
/// server on the same port is refused rather than joined.
pub async fn bind_tcp_group(
    addr: SocketAddr,
    count: NonZeroUsize,
    hint: &str,
) -> Result<(TcpListener, Vec<TcpListener>), Error> {
    if count.get() == 1 {
        return Ok((bind_tcp(addr, hint).await?, Vec::new()));
    }
    let mut group = Vec::with_capacity(count.get());
    let mut at = addr;
    for _ in 0..count.get() {
        let bound = reuseport_listener(at).map_err(|source| Error::Bind {
            addr: at,
            hint: hint.to_string(),
            source,
        })?;
        if let Ok(local) = bound.local_addr() {
            at.set_port(local.port());
        }
        group.push(bound);
    }
    let first = group.remove(0);
    Ok((first, group))
}

/// One listener of a [`bind_tcp_group`]: dual-stack on the IPv6 wildcard,
/// `SO_REUSEADDR` as tokio sets it, `SO_REUSEPORT`.
fn reuseport_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    if dual_stack(addr) {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
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

/// Datagrams the kernel dropped at a UDP socket because its receive buffer
/// was full (`SO_MEMINFO`'s `SK_MEMINFO_DROPS`, Linux 4.12 and later); `None`
/// where that cannot be read.
pub fn udp_socket_drops<S: std::os::fd::AsFd>(socket: &S) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        const SK_MEMINFO_DROPS: usize = 8;
        let mut info = [0u32; 9];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `info`, a live
        // local of that size, and the length it wrote into `len`.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_fd().as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        (rc == 0 && len as usize > SK_MEMINFO_DROPS * 4).then(|| u64::from(info[SK_MEMINFO_DROPS]))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        None
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket whose small receive buffer overflows counts each datagram
    /// it could not queue: received + dropped = sent.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_receive_buffer_counts_its_drops() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&rx)
            .set_recv_buffer_size(4096)
            .unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        assert_eq!(udp_socket_drops(&rx), Some(0));
        let sent = 200u64;
        for _ in 0..sent {
            tx.send(&[7u8; 1000]).unwrap();
        }
        let mut received = 0u64;
        let mut buf = [0u8; 2048];
        while rx.recv(&mut buf).is_ok() {
            received += 1;
        }
        let dropped = udp_socket_drops(&rx).unwrap();
        assert!(
            dropped > 0 && received > 0,
            "{received} received, {dropped} dropped"
        );
        assert_eq!(received + dropped, sent);
    }

    #[tokio::test]
    async fn a_group_shares_one_port_and_the_kernel_spreads_connections() {
        let three = NonZeroUsize::new(3).unwrap();
        let (first, rest) = bind_tcp_group("127.0.0.1:0".parse().unwrap(), three, "--http")
            .await
            .unwrap();
        let addr = first.local_addr().unwrap();
        assert_eq!(rest.len(), 2);
        for l in &rest {
            assert_eq!(l.local_addr().unwrap(), addr);
        }
        // Every socket of the group gets connections (by the hash of the
        // client's port: 3 × (2/3)^60 odds of one left out after 60).
        let group: Vec<&TcpListener> = std::iter::once(&first).chain(&rest).collect();
        let mut clients = Vec::new();
        for _ in 0..60 {
            clients.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let mut taken = vec![0; group.len()];
        let accept_all = async {
            while taken.iter().sum::<usize>() < 60 {
                let accepts = group.iter().map(|l| Box::pin(l.accept()));
                let (r, i, _) = futures_util::future::select_all(accepts).await;
                r.unwrap();
                taken[i] += 1;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), accept_all)
            .await
            .expect("60 connections accepted");
        assert!(taken.iter().all(|&t| t > 0), "{taken:?}");
        // One socket alone is bound without SO_REUSEPORT: a second server
        // on its port is refused, not joined.
        let (one, none) = bind_tcp_group("127.0.0.1:0".parse().unwrap(), NonZeroUsize::MIN, "x")
            .await
            .unwrap();
        assert!(none.is_empty());
        let taken_port = one.local_addr().unwrap();
        assert!(bind_tcp_group(taken_port, three, "x").await.is_err());
        assert!(
            bind_tcp(addr, "x").await.is_err(),
            "the group's port is in use"
        );
    }
}
