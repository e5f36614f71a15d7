//! `[topology] hosts = "netns"`: a kernel-shaped link measured end to end,
//! UDP across the namespaces, and nothing left behind after a normal run,
//! Ctrl-C, or `kill -9` followed by `netrun cleanup`. These need root and
//! iproute2 (CI runs as root); elsewhere they check the refusal instead and
//! say why the rest was skipped.

#[path = "common/csv.rs"]
mod csv_files;
#[path = "common/netns.rs"]
mod netns_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use csv_files::read_csv;
use netns_support::{namespaces_of, root_links, skip_reason, Leftovers};

const NETRUN: &str = env!("CARGO_BIN_EXE_netrun");

/// `None` (and a line saying why) when these tests cannot run here.
fn root_only(test: &str) -> Option<()> {
    match skip_reason() {
        Some(why) => {
            eprintln!("skipped {test}: {why}");
            None
        }
        None => Some(()),
    }
}

/// A folder with `www/big.bin` (1 MiB) and `netns.toml` made of `body`.
fn scenario(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("www/big.bin"), vec![7u8; 1 << 20]).unwrap();
    std::fs::write(
        dir.path().join("netns.toml"),
        format!("name = \"netns\"\n[topology]\nhosts = \"netns\"\nwww = \"www\"\n{body}"),
    )
    .unwrap();
    dir
}

/// A long UDP workload: the run is still going when a test stops it.
const LONG: &str =
    "[[workload]]\nkind = \"udp\"\nname = \"long\"\ncount = 60000\ninterval = \"1ms\"\n";

/// Starts `netrun run` on `dir`'s scenario and waits until its workload has
/// started (so its namespaces exist).
fn start_long_run(dir: &Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(NETRUN)
        .args(["run", "netns.toml", "--out", "out"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("started long") => break,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("the run never started its workload: {e}");
            }
        }
    }
    (child, rx)
}

/// Waits for `child` to end, at most a minute.
fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("netrun did not end within a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long, since boot, some task on this machine waited for a CPU
/// (`/proc/pressure/cpu`'s `some total`, Linux 4.20 with PSI); `None`
/// where the kernel does not say.
fn cpu_stall() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    let us = text
        .lines()
        .find(|l| l.starts_with("some "))?
        .split_whitespace()
        .find_map(|w| w.strip_prefix("total="))?
        .parse()
        .ok()?;
    Some(Duration::from_micros(us))
}

