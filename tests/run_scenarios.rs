//! End-to-end runs of scenario files through the real binary: results checked
//! row by row against the scenario and the CSV contract.

#[path = "common/csv.rs"]
mod common_csv;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};

use assert_cmd::Command;
use common_csv::read_csv_with_header as read_csv;

/// The original summary columns, in order (later additions follow them).
const SUMMARY_COLUMNS: &[&str] = &[
    "scenario",
    "variant",
    "workload",
    "kind",
    "target",
    "cache",
    "started_at",
    "duration_s",
    "sent",
    "received",
    "lost",
    "loss_percent",
    "late",
    "duplicates",
    "reordered",
    "latency_min_ms",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "latency_stddev_ms",
    "jitter_ms",
    "ipdv_mean_ms",
    "throughput_bps",
    "requests",
    "errors",
    "requests_per_s",
    "cache_hits",
    "cache_hit_ratio",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

type Table = Vec<common_csv::Row>;

fn row<'a>(rows: &'a Table, workload: &str) -> &'a std::collections::HashMap<String, String> {
    rows.iter()
        .find(|r| r["workload"] == workload)
        .unwrap_or_else(|| panic!("no row for {workload}"))
}

fn num(r: &std::collections::HashMap<String, String>, col: &str) -> f64 {
    r[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} = {:?} is not a number", r[col]))
}

/// Writes a scenario into `dir` with `www` pointing at the repository's site.
fn scenario(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    let www = root().join("www");
    std::fs::write(
        &p,
        format!(
            "name = \"{name}\"\n[topology]\nwww = \"{}\"\n{body}",
            www.display()
        ),
    )
    .expect("write scenario");
    p
}

/// Fails if a temporary file of an atomic write was left in `dir`.
fn assert_no_temp_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(!name.ends_with(".tmp"), "left behind: {name}");
    }
}

#[test]
fn basic_scenario_writes_every_result_file() {
    let out = tempfile::tempdir().expect("tempdir");
    let assert = netrun()
        .current_dir(root())
        .args(["scenarios/basic.toml", "--quiet", "--out"])
        .arg(out.path())
        .assert()
        .code(0);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(
        stdout.contains("pass page_again.cache_hit_ratio"),
        "{stdout}"
    );

    let (header, rows) = read_csv(&out.path().join("basic.csv"));
    assert_eq!(&header[..SUMMARY_COLUMNS.len()], SUMMARY_COLUMNS);
    assert_eq!(rows.len(), 4, "one row per workload");
    for r in &rows {
        assert_eq!(r["scenario"], "basic");
        assert_eq!(r["variant"], "default");
        assert_eq!(r["interrupted"], "false");
        assert_eq!(r["cache"], "true");
    }
    let page = row(&rows, "page");
    assert_eq!(page["requests"], "1");
    assert_eq!(page["cache_hits"], "0", "the first request is a MISS");
    let again = row(&rows, "page_again");
    assert_eq!(num(again, "cache_hit_ratio"), 1.0, "the second is a HIT");
    assert_eq!(again["proxy_hits"], "1", "the proxy counted the same hit");
    assert_eq!(again["proxy_upstream_fetches"], "0");
    let qos = row(&rows, "qos");
    assert_eq!(qos["kind"], "udp");
    assert_eq!(qos["sent"], "20");
    assert_eq!(qos["received"], "20");
    assert_eq!(qos["lost"], "0");
    assert!(num(qos, "latency_p50_ms") > 0.0);
    let clients = row(&rows, "clients");
    assert_eq!(clients["requests"], "100");
    assert_eq!(clients["errors"], "0");
    assert!(num(clients, "cache_hit_ratio") >= 0.9, "{clients:?}");

    let dir = out.path().join("basic");
    let (h, packets) = read_csv(&dir.join("udp_packets.csv"));
    assert_eq!(
        h,
        [
            "variant",
            "workload",
            "flow",
            "seq",
            "send_offset_ms",
            "rtt_ms",
            "status",
            "repetition"
        ]
    );
    assert_eq!(packets.len(), 20);
    assert!(packets
        .iter()
        .all(|p| p["status"] == "ok" && p["workload"] == "qos"));
    let (h, requests) = read_csv(&dir.join("http_requests.csv"));
    assert_eq!(
        h,
        [
            "variant",
            "workload",
            "client",
            "path",
            "status",
            "bytes",
            "latency_ms",
            "cache",
            "error",
            "start_offset_ms",
            "repetition",
            "connect_ms",
            "tls_ms",
            "ttfb_ms",
            "protocol",
            "send_offset_ms"
        ]
    );
    assert_eq!(requests.len(), 102);
    assert!(requests.iter().all(|r| r["repetition"] == "1"));
    assert!(
        requests
            .iter()
            .all(|r| r["start_offset_ms"].parse::<f64>().is_ok_and(|t| t >= 0.0)),
        "every request has its start time"
    );
    // The actual send is the start itself, or later (open loop's schedule).
    assert!(
        requests.iter().all(|r| {
            let at = |c: &str| r[c].parse::<f64>().ok();
            at("send_offset_ms")
                .zip(at("start_offset_ms"))
                .is_some_and(|(s, t)| s >= t)
        }),
        "every request has its send time"
    );
    assert!(dir.join("run.json").is_file() && dir.join("report.html").is_file());
    let first = requests
        .iter()
        .find(|r| r["workload"] == "page")
        .expect("page request");
    assert_eq!(
        (first["status"].as_str(), first["cache"].as_str()),
        ("200", "MISS")
    );
    let log = std::fs::read_to_string(dir.join("services.log")).expect("services.log");
    assert!(log.contains("MISS") && log.contains("HIT"), "{log}");

    // The history gains the run's rows each time.
    let (h, history) = read_csv(&out.path().join("history.csv"));
    assert_eq!(&h[..3], ["run_id", "timestamp", "scenario"]);
    assert_eq!(history.len(), 4);
    netrun()
        .current_dir(root())
        .args(["run", "scenarios/basic.toml", "--quiet", "--out"])
        .arg(out.path())
        .assert()
        .code(0);
    let (_, history) = read_csv(&out.path().join("history.csv"));
    assert_eq!(history.len(), 8);
    assert_ne!(history[0]["run_id"], history[7]["run_id"]);
    // No temporary files are left behind.
    assert_no_temp_files(&dir);
}

