//! Catalogs, traces and eviction policies end to end: a trace replayed
//! through the proxy (timing = "fast", concurrency = 1) hits exactly as a
//! plain reference cache computed here says, for every policy; the byte hit
//! ratio of a trace that fits is exact; bad traffic keys and traces stop
//! the run with exit 2 at the file, line and key.

#[path = "common/csv.rs"]
mod common_csv;
#[path = "common/policy_reference.rs"]
mod policy_reference;
#[path = "common/serve.rs"]
mod serve;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

/// Writes a Zipf trace with `netrun trace` and returns its keys and sizes.
fn zipf_trace(dir: &Path, objects: u64, requests: u64, size: &str) -> (PathBuf, Vec<(u64, u64)>) {
    let path = dir.join("trace.csv");
    netrun()
        .args([
            "trace", "zipf", "--alpha", "0.9", "--seed", "3", "--size", size,
        ])
        .args([
            "--objects",
            &objects.to_string(),
            "--requests",
            &requests.to_string(),
        ])
        .arg("-o")
        .arg(&path)
        .assert()
        .code(0);
    let rows = common_csv::read_csv(&path);
    let reqs = rows
        .iter()
        .map(|r| {
            let key = r["key"].parse().expect("a numeric key");
            (key, r["size"].parse().expect("a size"))
        })
        .collect();
    (path, reqs)
}

fn replay_scenario(dir: &Path, cache: &str, matrix: &str) -> PathBuf {
    let file = dir.join("replay.toml");
    std::fs::write(
        &file,
        format!(
            r#"name = "replay"
[topology]
www = "{www}"
[origin]
max_age = "1h"
[cache]
{cache}
{matrix}
[[workload]]
name = "replay"
kind = "http"
trace = "trace.csv"
timing = "fast"
concurrency = 1
"#,
            www = root().join("www").display()
        ),
    )
    .expect("write the scenario");
    file
}

#[test]
fn every_policy_replays_a_trace_as_the_reference_computes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, requests) = zipf_trace(dir.path(), 300, 2000, "1");
    let capacity = 30;
    let file = replay_scenario(
        dir.path(),
        &format!("capacity_objects = {capacity}"),
        "[matrix]\n\"cache.policy\" = [\"lru\", \"fifo\", \"sieve\", \"s3fifo\"]",
    );
    let out = dir.path().join("out");
    netrun()
        .arg(&file)
        .arg("--quiet")
        .arg("--out")
        .arg(&out)
        .assert()
        .code(0);
    let rows = common_csv::read_csv(&out.join("replay.csv"));
    for policy in ["lru", "fifo", "sieve", "s3fifo"] {
        let mut reference = policy_reference::Reference::named(policy);
        let want = requests
            .iter()
            .filter(|(k, _)| reference.access(*k, capacity))
            .count();
        let row = rows
            .iter()
            .find(|r| r["variant"].contains(&format!("cache.policy={policy}")))
            .unwrap_or_else(|| panic!("no {policy} row in {rows:?}"));
        assert_eq!(row["requests"], "2000");
        assert_eq!(row["cache_hits"], want.to_string(), "{policy}");
        let misses = 2000 - want as u64;
        let evictions: u64 = row["cache_evictions"].parse().expect("evictions");
        assert_eq!(
            evictions,
            misses - capacity as u64,
            "{policy}: misses beyond the first {capacity}"
        );
    }
}

#[test]
fn the_byte_hit_ratio_of_a_trace_that_fits_is_one_less_its_first_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, requests) = zipf_trace(
        dir.path(),
        40,
        400,
        "lognormal:median=2KiB,sigma=1,max=64KiB",
    );
    let file = replay_scenario(dir.path(), "capacity = \"64MiB\"", "");
    let out = dir.path().join("out");
    netrun()
        .arg(&file)
        .arg("--quiet")
        .arg("--out")
        .arg(&out)
        .assert()
        .code(0);
    let row = &common_csv::read_csv(&out.join("replay.csv"))[0];
    let mut seen = HashMap::new();
    let mut first = 0u64;
    for (key, size) in &requests {
        if seen.insert(*key, *size).is_none() {
            first += size;
        }
    }
    let total: u64 = requests.iter().map(|(_, s)| s).sum();
    let got: f64 = row["byte_hit_ratio"].parse().expect("a ratio");
    let want = 1.0 - first as f64 / total as f64;
    assert!(
        (got - want).abs() < 1e-12,
        "byte_hit_ratio {got}, want {want}"
    );
    let upstream: u64 = row["upstream_bytes"].parse().expect("bytes");
    assert_eq!(upstream, first, "the origin sent each object once");
}

