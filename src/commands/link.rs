//! `netrun link [knobs] -- COMMAND...`: COMMAND runs in a fresh network
//! namespace behind netrun's packet link (as in Mahimahi's shells), its exit
//! code becomes netrun's, and the link's counters are printed at the end
//! (on stderr: stdout is the command's). `--make-trace` prints a generated
//! delivery trace instead.

use std::process::ExitStatus;
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};

use crate::cli::{LinkArgs, LinkKnobs};
use crate::error::{Error, Outcome};
use crate::link::trace::{generate, Shape};
use crate::link::{Counters, DirConfig, Service, Trace};
use crate::netns::{self, shell::Shell};
use crate::units::format_duration;
use rustix::process::{Pid, Signal};

pub async fn link(args: LinkArgs) -> anyhow::Result<Outcome> {
    if let Some(shape) = &args.make_trace {
        let shape: Shape = shape
            .parse()
            .map_err(|e| Error::input(format!("--make-trace: {e}")))?;
        let lines: String = generate(&shape).iter().map(|t| format!("{t}\n")).collect();
        out!("{lines}");
        return Ok(Outcome::Success);
    }
    if args.command.is_empty() {
        return Err(Error::input(
            "give the command to run behind the link after `--`, e.g. \
             netrun link --delay 10ms -- ping -c 3 198.19.0.1 (its host end is in $NETRUN_HOST)",
        )
        .into());
    }
    let (up, down) = directions(&args)?;
    if let Some(why) = netns::cmd::unavailable("`netrun link`") {
        return Err(Error::input(why).into());
    }
    // Before anything is made: a signal from now on is passed to the
    // command, and netrun always gets to clean up.
    let signals = Signals {
        int: signal(SignalKind::interrupt())?,
        term: signal(SignalKind::terminate())?,
    };
    if let Some(cc) = &args.congestion {
        if !netns::congestion::valid_name(cc) {
            return Err(Error::input(format!(
                "--congestion `{cc}` is not the name of a TCP congestion control; \
                 give one such as cubic, reno or bbr"
            ))
            .into());
        }
        netns::congestion::ensure(cc, "--congestion")?;
    }
    let (u, d, cc) = (up.clone(), down.clone(), args.congestion.clone());
    let mut shell =
        tokio::task::spawn_blocking(move || Shell::create(u, d, cc.as_deref())).await??;
    let tcp = args
        .congestion
        .clone()
        .or_else(netns::congestion::host_default)
        .map_or(String::new(), |cc| format!("; TCP congestion control {cc}"));
    errln!(
        "netrun link: NETRUN_HOST={} (the command is {}); uplink: {up}; downlink: {down}{tcp}",
        shell.host(),
        shell.inside()
    );
    let status = run_command(&shell, &args.command, signals).await;
    let counters = shell.stop();
    tokio::task::spawn_blocking(move || drop(shell)).await?;
    if let Some(c) = counters {
        crate::commands::out::write_err(format_args!("{}", render(&c)));
    }
    let status = status?;
    Ok(Outcome::Command(exit_code(status)))
}

struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

/// Runs the command in the namespace and waits for it. Ctrl-C and SIGTERM
/// are passed on to it (a terminal's Ctrl-C reaches it anyway); a second
/// signal kills it.
async fn run_command(
    shell: &Shell,
    command: &[String],
    mut s: Signals,
) -> anyhow::Result<ExitStatus> {
    let mut child = tokio::process::Command::new("ip")
        .args(["netns", "exec", shell.namespace()])
        .args(command)
        .env("NETRUN_HOST", shell.host().to_string())
        .spawn()
        .map_err(|e| Error::input(format!("cannot run `ip netns exec`: {e}")))?;
    let mut signals = 0;
    loop {
        let sig = tokio::select! {
            status = child.wait() => return Ok(status?),
            _ = s.int.recv() => Signal::INT,
            _ = s.term.recv() => Signal::TERM,
        };
        signals += 1;
        let Some(pid) = child.id() else { continue };
        let sig = if signals > 1 { Signal::KILL } else { sig };
        // tokio has not reaped the child while `id()` answers, so the pid
        // is still ours; a child that just exited makes this fail, harmless.
        if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }
}

/// The command's exit code, or 128 + the signal that ended it (as a shell says).
fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c.clamp(0, 255) as u8,
        (None, Some(s)) => (128 + s).clamp(0, 255) as u8,
        (None, None) => 1,
    }
}

/// The two directions' configs: a `--uplink-*`/`--downlink-*` knob wins
/// over the shared one. Each direction draws its own random sequence.
fn directions(args: &LinkArgs) -> Result<(DirConfig, DirConfig), Error> {
    let (up, down) = (args.uplink.knobs(), args.downlink.knobs());
    Ok((
        direction(&args.both, &up, "uplink-", args.seed)?,
        direction(
            &args.both,
            &down,
            "downlink-",
            args.seed ^ 0xAAAA_AAAA_AAAA_AAAA,
        )?,
    ))
}

fn direction(
    both: &LinkKnobs,
    one: &LinkKnobs,
    prefix: &str,
    seed: u64,
) -> Result<DirConfig, Error> {
    let rate = one.rate.or(both.rate);
    let trace = one.trace.as_ref().or(both.trace.as_ref());
    let service = match (rate, trace) {
        (Some(r), Some(_)) if !r.is_unlimited() => {
            return Err(Error::input(format!(
                "--{prefix}rate and --{prefix}trace both set the link's speed; give one"
            )))
        }
        (_, Some(path)) => Service::Trace(Arc::new(Trace::load(path).map_err(Error::input)?)),
        (Some(r), None) if !r.is_unlimited() => Service::Rate(r.bits_per_sec()),
        _ => Service::Unlimited,
    };
    Ok(DirConfig {
        delay: one.delay.or(both.delay).unwrap_or_default(),
        jitter: one.jitter.or(both.jitter).unwrap_or_default(),
        loss_percent: one.loss.or(both.loss).unwrap_or(0.0),
        burst_loss: one.burst_loss.or(both.burst_loss),
        duplicate_percent: one.duplicate.or(both.duplicate).unwrap_or(0.0),
        reorder_percent: one.reorder.or(both.reorder).unwrap_or(0.0),
        service,
        queue: one.queue.or(both.queue).unwrap_or_default(),
        outage: one.outage.or(both.outage),
        seed,
    })
}

/// The counters of both directions as a table.
pub fn render(c: &[Counters; 2]) -> String {
    type Cell = fn(&Counters) -> String;
    let rows: [(&str, Cell); 12] = [
        ("packets", |c| c.packets.to_string()),
        ("bytes", |c| c.bytes.to_string()),
        ("delivered", |c| c.delivered.to_string()),
        ("delayed", |c| c.delayed.to_string()),
        ("lost", |c| c.lost.to_string()),
        ("burst lost", |c| c.burst_lost.to_string()),
        ("duplicated", |c| c.duplicated.to_string()),
        ("reordered", |c| c.reordered.to_string()),
        ("queue drops", |c| c.queue_drops.to_string()),
        ("kernel drops", |c| c.kernel_drops.to_string()),
        ("sojourn p50", |c| format_duration(c.sojourn_at(0.5))),
        ("sojourn p99", |c| format_duration(c.sojourn_at(0.99))),
    ];
    let mut out = format!("{:<13} {:>14} {:>14}\n", "link", "uplink", "downlink");
    for (name, f) in rows {
        out.push_str(&format!("{name:<13} {:>14} {:>14}\n", f(&c[0]), f(&c[1])));
    }
    out
}
