//! The HTTP probe against a small counting server: exact request and status
//! counts, cache hits from X-Cache, refused connections as errors, keep-alive
//! reuse, and an open-loop run that keeps its schedule (its rate never above
//! the asked one, below it only by the lateness it measures).

mod support_probe;

use std::net::SocketAddr;
use std::time::Duration;

use indicatif::ProgressBar;
use netrun::metrics::{CacheMark, HttpRequestRow};
use netrun::workload::{run_http, HttpProbeConfig, HttpReport};
use support_probe::{closed_tcp_port, http_server};
use tokio_util::sync::CancellationToken;

fn config(target: SocketAddr, paths: &[&str], requests: u64, concurrency: u32) -> HttpProbeConfig {
    HttpProbeConfig {
        authority: target.to_string(),
        target,
        paths: paths.iter().map(|p| p.to_string()).collect(),
        requests,
        concurrency,
        keep_alive: true,
        rate: None,
        duration: None,
        timeout: Duration::from_secs(5),
        traffic: Default::default(),
        wire: Default::default(),
        threads: None,
    }
}

async fn probe(config: &HttpProbeConfig) -> (HttpReport, Vec<HttpRequestRow>) {
    let mut rows = Vec::new();
    let report = run_http(
        config,
        &mut |row| rows.push(row),
        &ProgressBar::hidden(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    (report, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_counts_are_exact() {
    let server = http_server().await;
    let (report, rows) = probe(&config(server.addr, &["/a", "/hit"], 20, 4)).await;
    assert_eq!(server.requests(), 20);
    let s = report.summary();
    assert_eq!(s.kind, "http");
    assert_eq!(
        (s.requests, s.sent, s.received),
        (Some(20), Some(20), Some(20))
    );
    assert_eq!(s.errors, Some(0));
    assert_eq!(report.status_counts().get(&200), Some(&20));
    assert!(report.errors_by_class().is_empty());
    // Round-robin paths: half hit the cached path.
    assert_eq!(s.cache_hits, Some(10));
    assert_eq!(s.cache_hit_ratio, Some(0.5));
    // "hello" (5 bytes) ×10 + "cached" (6 bytes) ×10.
    assert_eq!(rows.iter().map(|r| r.bytes).sum::<u64>(), 110);
    assert!(s.throughput_bps.unwrap() > 0.0);
    assert!(s.requests_per_s.unwrap() > 0.0);
    assert!(s.latency_min_ms <= s.latency_p50_ms && s.latency_p99_ms <= s.latency_p999_ms);
    assert!(s.latency_p999_ms <= s.latency_max_ms.map(|m| m + 0.01));
    assert!(
        s.service_mean_ms.is_none(),
        "closed loop has no separate service time"
    );
    assert_eq!(
        (s.pacing_mean_ms, s.pacing_max_ms),
        (None, None),
        "closed loop has no schedule to be late against"
    );
    assert_eq!(rows.len(), 20);
    assert_eq!(rows.iter().filter(|r| r.path == "/hit").count(), 10);
    assert!(rows
        .iter()
        .filter(|r| r.path == "/hit")
        .all(|r| r.cache == CacheMark::Hit));
    assert!(rows
        .iter()
        .filter(|r| r.path == "/a")
        .all(|r| r.cache == CacheMark::None && r.status == Some(200)));
    assert!(rows.iter().all(|r| r.client < 4 && r.error.is_none()));
    // Keep-alive: one connection per worker at most.
    assert!(server.connections() <= 4, "{}", server.connections());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keep_alive_every_request_opens_a_connection() {
    let server = http_server().await;
    let mut cfg = config(server.addr, &["/"], 6, 1);
    cfg.keep_alive = false;
    let (report, _) = probe(&cfg).await;
    assert_eq!(report.summary().received, Some(6));
    assert_eq!(server.connections(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_count_as_errors_with_their_status() {
    let server = http_server().await;
    let (report, rows) = probe(&config(server.addr, &["/error", "/miss"], 10, 2)).await;
    let s = report.summary();
    assert_eq!(s.errors, Some(5));
    assert_eq!(s.received, Some(10));
    assert_eq!(report.status_counts().get(&500), Some(&5));
    assert_eq!(report.status_counts().get(&200), Some(&5));
    assert_eq!(s.cache_hits, Some(0));
    assert!(rows
        .iter()
        .filter(|r| r.path == "/miss")
        .all(|r| r.cache == CacheMark::Miss));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_counted_not_fatal() {
    let (report, rows) = probe(&config(closed_tcp_port(), &["/"], 5, 2)).await;
    let s = report.summary();
    assert_eq!(
        (s.requests, s.received, s.errors),
        (Some(5), Some(0), Some(5))
    );
    assert_eq!(report.errors_by_class().get("refused"), Some(&5));
    assert!(rows
        .iter()
        .all(|r| r.error.as_deref() == Some("refused") && r.status.is_none()));
    assert_eq!(s.cache_hit_ratio, None);
    assert_eq!(s.latency_p50_ms, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_past_the_deadline_are_timeouts() {
    let server = http_server().await;
    let mut cfg = config(server.addr, &["/slow"], 2, 2);
    cfg.timeout = Duration::from_millis(100);
    let (report, _) = probe(&cfg).await;
    assert_eq!(report.errors_by_class().get("timeout"), Some(&2));
    assert_eq!(report.summary().errors, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_follows_the_asked_rate() {
    let server = http_server().await;
    let mut cfg = config(server.addr, &["/"], 100, 4);
    cfg.rate = Some(200.0);
    let (report, rows) = probe(&cfg).await;
    assert_eq!(server.requests(), 100);
    let s = report.summary();
    assert_eq!(s.requests, Some(100));
    assert_eq!(rows.len(), 100);
    // The schedule, exactly: request k is due k × 5 ms after the start.
    let mut due: Vec<f64> = rows.iter().map(|r| r.start_offset_ms.unwrap()).collect();
    due.sort_by(f64::total_cmp);
    for (k, d) in due.iter().enumerate() {
        assert!(
            (d - 5.0 * k as f64).abs() < 0.01,
            "request {k} due at {d} ms"
        );
    }
    // Each request's latency counts from its schedule: how late it left
    // (the pacer's lateness, waiting for a connection included) plus its
    // service time, so the pacing figures explain every latency.
    let mut late_max = 0.0f64;
    let mut end_max = 0.0f64;
    for r in &rows {
        let (start, send) = (r.start_offset_ms.unwrap(), r.send_offset_ms.unwrap());
        let late = send - start;
        assert!(late >= 0.0, "left before it was due: {r:?}");
        assert!(r.latency_ms + 0.002 >= late, "{r:?}");
        late_max = late_max.max(late);
        end_max = end_max.max(start + r.latency_ms);
    }
    assert!((s.pacing_max_ms.unwrap() - late_max).abs() < 0.002, "{s:?}");
    assert!(s.service_p99_ms.is_some());
    assert!(s.latency_mean_ms.unwrap() + 1e-3 >= s.service_mean_ms.unwrap());
    // The rate: never above the asked one (the last request is due 495 ms
    // in, and the run lasts until its answer); below it only by as much as
    // the requests were late or slow to answer, which the figures above
    // measure (a busy machine makes them late: no wall-clock bound here).
    let duration_ms = s.duration_s.unwrap() * 1e3;
    assert!(
        duration_ms + 1.0 >= end_max,
        "{duration_ms} ms < {end_max} ms"
    );
    let rate = s.requests_per_s.unwrap();
    eprintln!("achieved {rate} req/s, {late_max} ms late at most");
    assert!(rate <= 100.0 / 0.495, "achieved {rate} req/s");
    assert!(
        (rate * s.duration_s.unwrap() - 100.0).abs() < 0.5,
        "{rate} req/s over {duration_ms} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_stops_starting_requests() {
    let server = http_server().await;
    let mut cfg = config(server.addr, &["/"], 1_000_000, 2);
    cfg.rate = Some(100.0);
    cfg.duration = Some(Duration::from_millis(200));
    let (report, _) = probe(&cfg).await;
    let n = report.summary().requests.unwrap();
    assert!(n > 0 && n < 1_000, "{n} requests");
    assert_eq!(server.requests(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_count_a_run_lasts_its_duration() {
    use netrun::workload::http::UNTIL_DURATION;
    let server = http_server().await;
    let mut cfg = config(server.addr, &["/"], UNTIL_DURATION, 2);
    cfg.rate = Some(100.0);
    cfg.duration = Some(Duration::from_millis(300));
    assert_eq!(cfg.planned_requests(), 30);
    let (report, _) = probe(&cfg).await;
    let n = report.summary().requests.unwrap();
    // The schedule holds 30 requests in 300 ms; a loaded machine may start a
    // few late, but far more than one is sent and the run lasts the duration.
    assert!((2..=30).contains(&n), "{n} requests");
    assert!(
        report.duration >= Duration::from_millis(250),
        "{:?}",
        report.duration
    );
    // Without a duration there is nothing to end the run: refused.
    cfg.duration = None;
    assert_eq!(
        cfg.validate().map_err(|e| e.setting),
        Err(netrun::workload::Setting::Requests)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_returns_what_was_gathered() {
    let server = http_server().await;
    let cfg = config(server.addr, &["/"], 1_000_000, 2);
    let cancel = CancellationToken::new();
    let mut rows = 0u64;
    let report = run_http(
        &cfg,
        &mut |_row| {
            rows += 1;
            if rows == 10 {
                cancel.cancel();
            }
        },
        &ProgressBar::hidden(),
        &cancel,
    )
    .await
    .unwrap();
    assert!(report.interrupted() && report.summary().interrupted);
    let n = report.summary().requests.unwrap();
    assert!((10..1_000_000).contains(&n), "{n}");
    assert_eq!(report.summary().errors, Some(0));
}

#[tokio::test]
async fn bad_configs_name_the_setting() {
    use netrun::workload::Setting;
    let setting = |c: &HttpProbeConfig| c.validate().map_err(|e| e.setting);
    let mut cfg = config(closed_tcp_port(), &["/"], 0, 1);
    assert_eq!(setting(&cfg), Err(Setting::Requests));
    cfg.requests = 1;
    cfg.rate = Some(0.0);
    assert_eq!(setting(&cfg), Err(Setting::Rate));
    cfg.rate = None;
    cfg.timeout = std::time::Duration::ZERO;
    assert_eq!(setting(&cfg), Err(Setting::Timeout));
    cfg.timeout = std::time::Duration::from_secs(1);
    cfg.paths = vec!["index.html".into()];
    assert_eq!(setting(&cfg), Err(Setting::Paths));
    // A refused setting is invalid input (exit 2).
    let err = anyhow::Error::from(netrun::Error::from(cfg.validate().unwrap_err()));
    assert_eq!(netrun::error::exit_code(&err), netrun::error::EXIT_INPUT);
}

/// Coordinated omission: in an open loop, requests scheduled while the server
/// stalls wait behind the stalled one, and latency (from the scheduled start)
/// must show that wait; the service time (from the actual send) must not.
/// One client, so everything scheduled during the 500 ms stall queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_charges_a_stall_to_latency_but_not_to_service_time() {
    let server = http_server().await;
    let mut c = config(server.addr, &["/stall-once"], 200, 1);
    c.rate = Some(200.0);
    let (report, _) = probe(&c).await;
    let s = report.summary();
    assert_eq!((s.requests, s.errors), (Some(200), Some(0)));
    let latency_p99 = s.latency_p99_ms.unwrap();
    let service_p99 = s.service_p99_ms.unwrap();
    // About 100 requests were due during the stall: far more than the 1% a p99 may hide.
    assert!(latency_p99 >= 400.0, "latency p99 {latency_p99} ms");
    assert!(
        s.latency_p90_ms.unwrap() >= 100.0,
        "latency p90 {:?} ms",
        s.latency_p90_ms
    );
    // Only the stalled request itself took long to serve: 1 in 200 is under the p99.
    assert!(
        service_p99 < latency_p99 / 2.0,
        "service p99 {service_p99} ms vs latency p99 {latency_p99} ms"
    );
    assert!(s.service_mean_ms.unwrap() < s.latency_mean_ms.unwrap());
}

/// Open loop: the pacing columns are filled like UDP's, and latency (from
/// the scheduled start) is never below the service time (from the actual
/// send) at any point of the distribution: each request's latency is its
/// service time plus how late it left, so the order statistics keep the order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loop_reports_its_pacing_and_latency_covers_service_time() {
    let server = http_server().await;
    let mut c = config(server.addr, &["/"], 60, 3);
    c.rate = Some(300.0);
    let (report, rows) = probe(&c).await;
    let s = report.summary();
    assert_eq!((s.requests, s.errors), (Some(60), Some(0)));
    let (mean, max) = (s.pacing_mean_ms.unwrap(), s.pacing_max_ms.unwrap());
    assert!(
        mean >= 0.0 && max + 1e-3 >= mean,
        "pacing {mean} / {max} ms"
    );
    let (l, v) = (report.latency.unwrap(), report.service.unwrap());
    assert_eq!((l.count, v.count), (60, 60));
    for (what, lat, svc) in [
        ("min", l.min_ms, v.min_ms),
        ("mean", l.mean_ms, v.mean_ms),
        ("p50", l.p50_ms, v.p50_ms),
        ("p90", l.p90_ms, v.p90_ms),
        ("p99", l.p99_ms, v.p99_ms),
        ("max", l.max_ms, v.max_ms),
    ] {
        assert!(
            lat + 1e-9 >= svc,
            "{what}: latency {lat} ms < service {svc} ms"
        );
    }
    // The mean lateness is the gap between the two means (rounding aside).
    assert!(
        (l.mean_ms - v.mean_ms - mean).abs() <= 0.01,
        "latency mean {} - service mean {} vs pacing mean {mean}",
        l.mean_ms,
        v.mean_ms
    );
    // Rows start at their scheduled instants: i / 300 s from the run's start.
    let mut offsets: Vec<f64> = rows.iter().filter_map(|r| r.start_offset_ms).collect();
    offsets.sort_by(f64::total_cmp);
    for (i, got) in offsets.iter().enumerate() {
        let due = i as f64 * 1000.0 / 300.0;
        assert!(
            (got - due).abs() <= 0.01,
            "request {i} starts at {got} ms, due {due} ms"
        );
    }
    // Each row's actual send is its start plus how late it left: the
    // lateness over the rows is the summary's pacing (rounding aside).
    let lags: Vec<f64> = rows
        .iter()
        .map(|r| r.send_offset_ms.unwrap() - r.start_offset_ms.unwrap())
        .collect();
    assert!(lags.iter().all(|&d| d >= 0.0), "{lags:?}");
    let worst = lags.iter().copied().fold(0.0, f64::max);
    let avg = lags.iter().sum::<f64>() / lags.len() as f64;
    assert!(
        (worst - max).abs() <= 0.01 && (avg - mean).abs() <= 0.01,
        "send lag max {worst} / mean {avg} ms vs pacing {max} / {mean} ms"
    );
}

/// Requests a trace schedules for the same instant leave together, one per
/// free connection, whatever thread their connections are on: a server that
/// answers none of 8 requests until all 8 have arrived (a barrier, no
/// clock) answers them all only if they were all sent at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_due_together_leave_on_every_free_connection() {
    use netrun::workload::source::{Source, Timing, TraceReplay, Traffic};
    use std::io::{BufRead, BufReader, Write};
    use std::sync::{Arc, Barrier};

    const N: usize = 8;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let all_in = Arc::new(Barrier::new(N));
    std::thread::spawn(move || {
        for stream in listener.incoming().take(N) {
            let (mut stream, all_in) = (stream.unwrap(), all_in.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                // One request per connection: its head, then wait for the rest.
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                all_in.wait();
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx");
                // Held open until the client is done.
                let _ = reader.read_line(&mut line);
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("burst.csv");
    let lines: String = (0..N).map(|k| format!("0,{k},1\n")).collect();
    std::fs::write(&trace, format!("timestamp,key,size\n{lines}")).unwrap();
    let mut cfg = config(addr, &[], N as u64, N as u32);
    cfg.traffic = Traffic {
        source: Source::Trace(TraceReplay {
            path: trace,
            timing: Timing::Recorded,
            speed: 1.0,
        }),
        ..Traffic::default()
    };
    let (report, rows) = probe(&cfg).await;
    assert_eq!((report.responses, report.errors), (N as u64, 0), "{rows:?}");
}

/// A server for pipelining tests: on each connection, reads request heads
/// until it holds a group of them, then answers them in one write, each
/// with a body of N+1 bytes for path `/pN` (so the client's rows show
/// which answer went to which request). A group is `group` heads; with
/// `cut`, the first connection answers only `cut` of its first group, the
/// last with `Connection: close`, and closes, and later connections take
/// groups of the `group - cut` heads left. Returns its address and the
/// groups answered, per connection.
fn pipelining_server(
    group: usize,
    cut: Option<usize>,
) -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<usize>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (k, stream) in listener.incoming().enumerate().take(8) {
            let Ok(mut stream) = stream else { return };
            let conn = {
                let mut log = log.lock().unwrap();
                log.push(0);
                log.len() - 1
            };
            let (want, answer) = match (k, cut) {
                (0, Some(c)) => (group, c),
                (_, Some(c)) => (group - c, group - c),
                (_, None) => (group, group),
            };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                loop {
                    let mut heads: Vec<String> = Vec::new();
                    while heads.len() < want {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            heads.push(String::from_utf8_lossy(&buf[..end]).into_owned());
                            buf.drain(..end + 4);
                            continue;
                        }
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    log.lock().unwrap()[conn] += 1;
                    let mut out = Vec::new();
                    for (i, head) in heads.iter().take(answer).enumerate() {
                        let n: usize = head
                            .split(' ')
                            .nth(1)
                            .and_then(|p| p.strip_prefix("/p"))
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        let close = answer < want && i + 1 == answer;
                        let close = if close { "connection: close\r\n" } else { "" };
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-cache: HIT\r\n{close}\r\n",
                            n + 1
                        );
                        out.extend_from_slice(head.as_bytes());
                        out.extend(std::iter::repeat(b'x').take(n + 1));
                    }
                    if stream.write_all(&out).is_err() || answer < want {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Pipelining: a server that answers nothing until it holds all 4 heads of
/// a group (no clock) answers every request only if they were written back
/// to back; each answer goes to its own request, in order, over one
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_written_together_and_answered_in_order() {
    let (addr, groups) = pipelining_server(4, None);
    let paths = ["/p0", "/p1", "/p2", "/p3", "/p4", "/p5", "/p6", "/p7"];
    let mut cfg = config(addr, &paths, 8, 1);
    cfg.wire.pipeline = 4;
    let (report, rows) = probe(&cfg).await;
    assert_eq!((report.responses, report.errors), (8, 0), "{rows:?}");
    assert_eq!(
        *groups.lock().unwrap(),
        vec![2],
        "one connection, two groups of 4"
    );
    for row in &rows {
        let n: u64 = row.path[2..].parse().unwrap();
        assert_eq!(row.bytes, n + 1, "{row:?}");
        assert_eq!(row.cache, CacheMark::Hit);
        assert!(row.ttfb_ms.is_some() && row.protocol.as_deref() == Some("HTTP/1.1"));
    }
    // The connection was opened before the clock: its first request says so.
    assert_eq!(rows.iter().filter(|r| r.connect_ms.is_some()).count(), 1);
}

/// A server that answers 2 of a group of 4 and closes (`Connection:
/// close`) leaves 2 unprocessed: they are sent again on a new connection
/// and answered, none counted as an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_group_cut_short_is_sent_again_on_a_new_connection() {
    let (addr, groups) = pipelining_server(4, Some(2));
    let mut cfg = config(addr, &["/p0", "/p1", "/p2", "/p3"], 4, 1);
    cfg.wire.pipeline = 4;
    let (report, rows) = probe(&cfg).await;
    assert_eq!((report.responses, report.errors), (4, 0), "{rows:?}");
    assert_eq!(*groups.lock().unwrap(), vec![1, 1], "a second connection");
    let mut bytes: Vec<u64> = rows.iter().map(|r| r.bytes).collect();
    bytes.sort();
    assert_eq!(bytes, vec![1, 2, 3, 4]);
    // The request that opened the second connection carries its connect time.
    assert_eq!(rows.iter().filter(|r| r.connect_ms.is_some()).count(), 2);
}

#[test]
fn pipelining_is_refused_where_it_cannot_apply() {
    use netrun::workload::Setting;
    let setting = |c: &HttpProbeConfig| c.validate().map_err(|e| e.setting);
    let mut cfg = config(closed_tcp_port(), &["/"], 1, 1);
    for (pipeline, http2, keep_alive) in [
        (0, false, true),
        (257, false, true),
        (2, true, true),
        (2, false, false),
    ] {
        cfg.wire.pipeline = pipeline;
        cfg.wire.http2 = http2;
        cfg.keep_alive = keep_alive;
        assert_eq!(
            setting(&cfg),
            Err(Setting::Pipeline),
            "{pipeline} {http2} {keep_alive}"
        );
    }
    cfg.wire.http2 = false;
    cfg.keep_alive = true;
    cfg.wire.pipeline = 256;
    assert_eq!(setting(&cfg), Ok(()));
}
