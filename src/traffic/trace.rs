//! Request traces on disk: CSV with a header naming at least `timestamp`
//! (seconds), `key` (text without `/`) and `size` (bytes), other columns
//! ignored, gzip-compressed when the name ends in `.gz`. Read as a stream,
//! one record at a time, never whole; written the same way.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use super::catalog::Object;

/// A problem in a trace: the file, the line and what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}:{line}: {message}", path.display())]
pub struct TraceError {
    pub path: PathBuf,
    /// 1-based; the header is line 1 (0: the file could not be opened).
    pub line: u64,
    pub message: String,
}

/// One request of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRecord {
    /// Where it is in the file, 1-based.
    pub line: u64,
    /// Seconds, on the trace's own clock.
    pub timestamp: f64,
    pub object: Object,
}

/// Reads a trace record by record.
pub struct TraceReader {
    path: PathBuf,
    csv: csv::Reader<Box<dyn Read + Send>>,
    record: csv::StringRecord,
    columns: [usize; 3],
    /// Refuse a timestamp earlier than the one before (recorded timing).
    in_order: bool,
    last: Option<(f64, u64)>,
}

impl std::fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceReader")
            .field("path", &self.path)
            .finish()
    }
}

const COLUMNS: [&str; 3] = ["timestamp", "key", "size"];

