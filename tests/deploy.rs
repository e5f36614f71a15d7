//! The shipped deployment files parse and fit together: the Kubernetes
//! Indexed Job's fields, each agent's command line (run by a real shell
//! with its JOB_COMPLETION_INDEX) giving `--segment index+1/N` and its own
//! folder, the merge Job reading exactly those folders, the ConfigMap's
//! scenario splitting into N segments; and the GitHub Actions shard matrix.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use netrun::cli::{Cli, Command as NetrunCommand};
use netrun::shard::Part;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every document of every YAML file in `dir`.
fn documents(dir: &Path) -> Vec<Yaml> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            let text = std::fs::read_to_string(&p).unwrap();
            let docs = YamlLoader::load_from_str(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", p.display()));
            out.extend(docs);
        }
    }
    out
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn env_value(container: &Yaml, name: &str) -> String {
    container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("no env {name}"))
        .to_string()
}

/// The arguments `netrun` gets when the container's `sh -c` script runs
/// with `env`: a shell function stands in for the binary and prints them.
fn netrun_args(container: &Yaml, env: &[(&str, String)]) -> Vec<String> {
    let command: Vec<&str> = container["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(command, ["/bin/sh", "-c"]);
    let script = container["args"][0].as_str().unwrap();
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("netrun() {{ printf '%s\\n' \"$@\"; }}\n{script}"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn parse(args: &[String]) -> Cli {
    Cli::try_parse_from(std::iter::once("netrun".to_string()).chain(args.iter().cloned()))
        .unwrap_or_else(|e| panic!("`netrun {}` does not parse: {e}", args.join(" ")))
}

#[test]
fn the_indexed_job_gives_each_agent_its_segment_and_folder() {
    let dir = root().join("deploy/kubernetes");
    let docs = documents(&dir);
    let job = of_kind(&docs, "Job", "netrun-agents");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let n = spec["completions"].as_i64().expect("completions");
    assert_eq!(spec["parallelism"].as_i64(), Some(n), "all agents at once");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"].as_str(), Some("Never"));
    let agent = &pod["containers"][0];
    assert_eq!(
        env_value(agent, "SEGMENTS"),
        n.to_string(),
        "N in one place"
    );

    // The volumes are the ConfigMap and the claim that the other files define.
    let volumes = pod["volumes"].as_vec().unwrap();
    let config = volumes
        .iter()
        .find_map(|v| v["configMap"]["name"].as_str())
        .unwrap();
    let claim = volumes
        .iter()
        .find_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .unwrap();
    let scenario_map = of_kind(&docs, "ConfigMap", config);
    of_kind(&docs, "PersistentVolumeClaim", claim);

    let mut outs = Vec::new();
    for index in 0..n {
        let start = "2026-12-02T10:00:00Z";
        let env = [
            ("JOB_COMPLETION_INDEX", index.to_string()),
            ("SEGMENTS", n.to_string()),
            ("START_AT", start.to_string()),
        ];
        let args = netrun_args(agent, &env);
        let Some(NetrunCommand::Run(run)) = parse(&args).command else {
            panic!("agent {index} does not run: {args:?}");
        };
        let k = u32::try_from(index + 1).unwrap();
        let n = u32::try_from(n).unwrap();
        assert_eq!(run.segment, Some(Part { k, n }), "agent {index}: {args:?}");
        assert_eq!(run.scenarios, [PathBuf::from("/scenario/load.toml")]);
        assert!(run.out.starts_with("/results"), "on the shared volume");
        assert_eq!(
            run.start_at.map(|s| s.to_string()),
            Some("2026-12-02T10:00:00.000Z".to_string()),
            "every agent starts at the one START_AT"
        );
        assert_eq!(env_value(agent, "START_AT"), "", "set when applied");
        let unset = netrun_args(agent, &env[..2]);
        let Some(NetrunCommand::Run(alone)) = parse(&unset).command else {
            panic!("agent {index} without START_AT does not run: {unset:?}");
        };
        assert_eq!(alone.start_at, None, "no START_AT, no barrier");
        outs.push(run.out);
    }
    let distinct: std::collections::BTreeSet<_> = outs.iter().collect();
    assert_eq!(distinct.len(), outs.len(), "a folder per agent: {outs:?}");

    // The merge Job joins exactly the agents' folders.
    let merge = of_kind(&docs, "Job", "netrun-merge");
    let container = &merge["spec"]["template"]["spec"]["containers"][0];
    let args = netrun_args(container, &[("SEGMENTS", env_value(container, "SEGMENTS"))]);
    let Some(NetrunCommand::Merge(m)) = parse(&args).command else {
        panic!("the merge Job does not merge: {args:?}");
    };
    assert_eq!(m.inputs, outs);
    assert!(!outs.contains(&m.out));

    // The scenario splits into N segments (no count below N), against a
    // service it names by address (here resolved on loopback).
    let text = scenario_map["data"]["load.toml"].as_str().unwrap();
    let local = text.replace("netrun-origin:", "127.0.0.1:");
    let scenario = netrun::scenario::parse(&dir.join("load.toml"), &local)
        .unwrap_or_else(|e| panic!("load.toml: {e}"));
    for k in 1..=u32::try_from(n).unwrap() {
        let part = Part {
            k,
            n: u32::try_from(n).unwrap(),
        };
        netrun::scenario::segment::segment(&scenario, part)
            .unwrap_or_else(|e| panic!("segment {part}: {e}"));
    }
    let dockerfile = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    assert_eq!(dockerfile.matches("\nFROM ").count(), 2, "multi-stage");
}

#[test]
fn the_github_actions_matrix_runs_each_shard_and_merges_them_all() {
    let path = root().join("examples/github-actions-shards.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = &YamlLoader::load_from_str(&text).unwrap()[0];
    let shard = &doc["jobs"]["shard"];
    let matrix: Vec<i64> = shard["strategy"]["matrix"]["shard"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(matrix, [1, 2, 3]);
    let steps = shard["steps"].as_vec().unwrap();
    let run = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("--shard"))
        .unwrap();
    assert!(run.contains("--shard ${{ matrix.shard }}/3"), "{run}");
    assert!(steps.iter().any(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/upload-artifact"))
            && s["with"]["name"]
                .as_str()
                .is_some_and(|n| n.contains("${{ matrix.shard }}"))
    }));
    let merge = &doc["jobs"]["merge"];
    assert_eq!(merge["needs"].as_str(), Some("shard"));
    let cmd = merge["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("netrun merge"))
        .unwrap();
    for k in matrix {
        assert!(cmd.contains(&format!("shards/netrun-shard-{k}")), "{cmd}");
    }
}
