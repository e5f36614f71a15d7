//! `netrun run --shard K/N` and `netrun merge`: three shards of a matrix
//! scenario with repetitions, merged, look like the unsharded run (same
//! files, columns, rows in the same order, deterministic counts); folders
//! that cannot be one run are refused with exit 2.

#[path = "common/csv.rs"]
mod common_csv;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common_csv::{read_csv_with_header, Row};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

/// A matrix of 2 variants × 3 repetitions: 6 units, shared 2/2/2.
fn scenario(dir: &Path, extra: &str) -> PathBuf {
    let p = dir.join("sh.toml");
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    std::fs::write(
        &p,
        format!(
            "name = \"sh\"\nrepeat = 3\n[topology]\nwww = \"{}\"\n\
             [[workload]]\nkind = \"http\"\nname = \"h\"\nrequests = 12\nconcurrency = 2\n\
             paths = [\"/index.html\", \"/style.css\"]\n\
             [[workload]]\nkind = \"udp\"\nname = \"u\"\ncount = 8\ninterval = \"1ms\"\n\
             [matrix]\n\"cache.enabled\" = [true, false]\n\
             [expect]\n\"h.errors\" = \"== 0\"\n{extra}",
            www.display()
        ),
    )
    .unwrap();
    p
}

fn run(file: &Path, out: &Path, shard: Option<&str>) {
    let mut cmd = netrun();
    cmd.arg("run")
        .arg(file)
        .arg("--out")
        .arg(out)
        .arg("--quiet");
    if let Some(s) = shard {
        cmd.arg("--shard").arg(s);
    }
    cmd.assert().success();
}

/// Every file under a results folder, relative to it.
fn files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            for f in files(&e.path()) {
                out.insert(format!("{name}/{f}"));
            }
        } else {
            out.insert(name);
        }
    }
    out
}

fn keys(rows: &[Row], cols: &[&str]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| cols.iter().map(|c| r[*c].clone()).collect())
        .collect()
}

/// The (variant, workload, repetition) runs of a sample file in order, each once.
fn runs_in_order(rows: &[Row]) -> Vec<Vec<String>> {
    let mut k = keys(rows, &["variant", "workload", "repetition"]);
    k.dedup();
    k
}

#[test]
fn three_shards_merged_look_like_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path(), "");
    let whole = tmp.path().join("whole");
    run(&file, &whole, None);
    let shards: Vec<PathBuf> = (1..=3)
        .map(|k| {
            let out = tmp.path().join(format!("shard{k}"));
            run(&file, &out, Some(&format!("{k}/3")));
            out
        })
        .collect();
    // Each shard is a normal results folder with its share of the units.
    for s in &shards {
        let (_, rows) = read_csv_with_header(&s.join("sh.csv"));
        assert_eq!(rows.len(), 4, "2 runs × 2 workloads in {}", s.display());
    }
    let merged = tmp.path().join("merged");
    netrun()
        .arg("merge")
        .args(&shards)
        .arg("--out")
        .arg(&merged)
        .assert()
        .success()
        .stdout(contains("3 shards merged, 12 rows"))
        .stdout(contains("report: "));

    assert_eq!(files(&merged), files(&whole), "the same files");
    let (wh, wrows) = read_csv_with_header(&whole.join("sh.csv"));
    let (mh, mrows) = read_csv_with_header(&merged.join("sh.csv"));
    assert_eq!(mh, wh, "the same summary columns");
    let label = [
        "scenario",
        "variant",
        "workload",
        "kind",
        "target",
        "cache",
        "repetition",
        "sent",
        "requests",
        "interrupted",
    ];
    assert_eq!(
        keys(&mrows, &label),
        keys(&wrows, &label),
        "rows in run order"
    );

    let (sh, srows) = read_csv_with_header(&whole.join("sh.stats.csv"));
    let (msh, msrows) = read_csv_with_header(&merged.join("sh.stats.csv"));
    assert_eq!(msh, sh);
    let stat = ["variant", "workload", "metric", "n"];
    let det = |rows: &[Row]| -> Vec<Vec<String>> {
        keys(rows, &stat)
            .into_iter()
            .filter(|k| ["sent", "requests", "errors"].contains(&k[2].as_str()))
            .collect()
    };
    assert_eq!(det(&msrows), det(&srows), "stats over all 3 repetitions");
    assert!(
        det(&msrows).iter().all(|k| k[3] == "3"),
        "{:?}",
        det(&msrows)
    );

    for sample in [
        "sh/http_requests.csv",
        "sh/udp_packets.csv",
        "sh/histograms.csv",
    ] {
        let (h1, r1) = read_csv_with_header(&whole.join(sample));
        let (h2, r2) = read_csv_with_header(&merged.join(sample));
        assert_eq!(h2, h1, "{sample} columns");
        assert_eq!(r2.len(), r1.len(), "{sample} rows");
        assert_eq!(runs_in_order(&r2), runs_in_order(&r1), "{sample} order");
    }
    let (_, hist) = read_csv_with_header(&merged.join("sh/histograms.csv"));
    let http_hist: Vec<&str> = hist
        .iter()
        .filter(|r| r["workload"] == "h")
        .map(|r| r["count"].as_str())
        .collect();
    assert_eq!(
        http_hist, ["12"; 6],
        "one histogram per HTTP row, every response"
    );

    let (_, history) = read_csv_with_header(&merged.join("history.csv"));
    assert_eq!(history.len(), 12);
    assert!(history.iter().all(|r| r["run_id"].starts_with("merged-")));

    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("sh/run.json")).unwrap())
            .unwrap();
    let positions: Vec<u64> = info["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [0, 1, 2, 3, 4, 5]);
    assert_eq!(info["merged_from"].as_array().unwrap().len(), 3);
    assert_eq!(info["shard"], serde_json::Value::Null);
    assert_eq!(
        info["expectations"].as_array().unwrap().len(),
        6,
        "each run's check"
    );
    let report = std::fs::read_to_string(merged.join("sh/report.html")).unwrap();
    assert!(
        report.contains("cache.enabled=false"),
        "both variants drawn"
    );

    refusals(tmp.path(), &file, &whole, &shards);
}

