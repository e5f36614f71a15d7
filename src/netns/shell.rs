//! `netrun link`'s namespace, as Mahimahi's shells make one: a fresh network
//! namespace whose only way out is a TUN device, joined by netrun's packet
//! link to a TUN device in the caller's namespace (the "host" end, whose
//! address a command inside reaches as `NETRUN_HOST`). The TUN devices go
//! when their descriptors close (with the process, even on `kill -9`); the
//! namespace is removed on drop, or by `netrun cleanup` after a crash.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;

use super::{cmd, congestion, enter, ns_path, PREFIX};
use crate::link::{tun::Tun, Counters, DirConfig, Mover};

/// The namespace, the link and the addresses of one `netrun link`.
pub struct Shell {
    ns: String,
    host: Ipv4Addr,
    inside: Ipv4Addr,
    mover: Option<Mover>,
}

/// The TUN device inside the namespace.
const INSIDE_DEV: &str = "netrun0";

impl Shell {
    /// Makes the namespace and the link (`up` shapes what leaves the
    /// namespace, `down` what comes back). Blocking: runs `ip`. With
    /// `congestion`, TCP over the link uses that algorithm at both ends.
    pub fn create(
        up: DirConfig,
        down: DirConfig,
        congestion: Option<&str>,
    ) -> anyhow::Result<Shell> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let ns = format!("{PREFIX}{}-link{n}", std::process::id());
        let (subnet, host_dev, host_tun) = claim_subnet()?;
        let mut shell = Shell {
            ns: ns.clone(),
            host: Ipv4Addr::new(198, 19, subnet, 1),
            inside: Ipv4Addr::new(198, 19, subnet, 2),
            mover: None,
        };
        cmd::run("ip", &["netns", "add", &ns])?;
        cmd::run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        let inside_tun = enter::within(&ns_path(&ns), || Tun::create(INSIDE_DEV))??;
        configure(None, &host_dev, shell.host, 30)?;
        configure(Some(&ns), INSIDE_DEV, shell.inside, 30)?;
        let mut default = vec!["-n", &ns, "route", "add", "default", "dev", INSIDE_DEV];
        if let Some(cc) = congestion {
            default.extend(["congctl", cc]);
            congestion::set_on_device(None, &host_dev, shell.host, 30, cc)?;
            congestion::set_on_device(Some(&ns), INSIDE_DEV, shell.inside, 30, cc)?;
        }
        cmd::run("ip", &default)?;
        let mover = Mover::start("netrun-link", inside_tun, host_tun, up, down)
            .context("cannot start the packet link's thread")?;
        shell.mover = Some(mover);
        Ok(shell)
    }

    /// The namespace's name, for `ip netns exec`.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// The host end's address (`NETRUN_HOST`).
    pub fn host(&self) -> Ipv4Addr {
        self.host
    }

    /// The namespace end's address.
    pub fn inside(&self) -> Ipv4Addr {
        self.inside
    }

    /// Stops the link and returns its counts (uplink, downlink); the
    /// namespace goes on drop.
    pub fn stop(&mut self) -> Option<[Counters; 2]> {
        self.mover.take().map(Mover::stop)
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        self.mover.take();
        if let Err(e) = cmd::run("ip", &["netns", "del", &self.ns]) {
            tracing::warn!("cannot remove network namespace {}: {e:#}", self.ns);
        }
    }
}

/// Addresses `dev` (in `ns`, or here) with `addr/prefix`, without IPv6
/// link-local addresses (whose neighbour discovery would cross the link
/// too), at a 1500-byte MTU, and brings it up.
pub(super) fn configure(
    ns: Option<&str>,
    dev: &str,
    addr: Ipv4Addr,
    prefix: u8,
) -> anyhow::Result<()> {
    let cidr = format!("{addr}/{prefix}");
    let steps: [&[&str]; 3] = [
        &[
            "link",
            "set",
            "dev",
            dev,
            "addrgenmode",
            "none",
            "mtu",
            "1500",
        ],
        &["addr", "add", &cidr, "dev", dev],
        &["link", "set", "dev", dev, "up"],
    ];
    for step in steps {
        let mut args: Vec<&str> = ns.map_or(Vec::new(), |n| vec!["-n", n]);
        args.extend_from_slice(step);
        cmd::run("ip", &args)?;
    }
    Ok(())
}

/// Adds `addr/64` to `dev` (in `ns`, or here) without duplicate address
/// detection, so the address is usable at once rather than tentative for a
/// second or two: the link is netrun's own, nothing else can hold it.
pub(super) fn add_v6(ns: Option<&str>, dev: &str, addr: std::net::Ipv6Addr) -> anyhow::Result<()> {
    let cidr = format!("{addr}/64");
    let mut args: Vec<&str> = ns.map_or(Vec::new(), |n| vec!["-n", n]);
    args.extend_from_slice(&["-6", "addr", "add", &cidr, "dev", dev, "nodad"]);
    cmd::run("ip", &args)?;
    Ok(())
}

/// A `198.19.<k>.0/30` no interface here uses yet (198.18.0.0/15 is for
/// benchmarks, RFC 2544; the scenarios' namespaces use 198.18.x.x), claimed
/// by making its host-end TUN device `netrun-l<k>`: of several `netrun
/// link`s starting at once, each gets its own (the kernel refuses a second
/// owner of a device name with `EBUSY`, and the next subnet is tried),
/// instead of all but one failing on the first free one.
fn claim_subnet() -> anyhow::Result<(u8, String, Tun)> {
    let used = cmd::run("ip", &["-o", "-4", "addr", "show"])?;
    for k in 0..=255u8 {
        if used.contains(&format!(" 198.19.{k}.")) {
            continue;
        }
        let dev = format!("{PREFIX}l{k}");
        // None: another link made it since `ip addr` looked; try the next.
        if let Some(tun) = Tun::create_unless_taken(&dev)? {
            return Ok((k, dev, tun));
        }
    }
    anyhow::bail!("every 198.19.<k>.0/30 subnet is taken by other netrun links")
}
