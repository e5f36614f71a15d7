//! The readers of results folders on any files: `compare`'s and the HTML
//! report's summary readers, `run.json`, the sample CSVs and the histograms
//! that `merge` adds up. Refused with an error, never a panic.
//!
//! Input: up to ten files separated by NUL bytes, written in order as
//! a/s.csv, a/s/run.json, a/s/histograms.csv, a/s/http_requests.csv,
//! a/s/udp_packets.csv, then the same five under b/ (an empty part: no file).
//! Then `a` is read as `compare` and `report` read it, and `a` and `b` are
//! merged as `netrun merge a b` would.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const FILES: [&str; 5] = [
    "s.csv",
    "s/run.json",
    "s/histograms.csv",
    "s/http_requests.csv",
    "s/udp_packets.csv",
];

/// One folder for the whole campaign, on /dev/shm when there is one.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("netrun-fuzz-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch folder");
        dir
    })
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let root = scratch();
        let _ = std::fs::remove_dir_all(root);
        let (a, b, out) = (root.join("a"), root.join("b"), root.join("out"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d.join("s")).expect("scratch folder");
        }
        let parts = data.split(|&c| c == 0);
        for (i, content) in parts.take(10).enumerate() {
            if content.is_empty() {
                continue;
            }
            let dir = if i < 5 { &a } else { &b };
            std::fs::write(dir.join(FILES[i % 5]), content).expect("scratch file");
        }
        let summary = a.join("s.csv");
        let _ = netrun::report::compare::read_summary(&summary);
        let _ = netrun::report::compare::read_samples(&summary);
        let _ = netrun::report::run_record::RunInfo::read(&a.join("s"));
        let _ = netrun::report::html::data::load_run("a", &summary, &a.join("s"));
        if let Ok(plan) = netrun::merge::plan(&[a.clone(), b.clone()], &out, true) {
            let _ = netrun::merge::write(&plan, &out);
        }
    });
}
