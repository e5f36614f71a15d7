//! Repetitions, stats files, baseline verdicts and JUnit through the real
//! binary. Only timing-free outcomes are asserted (counts, hit ratios,
//! orders, file contents), so these pass on a loaded machine.

#[path = "common/csv.rs"]
mod common_csv;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common_csv::read_csv;

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

/// Writes `<dir>/<name>.toml`: top-level keys `head`, then the topology, then `body`.
fn scenario(dir: &Path, name: &str, head: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    let text = format!(
        "name = \"{name}\"\n{head}\n[topology]\nwww = \"{}\"\n{body}",
        www.display()
    );
    std::fs::write(&p, text).expect("write scenario");
    p
}

const UDP: &str = "[[workload]]\nkind = \"udp\"\nname = \"q\"\ncount = 5\ninterval = \"1ms\"\n";

#[test]
fn repetitions_are_interleaved_and_summarised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(
        dir.path(),
        "reps",
        "repeat = 2",
        &format!("{UDP}[matrix]\n\"cache.enabled\" = [true, false]\n"),
    );
    // --repeat overrides the file's 2.
    netrun()
        .arg(&file)
        .args(["--repeat", "4", "--quiet", "--out"])
        .arg(dir.path())
        .assert()
        .code(0);
    let rows = read_csv(&dir.path().join("reps.csv"));
    let order: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r["variant"].clone(), r["repetition"].clone()))
        .collect();
    let expected: Vec<(String, String)> = (1..=4)
        .flat_map(|i| {
            ["cache.enabled=true", "cache.enabled=false"].map(|v| (v.to_string(), i.to_string()))
        })
        .collect();
    assert_eq!(order, expected, "A B A B, repetitions from 1");

    let stats = read_csv(&dir.path().join("reps.stats.csv"));
    let p50 = stats
        .iter()
        .find(|r| r["variant"] == "cache.enabled=false" && r["metric"] == "latency_p50_ms")
        .expect("a latency row");
    assert_eq!(p50["n"], "4");
    assert_eq!(p50["ci_method"], "t95-mean");
    let (lo, hi, mean): (f64, f64, f64) = (
        p50["ci_low"].parse().unwrap(),
        p50["ci_high"].parse().unwrap(),
        p50["mean"].parse().unwrap(),
    );
    assert!(lo <= mean && mean <= hi, "{p50:?}");
    assert!(
        !stats.iter().any(|r| r["metric"] == "repetition"),
        "labels are not statistics"
    );

    let history = read_csv(&dir.path().join("history.csv"));
    assert_eq!(history.len(), 8);
    assert_eq!(history[7]["repetition"], "4");

    // compare shows medians over the repetitions and refuses the stats file.
    let out = netrun()
        .arg("compare")
        .arg(dir.path().join("reps.csv"))
        .output()
        .expect("compare");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("medians of up to 4 repetitions"), "{text}");
    netrun()
        .arg("compare")
        .arg(dir.path().join("reps.stats.csv"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("give the summary instead"))
        .stderr(predicates::str::contains("reps.csv"));
    netrun()
        .arg("compare")
        .arg(dir.path().join("reps").join("udp_packets.csv"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("per-datagram"));
}

#[test]
fn gate_fails_only_on_worse_and_writes_junit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = |enabled: bool| {
        format!(
            "[cache]\nenabled = {enabled}\n[[workload]]\nkind = \"http\"\nname = \"page\"\nrequests = 20\n\
             [expect]\n\"page.errors\" = \"== 0\"\n\
             [gate]\nmetrics = [\"cache_hit_ratio\", \"page.errors\"]\n"
        )
    };
    let file = scenario(dir.path(), "g", "repeat = 4", &body(true));
    let base = dir.path().join("base");
    netrun()
        .arg(&file)
        .args(["--quiet", "--out"])
        .arg(&base)
        .assert()
        .code(0);

    // The same build against its own baseline: not one `worse`. (Only
    // counts are gated here, so a loaded test machine cannot fail it.)
    let junit = dir.path().join("same.xml");
    netrun()
        .arg(&file)
        .args(["--quiet", "--out"])
        .arg(dir.path().join("again"))
        .arg("--baseline")
        .arg(&base)
        .arg("--junit")
        .arg(&junit)
        .assert()
        .code(0);
    let xml = std::fs::read_to_string(&junit).expect("junit");
    let doc = roxmltree::Document::parse(&xml).expect("well-formed");
    assert!(
        !doc.descendants().any(|n| n.has_tag_name("failure")),
        "{xml}"
    );

    // The cache off: every repetition's hit ratio falls from 0.95 to 0.
    scenario(dir.path(), "g", "repeat = 4", &body(false));
    let junit = dir.path().join("off.xml");
    let out = netrun()
        .arg(&file)
        .args(["--quiet", "--out"])
        .arg(dir.path().join("new"))
        .arg("--baseline")
        .arg(&base)
        .arg("--junit")
        .arg(&junit)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("REGRESSION page.cache_hit_ratio"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("0.950 → 0.000") && line.contains("-100.0% ["),
        "{line}"
    );
    assert!(
        line.contains("worse") && line.contains("tolerance"),
        "{line}"
    );

    let xml = std::fs::read_to_string(&junit).expect("junit");
    let doc = roxmltree::Document::parse(&xml).expect("well-formed");
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("cache_hit_ratio"))
        .expect("a testcase per gated metric");
    assert_eq!(case.attribute("classname"), Some("g.default.page"));
    let failure = case
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("failed");
    assert!(failure.attribute("message").unwrap().contains("REGRESSION"));
    let gated: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    let expected: Vec<String> = (1..=4)
        .map(|i| format!("errors == 0 (repetition {i})"))
        .chain(["errors".to_string(), "cache_hit_ratio".to_string()])
        .collect();
    assert_eq!(
        gated, expected,
        "one case per row checked; [gate] narrows the metrics"
    );
    let expectation = doc
        .descendants()
        .find(|n| {
            n.has_tag_name("testcase") && n.attribute("name") == Some("errors == 0 (repetition 1)")
        })
        .expect("a testcase per expectation");
    assert!(!expectation.children().any(|n| n.is_element()), "passed");
}

