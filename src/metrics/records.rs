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
    pub fn from_header(v: Option<&str>) -> Self {
        match v.map(|s| s.trim().to_ascii_uppercase()) {
            Some(s) if s.starts_with("HIT") => CacheMark::Hit,
            Some(s) if s.starts_with("MISS") => CacheMark::Miss,
            Some(s) if s.starts_with("BYPASS") => CacheMark::Bypass,
            _ => CacheMark::None,
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

#[cfg(test)]
mod tests {
    use super::*;

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
