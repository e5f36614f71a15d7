//! Ctrl-C and SIGTERM during a scenario run (issue 11, item 7): the first
//! stops and says a second quits at once; the second writes what was
//! gathered and exits; an interrupted run never replaces the complete
//! results of an earlier one.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Generous: the point is that the run does not wait out its 1 h timeout.
const STEP: Duration = Duration::from_secs(10);

/// A scenario whose UDP workload targets a socket that never answers, so
/// after Ctrl-C it would wait its whole `timeout` for replies.
fn silent_scenario(dir: &Path, name: &str, timeout: &str) -> (std::path::PathBuf, Silent) {
    let silent = Silent {
        udp: std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        http: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
    };
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            "name = \"{name}\"\n[topology]\norigin = {{ address = \"{}\", udp_address = \"{}\" }}\n\
             [[workload]]\nkind = \"udp\"\nname = \"silent\"\ntarget = \"origin\"\ncount = 1000000\n\
             interval = \"1ms\"\ntimeout = \"{timeout}\"\n",
            silent.http.local_addr().unwrap(),
            silent.udp.local_addr().unwrap()
        ),
    )
    .unwrap();
    (file, silent)
}

/// Sockets kept open (and never read) for the length of a test.
struct Silent {
    #[allow(dead_code)]
    udp: std::net::UdpSocket,
    #[allow(dead_code)]
    http: std::net::TcpListener,
}

struct Run {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

/// Starts `netrun run FILE --out OUT` and returns once its workload started.
fn start(file: &Path, out: &Path) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .arg("run")
        .arg(file)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, stderr) = mpsc::channel();
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("the run ended early").unwrap();
        if line.contains("started silent") {
            break;
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    Run { child, stderr }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits for a stderr line containing `what`; returns every line seen.
fn wait_for_line(run: &Run, what: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match run.stderr.recv_timeout(STEP) {
            Ok(line) => {
                let found = line.contains(what);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => panic!("no stderr line with {what:?}; saw {seen:?}"),
        }
    }
}

fn exit_code(mut run: Run) -> Option<i32> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run.child.wait());
    });
    rx.recv_timeout(STEP)
        .expect("netrun did not exit after the second signal")
        .unwrap()
        .code()
}

fn rows(path: &Path) -> Vec<csv::StringRecord> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    r.records().map(Result::unwrap).collect()
}

fn column(path: &Path, name: &str) -> usize {
    let mut r = csv::Reader::from_path(path).unwrap();
    r.headers().unwrap().iter().position(|h| h == name).unwrap()
}

fn twice(sig: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (file, _silent) = silent_scenario(dir.path(), "twice", "1h");
    let out = dir.path().join("out");
    let run = start(&file, &out);
    signal(&run.child, sig);
    wait_for_line(&run, "again");
    signal(&run.child, sig);
    assert_eq!(exit_code(run), Some(130));
    let partial = out.join("twice.interrupted.csv");
    let got = rows(&partial);
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0][column(&partial, "interrupted")], "true");
    assert!(out.join("twice.interrupted/udp_packets.csv").exists());
    assert!(
        !out.join("twice.csv").exists(),
        "partial results under the complete name"
    );
}

#[test]
fn ctrl_c_twice_quits_at_once_with_what_was_gathered() {
    twice("-INT");
}

#[test]
fn sigterm_twice_behaves_like_ctrl_c() {
    twice("-TERM");
}

/// A complete run's files survive a later interrupted run of the same
/// scenario; the partial results go beside them.
#[test]
fn an_interrupted_run_keeps_earlier_complete_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let complete_dir = dir.path().join("a");
    std::fs::create_dir(&complete_dir).unwrap();
    let complete = complete_dir.join("keep.toml");
    std::fs::write(
        &complete,
        format!(
            "name = \"keep\"\n[topology]\nwww = \"{}/www\"\n[[workload]]\nkind = \"udp\"\nname = \"silent\"\ncount = 3\ninterval = \"1ms\"\ntimeout = \"2s\"\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .arg("run")
        .arg(&complete)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let summary = std::fs::read(out.join("keep.csv")).unwrap();
    let packets = std::fs::read(out.join("keep/udp_packets.csv")).unwrap();

    let (file, _silent) = silent_scenario(dir.path(), "keep", "1h");
    let run = start(&file, &out);
    signal(&run.child, "-INT");
    wait_for_line(&run, "again");
    signal(&run.child, "-INT");
    assert_eq!(exit_code(run), Some(130));
    assert_eq!(std::fs::read(out.join("keep.csv")).unwrap(), summary);
    assert_eq!(
        std::fs::read(out.join("keep/udp_packets.csv")).unwrap(),
        packets
    );
    let partial = out.join("keep.interrupted.csv");
    assert_eq!(&rows(&partial)[0][column(&partial, "interrupted")], "true");
}
