//! Per-datagram and per-request records: the rows of `udp_packets.csv` and
//! `http_requests.csv`. Workers produce them; collectors aggregate and stream them.

use serde::{Deserialize, Serialize};

/// What became of one probe datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PacketStatus {
    /// Reply received in sequence and in time.
    Ok,
    /// No reply by `timeout` after the last send.
    #[default]
    Lost,
    /// Reply received after its own timeout.
    Late,
    /// A further copy of a reply already received.
    Dup,
    /// Reply received in time but after a reply with a higher sequence number.
    Reordered,
}

/// One row of `udp_packets.csv`; its fields, in order, are the file's columns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UdpPacketRow {
    pub variant: String,
    pub workload: String,
    /// Sender index, from 0.
    pub flow: u32,
    /// Sequence number within the flow, from 0.
    pub seq: u64,
    /// Achieved send time since the workload started, milliseconds.
    pub send_offset_ms: f64,
    /// Round-trip time, milliseconds; empty when lost.
    pub rtt_ms: Option<f64>,
    pub status: PacketStatus,
    /// Which repetition of the variant sent it, from 1 (the summary's
    /// `repetition`); empty in files written before netrun recorded it.
    #[serde(default)]
    pub repetition: Option<u32>,
}

/// Cache verdict reported by the proxy's `X-Cache` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum CacheMark {
    #[serde(rename = "HIT")]
    Hit,
    #[serde(rename = "MISS")]
    Miss,
    #[serde(rename = "BYPASS")]
    Bypass,
    /// No `X-Cache` header (not through netrun's proxy) or no response.
    #[serde(rename = "-")]
    #[default]
    None,
}

impl CacheMark {
    /// The verdict an `X-Cache` value starts with, in any case (no
    /// allocation: the client reads one per response).
    pub fn from_header(v: Option<&str>) -> Self {
        let Some(v) = v.map(|s| s.trim().as_bytes()) else {
            return CacheMark::None;
        };
        let starts = |word: &[u8]| {
            v.get(..word.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(word))
        };
        if starts(b"HIT") {
            CacheMark::Hit
        } else if starts(b"MISS") {
            CacheMark::Miss
        } else if starts(b"BYPASS") {
            CacheMark::Bypass
        } else {
            CacheMark::None
        }
    }
}

/// One row of `http_requests.csv`; its fields, in order, are the file's columns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HttpRequestRow {
    pub variant: String,
    pub workload: String,
    /// Client (worker) index, from 0.
    pub client: u32,
    pub path: String,
    /// HTTP status code; empty when no response arrived.
    pub status: Option<u16>,
    /// Body bytes received.
    pub bytes: u64,
    /// From the scheduled start to the last body byte, milliseconds.
    pub latency_ms: f64,
    pub cache: CacheMark,
    /// Error class (`refused`, `reset`, `timeout`, `bad_response`, …); empty on success.
    pub error: Option<String>,
    /// Start of the request (its scheduled start in open loop, else the
    /// send) since the workload started, milliseconds; empty in files
    /// written before netrun recorded it.
    #[serde(default)]
    pub start_offset_ms: Option<f64>,
    /// Which repetition of the variant made it, from 1 (the summary's
    /// `repetition`); empty in files written before netrun recorded it.
    #[serde(default)]
    pub repetition: Option<u32>,
    /// TCP connect time of the connection this request opened, milliseconds
    /// (curl's `time_connect`); empty when it reused one. A connection
    /// opened before the clock started is reported by its first request.
    #[serde(default)]
    pub connect_ms: Option<f64>,
    /// TLS handshake time of the connection this request opened,
    /// milliseconds (curl's `time_appconnect` less `time_connect`); empty
    /// in clear text or when it reused a connection.
    #[serde(default)]
    pub tls_ms: Option<f64>,
    /// From the request's start to its response head, milliseconds (curl's
    /// `time_starttransfer`: a new connection's connect and TLS included);
    /// empty when no response head arrived.
    #[serde(default)]
    pub ttfb_ms: Option<f64>,
    /// The protocol the request went over: `HTTP/1.1` or `HTTP/2`; empty
    /// when no connection was made. Borrowed from a constant when
    /// measured: no allocation per request.
    #[serde(default)]
    pub protocol: Option<std::borrow::Cow<'static, str>>,
    /// When the request actually left (the worker took it and began to
    /// send) since the workload started, milliseconds: in open loop
    /// `start_offset_ms` is the schedule and this the achieved send, as
    /// `udp_packets.csv`'s `send_offset_ms`; in closed loop the two are the
    /// same instant. Empty in files written before netrun recorded it.
    #[serde(default)]
    pub send_offset_ms: Option<f64>,
}

