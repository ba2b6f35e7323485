//! The pure core of the reconciliation: every acknowledged order against every
//! stored order, with no I/O.
//!
//! Memory is the point. One ack is one 40-byte [`Entry`] plus its id bytes in a
//! shared arena; there is no per-id allocation and no hash-map overhead. The
//! entries are sorted by a 64-bit hash of the id, and a directory indexed by
//! the hash's top bits gives each bucket's slice of entries: because the hash
//! is uniform a bucket holds a few entries, so an order is found in O(1)
//! expected time by a short scan of one bucket. Equal hashes are never trusted: the id
//! bytes are compared, so a hash collision can neither merge two orders nor
//! invent a duplicate.

use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasher;

use handover_contract::order::{parse_items_digest, ItemsDigest};
use handover_contract::{AckRecord, Order, Outcome};

use super::{NonOkIds, ReconcileReport};

/// Ids longer than this are refused: the app allows 64 characters.
pub const MAX_ID_LEN: usize = u16::MAX as usize;

/// Why an ack cannot be taken in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("order id is empty")]
    EmptyId,
    #[error("order id is {0} bytes long (at most {MAX_ID_LEN})")]
    IdTooLong(usize),
    #[error("items_digest {0:?} is not 16 hex digits")]
    BadDigest(String),
    #[error("more than {} acks: the ledger's arena is full", u32::MAX)]
    Full,
}

const HAS_USER: u8 = 1;
const HAS_ITEMS: u8 = 2;
const MISMATCH: u8 = 4;
/// Every content field the store listed for this id was compared with one
/// the ack carried (and the store listed at least one).
const CHECKED: u8 = 8;

/// One distinct id from the ack log and what B said about it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    /// Arena offset (high 48 bits) and length (low 16 bits) of the id.
    id: u64,
    /// Hash of the `user_id` that was sent.
    user: u64,
    /// `items_digest` that was sent, parsed.
    items: u64,
    /// Position of the first ack of this id, so reported ids come in send order.
    seq: u32,
    /// Ack lines for this id (saturating).
    acks: u8,
    /// Times B listed this id (saturating).
    stored: u8,
    /// The strongest outcome among this id's acks.
    outcome: u8,
    flags: u8,
}

fn outcome_code(o: Outcome) -> u8 {
    match o {
        Outcome::Rejected => 0,
        Outcome::Indeterminate => 1,
        Outcome::Ok => 2,
    }
}

/// The fields of one ack the reconciliation needs, borrowed from wherever
/// the ack was parsed (an [`AckRecord`], or a line of the log directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckView<'a> {
    pub id: &'a str,
    pub outcome: Outcome,
    pub user_id: Option<&'a str>,
    pub items_digest: Option<&'a str>,
}

impl<'a> From<&'a AckRecord> for AckView<'a> {
    fn from(a: &'a AckRecord) -> Self {
        AckView {
            id: &a.id,
            outcome: a.outcome,
            user_id: a.user_id.as_deref(),
            items_digest: a.items_digest.as_deref(),
        }
    }
}

/// What the reconciliation needs of a stored order: its id and, where the
/// source lists them, its user and the digest of its content — the
/// example app's [`handover_contract::order::line_items_digest`], or another
/// service's [`handover_contract::order::content_digest`] — as a number.
///
/// A field the source does not list (`None`) is not compared: the order's
/// content counts as unchecked, never as mismatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderView<'a> {
    pub id: &'a str,
    pub user_id: Option<&'a str>,
    pub items_digest: Option<u64>,
}

impl<'a> OrderView<'a> {
    /// A stored id with nothing to compare.
    pub fn id_only(id: &'a str) -> Self {
        OrderView {
            id,
            user_id: None,
            items_digest: None,
        }
    }
}

impl<'a> From<&'a Order> for OrderView<'a> {
    fn from(o: &'a Order) -> Self {
        OrderView {
            id: &o.id,
            user_id: Some(&o.user_id),
            items_digest: Some(
                o.line_items
                    .iter()
                    .fold(ItemsDigest::new(), |mut d, i| {
                        d.push(&i.product, i.quantity);
                        d
                    })
                    .finish(),
            ),
        }
    }
}

