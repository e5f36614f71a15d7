//! UDP segmentation offload (GSO) through `netrun link`'s TUN devices, which
//! offer no checksum offload. Older kernels refused a segmented send
//! routed to such a device (EIO: quic-go issue #3911, 2023); newer ones
//! (6.18 here) segment and checksum it in software. Either way the batched sends of netrun's echo
//! and forwarder (`udp_batch::try_send`) must deliver every datagram of a
//! run whole, once, in order: sent on as one segmented send, or, once
//! refused, segmentation off for that socket and the run resent datagram by
//! datagram. Needs root and iproute2 (CI runs as root); elsewhere it says
//! why it was skipped.

#[path = "common/netns.rs"]
mod netns_support;

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use netns_support::{skip_reason, Leftovers};
use netrun::udp_batch::{try_send, RecvBatch, UdpIo};

const NETRUN: &str = env!("CARGO_BIN_EXE_netrun");

/// The link's inside address from its start line on stderr
/// (`NETRUN_HOST=198.19.<n>.1`: the inside end is `198.19.<n>.2`).
fn inside_of(start_line: &str) -> Option<Ipv4Addr> {
    let host: Ipv4Addr = start_line
        .split("NETRUN_HOST=")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let [a, b, c, _] = host.octets();
    Some(Ipv4Addr::new(a, b, c, 2))
}

#[tokio::test(flavor = "current_thread")]
async fn a_segmented_run_through_a_tun_link_arrives_whole_once_and_in_order() {
    if let Some(why) = skip_reason() {
        eprintln!(
            "skipped a_segmented_run_through_a_tun_link_arrives_whole_once_and_in_order: {why}"
        );
        return;
    }
    // `netrun serve` inside the link's namespace: its replies cross the
    // namespace's TUN end, as the test's datagrams cross the host's.
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    let mut child = Command::new(NETRUN)
        .args(["link", "--", NETRUN, "serve", "--http", "0.0.0.0:0"])
        .args(["--udp", "0.0.0.0:0", "--www"])
        .arg(&www)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = Leftovers(child.id());
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let inside = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no start line");
        if let Some(ip) = inside_of(&line) {
            break ip;
        }
    };
    // The rest of stderr (the counters at the end), drained meanwhile.
    let drain = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        rest
    });
    // `origin http://ADDR  udp 0.0.0.0:PORT  www DIR`, once it listens.
    line.clear();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let udp: SocketAddr = line.split_whitespace().nth(3).unwrap().parse().unwrap();
    let echo = SocketAddr::new(IpAddr::V4(inside), udp.port());

    let sock = UdpIo::new(std::net::UdpSocket::bind("0.0.0.0:0").unwrap()).unwrap();
    assert!(sock.segments_runs(), "segmentation is tried first");
    // 20 datagrams of one size to one peer: one segmented send, if the
    // kernel takes it; then a marker of another size, sent after them.
    let payloads: Vec<Vec<u8>> = (0..20u8)
        .map(|i| vec![i; 200])
        .chain([b"end".to_vec()])
        .collect();
    let msgs: Vec<(&[u8], Option<SocketAddr>)> =
        payloads.iter().map(|p| (&p[..], Some(echo))).collect();
    let mut sent = 0;
    while sent < msgs.len() {
        sent += try_send(&sock, &msgs[sent..]).expect("a refused segmentation is not an error");
    }
    eprintln!(
        "a segmented send into the TUN link was {} on this kernel",
        if sock.segments_runs() {
            "taken"
        } else {
            "refused: sent datagram by datagram"
        }
    );

    // The link keeps order and the echo answers in arrival order: what
    // comes back before the marker is every datagram, once, whole.
    let mut batch = RecvBatch::new();
    let mut got: Vec<Vec<u8>> = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while got.last().map(|p| &p[..]) != Some(b"end") {
            sock.readable().await.unwrap();
            match batch.try_recv(&sock) {
                Ok(_) => got.extend(batch.iter().map(|(p, _)| p.to_vec())),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("every reply and the marker back; got {}", got.len()));
    assert_eq!(got, payloads);

    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let status = child.wait().unwrap();
    let rest = drain.join().unwrap();
    assert!(status.code().is_some(), "the link ends: {status:?}\n{rest}");
}
