//! `netrun link -- COMMAND`: the command's exit code and `NETRUN_HOST`,
//! UDP through a lossy link losing exactly what the link's counters say,
//! and nothing left behind after a run, a Ctrl-C, or a `kill -9` followed
//! by `netrun cleanup`. These need root and iproute2 (CI runs as root);
//! elsewhere they say why they were skipped.

#[path = "common/netns.rs"]
mod netns_support;

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netns_support::{namespaces_of, skip_reason, Leftovers};

const NETRUN: &str = env!("CARGO_BIN_EXE_netrun");

/// One test at a time: each link is a busy thread on a small machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn root_only(test: &str) -> Option<MutexGuard<'static, ()>> {
    match skip_reason() {
        Some(why) => {
            eprintln!("skipped {test}: {why}");
            None
        }
        None => Some(SERIAL.lock().unwrap_or_else(|e| e.into_inner())),
    }
}

/// The host-side TUN device of the `netrun link` whose stderr this is: its
/// start line gives `NETRUN_HOST=198.19.<n>.1`, the device is `netrun-l<n>`
/// (`None`: it refused before making a link). Only this run's device is
/// checked: other runs on the machine (tests run in parallel) own other
/// `netrun-l*` devices.
fn host_tun_of(stderr: &str) -> Option<String> {
    let host = stderr
        .split("NETRUN_HOST=")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let subnet = host.split('.').nth(2).expect("an IPv4 address");
    Some(format!("netrun-l{subnet}"))
}