/// Collects acks; [`AckIndex::seal`] turns it into a [`Ledger`].
pub struct AckIndex {
    hasher: RandomState,
    /// All ones, except in tests that force hash collisions.
    mask: u64,
    entries: Vec<Entry>,
    arena: Vec<u8>,
    counts: [u64; 3],
    /// The runs (`{run_id}` of `{run_id}-{seq}` ids) the acks belong to.
    runs: Vec<Box<str>>,
    /// An id outside that pattern, or too many runs: judge every stored order.
    unscoped: bool,
}

/// More distinct runs than this in one reconciliation means the ids do not
/// follow the feeder's `{run_id}-{seq}` pattern: scoping is switched off.
const MAX_RUNS: usize = 64;

/// The run an id belongs to: what precedes the last `-` when all digits follow.
fn run_of(id: &str) -> Option<&str> {
    let (run, seq) = id.rsplit_once('-')?;
    (!run.is_empty() && !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit())).then_some(run)
}

impl Default for AckIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl AckIndex {
    pub fn new() -> Self {
        AckIndex {
            hasher: RandomState::new(),
            mask: u64::MAX,
            entries: Vec::new(),
            arena: Vec::new(),
            counts: [0; 3],
            runs: Vec::new(),
            unscoped: false,
        }
    }

    /// No ack taken in yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// An empty index that hashes like this one, to be filled on another
    /// thread and [`AckIndex::append`]ed.
    pub fn fork(&self) -> AckIndex {
        AckIndex {
            hasher: self.hasher.clone(),
            mask: self.mask,
            entries: Vec::new(),
            arena: Vec::new(),
            counts: [0; 3],
            runs: Vec::new(),
            unscoped: false,
        }
    }

    fn note_run(&mut self, id: &str) {
        match run_of(id) {
            None => self.unscoped = true,
            Some(run) if self.runs.iter().any(|r| &**r == run) => {}
            Some(_) if self.runs.len() >= MAX_RUNS => self.unscoped = true,
            Some(run) => self.runs.push(run.into()),
        }
    }

    /// Adds a fork's acks after this index's own, keeping send order.
    pub fn append(&mut self, other: AckIndex) -> Result<(), LedgerError> {
        let seq_base = u32::try_from(self.entries.len()).map_err(|_| LedgerError::Full)?;
        let off_base = self.arena.len() as u64;
        if u32::try_from(self.entries.len() + other.entries.len()).is_err()
            || off_base + other.arena.len() as u64 >= 1 << 48
        {
            return Err(LedgerError::Full);
        }
        self.entries.extend(other.entries.into_iter().map(|mut e| {
            e.seq += seq_base;
            e.id += off_base << 16;
            e
        }));
        self.arena.extend_from_slice(&other.arena);
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.unscoped |= other.unscoped;
        for run in &other.runs {
            self.note_run(&format!("{run}-0"));
        }
        Ok(())
    }