/// The shipped CI gate scenario runs whole: every repetition of every
/// workload has its row (labelled 1..=5), the stats file has a line per
/// workload and metric, and a gate of the run against itself has nothing to
/// report as worse (identical figures are `same`, whatever the machine did).
#[test]
fn shipped_ci_scenario_runs_its_repetitions() {
    let out = tempfile::tempdir().expect("tempdir");
    netrun()
        .current_dir(root())
        .args(["scenarios/ci.toml", "--quiet", "--out"])
        .arg(out.path())
        .assert()
        .code(0);
    let (_, rows) = read_csv(&out.path().join("ci.csv"));
    assert_eq!(rows.len(), 4 * 5, "four workloads, five repetitions each");
    for w in ["udp", "http", "udp_direct", "http_direct"] {
        let mut reps: Vec<&str> = rows
            .iter()
            .filter(|r| r["workload"] == w)
            .map(|r| r["repetition"].as_str())
            .collect();
        reps.sort_unstable();
        assert_eq!(reps, ["1", "2", "3", "4", "5"], "{w}");
    }
    // Each sample names its repetition: 200 requests and 200 datagrams each.
    for (file, workload) in [("http_requests.csv", "http"), ("udp_packets.csv", "udp")] {
        let (_, samples) = read_csv(&out.path().join("ci").join(file));
        for rep in ["1", "2", "3", "4", "5"] {
            let n = samples
                .iter()
                .filter(|r| r["workload"] == workload && r["repetition"] == rep)
                .count();
            assert_eq!(n, 200, "{file}: {workload} repetition {rep}");
        }
    }
    let (_, stats) = read_csv(&out.path().join("ci.stats.csv"));
    let p50 = stats
        .iter()
        .find(|r| r["workload"] == "http" && r["metric"] == "latency_p50_ms")
        .expect("a stats line for http latency_p50_ms");
    assert_eq!(p50["n"], "5");
    let compared = netrun()
        .current_dir(root())
        .args(["compare", "--tolerance", "5%"])
        .arg(out.path().join("ci.csv"))
        .arg(out.path().join("ci.csv"))
        .assert()
        .code(0);
    let table = String::from_utf8_lossy(&compared.get_output().stdout).into_owned();
    assert!(table.contains("same"), "{table}");
    assert!(!table.contains("worse"), "{table}");
}

