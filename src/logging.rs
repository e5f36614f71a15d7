//! Logs go to stderr through `tracing`: one line per request or flow event.
//! `-v` raises the level; `RUST_LOG` overrides everything.
//!
//! During a scenario run the origin's and proxy's lines also go to a capture
//! file (`results/<name>/services.log`), and stderr keeps only warnings so the
//! progress bars stay readable.
//!
//! Nothing on a serving thread waits for a lock or a disk: each formatted
//! line goes into a bounded queue ([`LogWriter`]) and one writer thread
//! writes what a couple of milliseconds gathered, one `write` per sink. When
//! the sinks cannot keep up and the queue is full, lines are dropped and
//! counted, and the log says how many once the writer catches up.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::atomic_file::AtomicFile;

pub mod access;

/// How much to show on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// Standalone services: one info line per request.
    Services,
    /// Scenario runs: warnings only; service lines go to services.log.
    Quiet,
}

/// Installs the global subscriber. Later calls do nothing.
pub fn init(verbose: u8, console: Console) {
    let level = match (verbose, console) {
        (0, Console::Quiet) => "warn",
        (0, Console::Services) => "info",
        (1, _) => "debug",
        _ => "trace",
    };
    let directives = || {
        EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(format!("warn,netrun={level}")))
    };
    let ansi = io::stderr().is_terminal();
    let _ = access::ROUTES.set(access::Routes {
        stderr: stderr_takes_requests(directives()),
        ansi,
    });
    let filter = directives();
    let stderr = tracing_subscriber::fmt::layer()
        .with_timer(Rfc3339Micros)
        .with_writer(SinkWriter(Sink::Stderr))
        .with_ansi(ansi)
        .with_target(false)
        .with_filter(filter);
    let capture = tracing_subscriber::fmt::layer()
        .with_timer(Rfc3339Micros)
        .with_writer(SinkWriter(Sink::Capture))
        .with_ansi(false)
        // netrun::origin… or netrun::proxy…: which service said it.
        .with_target(true)
        .with_filter(
            Targets::new()
                .with_target("netrun::origin", Level::INFO)
                .with_target("netrun::proxy", Level::INFO),
        );
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(capture)
        .try_init();
}

/// Whether `filter` lets INFO request lines of the origin and of the
/// proxy through (asked of the filter alone, as the stderr layer asks it).
fn stderr_takes_requests(filter: EnvFilter) -> [bool; 2] {
    let alone = tracing::Dispatch::new(tracing_subscriber::registry().with(filter));
    tracing::dispatcher::with_default(&alone, || {
        [
            tracing::enabled!(target: "netrun::origin", Level::INFO),
            tracing::enabled!(target: "netrun::proxy", Level::INFO),
        ]
    })
}

/// The process's writer: stderr, and the run's capture file when one is open.
fn global() -> Option<&'static LogWriter<AtomicFile>> {
    static WRITER: OnceLock<Option<LogWriter<AtomicFile>>> = OnceLock::new();
    WRITER
        .get_or_init(|| LogWriter::start(io::stderr(), QUEUE).ok())
        .as_ref()
}

/// Sends service log lines to `sink` until [`capture_stop`] is called.
pub fn capture_start(sink: AtomicFile) {
    if let Some(w) = global() {
        w.capture_start(sink);
    }
}

/// Writes a line of the run's own (a variant header, say) into the capture.
pub fn capture_note(line: &str) {
    if let Some(w) = global() {
        w.note(line);
    }
}

/// Ends the capture and hands the sink back (to be flushed and committed),
/// every line logged before the call written into it.
pub fn capture_stop() -> Option<AtomicFile> {
    global().and_then(LogWriter::capture_stop)
}

/// Writes every log line still waiting. Called before the process exits (a
/// return from `main` or a forced exit); gives up after a second on a sink
/// that does not take them.
pub fn flush() {
    if let Some(w) = global() {
        w.flush(Duration::from_secs(1));
    }
}

/// Which of the two outputs a line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stderr,
    Capture,
}

struct SinkWriter(Sink);