/// The host-side TUN device of the link into namespace `ns` (its inside
/// end gets `198.19.<n>.2` just after the namespace is made).
fn host_tun_in(ns: &str) -> String {
    let start = Instant::now();
    loop {
        let out = Command::new("ip")
            .args(["-n", ns, "-o", "-4", "addr", "show", "dev", "netrun0"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(subnet) = text
            .split("198.19.")
            .nth(1)
            .and_then(|r| r.split('.').next())
        {
            return format!("netrun-l{subnet}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no link address in {ns}: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether an interface `name` is in this (the root) namespace.
fn present(name: &str) -> bool {
    netns_support::root_devices().iter().any(|n| n == name)
}

fn link(args: &[&str]) -> Output {
    let child = Command::new(NETRUN)
        .arg("link")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _guard = Leftovers(pid);
    let out = child.wait_with_output().unwrap();
    assert!(namespaces_of(pid).is_empty(), "the namespace is removed");
    if let Some(tun) = host_tun_of(&String::from_utf8_lossy(&out.stderr)) {
        assert!(!present(&tun), "{tun} left behind");
    }
    out
}

/// A UDP echo on every address of this namespace, until dropped. It counts
/// what it could not answer: datagrams its socket's receive queue dropped
/// (the kernel's count) and replies whose send failed. Its queue is made
/// large (4 MiB, forced: the tests run as root) so that a thread kept off
/// the CPU for a while on a loaded machine seldom drops anything; when it
/// does, the drops are counted, not lost from the tally.
struct Echo {
    port: u16,
    sock: Arc<UdpSocket>,
    stop: Arc<AtomicBool>,
    send_errors: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// What the echo could not answer.
#[derive(Debug)]
struct Unanswered {
    /// Datagrams the kernel dropped at the echo's socket (its queue full).
    socket_drops: u64,
    /// Replies the echo failed to send.
    send_errors: u64,
}

impl Echo {
    fn start() -> Echo {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        force_receive_buffer(&sock, 4 << 20);
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = sock.local_addr().unwrap().port();
        let sock = Arc::new(sock);
        let stop = Arc::new(AtomicBool::new(false));
        let send_errors = Arc::new(AtomicU64::new(0));
        let (s, sk, errors) = (stop.clone(), sock.clone(), send_errors.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sk.recv_from(&mut buf) {
                    if sk.send_to(&buf[..n], from).is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Echo {
            port,
            sock,
            stop,
            send_errors,
            thread: Some(thread),
        }
    }

    /// Stops the echo; what it could not answer.
    fn finish(mut self) -> Unanswered {
        self.halt();
        Unanswered {
            // The kernel's count (`SO_MEMINFO`, Linux 4.12 and later).
            socket_drops: netrun::net::udp_socket_drops(&self.sock)
                .expect("SO_MEMINFO with its drops count"),
            send_errors: self.send_errors.load(Ordering::Relaxed),
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Sets `sock`'s receive buffer to `bytes` past `net.core.rmem_max`
/// (`SO_RCVBUFFORCE`, root only).
fn force_receive_buffer(sock: &UdpSocket, bytes: libc::c_int) {
    // SAFETY: the option is an int read from a live local for its size;
    // the descriptor is open for the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
}

/// A row of the counters table on stderr: (uplink, downlink).
fn counter(stderr: &str, name: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no `{name}` row in:\n{stderr}"));
    let v: Vec<u64> = line[name.len()..]
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (v[0], v[1])
}

/// Probes the echo through a link with `knobs`: the probe's lost count,
/// netrun's stderr, and what the echo could not answer (lost on the host,
/// not on the link).
fn probe_through(knobs: &[&str], count: u32) -> (u64, String, Unanswered) {
    let echo = Echo::start();
    let target = format!("$NETRUN_HOST:{}", echo.port);
    let script = format!(
        "\"$0\" probe udp {target} --count {count} --interval 500us --timeout 1s --json -q"
    );
    let mut args = knobs.to_vec();
    args.extend(["--", "sh", "-c", &script, NETRUN]);
    let out = link(&args);
    let unanswered = echo.finish();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["sent"].as_u64(), Some(u64::from(count)), "{json}");
    eprintln!("the echo could not answer: {unanswered:?}");
    let stderr = format!("{stderr}probe: {json}\necho: {unanswered:?}\n");
    (json["lost"].as_u64().unwrap(), stderr, unanswered)
}

#[test]
fn the_command_gets_netrun_host_and_its_exit_code_is_netruns() {
    let Some(_serial) = root_only("the_command_gets_netrun_host_and_its_exit_code_is_netruns")
    else {
        return;
    };
    let out = link(&[
        "--delay",
        "1ms",
        "--",
        "sh",
        "-c",
        "case \"$NETRUN_HOST\" in 198.19.*) exit 7;; *) exit 1;; esac",
    ]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("uplink: delay 1ms"), "{stderr}");
    assert_eq!(counter(&stderr, "packets"), (0, 0), "nothing crossed");

    let missing = link(&["--", "/nonexistent/command"]);
    assert_ne!(missing.status.code(), Some(0));
    let no_command = link(&["--delay", "1ms"]);
    assert_eq!(no_command.status.code(), Some(2));
}

/// Links started at once each claim a subnet of their own: none fails on
/// the device another one is making (before, most of four started together
/// did: "cannot make the TUN device netrun-l0: Device or resource busy").
#[test]
fn links_started_at_once_all_start() {
    let Some(_serial) = root_only("links_started_at_once_all_start") else {
        return;
    };
    for _round in 0..3 {
        let runs: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| link(&["--", "true"])))
            .collect();
        for r in runs {
            let out = r.join().expect("a link thread");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{stderr}");
            assert!(host_tun_of(&stderr).is_some(), "{stderr}");
        }
    }
}

/// `--congestion` puts the algorithm on the link's routes, both ends; one
/// the kernel lacks is refused (exit 2) with the list of those it has.
#[test]
fn congestion_control_is_set_on_the_links_routes() {
    let Some(_serial) = root_only("congestion_control_is_set_on_the_links_routes") else {
        return;
    };
    let available = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
        .unwrap_or_default();
    // Reno is built into every kernel.
    let out = link(&["--congestion", "reno", "--", "ip", "route", "show"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let routes = String::from_utf8_lossy(&out.stdout);
    assert!(
        routes
            .lines()
            .filter(|l| l.contains("congctl reno"))
            .count()
            >= 2,
        "the default route and the link's subnet: {routes}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("TCP congestion control reno"));
    let out = link(&["--congestion", "nosuchcc", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no TCP congestion control `nosuchcc`"),
        "{stderr}"
    );
    assert!(
        stderr.contains(available.trim()),
        "lists what it has: {stderr}"
    );
    let out = link(&["--congestion", "a b", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // A scenario asking for one the kernel lacks stops before anything runs.
    let dir = scenario(
        "congestion = \"nosuchcc\"\n[[workload]]\nkind = \"udp\"\nname = \"u\"\ncount = 1\n",
    );
    let out = Command::new(NETRUN)
        .args(["run", "s.toml", "--out", "out", "-q"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("topology.congestion"), "{stderr}");
    assert!(!dir.path().join("out/s.csv").exists());
}

#[test]
fn udp_loses_exactly_what_the_link_counts_as_lost() {
    let Some(_serial) = root_only("udp_loses_exactly_what_the_link_counts_as_lost") else {
        return;
    };
    let (lost, stderr, echo) = probe_through(&["--loss", "2%", "--seed", "5"], 3000);
    let (up, down) = counter(&stderr, "lost");
    // What the link lost: its model's draws, and what the kernel dropped at
    // its devices while a busy machine kept its thread from reading; and
    // what the host's echo (not the link) dropped.
    let (ku, kd) = counter(&stderr, "kernel drops");
    let host = echo.socket_drops + echo.send_errors;
    assert_eq!(lost, up + down + ku + kd + host, "{stderr}");
    assert!(lost > 60, "about 4% of 3000 round trips: {lost}");
    assert_eq!(counter(&stderr, "burst lost"), (0, 0));
}

#[test]
fn udp_loses_exactly_what_the_gilbert_model_counts() {
    let Some(_serial) = root_only("udp_loses_exactly_what_the_gilbert_model_counts") else {
        return;
    };
    let (lost, stderr, echo) =
        probe_through(&["--burst-loss", "p=1%,r=30%", "--loss", "0.5%"], 4000);
    let (bu, bd) = counter(&stderr, "burst lost");
    let (lu, ld) = counter(&stderr, "lost");
    let (ku, kd) = counter(&stderr, "kernel drops");
    let host = echo.socket_drops + echo.send_errors;
    assert_eq!(lost, bu + bd + lu + ld + ku + kd + host, "{stderr}");
    // p/(p+r) = 3.2% a direction, plus 0.5%: about 7% of round trips.
    let share = (bu + bd) as f64 / (2.0 * 4000.0);
    assert!(share > 0.015 && share < 0.06, "{share}\n{stderr}");
}

/// Waits until `pid` owns a namespace (the link is up); its name.
fn wait_for_namespace(pid: u32) -> String {
    let start = Instant::now();
    loop {
        if let Some(n) = namespaces_of(pid).into_iter().next() {
            return n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no namespace appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_reaches_the_command_and_leaves_nothing_behind() {
    let Some(_serial) = root_only("ctrl_c_reaches_the_command_and_leaves_nothing_behind") else {
        return;
    };
    let child = Command::new(NETRUN)
        .args(["link", "--", "sleep", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = Leftovers(child.id());
    let ns = wait_for_namespace(child.id());
    // The command runs once `ip netns exec` has entered the namespace.
    let start = Instant::now();
    while pids_in(&ns).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    let tun = host_tun_in(&ns);
    let p = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(p, rustix::process::Signal::INT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "sleep ended by SIGINT: {out:?}"
    );
    assert!(namespaces_of(out_pid(&ns)).is_empty());
    assert!(!present(&tun), "{tun} left behind");
}

/// The pid in a `netrun-<pid>-…` name.
fn out_pid(ns: &str) -> u32 {
    ns["netrun-".len()..]
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn pids_in(ns: &str) -> Vec<i32> {
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn after_kill_9_cleanup_removes_the_namespace_and_the_devices_are_gone() {
    let Some(_serial) =
        root_only("after_kill_9_cleanup_removes_the_namespace_and_the_devices_are_gone")
    else {
        return;
    };
    let mut child = Command::new(NETRUN)
        .args(["link", "--", "sleep", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _guard = Leftovers(pid);
    let ns = wait_for_namespace(pid);
    let tun = host_tun_in(&ns);
    child.kill().unwrap();
    child.wait().unwrap();
    // The command outlives netrun (as with any killed parent): end it.
    for p in pids_in(&ns) {
        if let Some(p) = rustix::process::Pid::from_raw(p) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
    // TUN devices go with their descriptors (the kernel unregisters them
    // just after the process is gone).
    let start = Instant::now();
    while present(&tun) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{tun} left behind"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(namespaces_of(pid), std::slice::from_ref(&ns));
    let out = Command::new(NETRUN).arg("cleanup").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&ns));
    assert!(namespaces_of(pid).is_empty());
}

/// A folder with `www/big.bin` (1 MiB) and `s.toml` made of `body`.
fn scenario(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("www")).unwrap();
    std::fs::write(dir.path().join("www/big.bin"), vec![7u8; 1 << 20]).unwrap();
    std::fs::write(
        dir.path().join("s.toml"),
        format!("name = \"s\"\nseed = 3\n[topology]\nhosts = \"netns\"\nwww = \"www\"\n{body}"),
    )
    .unwrap();
    dir
}

/// The summary rows of a scenario run in `dir`, as column → value maps.
fn run_scenario(dir: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    let out = Command::new(NETRUN)
        .args(["run", "s.toml", "--out", "out", "-q"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut r = ::csv::Reader::from_path(dir.join("out/s.csv")).unwrap();
    let header = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// `loss_percent` on a netns link without sch_netem is the user-space
/// link's: UDP through the proxy loses exactly what that link counts, and
/// the proxy (which no longer impairs that link) drops nothing.
#[test]
fn a_netns_scenario_link_loses_what_its_counters_say() {
    let Some(_serial) = root_only("a_netns_scenario_link_loses_what_its_counters_say") else {
        return;
    };
    if netrun::netns::netem_available() == Some(true) {
        eprintln!("skipped: this kernel has sch_netem, so the kernel shapes loss_percent");
        return;
    }
    let dir = scenario(
        "[links.proxy_origin]\nloss_percent = 2\n\
         [[workload]]\nkind = \"udp\"\nname = \"u\"\ncount = 3000\ninterval = \"500us\"\ntimeout = \"1s\"\n\
         [[workload]]\nkind = \"http\"\nname = \"h\"\npaths = [\"/big.bin\"]\nrequests = 2\n",
    );
    let rows = run_scenario(dir.path());
    let udp = &rows[0];
    let lost: u64 = udp["lost"].parse().unwrap();
    assert!(lost > 50, "{udp:?}");
    assert_eq!(udp["proxy_origin_link_lost"], udp["link_lost"], "{udp:?}");
    // No queue is set: its queue drops are the kernel's, at the link's TUN
    // devices while a busy machine kept the link's thread from reading.
    let link_lost: u64 = udp["link_lost"].parse().unwrap();
    let kernel: u64 = udp["link_queue_drops"].parse().unwrap();
    assert_eq!(lost, link_lost + kernel, "{udp:?}");
    assert_eq!(
        udp["proxy_dropped"], "0",
        "the proxy no longer impairs that link"
    );
    assert_eq!(
        udp["clients_proxy_link_lost"], "",
        "a clean link stays with the kernel"
    );
    let http = &rows[1];
    assert_eq!(
        http["errors"], "0",
        "TCP retransmits what the link loses: {http:?}"
    );
    assert!(namespaces_of(std::process::id()).is_empty());
}
