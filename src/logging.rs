//! Logs go to stderr through `tracing`: one line per request or flow event.
//! `-v` raises the level; `RUST_LOG` overrides everything.
//!
//! During a scenario run the origin's and proxy's lines also go to a capture
//! file (`results/<name>/services.log`), and stderr keeps only warnings so the
//! progress bars stay readable.
//!
//! Lines reach stderr through a writer thread that gathers what a couple of
//! milliseconds bring ([`Batched`]): under load one `write` carries dozens
//! of request lines instead of one each, off the threads serving requests.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::atomic_file::AtomicFile;

/// Where captured service lines go while a run is active.
static CAPTURE: Mutex<Option<AtomicFile>> = Mutex::new(None);
static CAPTURING: AtomicBool = AtomicBool::new(false);

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
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,netrun={level}")));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(StderrWriter)
        .with_ansi(io::stderr().is_terminal())
        .with_target(false)
        .with_filter(filter);
    let capture = tracing_subscriber::fmt::layer()
        .with_writer(CaptureWriter)
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

/// Sends service log lines to `sink` until [`capture_stop`] is called.
pub fn capture_start(sink: AtomicFile) {
    if let Ok(mut slot) = CAPTURE.lock() {
        *slot = Some(sink);
        CAPTURING.store(true, Ordering::Release);
    }
}

/// Writes a line of the run's own (a variant header, say) into the capture.
pub fn capture_note(line: &str) {
    if let Ok(mut slot) = CAPTURE.lock() {
        if let Some(w) = slot.as_mut() {
            let _ = writeln!(w, "{line}");
        }
    }
}

/// Ends the capture and hands the sink back (to be flushed and committed).
pub fn capture_stop() -> Option<AtomicFile> {
    CAPTURING.store(false, Ordering::Release);
    CAPTURE.lock().ok().and_then(|mut slot| slot.take())
}

struct CaptureWriter;

impl<'a> MakeWriter<'a> for CaptureWriter {
    type Writer = CaptureLine;

    fn make_writer(&'a self) -> Self::Writer {
        CaptureLine
    }
}

/// One formatted event; written through only while a capture is active.
struct CaptureLine;

impl Write for CaptureLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if CAPTURING.load(Ordering::Acquire) {
            if let Ok(mut slot) = CAPTURE.lock() {
                if let Some(w) = slot.as_mut() {
                    w.write_all(buf)?;
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How long the writer thread lets lines gather before one `write`: short
/// enough that a person watching the log sees no delay.
const GATHER: Duration = Duration::from_millis(2);
/// Past this many bytes waiting, the thread logging writes them itself:
/// a stderr nobody reads slows logging down instead of filling memory.
const MAX_PENDING: usize = 1 << 20;

/// Lines on their way to stderr, and the writer thread's wake-up call.
struct Batched {
    pending: Mutex<Vec<u8>>,
    ready: Condvar,
    /// Held while bytes go to stderr, taken before `pending`, so batches
    /// leave in the order their lines arrived.
    out: Mutex<()>,
}

static BATCHED: OnceLock<Option<&'static Batched>> = OnceLock::new();

/// The shared batch, its writer thread started on first use; `None` if no
/// thread could be started (lines are then written directly).
fn batched() -> Option<&'static Batched> {
    *BATCHED.get_or_init(|| {
        let b: &'static Batched = Box::leak(Box::new(Batched {
            pending: Mutex::new(Vec::with_capacity(64 * 1024)),
            ready: Condvar::new(),
            out: Mutex::new(()),
        }));
        std::thread::Builder::new()
            .name("netrun-log".into())
            .spawn(move || b.run())
            .ok()
            .map(|_| b)
    })
}

impl Batched {
    fn run(&self) {
        loop {
            if let Ok(mut pending) = self.pending.lock() {
                while pending.is_empty() {
                    pending = match self.ready.wait(pending) {
                        Ok(p) => p,
                        Err(_) => return,
                    };
                }
            }
            std::thread::sleep(GATHER);
            self.write_out();
        }
    }

    fn push(&self, line: &[u8]) -> io::Result<()> {
        let Ok(mut pending) = self.pending.lock() else {
            return io::stderr().write_all(line);
        };
        let was_empty = pending.is_empty();
        pending.extend_from_slice(line);
        let full = pending.len() > MAX_PENDING;
        drop(pending);
        if full {
            self.write_out();
        } else if was_empty {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Writes what is waiting, in order; returns when it is on stderr.
    fn write_out(&self) {
        let Ok(_out) = self.out.lock() else { return };
        let batch = match self.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return,
        };
        if !batch.is_empty() {
            let _ = io::stderr().write_all(&batch);
        }
    }
}

/// Writes every log line still waiting to stderr. Called before the
/// process exits (a return from `main` or a forced exit).
pub fn flush() {
    if let Some(Some(b)) = BATCHED.get() {
        b.write_out();
    }
}

struct StderrWriter;

impl<'a> MakeWriter<'a> for StderrWriter {
    type Writer = StderrLine;

    fn make_writer(&'a self) -> Self::Writer {
        StderrLine
    }
}

/// One formatted event (the fmt layer writes each event in one call).
struct StderrLine;

impl Write for StderrLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match batched() {
            Some(b) => b.push(buf)?,
            None => io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
