//! The `histograms.csv` histogram decoder (base64, HdrHistogram V2 with or
//! without DEFLATE) on any text: an error or a histogram, never a panic; a
//! decoded histogram encodes and decodes back to the same counts, and its
//! percentiles and merges (what `merge` does with it) hold.

use netrun::metrics::histogram::{decode, encode, latency_histogram, percentile_ms};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(h) = decode(text) else {
            return;
        };
        for q in [0.0, 50.0, 99.0, 100.0] {
            let _ = percentile_ms(&h, q, Some((h.min() as f64, h.max() as f64)));
        }
        let again = decode(&encode(&h).expect("a decoded histogram encodes")).expect("round trip");
        assert_eq!(again.len(), h.len());
        assert_eq!(again.max(), h.max());
        // What `merge` does: add it into the run's own histogram; refused or
        // added, never a panic.
        let mut total = latency_histogram();
        let _ = total.add(&h);
    });
}