#[test]
fn shipped_scenarios_run() {
    for name in ["udp_qos", "load", "cache", "impair"] {
        let out = tempfile::tempdir().expect("tempdir");
        netrun()
            .current_dir(root())
            .arg(format!("scenarios/{name}.toml"))
            .args(["--quiet", "--out"])
            .arg(out.path())
            .assert()
            .code(0);
        let (_, rows) = read_csv(&out.path().join(format!("{name}.csv")));
        assert_eq!(rows.len(), 2, "{name}");
    }
}

/// The shipped impairment scenario: what the probe measured matches what
/// the proxy says it injected, variant by variant.
#[test]
fn impairments_show_in_the_measurements_and_the_proxy_counters() {
    let out = tempfile::tempdir().expect("tempdir");
    netrun()
        .current_dir(root())
        .args(["scenarios/impair.toml", "--quiet", "--out"])
        .arg(out.path())
        .assert()
        .code(0);
    let (header, rows) = read_csv(&out.path().join("impair.csv"));
    assert!(header.iter().any(|h| h == "topology"), "{header:?}");
    assert!(rows.iter().all(|r| r["topology"] == "loopback"), "{rows:?}");
    let variant = |v: &str| {
        rows.iter()
            .find(|r| r["variant"] == v)
            .unwrap_or_else(|| panic!("no variant {v}"))
    };
    for v in ["impair.loss_percent=0.0", "impair.loss_percent=5.0"] {
        let r = variant(v);
        // 5 ms ± 2 ms each way: no round trip under 6 ms.
        assert!(num(r, "latency_min_ms") >= 6.0, "{v}: {r:?}");
        assert!(num(r, "proxy_delayed") > 0.0, "{v}: {r:?}");
        // Loopback loses nothing by itself: every loss is an injected drop,
        // all of it on the clients' link (`[impair]` is its shorthand).
        assert_eq!(r["lost"], r["proxy_dropped"], "{v}: {r:?}");
        assert_eq!(r["lost"], r["clients_proxy_dropped"], "{v}: {r:?}");
        // Nothing lost on this machine's sockets: the echo's and the probe's
        // kernel counts are there, and zero.
        assert_eq!(
            (&*r["origin_dropped"], &*r["receive_drops"]),
            ("0", "0"),
            "{v}: {r:?}"
        );
        assert_eq!(r["proxy_delayed"], r["clients_proxy_delayed"], "{v}: {r:?}");
        assert_eq!(
            (
                num(r, "proxy_origin_dropped"),
                num(r, "proxy_origin_delayed")
            ),
            (0.0, 0.0)
        );
    }
    assert_eq!(variant("impair.loss_percent=0.0")["lost"], "0");
    let lossy = variant("impair.loss_percent=5.0");
    // 5 % each way ≈ 9.75 % of round trips; the seed fixes the exact count.
    let loss = num(lossy, "loss_percent");
    assert!((3.0..=20.0).contains(&loss), "{lossy:?}");
}

#[test]
fn json_summary_uses_the_csv_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(
        dir.path(),
        "j",
        "[[workload]]\nkind = \"udp\"\nname = \"q\"\ncount = 5\ninterval = \"1ms\"\ntimeout = \"500ms\"\n",
    );
    let out = netrun()
        .arg(&file)
        .arg("--json")
        .arg("--out")
        .arg(dir.path().join("results"))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let row = &v["runs"][0]["rows"][0];
    assert_eq!(row["workload"], "q");
    assert_eq!(row["sent"], 5);
    assert_eq!(row["received"], 5);
    for col in SUMMARY_COLUMNS {
        assert!(row.get(col).is_some(), "JSON lacks {col}");
    }
}

#[test]
fn failed_expectation_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(
        dir.path(),
        "e",
        "[[workload]]\nkind = \"http\"\nname = \"page\"\nrequests = 3\n[expect]\n\"page.requests\" = \"> 3\"\n",
    );
    netrun()
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("results"))
        .assert()
        .code(1)
        .stdout(predicates::str::contains(
            "FAIL page.requests > 3 (measured 3",
        ));
    assert!(
        dir.path().join("results/e.csv").exists(),
        "results are written even when expectations fail"
    );
}

