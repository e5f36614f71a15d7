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
