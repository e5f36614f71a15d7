//! `netrun serve` as a user runs it: help, exit codes, and a real process
//! that serves, echoes and stops cleanly on SIGINT and SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use predicates::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_netrun");
const STEP: Duration = Duration::from_secs(20);

fn www() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("www")
        .display()
        .to_string()
}

fn netrun() -> assert_cmd::Command {
    assert_cmd::Command::new(BIN)
}

#[test]
fn serve_help_lists_the_flags() {
    netrun()
        .args(["serve", "--help"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("--http")
                .and(predicate::str::contains("--udp"))
                .and(predicate::str::contains("--www"))
                .and(predicate::str::contains("--max-header-size"))
                .and(predicate::str::contains("--header-timeout"))
                .and(predicate::str::contains("--max-connections"))
                .and(predicate::str::contains("--max-body-size")),
        );
}

#[test]
fn port_in_use_exits_3_naming_address_and_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    netrun()
        .args([
            "serve",
            "--http",
            &addr,
            "--udp",
            "127.0.0.1:0",
            "--www",
            &www(),
        ])
        .timeout(STEP)
        .assert()
        .code(3)
        .stderr(predicate::str::contains(&addr).and(predicate::str::contains("--http")));
}

#[test]
fn udp_port_in_use_exits_3_naming_the_udp_flag() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    netrun()
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--udp",
            &addr,
            "--www",
            &www(),
        ])
        .timeout(STEP)
        .assert()
        .code(3)
        .stderr(predicate::str::contains(&addr).and(predicate::str::contains("--udp")));
}

#[test]
fn missing_www_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-site").display().to_string();
    netrun()
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--www",
            &missing,
        ])
        .timeout(STEP)
        .assert()
        .code(2)
        .stderr(
            predicate::str::starts_with("error: ")
                .and(predicate::str::contains(&missing))
                .and(predicate::str::contains("--www")),
        );
}

#[test]
fn workers_out_of_range_exit_2() {
    for n in ["0", "257", "many"] {
        netrun()
            .args(["serve", "--workers", n])
            .assert()
            .code(2)
            .stderr(predicates::str::contains("--workers"));
    }
}

#[test]
fn two_workers_are_two_serving_threads() {
    let server = spawn_server_with(&["--workers", "2"]);
    let page = http_get(server.http, "/");
    // A thread takes its name once it first runs, which may be after the
    // server answered: wait (bounded) until both names show.
    let tasks = format!("/proc/{}/task", server.child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let names = loop {
        let mut names: Vec<String> = std::fs::read_dir(&tasks)
            .map(|d| {
                d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                    .map(|n| n.trim().to_string())
                    .filter(|n| n.starts_with("origin-"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        if names.len() >= 2 || std::time::Instant::now() > deadline {
            break names;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let (status, _) = stop_with(server, "-TERM");
    assert_eq!(names, ["origin-0", "origin-1"]);
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn bad_limit_value_exits_2() {
    netrun()
        .args(["serve", "--header-timeout", "soon"])
        .assert()
        .code(2);
}

/// A `netrun serve` child process and the addresses it printed.
struct Server {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
    http: SocketAddr,
    udp: SocketAddr,
}

fn spawn_server() -> Server {
    spawn_server_with(&[])
}

fn spawn_server_with(extra: &[&str]) -> Server {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--www",
            &www(),
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // origin http://127.0.0.1:PORT  udp 127.0.0.1:PORT  www /abs/path
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"origin"), "start line: {line:?}");
    let http = words[1].trim_start_matches("http://").parse().unwrap();
    let udp = words[3].parse().unwrap();
    assert!(words[5].ends_with("www"), "start line: {line:?}");
    Server {
        child,
        stdout,
        http,
        udp,
    }
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn stop_with(mut server: Server, signal: &str) -> (ExitStatus, String) {
    let pid = server.child.id().to_string();
    let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(sent.success());
    let (tx, rx) = mpsc::channel();
    let mut child = server.child;
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx
        .recv_timeout(STEP)
        .expect("netrun serve did not stop after the signal")
        .unwrap();
    let mut rest = String::new();
    server.stdout.read_to_string(&mut rest).unwrap();
    (status, rest)
}

fn serves_then_stops_on(signal: &str) {
    let server = spawn_server();
    let page = http_get(server.http, "/");
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("<title>netrun origin</title>"));

    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(STEP)).unwrap();
    udp.send_to(b"ping", server.udp).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = udp.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"ping"[..], server.udp));

    let http = server.http;
    let (status, rest) = stop_with(server, signal);
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    assert!(rest.contains("origin stopped"), "final counters: {rest:?}");
    assert!(rest.contains("1 requests"), "final counters: {rest:?}");
    assert!(TcpStream::connect(http).is_err(), "still listening");
}

#[test]
fn serve_runs_and_exits_0_on_sigint() {
    serves_then_stops_on("-INT");
}

#[test]
fn serve_runs_and_exits_0_on_sigterm() {
    serves_then_stops_on("-TERM");
}
