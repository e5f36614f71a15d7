//! The services' one line per request, written straight into the log queue.
//!
//! `tracing`'s formatter costs ~24,000 instructions a line (field visitors,
//! padding, styles, and a second formatting for the capture layer even when
//! no capture is open): more than the rest of a cached request. A request
//! line here is built once, in the very format `tracing_subscriber::fmt`
//! gives it (a test holds the two side by side), and queued to each sink
//! that would have taken it. Everything else still goes through `tracing`.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use super::{global, Sink};

/// Which service a request line is from: its log target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `netrun::origin`.
    Origin,
    /// `netrun::proxy`.
    Proxy,
}

impl Service {
    fn target(self) -> &'static str {
        match self {
            Service::Origin => "netrun::origin",
            Service::Proxy => "netrun::proxy",
        }
    }
}

/// Where request lines go, decided once by [`super::init`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Routes {
    /// Whether the stderr filter takes INFO lines of each service.
    pub(super) stderr: [bool; 2],
    /// Whether stderr lines carry ANSI styles (a terminal).
    pub(super) ansi: bool,
}

pub(super) static ROUTES: OnceLock<Routes> = OnceLock::new();

/// A request line's message and fields, in `tracing`'s order: the message
/// first, then `name=value` pairs, one space apart.
pub struct Line {
    buf: String,
    ansi: bool,
}

impl Line {
    /// The line's message, control characters escaped as `tracing` does
    /// (a client chooses the paths it shows).
    pub fn message(&mut self, text: fmt::Arguments<'_>) -> &mut Self {
        self.pad();
        let _ = Escaping(&mut self.buf).write_fmt(text);
        self
    }