/// Per-sample rows carry the variant, workload and repetition they belong
/// to; the workload engines leave them empty, the runner fills them and
/// `merge` reads them back to put rows in the whole run's order.
pub trait Tagged {
    fn tag(&mut self, variant: &str, workload: &str, repetition: u32);
    fn variant(&self) -> &str;
    fn workload(&self) -> &str;
    fn repetition(&self) -> Option<u32>;
}

/// Both row types keep their tags in the same three fields.
macro_rules! impl_tagged {
    ($($row:ty),*) => {$(
        impl Tagged for $row {
            fn tag(&mut self, variant: &str, workload: &str, repetition: u32) {
                variant.clone_into(&mut self.variant);
                workload.clone_into(&mut self.workload);
                self.repetition = Some(repetition);
            }
            fn variant(&self) -> &str {
                &self.variant
            }
            fn workload(&self) -> &str {
                &self.workload
            }
            fn repetition(&self) -> Option<u32> {
                self.repetition
            }
        }
    )*};
}

impl_tagged!(UdpPacketRow, HttpRequestRow);

/// A row streamed to a CSV file: through serde by default. A trace replay
/// writes an `http_requests.csv` row per request, and serde's field-by-field
/// path (the csv crate's writer per field, ryu per float) took ~5k
/// instructions a row, as much as half the client's own work per request;
/// `HttpRequestRow` writes its line by hand, the same text byte for byte
/// (a test holds the two side by side).
pub trait CsvRow: Serialize {
    /// Appends this row as one line of CSV, terminator included, exactly as
    /// the csv crate's serde writer (default settings) writes it; false,
    /// with nothing appended, leaves the row to serde.
    fn csv_line(&self, _line: &mut Vec<u8>) -> bool {
        false
    }
}

impl CsvRow for UdpPacketRow {}

impl CsvRow for HttpRequestRow {
    fn csv_line(&self, line: &mut Vec<u8>) -> bool {
        let ms = [
            Some(self.latency_ms),
            self.start_offset_ms,
            self.connect_ms,
            self.tls_ms,
            self.ttfb_ms,
            self.send_offset_ms,
        ];
        let mut text = [Thousandths::default(); 6];
        for (t, v) in text.iter_mut().zip(ms) {
            match v.map(Thousandths::of) {
                // A value the short form cannot write exactly as ryu would.
                Some(None) => return false,
                Some(Some(f)) => *t = f,
                None => {}
            }
        }
        let [latency, start, connect, tls, ttfb, send] = text;
        let mut n = Digits::default();
        quoted(line, &self.variant);
        line.push(b',');
        quoted(line, &self.workload);
        line.push(b',');
        line.extend_from_slice(n.of(u64::from(self.client)));
        line.push(b',');
        quoted(line, &self.path);
        line.push(b',');
        if let Some(s) = self.status {
            line.extend_from_slice(n.of(u64::from(s)));
        }
        line.push(b',');
        line.extend_from_slice(n.of(self.bytes));
        line.push(b',');
        line.extend_from_slice(latency.text());
        line.push(b',');
        line.extend_from_slice(self.cache.name().as_bytes());
        line.push(b',');
        quoted(line, self.error.as_deref().unwrap_or(""));
        line.push(b',');
        line.extend_from_slice(start.text());
        line.push(b',');
        if let Some(r) = self.repetition {
            line.extend_from_slice(n.of(u64::from(r)));
        }
        for t in [connect, tls, ttfb] {
            line.push(b',');
            line.extend_from_slice(t.text());
        }
        line.push(b',');
        quoted(line, self.protocol.as_deref().unwrap_or(""));
        line.push(b',');
        line.extend_from_slice(send.text());
        line.push(b'\n');
        true
    }
}