#[test]
fn matrix_runs_every_variant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(
        dir.path(),
        "m",
        "[[workload]]\nkind = \"http\"\nname = \"page\"\nrequests = 10\n[matrix]\n\"cache.enabled\" = [true, false]\n",
    );
    let assert = netrun()
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .code(0);
    // stdout is not a terminal: a line per workload start and end instead of bars.
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    for variant in ["cache.enabled=true", "cache.enabled=false"] {
        assert!(
            stdout.contains(&format!("  started {variant}:page (http -> proxy)\n")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("  finished {variant}:page in ")),
            "{stdout}"
        );
    }
    let (_, rows) = read_csv(&dir.path().join("m.csv"));
    assert_eq!(rows.len(), 2);
    let on = rows
        .iter()
        .find(|r| r["variant"] == "cache.enabled=true")
        .expect("cache on");
    let off = rows
        .iter()
        .find(|r| r["variant"] == "cache.enabled=false")
        .expect("cache off");
    assert_eq!(num(on, "cache_hits"), 9.0);
    assert_eq!(num(off, "cache_hits"), 0.0);
    assert_eq!(off["cache"], "false");
    assert_eq!(off["proxy_upstream_fetches"], "10");
}

#[test]
fn port_in_use_is_exit_3_naming_the_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(
        dir.path(),
        "p",
        &format!("origin = {{ http = {port}, udp = 0 }}\n[[workload]]\nkind = \"http\"\nname = \"page\"\n"),
    );
    netrun()
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .code(3)
        .stderr(predicates::str::contains(format!("127.0.0.1:{port}")))
        .stderr(predicates::str::contains("topology.origin.http"));
}

/// Starts `netrun serve` on free ports and returns it with its addresses.
fn spawn_serve() -> (std::process::Child, String, String) {
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("netrun"))
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--www",
        ])
        .arg(root().join("www"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn netrun serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("start line");
    let addr_after = |key: &str| {
        let start = line
            .find(key)
            .unwrap_or_else(|| panic!("{key} in {line:?}"))
            + key.len();
        line[start..]
            .split_whitespace()
            .next()
            .expect("address")
            .trim_end_matches('/')
            .to_string()
    };
    let http = addr_after("http://");
    let udp = addr_after("udp ");
    (child, http, udp)
}

#[test]
fn external_origin_is_used_not_started() {
    let (mut serve, http, udp) = spawn_serve();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ext.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"ext\"\n[topology]\norigin = {{ address = \"{http}\", udp_address = \"{udp}\" }}\n\
             [[workload]]\nkind = \"http\"\nname = \"direct\"\ntarget = \"origin\"\nrequests = 5\n\
             [[workload]]\nkind = \"http\"\nname = \"cached\"\ntarget = \"proxy\"\nrequests = 5\n\
             [[workload]]\nkind = \"udp\"\nname = \"echo\"\ntarget = \"origin\"\ncount = 5\ninterval = \"1ms\"\n"
        ),
    )
    .expect("write");
    let result = netrun()
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("run");
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(
        result.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let (_, rows) = read_csv(&dir.path().join("ext.csv"));
    assert_eq!(row(&rows, "direct")["errors"], "0");
    assert_eq!(row(&rows, "direct")["cache"], "");
    assert_eq!(row(&rows, "cached")["cache_hits"], "4");
    assert_eq!(row(&rows, "echo")["received"], "5");
}

#[cfg(unix)]
#[test]
fn interrupted_run_keeps_complete_csvs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(
        dir.path(),
        "long",
        "[[workload]]\nkind = \"udp\"\nname = \"long\"\ncount = 100000\ninterval = \"1ms\"\ntimeout = \"200ms\"\n",
    );
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("netrun"))
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Without a terminal, the runner announces each workload as it starts.
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    loop {
        let line = lines.next().expect("the run ended early").expect("line");
        if line.contains("long") && line.contains("started") {
            break;
        }
    }
    let status = StdCommand::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let code = child.wait().expect("wait").code();
    assert_eq!(code, Some(130), "{rest:?}");
    // Partial results go beside where complete ones would be.
    assert!(!dir.path().join("long.csv").exists());
    let (_, rows) = read_csv(&dir.path().join("long.interrupted.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["interrupted"], "true");
    let sent = num(&rows[0], "sent") as usize;
    assert!(sent < 100_000);
    let (_, packets) = read_csv(&dir.path().join("long.interrupted/udp_packets.csv"));
    assert_eq!(packets.len(), sent, "one row per datagram sent");
}

#[test]
fn a_failed_run_keeps_the_previous_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = "[[workload]]\nkind = \"http\"\nname = \"page\"\nrequests = 2\n";
    let file = scenario(dir.path(), "keep", body);
    netrun()
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .code(0);
    let before = std::fs::read(dir.path().join("keep.csv")).expect("summary");
    let requests = std::fs::read(dir.path().join("keep/http_requests.csv")).expect("requests");

    // The same scenario, now unable to start its origin.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    scenario(
        dir.path(),
        "keep",
        &format!("origin = {{ http = {port}, udp = 0 }}\n{body}"),
    );
    netrun()
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .code(3);
    assert_eq!(
        std::fs::read(dir.path().join("keep.csv")).expect("summary"),
        before
    );
    assert_eq!(
        std::fs::read(dir.path().join("keep/http_requests.csv")).expect("requests"),
        requests
    );
    assert_no_temp_files(&dir.path().join("keep"));
}

