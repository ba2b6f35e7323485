//! One instance's copy of the store: the map built from the log, how far it
//! has applied the log, and the writer that appends to it.
//!
//! The first record of a key wins; a later one for the same key cannot
//! happen through [`Writer`] (it decides under the log's lock) and is
//! skipped if someone wrote one by hand. Records are applied in log order
//! by whoever reads them first — the follower (other instances' records) or
//! the writer (its own, so a reply's write is visible to the next read).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::log::{Chunk, Log, LogError, Record};

/// `kv_log_head` is split over this many label sets (`shard="0"`…).
pub const SHARDS: usize = 4;

/// Which shard a key counts under: FNV-1a, stable across processes.
pub fn shard(key: &str) -> usize {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % SHARDS as u64) as usize
}

/// What a write found.
#[derive(Debug, Clone, PartialEq)]
pub enum Put {
    /// Appended, fsynced and applied.
    Created,
    /// The key already holds this value: nothing appended.
    Same,
    /// The key holds another value (given).
    Conflict(Value),
}

#[derive(Debug, Default)]
struct State {
    map: BTreeMap<String, Value>,
    /// Byte offset just after the last applied record.
    offset: u64,
    /// Records applied, by shard of their key.
    applied: [u64; SHARDS],
}

impl State {
    fn apply(&mut self, chunk: Chunk) {
        for r in chunk.records {
            self.applied[shard(&r.key)] += 1;
            self.map.entry(r.key).or_insert(r.value);
        }
        self.offset = chunk.end;
    }
}

#[derive(Debug)]
pub struct Replica {
    log: Log,
    state: Mutex<State>,
}