impl<'a> MakeWriter<'a> for SinkWriter {
    type Writer = SinkLine;

    fn make_writer(&'a self) -> Self::Writer {
        SinkLine(self.0)
    }
}

/// One formatted event (the fmt layer writes each event in one call).
struct SinkLine(Sink);

impl Write for SinkLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match global() {
            Some(w) => w.line(self.0, buf),
            // No writer thread could be started: stderr directly.
            None if self.0 == Sink::Stderr => io::stderr().write_all(buf)?,
            None => {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Lines the queue holds before new ones are dropped: a quarter of a
/// second of request lines at 65k requests/s, ~2.5 MB at their usual
/// length. Memory is taken only as lines wait (a preallocated queue would
/// hold it for the whole run: a UDP probe's memory ceiling counts it).
const QUEUE: usize = 16 * 1024;
/// How long the writer thread lets lines gather before one `write`: short
/// enough that a person watching the log sees no delay, long enough that
/// under load one write carries hundreds of lines and a logging thread
/// rarely has to wake the writer. A capture's end and a flush cut it
/// short: at the end of a short run the run would otherwise wait it out.
const GATHER: Duration = Duration::from_millis(2);
/// Past this many bytes gathered for a sink, they are written at once.
const MAX_BATCH: usize = 1 << 20;

/// What goes down the queue to the writer thread.
enum Msg<C> {
    Line(Sink, Vec<u8>),
    /// A capture file to write [`Sink::Capture`] lines into.
    Open(C),
    /// Hand the capture file back, every earlier line written into it.
    Close(SyncSender<Option<C>>),
    /// Answer once every earlier line is written.
    Flush(SyncSender<()>),
}

/// A non-blocking writer for two sinks: [`LogWriter::line`] never waits (a
/// full queue drops the line and counts it); one thread owns stderr and
/// the capture file and writes the lines in batches, in the order they
/// came. `C` is the capture file's type (an [`AtomicFile`] in netrun).
pub struct LogWriter<C> {
    tx: Sender<Msg<C>>,
    /// The writer thread and its wake-up call: a line lets the writer
    /// gather on, a capture's end or a flush (someone waiting) cuts the
    /// gathering short instead of waiting it out.
    writer: std::thread::Thread,
    urgent: Arc<AtomicBool>,
    /// Lines queued and not yet taken by the writer; at `bound`, new lines
    /// are dropped.
    queued: Arc<AtomicUsize>,
    bound: usize,
    /// Whether a capture file is open: capture lines are not queued otherwise.
    capturing: AtomicBool,
    /// Lines dropped with the queue full, per sink, not yet reported.
    dropped: Arc<[AtomicU64; 2]>,
}

impl<C: Write + Send + 'static> LogWriter<C> {
    /// Starts the writer thread, writing stderr lines to `stderr`, with room
    /// for `queue` lines.
    pub fn start(stderr: impl Write + Send + 'static, queue: usize) -> io::Result<Self> {
        Self::start_gathering(stderr, queue, GATHER)
    }

    /// [`LogWriter::start`] with lines gathered for `gather` before a write.
    fn start_gathering(
        stderr: impl Write + Send + 'static,
        queue: usize,
        gather: Duration,
    ) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let dropped: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let queued = Arc::new(AtomicUsize::new(0));
        let urgent = Arc::new(AtomicBool::new(false));
        let (counts, taken, hurry) = (dropped.clone(), queued.clone(), urgent.clone());
        let writer = std::thread::Builder::new()
            .name("netrun-log".into())
            .spawn(move || {
                let gathering = Gathering {
                    period: gather,
                    urgent: &hurry,
                };
                write_lines(rx, stderr, &counts, &taken, gathering)
            })?;
        Ok(LogWriter {
            tx,
            writer: writer.thread().clone(),
            urgent,
            queued,
            bound: queue,
            capturing: AtomicBool::new(false),
            dropped,
        })
    }

    /// Queues one line for `sink`, or drops it (counted) when the queue is
    /// full. Never blocks.
    pub fn line(&self, sink: Sink, line: &[u8]) {
        if sink == Sink::Capture && !self.capturing() {
            return;
        }
        self.line_owned(sink, line.to_vec());
    }

