//! Workloads: UDP probe bursts and HTTP request loads, measured.
//!
//! [`udp::run_udp`] and [`http::run_http`] are the library API that
//! `netrun probe` and the scenario runner drive; [`probe`] is the datagram
//! wire format.

pub mod http;
pub mod probe;
pub mod udp;

pub use http::{run_http, HttpProbeConfig, HttpReport};
pub use udp::{run_udp, UdpProbeConfig, UdpReport};

use std::time::Duration;

/// Longest `timeout`, `duration` or `interval` a workload accepts: every load
/// is bounded in time, and the arithmetic on instants cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Checks a workload duration against `(0, MAX_DURATION]` (or `[0, …]` when
/// zero is meaningful); the message names the setting.
pub fn check_duration(what: &str, d: Duration, zero_ok: bool) -> Result<(), crate::Error> {
    if d.is_zero() && !zero_ok {
        return Err(crate::Error::input(format!(
            "{what} is 0; give a positive duration such as 1s"
        )));
    }
    if d > MAX_DURATION {
        return Err(crate::Error::input(format!(
            "{what} is {}; at most 24h is accepted",
            crate::units::format_duration(d)
        )));
    }
    Ok(())
}
