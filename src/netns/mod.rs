//! `[topology] hosts = "netns"`: the clients, the proxy and the origin each
//! in their own network namespace, joined point to point by one veth pair
//! per link and shaped there by `tc`; removed on drop, and by [`cleanup`]
//! after a crash (every name starts with [`PREFIX`] and its owner's pid).

pub mod cmd;
pub mod congestion;
pub mod enter;
pub mod shape;
pub mod shell;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use anyhow::Context;

pub use enter::{InNs, NsRuntime};

use crate::link::{tun::Tun, Counters, DirConfig, Mover};
use crate::proxy::LinkConfig;

/// Every namespace netrun makes is named `netrun-<pid>-<n>-<role>`.
pub const PREFIX: &str = "netrun-";

/// A host of the topology, each in its own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Clients,
    Proxy,
    Origin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Clients, Role::Proxy, Role::Origin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clients => "clients",
            Role::Proxy => "proxy",
            Role::Origin => "origin",
        }
    }
}

/// The three links: their scenario names, their two ends, and the subnet
/// each gets (`198.18.<n>.0/24`, the first end `.1`, the second `.2`).
/// 198.18.0.0/15 is reserved for benchmarking network devices (RFC 2544):
/// no real network uses it, and these addresses exist only in the namespaces.
pub const LINKS: [(&str, Role, Role, u8); 3] = [
    ("clients_proxy", Role::Clients, Role::Proxy, 1),
    ("proxy_origin", Role::Proxy, Role::Origin, 2),
    ("clients_origin", Role::Clients, Role::Origin, 3),
];

/// `second`'s address on link `subnet` (see [`LINKS`]).
fn address(subnet: u8, second: bool) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, subnet, if second { 2 } else { 1 })
}

/// `second`'s IPv6 address on link `subnet`: `2001:2:0:<subnet>::1` or
/// `::2` in a /64. 2001:2::/48 is reserved for benchmarking (RFC 5180), as
/// 198.18.0.0/15 is on the IPv4 side.
fn address6(subnet: u8, second: bool) -> Ipv6Addr {
    Ipv6Addr::new(
        0x2001,
        2,
        0,
        subnet.into(),
        0,
        0,
        0,
        if second { 2 } else { 1 },
    )
}

/// The proxy, as the clients reach it over IPv6.
pub fn proxy_addr6() -> IpAddr {
    address6(1, true).into()
}

/// The origin, as the proxy reaches it over IPv6.
pub fn origin_addr_for_proxy6() -> IpAddr {
    address6(2, true).into()
}

/// The origin, as the clients reach it directly over IPv6.
pub fn origin_addr_for_clients6() -> IpAddr {
    address6(3, true).into()
}

/// The proxy, as the clients reach it.
pub fn proxy_addr() -> IpAddr {
    address(1, true).into()
}

/// The origin, as the proxy reaches it.
pub fn origin_addr_for_proxy() -> IpAddr {
    address(2, true).into()
}

/// The origin, as the clients reach it directly.
pub fn origin_addr_for_clients() -> IpAddr {
    address(3, true).into()
}

/// How each link is made, in [`LINKS`] order.
pub type LinkSetups = [LinkSetup; 3];

/// One link between two namespaces.
#[derive(Debug, Clone)]
pub enum LinkSetup {
    /// A veth pair with these knobs applied by `tc` on both ends.
    Kernel(LinkConfig),
    /// Two TUN devices joined by netrun's packet link: from the first end
    /// to the second, and back.
    Userspace(Box<[DirConfig; 2]>),
}

/// The namespaces of one run of a variant, with a runtime in each; dropping
/// it stops the runtimes and deletes the namespaces (their veths and qdiscs
/// go with them).
pub struct Hosts {
    names: Vec<(Role, String)>,
    runtimes: Vec<(Role, NsRuntime)>,
    /// The user-space links, by their scenario name.
    movers: Vec<(&'static str, Mover)>,
}

impl Hosts {
    /// Makes the namespaces, links, addresses and qdiscs (runs `ip` and
    /// `tc`: blocking, a few dozen milliseconds). Whatever was made before a
    /// failure is removed again. With `congestion`, every TCP connection
    /// over the links uses that algorithm (see [`congestion`]).
    pub fn create(links: &LinkSetups, congestion: Option<&str>) -> anyhow::Result<Hosts> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = format!("{PREFIX}{}-{n}", std::process::id());
        let mut hosts = Hosts {
            names: Vec::new(),
            runtimes: Vec::new(),
            movers: Vec::new(),
        };
        for role in Role::ALL {
            let name = format!("{base}-{}", role.as_str());
            cmd::run("ip", &["netns", "add", &name])?;
            hosts.names.push((role, name.clone()));
            cmd::run("ip", &["-n", &name, "link", "set", "lo", "up"])?;
        }
        for ((name, a, b, subnet), setup) in LINKS.iter().zip(links) {
            match setup {
                LinkSetup::Kernel(shape) => hosts.link(*a, *b, *subnet, shape)?,
                LinkSetup::Userspace(dirs) => {
                    let mover = hosts.packet_link(*a, *b, *subnet, dirs)?;
                    hosts.movers.push((name, mover));
                }
            }
            if let Some(cc) = congestion {
                for (role, second) in [(*a, false), (*b, true)] {
                    let dev = iface(if second { *a } else { *b });
                    let ns = hosts.name(role).to_string();
                    congestion::set_on_device(Some(&ns), &dev, address(*subnet, second), 24, cc)?;
                    congestion::set_on_device6(Some(&ns), &dev, address6(*subnet, second), cc)?;
                }
            }
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(2));
        for (role, name) in &hosts.names {
            let rt = NsRuntime::new(&ns_path(name), role.as_str(), threads)?;
            hosts.runtimes.push((*role, rt));
        }
        Ok(hosts)
    }

