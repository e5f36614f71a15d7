//! The probe datagram decoder on any bytes (the first 8 are the run id it
//! expects): foreign or a header, never a panic; a decoded header encodes
//! back to the same first 32 bytes.

use netrun::workload::probe::{decode, encode, HEADER_LEN};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if data.len() < 8 {
            return;
        }
        let run_id = u64::from_be_bytes(data[..8].try_into().expect("8 bytes"));
        let datagram = &data[8..];
        let Some(header) = decode(datagram, run_id) else {
            return;
        };
        assert_eq!(header.run_id, run_id);
        let mut buf = vec![0u8; datagram.len()];
        encode(&header, &mut buf).expect("a decoded datagram is long enough");
        assert_eq!(&buf[..HEADER_LEN], &datagram[..HEADER_LEN]);
        assert_eq!(decode(&buf, run_id), Some(header));
    });
}