    /// Takes in one ack line. A bad line changes nothing.
    pub fn push<'a>(&mut self, ack: impl Into<AckView<'a>>) -> Result<(), LedgerError> {
        let ack = ack.into();
        let id = ack.id.as_bytes();
        if id.is_empty() {
            return Err(LedgerError::EmptyId);
        }
        if id.len() > MAX_ID_LEN {
            return Err(LedgerError::IdTooLong(id.len()));
        }
        let mut flags = 0;
        let items = match ack.items_digest {
            Some(d) => {
                flags |= HAS_ITEMS;
                parse_items_digest(d).ok_or_else(|| LedgerError::BadDigest(d.to_string()))?
            }
            None => 0,
        };
        let user = match ack.user_id {
            Some(u) => {
                flags |= HAS_USER;
                self.hasher.hash_one(u)
            }
            None => 0,
        };
        let seq = u32::try_from(self.entries.len()).map_err(|_| LedgerError::Full)?;
        let off = self.arena.len() as u64;
        if off >= 1 << 48 {
            return Err(LedgerError::Full);
        }
        self.note_run(ack.id);
        self.arena.extend_from_slice(id);
        self.entries.push(Entry {
            hash: self.hasher.hash_one(id) & self.mask,
            id: off << 16 | id.len() as u64,
            user,
            items,
            seq,
            acks: 1,
            stored: 0,
            outcome: outcome_code(ack.outcome),
            flags,
        });
        self.counts[outcome_code(ack.outcome) as usize] += 1;
        Ok(())
    }

    /// Sorts by hash and folds repeated ids into one entry (remembering that
    /// they repeated).
    pub fn seal(self) -> Ledger {
        let AckIndex {
            hasher,
            mask,
            mut entries,
            arena,
            counts,
            runs,
            unscoped,
        } = self;
        let acked_total = entries.len() as u64;
        entries.sort_unstable_by(|a, b| {
            a.hash
                .cmp(&b.hash)
                .then_with(|| id_of(&arena, a).cmp(id_of(&arena, b)))
                .then_with(|| a.seq.cmp(&b.seq))
        });
        entries.dedup_by(|later, first| {
            if later.hash != first.hash || id_of(&arena, later) != id_of(&arena, first) {
                return false;
            }
            first.acks = first.acks.saturating_add(later.acks);
            if later.outcome > first.outcome {
                first.outcome = later.outcome;
            }
            if first.flags & HAS_USER == 0 && later.flags & HAS_USER != 0 {
                first.user = later.user;
                first.flags |= HAS_USER;
            }
            if first.flags & HAS_ITEMS == 0 && later.flags & HAS_ITEMS != 0 {
                first.items = later.items;
                first.flags |= HAS_ITEMS;
            }
            true
        });
        entries.shrink_to_fit();
        let (shift, directory) = directory(&entries);
        Ledger {
            shift,
            directory,
            hasher,
            mask,
            entries,
            arena,
            unknown: HashMap::new(),
            acked_total,
            counts,
            stored_total: 0,
            scope: (!unscoped && !runs.is_empty()).then_some(runs),
            foreign: 0,
        }
    }
}

/// A table of where each hash prefix starts in the sorted `entries`:
/// 2 bytes per entry buys lookups with no search at all.
fn directory(entries: &[Entry]) -> (u32, Vec<u32>) {
    let slots = (entries.len() / 2).max(2).next_power_of_two();
    let shift = 64 - slots.trailing_zeros();
    let mut dir = vec![0u32; slots + 1];
    let mut at = 0usize;
    for (slot, start) in dir.iter_mut().enumerate() {
        while at < entries.len() && ((entries[at].hash >> shift) as usize) < slot {
            at += 1;
        }
        *start = at as u32;
    }
    (shift, dir)
}

/// The sealed ack index, now taking in B's orders.
pub struct Ledger {
    /// `directory[h >> shift]..directory[(h >> shift) + 1]` is where entries
    /// with hash `h` are: about two per slot, so a lookup is O(1).
    shift: u32,
    directory: Vec<u32>,
    hasher: RandomState,
    mask: u64,
    entries: Vec<Entry>,
    arena: Vec<u8>,
    /// Orders B holds that no ack mentions, with how often B listed each.
    unknown: HashMap<Box<str>, u32>,
    acked_total: u64,
    counts: [u64; 3],
    stored_total: u64,
    /// The runs whose ids are judged; `None`: every stored order is.
    scope: Option<Vec<Box<str>>>,
    /// Stored orders outside the scope: other clients' or earlier runs' data.
    foreign: u64,
}

impl Ledger {
    /// Judges every stored order, not only those of the ack logs' runs: for
    /// a store that only this run's feeder writes to.
    pub fn judge_all_orders(&mut self) {
        self.scope = None;
    }

    fn in_scope(&self, id: &str) -> bool {
        match &self.scope {
            None => true,
            Some(runs) => run_of(id).is_some_and(|run| runs.iter().any(|r| &**r == run)),
        }
    }

    /// The runs the ack logs' ids belong to (`{run}` of `{run}-{seq}`);
    /// `None` when an id is outside that pattern or there are too many, and
    /// after [`Ledger::judge_all_orders`].
    pub fn runs(&self) -> Option<&[Box<str>]> {
        self.scope.as_deref()
    }

