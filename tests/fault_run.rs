//! Faults during a `netrun run` (issue 26): the origin killed and restarted
//! mid-run, the results disk full, and the run itself killed with SIGKILL.
//! The run finishes with the errors in its summary, or fails with exit 3
//! naming the path; a complete result of an earlier run is never replaced
//! by a half-written one.

#![cfg(unix)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Generous bound for one step (a process starting, a run ending).
const STEP: Duration = Duration::from_secs(30);

fn netrun() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netrun"))
}

fn www() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("www")
}

/// A process killed (SIGKILL) when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a child's stream, read on a thread.
fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `what`.
fn wait_for(rx: &mpsc::Receiver<String>, what: &str) -> String {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(STEP) {
            Ok(line) if line.contains(what) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line with {what:?}; saw {seen:?}"),
        }
    }
}

/// `netrun serve` on `http` / `udp` (port 0: any); its HTTP and UDP addresses.
fn serve(http: &str, udp: &str) -> (Killed, String, String) {
    let mut child = netrun()
        .args(["serve", "--http", http, "--udp", udp, "--www"])
        .arg(www())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let child = Killed(child);
    // "origin http://127.0.0.1:35503  udp 127.0.0.1:33255  www …"
    let line = wait_for(&out, "origin http://");
    let words: Vec<&str> = line.split_whitespace().collect();
    let http = words[1].trim_start_matches("http://").to_string();
    let udp = words[3].to_string();
    std::thread::spawn(move || for _ in out {});
    (child, http, udp)
}

/// Every file under `dir` (relative path → bytes).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Files of `after` that are new or changed since `before`, temporary
/// names (`.name.XXXX.tmp`) aside.
fn changed(
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
) -> Vec<PathBuf> {
    after
        .iter()
        .filter(|(p, bytes)| before.get(*p) != Some(*bytes))
        .map(|(p, _)| p.clone())
        .filter(|p| !is_temporary(p))
        .collect()
}

fn is_temporary(p: &Path) -> bool {
    let name = p.file_name().unwrap().to_string_lossy();
    name.starts_with('.') && name.ends_with(".tmp")
}

fn column(csv_path: &Path, name: &str) -> Vec<String> {
    let mut r = csv::Reader::from_path(csv_path).unwrap();
    let i = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("{}: no column {name}", csv_path.display()));
    r.records().map(|row| row.unwrap()[i].to_string()).collect()
}

/// The origin dies mid-run and comes back on the same address: the proxy
/// answers 502 while it is gone, the run finishes, the errors are in the
/// summary and the requests after the restart succeed again.
#[test]
fn the_origin_killed_and_restarted_mid_run() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, http, udp) = serve("127.0.0.1:0", "127.0.0.1:0");
    let file = dir.path().join("restart.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"restart\"\n[topology]\norigin = {{ address = \"{http}\", udp_address = \"{udp}\" }}\n\
             proxy = {{ http = 0, udp = 0 }}\n[cache]\nenabled = false\n\
             [[workload]]\nkind = \"http\"\nname = \"through\"\ntarget = \"proxy\"\n\
             paths = [\"/index.html\"]\nduration = \"8s\"\nrate = 40\nconcurrency = 2\ntimeout = \"2s\"\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut run = netrun()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines(run.stdout.take().unwrap());
    let stderr = lines(run.stderr.take().unwrap());
    let run = Killed(run);
    wait_for(&stdout, "started through");
    // The fault: the origin gone for two seconds of the eight.
    drop(origin);
    std::thread::sleep(Duration::from_secs(2));
    let (_origin, again, _) = serve(&http, &udp);
    assert_eq!(again, http);

    let mut run = run;
    let status = wait_exit(&mut run.0);
    let err: Vec<String> = stderr.try_iter().collect();
    assert_eq!(status, Some(0), "stderr: {err:?}");
    let summary = out.join("restart.csv");
    let errors: u64 = column(&summary, "errors")[0].parse().unwrap();
    let requests: u64 = column(&summary, "requests")[0].parse().unwrap();
    assert!(errors >= 1, "no error while the origin was gone");
    assert!(requests > errors, "{errors} of {requests} failed");
    let rows = out.join("restart/http_requests.csv");
    let statuses = column(&rows, "status");
    assert!(
        statuses.iter().any(|s| s == "502"),
        "the proxy answers 502 while the origin is gone: {statuses:?}"
    );
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("200"),
        "recovered after the restart"
    );
}

