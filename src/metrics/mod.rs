//! Measurements: pure QoS maths, per-sample records and the summary row.

pub mod histogram;
pub mod judged;
mod pick;
pub mod qos;
pub mod records;
pub mod summary;

pub use records::{CacheMark, HttpRequestRow, PacketStatus, UdpPacketRow};
pub use summary::SummaryRow;
