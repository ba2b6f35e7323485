//! Instance-change detection: which instance answers, when that changes, and
//! how long both answered (the overlap).
//!
//! A change is reported once, when the first reply of a new instance arrives
//! (`a → b`). While the old instance still answers, its replies extend the
//! overlap instead of producing events; the overlap is closed and reported
//! once the old instance has been silent for a settle period. So a proxy that
//! alternates between `a` and `b` for a while and then settles on `b` gives
//! one change and one overlap, never one line per reply.

use crate::histogram::{self, Hist};
use handover_contract::Handover;

/// Replies after the old instance fell silent are kept (latency only) in case
/// it answers again; capped so a long outage cannot grow memory.
const PENDING_CAP: usize = 1 << 16;

/// Something worth one line of output.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The first reply from `to` after `from` had been answering.
    Change {
        from: String,
        to: String,
        at_ns: u64,
    },
    /// The old instance stopped answering; `overlap_ms` is how long both did.
    OverlapEnded {
        from: String,
        to: String,
        first_new_ns: u64,
        last_old_ns: u64,
        overlap_ms: f64,
    },
}

#[derive(Debug)]
enum State {
    Empty,
    Stable {
        current: String,
    },
    Overlap {
        old: String,
        new: String,
        first_new_ns: u64,
        last_old_ns: u64,
    },
}

/// Tracks the answering instance over a stream of replies.
#[derive(Debug)]
pub struct InstanceTracker {
    state: State,
    settle_ns: u64,
    /// Latencies since the last reply of the old (or current) instance.
    pending: Vec<u64>,
    /// The first change of the run, finalised as the overlap grows.
    first: Option<Handover>,
    /// Latencies of every reply inside the first handover's window.
    window: Option<Hist>,
    changes: u64,
    /// Latest reply of the instance that a next change would move away
    /// from (the current one, or the new one during an overlap).
    last_current_ns: u64,
}

impl InstanceTracker {
    /// `settle_ns`: how long the old instance must stay silent before the
    /// overlap counts as over.
    pub fn new(settle_ns: u64) -> Self {
        InstanceTracker {
            state: State::Empty,
            settle_ns,
            pending: Vec::new(),
            first: None,
            window: None,
            changes: 0,
            last_current_ns: 0,
        }
    }

    /// Feeds one completed request. `instance` is `None` when the reply had
    /// no instance header or there was no reply at all.
    pub fn observe(
        &mut self,
        done_ns: u64,
        instance: Option<&str>,
        latency_us: u64,
        events: &mut Vec<Event>,
    ) {
        self.settle(done_ns, events);
        let Some(inst) = instance else {
            self.push_pending(latency_us);
            return;
        };
        match &mut self.state {
            State::Empty => {
                self.state = State::Stable {
                    current: inst.to_string(),
                };
                self.last_current_ns = done_ns;
                self.restart_pending(latency_us);
            }
            State::Stable { current } if current == inst => {
                self.last_current_ns = self.last_current_ns.max(done_ns);
                self.restart_pending(latency_us);
            }
            State::Stable { current } => {
                let from = std::mem::take(current);
                self.begin_change(from, inst.to_string(), done_ns, latency_us, events);
            }
            State::Overlap {
                old, last_old_ns, ..
            } if old == inst => {
                *last_old_ns = (*last_old_ns).max(done_ns);
                let last_old = *last_old_ns;
                if self.changes == 1 {
                    if let Some(first) = &mut self.first {
                        first.last_old_ns = first.last_old_ns.max(last_old);
                        first.overlap_ms = overlap_ms(first.first_new_ns, first.last_old_ns);
                    }
                    // Everything since the previous old reply is inside the window now.
                    if let Some(w) = &mut self.window {
                        for us in self.pending.drain(..) {
                            histogram::record(w, us);
                        }
                        histogram::record(w, latency_us);
                    }
                }
                self.pending.clear();
            }
            State::Overlap { new, .. } if new == inst => {
                self.last_current_ns = self.last_current_ns.max(done_ns);
                self.push_pending(latency_us);
            }
            State::Overlap { .. } => {
                // A third instance: the previous overlap is over, a new change begins.
                let from = self.close_overlap(events);
                self.begin_change(from, inst.to_string(), done_ns, latency_us, events);
            }
        }
    }

    /// Closes the overlap once the old instance has been silent long enough.
    pub fn settle(&mut self, now_ns: u64, events: &mut Vec<Event>) {
        if let State::Overlap { last_old_ns, .. } = &self.state {
            if now_ns.saturating_sub(*last_old_ns) >= self.settle_ns {
                self.close_overlap(events);
            }
        }
    }

    /// End of the run: an open overlap is reported as it stands.
    pub fn finish(&mut self, events: &mut Vec<Event>) {
        if matches!(self.state, State::Overlap { .. }) {
            self.close_overlap(events);
        }
    }

    /// The run's first change, with the p99 of the replies inside its window.
    pub fn handover(&self) -> Option<Handover> {
        let mut h = self.first.clone()?;
        h.window_p99_ms = self
            .window
            .as_ref()
            .filter(|w| !w.is_empty())
            .map(|w| w.value_at_quantile(0.99) as f64 / 1000.0);
        Some(h)
    }