    /// [`LogWriter::line`] for a line the caller has no further use for:
    /// queued without a copy.
    pub fn line_owned(&self, sink: Sink, line: Vec<u8>) {
        if sink == Sink::Capture && !self.capturing() {
            return;
        }
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.bound {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped[sink as usize].fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.tx.send(Msg::Line(sink, line)).is_err() {
            // The writer is gone: nothing will take it.
            self.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether a capture file is open (capture lines are dropped otherwise).
    pub fn capturing(&self) -> bool {
        self.capturing.load(Ordering::Acquire)
    }

    /// Lines dropped so far and not yet reported in the log, per sink.
    pub fn dropped(&self, sink: Sink) -> u64 {
        self.dropped[sink as usize].load(Ordering::Relaxed)
    }

    /// Writes capture lines into `file` from now on.
    pub fn capture_start(&self, file: C) {
        // Queued before the flag goes up, so no capture line overtakes it.
        if self.tx.send(Msg::Open(file)).is_ok() {
            self.capturing.store(true, Ordering::Release);
        }
    }

    /// A line of the caller's own into the capture, past the bound (it is
    /// not on a serving path, and is never dropped).
    pub fn note(&self, line: &str) {
        if self.capturing.load(Ordering::Acquire) {
            self.queued.fetch_add(1, Ordering::Relaxed);
            let _ = self
                .tx
                .send(Msg::Line(Sink::Capture, format!("{line}\n").into_bytes()));
        }
    }

    /// Stops capturing and returns the file with every line queued before
    /// the call written into it (waits for the writer).
    pub fn capture_stop(&self) -> Option<C> {
        self.capturing.store(false, Ordering::Release);
        let (tx, rx) = mpsc::sync_channel(1);
        self.tx.send(Msg::Close(tx)).ok()?;
        self.hurry();
        rx.recv().ok().flatten()
    }

    /// Wakes the writer if it is gathering lines: someone waits for it.
    fn hurry(&self) {
        self.urgent.store(true, Ordering::Release);
        self.writer.unpark();
    }

    /// Waits up to `timeout` for every line queued so far to be written.
    pub fn flush(&self, timeout: Duration) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            self.hurry();
            if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(timeout) {
                // A stderr nobody reads: exit anyway.
            }
        }
    }
}

/// How the writer thread lets lines gather: for `period` after the first,
/// or until a capture's end or a flush asks it to hurry (`urgent`).
struct Gathering<'a> {
    period: Duration,
    urgent: &'a AtomicBool,
}

impl Gathering<'_> {
    /// Waits out the period, or less if someone waits for the lines. A
    /// line never wakes the writer: the threads logging make no system
    /// call for it while it gathers. (A hurry left over from a message
    /// taken without gathering cuts the next gathering short once.)
    fn wait(&self) {
        let end = std::time::Instant::now() + self.period;
        while !self.urgent.swap(false, Ordering::AcqRel) {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::park_timeout(left);
        }
    }
}

/// The writer thread: gathers ([`Gathering`], [`GATHER`]) after the first
/// line, then writes everything waiting, one write per sink. Ends when the
/// [`LogWriter`] is dropped.
fn write_lines<C: Write>(
    rx: Receiver<Msg<C>>,
    mut stderr: impl Write,
    dropped: &[AtomicU64; 2],
    queued: &AtomicUsize,
    gathering: Gathering<'_>,
) {
    let mut capture: Option<C> = None;
    let mut batch = [Vec::with_capacity(64 * 1024), Vec::new()];
    while let Ok(first) = rx.recv() {
        if matches!(first, Msg::Line(..)) {
            gathering.wait();
        }
        let mut next = Some(first);
        while let Some(msg) = next.take().or_else(|| rx.try_recv().ok()) {
            match msg {
                Msg::Line(sink, line) => {
                    queued.fetch_sub(1, Ordering::Relaxed);
                    let buf = &mut batch[sink as usize];
                    buf.extend_from_slice(&line);
                    if buf.len() > MAX_BATCH {
                        write_out(&mut batch, &mut stderr, &mut capture, dropped);
                    }
                }
                // Capture lines are queued only after this (and the last
                // capture's were written at its Close): nothing to write first.
                Msg::Open(file) => capture = Some(file),
                Msg::Close(reply) => {
                    write_out(&mut batch, &mut stderr, &mut capture, dropped);
                    let _ = reply.send(capture.take());
                }
                Msg::Flush(reply) => {
                    write_out(&mut batch, &mut stderr, &mut capture, dropped);
                    let _ = stderr.flush();
                    let _ = reply.send(());
                }
            }
        }
        write_out(&mut batch, &mut stderr, &mut capture, dropped);
    }
}

