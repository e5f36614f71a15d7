//! Standard output for the commands: `out!`/`outln!` instead of
//! `print!`/`println!`, which panic when the reader has gone (`netrun merge
//! … | head`). A closed pipe makes every later line a no-op, quietly, and
//! the command still finishes its work (results are files; what is printed
//! is a view of them). Any other failure to write is said once on stderr.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to stdout, as `print!` does, unless stdout failed before.
pub fn write(args: std::fmt::Arguments<'_>) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args) {
        if !CLOSED.swap(true, Ordering::Relaxed) && e.kind() != ErrorKind::BrokenPipe {
            let _ = writeln!(
                std::io::stderr(),
                "warning: cannot write to standard output ({e}); the rest is not printed"
            );
        }
    }
}

/// Writes `args` to stderr, as `eprint!` does, but a failure to write
/// (stderr closed, a full disk behind a redirect) is ignored instead of a
/// panic: warnings and progress lines are a view, never the result.
pub fn write_err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}
