//! Load agents in network namespaces, for tests that run as root: an
//! `origin` namespace and one per agent, each agent joined to the origin's
//! by its own veth pair, made inside the namespaces (nothing appears in the
//! machine's own namespace). Names are `netrun-<pid>-…`, so `netrun
//! cleanup` finds the leftovers of a killed test; the guard removes them all
//! when dropped.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

/// The namespaces; dropped, they are deleted (their veths go with them).
pub struct Agents {
    origin: String,
    agents: Vec<String>,
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
    /// The origin's namespace and `n` agents': agent `i` (from 1) at
    /// 10.0.i.2, the origin at 10.0.i.1 on its link to it. The reason
    /// when they cannot be made (not root, no `ip`, no namespaces).
    pub fn setup(n: u8) -> Result<Agents, String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if !rustix::process::geteuid().is_root() {
            return Err("not root".to_string());
        }
        let pid = std::process::id();
        let origin = format!("netrun-{pid}-origin");
        ip(&["netns", "add", &origin])?;
        let mut made = Agents {
            origin: origin.clone(),
            agents: Vec::new(),
        };
        ip(&["-n", &origin, "link", "set", "lo", "up"])?;
        for i in 1..=n {
            let ns = format!("netrun-{pid}-agent{i}");
            ip(&["netns", "add", &ns])?;
            made.agents.push(ns.clone());
            let (here, there) = (format!("netrun-o{i}"), format!("netrun-a{i}"));
            // Both ends are made in their namespaces at once.
            ip(&[
                "-n", &origin, "link", "add", &here, "type", "veth", "peer", "name", &there,
                "netns", &ns,
            ])?;
            ip(&[
                "-n",
                &origin,
                "addr",
                "add",
                &format!("10.0.{i}.1/24"),
                "dev",
                &here,
            ])?;
            ip(&["-n", &origin, "link", "set", &here, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("10.0.{i}.2/24"),
                "dev",
                &there,
            ])?;
            ip(&["-n", &ns, "link", "set", &there, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                &format!("10.0.{i}.1"),
            ])?;
        }
        Ok(made)
    }

    /// Where the origin listens so every agent reaches it: its end of the
    /// first agent's link (the others route to it through their own).
    pub fn origin_ip(&self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1))
    }

    /// `program` run in the origin's namespace.
    pub fn in_origin(&self, program: &std::path::Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.origin]).arg(program);
        cmd
    }

    /// `program` run in agent `i`'s namespace (from 1).
    pub fn in_agent(&self, i: usize, program: &std::path::Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.agents[i - 1]])
            .arg(program);
        cmd
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends in it, and so the pairs.
        for ns in self.agents.iter().chain(std::iter::once(&self.origin)) {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}
