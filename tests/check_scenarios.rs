//! `netrun check`: the resolved plan of every shipped scenario, and the error
//! messages for a catalogue of broken scenarios, both as snapshots.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn broken_scenarios_name_file_line_and_key() {
    let dir = root().join("tests/fixtures/broken");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the catalogue lost files");
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let out = netrun()
            .current_dir(&dir)
            .args(["check", &format!("{name}.toml")])
            .output()
            .expect("run netrun");
        assert_eq!(out.status.code(), Some(2), "{name}: exit code");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!("error: {name}.toml has ")),
            "{name}: {stderr}"
        );
        insta::assert_snapshot!(format!("broken_{name}"), stderr);
    }
}

#[test]
fn every_error_of_a_file_is_reported_at_once() {
    let out = netrun()
        .current_dir(root().join("tests/fixtures/broken"))
        .args(["check", "many_errors.toml"])
        .output()
        .expect("run netrun");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "`mode`",
        "`seed`",
        "`topology.www`",
        "`impair.loss_percent`",
        "`workload.qos.size`",
        "`workload.qos.count`",
        "`workload.qos.paths`",
    ] {
        assert!(stderr.contains(key), "missing {key} in:\n{stderr}");
    }
}

fn check_output(path: &Path) -> String {
    let out = netrun()
        .current_dir(root())
        .arg("check")
        .arg(path)
        .output()
        .expect("run netrun");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let www = std::fs::canonicalize(root().join("www")).expect("www");
    let text = String::from_utf8_lossy(&out.stdout).replace(&www.display().to_string(), "<www>");
    per_core(&text)
}

/// `workers N (one per core, ...` with N as `<cores>`: how many serving
/// threads a default gives depends on the machine's cores.
fn per_core(text: &str) -> String {
    const MARK: &str = " (one per core";
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(MARK) {
        let head = &rest[..i];
        let digits = head.len() - head.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        out.push_str(&head[..head.len() - digits]);
        out.push_str("<cores>");
        out.push_str(MARK);
        rest = &rest[i + MARK.len()..];
    }
    out.push_str(rest);
    out
}

/// The scenarios netrun ships, by name: an explicit list, so a user's own
/// file in scenarios/ cannot break `cargo test`.
const SHIPPED: &[&str] = &[
    "basic",
    "cache",
    "cache_policies",
    "cdn",
    "ci",
    "impair",
    "load",
    "udp_qos",
];

#[test]
fn shipped_scenarios_check_clean() {
    for name in SHIPPED {
        let rel = PathBuf::from(format!("scenarios/{name}.toml"));
        assert!(root().join(&rel).is_file(), "{} is missing", rel.display());
        insta::assert_snapshot!(format!("check_{name}"), check_output(&rel));
    }
}

#[test]
fn check_lists_every_matrix_variant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let www = root().join("www");
    let file = dir.path().join("m.toml");
    std::fs::write(
        &file,
        format!(
            r#"
            [topology]
            www = "{}"
            [[workload]]
            kind = "http"
            name = "page"
            [matrix]
            "cache.enabled" = [true, false]
            "workload.page.concurrency" = [1, 4, 16]
            "#,
            www.display()
        ),
    )
    .expect("write");
    let out = netrun().arg("check").arg(&file).output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("6 variants"), "{text}");
    for v in [
        "variant cache.enabled=false,workload.page.concurrency=1",
        "variant cache.enabled=true,workload.page.concurrency=16",
    ] {
        assert!(text.contains(v), "missing {v} in {text}");
    }
    assert!(text.contains("cache    off"));
}

#[test]
fn missing_scenario_file_is_exit_2() {
    netrun()
        .args(["check", "does/not/exist.toml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "cannot read scenario does/not/exist.toml",
        ));
}

#[test]
fn no_scenario_is_exit_2_with_a_hint() {
    for args in [&[][..], &["run"][..]] {
        netrun()
            .args(args)
            .assert()
            .code(2)
            .stderr(predicates::str::contains("no scenario given"));
    }
}

#[test]
fn help_and_version_exit_0() {
    netrun()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicates::str::contains("probe"));
    netrun().arg("--version").assert().code(0);
    netrun().args(["check", "--help"]).assert().code(0);
}

#[test]
fn unknown_flag_is_exit_2() {
    netrun()
        .args(["run", "--frobnicate", "scenarios/basic.toml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--frobnicate"));
}
