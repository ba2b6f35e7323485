//! The task that keeps the projection in step with the store.
//!
//! It reports as [`Task::Follower`] in the store's task status: a failed
//! read, or a batch that skips a position, makes `/health` name it (503)
//! until a read from the last applied position succeeds. It never applies
//! past a hole: the subscription refuses the batch and the follower asks the
//! store again from where it is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::projection::Projection;
use crate::store::{EventStore, StoreError, StoredEvent, Subscription, Task};

/// Lets fault injection stop the follower from applying (`applied` stays
/// put while the head grows, as on an instance that lags): once
/// [`ApplyGate::pause`] returns, nothing more is applied until
/// [`ApplyGate::resume`].
pub struct ApplyGate {
    paused: watch::Sender<bool>,
    /// Held while a batch is applied, so `pause` waits for one in progress.
    applying: Mutex<()>,
}

impl Default for ApplyGate {
    fn default() -> Self {
        ApplyGate {
            paused: watch::Sender::new(false),
            applying: Mutex::new(()),
        }
    }
}

impl ApplyGate {
    /// Stops applying; returns once no batch is being applied.
    pub fn pause(&self) {
        let _applying = self.applying.lock().unwrap_or_else(|p| p.into_inner());
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Applies `events` unless paused; false (nothing applied) when paused.
    fn apply(&self, projection: &Projection, events: &[StoredEvent]) -> bool {
        let _applying = self.applying.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_paused() {
            return false;
        }
        projection.apply(events);
        true
    }

    /// Waits while paused; false if cancelled meanwhile.
    async fn open(&self, cancel: &CancellationToken) -> bool {
        let mut paused = self.paused.subscribe();
        tokio::select! {
            _ = cancel.cancelled() => false,
            r = paused.wait_for(|p| !*p) => r.is_ok(),
        }
    }
}

/// Applies every event after the projection's position, forever (until
/// cancelled). Store errors are logged, reported and retried with a short backoff.
pub async fn follow(
    store: Arc<dyn EventStore>,
    projection: Arc<Projection>,
    cancel: CancellationToken,
) {
    follow_gated(store, projection, cancel, Arc::new(ApplyGate::default())).await
}

/// [`follow`], applying only while `gate` is open.
pub async fn follow_gated(
    store: Arc<dyn EventStore>,
    projection: Arc<Projection>,
    cancel: CancellationToken,
    gate: Arc<ApplyGate>,
) {
    let mut sub = Subscription::new(store.clone(), projection.applied());
    let mut backoff = Duration::from_millis(50);
    // Whether a commit may cut the next backoff short: once per failure
    // streak until a full backoff has passed, so a store that keeps failing
    // reads while commits go on is not asked at the commit rate.
    let mut early = true;
    loop {
        if !gate.open(&cancel).await {
            return;
        }
        let read = tokio::select! {
            _ = cancel.cancelled() => return,
            read = sub.read() => read,
        };
        match read {
            Ok(events) => {
                store.tasks().ok(Task::Follower);
                backoff = Duration::from_millis(50);
                early = true;
                if events.is_empty() {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = sub.wait() => {}
                    }
                    continue;
                }
                // Paused after the read: hold the batch until resumed.
                while !gate.apply(&projection, &events) {
                    if !gate.open(&cancel).await {
                        return;
                    }
                }
            }
            Err(e) => {
                if matches!(e, StoreError::Corrupt(_)) {
                    tracing::error!(error = %e, applied = sub.position(), "event log broke its contract; reading again from the last applied position");
                } else {
                    tracing::warn!(error = %e, "reading the store failed; retrying");
                }
                store.tasks().failed(Task::Follower, e.to_string());
                // A commit seen meanwhile (the store is back: after a
                // JetStream leader election, this process's own append)
                // ends the wait early; replies wait for the follower.
                let woken = tokio::select! {
                    _ = cancel.cancelled() => return,
                    seen = sub.wait_at_most(backoff), if early => seen,
                    () = tokio::time::sleep(backoff), if !early => false,
                };
                early = !woken;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Waits until the projection holds everything the store had when called.
pub async fn catch_up(
    store: &dyn EventStore,
    projection: &Projection,
    timeout: Duration,
) -> Result<u64, StoreError> {
    let head = store.head().await?;
    if projection.wait_applied(head, timeout).await {
        Ok(head)
    } else {
        Err(StoreError::Unavailable(format!(
            "projection did not reach position {head} within {timeout:?} (at {})",
            projection.applied()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::scripted::ScriptedStore;

    fn start(
        store: &Arc<ScriptedStore>,
        gate: Arc<ApplyGate>,
    ) -> (Arc<Projection>, CancellationToken) {
        let projection = Arc::new(Projection::new());
        let cancel = CancellationToken::new();
        tokio::spawn(follow_gated(
            store.clone(),
            projection.clone(),
            cancel.clone(),
            gate,
        ));
        (projection, cancel)
    }

    async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        for _ in 0..500 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never: {what}");
    }

    /// Blind spot 6: a gap is an error the follower reports, and it applies
    /// nothing past it; once the missing position is readable, everything
    /// is applied in order and the follower is well again.
    #[tokio::test]
    async fn a_gap_stops_the_follower_and_fails_it_until_filled() {
        let store = ScriptedStore::with_positions([1, 2]);
        let (projection, cancel) = start(&store, Arc::default());
        eventually("1 and 2 applied", || projection.applied() == 2).await;
        assert_eq!(store.tasks().result(), Ok(()));

        store.add([4, 5]);
        eventually("the gap is reported", || {
            store.tasks().failure(Task::Follower).is_some()
        })
        .await;
        let why = store.tasks().failure(Task::Follower).unwrap_or_default();
        assert!(why.contains("position 3 was skipped"), "{why}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(projection.applied(), 2, "applied past the hole");
        assert_eq!(projection.company_ids().len(), 2);

        store.add([3]);
        eventually("caught up", || projection.applied() == 5).await;
        eventually("well again", || store.tasks().result().is_ok()).await;
        assert_eq!(projection.company_ids().len(), 5, "no event skipped");
        cancel.cancel();
    }

    #[tokio::test]
    async fn a_paused_gate_holds_applied_while_the_head_grows() {
        let store = ScriptedStore::with_positions([1]);
        let gate = Arc::new(ApplyGate::default());
        let (projection, cancel) = start(&store, gate.clone());
        eventually("1 applied", || projection.applied() == 1).await;
        gate.pause();
        assert!(gate.is_paused());
        store.add([2, 3]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(projection.applied(), 1);
        assert_eq!(*store.watch_head().borrow(), 3);
        assert_eq!(store.tasks().result(), Ok(()), "a pause is not a failure");
        gate.resume();
        eventually("resumed", || projection.applied() == 3).await;
        cancel.cancel();
    }

    /// After a JetStream leader election the store answers again, and a
    /// reply waits for the follower to apply its order: a follower deep in
    /// its error backoff (1 s) must not sleep it out once a commit shows the
    /// store is back. The clock is tokio's paused one, so the figure is exact.
    #[tokio::test(start_paused = true)]
    async fn a_commit_ends_the_error_backoff() {
        let store = ScriptedStore::with_positions([1, 2]);
        let (projection, cancel) = start(&store, Arc::default());
        eventually("1 and 2 applied", || projection.applied() == 2).await;
        store.add([4]);
        // 5 s of failed reads: the backoff has reached its 1 s ceiling.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(projection.applied(), 2);
        assert!(store.tasks().failure(Task::Follower).is_some());

        let back = tokio::time::Instant::now();
        // The hole filled and a new commit on top (the head moves).
        store.add([3, 5]);
        eventually("caught up", || projection.applied() == 5).await;
        let waited = back.elapsed();
        assert!(
            waited < Duration::from_millis(100),
            "the follower slept {waited:?} after the store was back"
        );
        cancel.cancel();
    }

    /// A store that keeps failing reads (here a hole that is never filled)
    /// while commits go on every millisecond: the follower retries at most
    /// twice per backoff (one early retry on a commit, one when the backoff
    /// is over), not once per commit.
    #[tokio::test(start_paused = true)]
    async fn commits_do_not_hurry_a_store_that_keeps_failing() {
        let store = ScriptedStore::with_positions([1]);
        let (projection, cancel) = start(&store, Arc::default());
        eventually("1 applied", || projection.applied() == 1).await;
        let before = store.reads();
        for position in 3..=3002 {
            store.add([position]);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let reads = store.reads() - before;
        assert_eq!(projection.applied(), 1, "applied past the hole");
        // Backoffs of 50, 100, 200, 400, 800 ms, then 1 s: under 20 tries
        // in 3 s even if each is cut short once; one per commit is 3,000.
        assert!(reads <= 24, "{reads} reads in 3 s of failures");
        cancel.cancel();
    }
}
