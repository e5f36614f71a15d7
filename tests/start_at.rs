//! `--start-at`: the services start, the workloads wait for the instant,
//! and run.json says when they started and how late that was; a TIME that
//! is not one is refused before anything runs.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use assert_cmd::Command;
use predicates::str::contains;

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

fn www() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("www")
}

#[test]
fn the_workloads_start_at_the_instant_and_run_json_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("barrier.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"barrier\"\n[topology]\nwww = \"{}\"\n\
             [[workload]]\nkind = \"udp\"\nname = \"u\"\ntarget = \"origin\"\ncount = 5\n",
            www().display()
        ),
    )
    .unwrap();
    let at = SystemTime::now() + Duration::from_secs(2);
    let at_text = humantime::format_rfc3339_millis(at).to_string();
    let out = tmp.path().join("out");
    netrun()
        .arg("run")
        .arg(&file)
        .args(["--quiet", "--start-at", &at_text, "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(contains(format!("the workloads start at {at_text}")))
        .stdout(contains("after --start-at"));

    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("barrier/run.json")).unwrap())
            .unwrap();
    let start = &info["start"];
    assert_eq!(start["start_at"].as_str(), Some(at_text.as_str()), "{info}");
    let started = humantime::parse_rfc3339(start["started_at"].as_str().unwrap()).unwrap();
    // Millisecond text: the instant itself, or after it; never before.
    assert!(started >= at - Duration::from_millis(1), "{start}");
    let late = start["start_late_ms"].as_f64().unwrap();
    assert!(late >= 0.0, "{start}");

    // The workload's row starts at the barrier, not before.
    let csv = std::fs::read_to_string(out.join("barrier.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "started_at").unwrap();
    let row_start = lines
        .next()
        .unwrap()
        .split(',')
        .nth(col)
        .unwrap()
        .to_string();
    let row_start = humantime::parse_rfc3339(&row_start).unwrap();
    assert!(
        row_start >= at - Duration::from_millis(1),
        "row started {row_start:?}"
    );
}

#[test]
fn a_time_without_a_zone_is_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    netrun()
        .arg("run")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/basic.toml"))
        .args(["--start-at", "2026-12-02T10:00:00", "--out"])
        .arg(tmp.path().join("out"))
        .assert()
        .code(2)
        .stderr(contains("--start-at 2026-12-02T10:00:00: no zone"))
        .stderr(contains("+10s"));
    assert!(!tmp.path().join("out").exists(), "nothing ran");
}
