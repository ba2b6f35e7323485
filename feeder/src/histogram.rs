//! Latency histograms: HDR (bounded memory at any rate and duration), in
//! microseconds, with the V2 + deflate + base64 encoding that lets reports
//! from several feeders merge exactly.

use base64::Engine;
use handover_contract::LatencySummary;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Highest latency recorded exactly: one hour, in µs. Longer values saturate.
const MAX_US: u64 = 3_600_000_000;

pub type Hist = Histogram<u64>;

/// An empty histogram: 1 µs to 1 h, 3 significant digits (~190 KB).
pub fn new() -> Hist {
    // The bounds are constants that satisfy HDR's preconditions.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid constant bounds")
}

/// Records `us`, clamping instead of failing on out-of-range values.
pub fn record(h: &mut Hist, us: u64) {
    h.saturating_record(us.min(MAX_US));
}

/// Percentiles in milliseconds; all zero when empty.
pub fn summary(h: &Hist) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    LatencySummary {
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        mean: h.mean() / 1000.0,
    }
}

/// HDR V2, deflate, base64 (the format of HdrHistogram's log files).
pub fn encode(h: &Hist) -> Result<String, String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| format!("encoding histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The inverse of [`encode`]; errors name what was wrong.
pub fn decode(s: &str) -> Result<Hist, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let h: Hist = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram is not HDR V2: {e:?}"))?;
    Ok(h)
}

/// Adds `other` into `into`, saturating at the bounds.
pub fn merge(into: &mut Hist, other: &Hist) {
    for v in other.iter_recorded() {
        let _ = into.record_n(v.value_iterated_to().min(MAX_US), v.count_at_value());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trips() {
        let mut h = new();
        for us in [100, 200, 300, 5_000, 1_000_000] {
            record(&mut h, us);
        }
        let back = decode(&encode(&h).unwrap()).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.max(), h.max());
        assert_eq!(summary(&back), summary(&h));
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = new();
        let mut b = new();
        record(&mut a, 1_000);
        record(&mut b, 2_000);
        record(&mut b, 9_000_000_000);
        merge(&mut a, &b);
        assert_eq!(a.len(), 3);
        assert!(a.max() >= 3_599_000_000);
    }

    #[test]
    fn decode_rejects_garbage() {
        assert!(decode("not base64!").is_err());
        assert!(decode("aGVsbG8=").is_err());
    }

    #[test]
    fn summary_is_in_milliseconds() {
        let mut h = new();
        for _ in 0..100 {
            record(&mut h, 2_000);
        }
        let s = summary(&h);
        assert!((s.p50 - 2.0).abs() < 0.01, "{s:?}");
        assert_eq!(summary(&new()), LatencySummary::default());
    }
}
