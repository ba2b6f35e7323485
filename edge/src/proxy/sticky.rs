//! Stickiness: which origin a client connection uses, and which origin
//! connection it keeps.
//!
//! Propagation is modeled per client connection, as on a real edge where a
//! client's connection lands on one edge server and each server learns of a
//! record change at its own moment: every client connection draws a point
//! `u` in [0, 1) (its coin) and sees the new record once `u · propagation`
//! has passed since the change. So the share of busy connections on the new
//! origin rises linearly across the window — also for long-lived, never-idle
//! keep-alive connections — and "both instances answer" lasts about the
//! window.
//!
//! `idle_timeout` is when a connection stops being busy: one whose last
//! request finished more than `idle_timeout` ago has lost its kept origin
//! connection, so its next request re-resolves the record and takes it as it
//! is now (every change made so far, whatever its coin); from then on it is
//! busy on that origin. A busy connection keeps its origin until its moment
//! in the window. A brand-new connection has no kept origin connection and
//! just its moment.
//!
//! Within that, a client connection stays on its origin connection while it
//! asks for the same host, is busy, the origin has not closed the connection
//! and routing still picks that origin. If the sticky origin then refuses
//! connections, the request is routed afresh instead of failing (the proxy
//! does that; see `Ride::sticky`).

use crate::routes::Viewer;
use crate::upstream::Sender;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The origin connection one client connection holds between requests.
pub(super) struct Held {
    pub(super) host: String,
    pub(super) origin: SocketAddr,
    pub(super) sender: Sender,
}

/// One client connection's side of stickiness.
pub(super) struct ClientConn {
    coin: f64,
    state: Mutex<ConnState>,
}

#[derive(Default)]
struct ConnState {
    held: Option<Held>,
    /// When its last request was answered (by the origin or the edge): the
    /// start of its idle time. `None` before its first request.
    last_done: Option<Instant>,
    /// When it last re-resolved the records after an idle spell.
    resolved_at: Option<Instant>,
}

/// How one request starts on its client connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Turn {
    /// How routing sees record changes for this request.
    pub(super) viewer: Viewer,
    /// It came after an idle spell longer than `idle_timeout`.
    pub(super) rested: bool,
}

