//! A precise timer: one dedicated thread holds jobs in a deadline-ordered
//! heap and runs each at its deadline to within tens of microseconds, where
//! tokio's timer wheel rounds to the millisecond. It sleeps (with the
//! thread's timer slack at its minimum, on Linux) until a short window
//! before the earliest deadline, then yields in a loop until it: the spin is
//! bounded to that window, and an empty timer blocks without using the CPU.
//! Where the OS allows it (Linux, root or `CAP_SYS_NICE`), the thread takes
//! the lowest real-time priority instead: its sleeps then end on time even on
//! a busy host, so it never spins.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The window before a deadline that the thread spends yielding instead of
/// sleeping: an OS sleep overshoots by a few µs on an idle host and by tens
/// to hundreds on a busy one.
pub const SPIN: Duration = Duration::from_micros(100);

/// Runs jobs of type `T` at their deadlines on a dedicated thread, through
/// the handler given at creation; also wakes async tasks ([`Timer::sleep_until`]).
/// Clones share the thread, which is started by the first job and stops
/// (discarding what it still holds) when the last clone is dropped.
pub struct Timer<T: Send + 'static> {
    shared: Arc<Shared<T>>,
}

type Handler<T> = Box<dyn FnMut(T) + Send>;

struct Shared<T> {
    name: String,
    state: Mutex<State<T>>,
    wake: Condvar,
    /// Deadline of the earliest entry in ns since `epoch` (`u64::MAX`: none),
    /// read without the lock by the spinning thread so an earlier newcomer
    /// cuts its spin short.
    earliest_ns: AtomicU64,
    epoch: Instant,
    /// Live [`Timer`] handles; the thread stops when it drops to zero.
    handles: AtomicUsize,
}

struct State<T> {
    heap: BinaryHeap<Entry<T>>,
    /// Arrival order: equal deadlines run first come, first served.
    seq: u64,
    /// Most entries held at once; past it [`Timer::at`] refuses.
    max_len: usize,
    /// The handler, until the thread takes it when it starts.
    handler: Option<Handler<T>>,
    /// Starting the thread failed: every job is refused.
    no_thread: bool,
    /// The thread waits on the condvar (not running jobs, not spinning).
    parked: bool,
    stopped: bool,
}

enum Job<T> {
    Run(T),
    Wake(oneshot::Sender<()>),
}

struct Entry<T> {
    due: Instant,
    seq: u64,
    job: Job<T>,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    /// Reversed, so the max-heap pops the earliest deadline first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// The future of [`Timer::sleep_until`].
#[derive(Debug)]
pub enum Sleep {
    /// The deadline had passed already.
    Done,
    /// Woken by the timer's thread (or by its stopping: nothing left to wait for).
    Precise(oneshot::Receiver<()>),
    /// The timer could not take it: tokio's timer instead.
    Coarse(Pin<Box<tokio::time::Sleep>>),
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            Sleep::Done => Poll::Ready(()),
            Sleep::Precise(rx) => Pin::new(rx).poll(cx).map(|_| ()),
            Sleep::Coarse(s) => s.as_mut().poll(cx),
        }
    }
}

/// Why [`Timer::at`] refused a job (handed back with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The timer holds its maximum number of entries.
    Full,
    /// The timer's thread could not be started.
    NoThread,
}

