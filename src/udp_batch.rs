//! Batched UDP I/O on a tokio socket: on Linux one `recvmmsg` drains up to
//! [`SLOTS`] queued datagrams and one `sendmmsg` sends a batch, instead of a
//! system call (and a readiness round) per datagram; elsewhere the same
//! calls move one datagram at a time. Neither ever waits: both say
//! `WouldBlock` when the socket has nothing to give or no room. The sockets
//! are [`UdpIo`]s: watched by the runtime for readability only.

use std::io;
use std::net::SocketAddr;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A UDP socket the runtime watches for readability only. tokio's own
/// `UdpSocket` registers for writability too, and then every datagram sent
/// raises an `EPOLLOUT` edge once the kernel frees its buffer (on loopback
/// at once): a turn of the reactor per send, and a wake-up of a runtime
/// thread parked in `epoll_wait` (the probe's, whose pacer sends on a clone
/// of the socket) for nothing. The forwarder, the echo and the probe never
/// wait to send, or wait rarely ([`UdpIo::writable`]).
#[derive(Debug)]
pub struct UdpIo {
    fd: AsyncFd<std::net::UdpSocket>,
}

impl UdpIo {
    /// Registers `socket` (made non-blocking) with the current runtime.
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        // SAFETY: the AsyncFd owns the socket, so its descriptor stays open
        // and the same for the AsyncFd's whole life.
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE)? };
        Ok(UdpIo { fd })
    }

    /// A tokio socket moved over (its registration dropped).
    pub fn from_tokio(socket: tokio::net::UdpSocket) -> io::Result<Self> {
        Self::new(socket.into_std()?)
    }

    /// The socket, for calls that do not wait (sends, addresses).
    pub fn get_ref(&self) -> &std::net::UdpSocket {
        self.fd.get_ref()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.get_ref().local_addr()
    }

    /// Waits until the runtime has seen the socket readable (at once if it
    /// already has and no receive since found it empty).
    pub async fn readable(&self) -> io::Result<()> {
        self.fd.readable().await.map(drop)
    }

    /// Waits until the socket has room to send: for the rare full send
    /// buffer. A clone of the descriptor is watched for writability for
    /// just this wait (epoll tells it at once if there is room already), so
    /// the socket's own registration stays read-only.
    pub async fn writable(&self) -> io::Result<()> {
        let clone = self.get_ref().try_clone()?;
        // SAFETY: as in `new`, the AsyncFd owns the clone.
        let fd = unsafe { AsyncFd::register_with_interest(clone, Interest::WRITABLE)? };
        fd.writable().await.map(drop)
    }
}

/// Datagrams received (or sent) per system call at most.
pub const SLOTS: usize = 32;

/// Room for any UDP payload (IPv4's largest is 65 507 bytes).
const SLOT_BYTES: usize = 1 << 16;

/// Receive buffers for up to [`SLOTS`] datagrams (2 MiB, one allocation cut
/// into slots) and what the last [`RecvBatch::try_recv`] put in them. One
/// zeroed allocation this large comes straight from the kernel's zero pages:
/// nothing is written (or paged in) until datagrams land, so a service that
/// never sees UDP traffic never pays for the buffers (slot by slot, the
/// memset and page faults of 32 smaller buffers cost ~1 ms at start-up).
pub struct RecvBatch {
    buf: Box<[u8]>,
    /// Bytes per slot: the largest datagram a slot takes whole.
    slot: usize,
    /// (slot, length, sender) of each datagram received.
    got: Vec<(usize, usize, SocketAddr)>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> Self {
        Self::with_slot_bytes(SLOT_BYTES)
    }

    /// A batch whose slots take datagrams of up to `slot` bytes (at least
    /// 1, at most any UDP payload): for a receiver that knows what it
    /// expects, such as the probe, whose replies are its own datagrams. A
    /// longer datagram is cut to `slot` bytes.
    pub fn with_slot_bytes(slot: usize) -> Self {
        let slot = slot.clamp(1, SLOT_BYTES);
        let slots = if cfg!(target_os = "linux") { SLOTS } else { 1 };
        RecvBatch {
            buf: vec![0u8; slots * slot].into_boxed_slice(),
            slot,
            got: Vec::with_capacity(slots),
        }
    }

    /// Receives the datagrams queued on `sock` (up to the batch's room)
    /// without waiting; `WouldBlock` when there are none, after which tokio
    /// knows to wait for the socket to be readable again.
    ///
    /// A batch with room to spare emptied the queue: tokio is told so at
    /// once (its readiness cleared, as a `WouldBlock` does) instead of
    /// learning it from one more system call that finds nothing. Nothing is
    /// missed: tokio's sockets are edge-triggered, and every datagram that
    /// arrives after the call raises a new readiness event.
    pub fn try_recv(&mut self, sock: &UdpIo) -> io::Result<usize> {
        self.got.clear();
        let RecvBatch { buf, slot, got } = self;
        let room = (buf.len() / *slot).min(SLOTS);
        let mut received = 0;
        let r = sock.fd.try_io(Interest::READABLE, |s| {
            received = imp::recv(s, buf, *slot, got)?;
            if received < room {
                // Drained: tokio clears the readiness on this answer.
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(())
        });
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && received > 0 => {}
            r => r?,
        }
        Ok(self.got.len())
    }

