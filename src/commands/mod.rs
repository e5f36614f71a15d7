//! One file per command: turns parsed arguments into library calls and
//! prints what the user asked for.

/// `print!` to stdout that never panics (see `out.rs`).
macro_rules! out {
    ($($arg:tt)*) => { $crate::commands::out::write(format_args!($($arg)*)) };
}

/// `outln!` to stdout that never panics (see `out.rs`).
macro_rules! outln {
    () => { $crate::commands::out::write(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::commands::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics: a closed or broken stderr loses the line
/// (there is nowhere left to say it), never the command's work.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::commands::out::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod check;
mod cleanup;
mod compare;
mod link;
mod merge;
mod out;
mod probe;
mod proxy;
mod report;
mod run;
mod serve;
mod trace;

use crate::cli::{Cli, Command, HttpLimitArgs, ProbeCommand, TraceCommand};
use crate::error::{Error, Outcome};
use crate::server::HttpLimits;

pub async fn dispatch(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Some(Command::Run(args)) => run::run(args).await,
        Some(Command::Check(args)) => check::check(args),
        Some(Command::Trace(TraceCommand::Zipf(args))) => trace::write(&args, true),
        Some(Command::Trace(TraceCommand::Uniform(args))) => trace::write(&args, false),
        Some(Command::Cleanup) => cleanup::cleanup(),
        Some(Command::Link(args)) => link::link(*args).await,
        Some(Command::Compare(args)) => compare::compare(args).await,
        Some(Command::Report(args)) => report::report(args),
        Some(Command::Merge(args)) => merge::merge(args),
        Some(Command::Serve(args)) => serve::serve(args).await,
        Some(Command::Proxy(args)) => proxy::proxy(*args).await,
        Some(Command::Probe(ProbeCommand::Udp(args))) => probe::udp(args).await,
        Some(Command::Probe(ProbeCommand::Http(args))) => probe::http(args).await,
        None if !cli.run.scenarios.is_empty() => run::run(cli.run).await,
        None => Err(Error::input(
            "no scenario given; try `netrun scenarios/basic.toml`, or `netrun --help` for the commands",
        )
        .into()),
    }
}

/// The command line's server limits (`serve` and `proxy`) as the servers' own type.
impl From<&HttpLimitArgs> for HttpLimits {
    fn from(a: &HttpLimitArgs) -> Self {
        HttpLimits {
            max_header_size: usize::try_from(a.max_header_size.bytes()).unwrap_or(usize::MAX),
            header_timeout: a.header_timeout,
            max_connections: a.max_connections.max(1),
            max_body_size: a.max_body_size.bytes(),
            write_timeout: a.write_timeout,
        }
    }
}

/// Ctrl-C (or SIGTERM) for a measuring command: the first stops it and says
/// a second quits at once; the second ends every wait, and the results
/// gathered so far are written (exit 130 either way).
fn interrupt_on_signal() -> crate::shutdown::Interrupt {
    crate::shutdown::interrupt_on_signal(
        || {
            errln!("stopping: waiting for replies in flight, then writing the results (Ctrl-C again to quit at once)")
        },
        || errln!("quitting: writing what was gathered"),
    )
}

/// A service's listening side with the TLS its flags ask for: none, a
/// certificate from `--tls-cert/--tls-key`, or one made for the run (its CA
/// written to `--ca-out`, default `results/<command>/ca.pem`). Returns the
/// listener and where the CA went, to print.
fn tls_listener(
    listener: crate::server::Listener,
    args: &crate::cli::TlsArgs,
    command: &str,
) -> anyhow::Result<(crate::server::Listener, Option<std::path::PathBuf>)> {
    use crate::tls::{self, CertSource, Identity};
    let source = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ if args.tls => CertSource::Made,
        _ => return Ok((listener, None)),
    };
    let mut names = args.tls_names.clone();
    if let Ok(addr) = listener.tcp.local_addr() {
        if !addr.ip().is_unspecified() {
            names.push(addr.ip().to_string());
        }
    }
    let identity = Identity::load(&source, &names)?;
    let ca_out = args
        .ca_out
        .clone()
        .unwrap_or_else(|| std::path::Path::new("results").join(command).join("ca.pem"));
    let ca = identity.write_ca(&ca_out)?;
    let config = tls::server_config(&identity).map_err(Error::input)?;
    Ok((
        crate::server::Listener {
            tls: Some(config),
            ..listener
        },
        ca,
    ))
}

/// The `--http` listening side that `--workers` and `--listen-sockets` ask
/// for: one socket, or one per worker bound with `SO_REUSEPORT`.
async fn http_listener(
    addr: std::net::SocketAddr,
    limits: &HttpLimitArgs,
) -> Result<crate::server::Listener, Error> {
    let workers = workers(limits);
    let count = limits.listen_sockets.count(Some(workers));
    let (tcp, siblings) = crate::net::bind_tcp_group(addr, count, "--http").await?;
    Ok(crate::server::Listener {
        siblings,
        ..crate::server::Listener::from(tcp).with_workers(workers)
    })
}

/// The serving threads `--workers` asks for (one per core by default).
fn workers(limits: &HttpLimitArgs) -> std::num::NonZeroUsize {
    limits
        .workers
        .and_then(|n| std::num::NonZeroUsize::new(usize::from(n)))
        .unwrap_or_else(crate::server::default_workers)
}

/// `  ca FILE` after a start line when a certificate was made for the run.
fn ca_note(ca: Option<&std::path::Path>) -> String {
    ca.map(|p| format!("  ca {}", p.display()))
        .unwrap_or_default()
}
