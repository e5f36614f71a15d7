//! `netrun serve` as a child process on port 0, for tests whose load
//! agents are other processes: it prints the addresses it bound, which the
//! tests put into their scenarios.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The running origin, stopped when dropped.
pub struct Origin {
    child: Child,
    pub http: SocketAddr,
    pub udp: SocketAddr,
}

impl Origin {
    /// Runs `cmd` (the netrun binary, maybe wrapped to enter a namespace)
    /// as `serve` on port 0 of `ip` for HTTP and UDP, serving `www/`.
    pub fn spawn(mut cmd: Command, ip: IpAddr) -> Origin {
        let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
        let mut child = cmd
            .arg("serve")
            .arg("--http")
            .arg(format!("{ip}:0"))
            .arg("--udp")
            .arg(format!("{ip}:0"))
            .arg("--www")
            .arg(&www)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("netrun serve starts");
        // `origin http://ADDR  udp ADDR  www DIR`: the real addresses.
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("address line");
        let words: Vec<&str> = line.split_whitespace().collect();
        let http = words[1].trim_start_matches("http://").parse().expect(&line);
        let udp = words[3].parse().expect(&line);
        Origin { child, http, udp }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