/// A text field as the csv crate writes it by default: in double quotes,
/// quotes doubled, when it holds a comma, a quote, or a line break.
fn quoted(line: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if !bytes
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        line.extend_from_slice(bytes);
        return;
    }
    line.push(b'"');
    for &b in bytes {
        if b == b'"' {
            line.push(b'"');
        }
        line.push(b);
    }
    line.push(b'"');
}

impl CacheMark {
    /// The column's text (serde's name of the variant).
    fn name(self) -> &'static str {
        match self {
            CacheMark::Hit => "HIT",
            CacheMark::Miss => "MISS",
            CacheMark::Bypass => "BYPASS",
            CacheMark::None => "-",
        }
    }
}

/// The decimal digits of a whole number, as itoa writes them.
#[derive(Default)]
struct Digits([u8; 20]);

impl Digits {
    fn of(&mut self, mut n: u64) -> &[u8] {
        let mut at = self.0.len();
        loop {
            at -= 1;
            self.0[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return &self.0[at..];
            }
        }
    }
}

/// A millisecond value rounded to the microsecond, written as ryu writes
/// that double (`0.0`, `1.5`, `12.345`): the shortest decimal that reads
/// back as the same double is the thousandths themselves when the double
/// is the one nearest them and far below 2^53 / 1000. Empty when unset.
#[derive(Clone, Copy, Default)]
struct Thousandths {
    buf: [u8; 24],
    len: u8,
}

impl Thousandths {
    /// `None` when `v` is not such a value (negative, -0.0, huge, or not a
    /// whole number of thousandths): then the row goes through serde.
    fn of(v: f64) -> Option<Thousandths> {
        if !(v.is_finite() && v.is_sign_positive() && v < 1e9) {
            return None;
        }
        let k = (v * 1000.0).round();
        if k / 1000.0 != v {
            return None;
        }
        let k = k as u64;
        let mut t = Thousandths::default();
        let mut digits = Digits::default();
        let whole = digits.of(k / 1000);
        t.buf[..whole.len()].copy_from_slice(whole);
        let mut len = whole.len();
        t.buf[len] = b'.';
        len += 1;
        let frac = k % 1000;
        let (d1, d2, d3) = (frac / 100, frac / 10 % 10, frac % 10);
        let shown: &[u64] = match (d2, d3) {
            (_, d3) if d3 != 0 => &[d1, d2, d3],
            (d2, _) if d2 != 0 => &[d1, d2],
            _ => &[d1],
        };
        for &d in shown {
            t.buf[len] = b'0' + d as u8;
            len += 1;
        }
        t.len = len as u8;
        Some(t)
    }

