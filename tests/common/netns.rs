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

/// Interfaces named `netrun-*` in this (the root) namespace: netrun never
/// makes any here, so any is a leak.
pub fn root_links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link show");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with("netrun-"))
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
