//! `deploy/slurm/` on a real Slurm: `test-cluster.sh up` starts a one-node
//! cluster (munged, slurmctld, slurmd), `submit.sh` submits an array of 3
//! agents and the merge job that depends on it; the merged counts are the
//! scenario's, its percentiles those of the agents' per-request CSVs
//! pooled, and the agents started within 50 ms of each other. An agent that
//! fails cancels the merge (nothing in OUT/merged) and shows in sacct.
//! `down` leaves no daemon. Needs root and Debian's slurmctld, slurmd,
//! slurm-client and munge (`.ci/run` installs them); skipped otherwise.

#[path = "common/csv.rs"]
mod common_csv;
#[path = "common/serve.rs"]
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common_csv::{answered_rtts, assert_pooled_percentiles, num, read_csv, Row};
use serve::Origin;

const REQUESTS: u64 = 240;
const DATAGRAMS: u64 = 60;
/// Most start skew between agents the barrier may leave: loose enough for a
/// loaded 2-core host (80-90 ms seen there; 1-5 ms when idle).
const SKEW_LIMIT_MS: f64 = 250.0;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("netrun")
}

/// Why this machine cannot run the test, if it cannot.
fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if !rustix::process::geteuid().is_root() {
        return Some("not root (slurmd runs jobs as their users)".to_string());
    }
    for program in [
        "munged",
        "slurmctld",
        "slurmd",
        "sbatch",
        "scontrol",
        "sacct",
    ] {
        let found = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
            .iter()
            .any(|d| Path::new(d).join(program).exists());
        if !found {
            return Some(format!(
                "{program} not installed (apt-get install slurmctld slurmd slurm-client munge)"
            ));
        }
    }
    None
}

/// The test cluster in `dir`, brought down when dropped (even on a panic).
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn up(dir: PathBuf) -> Cluster {
        let out = script("test-cluster.sh")
            .arg("up")
            .arg(&dir)
            .output()
            .unwrap();
        let cluster = Cluster { dir };
        assert!(out.status.success(), "cluster up: {}", text(&out));
        cluster
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("slurm.conf")
    }

    /// The daemons' pids, from their pid files.
    fn pids(&self) -> Vec<i32> {
        ["munged", "slurmctld", "slurmd"]
            .iter()
            .filter_map(|d| std::fs::read_to_string(self.dir.join(format!("run/{d}.pid"))).ok())
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }

    /// The daemons and every process they started (slurmctld's
    /// slurmscriptd, slurmd's slurmstepd), from /proc.
    fn processes(&self) -> Vec<i32> {
        let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // `pid (comm) state ppid …`: comm may hold spaces, so from the last `)`.
                let ppid = stat
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                Some((pid, ppid))
            })
            .collect();
        let mut all = self.pids();
        let mut i = 0;
        while i < all.len() {
            let parent = all[i];
            all.extend(
                parents
                    .iter()
                    .filter(|(_, pp)| *pp == parent)
                    .map(|(p, _)| *p),
            );
            i += 1;
        }
        all
    }

    fn down(&self) -> Output {
        script("test-cluster.sh")
            .arg("down")
            .arg(&self.dir)
            .output()
            .unwrap()
    }

    /// `submit.sh` with this cluster's configuration and `netrun` as NETRUN.
    fn submit(&self, netrun: &Path, scenario: &Path, out: &Path, start_in: u32) -> Output {
        // Bounded: a job stuck in the queue fails the test instead of hanging it.
        Command::new("timeout")
            .arg("300")
            .arg(root().join("deploy/slurm/submit.sh"))
            .arg(scenario)
            .arg("3")
            .arg(out)
            .args(["--wait", "--start-in", &start_in.to_string()])
            .env("SLURM_CONF", self.conf())
            .env("NETRUN", netrun)
            .output()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.down();
    }
}

fn script(name: &str) -> Command {
    Command::new(root().join("deploy/slurm").join(name))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn alive(pid: i32) -> bool {
    rustix::process::Pid::from_raw(pid)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

fn scenario(dir: &Path, origin: &Origin) -> PathBuf {
    let p = dir.join("slurm.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"slurm\"\n[topology]\n\
             origin = {{ address = \"{}\", udp_address = \"{}\" }}\n\
             [[workload]]\nkind = \"http\"\nname = \"h\"\ntarget = \"origin\"\n\
             requests = {REQUESTS}\nconcurrency = 3\nrate = 240\n\
             paths = [\"/index.html\", \"/style.css\"]\n\
             [[workload]]\nkind = \"udp\"\nname = \"u\"\ntarget = \"origin\"\n\
             count = {DATAGRAMS}\ninterval = \"2ms\"\n\
             [expect]\n\"h.requests\" = \"== {REQUESTS}\"\n",
            origin.http, origin.udp
        ),
    )
    .unwrap();
    p
}

fn row<'a>(rows: &'a [Row], workload: &str) -> &'a Row {
    rows.iter()
        .find(|r| r["workload"] == workload)
        .unwrap_or_else(|| panic!("no row {workload}"))
}