    /// One veth pair between `a` and `b`, each end named after the host it
    /// leads to, addressed, up, and shaped on its egress.
    fn link(&self, a: Role, b: Role, subnet: u8, kernel: &LinkConfig) -> anyhow::Result<()> {
        let (na, nb) = (self.name(a), self.name(b));
        let (dev_a, dev_b) = (iface(b), iface(a));
        cmd::run(
            "ip",
            &[
                "-n", na, "link", "add", &dev_a, "type", "veth", "peer", "name", &dev_b, "netns",
                nb,
            ],
        )?;
        for (ns, dev, second) in [(na, &dev_a, false), (nb, &dev_b, true)] {
            let addr = format!("{}/24", address(subnet, second));
            cmd::run("ip", &["-n", ns, "addr", "add", &addr, "dev", dev])?;
            shell::add_v6(Some(ns), dev, address6(subnet, second))?;
            cmd::run("ip", &["-n", ns, "link", "set", dev, "up"])?;
            for args in shape::tc_commands(dev, kernel) {
                let mut full = vec!["-n", ns];
                full.extend(args.iter().map(String::as_str));
                cmd::run("tc", &full)?;
            }
        }
        Ok(())
    }

    /// A TUN device in `a` and one in `b` (named and addressed as the veth
    /// ends would be) and netrun's packet link between them.
    fn packet_link(
        &self,
        a: Role,
        b: Role,
        subnet: u8,
        dirs: &[DirConfig; 2],
    ) -> anyhow::Result<Mover> {
        let (na, nb) = (self.name(a), self.name(b));
        let (dev_a, dev_b) = (iface(b), iface(a));
        let tun_a = enter::within(&ns_path(na), || Tun::create(&dev_a))??;
        let tun_b = enter::within(&ns_path(nb), || Tun::create(&dev_b))??;
        for (ns, dev, second) in [(na, &dev_a, false), (nb, &dev_b, true)] {
            shell::configure(Some(ns), dev, address(subnet, second), 24)?;
            shell::add_v6(Some(ns), dev, address6(subnet, second))?;
        }
        let [ab, ba] = dirs.clone();
        Mover::start(&format!("netrun-link-{subnet}"), tun_a, tun_b, ab, ba)
            .context("cannot start a packet link's thread")
    }

    /// The counts of each user-space link so far: its scenario name, and
    /// (first end → second, back).
    pub fn link_counters(&self) -> Vec<(&'static str, [Counters; 2])> {
        self.movers
            .iter()
            .map(|(name, m)| (*name, m.counters()))
            .collect()
    }

    fn name(&self, role: Role) -> &str {
        self.names
            .iter()
            .find(|(r, _)| *r == role)
            .map_or("", |(_, n)| n.as_str())
    }

    /// The namespaces' names (`netrun-<pid>-<n>-<role>`).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|(_, n)| n.as_str())
    }

    /// The runtime living in `role`'s namespace.
    pub fn runtime(&self, role: Role) -> &NsRuntime {
        self.runtimes
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, rt)| rt)
            .unwrap_or_else(|| unreachable!("Hosts::create makes a runtime per role"))
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        self.movers.clear();
        self.runtimes.clear();
        for (_, name) in self.names.drain(..).rev() {
            if let Err(e) = cmd::run("ip", &["netns", "del", &name]) {
                tracing::warn!("cannot remove network namespace {name}: {e:#}");
            }
        }
    }
}

/// The interface that leads to `to`.
fn iface(to: Role) -> String {
    format!("{PREFIX}{}", to.as_str())
}

