//! The thread that carries a link out: it reads packets from the two TUN
//! devices (a batch per wake-up), offers them to the direction's [`Pipe`],
//! and writes each packet into the other device when the model says it is
//! due. Between events it sleeps in `ppoll` until a device is readable or
//! the next packet is due, as the precise timer does (minimal timer slack,
//! a real-time priority where allowed, otherwise yielding for the last
//! 100 µs).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::DirConfig;
use super::counters::Counters;
use super::pipe::Pipe;
use super::tun::{DeviceStats, Tun};

/// Packets read from one device per wake-up before the other gets a turn.
const BATCH: usize = 64;
/// The largest packet a TUN device hands over (its MTU is 1500 here; this
/// leaves room for any MTU the kernel allows).
const MAX_PACKET: usize = 65_536;
/// The longest sleep with nothing due, between checks that all is well.
const IDLE: Duration = Duration::from_secs(1);

/// A link moving packets between two TUN devices: direction 0 from `a` to
/// `b` (the uplink), direction 1 back. Stopped (and the devices closed) by
/// [`Mover::stop`] or on drop.
pub struct Mover {
    pipes: Arc<Mutex<[Pipe<Vec<u8>>; 2]>>,
    /// The devices' counters: what the kernel dropped before the link
    /// read it (direction 0's at `a`, 1's at `b`).
    devices: [DeviceStats; 2],
    stop: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl Mover {
    /// Starts moving packets between `a` and `b` on a thread named `name`.
    pub fn start(name: &str, a: Tun, b: Tun, up: DirConfig, down: DirConfig) -> io::Result<Mover> {
        let epoch = Instant::now();
        let pipes = Arc::new(Mutex::new([Pipe::new(up, epoch), Pipe::new(down, epoch)]));
        use rustix::event::{eventfd, EventfdFlags};
        let stop = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?;
        // The thread's copy, close-on-exec as the original: commands run
        // beside it.
        let stop_rx = stop.try_clone()?;
        let shared = pipes.clone();
        let devices = [a.stats(), b.stats()];
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || run(&[a, b], &shared, &stop_rx))?;
        Ok(Mover {
            pipes,
            devices,
            stop,
            thread: Some(thread),
        })
    }

    /// Both directions' counts so far (uplink, downlink), the kernel's
    /// drops at each device included (0 where the device's counters
    /// cannot be read).
    pub fn counters(&self) -> [Counters; 2] {
        let drops = self.kernel_drops();
        self.model_counters(drops)
    }

    /// Stops the thread (packets still held are dropped, as a cable pulled
    /// out would), closes the devices, and returns the final counts.
    pub fn stop(mut self) -> [Counters; 2] {
        // The devices close with the thread: their counts are read first.
        let drops = self.kernel_drops();
        self.halt();
        self.model_counters(drops)
    }

    fn kernel_drops(&self) -> [Option<u64>; 2] {
        [self.devices[0].tx_dropped(), self.devices[1].tx_dropped()]
    }

    fn model_counters(&self, kernel_drops: [Option<u64>; 2]) -> [Counters; 2] {
        let mut c = {
            let p = lock(&self.pipes);
            [p[0].counters().clone(), p[1].counters().clone()]
        };
        for (c, drops) in c.iter_mut().zip(kernel_drops) {
            c.kernel_drops = drops.unwrap_or(0);
        }
        c
    }

    fn halt(&mut self) {
        // An eventfd takes one 8-byte count; the only failure (a full
        // counter) still leaves it readable, which is all the thread checks.
        let _ = rustix::io::write(&self.stop, &1u64.to_ne_bytes());
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the packet link's thread panicked");
            }
        }
    }
}

impl Drop for Mover {
    fn drop(&mut self) {
        self.halt();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The model's state is updated between whole packets; a panic in the
    // thread leaves counts that are still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The thread's loop (see the module doc).
fn run(tuns: &[Tun; 2], pipes: &Mutex<[Pipe<Vec<u8>>; 2]>, stop: &OwnedFd) {
    crate::timer::minimal_timer_slack();
    let spin = if crate::timer::real_time_priority() {
        Duration::ZERO
    } else {
        crate::timer::SPIN
    };
    let mut buf = vec![0u8; MAX_PACKET];
    let mut write_errors = 0u64;
    loop {
        let now = Instant::now();
        let next = {
            let mut p = lock(pipes);
            for (dir, tun) in tuns.iter().enumerate() {
                for _ in 0..BATCH {
                    match tun.recv(&mut buf) {
                        Ok(n) => p[dir].offer(now, buf[..n].to_vec()),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            tracing::error!("reading {}: {e}; the link stops", tun.name());
                            return;
                        }
                    }
                }
            }
            for dir in 0..2 {
                p[dir].advance(now);
                while let Some(packet) = p[dir].pop_due(now) {
                    if let Err(e) = tuns[1 - dir].send(&packet) {
                        write_errors += 1;
                        if write_errors.is_power_of_two() {
                            tracing::warn!(
                                "writing into {}: {e} ({write_errors} packets so far)",
                                tuns[1 - dir].name()
                            );
                        }
                    }
                }
            }
            [p[0].next_wake(), p[1].next_wake()]
                .into_iter()
                .flatten()
                .min()
        };
        let wait = next.map_or(IDLE, |n| n.saturating_duration_since(Instant::now()));
        if wait.is_zero() {
            continue;
        }
        if wait <= spin {
            // Readable devices are read at the top of the loop anyway.
            std::thread::yield_now();
            continue;
        }
        match poll(tuns, stop, wait - spin) {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => {
                tracing::error!("waiting for packets: {e}; the link stops");
                return;
            }
        }
    }
}

/// Sleeps until a device is readable, `stop` is signalled (true) or
/// `timeout` passes, to the nanosecond (`ppoll`) where `poll` counts
/// milliseconds.
fn poll(tuns: &[Tun; 2], stop: &OwnedFd, timeout: Duration) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut fds = [
        PollFd::new(&tuns[0], PollFlags::IN),
        PollFd::new(&tuns[1], PollFlags::IN),
        PollFd::new(stop, PollFlags::IN),
    ];
    let ts = Timespec {
        tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: timeout.subsec_nanos().into(),
    };
    match rustix::event::poll(&mut fds, Some(&ts)) {
        Ok(_) => Ok(!fds[2].revents().is_empty()),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