/// Writes both batches (a note first for lines dropped since the last
/// write) and empties them. Capture lines with no file open are discarded.
fn write_out<C: Write>(
    batch: &mut [Vec<u8>; 2],
    stderr: &mut impl Write,
    capture: &mut Option<C>,
    dropped: &[AtomicU64; 2],
) {
    for sink in [Sink::Stderr, Sink::Capture] {
        let buf = &mut batch[sink as usize];
        let lost = dropped[sink as usize].swap(0, Ordering::Relaxed);
        if lost > 0 {
            buf.extend_from_slice(
                format!(
                    "{} WARN netrun: {lost} log lines dropped: the log's destination could not keep up\n",
                    humantime::format_rfc3339_micros(SystemTime::now())
                )
                .as_bytes(),
            );
        }
        if buf.is_empty() {
            continue;
        }
        // A failed write is the file's to remember (an AtomicFile will not
        // commit); stderr has nowhere else to say it.
        let _ = match sink {
            Sink::Stderr => stderr.write_all(buf),
            Sink::Capture => capture.as_mut().map_or(Ok(()), |f| f.write_all(buf)),
        };
        buf.clear();
    }
}
/// The timestamps tracing writes by default (RFC 3339, microseconds, UTC:
/// `2026-11-26T17:28:22.513609Z`), with the date and time of day worked
/// out once a second per thread instead of once per line.
struct Rfc3339Micros;

thread_local! {
    /// The second last formatted, and its text up to the seconds.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl FormatTime for Rfc3339Micros {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write_timestamp(w)
    }
}

