//! Latency histograms kept beside the summary (`results/<name>/histograms.csv`):
//! one HdrHistogram per summary row, serialized in HdrHistogram's own
//! compressed V2 format and base64 (what its interval logs hold, so other
//! HdrHistogram tools read it), so segments of one run can be added into
//! exact merged percentiles instead of averaging percentiles.

use std::io::Cursor;

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::records::{HttpRequestRow, PacketStatus, UdpPacketRow};

/// The `encoding` column's value: what the `histogram` column holds.
pub const ENCODING: &str = "hdr-v2-deflate-base64";

/// One row of `histograms.csv`: the latency histogram of the summary row
/// with the same variant, workload and repetition.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HistogramRow {
    pub variant: String,
    pub workload: String,
    pub repetition: u32,
    /// Latencies recorded (HTTP responses, in-time UDP replies).
    pub count: u64,
    /// Unit of the recorded values: `us` (microseconds).
    pub unit: String,
    /// [`ENCODING`].
    pub encoding: String,
    /// The histogram: V2 + DEFLATE serialization, base64 (standard alphabet).
    pub histogram: String,
}

/// An empty latency histogram: microseconds, 3 significant digits, up to
/// an hour (as the summary's own statistics, [`super::qos::LatencyStats`]).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, super::qos::HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Records a latency given in milliseconds (as the sample CSVs hold it):
/// rounded to the microsecond, at least 1 µs, saturating at an hour.
pub fn record_ms(hist: &mut Histogram<u64>, ms: f64) {
    let us = (ms * 1000.0).round().max(1.0);
    hist.saturating_record(us.min(u64::MAX as f64) as u64);
}

/// The latency a request adds to its row's statistics: completed responses only.
pub fn http_latency_ms(row: &HttpRequestRow) -> Option<f64> {
    (row.error.is_none() && row.status.is_some()).then_some(row.latency_ms)
}

/// The latency a datagram adds: in-time replies (ok or reordered) only.
pub fn udp_latency_ms(row: &UdpPacketRow) -> Option<f64> {
    match row.status {
        PacketStatus::Ok | PacketStatus::Reordered => row.rtt_ms,
        PacketStatus::Lost | PacketStatus::Late | PacketStatus::Dup => None,
    }
}

/// V2 + DEFLATE, base64.
pub fn encode(hist: &Histogram<u64>) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(hist, &mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot serialize a histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The inverse of [`encode`] (plain V2 is read too). The lengths and
/// bounds a header claims are checked against the bytes before anything is
/// allocated: a 56-character cell claiming a 4 GiB payload is refused, not
/// decoded.
pub fn decode(text: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| anyhow::anyhow!("not base64: {e}"))?;
    let plain = match be32(&bytes, 0) {
        Some(V2_COMPRESSED_COOKIE) => inflate(&bytes)?,
        Some(V2_COOKIE) => bytes,
        _ => anyhow::bail!("not a serialized HdrHistogram (unknown format)"),
    };
    check_v2(&plain)?;
    Deserializer::new()
        .deserialize(&mut Cursor::new(plain))
        .map_err(|e| anyhow::anyhow!("not a serialized HdrHistogram: {e:?}"))
}

/// HdrHistogram's V2 cookies (big-endian, word size 8 in the low bits).
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;

/// The V2 header: cookie, payload length, normalizing offset, significant
/// digits, lowest and highest trackable value, integer-to-double ratio.
const V2_HEADER: usize = 40;