    /// Ack lines taken in.
    pub fn acked_total(&self) -> u64 {
        self.acked_total
    }

    /// Distinct ids in the ack log.
    pub fn distinct_acked(&self) -> usize {
        self.entries.len()
    }

    /// Takes in one order as B lists it.
    pub fn observe<'a>(&mut self, order: impl Into<OrderView<'a>>) {
        let order = order.into();
        self.stored_total += 1;
        let id = order.id.as_bytes();
        let Some(i) = self.find(id) else {
            if self.in_scope(order.id) {
                *self.unknown.entry(order.id.into()).or_insert(0) += 1;
            } else {
                self.foreign += 1;
            }
            return;
        };
        let first_sight = self.entries[i].stored == 0;
        let e = &mut self.entries[i];
        e.stored = e.stored.saturating_add(1);
        if !first_sight {
            return;
        }
        // A field is compared only when both sides have it; the content is
        // checked when every field the store listed had an ack field to meet.
        let mut listed = 0;
        let mut differs = false;
        if let Some(user) = order.user_id {
            listed |= HAS_USER;
            differs |= e.flags & HAS_USER != 0 && self.hasher.hash_one(user) != e.user;
        }
        if let Some(items) = order.items_digest {
            listed |= HAS_ITEMS;
            differs |= e.flags & HAS_ITEMS != 0 && items != e.items;
        }
        if differs {
            e.flags |= MISMATCH;
        }
        if listed != 0 && e.flags & listed == listed {
            e.flags |= CHECKED;
        }
    }

    fn find(&self, id: &[u8]) -> Option<usize> {
        let h = self.hasher.hash_one(id) & self.mask;
        let b = (h >> self.shift) as usize;
        let (lo, hi) = (self.directory[b] as usize, self.directory[b + 1] as usize);
        self.entries[lo..hi]
            .iter()
            .position(|e| e.hash == h && id_of(&self.arena, e) == id)
            .map(|at| lo + at)
    }

    /// Classifies every id; keeps at most `max_ids` ids per category, the
    /// earliest sent first.
    pub fn finish(self, max_ids: usize) -> ReconcileReport {
        let mut r = ReconcileReport {
            acked_total: self.acked_total,
            acked_rejected: self.counts[0],
            acked_indeterminate: self.counts[1],
            acked_ok: self.counts[2],
            acked_distinct: self.entries.len() as u64,
            stored_total: self.stored_total,
            ..ReconcileReport::default()
        };
        let mut keep = Keep::new(max_ids);
        for e in &self.entries {
            let idx = e.seq;
            if e.acks > 1 || e.stored > 1 {
                r.duplicated += 1;
                keep.add(Cat::Duplicated, idx, e);
            }
            let present = e.stored > 0;
            if present && e.flags & CHECKED == 0 {
                r.content_unchecked += 1;
            }
            match (e.outcome, present) {
                (2, false) => {
                    r.lost += 1;
                    keep.add(Cat::Lost, idx, e);
                }
                (1, false) => r.indeterminate_absent += 1,
                (0, false) => r.rejected_absent += 1,
                (0, true) => {
                    r.unexpected += 1;
                    r.rejected_present += 1;
                    keep.add(Cat::RejectedPresent, idx, e);
                    keep.add(Cat::Unexpected, idx, e);
                }
                (_, true) if e.flags & MISMATCH != 0 => {
                    r.mismatched += 1;
                    keep.add(Cat::Mismatched, idx, e);
                }
                (2, true) => r.ok += 1,
                _ => {
                    r.recovered += 1;
                    keep.add(Cat::Recovered, idx, e);
                }
            }
        }
        r.stored_distinct = r.ok + r.recovered + r.mismatched + r.rejected_present;
        let mut never_sent: Vec<(&Box<str>, u32)> =
            self.unknown.iter().map(|(k, v)| (k, *v)).collect();
        never_sent.sort_unstable();
        for (id, times) in never_sent {
            r.unexpected += 1;
            r.never_sent += 1;
            r.stored_distinct += 1;
            keep.add_str(Cat::Unexpected, id);
            if times > 1 {
                r.duplicated += 1;
                keep.add_str(Cat::Duplicated, id);
            }
        }
        r.foreign = self.foreign;
        r.ids = keep.into_ids(&self.arena);
        r.ids_truncated = keep_truncated(&r, max_ids);
        r
    }
}