    /// A `name=value` field, the value by its `Display`.
    pub fn field(&mut self, name: &str, value: impl fmt::Display) -> &mut Self {
        self.pad();
        if self.ansi {
            let _ = write!(self.buf, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m{value}");
        } else {
            let _ = write!(self.buf, "{name}={value}");
        }
        self
    }

    fn pad(&mut self) {
        if !self.buf.is_empty() {
            self.buf.push(' ');
        }
    }
}

thread_local! {
    /// The fields of the line being built, reused line after line.
    static FIELDS: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Logs one INFO request line of `service`, its message and fields written
/// by `build`, to stderr and the run's capture as far as their filters
/// take it; `build` is not called when neither does (or [`super::init`]
/// was never called: as with no `tracing` subscriber, nothing is logged).
pub fn info(service: Service, build: impl Fn(&mut Line)) {
    let (Some(routes), Some(writer)) = (ROUTES.get(), global()) else {
        return;
    };
    let to_stderr = routes.stderr[service as usize];
    let to_capture = writer.capturing();
    if !to_stderr && !to_capture {
        return;
    }
    FIELDS.with(|cell| {
        let Ok(mut fields) = cell.try_borrow_mut() else {
            return;
        };
        let mut stamp = String::with_capacity(32);
        let _ = super::write_timestamp(&mut stamp);
        let styled = to_stderr && routes.ansi;
        fill(&mut fields, styled, &build);
        if to_stderr {
            writer.line_owned(Sink::Stderr, prefixed(&stamp, None, styled, &fields));
        }
        if to_capture {
            if styled {
                fill(&mut fields, false, &build);
            }
            let line = prefixed(&stamp, Some(service.target()), false, &fields);
            writer.line_owned(Sink::Capture, line);
        }
    });
}

/// Writes the message and fields `build` gives into `fields`.
fn fill(fields: &mut String, ansi: bool, build: &impl Fn(&mut Line)) {
    let mut line = Line {
        buf: std::mem::take(fields),
        ansi,
    };
    line.buf.clear();
    build(&mut line);
    *fields = line.buf;
}

/// `<timestamp> <level> [<target>: ]<fields>\n`, as `tracing`'s full format.
fn prefixed(stamp: &str, target: Option<&str>, ansi: bool, fields: &str) -> Vec<u8> {
    let mut line = String::with_capacity(stamp.len() + fields.len() + 40);
    if ansi {
        line.push_str("\x1b[2m");
        line.push_str(stamp);
        line.push_str("\x1b[0m \x1b[32m INFO\x1b[0m ");
        if let Some(t) = target {
            let _ = write!(line, "\x1b[2m{t}\x1b[0m\x1b[2m:\x1b[0m ");
        }
    } else {
        line.push_str(stamp);
        line.push_str("  INFO ");
        if let Some(t) = target {
            line.push_str(t);
            line.push_str(": ");
        }
    }
    line.push_str(fields);
    line.push('\n');
    line.into_bytes()
}

/// Writes through to `.0`, escaping the characters `tracing` escapes in
/// messages (those a terminal would act on).
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // ASCII without those controls (nearly every message): as it is.
        let plain = |b: &u8| b.is_ascii() && !matches!(b, 0x1b | 0x07 | 0x08 | 0x0c | 0x7f);
        if s.as_bytes().iter().all(plain) {
            self.0.push_str(s);
            return Ok(());
        }
        for c in s.chars() {
            match c {
                '\x1b' => self.0.push_str("\\x1b"),
                '\x07' => self.0.push_str("\\x07"),
                '\x08' => self.0.push_str("\\x08"),
                '\x0c' => self.0.push_str("\\x0c"),
                '\x7f' => self.0.push_str("\\x7f"),
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", c as u32)?,
                c => self.0.push(c),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Kept {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Kept {
        type Writer = Kept;
        fn make_writer(&'a self) -> Kept {
            self.clone()
        }
    }

    /// What `tracing_subscriber::fmt` (as [`super::super::init`] sets it
    /// up) writes for `event`, timestamp and all.
    fn by_tracing(target: bool, ansi: bool, event: impl FnOnce()) -> String {
        let kept = Kept::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_timer(super::super::Rfc3339Micros)
            .with_writer(kept.clone())
            .with_ansi(ansi)
            .with_target(target);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, event);
        let text = String::from_utf8(kept.0.lock().unwrap().clone()).unwrap();
        text
    }

    /// The same line from [`info`]'s rendering.
    fn by_hand(target: bool, ansi: bool, service: Service, build: impl Fn(&mut Line)) -> String {
        let mut fields = String::new();
        fill(&mut fields, ansi, &build);
        let mut stamp = String::new();
        super::super::write_timestamp(&mut stamp).unwrap();
        let target = target.then(|| service.target());
        String::from_utf8(prefixed(&stamp, target, ansi, &fields)).unwrap()
    }

    /// Both lines with their timestamps (the first 27 characters after any
    /// leading style) blanked.
    fn untimed(line: &str) -> String {
        let at = line.find("20").expect("a timestamp");
        format!("{}{}", &line[..at], &line[at + 27..])
    }

    #[test]
    fn request_lines_read_exactly_as_tracing_writes_them() {
        let peer: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let duration = std::time::Duration::from_micros(98_975);
        let path = "/a\x1bb\u{85}.txt";
        for (target, ansi) in [(false, false), (true, false), (false, true), (true, true)] {
            let ours = by_hand(target, ansi, Service::Origin, |line| {
                line.message(format_args!("request"))
                    .field("peer", peer)
                    .field("method", &http::Method::GET)
                    .field("path", "/1k.txt")
                    .field("status", 200u16)
                    .field("bytes", 1024u64)
                    .field("duration", format_args!("{duration:?}"))
                    .field("complete", true);
            });
            let theirs = by_tracing(target, ansi, || {
                tracing::info!(
                    target: "netrun::origin",
                    peer = %peer,
                    method = %http::Method::GET,
                    path = %"/1k.txt",
                    status = 200u16,
                    bytes = 1024u64,
                    duration = ?duration,
                    complete = true,
                    "request"
                );
            });
            assert_eq!(
                untimed(&ours),
                untimed(&theirs),
                "target {target}, ansi {ansi}"
            );

            let ours = by_hand(target, ansi, Service::Proxy, |line| {
                line.message(format_args!("GET {path} 200 HIT {:.1}ms", 0.25))
                    .field("peer", peer);
            });
            let theirs = by_tracing(target, ansi, || {
                tracing::info!(target: "netrun::proxy", %peer, "GET {path} 200 HIT {:.1}ms", 0.25);
            });
            assert_eq!(
                untimed(&ours),
                untimed(&theirs),
                "target {target}, ansi {ansi}"
            );
        }
    }
}