impl ClientConn {
    /// A new client connection draws its moment in every propagation window.
    pub(super) fn new() -> ClientConn {
        ClientConn {
            coin: rand::random(),
            state: Mutex::new(ConnState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request starts at `now`: after an idle spell longer than
    /// `idle_timeout` the connection re-resolves (sees every change up to now).
    pub(super) fn start(&self, now: Instant, idle_timeout: Duration) -> Turn {
        let mut s = self.lock();
        let rested = s
            .last_done
            .is_some_and(|done| now.saturating_duration_since(done) > idle_timeout);
        if rested {
            s.resolved_at = Some(now);
        }
        Turn {
            viewer: Viewer {
                coin: self.coin,
                resolved_at: s.resolved_at,
            },
            rested,
        }
    }

    /// How routing sees record changes for this connection now (for a second
    /// decision within one request).
    pub(super) fn viewer(&self) -> Viewer {
        Viewer {
            coin: self.coin,
            resolved_at: self.lock().resolved_at,
        }
    }

    /// A request of this connection was answered at `now`.
    pub(super) fn done(&self, now: Instant) {
        self.lock().last_done = Some(now);
    }

    /// Keeps the connection a reply just came back on.
    pub(super) fn hold(&self, held: Held) {
        self.lock().held = Some(held);
    }

    /// Gives up what is held (the client connection ended, or a request takes it).
    pub(super) fn release(&self) -> Option<Held> {
        self.lock().held.take()
    }

    /// Takes the origin connection for a request to `host` that routing sends
    /// to `routed` (in `turn`). What is held and not ridden on comes back as
    /// [`Left`], for the pool.
    pub(super) fn board(&self, host: &str, routed: SocketAddr, turn: Turn) -> (Ride, Option<Left>) {
        let fresh = Ride {
            origin: routed,
            sender: None,
            sticky: false,
        };
        let Some(held) = self.release() else {
            return (fresh, None);
        };
        let view = HeldView {
            host: &held.host,
            origin: held.origin,
            open: !held.sender.is_closed(),
        };
        match stick(&view, host, routed, turn.rested) {
            Stick::Stay => (
                Ride {
                    origin: held.origin,
                    sender: Some(held.sender),
                    sticky: true,
                },
                None,
            ),
            Stick::Reuse => (
                Ride {
                    sender: Some(held.sender),
                    ..fresh
                },
                None,
            ),
            Stick::Leave { moved } => (
                fresh,
                Some(Left {
                    origin: held.origin,
                    sender: held.sender,
                    moved,
                }),
            ),
        }
    }
}

/// The origin connection a request goes out on.
pub(super) struct Ride {
    pub(super) origin: SocketAddr,
    /// The held connection when it is ridden on; else a pooled or new one.
    pub(super) sender: Option<Sender>,
    /// Stuck to the held origin: if that origin is gone before it saw the
    /// request, the request gets a fresh routing decision.
    pub(super) sticky: bool,
}

/// A held connection given up for another origin.
pub(super) struct Left {
    pub(super) origin: SocketAddr,
    pub(super) sender: Sender,
    /// The same host now goes elsewhere: a switch worth counting.
    pub(super) moved: bool,
}

/// What the rule needs to know of the held connection.
struct HeldView<'a> {
    host: &'a str,
    origin: SocketAddr,
    open: bool,
}

/// How a request relates to what its client connection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stick {
    /// Same host, busy, open, routing still picks it.
    Stay,
    /// A fresh routing decision that lands on the held origin: reuse the
    /// open connection (but it is not sticky).
    Reuse,
    /// A fresh routing decision elsewhere (or the held connection closed).
    Leave { moved: bool },
}

/// The stickiness rule on plain values; `rested`: the request came after an
/// idle spell longer than `idle_timeout`.
fn stick(held: &HeldView<'_>, host: &str, routed: SocketAddr, rested: bool) -> Stick {
    if held.host == host && !rested && held.open && held.origin.ip() == routed.ip() {
        Stick::Stay
    } else if held.origin == routed && held.open {
        Stick::Reuse
    } else {
        Stick::Leave {
            moved: held.host == host,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const A: &str = "127.0.0.2:8080";
    const B: &str = "127.0.0.3:8080";

    fn held<'a>(host: &'a str, origin: &str, open: bool) -> HeldView<'a> {
        HeldView {
            host,
            origin: origin.parse().unwrap(),
            open,
        }
    }

    fn rule(h: &HeldView<'_>, host: &str, routed: &str) -> Stick {
        stick(h, host, routed.parse().unwrap(), false)
    }

    #[test]
    fn a_busy_connection_stays_while_routing_agrees() {
        assert_eq!(rule(&held("shop", A, true), "shop", A), Stick::Stay);
    }

    #[test]
    fn routing_elsewhere_moves_the_connection() {
        let h = held("shop", A, true);
        assert_eq!(rule(&h, "shop", B), Stick::Leave { moved: true });
        assert_eq!(rule(&h, "other", B), Stick::Leave { moved: false });
    }

    #[test]
    fn idle_or_another_host_is_a_fresh_decision_that_may_reuse() {
        let rested = stick(&held("shop", A, true), "shop", A.parse().unwrap(), true);
        assert_eq!(rested, Stick::Reuse);
        assert_eq!(rule(&held("shop", A, true), "other", A), Stick::Reuse);
    }

    #[test]
    fn a_closed_connection_is_left() {
        assert_eq!(
            rule(&held("shop", A, false), "shop", A),
            Stick::Leave { moved: true }
        );
    }

    #[test]
    fn only_an_idle_spell_longer_than_the_timeout_re_resolves() {
        let conn = ClientConn::new();
        let t0 = Instant::now();
        let timeout = Duration::from_secs(5);
        let first = conn.start(t0, timeout);
        assert!(!first.rested, "a new connection has no idle spell");
        assert_eq!(first.viewer.resolved_at, None);
        conn.done(t0);
        let busy = conn.start(t0 + Duration::from_secs(5), timeout);
        assert!(!busy.rested, "exactly the timeout is still busy");
        conn.done(t0 + Duration::from_secs(5));
        let back = t0 + Duration::from_secs(11);
        let rested = conn.start(back, timeout);
        assert!(rested.rested);
        assert_eq!(rested.viewer.resolved_at, Some(back));
        conn.done(back);
        let next = conn.start(back + Duration::from_secs(1), timeout);
        assert!(!next.rested);
        assert_eq!(
            next.viewer.resolved_at,
            Some(back),
            "what it re-resolved stays seen while it is busy"
        );
        assert_eq!(conn.viewer(), next.viewer);
    }
}