#[test]
fn an_unreachable_target_is_exit_3_after_writing_results() {
    // A port nobody listens on: bind, learn it, close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let udp_closed = std::net::UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("gone.toml");
    std::fs::write(
        &file,
        format!(
            "[topology]\norigin = {{ address = \"{closed}\", udp_address = \"{udp_closed}\" }}\n\
             [[workload]]\nkind = \"http\"\nname = \"page\"\ntarget = \"origin\"\nrequests = 3\n"
        ),
    )
    .expect("write");
    netrun()
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .code(3)
        .stderr(predicates::str::contains("no reply at all for `gone.page`"));
    let (_, rows) = read_csv(&dir.path().join("gone.csv"));
    assert_eq!(rows[0]["errors"], "3");
}

#[test]
fn baseline_regressions_fail_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = |enabled: bool| {
        format!("[cache]\nenabled = {enabled}\n[[workload]]\nkind = \"http\"\nname = \"page\"\nrequests = 10\n")
    };
    let file = scenario(dir.path(), "base", &body(true));
    let base = dir.path().join("base-results");
    netrun().arg(&file).arg("--out").arg(&base).assert().code(0);

    // The same scenario with the cache off: its hit ratio falls from 0.9 to 0.
    scenario(dir.path(), "base", &body(false));
    let out = netrun()
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("new"))
        .arg("--baseline")
        .arg(&base)
        .arg("--json")
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let worse = v["runs"][0]["regressions"].as_array().expect("regressions");
    let hit = worse
        .iter()
        .find(|r| r["metric"] == "cache_hit_ratio")
        .expect("the hit ratio regressed");
    assert_eq!(hit["baseline"], 0.9);
    assert_eq!(hit["now"], 0.0);

    // A baseline that does not exist is an input error, before anything runs.
    netrun()
        .arg(&file)
        .arg("--baseline")
        .arg(dir.path().join("nowhere"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--baseline"));
}

#[test]
fn compare_puts_variants_side_by_side() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(
        dir.path(),
        "cmp",
        "[[workload]]\nkind = \"http\"\nname = \"page\"\nrequests = 10\n[matrix]\n\"cache.enabled\" = [true, false]\n",
    );
    netrun()
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .arg("--quiet")
        .assert()
        .code(0);
    let out = netrun()
        .arg("compare")
        .arg(dir.path().join("cmp.csv"))
        .output()
        .expect("compare");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("page (http -> proxy)"), "{text}");
    assert!(text.contains("cmp:cache.enabled=true"), "{text}");
    assert!(text.contains("cmp:cache.enabled=false"), "{text}");
    let ratio = text
        .lines()
        .find(|l| l.trim_start().starts_with("cache_hit_ratio"))
        .expect("ratio line");
    // 9 of 10 hits against 0 of 10: the change, its interval, the verdict.
    assert!(
        ratio.contains("0.900") && ratio.contains("0.000 -100.0% [") && ratio.ends_with("worse"),
        "{ratio}"
    );

    // The history holds both variants of each run.
    let out = netrun()
        .args(["compare", "--json"])
        .arg(dir.path().join("history.csv"))
        .output()
        .expect("compare");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["columns"].as_array().map(Vec::len), Some(2));

    netrun()
        .args(["compare", "no/such.csv"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("does not exist"));
}

