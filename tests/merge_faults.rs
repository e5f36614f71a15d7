//! `netrun merge` and the run record never give a silently wrong result:
//! each fault a red-team pass found (issue 21) is refused with exit 2
//! naming the file, or gives the right figure.

#[path = "common/csv.rs"]
mod common_csv;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

/// A scenario `name` of one UDP workload `u` (and `extra` lines), with
/// `repeat` runs, against a spawned origin.
fn scenario(dir: &Path, name: &str, repeat: u32, extra: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    std::fs::write(
        &p,
        format!(
            "name = \"{name}\"\nrepeat = {repeat}\n[topology]\nwww = \"{}\"\n\
             [[workload]]\nkind = \"udp\"\nname = \"u\"\ncount = 20\ninterval = \"1ms\"\n{extra}",
            www.display()
        ),
    )
    .unwrap();
    p
}

/// The run record is written with the CSVs: when it cannot be, the run
/// fails instead of leaving a folder `merge` later refuses for its age.
#[test]
fn a_run_whose_record_cannot_be_written_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path(), "rec", 1, "");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("rec/run.json/blocker")).unwrap();
    netrun()
        .arg("run")
        .arg(&file)
        .args(["--quiet", "--out"])
        .arg(&out)
        .assert()
        .code(3)
        .stderr(contains("run.json"));
}

/// Runs `files` as `--shard k/n` into `<tmp>/q<k>` for each k.
fn shards(tmp: &Path, files: &[&Path], n: u32) -> Vec<PathBuf> {
    (1..=n)
        .map(|k| {
            let out = tmp.join(format!("q{k}"));
            netrun()
                .arg("run")
                .args(files)
                .args(["--quiet", "--shard", &format!("{k}/{n}"), "--out"])
                .arg(&out)
                .assert()
                .success();
            out
        })
        .collect()
}

fn merge(inputs: &[PathBuf], out: &Path) -> assert_cmd::assert::Assert {
    netrun()
        .arg("merge")
        .args(inputs)
        .arg("--out")
        .arg(out)
        .assert()
}

/// Rewrites one cell of a CSV file (row from 0, by column name).
fn set_cell(path: &Path, row: usize, column: &str, value: &str) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().clone();
    let col = header.iter().position(|h| h == column).unwrap();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).unwrap();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.unwrap();
        let cells: Vec<&str> = rec
            .iter()
            .enumerate()
            .map(|(c, v)| if i == row && c == col { value } else { v })
            .collect();
        w.write_record(&cells).unwrap();
    }
    std::fs::write(path, w.into_inner().unwrap()).unwrap();
}

/// Two shards of one scenario of two repetitions.
fn two_shards(tmp: &Path) -> Vec<PathBuf> {
    let file = scenario(tmp, "sh", 2, "");
    shards(tmp, &[&file], 2)
}

/// A V2 header claiming 4 GiB of payload is refused at once, naming the
/// file and line (it allocated 4.2 GB for 13 s before).
#[test]
fn a_histogram_claiming_a_huge_payload_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let q = two_shards(tmp.path());
    let file = q[0].join("sh/histograms.csv");
    set_cell(
        &file,
        0,
        "histogram",
        "HISTE/////8AAAAAAAAAAwAAAAAAAAABAAAAANaTpAA/8AAAAAAAAA==",
    );
    let out = tmp.path().join("m");
    merge(&q, &out)
        .code(2)
        .stderr(contains("histograms.csv line 2").and(contains("claims a payload of 4294967295")));
    assert!(!out.exists(), "nothing written");
}

/// A histogram that does not hold the replies its row counts is refused.
#[test]
fn a_histogram_that_disagrees_with_its_row_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let q = two_shards(tmp.path());
    set_cell(&q[1].join("sh.csv"), 0, "received", "100");
    merge(&q, &tmp.path().join("m"))
        .code(2)
        .stderr(contains("histograms.csv line 2").and(contains("counts 100 replies")));
}

