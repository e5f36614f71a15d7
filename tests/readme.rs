//! The README's and the book's examples, run: every scenario file in them
//! checks clean, every command line in them parses, and their sample outputs
//! show the rows and columns netrun prints today. So neither the README nor
//! the book (`docs/src/`) can drift from netrun. The book's chapters and the
//! links between them are checked too.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use clap::Parser;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

/// The book's source folder.
fn book() -> PathBuf {
    root().join("docs").join("src")
}

/// README.md and every chapter of the book (`docs/src/*.md`), sorted.
fn documents() -> Vec<PathBuf> {
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(book())
        .expect("docs/src/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    chapters.sort();
    std::iter::once(root().join("README.md"))
        .chain(chapters)
        .collect()
}

/// The fenced code blocks of one Markdown file: (info string, body).
fn blocks_of(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).expect("a Markdown file");
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
    assert!(
        open.is_none(),
        "{} has an unclosed code block",
        path.display()
    );
    out
}

/// The fenced code blocks of the README and of every chapter of the book.
fn blocks() -> Vec<(String, String)> {
    documents().iter().flat_map(|p| blocks_of(p)).collect()
}

/// Every block (README's first, then the book's) whose first line starts with `first`.
fn blocks_starting(first: &str) -> Vec<String> {
    let found: Vec<String> = blocks()
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| b.starts_with(first))
        .collect();
    assert!(
        !found.is_empty(),
        "no README or book block starts with {first:?}"
    );
    found
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
    assert!(
        !tomls.is_empty(),
        "the README and the book show a scenario file"
    );
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
            "README/book scenario #{i} does not check clean:\n{}\n{body}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn no_example_scenario_reuses_a_shipped_name() {
    let names: Vec<String> = blocks()
        .into_iter()
        .filter(|(info, _)| info == "toml")
        .filter_map(|(_, b)| {
            b.lines()
                .find(|l| l.starts_with("name = "))
                .and_then(|l| l.split('"').nth(1))
                .map(String::from)
        })
        .collect();
    assert!(!names.is_empty(), "no example scenario has a name");
    for name in names {
        assert!(
            !root().join(format!("scenarios/{name}.toml")).exists(),
            "copying the example {name:?} would overwrite the results of scenarios/{name}.toml"
        );
    }
}

/// Each `netrun ...` or `cargo run -- ...` line of the README and the book, as arguments.
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
            panic!(
                "README/book: `netrun {}` does not parse:\n{e}",
                args.join(" ")
            );
        }
    }
}

/// The relative link targets (`](target)`) of a Markdown text, without anchors.
fn relative_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|t| t.split('#').next().unwrap_or(t).to_string())
        .filter(|t| !t.is_empty() && !t.contains("://") && !t.starts_with("mailto:"))
        .collect()
}

#[test]
fn every_chapter_is_in_the_summary_and_every_link_resolves() {
    let summary = std::fs::read_to_string(book().join("SUMMARY.md")).expect("docs/src/SUMMARY.md");
    let listed = relative_links(&summary);
    for doc in documents() {
        let name = doc
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        if doc.parent() == Some(book().as_path()) && name != "SUMMARY.md" {
            assert!(
                listed.contains(&name),
                "docs/src/{name} is not listed in docs/src/SUMMARY.md, so the book leaves it out"
            );
        }
        let text = std::fs::read_to_string(&doc).expect("a Markdown file");
        let dir = doc.parent().expect("a folder");
        for target in relative_links(&text) {
            assert!(
                dir.join(&target).exists(),
                "{} links to {target}, which does not exist",
                doc.display()
            );
        }
    }
}

/// The README is the front door: what netrun is, the quick start, one
/// comparison, one gate and links. The reference goes into the book.
#[test]
fn the_readme_stays_short() {
    let text = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let lines = text.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines; put reference text into a chapter of docs/src/ (listed in SUMMARY.md) and link to it"
    );
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
    let samples = blocks_starting("$ netrun probe udp");
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
    for sample in samples {
        assert_eq!(listed_names(&sample), listed_names(&printed), "{printed}");
    }
}

#[test]
fn the_quick_start_sample_shows_the_real_table_and_verdicts() {
    let samples = blocks_starting("$ cargo run --release -- scenarios/basic.toml");
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
    for sample in &samples {
        assert_eq!(header(sample), header(&printed), "{printed}");
    }
    // The same expectations, in the same order (the measured values differ).
    let verdicts = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("  pass ") || l.starts_with("  FAIL "))
            .map(|l| l.split(" (measured").next().unwrap_or(l).to_string())
            .collect()
    };
    for sample in &samples {
        assert_eq!(verdicts(sample), verdicts(&printed), "{printed}");
    }
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
    for sample in &samples {
        assert_eq!(rows(sample), rows(&printed), "{printed}");
    }
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

/// The book's command reference (`commands.md`) has a row for every
/// command `netrun --help` lists, subcommands included (`netrun trace zipf`).
#[test]
fn the_command_reference_has_a_row_per_command() {
    use clap::CommandFactory;
    let table = std::fs::read_to_string(book().join("commands.md")).expect("commands.md");
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| `netrun"))
        .collect();
    let cli = netrun::cli::Cli::command();
    let mut missing = Vec::new();
    for cmd in cli.get_subcommands().filter(|c| c.get_name() != "help") {
        let mut names: Vec<String> = cmd
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
            .map(|c| format!("netrun {} {}", cmd.get_name(), c.get_name()))
            .collect();
        if names.is_empty() {
            names.push(format!("netrun {}", cmd.get_name()));
        }
        for name in names {
            let shown = |r: &&str| {
                r.match_indices(&name).any(|(i, _)| {
                    // `netrun run` must not be found inside `netrun runner`.
                    !r[i + name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
                })
            };
            // `run` may be left out: its row reads `netrun [run]`.
            let run_row = name == "netrun run" && table.contains("netrun [run]");
            if !run_row && !rows.iter().any(shown) {
                missing.push(name);
            }
        }
    }
    assert!(missing.is_empty(), "commands.md has no row for {missing:?}");
}
