//! IPv6: a listener on `[::]` is dual-stack (IPv4 clients too), a scenario
//! on `host = "::1"` runs HTTP and UDP through the proxy, and with
//! `hosts = "netns"` and `host = "::"` every link carries IPv6 (root only;
//! skipped with the reason elsewhere).

#[path = "common/csv.rs"]
mod csv_files;
#[path = "common/netns.rs"]
mod netns_support;

use std::path::Path;
use std::time::Duration;

use csv_files::read_csv;

/// Whether this machine has an IPv6 loopback; says why a test skips.
fn ipv6_here(test: &str) -> bool {
    let ok = std::net::TcpListener::bind("[::1]:0").is_ok();
    if !ok {
        eprintln!("skipped {test}: no IPv6 loopback here");
    }
    ok
}

#[tokio::test]
async fn a_listener_on_the_ipv6_wildcard_takes_ipv4_clients_too() {
    if !ipv6_here("dual stack") {
        return;
    }
    let any: std::net::SocketAddr = "[::]:0".parse().unwrap();
    let tcp = netrun::net::bind_tcp(any, "--http").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    for to in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let connect = tokio::net::TcpStream::connect(&to);
        tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{to}: {e}"));
        let (_, peer) = tcp.accept().await.unwrap();
        assert!(peer.is_ipv6(), "{peer}");
    }
    let udp = netrun::net::bind_udp(any, "--udp").await.unwrap();
    let port = udp.local_addr().unwrap().port();
    let v4 = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    v4.send_to(b"hi", ("127.0.0.1", port)).await.unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = tokio::time::timeout(Duration::from_secs(10), udp.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"hi");
    assert_eq!(
        from.to_string(),
        format!("[::ffff:127.0.0.1]:{}", v4.local_addr().unwrap().port())
    );
}

/// Runs `body` as scenario `name` from a folder with the repository's www;
/// returns its summary rows.
fn run(
    name: &str,
    body: &str,
) -> (
    tempfile::TempDir,
    Vec<std::collections::HashMap<String, String>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    let file = dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            "name = \"{name}\"\n{}",
            body.replace("WWW", &www.display().to_string())
        ),
    )
    .unwrap();
    let out = assert_cmd::Command::cargo_bin("netrun")
        .unwrap()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .timeout(Duration::from_secs(240))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = read_csv(&dir.path().join(format!("out/{name}.csv")));
    (dir, rows)
}

const WORKLOADS: &str = "\
[[workload]]\nkind = \"http\"\nname = \"web\"\npaths = [\"/index.html\"]\nrequests = 20\n\
[[workload]]\nkind = \"http\"\nname = \"direct\"\ntarget = \"origin\"\npaths = [\"/index.html\"]\nrequests = 5\n\
[[workload]]\nkind = \"udp\"\nname = \"echo\"\ncount = 20\ninterval = \"1ms\"\n";

fn assert_clean(rows: &[std::collections::HashMap<String, String>]) {
    for name in ["web", "direct", "echo"] {
        let r = rows
            .iter()
            .find(|r| r["workload"] == name)
            .unwrap_or_else(|| panic!("no row {name}: {rows:?}"));
        assert!(["0", ""].contains(&r["errors"].as_str()), "{r:?}");
        assert_eq!(r["received"], r["sent"], "{r:?}");
    }
}

#[test]
fn a_scenario_on_the_ipv6_loopback_runs_http_and_udp_through_the_proxy() {
    if !ipv6_here("ipv6 loopback scenario") {
        return;
    }
    let (_dir, rows) = run(
        "v6",
        &format!("[topology]\nhost = \"::1\"\nwww = \"WWW\"\n{WORKLOADS}"),
    );
    assert_clean(&rows);
}

#[test]
fn namespaces_link_over_ipv6_with_host_unspecified() {
    if let Some(why) = netns_support::skip_reason() {
        eprintln!("skipped namespaces over IPv6: {why}");
        return;
    }
    let (dir, rows) = run(
        "v6netns",
        &format!("[topology]\nhosts = \"netns\"\nhost = \"::\"\nwww = \"WWW\"\n{WORKLOADS}"),
    );
    assert_clean(&rows);
    let web = rows.iter().find(|r| r["workload"] == "web").unwrap();
    assert_eq!(web["topology"], "netns", "{web:?}");
    let record = std::fs::read_to_string(dir.path().join("out/v6netns/run.json")).unwrap();
    assert!(record.contains("over IPv6"), "{record}");
}