fn ns_path(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

/// What [`cleanup`] did: the namespaces removed, and those it could not
/// remove with the reason.
#[derive(Debug, Default)]
pub struct Cleanup {
    pub removed: Vec<String>,
    pub failed: Vec<(String, anyhow::Error)>,
}

/// Removes the namespaces netrun left behind (a crash, `kill -9`): every
/// namespace of netrun's exact pattern whose owning process is gone (a
/// running netrun's are left alone; one killed but not yet reaped, state
/// Z, is gone). Names that merely start with `netrun-` are not netrun's and
/// are never touched. Their veths and qdiscs go with them. One that cannot
/// be removed does not stop the others.
pub fn cleanup() -> anyhow::Result<Cleanup> {
    let list = cmd::run("ip", &["netns", "list"]).context("cannot list network namespaces")?;
    let mut done = Cleanup::default();
    for name in leftovers(&list, process_alive) {
        match cmd::run("ip", &["netns", "del", &name]) {
            Ok(_) => done.removed.push(name),
            Err(e) => done.failed.push((name, e)),
        }
    }
    Ok(done)
}

/// Whether process `pid` still runs: it exists and is not a zombie (dead,
/// waiting to be reaped) or dead.
fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S ...`: the state follows the last `)` (comm may hold one).
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, Some("Z" | "X" | "x") | None)
}

/// The owner's pid of a name netrun makes: `netrun-<pid>-<n>-<role>` (a
/// variant's namespaces), `netrun-<pid>-link<n>` (a `netrun link`'s) or
/// `netrun-<pid>-probe` (the netem probe); `None` for any other name.
fn owner(name: &str) -> Option<u32> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let rest = name.strip_prefix(PREFIX)?;
    let parts: Vec<&str> = rest.split('-').collect();
    let ours = match parts.as_slice() {
        [pid, n, role] => digits(pid) && digits(n) && Role::ALL.iter().any(|r| r.as_str() == *role),
        [pid, "probe"] => digits(pid),
        [pid, link] => digits(pid) && link.strip_prefix("link").is_some_and(digits),
        _ => false,
    };
    if !ours {
        return None;
    }
    parts[0].parse().ok()
}

/// The netrun namespaces in `ip netns list` output whose owner is not
/// `alive`; names not of netrun's pattern are left alone.
fn leftovers(list: &str, alive: impl Fn(u32) -> bool) -> Vec<String> {
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| owner(name).is_some_and(|pid| !alive(pid)))
        .map(str::to_string)
        .collect()
}

/// Whether the kernel has `sch_netem`; `None` when it cannot be told (no
/// root, no `tc`). Probed once per process in a scratch namespace.
pub fn netem_available() -> Option<bool> {
    static PROBED: OnceLock<Option<bool>> = OnceLock::new();
    *PROBED.get_or_init(|| {
        if std::path::Path::new("/sys/module/sch_netem").exists() {
            return Some(true);
        }
        if cmd::unavailable("probing sch_netem").is_some() {
            return None;
        }
        let name = format!("{PREFIX}{}-probe", std::process::id());
        cmd::run("ip", &["netns", "add", &name]).ok()?;
        let probe = cmd::run(
            "tc",
            &[
                "-n", &name, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
            ],
        );
        if let Err(e) = cmd::run("ip", &["netns", "del", &name]) {
            tracing::warn!("cannot remove network namespace {name}: {e:#}");
        }
        Some(probe.is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_leaves_running_owners_alone() {
        let list = "netrun-10-0-clients (id: 3)\nnetrun-10-0-proxy\nnetrun-20-1-origin (id: 5)\n\
                    other\nnetrun-stray\nnetrun-foo\nnetrun--x\nnetrun-20-1-db\nnetrun-x-1-proxy\n\
                    netrun-30-probe\nnetrun-20-1-origin-extra\nnetrun-40-link0\nnetrun-40-linkx\n";
        assert_eq!(
            leftovers(list, |pid| pid == 10),
            ["netrun-20-1-origin", "netrun-30-probe", "netrun-40-link0"],
            "only names of netrun's exact pattern, never `netrun-foo` or `netrun--x`"
        );
    }

    /// A killed process not yet reaped (state Z) is gone; this one is not.
    #[test]
    fn a_zombie_owner_counts_as_gone() {
        assert!(process_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Exited and unreaped: a zombie until wait(). Poll its state, for
        // as long as a starved host may take to run `true` (bounded).
        let mut zombie = false;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat
                .rfind(')')
                .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'))
            {
                zombie = true;
                break;
            }
            std::thread::yield_now();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(zombie, "the child became a zombie");
        assert!(!process_alive(pid));
        child.wait().unwrap();
    }

    #[test]
    fn each_link_has_its_own_subnet_in_the_benchmarking_range() {
        assert_eq!(proxy_addr().to_string(), "198.18.1.2");
        assert_eq!(origin_addr_for_proxy().to_string(), "198.18.2.2");
        assert_eq!(origin_addr_for_clients().to_string(), "198.18.3.2");
        assert!(iface(Role::Clients).len() <= 15, "IFNAMSIZ");
    }
}
