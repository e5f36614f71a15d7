//! The README's examples, run: every scenario file in it checks clean, every
//! command line in it parses, and its sample outputs show the rows and
//! columns netrun prints today. So the README cannot drift from netrun.

use std::net::UdpSocket;
use std::path::PathBuf;

use assert_cmd::Command;
use clap::Parser;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

/// The fenced code blocks of the README: (info string, body).
fn blocks() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.trim().to_string(), String::new())),
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "README has an unclosed code block");
    out
}

/// The block whose first line starts with `first`.
fn block_starting(first: &str) -> String {
    blocks()
        .into_iter()
        .map(|(_, b)| b)
        .find(|b| b.starts_with(first))
        .unwrap_or_else(|| panic!("no README block starts with {first:?}"))
}

#[test]
fn every_scenario_example_checks_clean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let www = root().join("www");
    let tomls: Vec<String> = blocks()
        .into_iter()
        .filter(|(info, _)| info == "toml")
        .map(|(_, b)| b)
        .collect();
    assert!(!tomls.is_empty(), "the README shows a scenario file");
    for (i, body) in tomls.iter().enumerate() {
        // `www` is relative to the scenario file, which here lives elsewhere.
        let body = body.replace(
            "www = \"../www\"",
            &format!("www = {:?}", www.display().to_string()),
        );
        let file = dir.path().join(format!("example{i}.toml"));
        std::fs::write(&file, &body).expect("write");
        let out = netrun().arg("check").arg(&file).output().expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "README scenario #{i} does not check clean:\n{}\n{body}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_example_scenario_does_not_reuse_a_shipped_name() {
    let body = block_starting("name = ");
    let name = body
        .lines()
        .next()
        .and_then(|l| l.split('"').nth(1))
        .expect("a quoted name");
    assert!(
        !root().join(format!("scenarios/{name}.toml")).exists(),
        "copying the README's example would overwrite the results of scenarios/{name}.toml"
    );
}

/// Each `netrun ...` or `cargo run -- ...` line of the README, as arguments.
fn command_lines() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (_, body) in blocks() {
        for line in body.lines() {
            let line = line.trim_start_matches("$ ").trim();
            let rest = ["netrun ", "cargo run --release -- ", "cargo run -- "]
                .iter()
                .find_map(|p| line.strip_prefix(p));
            let Some(rest) = rest else { continue };
            let rest = rest.split(" #").next().unwrap_or(rest);
            // Usage synopses (`<SCENARIO>...`, `[run]`) and shell plumbing are not commands.
            if rest.contains(['<', '[', '|']) {
                continue;
            }
            let rest = rest.split(" >").next().unwrap_or(rest);
            out.push(rest.split_whitespace().map(String::from).collect());
        }
    }
    out
}

#[test]
fn every_command_line_parses() {
    let lines = command_lines();
    assert!(
        lines.len() >= 15,
        "found only {} command lines",
        lines.len()
    );
    for args in lines {
        let argv = std::iter::once("netrun".to_string()).chain(args.iter().cloned());
        if let Err(e) = netrun::cli::Cli::try_parse_from(argv) {
            panic!("README: `netrun {}` does not parse:\n{e}", args.join(" "));
        }
    }
}

/// The names of an indented `name value unit` listing.
fn listed_names(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

#[test]
fn the_probe_sample_lists_what_the_probe_prints() {
    let echo = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = echo.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut buf = [0u8; 65_536];
        while let Ok((n, peer)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..n], peer);
        }
    });
    let sample = block_starting("$ netrun probe udp");
    let out = netrun()
        .args(["probe", "udp", &addr.to_string()])
        .args([
            "--count",
            "200",
            "--interval",
            "100us",
            "--timeout",
            "300ms",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed_names(&sample), listed_names(&printed), "{printed}");
}

#[test]
fn the_quick_start_sample_shows_the_real_table_and_verdicts() {
    let sample = block_starting("$ cargo run --release -- scenarios/basic.toml");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = netrun()
        .current_dir(root())
        .args(["scenarios/basic.toml", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&out.stdout);
    let header = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("workload "))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    assert_eq!(header(&sample), header(&printed), "{printed}");
    // The same expectations, in the same order (the measured values differ).
    let verdicts = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("  pass ") || l.starts_with("  FAIL "))
            .map(|l| l.split(" (measured").next().unwrap_or(l).to_string())
            .collect()
    };
    assert_eq!(verdicts(&sample), verdicts(&printed), "{printed}");
    let rows = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| {
                ["page ", "page_again ", "qos ", "clients "]
                    .iter()
                    .any(|w| l.starts_with(w))
            })
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    };
    assert_eq!(rows(&sample), rows(&printed), "{printed}");
}

/// ARCHITECTURE.md names every top-level module of `src/`, as `name.rs` or `name/`.
#[test]
fn the_architecture_map_names_every_module() {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root().join("src")).expect("src/") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let shown = if path.is_dir() {
            format!("`{name}/`")
        } else if name.ends_with(".rs") {
            format!("`{name}`")
        } else {
            continue;
        };
        if !map.contains(&shown) {
            missing.push(shown);
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name {missing:?}"
    );
}
