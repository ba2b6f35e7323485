//! Collections that grow in small steps, for the projection's order list and
//! order index.
//!
//! A `Vec` that doubles copies everything it holds, and a `HashMap` that
//! doubles rehashes every key, both under the projection's write lock: at
//! half a million orders that is tens of milliseconds in which no reply can
//! be sent (measured: `scripts/bench-app.sh` p99 12–53 ms, all of it such
//! pauses; docs/benchmarks.md). These grow a chunk or one shard at a time, so
//! the longest pause shrinks by the number of chunks or shards.

use std::borrow::Borrow;
use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// Elements per chunk of a [`ChunkedVec`] (a few hundred KiB of orders).
const CHUNK: usize = 8192;

/// A vector that never moves what it holds: it grows by whole chunks.
pub(crate) struct ChunkedVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        ChunkedVec {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ChunkedVec<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(value),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(value);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }
}

/// Shards of a [`ShardedMap`]: a resize rehashes 1/64 of the keys.
const SHARDS: usize = 64;

/// A hash map split into independently growing shards.
pub(crate) struct ShardedMap<K, V> {
    shards: Vec<HashMap<K, V>>,
    /// Picks the shard; each shard hashes again with its own keys (both
    /// seeded per process, so clients cannot aim ids at one shard's buckets).
    pick: RandomState,
}

impl<K: Hash + Eq, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            shards: (0..SHARDS).map(|_| HashMap::new()).collect(),
            pick: RandomState::new(),
        }
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    fn shard_of<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        // The top bits: the low ones are what a shard's own table uses.
        (self.pick.hash_one(key) >> 58) as usize % SHARDS
    }

    /// Inserts `value` unless `key` is present; the first value stays.
    pub fn insert_first(&mut self, key: K, value: V) {
        let shard = self.shard_of(&key);
        if let Entry::Vacant(e) = self.shards[shard].entry(key) {
            e.insert(value);
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard_of(key)].get(key)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn chunked_vec_keeps_order_across_chunks() {
        let mut v = ChunkedVec::default();
        assert_eq!(v.len(), 0);
        for i in 0..(CHUNK * 2 + 5) {
            v.push(i);
        }
        assert_eq!(v.len(), CHUNK * 2 + 5);
        assert_eq!(v.get(0), Some(&0));
        assert_eq!(v.get(CHUNK - 1), Some(&(CHUNK - 1)));
        assert_eq!(v.get(CHUNK), Some(&CHUNK));
        assert_eq!(v.get(CHUNK * 2 + 4), Some(&(CHUNK * 2 + 4)));
        assert_eq!(v.get(CHUNK * 2 + 5), None);
    }

    #[test]
    fn chunks_never_move_what_they_hold() {
        let mut v = ChunkedVec::default();
        v.push(1u64);
        let first: *const u64 = v
            .get(0)
            .map(|r| r as *const u64)
            .unwrap_or(std::ptr::null());
        for i in 0..(CHUNK * 3) as u64 {
            v.push(i);
        }
        let again: *const u64 = v
            .get(0)
            .map(|r| r as *const u64)
            .unwrap_or(std::ptr::null());
        assert_eq!(first, again);
    }

    #[test]
    fn sharded_map_keeps_the_first_value_and_looks_up_by_borrowed_key() {
        let mut m: ShardedMap<Arc<str>, u32> = ShardedMap::default();
        for i in 0..10_000u32 {
            m.insert_first(Arc::from(format!("o-{i}")), i);
        }
        m.insert_first(Arc::from("o-7"), 99);
        assert_eq!(m.shards.iter().map(HashMap::len).sum::<usize>(), 10_000);
        assert_eq!(m.get("o-7"), Some(&7));
        assert!(m.contains_key("o-9999"));
        assert!(!m.contains_key("o-10000"));
        // Keys spread over the shards.
        assert!(m.shards.iter().filter(|s| !s.is_empty()).count() > SHARDS / 2);
    }
}
