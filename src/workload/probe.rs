//! The probe datagram wire format (placeholder until the probe lands).

/// Bytes of probe header at the start of every datagram.
pub const HEADER_LEN: usize = 32;
