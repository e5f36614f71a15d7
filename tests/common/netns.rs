//! Load agents in their own network namespaces, for tests that run as root:
//! one namespace per agent, joined to the test's own namespace (where the
//! origin runs) by a veth pair. Every name starts with `netrun-` and the
//! test's pid, so `netrun cleanup` would find leftovers of a killed test;
//! the guard removes them all when dropped.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

/// The agents' namespaces; dropped, they are deleted with their veths.
pub struct Agents {
    namespaces: Vec<String>,
    host_links: Vec<String>,
    octet: u8,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Agents {
    /// `n` namespaces, agent `i` (from 1) at 10.X.i.2 behind 10.X.i.1 on
    /// this side; the reason when they cannot be made (not root, no `ip`,
    /// no namespace support).
    pub fn setup(n: u8) -> Result<Agents, String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root".to_string());
        }
        let pid = std::process::id();
        // A /24 per agent in a 10.x range picked by pid, so two test
        // processes at once do not share addresses.
        let octet = 200 + (pid % 50) as u8;
        let mut agents = Agents {
            namespaces: Vec::new(),
            host_links: Vec::new(),
            octet,
        };
        for i in 1..=n {
            let ns = format!("netrun-{pid}-agent{i}");
            // Link names hold at most 15 bytes: the pid in hex keeps them short.
            let host = format!("netrun-{pid:x}h{i}");
            let peer = format!("netrun-{pid:x}a{i}");
            ip(&["netns", "add", &ns])?;
            agents.namespaces.push(ns.clone());
            ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer])?;
            agents.host_links.push(host.clone());
            ip(&["link", "set", &peer, "netns", &ns])?;
            ip(&["addr", "add", &format!("10.{octet}.{i}.1/24"), "dev", &host])?;
            ip(&["link", "set", &host, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &ns, "ip"];
                all.extend_from_slice(args);
                ip(&all)
            };
            inside(&["addr", "add", &format!("10.{octet}.{i}.2/24"), "dev", &peer])?;
            inside(&["link", "set", &peer, "up"])?;
            inside(&["link", "set", "lo", "up"])?;
            inside(&[
                "route",
                "add",
                "default",
                "via",
                &format!("10.{octet}.{i}.1"),
            ])?;
        }
        Ok(agents)
    }

    /// Where the origin listens so every agent reaches it: this side of
    /// the first agent's link (the others route to it through their own).
    pub fn origin_ip(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, self.octet, 1, 1))
    }

    /// `program` run inside agent `i`'s namespace (from 1).
    pub fn command(&self, i: usize, program: &std::path::Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.namespaces[i - 1]])
            .arg(program);
        cmd
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and so the pair.
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        for link in &self.host_links {
            let _ = Command::new("ip").args(["link", "del", link]).output();
        }
    }
}