/// Opens `path` for reading, through gzip when it ends in `.gz`.
fn open_input(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let file = BufReader::with_capacity(1 << 16, File::open(path)?);
    Ok(if is_gz(path) {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

fn is_gz(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

impl TraceReader {
    /// Opens a trace and checks its header. With `in_order`, a timestamp
    /// before the previous line's is an error when it is read.
    pub fn open(path: &Path, in_order: bool) -> Result<Self, TraceError> {
        let fail = |line, message: String| TraceError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let input = open_input(path).map_err(|e| fail(0, format!("cannot open the trace: {e}")))?;
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(input);
        let header = csv
            .headers()
            .map_err(|e| fail(1, format!("cannot read the header: {e}")))?
            .clone();
        let mut columns = [0; 3];
        for (slot, name) in columns.iter_mut().zip(COLUMNS) {
            *slot = header
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| {
                    fail(
                        1,
                        format!(
                            "the header has no `{name}` column; a trace's header names at least \
                         `timestamp,key,size` (other columns are ignored)"
                        ),
                    )
                })?;
        }
        Ok(TraceReader {
            path: path.to_path_buf(),
            csv,
            record: csv::StringRecord::new(),
            columns,
            in_order,
            last: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, line: u64, message: String) -> TraceError {
        TraceError {
            path: self.path.clone(),
            line,
            message,
        }
    }

    /// The next record; `None` at the end of the file.
    pub fn next_record(&mut self) -> Option<Result<TraceRecord, TraceError>> {
        let line = match self.advance()? {
            Ok(line) => line,
            Err(e) => return Some(Err(e)),
        };
        Some(self.check(line).map(|(timestamp, size)| TraceRecord {
            line,
            timestamp,
            object: Object {
                key: self.key().to_string(),
                size,
            },
        }))
    }

    /// The next request as its timestamp and the origin's path for it
    /// (`Object::path`), built straight from the line: what a replay sends,
    /// without the record's own copy of the key.
    pub fn next_request(&mut self) -> Option<Result<(f64, String), TraceError>> {
        let line = match self.advance()? {
            Ok(line) => line,
            Err(e) => return Some(Err(e)),
        };
        Some(
            self.check(line).map(|(timestamp, size)| {
                (timestamp, super::catalog::object_path(self.key(), size))
            }),
        )
    }

    /// Reads the next line into `record`: its line number, `None` at the end.
    fn advance(&mut self) -> Option<Result<u64, TraceError>> {
        match self.csv.read_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Some(Err(self.error(line, format!("unreadable line: {e}"))));
            }
        }
        Some(Ok(self.record.position().map_or(0, |p| p.line())))
    }

    fn field(&self, i: usize) -> &str {
        self.record.get(self.columns[i]).unwrap_or("").trim()
    }

    /// The current line's key (checked by `check`).
    fn key(&self) -> &str {
        self.field(1)
    }

    /// Checks the current line: its timestamp and size, the key valid.
    fn check(&mut self, line: u64) -> Result<(f64, u64), TraceError> {
        let (ts, key, size) = (self.field(0), self.field(1), self.field(2));
        let timestamp = ts
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite())
            .ok_or_else(|| {
                self.error(line, format!("timestamp `{ts}` is not a number of seconds"))
            })?;
        if key.is_empty() {
            return Err(self.error(line, "the key is empty; give each request a key".into()));
        }
        if key.contains('/') {
            return Err(self.error(
                line,
                format!("key `{key}` contains `/`; a key is one path segment: replace the `/` (e.g. with `_`)"),
            ));
        }
        let size = size.parse::<u64>().map_err(|_| {
            self.error(
                line,
                format!("size `{size}` is not a whole number of bytes"),
            )
        })?;
        if self.in_order {
            if let Some((last, last_line)) = self.last {
                if timestamp < last {
                    return Err(self.error(
                        line,
                        format!(
                            "timestamp {timestamp} is earlier than {last} on line {last_line}; \
                             sort the trace by timestamp, or replay it with timing = \"fast\""
                        ),
                    ));
                }
            }
            self.last = Some((timestamp, line));
        }
        Ok((timestamp, size))
    }
}

/// What a whole trace holds, from one streamed pass.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TraceSummary {
    pub requests: u64,
    /// Last timestamp minus first (in order: the recorded duration).
    pub span: f64,
    pub largest: u64,
}

/// Reads a whole trace once, checking every line; the first problem is the error.
pub fn scan(path: &Path, in_order: bool) -> Result<TraceSummary, TraceError> {
    let mut reader = TraceReader::open(path, in_order)?;
    let mut s = TraceSummary::default();
    let mut first = None;
    while let Some(r) = reader.next_record() {
        let r = r?;
        let first = *first.get_or_insert(r.timestamp);
        s.requests += 1;
        s.span = s.span.max(r.timestamp - first);
        s.largest = s.largest.max(r.object.size);
    }
    if s.requests == 0 {
        return Err(TraceError {
            path: path.to_path_buf(),
            line: 1,
            message: "the trace has no requests after its header".into(),
        });
    }
    Ok(s)
}

/// Writes a trace (gzip when asked): header, then one line per request.
pub struct TraceWriter<W: Write> {
    out: Sink<W>,
}

enum Sink<W: Write> {
    Plain(W),
    Gz(flate2::write::GzEncoder<W>),
}

impl<W: Write> TraceWriter<W> {
    /// Gzip-compressed when `path` (the name it will have) ends in `.gz`.
    pub fn new(out: W, path: &Path) -> io::Result<Self> {
        let out = if is_gz(path) {
            Sink::Gz(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::default(),
            ))
        } else {
            Sink::Plain(out)
        };
        let mut w = TraceWriter { out };
        w.sink().write_all(b"timestamp,key,size\n")?;
        Ok(w)
    }

    fn sink(&mut self) -> &mut dyn Write {
        match &mut self.out {
            Sink::Plain(w) => w,
            Sink::Gz(w) => w,
        }
    }

    /// Keys are written as they are: callers give keys without `,`,
    /// quotes or line breaks.
    pub fn write(&mut self, timestamp: f64, object: &Object) -> io::Result<()> {
        writeln!(self.sink(), "{timestamp:.6},{},{}", object.key, object.size)
    }

    /// Ends the gzip stream, if any, and hands back the writer.
    pub fn finish(self) -> io::Result<W> {
        match self.out {
            Sink::Plain(w) => Ok(w),
            Sink::Gz(w) => w.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if is_gz(&path) {
            let file = File::create(&path).expect("create");
            let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            gz.write_all(text.as_bytes()).expect("write");
            gz.finish().expect("finish");
        } else {
            std::fs::write(&path, text).expect("write");
        }
        path
    }

    #[test]
    fn reads_plain_and_gzip_traces_ignoring_other_columns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = "op,size,key,timestamp\nGET,100,a,0.5\nGET,7,b b,1.25\n";
        for name in ["t.csv", "t.csv.gz"] {
            let path = write(dir.path(), name, text);
            let mut r = TraceReader::open(&path, true).expect("opens");
            let first = r.next_record().expect("a record").expect("valid");
            assert_eq!((first.line, first.timestamp), (2, 0.5));
            assert_eq!(
                first.object,
                Object {
                    key: "a".into(),
                    size: 100
                }
            );
            let second = r.next_record().expect("a record").expect("valid");
            assert_eq!((second.line, second.object.key.as_str()), (3, "b b"));
            assert!(r.next_record().is_none());
            let s = scan(&path, true).expect("valid");
            assert_eq!((s.requests, s.span, s.largest), (2, 0.75, 100));
        }
    }

    #[test]
    fn problems_name_the_line_and_the_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            ("timestamp,key\n1,a\n", 1, "no `size` column"),
            ("timestamp,key,size\n1,a/b,3\n", 2, "contains `/`"),
            ("timestamp,key,size\n1,a,3\n0.5,b,3\n", 3, "sort the trace"),
            ("timestamp,key,size\n1,a,-3\n", 2, "whole number"),
            ("timestamp,key,size\nnow,a,3\n", 2, "not a number"),
            ("timestamp,key,size\n", 1, "no requests"),
        ];
        for (text, line, needle) in cases {
            let path = write(dir.path(), "bad.csv", text);
            let e = scan(&path, true).expect_err(text);
            assert_eq!(e.line, line, "{text}: {e}");
            assert!(e.to_string().contains(needle), "{e}");
            assert!(e
                .to_string()
                .starts_with(&format!("{}:{line}:", path.display())));
        }
        let path = write(
            dir.path(),
            "unsorted.csv",
            "timestamp,key,size\n1,a,3\n0.5,b,3\n",
        );
        assert!(scan(&path, false).is_ok(), "fast timing takes any order");
    }
}