fn wait_exit(child: &mut Child) -> Option<i32> {
    let deadline = std::time::Instant::now() + 2 * STEP;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A short complete run of `name` into `out`.
fn complete_run(dir: &Path, out: &Path, name: &str) {
    let file = scenario_file(dir, name, 5);
    let done = netrun()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}

/// A scenario `name` (in `dir/name-COUNT.toml`) of `count` datagrams
/// through the proxy and five page requests.
fn scenario_file(dir: &Path, name: &str, count: u64) -> PathBuf {
    let file = dir.join(format!("{name}-{count}.toml"));
    std::fs::write(
        &file,
        format!(
            "name = \"{name}\"\n[topology]\nwww = \"{}\"\n\
             [[workload]]\nkind = \"udp\"\nname = \"few\"\ncount = {count}\ninterval = \"20us\"\ntimeout = \"2s\"\n\
             [[workload]]\nkind = \"http\"\nname = \"pages\"\npaths = [\"/index.html\"]\nrequests = 5\n",
            www().display()
        ),
    )
    .unwrap();
    file
}

/// A run of `name` that keeps going (a UDP workload to a socket that
/// never answers) until killed; the socket is returned to be kept open.
fn endless_scenario(dir: &Path, name: &str) -> (PathBuf, std::net::UdpSocket) {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let file = dir.join(format!("{name}-endless.toml"));
    std::fs::write(
        &file,
        format!(
            "name = \"{name}\"\n[topology]\norigin = {{ address = \"127.0.0.1:9\", udp_address = \"{}\" }}\n\
             [[workload]]\nkind = \"udp\"\nname = \"silent\"\ntarget = \"origin\"\ncount = 1000000\n\
             interval = \"1ms\"\ntimeout = \"1h\"\n",
            silent.local_addr().unwrap()
        ),
    )
    .unwrap();
    (file, silent)
}

/// SIGKILL gives the run no chance to clean up: whatever it was writing
/// stays under a temporary name, and the complete results of the earlier
/// run stand untouched.
#[test]
fn sigkill_during_a_run_leaves_the_complete_results_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    complete_run(dir.path(), &out, "kept");
    let before = snapshot(&out);
    assert!(before.contains_key(Path::new("kept.csv")));

    let (file, _silent) = endless_scenario(dir.path(), "kept");
    let mut run = netrun()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = lines(run.stdout.take().unwrap());
    // Killed and reaped however the test ends: the run never ends by itself.
    let mut run = Killed(run);
    wait_for(&stdout, "started silent");
    // The run has its files open under temporary names by now.
    let deadline = std::time::Instant::now() + STEP;
    while !snapshot(&out).keys().any(|p| is_temporary(p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no file being written"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    run.0.kill().unwrap();
    run.0.wait().unwrap();

    let after = snapshot(&out);
    assert_eq!(changed(&before, &after), Vec::<PathBuf>::new());
    for (p, bytes) in &before {
        assert_eq!(after.get(p), Some(bytes), "{} changed", p.display());
    }
}

/// A tmpfs mounted on a new folder, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        if !rustix::process::geteuid().is_root() {
            return Err("not root, cannot mount a tmpfs".into());
        }
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Writes zeros into `path` until the file system is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 4096];
    loop {
        if f.write_all(&block).is_err() {
            break;
        }
    }
    // The last partial block.
    while f.write_all(&[0]).is_ok() {}
    let _ = f.sync_all();
}

/// Fills the disk, then frees `room` bytes of it.
fn fill_but(disk: &Path, room: u64) {
    let filler = disk.join("filler");
    fill(&filler);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(room)).unwrap();
}

/// With the results disk full (from the start, or filling up while the
/// samples stream), a run fails with exit 3 and a message that names the
/// path it could not write and why; the earlier complete results stand and
/// no temporary file is left behind.
fn disk_full(room: u64, count: u64) {
    let dir = tempfile::tempdir().unwrap();
    let disk = match Tmpfs::mount(&dir.path().join("disk"), "4m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let out = disk.0.join("results");
    complete_run(dir.path(), &out, "full");
    let before = snapshot(&out);
    fill_but(&disk.0, room);

    let file = scenario_file(dir.path(), "full", count);
    let done = netrun()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(3), "stderr: {err}");
    assert!(
        err.contains(&out.display().to_string()),
        "the message names the path: {err}"
    );
    assert!(err.contains("No space left"), "and says why: {err}");
    let after = snapshot(&out);
    assert_eq!(changed(&before, &after), Vec::<PathBuf>::new());
    let left: Vec<_> = after.keys().filter(|p| is_temporary(p)).collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

#[test]
fn a_full_results_disk_fails_the_run_and_keeps_earlier_results() {
    disk_full(0, 5);
}

/// 64 KiB free and ~20,000 sample rows (about 1 MB) to write: the disk
/// fills while the samples stream.
#[test]
fn a_disk_filling_up_mid_run_fails_it_and_keeps_earlier_results() {
    disk_full(64 * 1024, 20_000);
}