#[test]
fn a_baseline_is_never_its_own_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(dir.path(), "own", "", UDP);
    let out = dir.path().join("results");
    netrun()
        .arg(&file)
        .args(["--quiet", "--out"])
        .arg(&out)
        .assert()
        .code(0);
    for baseline in [out.clone(), out.join("own.csv")] {
        netrun()
            .arg(&file)
            .args(["--quiet", "--out"])
            .arg(&out)
            .arg("--baseline")
            .arg(&baseline)
            .assert()
            .code(2)
            .stderr(predicates::str::contains("overwrite its own baseline"));
    }
}

fn run_into(file: &Path, out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    netrun()
        .arg(file)
        .args(["--quiet", "--out"])
        .arg(out)
        .args(extra)
        .assert()
}

/// A one-repetition baseline against four runs: repetitions cannot decide,
/// so the hit ratio is judged from the summed counts and the cache turned
/// off fails the gate (it passed as `inconclusive` with exit 0 before).
#[test]
fn a_one_run_baseline_catches_a_cache_turned_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = |enabled: bool| {
        format!(
            "[cache]\nenabled = {enabled}\n[[workload]]\nkind = \"http\"\nname = \"page\"\n\
             requests = 60\npaths = [\"/index.html\"]\n[gate]\nmetrics = [\"cache_hit_ratio\"]\n"
        )
    };
    let file = scenario(dir.path(), "c", "", &body(true));
    let base = dir.path().join("base");
    run_into(&file, &base, &["--repeat", "1"]).code(0);
    let file = scenario(dir.path(), "c", "", &body(false));
    let out = netrun()
        .arg(&file)
        .args(["--repeat", "4", "--out"])
        .arg(dir.path().join("now2"))
        .arg("--baseline")
        .arg(&base)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("REGRESSION page.cache_hit_ratio"), "{text}");
}

/// A gated figure that cannot be judged (one value each of an aggregate)
/// is said on its own line and counted, and fails the gate unless
/// `--allow-inconclusive`; JUnit records it as a failure, not skipped.
#[test]
fn figures_that_cannot_be_judged_fail_unless_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(
        dir.path(),
        "j",
        "",
        &format!("{UDP}[gate]\nmetrics = [\"jitter_ms\", \"loss_percent\"]\n"),
    );
    let base = dir.path().join("base");
    run_into(&file, &base, &[]).code(0);
    let junit = dir.path().join("j.xml");
    let out = netrun()
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("now"))
        .arg("--baseline")
        .arg(&base)
        .arg("--junit")
        .arg(&junit)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("1 of 2 gated figures could not be judged"),
        "{text}"
    );
    assert!(
        text.contains("NOT JUDGED q.jitter_ms: one run each"),
        "{text}"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(xml.contains("NOT JUDGED"), "{xml}");
    assert!(!xml.contains("<skipped"), "{xml}");
    run_into(
        &file,
        &dir.path().join("now2"),
        &["--allow-inconclusive", "--baseline", base.to_str().unwrap()],
    )
    .code(0);
}

/// A baseline of a renamed scenario, or one lacking a renamed gated
/// workload, is refused before the run (exit 2, naming what has no row).
#[test]
fn a_baseline_that_matches_nothing_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = scenario(dir.path(), "old", "", UDP);
    let base = dir.path().join("base");
    run_into(&file, &base, &[]).code(0);
    let baseline = base.join("old.csv");
    let renamed = scenario(dir.path(), "new", "", UDP);
    run_into(
        &renamed,
        &dir.path().join("n1"),
        &["--baseline", baseline.to_str().unwrap()],
    )
    .code(2)
    .stderr(predicates::str::contains("matches nothing"))
    .stderr(predicates::str::contains("`new.default.q`"));
    assert!(
        !dir.path().join("n1/new.csv").exists(),
        "refused before the run"
    );
    let web = scenario(dir.path(), "old", "", &UDP.replace("\"q\"", "\"web\""));
    run_into(
        &web,
        &dir.path().join("n2"),
        &["--baseline", baseline.to_str().unwrap()],
    )
    .code(2)
    .stderr(predicates::str::contains(
        "no baseline row for `old.default.web`",
    ));
}
