//! netrun: run network scenarios on loopback and measure their quality of service.
//!
//! The library is what `main` and the tests drive: the origin server
//! ([`origin`]), the caching proxy ([`proxy`]), the measurement workloads
//! ([`workload`], [`metrics`]), scenario files ([`scenario`]) and outputs
//! ([`report`]). [`run`] executes a parsed command line.

pub mod atomic_file;
pub mod cache_policy;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod error;
pub mod http2;
pub mod http_fields;
pub mod interim;
pub mod link;
pub mod logging;
pub mod merge;
pub mod metrics;
pub mod net;
pub mod netns;
pub mod origin;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod server;
pub mod shard;
pub mod shutdown;
pub mod start_at;
pub mod stats;
pub mod throttle;
pub mod timer;
pub mod tls;
pub mod traffic;
pub mod udp_batch;
pub mod units;
pub mod workload;

pub use error::{Error, Outcome};

/// Runs a parsed command line to completion.
pub async fn run(cli: cli::Cli) -> anyhow::Result<Outcome> {
    commands::dispatch(cli).await
}
