//! `CF-Ray`-like request ids: 16 hex digits and a location code, one per reply,
//! so a client log line can be matched with the edge's log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The location suffix Cloudflare puts after the id (`-FRA`, `-IAD`); ours is `EDG`.
const COLO: &str = "EDG";

pub const HEADER: &str = "cf-ray";

static NEXT: AtomicU64 = AtomicU64::new(0);
static SEED: OnceLock<u64> = OnceLock::new();

/// A new id as a header value: made once per request, shared (not copied)
/// by the request to the origin, the reply and an error page.
pub fn next_header() -> http::HeaderValue {
    // 16 hex digits, '-', 3 letters: always a valid header value.
    http::HeaderValue::from_maybe_shared(bytes::Bytes::from(next()))
        .unwrap_or_else(|_| http::HeaderValue::from_static("0-EDG"))
}

/// A new id, unique within this process and unlikely to repeat across runs.
pub fn next() -> String {
    let seed = *SEED.get_or_init(rand::random::<u64>);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // Spread consecutive counters over the id space (splitmix64 step).
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("{z:016x}-{COLO}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_distinct_and_shaped_like_cf_ray() {
        let a = super::next();
        let b = super::next();
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        assert!(a.ends_with("-EDG"));
    }
}
