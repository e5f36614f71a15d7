//! Network namespaces in tests (`hosts = "netns"`): whether this machine
//! can make them (root, `ip`), which ones a process owns (netrun names them
//! `netrun-<pid>-<n>-<role>`), and a guard that removes a test's leftovers
//! whatever happens to the test.

#![allow(dead_code)]

use std::process::Command;

/// Why namespace tests cannot run here (not root, no `ip`), or `None`.
pub fn skip_reason() -> Option<String> {
    netrun::netns::cmd::netns_unavailable()
}

/// The netrun namespaces owned by process `pid`.
pub fn namespaces_of(pid: u32) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let prefix = format!("netrun-{pid}-");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&prefix))
        .map(String::from)
        .collect()
}

/// Interfaces in this (the root) namespace named as a `hosts = "netns"`
/// run names its link ends (`netrun-clients`, `-proxy`, `-origin`): those
/// are only ever made inside the run's namespaces, so any here is a leak.
/// Other `netrun-*` devices (a `netrun link`'s host-side TUN, `netrun-l<n>`)
/// belong to other runs on the machine and are not looked at.
pub fn root_links() -> Vec<String> {
    const ENDS: [&str; 3] = ["netrun-clients", "netrun-proxy", "netrun-origin"];
    root_devices()
        .into_iter()
        .filter(|n| ENDS.contains(&n.as_str()))
        .collect()
}

/// Every interface name in this namespace (a veth's `@peer` cut off).
pub fn root_devices() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link show");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// Removes the namespaces of `pid` when dropped (a failed assertion
/// included), so a broken test leaves nothing behind for the next.
pub struct Leftovers(pub u32);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for name in namespaces_of(self.0) {
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}