/// Writes the time now as [`Rfc3339Micros`] shows it.
fn write_timestamp(w: &mut impl fmt::Write) -> fmt::Result {
    let now = SystemTime::now();
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    SECOND.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.0 != since.as_secs() {
            let text = humantime::format_rfc3339_seconds(now).to_string();
            cell.1 = text.trim_end_matches('Z').to_string();
            cell.0 = since.as_secs();
        }
        write!(w, "{}.{:06}Z", cell.1, since.subsec_micros())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};

    #[test]
    fn request_lines_reach_stderr_as_the_filter_says() {
        for (directives, want) in [
            ("warn,netrun=info", [true, true]),
            ("warn,netrun=warn", [false, false]),
            ("warn,netrun::proxy=info", [false, true]),
            ("netrun::origin=debug", [true, false]),
        ] {
            let got = stderr_takes_requests(EnvFilter::new(directives));
            assert_eq!(got, want, "{directives}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_with_microseconds() {
        let mut out = String::new();
        Rfc3339Micros
            .format_time(&mut Writer::new(&mut out))
            .unwrap();
        let parsed = humantime::parse_rfc3339(&out).unwrap();
        let back = humantime::format_rfc3339_micros(parsed).to_string();
        assert_eq!(out, back);
        let age = SystemTime::now().duration_since(parsed).unwrap();
        assert!(age < Duration::from_secs(60), "{out}");
        // The same second again comes from the cached prefix.
        let mut again = String::new();
        Rfc3339Micros
            .format_time(&mut Writer::new(&mut again))
            .unwrap();
        assert_eq!(again.len(), out.len());
        assert!(humantime::parse_rfc3339(&again).is_ok(), "{again}");
    }

    /// A sink that keeps what it is given; while `stuck`, every write
    /// waits (a full disk or a pipe nobody reads).
    #[derive(Clone, Default)]
    struct Held {
        stuck: Arc<(Mutex<bool>, Condvar)>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Held {
        fn set_stuck(&self, stuck: bool) {
            *self.stuck.0.lock().unwrap() = stuck;
            self.stuck.1.notify_all();
        }

        fn text(&self) -> String {
            String::from_utf8(self.got.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Held {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, cv) = &*self.stuck;
            let _free = cv.wait_while(lock.lock().unwrap(), |s| *s).unwrap();
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Sum of the counts in "N log lines dropped" notes.
    fn dropped_in(text: &str) -> u64 {
        text.lines()
            .filter_map(|l| l.split(" WARN netrun: ").nth(1))
            .filter_map(|rest| rest.split(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    #[test]
    fn lines_reach_both_sinks_in_order_and_the_capture_comes_back_whole() {
        let (stderr, file) = (Held::default(), Held::default());
        let w = LogWriter::start(stderr.clone(), 1024).unwrap();
        w.line(Sink::Capture, b"before the capture\n");
        w.capture_start(file.clone());
        w.note("# header");
        for i in 0..500 {
            w.line(Sink::Capture, format!("capture {i}\n").as_bytes());
            w.line(Sink::Stderr, format!("stderr {i}\n").as_bytes());
        }
        let back = w.capture_stop().expect("the capture file comes back");
        w.line(Sink::Capture, b"after the capture\n");
        w.flush(Duration::from_secs(60));
        let want: String = std::iter::once("# header\n".to_string())
            .chain((0..500).map(|i| format!("capture {i}\n")))
            .collect();
        assert_eq!(back.text(), want);
        let want: String = (0..500).map(|i| format!("stderr {i}\n")).collect();
        assert_eq!(stderr.text(), want);
    }

    #[test]
    fn the_end_of_a_capture_and_a_flush_do_not_wait_out_the_gathering() {
        // Gathering for an hour: only a hurried writer answers in time.
        let (stderr, file) = (Held::default(), Held::default());
        let w =
            LogWriter::start_gathering(stderr.clone(), 1024, Duration::from_secs(3600)).unwrap();
        w.capture_start(file.clone());
        w.line(Sink::Capture, b"served\n");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let back = w.capture_stop();
            w.line(Sink::Stderr, b"warned\n");
            w.flush(Duration::from_secs(3600));
            let _ = tx.send(back.map(|f| f.text()));
        });
        let back = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("capture_stop and flush returned without waiting an hour");
        assert_eq!(back.as_deref(), Some("served\n"));
        assert_eq!(stderr.text(), "warned\n");
    }

    #[test]
    fn a_stuck_sink_never_blocks_the_threads_logging() {
        let (stderr, file) = (Held::default(), Held::default());
        let w = LogWriter::start(stderr.clone(), 16).unwrap();
        w.capture_start(file.clone());
        file.set_stuck(true);
        stderr.set_stuck(true);
        // With both sinks stuck, 20,000 lines still go by: reaching the
        // next line at all is the test (a blocking writer never returns).
        const LINES: u64 = 10_000;
        for i in 0..LINES {
            w.line(Sink::Capture, format!("capture {i}\n").as_bytes());
            w.line(Sink::Stderr, format!("stderr {i}\n").as_bytes());
        }
        assert!(
            w.dropped(Sink::Capture) > 0,
            "a queue of 16 cannot hold them"
        );
        assert!(w.dropped(Sink::Stderr) > 0);
        // Unstuck, what was kept arrives, and the log says how much was not.
        file.set_stuck(false);
        stderr.set_stuck(false);
        let back = w.capture_stop().unwrap();
        w.flush(Duration::from_secs(60));
        for (sink, prefix) in [(&back, "capture "), (&stderr, "stderr ")] {
            let text = sink.text();
            let kept: Vec<u64> = text
                .lines()
                .filter_map(|l| l.strip_prefix(prefix)?.parse().ok())
                .collect();
            assert!(kept.windows(2).all(|p| p[0] < p[1]), "in order");
            assert_eq!(kept.len() as u64 + dropped_in(&text), LINES, "{text}");
        }
    }
}