impl<T: Send + 'static> Timer<T> {
    /// A timer named `name` (its thread's name) holding at most `max_len`
    /// entries, running each due job through `handler`.
    pub fn new(name: &str, max_len: usize, handler: impl FnMut(T) + Send + 'static) -> Self {
        Timer {
            shared: Arc::new(Shared {
                name: name.to_owned(),
                state: Mutex::new(State {
                    heap: BinaryHeap::new(),
                    seq: 0,
                    max_len,
                    handler: Some(Box::new(handler)),
                    no_thread: false,
                    parked: false,
                    stopped: false,
                }),
                wake: Condvar::new(),
                earliest_ns: AtomicU64::new(u64::MAX),
                epoch: Instant::now(),
                handles: AtomicUsize::new(1),
            }),
        }
    }

    /// Runs `job` through the handler at `due` (at once if it is past, but
    /// on the timer's thread). Never waits; refused when full.
    pub fn at(&self, due: Instant, job: T) -> Result<(), (Refused, T)> {
        self.push(due, Job::Run(job)).map_err(|(why, j)| match j {
            Job::Run(t) => (why, t),
            Job::Wake(_) => unreachable!("pushed a Run"),
        })
    }

    /// Completes at `due`, woken by the timer's thread. If the timer is full
    /// or has no thread, falls back to tokio's (coarser) timer.
    pub fn sleep_until(&self, due: Instant) -> Sleep {
        if due <= Instant::now() {
            return Sleep::Done;
        }
        let (tx, rx) = oneshot::channel();
        match self.push(due, Job::Wake(tx)) {
            Ok(()) => Sleep::Precise(rx),
            Err(_) => Sleep::Coarse(Box::pin(tokio::time::sleep_until(due.into()))),
        }
    }

    /// [`Timer::sleep_until`] `delay` from now.
    pub fn sleep(&self, delay: Duration) -> Sleep {
        self.sleep_until(Instant::now() + delay)
    }

    /// Entries held now (jobs and sleepers).
    pub fn len(&self) -> usize {
        self.shared.lock().heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every job `keep` rejects without running it (sleepers stay).
    pub fn retain(&self, mut keep: impl FnMut(&T) -> bool) {
        self.shared.lock().heap.retain(|e| match &e.job {
            Job::Run(t) => keep(t),
            Job::Wake(_) => true,
        });
    }

    fn push(&self, due: Instant, job: Job<T>) -> Result<(), (Refused, Job<T>)> {
        let shared = &self.shared;
        let mut st = shared.lock();
        if st.heap.len() >= st.max_len {
            return Err((Refused::Full, job));
        }
        if let Some(handler) = st.handler.take() {
            if let Err(e) = start(shared, handler) {
                st.no_thread = true;
                tracing::warn!(target: "netrun::timer", name = %shared.name, error = %e,
                    "cannot start the timer thread");
            }
        }
        if st.no_thread {
            return Err((Refused::NoThread, job));
        }
        let before = st.heap.peek().map(|e| e.due);
        let seq = st.seq;
        st.seq += 1;
        st.heap.push(Entry { due, seq, job });
        shared
            .earliest_ns
            .fetch_min(shared.ns(due), Ordering::SeqCst);
        // The thread needs waking only when it sleeps towards a later
        // deadline than this one (or none): a steady delay queues behind.
        let wake = st.parked && before.map_or(true, |b| due < b);
        drop(st);
        if wake {
            shared.wake.notify_one();
        }
        Ok(())
    }
}

/// Starts the timer's thread; it holds the shared state, not a handle.
fn start<T: Send + 'static>(shared: &Arc<Shared<T>>, handler: Handler<T>) -> std::io::Result<()> {
    let for_thread = shared.clone();
    thread::Builder::new()
        .name(shared.name.clone())
        .spawn(move || run(for_thread, handler))
        .map(|_| ())
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every update of the state is complete before a handler runs (the
        // lock is not held then), so a poisoned lock still holds a
        // consistent heap.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX - 1)
    }
}

impl<T: Send + 'static> Clone for Timer<T> {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        Timer {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Send + 'static> Drop for Timer<T> {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut st = self.shared.lock();
            st.stopped = true;
            // Sleepers are woken (their sender dropped); jobs are discarded.
            st.heap.clear();
            drop(st);
            self.shared.wake.notify_one();
        }
    }
}

/// The timer thread: runs what is due, then sleeps until [`SPIN`] before the
/// next deadline and yields in a loop for the rest.
fn run<T>(shared: Arc<Shared<T>>, mut handler: Handler<T>) {
    minimal_timer_slack();
    // Measured through the proxy on a loaded 2-core host: real-time without
    // a spin was the best at 20k datagrams/s, where a normal thread's spin
    // competed with the traffic it was timing.
    let spin = if real_time_priority() {
        Duration::ZERO
    } else {
        SPIN
    };
    tracing::debug!(target: "netrun::timer", name = %shared.name, ?spin, "timer thread started");
    let mut due: Vec<Job<T>> = Vec::new();
    let mut st = shared.lock();
    loop {
        if st.stopped {
            return;
        }
        let now = Instant::now();
        while st.heap.peek().is_some_and(|e| e.due <= now) {
            if let Some(e) = st.heap.pop() {
                due.push(e.job);
            }
        }
        if !due.is_empty() {
            // Jobs run without the lock, so producers never wait for a send.
            drop(st);
            for job in due.drain(..) {
                match job {
                    Job::Run(t) => handler(t),
                    Job::Wake(tx) => {
                        let _ = tx.send(());
                    }
                }
            }
            st = shared.lock();
            continue;
        }
        let next = st.heap.peek().map(|e| e.due);
        shared
            .earliest_ns
            .store(next.map_or(u64::MAX, |d| shared.ns(d)), Ordering::SeqCst);
        match next {
            None => {
                st.parked = true;
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                st.parked = false;
            }
            Some(d) if d - now > spin => {
                st.parked = true;
                st = shared
                    .wake
                    .wait_timeout(st, d - now - spin)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
                st.parked = false;
            }
            Some(d) => {
                drop(st);
                spin_until(&shared, d);
                st = shared.lock();
            }
        }
    }
}

