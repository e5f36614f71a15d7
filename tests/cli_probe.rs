//! `netrun probe` from the command line: JSON and CSV outputs, exit codes
//! and messages.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::thread;

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

/// A plain UDP echo on a std thread (the CLI runs in another process).
fn echo_thread() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 65_536];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], peer);
        }
    });
    addr
}

/// A minimal keep-alive HTTP/1.1 server on std threads: every request
/// (a GET without a body) gets `200 ok`. One thread per connection, which
/// ends when the client closes.
fn http_thread() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = conn.read(&mut chunk) {
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if conn.write_all(reply).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

fn http_json(args: &[&str]) -> serde_json::Value {
    let url = format!("http://{}/", http_thread());
    let out = netrun()
        .args(["probe", "http", &url, "--json"])
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn http_open_loop_reports_its_pacing_error_and_closed_loop_leaves_it_empty() {
    let open = http_json(&["--requests", "20", "--rate", "400", "--concurrency", "2"]);
    assert_eq!(
        (open["requests"].as_u64(), open["errors"].as_u64()),
        (Some(20), Some(0))
    );
    let mean = open["pacing_mean_ms"]
        .as_f64()
        .expect("pacing_mean_ms in open loop");
    let max = open["pacing_max_ms"]
        .as_f64()
        .expect("pacing_max_ms in open loop");
    assert!(mean >= 0.0 && max + 1e-3 >= mean, "{mean} / {max}");
    assert!(open["service_mean_ms"].as_f64().is_some());

    let closed = http_json(&["--requests", "20", "--concurrency", "2"]);
    assert_eq!(closed["requests"].as_u64(), Some(20));
    assert!(closed["pacing_mean_ms"].is_null(), "{closed}");
    assert!(closed["pacing_max_ms"].is_null(), "{closed}");
}

#[test]
fn http_open_loop_table_shows_the_pacing_lines() {
    let url = format!("http://{}/", http_thread());
    netrun()
        .args(["probe", "http", &url, "--requests", "10", "--rate", "500"])
        .assert()
        .success()
        .stdout(contains("pacing_mean_ms").and(contains("pacing_max_ms")));
}

fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn netrun() -> Command {
    Command::cargo_bin("netrun").unwrap()
}

#[test]
fn udp_json_summary() {
    let addr = echo_thread();
    let out = netrun()
        .args(["probe", "udp", &addr.to_string()])
        .args([
            "--count",
            "5",
            "--interval",
            "1ms",
            "--timeout",
            "500ms",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["sent"], 5);
    assert_eq!(v["received"], 5);
    assert_eq!(v["lost"], 0);
    assert_eq!(v["kind"], "udp");
    assert_eq!(v["target"], addr.to_string());
    assert!(v["latency_p50_ms"].as_f64().is_some());
    assert!(v["jitter_ms"].as_f64().is_some());
}

#[test]
fn udp_ends_soon_after_every_reply_is_in() {
    let addr = echo_thread();
    let out = netrun()
        .args(["probe", "udp", &addr.to_string()])
        .args([
            "--count",
            "5",
            "--interval",
            "1ms",
            "--timeout",
            "60s",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["received"], 5);
    // Every reply in: no waiting out the 60 s timeout (3 × the largest RTT instead).
    let took = v["duration_s"].as_f64().unwrap();
    assert!(took < 30.0, "took {took} s");
}

#[test]
fn udp_table_by_default() {
    let addr = echo_thread();
    netrun()
        .args(["probe", "udp", &addr.to_string()])
        .args(["--count", "3", "--interval", "1ms", "--timeout", "300ms"])
        .assert()
        .success()
        .stdout(contains("loss_percent"))
        .stdout(contains("latency_mean_ms"));
}

#[test]
fn udp_csv_has_a_row_per_datagram() {
    let addr = echo_thread();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("out/packets.csv");
    netrun()
        .args(["probe", "udp", &addr.to_string()])
        .args([
            "--count",
            "5",
            "--interval",
            "1ms",
            "--timeout",
            "500ms",
            "--quiet",
        ])
        .arg("--csv")
        .arg(&csv)
        .assert()
        .success();
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(
        lines[0],
        "variant,workload,flow,seq,send_offset_ms,rtt_ms,status,repetition"
    );
    assert!(lines[1..]
        .iter()
        .all(|l| l.starts_with("default,probe,0,") && l.ends_with(",ok,1")));
}

#[test]
fn udp_size_below_header_is_an_input_error() {
    netrun()
        .args(["probe", "udp", "127.0.0.1:9", "--size", "4"])
        .assert()
        .code(2)
        .stderr(contains("32"));
}

#[test]
fn udp_nobody_listening_is_a_runtime_error_after_the_figures() {
    let addr = closed_port();
    netrun()
        .args(["probe", "udp", &addr.to_string()])
        .args(["--count", "3", "--interval", "1ms", "--timeout", "200ms"])
        .assert()
        .code(3)
        .stdout(contains("lost"))
        .stderr(contains("no reply from").and(contains(addr.to_string())));
}

#[test]
fn http_closed_port_is_a_runtime_error_naming_the_target() {
    let url = format!("http://{}/", closed_port());
    netrun()
        .args(["probe", "http", &url, "--requests", "3", "--json"])
        .assert()
        .code(3)
        .stdout(contains("\"refused\": 3"))
        .stderr(contains("no response from").and(contains(url.as_str())));
}

#[test]
fn http_only_http_and_https_urls() {
    netrun()
        .args(["probe", "http", "ftp://127.0.0.1:1/"])
        .assert()
        .code(2)
        .stderr(contains("http://"));
}

/// `--threads` splits the connections among that many client threads (as
/// wrk's `-t`): every request is answered whatever the split, each
/// connection opened once; 0 is refused naming the flag.
#[test]
fn http_threads_share_the_connections() {
    for threads in ["1", "3", "16"] {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("requests.csv");
        let csv_arg = csv.to_str().unwrap();
        let json = http_json(&[
            "--requests",
            "60",
            "--concurrency",
            "6",
            "--threads",
            threads,
            "--csv",
            csv_arg,
        ]);
        assert_eq!(
            (json["requests"].as_u64(), json["errors"].as_u64()),
            (Some(60), Some(0)),
            "--threads {threads}: {json}"
        );
        // `connections` counts the connections that served a request. Each
        // client opens one and keeps it, so they are as many as the clients
        // that got any of the 60 requests: all 6 on an idle machine, fewer
        // when a loaded one starts a thread after the others took them all.
        let text = std::fs::read_to_string(&csv).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (client, connect) = (col("client"), col("connect_ms"));
        let mut clients = std::collections::BTreeSet::new();
        let mut opened = 0;
        for line in lines {
            let cells: Vec<&str> = line.split(',').collect();
            clients.insert(cells[client].to_string());
            opened += u64::from(!cells[connect].is_empty());
        }
        let connections = json["connections"].as_u64().unwrap();
        assert_eq!(connections, opened, "--threads {threads}: {json}");
        assert_eq!(connections, clients.len() as u64, "{clients:?}: {json}");
        assert!((1..=6).contains(&connections), "{json}");
    }
    netrun()
        .args(["probe", "http", "http://127.0.0.1:1/", "--threads", "0"])
        .assert()
        .code(2)
        .stderr(contains("--threads"));
}
