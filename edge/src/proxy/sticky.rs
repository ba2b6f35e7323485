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
use crate::upstream::OriginConn;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The origin connection one client connection holds between requests.
pub(super) struct Held<C> {
    pub(super) host: String,
    pub(super) origin: SocketAddr,
    pub(super) conn: C,
}

/// One client connection's side of stickiness, owned by the task serving
/// the connection (hyper's path shares it between requests behind a lock).
pub(super) struct ClientConn<C> {
    coin: f64,
    state: ConnState<C>,
}

struct ConnState<C> {
    held: Option<Held<C>>,
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

impl<C: OriginConn> ClientConn<C> {
    /// A new client connection draws its moment in every propagation window.
    pub(super) fn new() -> ClientConn<C> {
        ClientConn {
            coin: rand::random(),
            state: ConnState {
                held: None,
                last_done: None,
                resolved_at: None,
            },
        }
    }

    /// The same client connection, from now on holding connections of
    /// another kind (the HTTP/1.1 path handing it to hyper): its moment,
    /// idle time and re-resolve carry over; what it held does not.
    pub(super) fn carry_over<D: OriginConn>(&self) -> ClientConn<D> {
        ClientConn {
            coin: self.coin,
            state: ConnState {
                held: None,
                last_done: self.state.last_done,
                resolved_at: self.state.resolved_at,
            },
        }
    }

    /// A request starts at `now`: after an idle spell longer than
    /// `idle_timeout` the connection re-resolves (sees every change up to now).
    pub(super) fn start(&mut self, now: Instant, idle_timeout: Duration) -> Turn {
        let s = &mut self.state;
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
            resolved_at: self.state.resolved_at,
        }
    }

    /// A request of this connection was answered at `now`.
    pub(super) fn done(&mut self, now: Instant) {
        self.state.last_done = Some(now);
    }

    /// Keeps the connection a reply just came back on.
    pub(super) fn hold(&mut self, held: Held<C>) {
        self.state.held = Some(held);
    }

    /// Gives up what is held (the client connection ended, or a request takes it).
    pub(super) fn release(&mut self) -> Option<Held<C>> {
        self.state.held.take()
    }

    /// Takes the origin connection for a request to `host` that routing sends
    /// to `routed` (in `turn`). What is held and not ridden on comes back as
    /// [`Left`], for the pool.
    pub(super) fn board(
        &mut self,
        host: &str,
        routed: SocketAddr,
        turn: Turn,
    ) -> (Ride<C>, Option<Left<C>>) {
        let fresh = Ride {
            origin: routed,
            conn: None,
            sticky: false,
        };
        let Some(mut held) = self.release() else {
            return (fresh, None);
        };
        let view = HeldView {
            host: &held.host,
            origin: held.origin,
            open: !held.conn.is_closed(),
        };
        match stick(&view, host, routed, turn.rested) {
            Stick::Stay => (
                Ride {
                    origin: held.origin,
                    conn: Some(held.conn),
                    sticky: true,
                },
                None,
            ),
            Stick::Reuse => (
                Ride {
                    conn: Some(held.conn),
                    ..fresh
                },
                None,
            ),
            Stick::Leave { moved } => (
                fresh,
                Some(Left {
                    origin: held.origin,
                    conn: held.conn,
                    moved,
                }),
            ),
        }
    }
}

/// The origin connection a request goes out on.
pub(super) struct Ride<C> {
    pub(super) origin: SocketAddr,
    /// The held connection when it is ridden on; else a pooled or new one.
    pub(super) conn: Option<C>,
    /// Stuck to the held origin: if that origin is gone before it saw the
    /// request, the request gets a fresh routing decision.
    pub(super) sticky: bool,
}

/// A held connection given up for another origin.
pub(super) struct Left<C> {
    pub(super) origin: SocketAddr,
    pub(super) conn: C,
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
        let mut conn = ClientConn::<crate::upstream::Sender>::new();
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
