//! Exit codes and the typed errors that decide them.
//!
//! Inner layers return `anyhow::Error` with context; the typed [`Error`]
//! somewhere in the chain tells `main` which documented exit code to use.

use std::net::SocketAddr;

/// Everything went as asked.
pub const EXIT_OK: u8 = 0;
/// An expectation (`[expect]`) or a baseline comparison failed.
pub const EXIT_EXPECTATION: u8 = 1;
/// Invalid input: arguments or a scenario file.
pub const EXIT_INPUT: u8 = 2;
/// Runtime failure: port in use, a service died, an unreachable target.
pub const EXIT_RUNTIME: u8 = 3;
/// Interrupted by Ctrl-C (128 + SIGINT), after the results so far were written.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Errors with a documented exit code. Messages say what was wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or a bad scenario file (exit 2).
    #[error("{0}")]
    Input(String),
    /// An address could not be bound (exit 3).
    // The source is printed by the error chain (`{:#}`), not repeated here.
    #[error("cannot listen on {addr} (choose another address with {hint})")]
    Bind {
        addr: SocketAddr,
        /// The flag or scenario key that sets this address.
        hint: String,
        #[source]
        source: std::io::Error,
    },
    /// An input file with one or more problems, described by the parser's
    /// own error type (a scenario's diagnostics, say) (exit 2).
    #[error(transparent)]
    InvalidFile(Box<dyn std::error::Error + Send + Sync>),
    /// Something failed while running (exit 3).
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) | Error::InvalidFile(_) => EXIT_INPUT,
            Error::Bind { .. } | Error::Runtime(_) => EXIT_RUNTIME,
        }
    }
}

/// How a command that did not fail outright ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed.
    Success,
    /// The run completed but an expectation or baseline check failed.
    ExpectationFailed,
    /// Ctrl-C stopped the run; results gathered so far were written.
    Interrupted,
    /// A command netrun ran (`netrun link -- COMMAND`) exited with this
    /// code, which becomes netrun's.
    Command(u8),
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => EXIT_OK,
            Outcome::ExpectationFailed => EXIT_EXPECTATION,
            Outcome::Interrupted => EXIT_INTERRUPTED,
            Outcome::Command(code) => code,
        }
    }
}

/// The exit code for an error chain: the outermost typed [`Error`] decides;
/// anything untyped is a runtime failure.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Error>())
        .map_or(EXIT_RUNTIME, Error::exit_code)
}
