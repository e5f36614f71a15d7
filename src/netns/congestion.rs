//! TCP congestion control for the links netrun makes (`[topology]
//! congestion`, `netrun link --congestion`): set as a route attribute
//! (`congctl`) on the routes of netrun's own devices, so every TCP
//! connection over them uses it, both ends, whatever program opens it.
//! A network namespace other than the first may only make an algorithm
//! its default when the host allows it (`tcp_allowed_congestion_control`,
//! often just reno and bbr); a route's `congctl` takes any algorithm the
//! kernel has loaded, and leaves the host's own default alone.

use std::net::Ipv4Addr;
use std::process::Command;

use super::cmd;
use crate::error::Error;

const AVAILABLE: &str = "/proc/sys/net/ipv4/tcp_available_congestion_control";

/// Whether `name` can be the name of an algorithm (what the kernel takes:
/// at most 15 bytes; letters, digits, `_` and `-`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The algorithms the kernel has now.
fn available() -> Vec<String> {
    std::fs::read_to_string(AVAILABLE)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Makes sure the kernel has `name`, loading its module (`modprobe
/// tcp_<name>`) when it is missing; the error (exit 2) lists what it has.
pub fn ensure(name: &str, asker: &str) -> Result<(), Error> {
    if available().iter().any(|a| a == name) {
        return Ok(());
    }
    // Built as a module on most kernels (tcp_cubic is built in, tcp_bbr,
    // tcp_htcp… are modules). A failure shows as the name still missing.
    let _ = Command::new("modprobe").arg(format!("tcp_{name}")).output();
    let now = available();
    if now.iter().any(|a| a == name) {
        return Ok(());
    }
    Err(Error::input(format!(
        "{asker}: this kernel has no TCP congestion control `{name}` (`modprobe tcp_{name}` did \
         not load it); {AVAILABLE} lists: {}; pick one of those",
        if now.is_empty() {
            "nothing (cannot read it)".to_string()
        } else {
            now.join(" ")
        }
    )))
}

/// The host's default algorithm (what a link without `congestion` uses).
pub fn host_default() -> Option<String> {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Puts `congctl name` on the connected route of `dev` (in `ns`, or here),
/// whose address is `addr/prefix`: the route `ip addr add` made, replaced
/// by the same route with the attribute.
pub fn set_on_device(
    ns: Option<&str>,
    dev: &str,
    addr: Ipv4Addr,
    prefix: u8,
    name: &str,
) -> anyhow::Result<()> {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let net = Ipv4Addr::from(u32::from(addr) & mask);
    let (dst, src) = (format!("{net}/{prefix}"), addr.to_string());
    let mut args: Vec<&str> = ns.map_or(Vec::new(), |n| vec!["-n", n]);
    args.extend_from_slice(&[
        "route", "replace", &dst, "dev", dev, "proto", "kernel", "scope", "link", "src", &src,
        "congctl", name,
    ]);
    cmd::run("ip", &args)?;
    Ok(())
}

/// The same on `dev`'s IPv6 /64 route (`addr/64`, the route `ip -6 addr
/// add` made at metric 256).
pub fn set_on_device6(
    ns: Option<&str>,
    dev: &str,
    addr: std::net::Ipv6Addr,
    name: &str,
) -> anyhow::Result<()> {
    let s = addr.segments();
    let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
    let dst = format!("{net}/64");
    let mut args: Vec<&str> = ns.map_or(Vec::new(), |n| vec!["-n", n]);
    args.extend_from_slice(&[
        "-6", "route", "replace", &dst, "dev", dev, "proto", "kernel", "metric", "256", "congctl",
        name,
    ]);
    cmd::run("ip", &args)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_the_kernel_takes() {
        for ok in ["cubic", "bbr", "reno", "htcp", "bbr2", "dctcp"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "cubic bbr", "a/b", "sixteen_letters_", "cubic;rm"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