impl Replica {
    /// Opens the log; nothing is applied until [`Replica::follow`].
    pub fn open(path: &Path) -> Result<Replica, LogError> {
        Ok(Replica {
            log: Log::open(path)?,
            state: Mutex::default(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the map half-updated: apply() only
        // inserts. Keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies every complete record appended since the last call, one
    /// chunk per lock hold so readers are not stalled; returns how many.
    /// Blocking file I/O: call it from a blocking thread.
    pub fn follow(&self) -> Result<u64, LogError> {
        let mut total = 0;
        loop {
            let mut st = self.state();
            let chunk = self.log.read_after(st.offset)?;
            if chunk.records.is_empty() {
                return Ok(total);
            }
            total += chunk.records.len() as u64;
            st.apply(chunk);
        }
    }

    /// Records this instance has applied.
    pub fn applied(&self) -> u64 {
        self.state().applied.iter().sum()
    }

    /// Complete records in the log file, by shard: what is applied plus
    /// what follows it in the file, counted without applying it (so a
    /// scrape does not hide the lag it is meant to show). Blocking.
    pub fn head_by_shard(&self) -> Result<[u64; SHARDS], LogError> {
        let (mut head, mut offset) = {
            let st = self.state();
            (st.applied, st.offset)
        };
        loop {
            let chunk = self.log.read_after(offset)?;
            if chunk.records.is_empty() {
                return Ok(head);
            }
            for r in &chunk.records {
                head[shard(&r.key)] += 1;
            }
            offset = chunk.end;
        }
    }

    /// Up to `limit` entries whose keys start with `prefix` and sort after
    /// `after`, in key order, and whether more follow.
    pub fn page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<(String, Value)>, bool) {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let st = self.state();
        let lower = match after {
            Some(k) if k >= prefix => Excluded(k.to_string()),
            _ => Included(prefix.to_string()),
        };
        let mut range = st
            .map
            .range((lower, Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix));
        let items = range
            .by_ref()
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (items, range.next().is_some())
    }

    /// Under the log's lock: catch up, decide each put against the whole
    /// log, append the new ones in one write and one fsync, apply them.
    fn commit(&self, puts: &[(String, Value)], instance: &str) -> Result<Vec<Put>, LogError> {
        let mut locked = self.log.lock()?;
        let mut st = self.state();
        loop {
            let chunk = self.log.read_after(st.offset)?;
            if chunk.records.is_empty() {
                break;
            }
            st.apply(chunk);
        }
        locked.cut_torn_tail(st.offset)?;
        let mut fresh: Vec<Record> = Vec::new();
        let mut in_batch: HashMap<&str, &Value> = HashMap::new();
        let mut outcomes = Vec::with_capacity(puts.len());
        for (key, value) in puts {
            let outcome = match st
                .map
                .get(key)
                .or_else(|| in_batch.get(key.as_str()).copied())
            {
                Some(old) if old == value => Put::Same,
                Some(old) => Put::Conflict(old.clone()),
                None => {
                    in_batch.insert(key, value);
                    fresh.push(Record {
                        key: key.clone(),
                        value: value.clone(),
                        instance: instance.to_string(),
                    });
                    Put::Created
                }
            };
            outcomes.push(outcome);
        }
        let written = locked.append(&fresh)?;
        let end = st.offset + written;
        st.apply(Chunk {
            records: fresh,
            end,
        });
        Ok(outcomes)
    }
}

type Reply = oneshot::Sender<Result<Put, String>>;

/// Appends on behalf of the request handlers. One thread takes every put
/// that is waiting and commits them together: one lock, one fsync (group
/// commit), which is what lets one instance take hundreds of writes a
/// second on a disk where an fsync takes milliseconds.
#[derive(Debug, Clone)]
pub struct Writer {
    queue: mpsc::Sender<((String, Value), Reply)>,
}

/// Most puts one commit carries.
const MAX_BATCH: usize = 512;

impl Writer {
    /// Starts the writer thread; it ends when the last `Writer` is dropped.
    pub fn start(replica: std::sync::Arc<Replica>, instance: String) -> Writer {
        let (queue, mut rx) = mpsc::channel::<((String, Value), Reply)>(4 * MAX_BATCH);
        std::thread::spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (puts, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                match replica.commit(&puts, &instance) {
                    Ok(outcomes) => {
                        for (reply, outcome) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "append failed");
                        for reply in replies {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        Writer { queue }
    }

    /// Stores `value` under `key` unless the key is taken; resolves once the
    /// record is fsynced and applied here.
    pub async fn put(&self, key: String, value: Value) -> Result<Put, String> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send(((key, value), tx))
            .await
            .map_err(|_| "the writer has stopped".to_string())?;
        rx.await.map_err(|_| "the writer has stopped".to_string())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard("k1"), shard("k1"));
        let mut seen = [0; SHARDS];
        for i in 0..400 {
            seen[shard(&format!("run-{i}"))] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
    }

    #[tokio::test]
    async fn two_replicas_of_one_log_agree_and_lag_until_they_follow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kv.log");
        let a = Arc::new(Replica::open(&path).expect("open"));
        let b = Arc::new(Replica::open(&path).expect("open"));
        let (wa, wb) = (
            Writer::start(a.clone(), "a".into()),
            Writer::start(b.clone(), "b".into()),
        );
        assert_eq!(wa.put("k1".into(), json!(1)).await, Ok(Put::Created));
        assert_eq!(a.applied(), 1, "read-your-writes on a");
        assert_eq!(
            (
                b.applied(),
                b.head_by_shard().expect("head").iter().sum::<u64>()
            ),
            (0, 1)
        );
        // b's writer catches up under the lock before it decides.
        assert_eq!(wb.put("k1".into(), json!(1)).await, Ok(Put::Same));
        assert_eq!(
            wb.put("k1".into(), json!(2)).await,
            Ok(Put::Conflict(json!(1)))
        );
        assert_eq!(wb.put("k2".into(), json!(2)).await, Ok(Put::Created));
        assert_eq!(a.follow().expect("follow"), 1);
        let (k1, k2) = (("k1".to_string(), json!(1)), ("k2".to_string(), json!(2)));
        assert_eq!(a.page("", None, 10), (vec![k1.clone(), k2.clone()], false));
        assert_eq!(a.page("", None, 1), (vec![k1.clone()], true));
        assert_eq!(a.page("", Some("k1"), 1), (vec![k2.clone()], false));
        assert_eq!(a.page("k2", None, 10), (vec![k2.clone()], false));
        assert_eq!(a.page("k1", Some("a"), 10), (vec![k1], false));
        assert_eq!(a.page("k1", Some("k1"), 10), (vec![], false));
        assert_eq!(a.page("x", None, 10), (vec![], false));
    }

    #[tokio::test]
    async fn one_batch_decides_duplicates_within_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Replica::open(&dir.path().join("kv.log")).expect("open");
        let puts = [
            ("k".to_string(), json!(1)),
            ("k".to_string(), json!(1)),
            ("k".to_string(), json!(2)),
        ];
        let outcomes = r.commit(&puts, "a").expect("commit");
        assert_eq!(outcomes, [Put::Created, Put::Same, Put::Conflict(json!(1))]);
        assert_eq!(r.head_by_shard().expect("head").iter().sum::<u64>(), 1);
    }
}