/// `links.proxy_origin` in a scenario: request by request in
/// http_requests.csv, cache off pays the origin's distance on every request,
/// cache on only on misses; the summary counts what each link injected.
#[test]
fn the_origin_link_shows_request_by_request_with_the_cache_on_and_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(
        dir.path(),
        "far",
        "[links.proxy_origin]\ndelay = \"10ms\"\n\
         [[workload]]\nkind = \"http\"\nname = \"page\"\nrequests = 12\n\
         paths = [\"/index.html\", \"/style.css\", \"/img/logo.png\"]\n\
         [[workload]]\nkind = \"http\"\nname = \"direct\"\ntarget = \"origin\"\nrequests = 5\n\
         [matrix]\n\"cache.enabled\" = [true, false]\n",
    );
    let out = dir.path().join("results");
    netrun()
        .arg(&file)
        .args(["--quiet", "--out"])
        .arg(&out)
        .assert()
        .code(0);
    let (_, requests) = read_csv(&out.join("far/http_requests.csv"));
    let page = |variant: &str, cache: &str| -> Vec<f64> {
        requests
            .iter()
            .filter(|r| r["variant"] == variant && r["workload"] == "page" && r["cache"] == cache)
            .map(|r| num(r, "latency_ms"))
            .collect()
    };
    let off = page("cache.enabled=false", "BYPASS");
    assert_eq!(off.len(), 12, "{requests:?}");
    assert!(off.iter().all(|&ms| ms >= 20.0), "cache off: {off:?}");
    let misses = page("cache.enabled=true", "MISS");
    let hits = page("cache.enabled=true", "HIT");
    assert_eq!((misses.len(), hits.len()), (3, 9), "{requests:?}");
    assert!(misses.iter().all(|&ms| ms >= 20.0), "misses: {misses:?}");
    // Hits never cross the origin's link (the counters below say so
    // exactly); in time, most are at loopback speed even on a busy host.
    let fast = hits.iter().filter(|&&ms| ms < 20.0).count();
    assert!(fast * 2 > hits.len(), "hits: {hits:?}");

    let (_, rows) = read_csv(&out.join("far.csv"));
    let row = |variant: &str, workload: &str| {
        rows.iter()
            .find(|r| r["variant"] == variant && r["workload"] == workload)
            .unwrap_or_else(|| panic!("no row {variant} {workload}"))
    };
    let on = row("cache.enabled=true", "page");
    assert_eq!(num(on, "proxy_upstream_fetches"), 3.0, "{on:?}");
    // A request up and its response head back, per fetch.
    assert_eq!(num(on, "proxy_origin_delayed"), 6.0, "{on:?}");
    assert_eq!(num(on, "clients_proxy_delayed"), 0.0, "{on:?}");
    assert_eq!(num(on, "proxy_delayed"), 6.0, "{on:?}");
    let off = row("cache.enabled=false", "page");
    assert_eq!(num(off, "proxy_origin_delayed"), 24.0, "{off:?}");
    // The direct path crosses neither link: no proxy columns at all.
    let direct = row("cache.enabled=false", "direct");
    assert_eq!(direct["proxy_origin_delayed"], "", "{direct:?}");
}
/// The summary's percentile columns hold the percentiles of the very RTTs
/// written to udp_packets.csv: each one checked against the sorted samples
/// (within a rank and the histogram's 0.1 % precision), so a swap of p90 and
/// p99 cannot pass. Jittered delay spreads the RTTs over several ms.
#[test]
fn percentile_columns_match_the_per_packet_rtts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(
        dir.path(),
        "pct",
        "[impair]\ndelay = \"2ms\"\njitter = \"2ms\"\n[[workload]]\nkind = \"udp\"\nname = \"q\"\ncount = 300\ninterval = \"1ms\"\n",
    );
    netrun()
        .arg(&file)
        .arg("--quiet")
        .arg("--out")
        .arg(dir.path())
        .assert()
        .code(0);
    let (_, packets) = read_csv(&dir.path().join("pct/udp_packets.csv"));
    let mut rtts: Vec<f64> = packets
        .iter()
        .filter(|p| p["status"] == "ok" || p["status"] == "reordered")
        .map(|p| num(p, "rtt_ms"))
        .collect();
    rtts.sort_by(f64::total_cmp);
    let n = rtts.len();
    assert!(n >= 250, "{n} replies");
    let (_, rows) = read_csv(&dir.path().join("pct.csv"));
    let row = row(&rows, "q");
    assert_eq!(num(row, "received") as usize, n);
    let near = |got: f64, lo: f64, hi: f64| got >= lo * 0.999 - 0.002 && got <= hi * 1.001 + 0.002;
    assert!(
        near(num(row, "latency_min_ms"), rtts[0], rtts[0]),
        "{row:?}"
    );
    assert!(
        near(num(row, "latency_max_ms"), rtts[n - 1], rtts[n - 1]),
        "{row:?}"
    );
    for (col, q) in [
        ("latency_p50_ms", 0.50),
        ("latency_p90_ms", 0.90),
        ("latency_p99_ms", 0.99),
    ] {
        // Nearest rank, give or take one.
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        let (lo, hi) = (rtts[rank.saturating_sub(2)], rtts[rank.min(n - 1)]);
        let got = num(row, col);
        assert!(near(got, lo, hi), "{col} = {got}, samples {lo}..{hi}");
    }
    // The columns are distinct measurements, in order.
    assert!(num(row, "latency_p50_ms") < num(row, "latency_p90_ms"));
    assert!(num(row, "latency_p90_ms") < num(row, "latency_p99_ms"));
}

