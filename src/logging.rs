//! Logs go to stderr through `tracing`: one line per request or flow event.
//! `-v` raises the level; `RUST_LOG` overrides everything.
//!
//! During a scenario run the origin's and proxy's lines also go to a capture
//! file (`results/<name>/services.log`), and stderr keeps only warnings so the
//! progress bars stay readable.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

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
        .with_writer(io::stderr)
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