/// `a.toml b.toml --shard 1/2` holds only `a`: merging it alone names the
/// missing shard (exit 2) unless `--partial`, which marks the result.
#[test]
fn a_missing_shard_is_named_unless_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let a = scenario(tmp.path(), "a", 1, "");
    let b = scenario(tmp.path(), "b", 1, "");
    let q = shards(tmp.path(), &[&a, &b], 2);
    let out = tmp.path().join("m");
    merge(&q[..1], &out)
        .code(2)
        .stderr(contains("shard 2/2: scenario `b`").and(contains("--partial")));
    assert!(!out.exists());
    netrun()
        .arg("merge")
        .arg(&q[0])
        .args(["--partial", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(contains("PARTIAL: merged without shard 2/2: scenario `b`"));
    let record = std::fs::read_to_string(out.join("a/run.json")).unwrap();
    assert!(
        record.contains("\"partial\": [\n    \"shard 2/2"),
        "{record}"
    );
    merge(&q, &tmp.path().join("whole")).success();
}

/// A symbolic link inside a results folder is refused, naming it, and
/// nothing is copied through it.
#[test]
fn links_inside_results_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let q = two_shards(tmp.path());
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, "not a log").unwrap();
    let log = q[1].join("sh/services.log");
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&secret, &log).unwrap();
    let out = tmp.path().join("m");
    merge(&q, &out)
        .code(2)
        .stderr(contains("services.log is a symbolic link").and(contains("secret")));
    assert!(!out.exists());
}

/// A fault in the second scenario's files leaves nothing written: no first
/// scenario's files, no history row, no empty --out.
#[test]
fn a_failed_merge_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = scenario(tmp.path(), "a", 2, "");
    let b = scenario(tmp.path(), "b", 2, "");
    let q = shards(tmp.path(), &[&a, &b], 2);
    set_cell(&q[1].join("b/histograms.csv"), 0, "histogram", "AAAA");
    let out = tmp.path().join("m");
    merge(&q, &out)
        .code(2)
        .stderr(contains("b/histograms.csv line 2"));
    assert!(!out.exists(), "--out is not even made");
}

/// Summaries without the runner's columns, or with figures no
/// measurement gives, are refused with file and line.
#[test]
fn bad_summaries_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let q = two_shards(tmp.path());
    let summary = q[0].join("sh.csv");
    let good = std::fs::read(&summary).unwrap();
    for value in ["NaN", "inf", "1e308"] {
        set_cell(&summary, 0, "jitter_ms", value);
        merge(&q, &tmp.path().join("m"))
            .code(2)
            .stderr(contains("sh.csv: line 2: `jitter_ms` is").and(contains(value)));
    }
    // Without the latency_p50_ms column.
    std::fs::write(&summary, &good).unwrap();
    let mut r = csv::Reader::from_path(&summary).unwrap();
    let header = r.headers().unwrap().clone();
    let drop = header.iter().position(|h| h == "latency_p50_ms").unwrap();
    let mut w = csv::Writer::from_writer(Vec::new());
    let keep = |rec: &csv::StringRecord| -> Vec<String> {
        rec.iter()
            .enumerate()
            .filter(|(i, _)| *i != drop)
            .map(|(_, v)| v.to_string())
            .collect()
    };
    w.write_record(keep(&header)).unwrap();
    for rec in r.records() {
        w.write_record(keep(&rec.unwrap())).unwrap();
    }
    std::fs::write(&summary, w.into_inner().unwrap()).unwrap();
    merge(&q, &tmp.path().join("m"))
        .code(2)
        .stderr(contains("lacks the column latency_p50_ms"));
    assert!(!tmp.path().join("m").exists());
}

/// A complete run with a newer interrupted run beside it is not the part's
/// last run: refused. An older interrupted run is left out, and said so.
#[test]
fn a_stale_run_beside_a_newer_interrupted_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let q = two_shards(tmp.path());
    let copy = |name: &str| {
        let dir = q[1].join(format!("{name}.interrupted"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in std::fs::read_dir(q[1].join(name)).unwrap().flatten() {
            std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
        }
        let csv = q[1].join(format!("{name}.interrupted.csv"));
        std::fs::copy(q[1].join(format!("{name}.csv")), &csv).unwrap();
        csv
    };
    let csv = copy("sh");
    let set = |p: &Path, t: std::time::SystemTime| {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    };
    let now = std::time::SystemTime::now();
    set(&csv, now + std::time::Duration::from_secs(60));
    merge(&q, &tmp.path().join("m"))
        .code(2)
        .stderr(contains("sh.interrupted.csv is newer than").and(contains("Run the part again")));
    set(&csv, now - std::time::Duration::from_secs(3600));
    merge(&q, &tmp.path().join("m")).success().stdout(
        contains("shard 2/2 from").and(contains("older interrupted run beside it was left out")),
    );
}
