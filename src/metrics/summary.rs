//! The summary row: one per variant and workload. Its field names are the
//! public CSV columns and JSON keys (docs/src/results.md); the first thirty
//! are the original contract, in order, and later additions follow them, so
//! scripts that read columns by position keep working.

use serde::{Deserialize, Serialize};

/// One workload's results. Empty (`None`) where a metric does not apply.
/// Reading tolerates missing columns (older files) with `#[serde(default)]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SummaryRow {
    /// Scenario name (the file's `name`, default its stem).
    pub scenario: String,
    /// Variant label from `[matrix]` (e.g. `cache.enabled=false`), `default` without a matrix.
    pub variant: String,
    /// Workload name.
    pub workload: String,
    /// `http` or `udp`.
    pub kind: String,
    /// `proxy`, `origin`, or the address probed.
    pub target: String,
    /// Whether the proxy cache was enabled (`true`/`false`), empty when not through a proxy.
    pub cache: Option<bool>,
    /// Start of the workload, RFC 3339 UTC.
    pub started_at: String,
    /// Wall time of the workload, seconds.
    pub duration_s: Option<f64>,
    /// Datagrams sent (UDP) or requests started (HTTP).
    pub sent: Option<u64>,
    /// Replies received in time (UDP) or responses completed (HTTP).
    pub received: Option<u64>,
    /// Datagrams with no reply by `timeout` after the last send.
    pub lost: Option<u64>,
    /// `lost / sent × 100`.
    pub loss_percent: Option<f64>,
    /// Replies that arrived after their own timeout.
    pub late: Option<u64>,
    /// Extra copies of replies already received.
    pub duplicates: Option<u64>,
    /// Replies that arrived after a reply with a higher sequence number.
    pub reordered: Option<u64>,
    /// Smallest latency (UDP: RTT), milliseconds.
    pub latency_min_ms: Option<f64>,
    /// Mean latency, milliseconds.
    pub latency_mean_ms: Option<f64>,
    /// Median latency, milliseconds.
    pub latency_p50_ms: Option<f64>,
    /// 90th percentile latency, milliseconds.
    pub latency_p90_ms: Option<f64>,
    /// 99th percentile latency, milliseconds.
    pub latency_p99_ms: Option<f64>,
    /// Largest latency, milliseconds.
    pub latency_max_ms: Option<f64>,
    /// Standard deviation of latency, milliseconds.
    pub latency_stddev_ms: Option<f64>,
    /// RFC 3550 interarrival jitter (`J += (|D| − J) / 16`), milliseconds.
    pub jitter_ms: Option<f64>,
    /// Mean of `|RTT(i) − RTT(i−1)|` over consecutive replies, milliseconds.
    pub ipdv_mean_ms: Option<f64>,
    /// Received payload bits per second (HTTP: body bits over the workload's time).
    pub throughput_bps: Option<f64>,
    /// HTTP requests completed or failed.
    pub requests: Option<u64>,
    /// HTTP requests that failed (connection error, timeout, bad response) or answered 5xx.
    pub errors: Option<u64>,
    /// HTTP requests per second over the workload's time.
    pub requests_per_s: Option<f64>,
    /// Responses the proxy marked `X-Cache: HIT`.
    pub cache_hits: Option<u64>,
    /// `cache_hits / responses`.
    pub cache_hit_ratio: Option<f64>,

    // ---- later additions (after the original columns, never between them) ----
    /// 99.9th percentile latency, milliseconds (HTTP).
    pub latency_p999_ms: Option<f64>,
    /// Open loop: mean time from actual send to last byte (no schedule correction), milliseconds.
    pub service_mean_ms: Option<f64>,
    /// Open loop: 99th percentile of that service time, milliseconds.
    pub service_p99_ms: Option<f64>,
    /// UDP replies that were not this run's datagrams (ignored).
    pub foreign: Option<u64>,
    /// Mean lateness of sends against their schedule, milliseconds (host pacing error).
    pub pacing_mean_ms: Option<f64>,
    /// Largest lateness of a send against its schedule, milliseconds.
    pub pacing_max_ms: Option<f64>,
    /// Proxy's own count of cache hits during the workload.
    pub proxy_hits: Option<u64>,
    /// Proxy's own count of requests it sent upstream during the workload.
    pub proxy_upstream_fetches: Option<u64>,
    /// Body bytes the proxy served from its cache during the workload.
    pub proxy_bytes_from_cache: Option<u64>,
    /// Datagrams the proxy dropped during the workload: both links'
    /// impairments, session table full, full send buffers, those the kernel
    /// dropped at its full receive buffers, send errors.
    pub proxy_dropped: Option<u64>,
    /// `true` when Ctrl-C stopped this workload before it finished.
    pub interrupted: bool,
    /// What the proxy's impairments held back during the workload, both
    /// links together (`clients_proxy_delayed + proxy_origin_delayed`):
    /// datagrams delayed (UDP, both directions) or HTTP messages delayed
    /// (requests plus response heads).
    pub proxy_delayed: Option<u64>,
    /// Which repetition of the variant this row is, from 1 (`repeat = N`);
    /// 0 in files written before repetitions existed.
    pub repetition: u32,
    /// Datagrams or HTTP messages the clients ↔ proxy link held back during
    /// the workload (each crossing counts: a request and its response are 2).
    pub clients_proxy_delayed: Option<u64>,
    /// Datagrams the clients ↔ proxy link dropped during the workload (UDP).
    pub clients_proxy_dropped: Option<u64>,
    /// Datagrams or HTTP messages the proxy ↔ origin link held back during
    /// the workload: only upstream traffic crosses it, never a cache hit.
    pub proxy_origin_delayed: Option<u64>,
    /// Datagrams the proxy ↔ origin link dropped during the workload (UDP).
    pub proxy_origin_dropped: Option<u64>,
    /// Where the hosts ran (`[topology] hosts`): `loopback` or `netns`;
    /// empty outside scenarios (`probe`).
    pub topology: String,
    /// In a row that `netrun merge` added up from `--segment` agents: how
    /// far apart they started this workload (the latest agent's
    /// `started_at` − the earliest's), milliseconds; empty in a single run.
    pub start_skew_ms: Option<f64>,
    /// Packets that entered netrun's user-space links during the workload
    /// (`hosts = "netns"`, both directions of every such link; whatever
    /// crossed them, this workload's or a parallel one's); empty without one.
    pub link_packets: Option<u64>,
    /// Packets those links lost during the workload: `loss_percent` and
    /// `burst_loss` together (queue drops apart).
    pub link_lost: Option<u64>,
    /// Packets those links' queues dropped (full, or CoDel) during the
    /// workload, and those the kernel dropped at the links' TUN devices
    /// before the links read them (a busy machine kept them from reading).
    pub link_queue_drops: Option<u64>,
    /// Median time packets waited in those links' queues, milliseconds.
    pub link_sojourn_p50_ms: Option<f64>,
    /// 99th percentile of the time packets waited in those queues, milliseconds.
    pub link_sojourn_p99_ms: Option<f64>,
    /// Packets the clients ↔ proxy user-space link lost (both directions).
    pub clients_proxy_link_lost: Option<u64>,
    /// Packets the proxy ↔ origin user-space link lost (both directions).
    pub proxy_origin_link_lost: Option<u64>,
    /// Packets the clients ↔ origin user-space link lost (both directions).
    pub clients_origin_link_lost: Option<u64>,
    /// HTTP through a cache: body bytes of `X-Cache: HIT` responses over all
    /// body bytes received (unrounded: 1 − missed bytes / bytes).
    pub byte_hit_ratio: Option<f64>,
    /// HTTP through the proxy: body bytes the proxy received from the
    /// origin during the workload, in bytes (the offload a cache buys).
    pub upstream_bytes: Option<u64>,
    /// HTTP through the proxy: entries its cache evicted during the workload.
    pub cache_evictions: Option<u64>,
    /// HTTP: connections the workload opened (TCP handshakes completed).
    pub connections: Option<u64>,
    /// HTTP: TLS handshakes the workload completed (0 in clear text): one
    /// per connection, never one per request on a kept-alive connection.
    pub tls_handshakes: Option<u64>,
    /// HTTP: median TCP connect time of the connections opened, milliseconds.
    pub connect_p50_ms: Option<f64>,
    /// HTTP: 99th percentile TCP connect time, milliseconds.
    pub connect_p99_ms: Option<f64>,
    /// HTTP: median TLS handshake time of the connections opened, milliseconds.
    pub tls_p50_ms: Option<f64>,
    /// HTTP: 99th percentile TLS handshake time, milliseconds.
    pub tls_p99_ms: Option<f64>,
    /// HTTP: median time from a request's start to its response head
    /// (time to first byte), milliseconds.
    pub ttfb_p50_ms: Option<f64>,
    /// HTTP: 99th percentile time to first byte, milliseconds.
    pub ttfb_p99_ms: Option<f64>,
    /// UDP: replies the probe's own sockets dropped because their receive
    /// buffers were full (the kernel's count; Linux). They are among `lost`:
    /// lost on this machine, not on the path.
    pub receive_drops: Option<u64>,
    /// UDP with a spawned origin: datagrams the kernel dropped at the
    /// origin's echo socket during the workload (its receive buffer full,
    /// the echo behind); lost on this machine, not on the path.
    pub origin_dropped: Option<u64>,
}

impl SummaryRow {
    /// Columns that label or flag a row rather than measure something: every
    /// other column is a metric that `[expect]`, `[gate]` and the stats file
    /// can name.
    pub const LABEL_COLUMNS: &'static [&'static str] = &[
        "scenario",
        "variant",
        "repetition",
        "workload",
        "kind",
        "target",
        "cache",
        "started_at",
        "interrupted",
        "topology",
    ];

    /// A numeric column by its CSV name (`latency_p99_ms`); `None` when empty
    /// or not a number column.
    pub fn metric(&self, name: &str) -> Option<f64> {
        super::pick::number(self, name)
    }
}

/// Rounds for output so CSVs stay readable (microsecond precision on ms values).
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