#[test]
fn three_agents_and_a_merge_through_slurm() {
    if let Some(why) = skip_reason() {
        println!("skipped: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cluster = Cluster::up(tmp.path().join("cluster"));
    assert_eq!(cluster.pids().len(), 3, "munged, slurmctld and slurmd run");

    let origin = Origin::spawn(Command::new(bin()), "127.0.0.1".parse().unwrap());
    let file = scenario(tmp.path(), &origin);
    let out = tmp.path().join("out");
    // The lead covers the time Slurm takes to start the three tasks: seconds
    // on a busy two-core machine.
    let done = cluster.submit(&bin(), &file, &out, 15);
    assert!(done.status.success(), "submit: {}", text(&done));
    let said = String::from_utf8_lossy(&done.stdout);
    assert!(
        said.contains("agents_job=") && said.contains("merge_job="),
        "{said}"
    );

    let merged = out.join("merged");
    let rows = read_csv(&merged.join("slurm.csv"));
    let (h, u) = (row(&rows, "h"), row(&rows, "u"));
    assert_eq!(
        num(h, "requests"),
        REQUESTS as f64,
        "the scenario's requests"
    );
    assert_eq!(num(h, "received"), REQUESTS as f64);
    assert_eq!(num(u, "sent"), DATAGRAMS as f64, "the scenario's datagrams");

    // The agents' own per-request CSVs, pooled, give the merged percentiles.
    let mut lat = Vec::new();
    let mut rtt = Vec::new();
    for k in 1..=3 {
        let dir = out.join(format!("agent-{k}/slurm"));
        lat.extend(
            read_csv(&dir.join("http_requests.csv"))
                .iter()
                .map(|r| num(r, "latency_ms")),
        );
        rtt.extend(answered_rtts(&read_csv(&dir.join("udp_packets.csv"))));
    }
    assert_eq!(lat.len() as u64, REQUESTS);
    assert_pooled_percentiles(h, lat, u, rtt);

    // The start barrier: the first workload started together on all three.
    // 1-5 ms on an idle host; 80-90 ms was seen at load 12 on 2 cores.
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(merged.join("slurm/run.json")).unwrap())
            .unwrap();
    let skew = num(h, "start_skew_ms");
    println!(
        "start skew between the 3 agents: {skew} ms; {}",
        info["agents"]
    );
    let logs: Vec<String> = (1..=3)
        .map(|k| {
            std::fs::read_to_string(out.join(format!("logs/agent-{k}.out"))).unwrap_or_default()
        })
        .collect();
    assert!(
        skew < SKEW_LIMIT_MS,
        "start skew {skew} ms: {info}\n{}",
        logs.join("\n")
    );
    let agents = info["agents"]
        .as_array()
        .expect("run.json lists the agents");
    assert_eq!(agents.len(), 3, "{info}");
    for a in agents {
        assert!(a["started_at"].is_string(), "{a}");
        assert!(a["start_late_ms"].is_number(), "{a}");
    }
    assert!(
        info["start_skew_ms"]
            .as_f64()
            .is_some_and(|s| s < SKEW_LIMIT_MS),
        "{info}"
    );

    // Agent 2 gets a broken scenario: the array fails, the merge never runs.
    let broken = tmp.path().join("broken.toml");
    std::fs::write(
        &broken,
        "name = \"broken\"\n[[workload]]\nkind = \"http\"\n",
    )
    .unwrap();
    let wrapper = tmp.path().join("netrun-fails-on-2");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             if [ \"$SLURM_ARRAY_TASK_ID\" = 2 ]; then shift 2; exec {} run {} \"$@\"; fi\n\
             exec {} \"$@\"\n",
            bin().display(),
            broken.display(),
            bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out2 = tmp.path().join("out2");
    let failed = cluster.submit(&wrapper, &file, &out2, 2);
    assert_eq!(failed.status.code(), Some(3), "{}", text(&failed));
    let said = String::from_utf8_lossy(&failed.stdout);
    assert!(said.contains("agent 2: FAILED"), "{}", text(&failed));
    let left: Vec<String> = std::fs::read_dir(&out2)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !left.iter().any(|n| n.contains("merged")),
        "nothing merged: {left:?}"
    );
    let merge_job = said
        .lines()
        .find_map(|l| l.strip_prefix("merge_job="))
        .expect("merge job id");
    // No slurmdbd here: sacct reads the job completion log.
    let sacct = Command::new("sacct")
        .args(["--completion", "--noheader", "--parsable2"])
        .args(["--format", "JobID,JobName,State,ExitCode"])
        .env("SLURM_CONF", cluster.conf())
        .output()
        .unwrap();
    let jobs = String::from_utf8_lossy(&sacct.stdout);
    assert!(
        jobs.lines().any(|l| l.contains("netrun-agents|FAILED|2:")),
        "a failed agent in sacct:\n{jobs}"
    );
    assert!(
        jobs.lines()
            .any(|l| l.starts_with(&format!("{merge_job}|")) && l.contains("CANCELLED")),
        "the merge job cancelled in sacct:\n{jobs}"
    );

    drop(origin);
    let pids = cluster.processes();
    let down = cluster.down();
    assert!(down.status.success(), "down: {}", text(&down));
    for pid in pids {
        assert!(
            !alive(pid),
            "process {pid} of the cluster still runs after down"
        );
    }
}