/// A latency histogram's V2 form is a few KiB; anything inflating past this is refused.
const MAX_PLAIN: u64 = 4 << 20;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let word = b.get(at..at + 4)?;
    Some(u32::from_be_bytes(word.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    let word = b.get(at..at + 8)?;
    Some(u64::from_be_bytes(word.try_into().ok()?))
}

/// The plain V2 bytes inside a compressed one, its claimed length checked
/// and the inflated size bounded.
fn inflate(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let claimed = be32(bytes, 4).unwrap_or(u32::MAX) as usize;
    let body = bytes.get(8..).unwrap_or_default();
    if claimed != body.len() {
        anyhow::bail!(
            "damaged histogram: its header claims {claimed} compressed bytes, {} follow",
            body.len()
        );
    }
    let mut plain = Vec::new();
    flate2::read::ZlibDecoder::new(body)
        .take(MAX_PLAIN + 1)
        .read_to_end(&mut plain)
        .map_err(|e| anyhow::anyhow!("damaged histogram: cannot inflate it: {e}"))?;
    if plain.len() as u64 > MAX_PLAIN {
        anyhow::bail!("damaged histogram: it inflates past {MAX_PLAIN} bytes");
    }
    Ok(plain)
}

/// A plain V2 histogram whose payload length is the bytes that follow its
/// header, and whose bounds are within a latency histogram's.
fn check_v2(plain: &[u8]) -> anyhow::Result<()> {
    if be32(plain, 0) != Some(V2_COOKIE) || plain.len() < V2_HEADER {
        anyhow::bail!("not a serialized HdrHistogram (no V2 header)");
    }
    let claimed = be32(plain, 4).unwrap_or(u32::MAX) as usize;
    if claimed != plain.len() - V2_HEADER {
        anyhow::bail!(
            "damaged histogram: its header claims a payload of {claimed} bytes, {} follow",
            plain.len() - V2_HEADER
        );
    }
    let digits = be32(plain, 12).unwrap_or(u32::MAX);
    let (low, high) = (be64(plain, 16).unwrap_or(0), be64(plain, 24).unwrap_or(0));
    if digits > 5 || low < 1 || high > super::qos::HIST_MAX_US || low > high {
        anyhow::bail!(
            "not a netrun latency histogram: {digits} significant digits, values {low} to \
             {high} µs (netrun records 1 µs to an hour at 3 digits)"
        );
    }
    Ok(())
}

/// The percentile (0 to 100) of a histogram in milliseconds, clamped to the
/// exact `[min, max]` when known (a bucket's highest equivalent value can
/// pass the true maximum), as the summary's own percentiles are.
pub fn percentile_ms(hist: &Histogram<u64>, q: f64, clamp: Option<(f64, f64)>) -> f64 {
    let v = hist.value_at_quantile(q / 100.0) as f64 / 1000.0;
    match clamp {
        Some((lo, hi)) if lo <= hi => v.clamp(lo, hi),
        _ => v,
    }
}

impl HistogramRow {
    pub fn new(variant: &str, workload: &str, repetition: u32, hist: &Histogram<u64>) -> Self {
        HistogramRow {
            variant: variant.to_string(),
            workload: workload.to_string(),
            repetition,
            count: hist.len(),
            unit: "us".to_string(),
            encoding: ENCODING.to_string(),
            // Serializing into memory cannot fail for a valid histogram; an
            // empty column would only make a later merge refuse this row.
            histogram: encode(hist).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_adds_into_exact_percentiles() {
        let (mut a, mut b) = (latency_histogram(), latency_histogram());
        for us in 1..=500u64 {
            record_ms(&mut a, us as f64 / 1000.0);
        }
        for us in 501..=1000u64 {
            record_ms(&mut b, us as f64 / 1000.0);
        }
        let row = HistogramRow::new("v", "w", 1, &a);
        assert_eq!(row.count, 500);
        let mut merged = decode(&row.histogram).unwrap();
        assert_eq!(merged, a);
        merged.add(decode(&encode(&b).unwrap()).unwrap()).unwrap();
        assert_eq!(merged.len(), 1000);
        // 1..=1000 µs are held exactly: the merged median is 500 µs, not
        // the mean of the two halves' medians (250 and 750 µs: 0.5 ms too, by chance),
        // and the p99 is 990 µs where the halves' p99s average to 742.5 µs.
        assert_eq!(percentile_ms(&merged, 50.0, None), 0.5);
        assert_eq!(percentile_ms(&merged, 99.0, None), 0.99);
        assert_eq!(percentile_ms(&merged, 99.0, Some((0.001, 0.9))), 0.9);
        assert!(decode("not base64!").is_err());
        // A V2 header claiming a payload of 0xFFFFFFFF bytes that are not there.
        let e = decode("HISTE/////8AAAAAAAAAAwAAAAAAAAABAAAAANaTpAA/8AAAAAAAAA==").unwrap_err();
        assert!(
            format!("{e}").contains("claims a payload of 4294967295"),
            "{e}"
        );
        assert!(decode("aGVsbG8=").is_err());
    }

    #[test]
    fn only_answered_samples_count() {
        let ok = HttpRequestRow {
            status: Some(200),
            latency_ms: 1.5,
            ..Default::default()
        };
        let failed = HttpRequestRow {
            error: Some("timeout".into()),
            ..ok.clone()
        };
        assert_eq!(http_latency_ms(&ok), Some(1.5));
        assert_eq!(http_latency_ms(&failed), None);
        let late = UdpPacketRow {
            status: PacketStatus::Late,
            rtt_ms: Some(3.0),
            ..Default::default()
        };
        assert_eq!(udp_latency_ms(&late), None);
        let reordered = UdpPacketRow {
            status: PacketStatus::Reordered,
            ..late
        };
        assert_eq!(udp_latency_ms(&reordered), Some(3.0));
    }
}