/// Every bad traffic key or trace line is an input error (exit 2) that
/// names the file, the line and what to change.
#[test]
fn bad_traffic_keys_and_traces_exit_2_naming_file_line_and_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let www = root().join("www");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("cols.csv", "timestamp,key\n0,a\n");
    write("slash.csv", "timestamp,key,size\n0,a,1\n1,a/b,1\n");
    write("order.csv", "timestamp,key,size\n0,a,1\n2,b,1\n1,c,1\n");
    let cases = [
        (
            "objects = { count = 10, colour = 1 }",
            "unknown key `colour`",
        ),
        (
            "objects = { count = 10, size = { distribution = \"weibull\" } }",
            "`weibull` is not one netrun draws",
        ),
        (
            "objects = { count = 10, alpha = 0.0 }",
            "`workload.w.objects.alpha`: 0 is out of range",
        ),
        (
            "objects = { count = 10, popularity = \"zipfian\" }",
            "`zipfian` is not a popularity",
        ),
        (
            "trace = \"cols.csv\"",
            "cols.csv:1: the header has no `size` column",
        ),
        (
            "trace = \"slash.csv\"",
            "slash.csv:3: key `a/b` contains `/`",
        ),
        (
            "trace = \"order.csv\"",
            "order.csv:4: timestamp 1 is earlier than 2 on line 3",
        ),
        (
            "trace = \"order.csv\"\ntiming = \"replay\"",
            "`replay` is not a timing",
        ),
        ("arrivals = \"poisson\"", "applies to an open loop"),
        (
            "rate = 10.0\nstages = [{ duration = \"1s\" }]",
            "needs exactly one of `rate`",
        ),
    ];
    for (keys, needle) in cases {
        let file = dir.path().join("bad.toml");
        std::fs::write(
            &file,
            format!(
                "[topology]\nwww = \"{}\"\n[[workload]]\nname = \"w\"\nkind = \"http\"\n{keys}\n",
                www.display()
            ),
        )
        .expect("write");
        let out = netrun().arg("check").arg(&file).output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{keys}: {stderr}");
        assert!(
            stderr.contains(needle),
            "{keys}: want {needle:?} in {stderr}"
        );
        assert!(
            stderr.contains("bad.toml:"),
            "{keys}: names the scenario line: {stderr}"
        );
    }
    // Fast timing replays a trace in any order.
    let file = dir.path().join("fast.toml");
    std::fs::write(
        &file,
        format!("[topology]\nwww = \"{}\"\n[[workload]]\nname = \"w\"\nkind = \"http\"\ntrace = \"order.csv\"\ntiming = \"fast\"\n", www.display()),
    )
    .expect("write");
    netrun().arg("check").arg(&file).assert().code(0);
}

/// `netrun probe http --trace` replays a trace against any server (here a
/// `netrun serve` of its own, a separate process, as a pinned-apart
/// benchmark runs it): every line once, in trace order with one client, as
/// `/objects/<key>/<size>` answered with exactly `size` bytes; with recorded
/// timing the rows carry their schedule. Bad traces and flags exit 2.
/// The JSON summary of a run that must have succeeded (its stderr shown if not).
fn json_summary(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn probe_http_replays_a_trace_against_an_external_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (trace, reqs) = zipf_trace(
        dir.path(),
        50,
        300,
        "lognormal:median=2KiB,sigma=1,max=64KiB",
    );
    let origin = serve::Origin::spawn(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("netrun")),
        "127.0.0.1".parse().expect("ip"),
    );
    let url = format!("http://{}/", origin.http);
    let rows_csv = dir.path().join("rows.csv");
    let out = netrun()
        .args([
            "probe",
            "http",
            &url,
            "--timing",
            "fast",
            "--concurrency",
            "1",
            "--json",
        ])
        .arg("--trace")
        .arg(&trace)
        .arg("--csv")
        .arg(&rows_csv)
        .output()
        .expect("run");
    let summary = json_summary(&out);
    assert_eq!(summary["requests"], 300);
    assert_eq!(summary["errors"], 0);
    let rows = common_csv::read_csv(&rows_csv);
    let got: Vec<(String, u64)> = rows
        .iter()
        .map(|r| (r["path"].clone(), r["bytes"].parse().expect("bytes")))
        .collect();
    let want: Vec<(String, u64)> = reqs
        .iter()
        .map(|(k, size)| (format!("/objects/{k}/{size}"), *size))
        .collect();
    assert_eq!(got, want);

    // Recorded timing (the trace's 1000/s, ten times faster) with several
    // clients and no rows: every request sent, none failed.
    let out = netrun()
        .args([
            "probe",
            "http",
            &url,
            "--speed",
            "10",
            "--concurrency",
            "4",
            "--json",
        ])
        .arg("--trace")
        .arg(&trace)
        .output()
        .expect("run");
    let summary = json_summary(&out);
    assert_eq!(
        (summary["requests"].as_u64(), summary["errors"].as_u64()),
        (Some(300), Some(0))
    );
    assert!(
        summary["pacing_max_ms"].is_number(),
        "an open loop reports its pacing: {summary}"
    );

    // A bad trace names its file and line before anything is sent; flags
    // that need a trace are refused without one.
    std::fs::write(
        dir.path().join("order.csv"),
        "timestamp,key,size\n0,a,1\n2,b,1\n1,c,1\n",
    )
    .expect("write");
    let out = netrun()
        .args(["probe", "http", &url])
        .arg("--trace")
        .arg(dir.path().join("order.csv"))
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("order.csv:4: timestamp 1 is earlier than 2 on line 3"),
        "{stderr}"
    );
    for flags in [
        &["--timing", "fast"][..],
        &["--speed", "2"],
        &["--path", "/a", "--trace", "x.csv"],
    ] {
        let out = netrun()
            .args(["probe", "http", &url])
            .args(flags)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
    }
}
