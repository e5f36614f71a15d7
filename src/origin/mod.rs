//! The origin: static files over HTTP from `www/` plus a UDP echo service.
//!
//! [`spawn`] takes sockets that are already bound (so tests and the scenario
//! runner can use port 0) and a shutdown token; the returned handle gives the
//! real addresses, live counters, and a bounded wait for in-flight work.

mod hot;
pub mod http;
pub mod path;
pub mod udp;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::Error;
use crate::server::HttpLimits;

pub use self::http::HttpStats;
pub use self::udp::UdpStats;

/// Log target of every origin log line (`RUST_LOG=netrun::origin=debug`).
pub const LOG_TARGET: &str = "netrun::origin";

/// What the origin serves and the limits it enforces.
#[derive(Debug, Clone)]
pub struct OriginConfig {
    /// Folder of static files; must exist. Resolved to its canonical path at spawn.
    pub www: PathBuf,
    pub limits: HttpLimits,
    /// `Cache-Control: max-age` sent with every file (and 304), so caches
    /// know how long to reuse it; `None` sends no `Cache-Control`, leaving
    /// caches to their heuristics from `Last-Modified`.
    pub max_age: Option<Duration>,
}

/// The origin's default `max-age`, as a static server configured for a
/// cache would send: a minute, so scenarios see their repeated requests hit.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);

/// A running origin (HTTP files + UDP echo).
pub struct OriginHandle {
    http: http::HttpOrigin,
    udp: udp::UdpEcho,
    tracker: TaskTracker,
}

/// A snapshot of the origin's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OriginStats {
    pub http: HttpStats,
    pub udp: UdpStats,
}

impl fmt::Display for OriginStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.http, self.udp)
    }
}

/// Starts the HTTP file server on `http` (a bound listener, clear text or
/// with its TLS configuration) and the UDP echo on `udp`. Both stop when
/// `shutdown` is cancelled. Fails with [`Error::Input`] if `config.www` is
/// not an existing folder.
pub async fn spawn(
    http: impl Into<crate::server::Listener>,
    udp: UdpSocket,
    config: OriginConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<OriginHandle> {
    spawn_with_clock(http, udp, config, crate::clock::system(), shutdown).await
}

/// [`spawn`] reading the time from `clock` (when a file has settled enough
/// to be kept in memory), so tests can move time forward instead of sleeping.
pub async fn spawn_with_clock(
    http: impl Into<crate::server::Listener>,
    udp: UdpSocket,
    config: OriginConfig,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
    shutdown: CancellationToken,
) -> anyhow::Result<OriginHandle> {
    let tracker = TaskTracker::new();
    let http = http::spawn(http.into(), config, clock, shutdown.clone(), &tracker).await?;
    let udp = udp::spawn(udp, shutdown, &tracker)?;
    Ok(OriginHandle { http, udp, tracker })
}

impl OriginHandle {
    /// The bound HTTP address (the real port when bound to port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    /// The bound UDP echo address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp.local_addr()
    }

    /// The canonical www folder being served.
    pub fn www(&self) -> &Path {
        self.http.root()
    }

    pub fn stats(&self) -> OriginStats {
        OriginStats {
            http: self.http.stats(),
            udp: self.udp.stats(),
        }
    }

    /// Waits up to `grace` for the listeners to close and in-flight requests
    /// to finish. Call it after cancelling the shutdown token (it does not
    /// cancel by itself). Returns false if work was still running at the end.
    pub async fn wait(self, grace: Duration) -> bool {
        self.wait_for_tasks(grace).await
    }

    /// [`OriginHandle::wait`] that keeps the handle, so the final counters
    /// can be read afterwards.
    pub async fn wait_for_tasks(&self, grace: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// Checks that `www` is an existing folder and returns its canonical path.
pub fn www_root(www: &Path) -> Result<PathBuf, Error> {
    let hint = "choose an existing folder with --www (or topology.www in a scenario)";
    let root = std::fs::canonicalize(www).map_err(|e| {
        Error::input(format!(
            "www folder `{}` cannot be used: {e}; {hint}",
            www.display()
        ))
    })?;
    if !root.is_dir() {
        return Err(Error::input(format!(
            "www folder `{}` is not a folder; {hint}",
            www.display()
        )));
    }
    Ok(root)
}