#[test]
fn a_kernel_shaped_link_gives_its_rate_and_udp_crosses_the_namespaces() {
    let Some(()) = root_only("a_kernel_shaped_link_gives_its_rate_and_udp_crosses_the_namespaces")
    else {
        return;
    };
    // `warm` fills the proxy's cache, so `dl` measures the shaped link
    // alone rather than the upstream fetch too (and the origin's link, whose
    // delay only UDP through the proxy and `warm` cross).
    let dir = scenario(
        "[links.clients_proxy]\nrate = \"20Mbit/s\"\n[links.proxy_origin]\ndelay = \"3ms\"\n\
         [[workload]]\nkind = \"http\"\nname = \"warm\"\npaths = [\"/big.bin\"]\nrequests = 1\n\
         [[workload]]\nkind = \"http\"\nname = \"dl\"\npaths = [\"/big.bin\"]\nrequests = 1\n\
         [[workload]]\nkind = \"udp\"\nname = \"echo\"\ncount = 200\ninterval = \"1ms\"\n\
         [[workload]]\nkind = \"udp\"\nname = \"direct\"\ntarget = \"origin\"\ncount = 50\ninterval = \"1ms\"\n",
    );
    let stalled_before = cpu_stall();
    let child = Command::new(NETRUN)
        .args(["run", "netns.toml", "--out", "out"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _leftovers = Leftovers(child.id());
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stalled = cpu_stall()
        .zip(stalled_before)
        .map(|(a, b)| a.saturating_sub(b));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_csv(&dir.path().join("out/netns.csv"));
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["workload"] == name)
            .unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
    };
    let dl = row("dl");
    let mbps = dl["throughput_bps"].parse::<f64>().unwrap() / 1e6;
    eprintln!(
        "1 MiB over a 20Mbit/s tbf link: {mbps:.2} Mbit/s (CPU stall during the run: {stalled:?})"
    );
    // Never faster than the link: tbf lets its burst (10,000 bytes) go at
    // once and the rest at 20 Mbit/s, 20.2 Mbit/s at most over 1 MiB.
    assert!(mbps <= 21.0, "{mbps} Mbit/s: {dl:?}");
    // Slower only as far as the hosts were kept from running: on an idle
    // machine the download takes at most what 17 Mbit/s would (TCP's start
    // and the request's round trip), plus whatever time tasks on this
    // machine spent waiting for a CPU during the run, as the kernel counts
    // it (`/proc/pressure/cpu`); a loaded machine widens the bound by
    // exactly as much as it stalled, and never narrows it.
    let bits = 8.0 * f64::from(1u32 << 20);
    let took = Duration::from_secs_f64(bits / (mbps * 1e6));
    let idle_bound = Duration::from_secs_f64(bits / 17e6);
    match stalled {
        Some(stalled) => assert!(
            took <= idle_bound + stalled,
            "{mbps} Mbit/s: {took:?} > {idle_bound:?} + {stalled:?} of CPU stall: {dl:?}"
        ),
        None => eprintln!("no /proc/pressure/cpu here: the lower bound is not checked"),
    }
    assert_eq!(dl["proxy_hits"], "1", "{dl:?}");
    for name in ["echo", "direct"] {
        let r = row(name);
        assert_eq!(r["received"], r["sent"], "{r:?}");
        assert_eq!(r["lost"], "0", "{r:?}");
        assert_eq!(r["topology"], "netns", "{r:?}");
    }
    // The origin's link delays each datagram both ways: netrun's user-space
    // packet link without netem (which counts every packet), the kernel's
    // netem with it; the proxy's in-process model never.
    let echo = row("echo");
    let p50: f64 = echo["latency_p50_ms"].parse().unwrap();
    assert!(p50 >= 6.0, "{echo:?}");
    assert_eq!(echo["proxy_origin_delayed"], "0", "{echo:?}");
    if netrun::netns::netem_available() == Some(false) {
        assert_eq!(echo["link_packets"], "400", "{echo:?}");
        assert_eq!(echo["proxy_origin_link_lost"], "0", "{echo:?}");
    }
    let run_json = std::fs::read_to_string(dir.path().join("out/netns/run.json")).unwrap();
    assert!(
        run_json.contains("netns: clients, proxy and origin"),
        "{run_json}"
    );
    assert_eq!(namespaces_of(pid), Vec::<String>::new());
    assert_eq!(root_links(), Vec::<String>::new());
}

#[test]
fn ctrl_c_removes_the_namespaces() {
    let Some(()) = root_only("ctrl_c_removes_the_namespaces") else {
        return;
    };
    let dir = scenario(LONG);
    let (mut child, _lines) = start_long_run(dir.path());
    let pid = child.id();
    let _leftovers = Leftovers(pid);
    assert_eq!(namespaces_of(pid).len(), 3, "{:?}", namespaces_of(pid));
    let p = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(p, rustix::process::Signal::INT).unwrap();
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(namespaces_of(pid), Vec::<String>::new());
    assert_eq!(root_links(), Vec::<String>::new());
}

#[test]
fn netrun_cleanup_removes_what_a_killed_run_left() {
    let Some(()) = root_only("netrun_cleanup_removes_what_a_killed_run_left") else {
        return;
    };
    let dir = scenario(LONG);
    let (mut child, _lines) = start_long_run(dir.path());
    let pid = child.id();
    let _leftovers = Leftovers(pid);
    child.kill().unwrap(); // SIGKILL: nothing of netrun's runs after it
    wait(&mut child);
    let left = namespaces_of(pid);
    assert_eq!(left.len(), 3, "{left:?}");
    // Names that only start with `netrun-` are not netrun's: left alone.
    let strangers = [format!("netrun-foo{pid}"), format!("netrun--x{pid}")];
    for name in &strangers {
        let made = Command::new("ip").args(["netns", "add", name]).status();
        assert!(made.is_ok_and(|s| s.success()), "ip netns add {name}");
    }
    // Another run's `netrun cleanup` (tests run in parallel on this host)
    // may remove this killed run's namespaces first: what was already gone
    // just before ours started cannot be in its output.
    let before = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let before = String::from_utf8_lossy(&before.stdout).into_owned();
    let out = Command::new(NETRUN).arg("cleanup").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let listed = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    for name in &strangers {
        let _ = Command::new("ip").args(["netns", "del", name]).status();
    }
    for name in &strangers {
        assert!(
            !stdout.contains(name.as_str()),
            "{name} was not netrun's: {stdout}"
        );
        assert!(
            listed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{listed}"
        );
    }
    assert!(out.status.success(), "{stdout}");
    for name in &left {
        let was_there = before
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name.as_str()));
        assert!(
            !was_there || stdout.contains(&format!("removed network namespace {name}")),
            "{stdout}"
        );
    }
    assert_eq!(namespaces_of(pid), Vec::<String>::new());
}