    /// The datagrams of the last receive, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> + '_ {
        self.got
            .iter()
            .map(|&(slot, len, from)| (&self.buf[slot * self.slot..][..len], from))
    }

    pub fn len(&self) -> usize {
        self.got.len()
    }

    pub fn is_empty(&self) -> bool {
        self.got.is_empty()
    }
}

/// Sends `msgs` in order (each to its address, or to the connected peer when
/// `None`) without waiting; returns how many left. Fewer than `msgs.len()`:
/// the socket ran out of room, or the first unsent one failed and the next
/// call reports why. `WouldBlock` when none fit (the kernel's word: the
/// socket is not watched for writability).
pub fn try_send(sock: &UdpIo, msgs: &[(&[u8], Option<SocketAddr>)]) -> io::Result<usize> {
    if msgs.is_empty() {
        return Ok(0);
    }
    imp::send(sock.get_ref(), msgs)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;

    use super::SLOTS;

    pub(super) fn recv(
        sock: &impl AsRawFd,
        buf: &mut [u8],
        slot_bytes: usize,
        got: &mut Vec<(usize, usize, SocketAddr)>,
    ) -> io::Result<usize> {
        let n = (buf.len() / slot_bytes).min(SLOTS);
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut addrs: [libc::sockaddr_storage; SLOTS] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; SLOTS] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; SLOTS] = unsafe { zeroed() };
        for (i, slot) in buf.chunks_mut(slot_bytes).take(n).enumerate() {
            iovs[i] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: slot.len(),
            };
        }
        // The raw pointers are taken once every element is written, so no
        // later borrow of the arrays invalidates them (as in `try_send`).
        let addrs_ptr = addrs.as_mut_ptr();
        let iovs_ptr = iovs.as_mut_ptr();
        for (i, hdr) in hdrs.iter_mut().take(n).enumerate() {
            let h = &mut hdr.msg_hdr;
            // SAFETY: i < n <= SLOTS, inside both arrays.
            h.msg_name = unsafe { addrs_ptr.add(i) }.cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: as above.
            h.msg_iov = unsafe { iovs_ptr.add(i) };
            h.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live buffer of the length it
        // gives and at an address slot of the size it gives; the kernel
        // writes within them only.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        for (slot, (h, addr)) in hdrs.iter().zip(&addrs).take(r as usize).enumerate() {
            // A datagram from a family netrun does not use cannot be answered: skipped.
            if let Some(from) = from_raw(addr) {
                got.push((slot, h.msg_len as usize, from));
            }
        }
        Ok(r as usize)
    }

    pub(super) fn send(
        sock: &impl AsRawFd,
        msgs: &[(&[u8], Option<SocketAddr>)],
    ) -> io::Result<usize> {
        let n = msgs.len().min(SLOTS);
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut addrs: [libc::sockaddr_storage; SLOTS] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; SLOTS] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; SLOTS] = unsafe { zeroed() };
        // Fill every address and iovec first, then take the raw pointers:
        // a pointer taken before a later `&mut` borrow of the same element
        // would be invalidated by it (Stacked Borrows).
        let mut namelens = [0 as libc::socklen_t; SLOTS];
        for (i, (payload, to)) in msgs.iter().take(n).enumerate() {
            iovs[i] = libc::iovec {
                iov_base: payload.as_ptr() as *mut libc::c_void,
                iov_len: payload.len(),
            };
            if let Some(to) = to {
                namelens[i] = to_raw(to, &mut addrs[i]);
            }
        }
        let addrs_ptr = addrs.as_mut_ptr();
        let iovs_ptr = iovs.as_mut_ptr();
        for (i, (_, to)) in msgs.iter().take(n).enumerate() {
            let h = &mut hdrs[i].msg_hdr;
            if to.is_some() {
                // SAFETY: i < n <= SLOTS, inside the array.
                h.msg_name = unsafe { addrs_ptr.add(i) }.cast();
                h.msg_namelen = namelens[i];
            }
            // SAFETY: as above.
            h.msg_iov = unsafe { iovs_ptr.add(i) };
            h.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live payload (only read) and a
        // filled address of the length it gives, or none.
        let r = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    fn from_raw(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(s.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in,
                // which it is large and aligned enough for.
                let a =
                    unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(SocketAddrV4::new(ip, u16::from_be(a.sin_port)).into())
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for a sockaddr_in6.
                let a =
                    unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                Some(
                    SocketAddrV6::new(
                        ip,
                        u16::from_be(a.sin6_port),
                        a.sin6_flowinfo,
                        a.sin6_scope_id,
                    )
                    .into(),
                )
            }
            _ => None,
        }
    }

    fn to_raw(addr: &SocketAddr, s: &mut libc::sockaddr_storage) -> libc::socklen_t {
        match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
                let out =
                    unsafe { &mut *(s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                out.sin_family = libc::AF_INET as libc::sa_family_t;
                out.sin_port = a.port().to_be();
                out.sin_addr = libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                };
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                // SAFETY: as above, for a sockaddr_in6.
                let out = unsafe {
                    &mut *(s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                out.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                out.sin6_port = a.port().to_be();
                out.sin6_flowinfo = a.flowinfo();
                out.sin6_addr = libc::in6_addr {
                    s6_addr: a.ip().octets(),
                };
                out.sin6_scope_id = a.scope_id();
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }
}

/// One datagram per call, through the socket's own calls.
#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::net::{SocketAddr, UdpSocket};

    pub(super) fn recv(
        sock: &UdpSocket,
        buf: &mut [u8],
        _slot_bytes: usize,
        got: &mut Vec<(usize, usize, SocketAddr)>,
    ) -> io::Result<usize> {
        let (n, from) = sock.recv_from(buf)?;
        got.push((0, n, from));
        Ok(1)
    }

    pub(super) fn send(
        sock: &UdpSocket,
        msgs: &[(&[u8], Option<SocketAddr>)],
    ) -> io::Result<usize> {
        let (payload, to) = msgs[0];
        match to {
            Some(to) => sock.send_to(payload, to)?,
            None => sock.send(payload)?,
        };
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::UdpSocket;

    use super::*;

    /// Datagrams queued from two senders come out in one batch, in order,
    /// with their senders; a batch sent to several addresses reaches each.
    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_receives_and_sends_many_datagrams() {
        let rx = UdpIo::from_tokio(UdpSocket::bind("127.0.0.1:0").await.unwrap()).unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        a.send_to(b"one", to).await.unwrap();
        b.send_to(b"two", to).await.unwrap();
        a.send_to(&[7u8; 60_000], to).await.unwrap();
        let mut batch = RecvBatch::new();
        let mut seen = Vec::new();
        while seen.len() < 3 {
            rx.readable().await.unwrap();
            match batch.try_recv(&rx) {
                Ok(_) => seen.extend(batch.iter().map(|(p, from)| (p.to_vec(), from))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(seen[0], (b"one".to_vec(), aa));
        assert_eq!(seen[1], (b"two".to_vec(), ba));
        assert_eq!(seen[2], (vec![7u8; 60_000], aa));
        // Nothing left: WouldBlock, not an empty batch.
        let e = batch.try_recv(&rx).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);

        // A datagram arriving after a drained batch still wakes the
        // socket: the readiness cleared without a system call comes back
        // with it.
        for round in 0..3u8 {
            a.send_to(&[round], to).await.unwrap();
            let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                loop {
                    rx.readable().await.unwrap();
                    match batch.try_recv(&rx) {
                        Ok(_) => return batch.iter().map(|(p, _)| p.to_vec()).collect::<Vec<_>>(),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
            .await
            .expect("a datagram sent after a drained batch wakes the socket");
            assert_eq!(got, vec![vec![round]]);
        }

        // Small slots: a datagram longer than its slot is cut to it, the
        // next one still lands whole in its own.
        let mut small = RecvBatch::with_slot_bytes(4);
        a.send_to(b"longer", to).await.unwrap();
        a.send_to(b"abc", to).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            rx.readable().await.unwrap();
            match small.try_recv(&rx) {
                Ok(_) => got.extend(small.iter().map(|(p, _)| p.to_vec())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, vec![b"long".to_vec(), b"abc".to_vec()]);

        rx.writable().await.unwrap();
        let msgs: Vec<(&[u8], Option<SocketAddr>)> = vec![
            (b"to a", Some(aa)),
            (b"to b", Some(ba)),
            (b"a again", Some(aa)),
        ];
        let mut sent = 0;
        while sent < msgs.len() {
            sent += try_send(&rx, &msgs[sent..]).unwrap();
        }
        let mut buf = [0u8; 16];
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"to b");
        let n = a.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"to a");
        let n = a.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"a again");
    }

    /// The rare wait for room: a socket with room is writable at once,
    /// however many times it is asked (each wait watches a clone of the
    /// descriptor), and the socket still receives afterwards.
    #[tokio::test(flavor = "current_thread")]
    async fn a_read_only_socket_can_still_wait_for_room_to_send() {
        let io = UdpIo::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = peer.local_addr().unwrap();
        for round in 0..3u8 {
            tokio::time::timeout(std::time::Duration::from_secs(10), io.writable())
                .await
                .expect("a socket with room is writable at once")
                .unwrap();
            assert_eq!(try_send(&io, &[(&[round], Some(to))]).unwrap(), 1);
        }
        let mut buf = [0u8; 4];
        for round in 0..3u8 {
            let n = peer.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[round]);
        }
        peer.send_to(b"back", io.local_addr().unwrap())
            .await
            .unwrap();
        let mut batch = RecvBatch::with_slot_bytes(16);
        loop {
            io.readable().await.unwrap();
            match batch.try_recv(&io) {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(
            batch.iter().next().map(|(p, _)| p.to_vec()),
            Some(b"back".to_vec())
        );
    }
}
