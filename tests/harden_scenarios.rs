//! Strict scenario files and flags (issue 11, item 8): every mistake of a
//! file in one pass, unquoted durations explained, files that are not small
//! text refused, and `check` refusing everything a run would.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A temporary folder holding an empty `www/` and a `scenarios/` folder to
/// write scenario files into, so their default `www = "../www"` names a
/// folder this test made: the errors reported never depend on what else
/// the system's temporary folder holds.
fn scenario_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("www")).unwrap();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    (dir, scenarios)
}

/// Runs `netrun check FILE`; returns (exit code, stderr).
fn check(file: &Path) -> (Option<i32>, String) {
    let out = netrun().arg("check").arg(file).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_unknown_key_and_type_error_is_reported_at_once() {
    let (_dir, scenarios) = scenario_dir();
    let f = write(
        &scenarios,
        "typos.toml",
        "name = \"x\"\ncolour = \"blue\"\nseed = \"one\"\n[impair]\ndleay = \"10ms\"\n\
         [[workload]]\nkind = \"udp\"\nname = \"q\"\ncount = \"many\"\nintervall = \"10ms\"\n",
    );
    let (code, err) = check(&f);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("has 5 errors"), "{err}");
    for needle in [
        "typos.toml:2:1",
        "colour",
        "typos.toml:3:8",
        "`seed`",
        "typos.toml:5:1",
        "dleay",
        "did you mean `delay`?",
        "typos.toml:9:9",
        "`count`",
        "typos.toml:10:1",
        "did you mean `interval`?",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn unquoted_durations_and_sizes_are_explained_with_the_fixed_line() {
    let (_dir, scenarios) = scenario_dir();
    let f = write(
        &scenarios,
        "bare.toml",
        "[[workload]]\nkind = \"udp\"\nname = \"q\"\ninterval = 100ms\nsize = 64B\n",
    );
    let (code, err) = check(&f);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("has 2 errors"), "{err}");
    assert!(err.contains("durations and sizes are strings"), "{err}");
    assert!(err.contains("interval = \"100ms\""), "{err}");
    assert!(err.contains("size = \"64B\""), "{err}");
    assert!(err.contains("bare.toml:4:"), "{err}");
}

#[test]
fn huge_or_binary_files_are_refused() {
    let (code, err) = check(Path::new("/dev/zero"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("1 MiB"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bin.toml");
    std::fs::write(&f, b"name = \"\xff\xfe\"\n").unwrap();
    let (code, err) = check(&f);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("UTF-8"), "{err}");
}

#[test]
fn check_refuses_what_a_run_would() {
    let dir = tempfile::tempdir().unwrap();
    let long = write(
        dir.path(),
        "long.toml",
        &format!(
            "name = \"{}\"\n[[workload]]\nkind = \"http\"\nname = \"p\"\n",
            "n".repeat(300)
        ),
    );
    let (code, err) = check(&long);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("`name`"), "{err}");

    let many = write(
        dir.path(),
        "many.toml",
        "[[workload]]\nkind = \"http\"\nname = \"p\"\nconcurrency = 100000\n",
    );
    let (code, err) = check(&many);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("`workload.p.concurrency`"), "{err}");
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");

    let slow = write(
        dir.path(),
        "slow.toml",
        "[impair]\ndelay = \"25h\"\njitter = \"30h\"\n[[workload]]\nkind = \"http\"\nname = \"p\"\n",
    );
    let (code, err) = check(&slow);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("`impair.delay`") && err.contains("`impair.jitter`"),
        "{err}"
    );
    assert!(err.contains("24h"), "{err}");
}

#[test]
fn probe_flags_past_the_open_file_limit_are_input_errors() {
    for args in [
        &["probe", "udp", "127.0.0.1:9", "--flows", "100000"][..],
        &[
            "probe",
            "http",
            "http://127.0.0.1:9/",
            "--concurrency",
            "100000",
        ][..],
    ] {
        let out = netrun().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("RLIMIT_NOFILE"), "{args:?}: {err}");
    }
}

#[test]
fn a_bad_out_is_invalid_input_found_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "ok.toml",
        &format!(
            "[topology]\nwww = \"{}/www\"\n[[workload]]\nkind = \"http\"\nname = \"p\"\nrequests = 1\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    );
    let file_out = write(dir.path(), "not-a-folder", "x");
    for out in [file_out.clone(), file_out.join("below")] {
        let o = netrun()
            .arg("run")
            .arg(&f)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}: {err}", out.display());
        assert!(err.contains("--out"), "{err}");
        assert!(
            o.stdout.is_empty(),
            "something ran: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

#[test]
fn pipelining_mistakes_name_the_file_line_and_key() {
    let (_dir, scenarios) = scenario_dir();
    for (text, line, hint) in [
        ("pipeline = 0", 5, "at least 1"),
        (
            "pipeline = 4\nhttp_version = \"2\"",
            5,
            "clear-text HTTP/1.1",
        ),
        ("keep_alive = false\npipeline = 4", 6, "kept-alive"),
    ] {
        let f = write(
            &scenarios,
            "pipe.toml",
            &format!("[[workload]]\nkind = \"http\"\nname = \"p\"\nconcurrency = 2\n{text}\n"),
        );
        let (code, err) = check(&f);
        assert_eq!(code, Some(2), "{text}: {err}");
        assert!(err.contains(&format!("pipe.toml:{line}")), "{text}: {err}");
        assert!(
            err.contains("`workload.p.pipeline`") && err.contains(hint),
            "{text}: {err}"
        );
    }
    // A valid one: `check` prints the resolved workload.
    let ok = write(
        &scenarios,
        "pipe.toml",
        "[[workload]]\nkind = \"http\"\nname = \"p\"\nconcurrency = 2\npipeline = 8\n",
    );
    let out = netrun().arg("check").arg(&ok).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("HTTP/1.1 pipelining 8 requests per connection"),
        "{text}"
    );
    let out = netrun()
        .args([
            "probe",
            "http",
            "https://127.0.0.1:9/",
            "--pipeline",
            "4",
            "--insecure",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("pipeline") && err.contains("clear-text"),
        "{err}"
    );
}
