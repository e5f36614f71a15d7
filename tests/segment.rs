//! `--segment K/N`: three agents (separate `netrun` processes, each in its
//! own network namespace joined to the origin's by a veth when root, else
//! on loopback) load one running origin with a third of the scenario's load each; `netrun merge` adds them
//! up: the scenario's request count, and percentiles from the added
//! histograms that match the merged per-request CSV.

#[path = "common/agents.rs"]
mod agents;
#[path = "common/csv.rs"]
mod common_csv;
#[path = "common/serve.rs"]
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};

use assert_cmd::Command;
use common_csv::{answered_rtts, assert_pooled_percentiles, num, read_csv};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use serve::Origin;

fn netrun() -> Command {
    Command::cargo_bin("netrun").expect("netrun binary")
}

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("netrun")
}

const REQUESTS: u64 = 150;
const DATAGRAMS: u64 = 30;

fn scenario(dir: &Path, origin: &Origin) -> PathBuf {
    let p = dir.join("seg.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"seg\"\n[topology]\n\
             origin = {{ address = \"{}\", udp_address = \"{}\" }}\n\
             [[workload]]\nkind = \"http\"\nname = \"h\"\ntarget = \"origin\"\n\
             requests = {REQUESTS}\nconcurrency = 3\npaths = [\"/index.html\", \"/style.css\"]\n\
             [[workload]]\nkind = \"udp\"\nname = \"u\"\ntarget = \"origin\"\n\
             count = {DATAGRAMS}\ninterval = \"1ms\"\n\
             [expect]\n\"h.requests\" = \"== {REQUESTS}\"\n",
            origin.http, origin.udp
        ),
    )
    .unwrap();
    p
}

#[test]
fn three_agents_add_up_to_the_scenario_with_exact_percentiles() {
    let agents = match agents::Agents::setup(3) {
        Ok(a) => {
            println!(
                "agents in their own network namespaces, origin at {}",
                a.origin_ip()
            );
            Some(a)
        }
        Err(why) => {
            println!("network namespace variant skipped ({why}): the agents run on loopback");
            None
        }
    };
    let ip = agents
        .as_ref()
        .map_or("127.0.0.1".parse().unwrap(), agents::Agents::origin_ip);
    let cmd = match &agents {
        Some(a) => a.in_origin(&bin()),
        None => StdCommand::new(bin()),
    };
    let origin = Origin::spawn(cmd, ip);
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path(), &origin);

    // The three agents at once, as an Indexed Job's pods would run.
    let outs: Vec<PathBuf> = (1..=3)
        .map(|k| tmp.path().join(format!("agent{k}")))
        .collect();
    let children: Vec<Child> = (1..=3)
        .map(|k| {
            let mut cmd = match &agents {
                Some(a) => a.in_agent(k, &bin()),
                None => StdCommand::new(bin()),
            };
            cmd.arg("run")
                .arg(&file)
                .arg("--segment")
                .arg(format!("{k}/3"))
                .arg("--quiet")
                .arg("--out")
                .arg(&outs[k - 1])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("agent starts")
        })
        .collect();
    for (k, c) in (1..).zip(children) {
        let out = c.wait_with_output().expect("agent ends");
        // `h.requests == 150` is left to the merge: an agent makes a third.
        assert!(
            out.status.success(),
            "agent {k}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("judged on the whole run"));
        let rows = read_csv(&outs[k - 1].join("seg.csv"));
        let h = rows.iter().find(|r| r["workload"] == "h").unwrap();
        assert_eq!(num(h, "requests"), 50.0, "agent {k} made its third");
    }

    let merged = tmp.path().join("merged");
    netrun()
        .arg("merge")
        .args(&outs)
        .arg("--out")
        .arg(&merged)
        .assert()
        .success()
        .stdout(contains("3 segments merged"))
        .stdout(contains("pass h.requests == 150"));

    let rows = read_csv(&merged.join("seg.csv"));
    let h = rows.iter().find(|r| r["workload"] == "h").unwrap();
    let u = rows.iter().find(|r| r["workload"] == "u").unwrap();
    assert_eq!(
        num(h, "requests"),
        REQUESTS as f64,
        "the scenario's request count"
    );
    assert_eq!(num(h, "sent"), REQUESTS as f64);
    assert_eq!(num(h, "received"), REQUESTS as f64);
    assert_eq!(num(u, "sent"), DATAGRAMS as f64);

    let requests = read_csv(&merged.join("seg/http_requests.csv"));
    assert_eq!(requests.len() as u64, REQUESTS);
    let clients: std::collections::BTreeSet<&str> =
        requests.iter().map(|r| r["client"].as_str()).collect();
    assert_eq!(
        clients.len(),
        3,
        "each agent's client kept apart: {clients:?}"
    );
    let lat: Vec<f64> = requests.iter().map(|r| num(r, "latency_ms")).collect();
    let (min, max) = lat
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    assert_eq!(num(h, "latency_min_ms"), min);
    assert_eq!(num(h, "latency_max_ms"), max);
    let rtt = answered_rtts(&read_csv(&merged.join("seg/udp_packets.csv")));
    assert_pooled_percentiles(h, lat, u, rtt);

    let hist = read_csv(&merged.join("seg/histograms.csv"));
    assert_eq!(hist[0]["count"], REQUESTS.to_string());

    // Two agents' folders are not the whole run.
    netrun()
        .arg("merge")
        .args(&outs[..2])
        .arg("--out")
        .arg(tmp.path().join("partial"))
        .assert()
        .code(2)
        .stderr(contains("segment 3/3 is missing"));
    // A copy of an agent's folder is the same segment twice.
    let copy = tmp.path().join("agent1-copy");
    let cp = StdCommand::new("cp")
        .arg("-r")
        .arg(&outs[0])
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(cp.success());
    netrun()
        .arg("merge")
        .args(&outs)
        .arg(&copy)
        .arg("--out")
        .arg(tmp.path().join("twice"))
        .assert()
        .code(2)
        .stderr(contains("segment 1/3 is given twice"));
    drop(origin);
    drop(agents);
}

#[test]
fn a_segment_needs_services_that_run_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("spawned.toml");
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    std::fs::write(
        &file,
        format!(
            "[topology]\nwww = \"{}\"\n[[workload]]\nkind = \"http\"\nname = \"h\"\n",
            www.display()
        ),
    )
    .unwrap();
    netrun()
        .arg("run")
        .arg(&file)
        .args(["--segment", "1/2", "--out"])
        .arg(tmp.path().join("out"))
        .assert()
        .code(2)
        .stderr(contains("--segment 1/2").and(contains("address")));
    netrun()
        .arg("run")
        .arg(&file)
        .args(["--segment", "3/2"])
        .assert()
        .code(2)
        .stderr(contains("--segment").and(contains("K/N")));
}
