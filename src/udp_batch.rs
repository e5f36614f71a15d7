//! Batched UDP I/O on a tokio socket: on Linux one `recvmmsg` drains up to
//! [`SLOTS`] queued datagrams and one `sendmmsg` sends a batch, instead of a
//! system call (and a readiness round) per datagram; elsewhere the same
//! calls move one datagram at a time. Neither ever waits: both say
//! `WouldBlock` when the socket has nothing to give or no room. The sockets
//! are [`UdpIo`]s: watched by the runtime for readability only. A receiver
//! that measures time (the probe) can have each datagram's kernel arrival
//! stamp with it ([`UdpIo::stamp_arrivals`]).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

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
    /// Runs of same-size datagrams to one peer leave as one segmented
    /// send (`UDP_SEGMENT`) until the kernel refuses one.
    gso: AtomicBool,
}

impl UdpIo {
    /// Registers `socket` (made non-blocking) with the current runtime.
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        // SAFETY: the AsyncFd owns the socket, so its descriptor stays open
        // and the same for the AsyncFd's whole life.
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE)? };
        Ok(UdpIo {
            fd,
            gso: AtomicBool::new(cfg!(target_os = "linux")),
        })
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

    /// Asks the kernel to stamp each datagram as it arrives (Linux
    /// `SO_TIMESTAMPNS`: the wall-clock time, taken when the network stack
    /// received it, before it was queued on this socket), for a
    /// [`RecvBatch::with_arrival_stamps`] to hand over. An error (another
    /// system) leaves the socket unstamped: every stamp is then `None`.
    pub fn stamp_arrivals(&self) -> io::Result<()> {
        stamp_arrivals(self.get_ref())
    }

    /// Whether a run of same-size datagrams to one peer still leaves as
    /// one segmented send ([`try_send`]): false off Linux, and once the
    /// kernel refused one on this socket.
    pub fn segments_runs(&self) -> bool {
        self.gso.load(Ordering::Relaxed)
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

/// [`UdpIo::stamp_arrivals`] for a socket no runtime watches (one read by
/// [`RecvBatch::recv_unwatched`]).
pub fn stamp_arrivals(socket: &std::net::UdpSocket) -> io::Result<()> {
    imp::stamp_arrivals(socket)
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
    /// Each datagram received, in arrival order.
    got: Vec<Got>,
    /// Each slot's room for control messages: empty unless the batch reads
    /// the kernel's arrival stamps ([`Self::with_arrival_stamps`]).
    ctrl: Vec<Control>,
}

/// Room for one datagram's control messages: an arrival stamp (`CMSG_SPACE`
/// of a timespec is 32 bytes on 64-bit Linux) and some to spare, aligned as
/// a `cmsghdr` must be.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control([u8; 64]);

/// One datagram of a batch: where it lies, who sent it, when the kernel
/// received it (if it was asked to say).
#[derive(Debug, Clone, Copy)]
struct Got {
    slot: usize,
    len: usize,
    from: SocketAddr,
    arrived: Option<SystemTime>,
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
            ctrl: Vec::new(),
        }
    }

    /// The same batch, also reading each datagram's kernel arrival stamp
    /// (on a socket that [`UdpIo::stamp_arrivals`] asked for them):
    /// [`Self::iter_stamped`].
    pub fn with_arrival_stamps(mut self) -> Self {
        self.ctrl = vec![Control([0; 64]); (self.buf.len() / self.slot).min(SLOTS)];
        self
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
        let RecvBatch {
            buf,
            slot,
            got,
            ctrl,
        } = self;
        let room = (buf.len() / *slot).min(SLOTS);
        let mut received = 0;
        let r = sock.fd.try_io(Interest::READABLE, |s| {
            received = imp::recv(s, buf, *slot, ctrl, got)?;
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

    /// Receives the datagrams queued on a socket no runtime watches (made
    /// non-blocking), up to the batch's room, without waiting; `WouldBlock`
    /// when there are none. For a receiver that looks on a clock of its own
    /// instead of being woken per datagram.
    pub fn recv_unwatched(&mut self, sock: &std::net::UdpSocket) -> io::Result<usize> {
        self.got.clear();
        let RecvBatch {
            buf,
            slot,
            got,
            ctrl,
        } = self;
        imp::recv(sock, buf, *slot, ctrl, got)?;
        Ok(self.got.len())
    }

    /// Waits until `sock` holds datagrams and receives them (a batch).
    #[cfg(test)]
    pub(crate) async fn recv_when_ready(&mut self, sock: &UdpIo) -> io::Result<usize> {
        loop {
            sock.readable().await?;
            match self.try_recv(sock) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
        }
    }

    /// Most datagrams one receive takes.
    pub fn room(&self) -> usize {
        (self.buf.len() / self.slot).min(SLOTS)
    }

    /// The datagrams of the last receive, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> + '_ {
        self.iter_stamped().map(|(p, from, _)| (p, from))
    }

    /// The datagrams of the last receive with their kernel arrival stamps:
    /// `None` for a batch made without [`Self::with_arrival_stamps`], a
    /// socket not asked to stamp, or a datagram the kernel did not stamp.
    pub fn iter_stamped(
        &self,
    ) -> impl Iterator<Item = (&[u8], SocketAddr, Option<SystemTime>)> + '_ {
        self.got
            .iter()
            .map(|g| (&self.buf[g.slot * self.slot..][..g.len], g.from, g.arrived))
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
///
/// On Linux a run of consecutive datagrams of one size to one peer leaves
/// as one segmented send (UDP GSO, `UDP_SEGMENT`): the kernel takes the run
/// through the IP layer and the device once, and cuts it back into the same
/// datagrams before any receiver sees them (a receiver without `UDP_GRO`
/// gets each one as sent). A kernel or route that refuses segmentation
/// (too old, a run wider than the path's MTU allows) turns it off for this
/// socket, and the run goes out datagram by datagram.
pub fn try_send(sock: &UdpIo, msgs: &[(&[u8], Option<SocketAddr>)]) -> io::Result<usize> {
    if msgs.is_empty() {
        return Ok(0);
    }
    let gso = sock.gso.load(Ordering::Relaxed);
    match imp::send(sock.get_ref(), msgs, gso) {
        Err(e) if gso && run_len(msgs, true) > 1 && imp::gso_refused(&e) => {
            sock.gso.store(false, Ordering::Relaxed);
            tracing::debug!(error = %e, "UDP segmentation offload refused; sending datagram by datagram");
            imp::send(sock.get_ref(), msgs, false)
        }
        r => r,
    }
}

/// Most datagrams in one segmented send (the kernel takes up to 64).
const MAX_SEGMENTS: usize = 32;
/// Most payload bytes in one segmented send: it travels as one IP packet
/// until the kernel cuts it.
const MAX_SEGMENTED_BYTES: usize = 65_000;

/// How many datagrams from the start of `msgs` leave as one send: a run of
/// the same size (not empty) to the same peer, within the kernel's limits;
/// 1 without `gso`.
fn run_len(msgs: &[(&[u8], Option<SocketAddr>)], gso: bool) -> usize {
    let Some(&(first, to)) = msgs.first() else {
        return 0;
    };
    if !gso || first.is_empty() {
        return 1;
    }
    let per = MAX_SEGMENTS.min(MAX_SEGMENTED_BYTES / first.len()).max(1);
    1 + msgs[1..]
        .iter()
        .take(per - 1)
        .take_while(|(p, t)| p.len() == first.len() && *t == to)
        .count()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;
    use std::time::{Duration, SystemTime};

    use super::{Control, Got, SLOTS};

    pub(super) fn stamp_arrivals(sock: &impl AsRawFd) -> io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: the option's value is a live c_int of the length given.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub(super) fn recv(
        sock: &impl AsRawFd,
        buf: &mut [u8],
        slot_bytes: usize,
        ctrl: &mut [Control],
        got: &mut Vec<Got>,
    ) -> io::Result<usize> {
        let n = (buf.len() / slot_bytes).min(SLOTS);
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut addrs: [libc::sockaddr_storage; SLOTS] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; SLOTS] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; SLOTS] = unsafe { zeroed() };
        // Slots with room for control messages (a batch that reads stamps):
        // the kernel writes them, nothing needs clearing between calls.
        let ctrl_n = ctrl.len().min(n);
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
        let ctrls_ptr = ctrl.as_mut_ptr();
        for (i, hdr) in hdrs.iter_mut().take(n).enumerate() {
            let h = &mut hdr.msg_hdr;
            // SAFETY: i < n <= SLOTS, inside both arrays.
            h.msg_name = unsafe { addrs_ptr.add(i) }.cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: as above.
            h.msg_iov = unsafe { iovs_ptr.add(i) };
            h.msg_iovlen = 1;
            if i < ctrl_n {
                // SAFETY: i < ctrl_n <= ctrl.len(), inside the slice.
                h.msg_control = unsafe { ctrls_ptr.add(i) }.cast();
                h.msg_controllen = size_of::<Control>() as _;
            }
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
                let arrived = if slot < ctrl_n {
                    arrival_stamp(&h.msg_hdr)
                } else {
                    None
                };
                got.push(Got {
                    slot,
                    len: h.msg_len as usize,
                    from,
                    arrived,
                });
            }
        }
        Ok(r as usize)
    }

    /// The `SCM_TIMESTAMPNS` control message of a received datagram, if
    /// the kernel wrote one (and it fitted: a cut one is not read).
    fn arrival_stamp(h: &libc::msghdr) -> Option<SystemTime> {
        if h.msg_flags & libc::MSG_CTRUNC != 0 {
            return None;
        }
        // SAFETY: `h` is a header the kernel filled: its control pointer
        // and length describe a live buffer (or none: a null first header).
        let mut c = unsafe { libc::CMSG_FIRSTHDR(h) };
        while !c.is_null() {
            // SAFETY: a non-null header from CMSG_FIRSTHDR/NXTHDR lies
            // inside the control buffer.
            let cm = unsafe { &*c };
            // SAFETY: a const computation on a length, no pointers.
            let need = unsafe { libc::CMSG_LEN(size_of::<libc::timespec>() as u32) } as usize;
            if cm.cmsg_level == libc::SOL_SOCKET
                && cm.cmsg_type == libc::SCM_TIMESTAMPNS
                && cm.cmsg_len as usize >= need
            {
                // SAFETY: the message's data holds a timespec (its length
                // was checked); it may be unaligned for one.
                let ts: libc::timespec =
                    unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c).cast()) };
                let secs = u64::try_from(ts.tv_sec).ok()?;
                let nanos = u32::try_from(ts.tv_nsec)
                    .ok()
                    .filter(|&n| n < 1_000_000_000)?;
                return SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos));
            }
            // SAFETY: `c` is a header of `h`'s buffer, as above.
            c = unsafe { libc::CMSG_NXTHDR(h, c) };
        }
        None
    }

    /// `UDP_SEGMENT` (linux/udp.h): the size of each datagram of a send.
    const UDP_SEGMENT: libc::c_int = 103;

    /// One control message carrying a segment size: the `cmsghdr`, then its
    /// two bytes of data at the aligned offset `CMSG_DATA` gives.
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct SegmentCmsg {
        hdr: libc::cmsghdr,
        size: u16,
        _pad: [u8; 6],
    }

    // The segment size sits where `CMSG_DATA` points, and the whole fits
    // the space `CMSG_SPACE` asks for.
    const _: () = assert!(
        std::mem::offset_of!(SegmentCmsg, size) == size_of::<libc::cmsghdr>()
            // SAFETY: a const computation on a length, no pointers.
            && size_of::<SegmentCmsg>() >= unsafe { libc::CMSG_SPACE(2) } as usize
    );

    /// The errors a kernel gives a segmented send it cannot do.
    pub(super) fn gso_refused(e: &io::Error) -> bool {
        matches!(
            e.raw_os_error(),
            Some(libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
        )
    }

    /// Sends up to [`SLOTS`] of `msgs` with one `sendmmsg`, a run of
    /// same-size datagrams to one peer as one segmented message when `gso`;
    /// returns how many datagrams left.
    pub(super) fn send(
        sock: &impl AsRawFd,
        msgs: &[(&[u8], Option<SocketAddr>)],
        gso: bool,
    ) -> io::Result<usize> {
        let n = msgs.len().min(SLOTS);
        let msgs = &msgs[..n];
        // (first datagram, how many) of each message sent.
        let mut groups = [(0usize, 0usize); SLOTS];
        let mut g = 0;
        let mut i = 0;
        while i < n {
            let k = super::run_len(&msgs[i..], gso);
            groups[g] = (i, k);
            g += 1;
            i += k;
        }
        // SAFETY: all-zero is a valid value of these plain C structs.
        let mut addrs: [libc::sockaddr_storage; SLOTS] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; SLOTS] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; SLOTS] = unsafe { zeroed() };
        let mut ctrls: [SegmentCmsg; SLOTS] = unsafe { zeroed() };
        // Fill every address, iovec and control message first, then take
        // the raw pointers: a pointer taken before a later `&mut` borrow of
        // the same element would be invalidated by it (Stacked Borrows).
        let mut namelens = [0 as libc::socklen_t; SLOTS];
        for (i, (payload, _)) in msgs.iter().enumerate() {
            iovs[i] = libc::iovec {
                iov_base: payload.as_ptr() as *mut libc::c_void,
                iov_len: payload.len(),
            };
        }
        for (j, &(first, k)) in groups[..g].iter().enumerate() {
            if let Some(to) = &msgs[first].1 {
                namelens[j] = to_raw(to, &mut addrs[j]);
            }
            if k > 1 {
                ctrls[j].hdr.cmsg_level = libc::SOL_UDP;
                ctrls[j].hdr.cmsg_type = UDP_SEGMENT;
                // SAFETY: a const computation on a length, no pointers.
                ctrls[j].hdr.cmsg_len = unsafe { libc::CMSG_LEN(2) } as _;
                ctrls[j].size = msgs[first].0.len() as u16;
            }
        }
        let addrs_ptr = addrs.as_mut_ptr();
        let iovs_ptr = iovs.as_mut_ptr();
        let ctrls_ptr = ctrls.as_mut_ptr();
        for (j, &(first, k)) in groups[..g].iter().enumerate() {
            let h = &mut hdrs[j].msg_hdr;
            if msgs[first].1.is_some() {
                // SAFETY: j < g <= SLOTS, inside the array.
                h.msg_name = unsafe { addrs_ptr.add(j) }.cast();
                h.msg_namelen = namelens[j];
            }
            // SAFETY: first + k <= n <= SLOTS, inside the array.
            h.msg_iov = unsafe { iovs_ptr.add(first) };
            h.msg_iovlen = k as _;
            if k > 1 {
                // SAFETY: j < g <= SLOTS, inside the array.
                h.msg_control = unsafe { ctrls_ptr.add(j) }.cast();
                // SAFETY: a const computation on a length, no pointers.
                h.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as _;
            }
        }
        // SAFETY: every header points at live payloads (only read), a
        // filled address of the length it gives or none, and a filled
        // control message of the length it gives or none.
        let r = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                g as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(groups[..r as usize].iter().map(|&(_, k)| k).sum())
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

    use super::{Control, Got};

    pub(super) fn stamp_arrivals(_: &UdpSocket) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(super) fn recv(
        sock: &UdpSocket,
        buf: &mut [u8],
        _slot_bytes: usize,
        _ctrl: &mut [Control],
        got: &mut Vec<Got>,
    ) -> io::Result<usize> {
        let (len, from) = sock.recv_from(buf)?;
        got.push(Got {
            slot: 0,
            len,
            from,
            arrived: None,
        });
        Ok(1)
    }

    pub(super) fn gso_refused(_: &io::Error) -> bool {
        false
    }

    pub(super) fn send(
        sock: &UdpSocket,
        msgs: &[(&[u8], Option<SocketAddr>)],
        _gso: bool,
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
        batch.recv_when_ready(&io).await.unwrap();
        assert_eq!(
            batch.iter().next().map(|(p, _)| p.to_vec()),
            Some(b"back".to_vec())
        );
    }

    /// Each datagram of a batch read with stamps has the wall-clock time
    /// the kernel received it: after its send, before the receive returned.
    /// A batch not made for stamps reads none, even from a stamping socket.
    #[tokio::test(flavor = "current_thread")]
    async fn a_stamped_batch_says_when_each_datagram_arrived() {
        let io = UdpIo::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        io.stamp_arrivals().unwrap();
        let to = io.local_addr().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for stamped in [true, false] {
            let before = SystemTime::now();
            peer.send_to(b"one", to).await.unwrap();
            peer.send_to(b"two", to).await.unwrap();
            let mut batch = RecvBatch::with_slot_bytes(16);
            if stamped {
                batch = batch.with_arrival_stamps();
            }
            let mut got = Vec::new();
            while got.len() < 2 {
                io.readable().await.unwrap();
                match batch.try_recv(&io) {
                    Ok(_) => got.extend(batch.iter_stamped().map(|(p, _, at)| (p.to_vec(), at))),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            }
            let after = SystemTime::now();
            assert_eq!(got[0].0, b"one");
            assert_eq!(got[1].0, b"two");
            for (_, at) in &got {
                if stamped && cfg!(target_os = "linux") {
                    let at = at.expect("a stamp");
                    assert!(
                        before <= at && at <= after,
                        "{before:?} <= {at:?} <= {after:?}"
                    );
                } else {
                    assert_eq!(*at, None);
                }
            }
        }
    }

    /// What leaves as one segmented send: a run of one size to one peer,
    /// never an empty datagram, never past the segment limit.
    #[test]
    fn a_run_is_one_size_to_one_peer() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let (x4, y4, z3): (&[u8], &[u8], &[u8]) = (b"xxxx", b"yyyy", b"zzz");
        assert_eq!(run_len(&[], true), 0);
        assert_eq!(
            run_len(&[(x4, Some(a)), (y4, Some(a)), (z3, Some(a))], true),
            2
        );
        assert_eq!(run_len(&[(x4, Some(a)), (y4, Some(a))], false), 1);
        assert_eq!(run_len(&[(x4, Some(a)), (y4, Some(b))], true), 1);
        assert_eq!(run_len(&[(x4, None), (y4, None), (x4, None)], true), 3);
        assert_eq!(run_len(&[(b"", None), (b"", None)], true), 1);
        let many = vec![(x4, Some(a)); 100];
        assert_eq!(run_len(&many, true), MAX_SEGMENTS);
        let big = vec![0u8; 30_000];
        let wide = vec![(&big[..], Some(a)); 4];
        assert_eq!(run_len(&wide, true), 2);
    }

    /// A batch of same-size datagrams to one peer (one segmented send), then
    /// other sizes and another peer: every datagram arrives whole, as
    /// itself, in order, and the count returned is of datagrams.
    #[tokio::test(flavor = "current_thread")]
    async fn a_segmented_batch_arrives_as_the_datagrams_sent() {
        let io = UdpIo::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let payloads: Vec<Vec<u8>> = (0..20u8)
            .map(|i| vec![i; 100])
            .chain([vec![200; 7], vec![201; 100], vec![202; 100]])
            .collect();
        let mut msgs: Vec<(&[u8], Option<SocketAddr>)> =
            payloads.iter().map(|p| (&p[..], Some(aa))).collect();
        msgs.insert(21, (b"to b", Some(ba)));
        let mut sent = 0;
        while sent < msgs.len() {
            sent += try_send(&io, &msgs[sent..]).unwrap();
        }
        assert_eq!(sent, msgs.len());
        assert!(io.gso.load(Ordering::Relaxed) || !cfg!(target_os = "linux"));
        let mut buf = vec![0u8; 4096];
        for p in &payloads {
            let n = a.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &p[..]);
        }
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"to b");
    }
}