fn keep_truncated(r: &ReconcileReport, max: usize) -> bool {
    let over = |n: u64| n > max as u64;
    over(r.lost)
        || over(r.unexpected)
        || over(r.rejected_present)
        || over(r.recovered)
        || over(r.duplicated)
        || over(r.mismatched)
}

#[derive(Clone, Copy)]
enum Cat {
    Lost,
    Unexpected,
    RejectedPresent,
    Recovered,
    Duplicated,
    Mismatched,
}

/// The earliest-sent `max` ids of each category: a bounded max-heap on the
/// ack position, so memory stays `6 × max` however many orders are off.
struct Keep {
    max: usize,
    heaps: [BinaryHeap<(u32, u64)>; 6],
    /// Ids that only B knows (no ack position), in id order.
    extra: [Vec<Box<str>>; 6],
}

impl Keep {
    fn new(max: usize) -> Self {
        Keep {
            max,
            heaps: Default::default(),
            extra: Default::default(),
        }
    }

    fn add(&mut self, cat: Cat, seq: u32, e: &Entry) {
        let heap = &mut self.heaps[cat as usize];
        if self.max == 0 {
            return;
        }
        if heap.len() < self.max {
            heap.push((seq, e.id));
        } else if heap.peek().is_some_and(|top| top.0 > seq) {
            heap.pop();
            heap.push((seq, e.id));
        }
    }

    fn add_str(&mut self, cat: Cat, id: &str) {
        let i = cat as usize;
        if self.heaps[i].len() + self.extra[i].len() < self.max {
            self.extra[i].push(id.into());
        }
    }

    fn into_ids(self, arena: &[u8]) -> NonOkIds {
        let mut lists: Vec<Vec<String>> = Vec::with_capacity(6);
        for (heap, extra) in self.heaps.into_iter().zip(self.extra) {
            let mut sorted = heap.into_vec();
            sorted.sort_unstable();
            let mut ids: Vec<String> = sorted
                .into_iter()
                .map(|(_, packed)| String::from_utf8_lossy(id_bytes(arena, packed)).into_owned())
                .collect();
            for id in extra {
                if ids.len() < self.max {
                    ids.push(id.into());
                }
            }
            lists.push(ids);
        }
        let mut it = lists.into_iter();
        let mut next = || it.next().unwrap_or_default();
        NonOkIds {
            lost: next(),
            unexpected: next(),
            rejected_present: next(),
            recovered: next(),
            duplicated: next(),
            mismatched: next(),
        }
    }
}

fn id_bytes(arena: &[u8], packed: u64) -> &[u8] {
    let off = (packed >> 16) as usize;
    let len = (packed & 0xffff) as usize;
    arena.get(off..off + len).unwrap_or_default()
}

fn id_of<'a>(arena: &'a [u8], e: &Entry) -> &'a [u8] {
    id_bytes(arena, e.id)
}

