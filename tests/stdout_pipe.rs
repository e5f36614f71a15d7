//! A reader that goes away early (`netrun merge … | head`) ends the output,
//! not the command: no panic, the command's own exit code, its files
//! written. The pipe here is real and closed before netrun writes to it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Kills and reaps the child if the test fails before it exits.
struct Reaped(Option<Child>);

impl Reaped {
    fn output(mut self) -> Output {
        let child = self.0.take().expect("child");
        child.wait_with_output().expect("wait for netrun")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs netrun with `args`, its stdout a pipe whose reading end is closed
/// before netrun starts writing.
fn with_closed_stdout(args: &[&std::ffi::OsStr]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netrun");
    drop(child.stdout.take());
    Reaped(Some(child)).output()
}

fn quiet(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{what}: {stderr}"
    );
    assert_eq!(out.status.code(), Some(0), "{what}: {stderr}");
}

fn scenario(dir: &Path) -> PathBuf {
    let p = dir.join("pipe.toml");
    let www = Path::new(env!("CARGO_MANIFEST_DIR")).join("www");
    std::fs::write(
        &p,
        format!(
            "name = \"pipe\"\n[topology]\nwww = \"{}\"\n\
             [[workload]]\nkind = \"udp\"\nname = \"u\"\ncount = 4\ninterval = \"1ms\"\n",
            www.display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn check_run_and_merge_end_quietly_when_stdout_is_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let file = scenario(tmp.path());
    let shard = tmp.path().join("shard");
    let merged = tmp.path().join("merged");

    let out = with_closed_stdout(&["check".as_ref(), file.as_os_str()]);
    quiet(&out, "check");

    let out = with_closed_stdout(&[
        "run".as_ref(),
        file.as_os_str(),
        "--shard".as_ref(),
        "1/1".as_ref(),
        "--out".as_ref(),
        shard.as_os_str(),
    ]);
    quiet(&out, "run");
    assert!(
        shard.join("pipe.csv").is_file(),
        "the run wrote its results"
    );

    let out = with_closed_stdout(&[
        "merge".as_ref(),
        shard.as_os_str(),
        "--out".as_ref(),
        merged.as_os_str(),
    ]);
    quiet(&out, "merge");
    assert!(merged.join("pipe.csv").is_file(), "merge wrote its results");
}

/// A closed stderr loses the error message, never the exit code: before,
/// `eprintln!` panicked on the broken pipe and the process exited 101.
#[test]
fn errors_keep_their_exit_code_when_stderr_is_closed() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netrun"))
        .arg("check")
        .arg(&missing)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netrun");
    drop(child.stderr.take());
    let out = Reaped(Some(child)).output();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
