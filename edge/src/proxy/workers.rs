//! The proxy's threads: one single-threaded runtime per thread, each with
//! its own origin pool, and accepted client connections dealt to them in
//! turn.
//!
//! On the work-stealing runtime a request hopped between threads: the client
//! connection's task and the origin connection's task woke each other
//! across cores (0.42 futex calls per request under wrk, and the origin
//! connection's task often ran on the other core). With a client
//! connection, its origin connections and their tasks all on one thread,
//! a request is served without leaving it. Two edges with one worker each
//! carried ~40 % more than one edge with two workers (docs/benchmarks.md).
//! The cost: a busy thread cannot hand connections to an idle one, which
//! round-robin dealing of many keep-alive connections makes rare.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::runtime::{Builder, Handle};
use tokio_util::sync::CancellationToken;

/// The running proxy threads; dropping this stops them (tasks still on them
/// are dropped with their runtime).
pub(super) struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stop: CancellationToken,
}

impl Workers {
    /// Starts `count` threads (at least one), each blocked on its runtime
    /// until [`Workers`] is dropped.
    pub(super) fn start(count: usize) -> io::Result<Workers> {
        let stop = CancellationToken::new();
        let mut handles = Vec::with_capacity(count.max(1));
        for i in 0..count.max(1) {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let stopped = stop.clone();
            let started = std::thread::Builder::new()
                .name(format!("edge-proxy-{i}"))
                .spawn(move || runtime.block_on(stopped.cancelled()));
            if let Err(e) = started {
                stop.cancel();
                return Err(e);
            }
        }
        Ok(Workers {
            handles,
            next: AtomicUsize::new(0),
            stop,
        })
    }

    pub(super) fn len(&self) -> usize {
        self.handles.len()
    }

    /// Thread `i`'s runtime (`i` < [`Workers::len`]).
    pub(super) fn handle(&self, i: usize) -> &Handle {
        &self.handles[i % self.handles.len()]
    }

    /// The next thread in turn: its index and its runtime.
    pub(super) fn next(&self) -> (usize, &Handle) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        (i, &self.handles[i])
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_dealt_in_turn_to_distinct_threads() {
        let workers = Workers::start(2).unwrap();
        let names: Vec<String> = (0..4)
            .map(|_| {
                let (_, handle) = workers.next();
                let (tx, rx) = std::sync::mpsc::channel();
                handle.spawn(async move {
                    let name = std::thread::current().name().map(str::to_owned);
                    tx.send(name.unwrap_or_default()).unwrap();
                });
                rx.recv().unwrap()
            })
            .collect();
        assert_eq!(
            names,
            [
                "edge-proxy-0",
                "edge-proxy-1",
                "edge-proxy-0",
                "edge-proxy-1"
            ]
        );
    }

    #[test]
    fn zero_threads_means_one() {
        assert_eq!(Workers::start(0).unwrap().len(), 1);
    }
}