/// Folders that are not the parts of one run: exit 2, saying why.
fn refusals(tmp: &Path, file: &Path, whole: &Path, shards: &[PathBuf]) {
    let merge = |inputs: &[&Path], out: &Path| {
        let mut cmd = netrun();
        cmd.arg("merge").args(inputs).arg("--out").arg(out);
        cmd.assert().code(2)
    };
    let out = tmp.join("refused");
    let [s1, s2, s3] = [&shards[0], &shards[1], &shards[2]].map(PathBuf::as_path);
    merge(&[s1, s2, s1], &out).stderr(contains("given twice"));
    merge(&[s1, s2, s3], s2).stderr(contains("--out").and(contains("is one of the inputs")));
    merge(&[s1, s2, s3, whole], &out).stderr(contains("overlap"));
    merge(&[s1, s3], &out).stderr(contains("missing: shard 2/3"));
    merge(&[&tmp.join("nope"), s2], &out).stderr(contains("is not a results folder"));

    // The same shard of an edited scenario file is another version.
    scenario(tmp, "# edited\n");
    let edited = tmp.join("edited3");
    run(file, &edited, Some("3/3"));
    merge(&[s1, s2, &edited], &out).stderr(contains("different versions"));
    assert!(!out.exists(), "refused before --out is made");
}

#[test]
fn bad_shard_values_name_the_flag_and_the_form() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path(), "");
    for bad in ["0/3", "4/3", "x", "1/0"] {
        netrun()
            .arg("run")
            .arg(&file)
            .arg("--shard")
            .arg(bad)
            .arg("--out")
            .arg(tmp.path().join("out"))
            .assert()
            .code(2)
            .stderr(contains("--shard").and(contains("K/N")));
    }
    netrun()
        .arg("run")
        .arg(&file)
        .args(["--shard", "1/2", "--segment", "1/2"])
        .assert()
        .code(2)
        .stderr(contains("--segment"));
}

#[test]
fn a_shard_with_no_units_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("one.toml");
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    let text = format!(
        "[topology]\nwww = \"{}\"\n[[workload]]\nkind = \"udp\"\nname = \"u\"\ncount = 1\n",
        www.display()
    );
    std::fs::write(&file, text).unwrap();
    let out = tmp.path().join("out");
    netrun()
        .arg("run")
        .arg(&file)
        .args(["--shard", "2/2", "--quiet", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(contains("shard 2/2: no units to run"));
    assert!(!out.join("one.csv").exists());
}