/// Yields until `due`, or until an earlier entry arrives.
fn spin_until<T>(shared: &Shared<T>, due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due || shared.ns(now) >= shared.earliest_ns.load(Ordering::SeqCst) {
            return;
        }
        // Lets the other threads of a busy host run; returns at once otherwise.
        thread::yield_now();
    }
}

/// Moves this thread to the lowest real-time priority (`SCHED_FIFO` 1),
/// where a woken sleeper runs at once instead of waiting for a busy core's
/// time slice. True if granted; an unprivileged process stays as it was.
/// The thread never spins then, so it cannot starve the host: it uses the
/// CPU only to run due jobs (and Linux caps real-time threads at 95 % of a
/// core anyway).
pub(crate) fn real_time_priority() -> bool {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: pid 0 is the calling thread, whose own policy this sets
        // from a valid, initialised parameter that outlives the call;
        // failure (EPERM) changes nothing. rustix has no sched_setscheduler.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// Asks Linux to fire this thread's sleeps on time instead of up to 50 µs
/// late (the default timer slack, which lets it batch wakeups).
pub(crate) fn minimal_timer_slack() {
    // 1 ns, the least (0 would mean "the process default" again); a
    // refusal leaves the default slack, which is only less precise.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Jobs run by deadline whatever order they came in, equal deadlines in
    /// arrival order, and never before their deadline.
    #[test]
    fn jobs_run_in_deadline_order_and_never_early() {
        let (tx, rx) = mpsc::channel();
        let timer = Timer::new("test-timer", 100, move |(name, due): (&str, Instant)| {
            tx.send((name, due, Instant::now())).unwrap();
        });
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        for (at, name) in [(30, "d"), (5, "a"), (20, "b"), (20, "c"), (0, "now")] {
            timer.at(t0 + ms(at), (name, t0 + ms(at))).unwrap();
        }
        let mut order = Vec::new();
        for _ in 0..5 {
            let (name, due, ran) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
            assert!(ran >= due, "{name} ran {:?} early", due - ran);
            order.push(name);
        }
        assert_eq!(order, ["now", "a", "b", "c", "d"]);
        assert!(timer.is_empty());
    }

    /// A job due earlier than the one the thread is sleeping towards wakes
    /// it: it does not wait for the later one.
    #[test]
    fn an_earlier_job_cuts_the_wait_for_a_later_one_short() {
        let (tx, rx) = mpsc::channel();
        let timer = Timer::new("test-timer", 100, move |name: &str| {
            tx.send(name).unwrap();
        });
        let t0 = Instant::now();
        timer.at(t0 + Duration::from_secs(60), "later").unwrap();
        // Let the thread park towards the later deadline.
        thread::sleep(Duration::from_millis(20));
        timer.at(t0 + Duration::from_millis(30), "sooner").unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("sooner"));
        assert_eq!(timer.len(), 1);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_sleep_is_never_shorter_than_asked() {
        let timer = Timer::new("test-timer", 100, |_: ()| {});
        for us in [0, 50, 300, 2_000, 5_000] {
            let d = Duration::from_micros(us);
            let t0 = Instant::now();
            timer.sleep(d).await;
            assert!(t0.elapsed() >= d, "asked {d:?}, slept {:?}", t0.elapsed());
        }
    }

    /// Past `max_len` entries new ones are refused, handed back; a refused
    /// sleep falls back to tokio's timer, still never shorter.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_timer_refuses_jobs_and_sleeps_fall_back() {
        let timer = Timer::new("test-timer", 2, |_: u32| {});
        let later = Instant::now() + Duration::from_secs(60);
        timer.at(later, 1).unwrap();
        timer.at(later, 2).unwrap();
        assert_eq!(timer.at(later, 3), Err((Refused::Full, 3)));
        let t0 = Instant::now();
        let sleep = timer.sleep(Duration::from_millis(5));
        assert!(matches!(sleep, Sleep::Coarse(_)));
        sleep.await;
        assert!(t0.elapsed() >= Duration::from_millis(5));
        timer.retain(|j| *j != 1);
        assert_eq!(timer.len(), 1);
    }

    /// Dropping the last handle stops the thread: jobs still held are
    /// discarded, sleepers are released.
    #[tokio::test(flavor = "current_thread")]
    async fn dropping_the_last_handle_stops_the_timer() {
        let (tx, rx) = mpsc::channel();
        let timer = Timer::new("test-timer", 10, move |j: u32| {
            tx.send(j).unwrap();
        });
        let other = timer.clone();
        timer
            .at(Instant::now() + Duration::from_secs(60), 1)
            .unwrap();
        let sleep = timer.sleep(Duration::from_secs(60));
        drop(timer);
        assert_eq!(other.len(), 2, "a clone keeps it running");
        drop(other);
        sleep.await;
        // The handler (and its sender) went with the thread; the job never ran.
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
    }
}
