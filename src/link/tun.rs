//! A TUN device: IP packets (no Ethernet header, no packet-information
//! prefix) read from and written to a non-blocking file descriptor. The
//! device is made in the network namespace of the calling thread and
//! disappears when the descriptor is closed (it is never made persistent),
//! so a killed netrun leaves no device behind.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// `_IOW('T', 202, int)` from `<linux/if_tun.h>`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
/// The kernel's interface-name size, the trailing NUL included.
pub const IFNAMSIZ: usize = 16;

/// `struct ifreq` as TUNSETIFF reads it: the name and the flags, padded to
/// the union's size.
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// An open TUN device.
#[derive(Debug)]
pub struct Tun {
    fd: OwnedFd,
    name: String,
    stats: DeviceStats,
}

/// Reads a device's counters in the network namespace it was made in:
/// `/proc/thread-self/net/dev`, opened there (the open file stays bound to
/// that namespace, whichever thread reads it later).
#[derive(Debug, Clone)]
pub struct DeviceStats {
    file: Option<std::sync::Arc<std::fs::File>>,
    name: String,
}

impl DeviceStats {
    /// The device's counters as this namespace's `/proc/net/dev` lists them.
    fn open(name: &str) -> DeviceStats {
        DeviceStats {
            file: std::fs::File::open("/proc/thread-self/net/dev")
                .ok()
                .map(std::sync::Arc::new),
            name: name.to_string(),
        }
    }

    /// Packets the kernel dropped on their way out through the device (its
    /// transmit drops): for a TUN device, packets that found the queue to
    /// its reader full (`txqueuelen`, 500 by default). `None` when the
    /// counters cannot be read.
    pub fn tx_dropped(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let file = self.file.as_ref()?;
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = file.read_at(&mut buf, text.len() as u64).ok()?;
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
        }
        tx_dropped_in(&String::from_utf8_lossy(&text), &self.name)
    }
}

/// The transmit drops of `dev` in a `/proc/net/dev` listing: after
/// `dev:`, 8 receive counters, then transmit bytes, packets, errors, drops.
fn tx_dropped_in(listing: &str, dev: &str) -> Option<u64> {
    listing.lines().find_map(|l| {
        let (name, counts) = l.split_once(':')?;
        (name.trim() == dev)
            .then(|| counts.split_whitespace().nth(11)?.parse().ok())
            .flatten()
    })
}

impl Tun {
    /// Makes the TUN device `name` in this thread's network namespace.
    pub fn create(name: &str) -> io::Result<Tun> {
        Self::create_unless_taken(name)?.ok_or_else(|| {
            let e = io::Error::from_raw_os_error(libc::EBUSY);
            io::Error::new(e.kind(), format!("cannot make the TUN device {name}: {e}"))
        })
    }

    /// [`Tun::create`], or `None` when a device of that name exists and
    /// another descriptor holds it (`EBUSY`): someone else made it first.
    pub fn create_unless_taken(name: &str) -> io::Result<Option<Tun>> {
        if name.is_empty() || name.len() >= IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{name}` is not a valid interface name (1 to 15 bytes)"),
            ));
        }
        use rustix::fs::{open, Mode, OFlags};
        let fd = open(
            "/dev/net/tun",
            OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            let e = io::Error::from(e);
            io::Error::new(e.kind(), format!("cannot open /dev/net/tun: {e}"))
        })?;
        let mut req = IfReq {
            name: [0; IFNAMSIZ],
            flags: IFF_TUN | IFF_NO_PI,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads (and writes back) one `struct ifreq`, which
        // `req` is laid out as (name, flags, padding to the union's 24 bytes)
        // and outlives the call; `fd` is open for the whole call. rustix has
        // no safe TUN call, and its generic ioctl is as unsafe as this one.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EBUSY) {
                return Ok(None);
            }
            return Err(io::Error::new(
                e.kind(),
                format!("cannot make the TUN device {name}: {e}"),
            ));
        }
        Ok(Some(Tun {
            fd,
            name: name.to_string(),
            stats: DeviceStats::open(name),
        }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's counters, readable after the device is handed over.
    pub fn stats(&self) -> DeviceStats {
        self.stats.clone()
    }

    /// One packet into `buf`; `WouldBlock` when none is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::io::read(&self.fd, buf)?)
    }

    /// Hands one IP packet to the kernel, as if it came in on the device.
    pub fn send(&self, packet: &[u8]) -> io::Result<()> {
        rustix::io::write(&self.fd, packet)?;
        Ok(())
    }
}

impl AsFd for Tun {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmit_drops_are_the_twelfth_count_of_the_device_line() {
        let listing = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
netrun0: 587652    3767    0    0    0     0          0         0   624000    4000    0  120    0     0       0          0
";
        assert_eq!(tx_dropped_in(listing, "netrun0"), Some(120));
        assert_eq!(tx_dropped_in(listing, "lo"), Some(0));
        assert_eq!(tx_dropped_in(listing, "netrun1"), None);
    }
}
