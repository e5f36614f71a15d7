//! `netrun proxy` as a user runs it.

mod support_proxy;

use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;
use support_proxy::{get, Upstream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

#[test]
fn help_lists_the_flags() {
    Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["proxy", "--help"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("--upstream")
                .and(predicate::str::contains("--no-cache"))
                .and(predicate::str::contains("--cache-size"))
                .and(predicate::str::contains("--udp-idle-timeout"))
                .and(predicate::str::contains("--delay"))
                .and(predicate::str::contains("--jitter"))
                .and(predicate::str::contains("--loss"))
                .and(predicate::str::contains("--rate"))
                .and(predicate::str::contains("--seed"))
                .and(predicate::str::contains("--upstream-delay"))
                .and(predicate::str::contains("--upstream-jitter"))
                .and(predicate::str::contains("--upstream-loss"))
                .and(predicate::str::contains("--upstream-rate")),
        );
}

#[test]
fn a_link_delay_over_24h_is_refused_naming_the_flag() {
    Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["proxy", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
        .args(["--upstream-delay", "25h"])
        .timeout(Duration::from_secs(10))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--upstream-delay").and(predicate::str::contains("24h")));
}

#[test]
fn a_loss_above_100_percent_is_refused() {
    Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args([
            "proxy",
            "--http",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--loss",
            "150",
        ])
        .timeout(Duration::from_secs(10))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("0 to 100"));
}

#[test]
fn port_in_use_exits_3_naming_the_address_and_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(["proxy", "--http", &addr, "--udp", "127.0.0.1:0"])
        .timeout(Duration::from_secs(10))
        .assert()
        .code(3)
        .stderr(predicate::str::contains(addr.as_str()).and(predicate::str::contains("--http")));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_miss_then_hit_and_prints_counters_on_ctrl_c() {
    let upstream = Upstream::start().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args([
            "proxy",
            "--http",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--upstream",
        ])
        .arg(upstream.addr.to_string())
        .args(["--delay", "2ms", "--jitter", "1ms", "--seed", "9"])
        .args(["--upstream-delay", "5ms", "--upstream-rate", "1Gbit/s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut first))
        .await
        .expect("no start line")
        .unwrap();
    // proxy http://127.0.0.1:PORT -> UPSTREAM  udp ... cache 64MiB  delay ...
    assert!(first.starts_with("proxy http://127.0.0.1:"), "{first}");
    assert!(first.contains(&format!("-> {}", upstream.addr)), "{first}");
    assert!(
        first.contains("cache 64MiB  "),
        "no --cache-ttl unless asked: {first}"
    );
    assert!(
        first.contains("clients_proxy delay 2ms ±1ms loss 0% rate unlimited seed 9"),
        "{first}"
    );
    assert!(
        first.contains("proxy_origin delay 5ms loss 0% rate 1Gbit/s seed 9"),
        "{first}"
    );
    let addr: std::net::SocketAddr = first
        .trim_start_matches("proxy http://")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();

    assert_eq!(get(addr, "/index.html").await.x_cache(), "MISS");
    assert_eq!(get(addr, "/index.html").await.x_cache(), "HIT");

    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let code = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("proxy did not stop on SIGINT")
        .unwrap();
    assert_eq!(code.code(), Some(0));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    assert!(rest.contains("2 requests, 1 hits, 1 misses"), "{rest}");
    // Both exchanges cross the clients' link both ways; only the miss
    // crossed the origin's link (request up, response head back).
    assert!(
        rest.contains(
            "clients_proxy: 0 datagrams dropped, 0 datagrams delayed (0 dropped with the delay buffer full), 4 http messages delayed"
        ),
        "{rest}"
    );
    assert!(
        rest.contains(
            "proxy_origin: 0 datagrams dropped, 0 datagrams delayed, 2 http messages delayed"
        ),
        "{rest}"
    );
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .await
        .unwrap();
    assert!(log.contains("GET /index.html 200 MISS"), "{log}");
    assert!(log.contains("GET /index.html 200 HIT"), "{log}");
}