/// `netrun args…` in `dir` as an unprivileged user: as is when not root,
/// through `setpriv` as `nobody` when root; `None` when neither can be done.
fn unprivileged(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    // SAFETY: geteuid has no preconditions.
    let mut cmd = if !rustix::process::geteuid().is_root() {
        Command::new(NETRUN)
    } else {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", NETRUN]);
        c
    };
    match cmd.args(args).current_dir(dir).output() {
        Ok(out) => Some(out),
        Err(e) => {
            eprintln!("skipped the not-root checks: cannot run netrun unprivileged ({e})");
            None
        }
    }
}

#[test]
fn without_root_a_netns_run_and_cleanup_exit_2_saying_why() {
    let dir = scenario(LONG);
    // The unprivileged user reads the scenario and makes `out` (a temporary
    // folder is 0700).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let Some(run) = unprivileged(dir.path(), &["run", "netns.toml", "--out", "out"]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("hosts = \"netns\" needs root to manage network namespaces")
            && stderr.contains("run it with sudo, or use hosts = \"loopback\""),
        "{stderr}"
    );
    assert!(!dir.path().join("out/netns.csv").exists());
    let cleanup = unprivileged(dir.path(), &["cleanup"]).unwrap();
    let stderr = String::from_utf8_lossy(&cleanup.stderr);
    assert_eq!(cleanup.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`netrun cleanup` needs root"), "{stderr}");
    let check = unprivileged(dir.path(), &["check", "netns.toml"]).unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("cannot run here: hosts = \"netns\" needs root"),
        "{stderr}"
    );
}

#[test]
fn check_says_which_knob_the_kernel_applies_and_which_stays_in_process() {
    let out = Command::new(NETRUN)
        .args(["check", "scenarios/netns.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let clients_proxy = match netrun::netns::netem_available() {
        Some(false) => {
            "userspace packet link (the kernel has no sch_netem): delay 5ms, \
                        rate 20Mbit/s, droptail of 1000 packets (each direction)"
        }
        Some(true) => "kernel: rate 20Mbit/s: kernel tbf; delay 5ms: kernel netem",
        None => {
            "rate 20Mbit/s: kernel tbf; delay 5ms: kernel netem; \
                 without sch_netem: userspace packet link"
        }
    };
    for line in [
        format!("link     clients_proxy  {clients_proxy}\n"),
        "link     proxy_origin   kernel: rate 100Mbit/s: kernel tbf\n".to_string(),
        "link     clients_origin kernel: rate 10Mbit/s: kernel tbf\n".to_string(),
        "hosts    netns: clients, proxy and origin each in a network namespace".to_string(),
    ] {
        assert!(stdout.contains(&line), "no {line:?} in\n{stdout}");
    }
}

/// Without netem, delay on the clients ↔ origin link (no netrun process on
/// that path) is netrun's user-space link's; forcing the kernel stops the run.
#[test]
fn delay_on_the_clients_origin_link_is_userspace_unless_the_kernel_is_forced() {
    let test = "delay_on_the_clients_origin_link_is_userspace_unless_the_kernel_is_forced";
    let Some(()) = root_only(test) else {
        return;
    };
    if netrun::netns::netem_available() != Some(false) {
        eprintln!("skipped {test}: this kernel has sch_netem");
        return;
    }
    let direct = "[[workload]]\nkind = \"udp\"\nname = \"direct\"\ntarget = \"origin\"\ncount = 50\ninterval = \"1ms\"\n";
    let dir = scenario(&format!(
        "[links.clients_origin]\ndelay = \"5ms\"\n{direct}"
    ));
    let out = Command::new(NETRUN)
        .args(["run", "netns.toml", "--out", "out"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows = read_csv(&dir.path().join("out/netns.csv"));
    let p50: f64 = rows[0]["latency_p50_ms"].parse().unwrap();
    assert!(p50 >= 10.0, "5 ms each way: {:?}", rows[0]);
    assert_eq!(rows[0]["link_packets"], "100", "{:?}", rows[0]);

    let dir = scenario(&format!(
        "[links.clients_origin]\ndelay = \"5ms\"\nengine = \"kernel\"\n{LONG}"
    ));
    let out = Command::new(NETRUN)
        .args(["run", "netns.toml", "--out", "out"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("links.clients_origin forces engine = \"kernel\"")
            && stderr.contains("no sch_netem"),
        "{stderr}"
    );
}
