//! `netrun merge` and the run record never give a silently wrong result:
//! each fault a red-team pass found (issue 21) is refused with exit 2
//! naming the file, or gives the right figure.

#[path = "common/csv.rs"]
mod common_csv;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
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