/// Reconciles in-memory sets: the whole algorithm, for callers that already
/// hold the records (tests, small tools).
pub fn reconcile_sets<'a>(
    acks: impl IntoIterator<Item = &'a AckRecord>,
    orders: impl IntoIterator<Item = &'a Order>,
    max_ids: usize,
) -> Result<ReconcileReport, LedgerError> {
    let mut index = AckIndex::new();
    for ack in acks {
        index.push(ack)?;
    }
    let mut ledger = index.seal();
    for order in orders {
        ledger.observe(order);
    }
    Ok(ledger.finish(max_ids))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use handover_contract::order::line_items_digest;
    use handover_contract::LineItem;

    fn items(n: u32) -> Vec<LineItem> {
        vec![LineItem {
            product: format!("p{n}"),
            quantity: n,
        }]
    }

    fn ack(id: &str, outcome: Outcome) -> AckRecord {
        AckRecord {
            id: id.into(),
            due_ns: 0,
            done_ns: 0,
            outcome,
            status: None,
            instance: None,
            latency_us: 0,
            user_id: Some("u1".into()),
            items_digest: Some(line_items_digest(&items(1))),
        }
    }

    fn order(id: &str) -> Order {
        Order {
            id: id.into(),
            user_id: "u1".into(),
            line_items: items(1),
            placed_at: "2024-01-01T00:00:00Z".into(),
            placed_by: "b".into(),
        }
    }

    #[test]
    fn every_category_is_counted_and_named() {
        use Outcome::*;
        let acks = vec![
            ack("ok1", Ok),
            ack("ok2", Ok),
            ack("lost1", Ok),
            ack("rec1", Indeterminate),
            ack("indet-absent", Indeterminate),
            ack("rej-absent", Rejected),
            ack("rej-present", Rejected),
            ack("dup-ack", Ok),
            ack("dup-ack", Ok),
            ack("dup-b", Ok),
            ack("mis-user", Ok),
            ack("mis-items", Ok),
        ];
        let mut mis_user = order("mis-user");
        mis_user.user_id = "u2".into();
        let mut mis_items = order("mis-items");
        mis_items.line_items = items(2);
        let orders = vec![
            order("ok1"),
            order("ok2"),
            order("rec1"),
            order("rej-present"),
            order("dup-ack"),
            order("dup-b"),
            order("dup-b"),
            mis_user,
            mis_items,
            order("stranger"),
        ];
        let r = reconcile_sets(&acks, &orders, 10).unwrap();
        assert_eq!(r.acked_total, 12);
        assert_eq!(r.acked_distinct, 11);
        assert_eq!(
            (r.acked_ok, r.acked_rejected, r.acked_indeterminate),
            (8, 2, 2)
        );
        assert_eq!(r.stored_total, 10);
        assert_eq!(r.stored_distinct, 9);
        // dup-ack and dup-b are present and match: ok, but also duplicated.
        assert_eq!(r.ok, 4);
        assert_eq!(r.lost, 1);
        assert_eq!(r.recovered, 1);
        assert_eq!(r.indeterminate_absent, 1);
        assert_eq!(r.rejected_absent, 1);
        assert_eq!(r.rejected_present, 1);
        assert_eq!(r.never_sent, 1);
        assert_eq!(r.unexpected, 2);
        assert_eq!(r.duplicated, 2);
        assert_eq!(r.mismatched, 2);
        assert_eq!(r.ids.lost, ["lost1"]);
        assert_eq!(r.ids.recovered, ["rec1"]);
        assert_eq!(r.ids.rejected_present, ["rej-present"]);
        assert_eq!(r.ids.unexpected, ["rej-present", "stranger"]);
        assert_eq!(r.ids.duplicated, ["dup-ack", "dup-b"]);
        assert_eq!(r.ids.mismatched, ["mis-user", "mis-items"]);
        assert!(!r.ids_truncated);
        assert!(!r.passed());
    }

    #[test]
    fn a_clean_run_passes_and_sums_up() {
        let acks: Vec<_> = (0..1000)
            .map(|i| ack(&format!("o{i}"), Outcome::Ok))
            .collect();
        let orders: Vec<_> = (0..1000).rev().map(|i| order(&format!("o{i}"))).collect();
        let r = reconcile_sets(&acks, &orders, 10).unwrap();
        assert_eq!(r.ok, 1000);
        assert_eq!(r.stored_distinct, 1000);
        assert!(r.passed(), "{r:?}");
        assert_eq!(r.content_unchecked, 0);
    }

    #[test]
    fn ids_are_capped_and_kept_in_send_order() {
        let acks: Vec<_> = (0..500)
            .map(|i| ack(&format!("o{i:04}"), Outcome::Ok))
            .collect();
        let r = reconcile_sets(&acks, &[], 3).unwrap();
        assert_eq!(r.lost, 500);
        assert_eq!(r.ids.lost, ["o0000", "o0001", "o0002"]);
        assert!(r.ids_truncated);
    }

    #[test]
    fn orders_of_other_runs_are_counted_not_judged() {
        let index = || {
            let mut index = AckIndex::new();
            for seq in 0..3 {
                let id = format!("run1-{seq:010}");
                index
                    .push(AckView {
                        id: &id,
                        outcome: Outcome::Ok,
                        user_id: None,
                        items_digest: None,
                    })
                    .unwrap();
            }
            index
        };
        let orders = [
            "run1-0000000000",
            "run1-0000000001",
            "run1-0000000002",
            "run1-0000000009", // this run's namespace, never sent: unexpected
            "old-0000000001",  // an earlier run's order
            "legacy order 7",  // another client's
        ];
        let judge = |all: bool| {
            let mut ledger = index().seal();
            if all {
                ledger.judge_all_orders();
            }
            for id in orders {
                ledger.observe(OrderView::id_only(id));
            }
            ledger.finish(10)
        };
        let scoped = judge(false);
        assert_eq!((scoped.ok, scoped.unexpected, scoped.foreign), (3, 1, 2));
        let strict = judge(true);
        assert_eq!((strict.ok, strict.unexpected, strict.foreign), (3, 3, 0));
    }

    #[test]
    fn ids_outside_the_run_pattern_switch_scoping_off() {
        assert_eq!(run_of("abc-0000000001"), Some("abc"));
        assert_eq!(run_of("a-b-12"), Some("a-b"));
        assert_eq!(run_of("abc-x1"), None);
        assert_eq!(run_of("-12"), None);
        assert_eq!(run_of("plain"), None);
        let mut index = AckIndex::new();
        for id in ["order-1", "free form"] {
            index
                .push(AckView {
                    id,
                    outcome: Outcome::Ok,
                    user_id: None,
                    items_digest: None,
                })
                .unwrap();
        }
        let mut ledger = index.seal();
        ledger.observe(OrderView::id_only("someone else's"));
        let r = ledger.finish(10);
        assert_eq!((r.unexpected, r.foreign), (1, 0));
    }

    #[test]
    fn never_sent_duplicates_are_caught() {
        let r = reconcile_sets(&[], &[order("x"), order("x"), order("y")], 10).unwrap();
        assert_eq!(r.unexpected, 2);
        assert_eq!(r.never_sent, 2);
        assert_eq!(r.duplicated, 1);
        assert_eq!(r.ids.duplicated, ["x"]);
        assert_eq!(r.stored_distinct, 2);
    }

    #[test]
    fn acks_without_content_are_reconciled_but_counted_unchecked() {
        let mut a = ack("bare", Outcome::Ok);
        a.user_id = None;
        a.items_digest = None;
        let mut o = order("bare");
        o.user_id = "anyone".into();
        let r = reconcile_sets(&[a], &[o], 10).unwrap();
        assert_eq!(r.ok, 1);
        assert_eq!(r.content_unchecked, 1);
    }

    #[test]
    fn a_content_digest_alone_is_compared_and_a_missing_one_is_unchecked() {
        use handover_contract::order::text_digest;
        let hex = |text: &str| format!("{:016x}", text_digest(text));
        let (v1, v2) = (hex("v1"), hex("v2"));
        fn ack<'a>(id: &'a str, digest: Option<&'a str>) -> AckView<'a> {
            AckView {
                id,
                outcome: Outcome::Ok,
                user_id: None,
                items_digest: digest,
            }
        }
        let mut index = AckIndex::new();
        for a in [
            ack("same", Some(&v1)),
            ack("changed", Some(&v1)),
            ack("ids-only", Some(&v1)),
            ack("no-ack-digest", None),
        ] {
            index.push(a).unwrap();
        }
        let mut ledger = index.seal();
        let stored = |id, text: &str| OrderView {
            id,
            user_id: None,
            items_digest: Some(text_digest(text)),
        };
        ledger.observe(stored("same", "v1"));
        ledger.observe(stored("changed", "v2"));
        ledger.observe(OrderView::id_only("ids-only"));
        ledger.observe(stored("no-ack-digest", "v1"));
        let r = ledger.finish(10);
        assert_eq!((r.ok, r.mismatched), (3, 1), "{r:#?}");
        assert_eq!(r.ids.mismatched, ["changed"]);
        // Only "same" and "changed" had a digest on both sides.
        assert_eq!(r.content_unchecked, 2);
        assert_ne!(v1, v2);
    }

    #[test]
    fn a_listing_without_a_user_still_checks_the_items() {
        // The example app's ack (user and items) against a source that
        // lists items only: compared, and counted as checked.
        let mut index = AckIndex::new();
        index.push(&ack("a", Outcome::Ok)).unwrap();
        index.push(&ack("b", Outcome::Ok)).unwrap();
        let mut ledger = index.seal();
        let digest = OrderView::from(&order("a")).items_digest;
        ledger.observe(OrderView {
            id: "a",
            user_id: None,
            items_digest: digest,
        });
        ledger.observe(OrderView {
            id: "b",
            user_id: None,
            items_digest: Some(0),
        });
        let r = ledger.finish(10);
        assert_eq!(
            (r.ok, r.mismatched, r.content_unchecked),
            (1, 1, 0),
            "{r:#?}"
        );
    }

    #[test]
    fn a_later_ok_ack_wins_over_an_earlier_indeterminate_one() {
        let acks = [ack("x", Outcome::Indeterminate), ack("x", Outcome::Ok)];
        let r = reconcile_sets(&acks, &[], 10).unwrap();
        assert_eq!(r.lost, 1);
        assert_eq!(r.duplicated, 1);
    }

    #[test]
    fn bad_acks_are_refused() {
        let mut a = ack("", Outcome::Ok);
        assert_eq!(AckIndex::new().push(&a), Err(LedgerError::EmptyId));
        a.id = "x".into();
        a.items_digest = Some("xyz".into());
        assert!(matches!(
            AckIndex::new().push(&a),
            Err(LedgerError::BadDigest(_))
        ));
        a.items_digest = None;
        a.id = "x".repeat(MAX_ID_LEN + 1);
        assert!(matches!(
            AckIndex::new().push(&a),
            Err(LedgerError::IdTooLong(_))
        ));
    }

    #[test]
    fn forks_appended_in_order_equal_one_index() {
        let acks: Vec<_> = (0..30)
            .map(|i| ack(&format!("f{i:02}"), Outcome::Ok))
            .collect();
        let mut index = AckIndex::new();
        index.push(&acks[0]).unwrap();
        let mut parts = vec![index.fork(), index.fork()];
        for a in &acks[1..20] {
            parts[0].push(a).unwrap();
        }
        for a in &acks[20..] {
            parts[1].push(a).unwrap();
        }
        parts[1].push(&acks[3]).unwrap();
        for part in parts {
            index.append(part).unwrap();
        }
        let mut ledger = index.seal();
        ledger.observe(&order("f29"));
        let r = ledger.finish(5);
        assert_eq!(r.acked_total, 31);
        assert_eq!(r.acked_distinct, 30);
        assert_eq!(r.ok, 1);
        assert_eq!(r.ids.lost, ["f00", "f01", "f02", "f03", "f04"]);
        assert_eq!(r.ids.duplicated, ["f03"]);
    }

    #[test]
    fn colliding_hashes_are_told_apart_by_the_id() {
        // Only four hash values for 300 ids: every lookup has to compare ids.
        let mut index = AckIndex::new();
        index.mask = 0xc000_0000_0000_0000;
        for i in 0..300 {
            index.push(&ack(&format!("c{i}"), Outcome::Ok)).unwrap();
        }
        index.push(&ack("c7", Outcome::Ok)).unwrap();
        let mut ledger = index.seal();
        assert_eq!(ledger.distinct_acked(), 300);
        for i in (0..300).filter(|i| i % 3 != 0) {
            ledger.observe(&order(&format!("c{i}")));
        }
        ledger.observe(&order("c300"));
        let r = ledger.finish(1000);
        assert_eq!(r.ok, 200);
        assert_eq!(r.lost, 100);
        assert_eq!(r.never_sent, 1);
        assert_eq!(r.duplicated, 1);
        assert_eq!(r.ids.duplicated, ["c7"]);
        assert!(r
            .ids
            .lost
            .iter()
            .all(|id| id[1..].parse::<u32>().unwrap() % 3 == 0));
    }
}
