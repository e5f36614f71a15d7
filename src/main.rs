//! Thin entry point: parse the command line, run it, print errors as one
//! chain and map them to the documented exit codes.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use netrun::cli::{Cli, Command};
use netrun::error::{exit_code, EXIT_INPUT, EXIT_OK};
use netrun::logging::Console;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not errors.
            return ExitCode::from(if e.use_stderr() { EXIT_INPUT } else { EXIT_OK });
        }
    };
    let console = match cli.command {
        Some(Command::Serve(_) | Command::Proxy(_)) => Console::Services,
        _ => Console::Quiet,
    };
    netrun::logging::init(cli.verbose, console);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot start the async runtime: {e}"
            );
            return ExitCode::from(netrun::error::EXIT_RUNTIME);
        }
    };
    let result = runtime.block_on(netrun::run(cli));
    netrun::logging::flush();
    match result {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}