    /// Number of changes seen.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    fn begin_change(
        &mut self,
        from: String,
        to: String,
        done_ns: u64,
        latency_us: u64,
        events: &mut Vec<Event>,
    ) {
        self.changes += 1;
        events.push(Event::Change {
            from: from.clone(),
            to: to.clone(),
            at_ns: done_ns,
        });
        if self.changes == 1 {
            // The window starts at the last reply of the old instance (the
            // head of `pending`) when there is no overlap.
            let mut w = histogram::new();
            for us in self.pending.drain(..) {
                histogram::record(&mut w, us);
            }
            histogram::record(&mut w, latency_us);
            self.window = Some(w);
        }
        let last_old_ns = self.last_current_ns;
        self.last_current_ns = done_ns;
        if self.changes == 1 {
            self.first = Some(Handover {
                from: from.clone(),
                to: to.clone(),
                first_new_ns: done_ns,
                last_old_ns,
                overlap_ms: 0.0,
                window_p99_ms: None,
            });
        }
        self.pending.clear();
        self.state = State::Overlap {
            old: from,
            new: to,
            first_new_ns: done_ns,
            last_old_ns,
        };
    }

    /// Returns the instance that now answers alone.
    fn close_overlap(&mut self, events: &mut Vec<Event>) -> String {
        let state = std::mem::replace(&mut self.state, State::Empty);
        match state {
            State::Overlap {
                old,
                new,
                first_new_ns,
                last_old_ns,
            } => {
                events.push(Event::OverlapEnded {
                    from: old,
                    to: new.clone(),
                    first_new_ns,
                    last_old_ns,
                    overlap_ms: overlap_ms(first_new_ns, last_old_ns),
                });
                self.pending.clear();
                self.state = State::Stable {
                    current: new.clone(),
                };
                new
            }
            other => {
                self.state = other;
                String::new()
            }
        }
    }

    fn restart_pending(&mut self, latency_us: u64) {
        self.pending.clear();
        self.push_pending(latency_us);
    }

    fn push_pending(&mut self, latency_us: u64) {
        if self.pending.len() < PENDING_CAP {
            self.pending.push(latency_us);
        }
    }
}

fn overlap_ms(first_new_ns: u64, last_old_ns: u64) -> f64 {
    last_old_ns.saturating_sub(first_new_ns) as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn feed(t: &mut InstanceTracker, replies: &[(u64, Option<&str>)]) -> Vec<Event> {
        let mut ev = Vec::new();
        for (at_ms, inst) in replies {
            t.observe(at_ms * MS, *inst, 1_000, &mut ev);
        }
        ev
    }

    #[test]
    fn one_instance_no_events() {
        let mut t = InstanceTracker::new(1_000 * MS);
        let ev = feed(&mut t, &[(1, Some("a")), (2, Some("a")), (3, None)]);
        assert!(ev.is_empty());
        assert!(t.handover().is_none());
    }

    #[test]
    fn clean_switch_is_one_change_without_overlap() {
        let mut t = InstanceTracker::new(1_000 * MS);
        let mut ev = feed(
            &mut t,
            &[
                (10, Some("a")),
                (20, Some("a")),
                (30, None),
                (40, Some("b")),
            ],
        );
        t.finish(&mut ev);
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert!(
            matches!(&ev[0], Event::Change { from, to, at_ns } if from == "a" && to == "b" && *at_ns == 40 * MS)
        );
        let h = t.handover().expect("handover");
        assert_eq!((h.first_new_ns, h.last_old_ns), (40 * MS, 20 * MS));
        assert_eq!(h.overlap_ms, 0.0);
        assert!(h.window_p99_ms.is_some());
    }

    #[test]
    fn alternation_then_settle_is_one_change_and_one_overlap() {
        let mut t = InstanceTracker::new(500 * MS);
        let mut replies = vec![(0, Some("a")), (100, Some("a"))];
        // a and b alternate from 200 ms to 1200 ms, then b alone until 3 s.
        for i in 0..=10u64 {
            let inst = if i % 2 == 0 { "b" } else { "a" };
            replies.push((200 + i * 100, Some(inst)));
        }
        for i in 0..18u64 {
            replies.push((1300 + i * 100, Some("b")));
        }
        let mut ev = feed(&mut t, &replies);
        t.finish(&mut ev);
        let changes = ev
            .iter()
            .filter(|e| matches!(e, Event::Change { .. }))
            .count();
        let ends: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                Event::OverlapEnded { overlap_ms, .. } => Some(*overlap_ms),
                _ => None,
            })
            .collect();
        assert_eq!(changes, 1, "{ev:?}");
        assert_eq!(ends, vec![900.0]);
        let h = t.handover().expect("handover");
        assert_eq!((h.first_new_ns, h.last_old_ns), (200 * MS, 1100 * MS));
        assert_eq!(h.overlap_ms, 900.0);
        assert_eq!(t.changes(), 1);
    }

    #[test]
    fn return_after_settling_is_a_second_change() {
        let mut t = InstanceTracker::new(100 * MS);
        let mut ev = feed(
            &mut t,
            &[
                (0, Some("a")),
                (10, Some("b")),
                (500, Some("b")),
                (600, Some("a")),
            ],
        );
        t.finish(&mut ev);
        let changes: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Change { from, to, .. } => Some(format!("{from}>{to}")),
                _ => None,
            })
            .collect();
        assert_eq!(changes, vec!["a>b", "b>a"]);
        let h = t.handover().expect("first handover");
        assert_eq!((h.from.as_str(), h.to.as_str()), ("a", "b"));
    }
}