/// The shipped showcase: with the origin 20 ms away, cache off every request
/// pays the round trip to it; cache on, only the few misses do.
#[test]
fn the_cdn_showcase_shows_what_the_cache_saves() {
    let out = tempfile::tempdir().expect("tempdir");
    netrun()
        .current_dir(root())
        .args(["scenarios/cdn.toml", "--quiet", "--out"])
        .arg(out.path())
        .assert()
        .code(0);
    let (_, rows) = read_csv(&out.path().join("cdn.csv"));
    let variant = |v: &str| {
        rows.iter()
            .find(|r| r["variant"] == v)
            .unwrap_or_else(|| panic!("no variant {v}"))
    };
    let (on, off) = (
        variant("cache.enabled=true"),
        variant("cache.enabled=false"),
    );
    // Cache off: 20 ms up and 20 ms back for every one of the 60 requests.
    assert!(num(off, "latency_min_ms") >= 40.0, "{off:?}");
    assert_eq!(num(off, "proxy_upstream_fetches"), 60.0, "{off:?}");
    assert_eq!(num(off, "proxy_origin_delayed"), 120.0, "{off:?}");
    // Cache on: one fetch per object (concurrent misses coalesce).
    assert!(num(on, "proxy_upstream_fetches") <= 12.0, "{on:?}");
    assert!(num(on, "cache_hit_ratio") >= 0.8, "{on:?}");
    assert_eq!(
        num(on, "proxy_origin_delayed"),
        2.0 * num(on, "proxy_upstream_fetches"),
        "{on:?}"
    );
    assert_eq!(num(on, "clients_proxy_delayed"), 0.0, "{on:?}");
}

#[test]
fn an_http2_workload_runs_its_streams_over_one_connection_per_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(
        dir.path(),
        "h2",
        "[[workload]]\nkind = \"http\"\nname = \"p\"\ntarget = \"proxy\"\nrequests = 120\n\
         concurrency = 2\nhttp_version = \"2\"\nstreams = 4\n\
         [[workload]]\nkind = \"http\"\nname = \"o\"\ntarget = \"origin\"\nrequests = 40\n\
         http_version = \"2\"\n",
    );
    let results = dir.path().join("results");
    let out = netrun()
        .arg(&file)
        .arg("--quiet")
        .arg("--out")
        .arg(&results)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, summary) = read_csv(&results.join("h2.csv"));
    for (workload, requests, connections) in [("p", 120.0, 2.0), ("o", 40.0, 1.0)] {
        let r = row(&summary, workload);
        assert_eq!(num(r, "requests"), requests, "{workload}");
        assert_eq!(num(r, "errors"), 0.0, "{workload}");
        assert_eq!(num(r, "connections"), connections, "{workload}");
        assert_eq!(num(r, "tls_handshakes"), 0.0, "clear text (h2c)");
        assert!(num(r, "ttfb_p50_ms") > 0.0);
    }
    let (_, rows) = read_csv(&results.join("h2/http_requests.csv"));
    assert_eq!(rows.len(), 160);
    assert!(
        rows.iter().all(|r| r["protocol"] == "HTTP/2"),
        "h2c end to end"
    );
    let opened = rows.iter().filter(|r| !r["connect_ms"].is_empty()).count();
    assert_eq!(opened, 3, "connect_ms only where a connection was opened");
}
