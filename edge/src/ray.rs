//! `CF-Ray`-like request ids: 16 hex digits and a location code, one per reply,
//! so a client log line can be matched with the edge's log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The location suffix Cloudflare puts after the id (`-FRA`, `-IAD`); ours is `EDG`.
const COLO: &str = "EDG";

pub const HEADER: &str = "cf-ray";

/// Counters are handed to threads in blocks of this many, so that making an
/// id writes nothing another thread writes.
const BLOCK: u64 = 1 << 20;
static NEXT: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's block of counters: (next, end).
    static MINE: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// A counter no other id in this process has.
fn counter() -> u64 {
    MINE.with(|mine| {
        let (mut next, mut end) = mine.get();
        if next == end {
            next = NEXT.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        mine.set((next + 1, end));
        next
    })
}
static SEED: OnceLock<u64> = OnceLock::new();

/// A new id as a header value (the hyper path's replies and requests).
pub fn next_header() -> http::HeaderValue {
    // 16 hex digits, '-', 3 letters: always a valid header value.
    http::HeaderValue::from_bytes(next().as_str().as_bytes())
        .unwrap_or_else(|_| http::HeaderValue::from_static("0-EDG"))
}

/// One request id, made without allocating (one per proxied request).
#[derive(Debug, Clone, Copy)]
pub struct RayId([u8; 20]);

impl RayId {
    pub fn as_str(&self) -> &str {
        // Hex digits, '-' and the colo: always ASCII.
        std::str::from_utf8(&self.0).unwrap_or("0-EDG")
    }
}

/// A new id, unique within this process and unlikely to repeat across runs.
pub fn next() -> RayId {
    let seed = *SEED.get_or_init(rand::random::<u64>);
    let n = counter();
    // Spread consecutive counters over the id space (splitmix64 step).
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 20];
    for (i, digit) in id[..16].iter_mut().enumerate() {
        *digit = HEX[((z >> (60 - 4 * i)) & 0xf) as usize];
    }
    id[16] = b'-';
    id[17..].copy_from_slice(COLO.as_bytes());
    RayId(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_distinct_and_shaped_like_cf_ray() {
        let (a, b) = (super::next(), super::next());
        let (a, b) = (a.as_str(), b.as_str());
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        assert!(a.ends_with("-EDG"));
        assert!(a[..16].bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
    }
}
