//! The UDP probe datagram: what `netrun probe udp` sends and expects back.
//! Pure encode/decode, no sockets. Everything is big-endian; the header is
//! followed by padding up to the datagram size, so any plain echo works.
//!
//! ```text
//! offset  size  field
//!      0     4  magic  "NRUP" (0x4E52_5550)
//!      4     8  run id (random per run: replies from an earlier run are foreign)
//!     12     4  flow id
//!     16     8  sequence number within the flow
//!     24     8  achieved send time, nanoseconds since the run's start
//!     32     …  padding (0xA5) up to the datagram size
//! ```

/// "NRUP": netrun UDP probe.
pub const MAGIC: u32 = 0x4E52_5550;
/// Bytes taken by the header; the smallest accepted datagram size.
pub const HEADER_LEN: usize = 32;
/// The largest accepted datagram size.
pub use crate::net::MAX_DATAGRAM;
/// Byte used for padding after the header.
pub const PAD: u8 = 0xA5;

/// The header fields of one probe datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeHeader {
    pub run_id: u64,
    pub flow: u32,
    pub seq: u64,
    /// Achieved send time, nanoseconds since the run's start.
    pub send_ns: u64,
}

/// Writes `header` at the start of `buf` (at least [`HEADER_LEN`] bytes) and
/// pads the rest. Returns `None` when `buf` is too short.
pub fn encode(header: &ProbeHeader, buf: &mut [u8]) -> Option<()> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    write_header(header, buf);
    buf[HEADER_LEN..].fill(PAD);
    Some(())
}

/// Rewrites only the header of a buffer already padded by [`encode`]: the
/// sender's hot path, so a large datagram is not re-padded on every send.
pub fn write_header(header: &ProbeHeader, buf: &mut [u8]) {
    buf[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    buf[4..12].copy_from_slice(&header.run_id.to_be_bytes());
    buf[12..16].copy_from_slice(&header.flow.to_be_bytes());
    buf[16..24].copy_from_slice(&header.seq.to_be_bytes());
    buf[24..32].copy_from_slice(&header.send_ns.to_be_bytes());
}

/// Parses a reply. `None` means foreign: too short, another magic, or
/// another run's id. Padding is not checked (an echo may truncate it).
pub fn decode(buf: &[u8], run_id: u64) -> Option<ProbeHeader> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    let u32_at = |at: usize| u32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
    if u32_at(0) != MAGIC || u64_at(4) != run_id {
        return None;
    }
    Some(ProbeHeader {
        run_id,
        flow: u32_at(12),
        seq: u64_at(16),
        send_ns: u64_at(24),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: ProbeHeader = ProbeHeader {
        run_id: 0x0102_0304_0506_0708,
        flow: 3,
        seq: 42,
        send_ns: 1_500_000,
    };

    #[test]
    fn round_trip_with_padding() {
        let mut buf = vec![0u8; 128];
        encode(&H, &mut buf).unwrap();
        assert_eq!(&buf[0..4], b"NRUP");
        assert_eq!(&buf[4..12], &[1, 2, 3, 4, 5, 6, 7, 8], "big-endian run id");
        assert_eq!(&buf[12..16], &[0, 0, 0, 3]);
        assert!(buf[HEADER_LEN..].iter().all(|&b| b == PAD));
        assert_eq!(decode(&buf, H.run_id), Some(H));
        // Exactly the header is enough; a truncated echo still parses.
        assert_eq!(decode(&buf[..HEADER_LEN], H.run_id), Some(H));
    }

    #[test]
    fn too_small_buffer_is_refused() {
        let mut buf = [0u8; HEADER_LEN - 1];
        assert_eq!(encode(&H, &mut buf), None);
        assert_eq!(decode(&buf, H.run_id), None);
    }

    #[test]
    fn foreign_datagrams_are_rejected() {
        let mut buf = vec![0u8; 64];
        encode(&H, &mut buf).unwrap();
        assert_eq!(decode(&buf, H.run_id + 1), None, "another run");
        let mut bad = buf.clone();
        bad[0] = b'X';
        assert_eq!(decode(&bad, H.run_id), None, "another magic");
        assert_eq!(decode(b"hello, echo", H.run_id), None, "garbage");
        assert_eq!(decode(&[0u8; 64], 0), None, "zeros with run id 0");
    }
}
