//! `netrun merge --baseline/--junit/--json`: a distributed run gates CI as
//! a local one does. Three `--segment` agents on loopback, merged twice: the
//! second merge against the first as its baseline passes, with the verdicts
//! in run.json, JUnit and JSON; against a baseline that cannot vouch for
//! the latencies (no samples, far faster rows) the gate fails with exit 1;
//! a baseline that is not there is refused before anything is written.

#[path = "common/serve.rs"]
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};

use assert_cmd::Command;
use predicates::str::contains;
use serve::Origin;

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("netrun")
}

/// Every workload of an agents' scenario aims at the origin, which the gate
/// would take as host controls (not gated): `[gate] control = []` gates them.
fn scenario(dir: &Path, origin: &Origin) -> PathBuf {
    let p = dir.join("gated.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"gated\"\n[topology]\n\
             origin = {{ address = \"{}\", udp_address = \"{}\" }}\n\
             [[workload]]\nkind = \"http\"\nname = \"h\"\ntarget = \"origin\"\n\
             requests = 90\nconcurrency = 3\npaths = [\"/index.html\"]\n\
             [expect]\n\"h.errors\" = \"== 0\"\n\
             [gate]\ncontrol = []\n",
            origin.http, origin.udp
        ),
    )
    .unwrap();
    p
}

/// Three agents at once into `dir/agent-K`; their folders.
fn agents(file: &Path, dir: &Path) -> Vec<PathBuf> {
    let outs: Vec<PathBuf> = (1..=3).map(|k| dir.join(format!("agent-{k}"))).collect();
    let children: Vec<Child> = (1..=3)
        .map(|k| {
            StdCommand::new(bin())
                .arg("run")
                .arg(file)
                .args(["--quiet", "--segment", &format!("{k}/3"), "--out"])
                .arg(&outs[k - 1])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("agent starts")
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().expect("agent ends");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    outs
}

#[test]
fn a_merged_run_gates_against_a_baseline_with_junit_and_json() {
    let origin = Origin::spawn(StdCommand::new(bin()), "127.0.0.1".parse().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path(), &origin);

    let first = agents(&file, &tmp.path().join("first"));
    let baseline = tmp.path().join("baseline");
    netrun()
        .arg("merge")
        .args(&first)
        .arg("--out")
        .arg(&baseline)
        .assert()
        .success();

    // The same load again, gated on the whole against the first merge.
    let second = agents(&file, &tmp.path().join("second"));
    let merged = tmp.path().join("merged");
    let junit = tmp.path().join("junit.xml");
    let out = netrun()
        .arg("merge")
        .args(&second)
        .arg("--out")
        .arg(&merged)
        .arg("--baseline")
        .arg(&baseline)
        // The loopback's own noise between two runs is not what this tests.
        .args(["--tolerance", "1000", "--json", "--junit"])
        .arg(&junit)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json is JSON");
    let run = &doc["runs"][0];
    assert_eq!(run["scenario"], "gated");
    assert!(
        run["run_id"].as_str().unwrap().starts_with("merged-"),
        "{run}"
    );
    assert_eq!(run["expectations"][0]["passed"], true, "{run}");
    let assessed = run["baseline"]["assessments"]
        .as_array()
        .expect("gate verdicts");
    assert!(
        assessed.iter().any(|a| a["metric"] == "latency_p50_ms"),
        "{assessed:?}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("gated/run.json")).unwrap())
            .unwrap();
    assert!(
        info["baseline"]["findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "the merged run record holds the gate's findings: {info}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("h.errors") || xml.contains("errors == 0"),
        "{xml}"
    );
    assert!(xml.contains("latency_p50_ms"), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");

    // A baseline of far faster rows and no samples to vouch for them: the
    // latencies cannot be judged, so the gate fails (exit 1), as it would
    // for a local run.
    let fast = tmp.path().join("fast");
    std::fs::create_dir(&fast).unwrap();
    let text = std::fs::read_to_string(baseline.join("gated.csv")).unwrap();
    std::fs::write(fast.join("gated.csv"), text).unwrap();
    netrun()
        .arg("merge")
        .args(&second)
        .arg("--out")
        .arg(tmp.path().join("merged-again"))
        .arg("--baseline")
        .arg(&fast)
        .arg("--junit")
        .arg(&junit)
        .assert()
        .code(1)
        .stdout(contains("could not be judged"));
    assert!(std::fs::read_to_string(&junit)
        .unwrap()
        .contains("<failure"));

    // No such baseline: refused before --out is made.
    let nowhere = tmp.path().join("not-merged");
    netrun()
        .arg("merge")
        .args(&second)
        .arg("--out")
        .arg(&nowhere)
        .arg("--baseline")
        .arg(tmp.path().join("no-baseline"))
        .assert()
        .code(2)
        .stderr(contains("--baseline"));
    assert!(!nowhere.exists(), "nothing written");
    drop(origin);
}
