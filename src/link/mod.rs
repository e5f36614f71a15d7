//! A user-space packet link, as Mahimahi builds one: IP packets read from a
//! TUN device on one side cross a seeded model of the link (`pipe.rs`:
//! loss, bursts, duplication, a queue with a rate or a delivery trace,
//! outages, delay) and are written into the TUN device on the other side.
//! The model is pure and time-injected; `tun.rs` and `mover.rs` carry it out.

pub mod config;
pub mod counters;
pub mod pipe;
pub mod trace;

pub use config::{DirConfig, Gilbert, Limit, Outage, Queue, QueueKind, Service};
pub use counters::Counters;
pub use pipe::{Packet, Pipe};
pub use trace::Trace;
pub mod mover;
pub mod tun;

pub use mover::Mover;