    fn text(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_marks_read_the_verdict_an_x_cache_value_starts_with() {
        let cases = [
            (Some("HIT"), CacheMark::Hit),
            (Some(" hit from netrun "), CacheMark::Hit),
            (Some("HITX"), CacheMark::Hit),
            (Some("Miss"), CacheMark::Miss),
            (Some("bypass; reason"), CacheMark::Bypass),
            (Some("HI"), CacheMark::None),
            (Some("EXPIRED"), CacheMark::None),
            (Some(""), CacheMark::None),
            (Some("ünï"), CacheMark::None),
            (None, CacheMark::None),
        ];
        for (value, want) in cases {
            assert_eq!(CacheMark::from_header(value), want, "{value:?}");
        }
    }

    fn by_serde(rows: &[HttpRequestRow]) -> String {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for r in rows {
            w.serialize(r).unwrap();
        }
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    /// Hand-written lines, and serde's for the rows the short form leaves
    /// to it (as `CsvStream` does).
    fn by_hand(rows: &[HttpRequestRow]) -> String {
        let mut out = Vec::new();
        for r in rows {
            if !r.csv_line(&mut out) {
                out.extend_from_slice(by_serde(std::slice::from_ref(r)).as_bytes());
            }
        }
        String::from_utf8(out).unwrap()
    }

    /// The hand-written row is serde's, byte for byte: every column, set
    /// and unset, text that needs quoting, and milliseconds of every shape
    /// (whole, one to three decimals, large, and values the short form
    /// leaves to serde).
    #[test]
    fn hand_written_request_rows_are_serdes() {
        let full = HttpRequestRow {
            variant: "cache.enabled=true".into(),
            workload: "replay, \"fast\"".into(),
            client: 4_000_000_000,
            path: "/objects/a,b/64".into(),
            status: Some(200),
            bytes: u64::MAX,
            latency_ms: 0.123,
            cache: CacheMark::Hit,
            error: Some("timeout".into()),
            start_offset_ms: Some(1500.0),
            repetition: Some(3),
            connect_ms: Some(0.1),
            tls_ms: Some(0.05),
            ttfb_ms: Some(86_400_000.0),
            protocol: Some("HTTP/1.1".into()),
            send_offset_ms: Some(0.0),
        };
        let mut rows = vec![full.clone(), HttpRequestRow::default()];
        for text in [
            "a\"b",
            "line\nbreak",
            "cr\r",
            "\"",
            ",",
            "plain",
            "ünï code",
            " spaced ",
        ] {
            rows.push(HttpRequestRow {
                path: text.into(),
                error: Some(text.into()),
                variant: text.into(),
                protocol: Some(text.to_string().into()),
                ..full.clone()
            });
        }
        for cache in [CacheMark::Miss, CacheMark::Bypass, CacheMark::None] {
            rows.push(HttpRequestRow {
                cache,
                ..full.clone()
            });
        }
        // Every thousandth below 3 ms, rounded as rows round them, and a
        // spread of larger values.
        let mut values: Vec<f64> = (0..3000).map(|k| f64::from(k) / 1000.0).collect();
        let mut x = 0.0004_f64;
        while x < 2e9 {
            values.push(crate::metrics::summary::round3(x));
            x = x * 1.37 + 0.011;
        }
        // Left to serde: not thousandths, negative, huge, -0.0.
        values.extend([0.0001, 1.0 / 3.0, -1.5, 1e12, -0.0, 123_456_789.123]);
        for v in values {
            rows.push(HttpRequestRow {
                latency_ms: v,
                start_offset_ms: Some(v),
                send_offset_ms: None,
                ..full.clone()
            });
            rows.push(HttpRequestRow {
                ttfb_ms: Some(v),
                ..HttpRequestRow::default()
            });
        }
        assert_eq!(by_hand(&rows), by_serde(&rows));
    }

    /// Files written before a column existed still read: the missing
    /// columns are empty (`merge`, `report` and `compare` read old runs).
    #[test]
    fn older_request_files_read_without_the_newer_columns() {
        let read = |text: &str| -> Vec<HttpRequestRow> {
            csv::Reader::from_reader(text.as_bytes())
                .deserialize()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let before_send = read(
            "variant,workload,client,path,status,bytes,latency_ms,cache,error,start_offset_ms,repetition,connect_ms,tls_ms,ttfb_ms,protocol\n\
             v,w,0,/a,200,5,1.5,HIT,,2.25,1,,,1.0,HTTP/1.1\n",
        );
        assert_eq!(before_send[0].start_offset_ms, Some(2.25));
        assert_eq!(before_send[0].protocol.as_deref(), Some("HTTP/1.1"));
        assert_eq!(before_send[0].send_offset_ms, None);
        let oldest = read(
            "variant,workload,client,path,status,bytes,latency_ms,cache,error\n\
             v,w,0,/a,200,5,1.5,MISS,\n",
        );
        assert_eq!(oldest[0].cache, CacheMark::Miss);
        assert_eq!(
            (oldest[0].start_offset_ms, oldest[0].send_offset_ms),
            (None, None)
        );
    }
}
