//! Stickiness: which origin connection a client connection keeps.
//!
//! Propagation is modeled per client connection, as on a real edge where a
//! client's connection lands on one edge server and each server learns of a
//! record change at its own moment: every client connection draws a point
//! `u` in [0, 1) (its [`ClientConn::coin`]) and sees the new record once
//! `u · propagation` has passed since the change. So the share of connections
//! on the new origin rises linearly across the window — also for long-lived,
//! never-idle keep-alive connections — and "both instances answer" lasts
//! about the window.
//!
//! Within that, a client connection stays on its origin connection while it
//! asks for the same host, has not been idle for `idle_timeout`, the origin
//! has not closed the connection and routing still picks that origin. If the
//! sticky origin then refuses connections, the request is routed afresh
//! instead of failing (the proxy does that; see `Ride::sticky`).

use crate::upstream::Sender;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The origin connection one client connection holds between requests.
pub(super) struct Held {
    pub(super) host: String,
    pub(super) origin: SocketAddr,
    pub(super) sender: Sender,
    /// When its last reply was done: the start of its idle time.
    pub(super) last_done: Instant,
}

/// One client connection's side of stickiness.
pub(super) struct ClientConn {
    coin: f64,
    held: Mutex<Option<Held>>,
}

impl ClientConn {
    /// A new client connection draws its moment in every propagation window.
    pub(super) fn new() -> ClientConn {
        ClientConn {
            coin: rand::random(),
            held: Mutex::new(None),
        }
    }

    /// This connection's moment in every propagation window, uniform in [0, 1).
    pub(super) fn coin(&self) -> f64 {
        self.coin
    }

    /// Keeps the connection a reply just came back on.
    pub(super) fn hold(&self, held: Held) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(held);
    }

    /// Gives up what is held (the client connection ended, or a request takes it).
    pub(super) fn release(&self) -> Option<Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Takes the origin connection for a request to `host` that routing sends
    /// to `routed` at `now`. What is held and not ridden on comes back as
    /// [`Left`], for the pool.
    pub(super) fn board(
        &self,
        host: &str,
        routed: SocketAddr,
        now: Instant,
        idle_timeout: Duration,
    ) -> (Ride, Option<Left>) {
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
            idle: now.saturating_duration_since(held.last_done),
            open: !held.sender.is_closed(),
        };
        match stick(&view, host, routed, idle_timeout) {
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
    idle: Duration,
    open: bool,
}

/// How a request relates to what its client connection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stick {
    /// Same host, not idle past the timeout, open, routing still picks it.
    Stay,
    /// A fresh routing decision that lands on the held origin: reuse the
    /// open connection (but it is not sticky).
    Reuse,
    /// A fresh routing decision elsewhere (or the held connection closed).
    Leave { moved: bool },
}

/// The stickiness rule on plain values.
fn stick(held: &HeldView<'_>, host: &str, routed: SocketAddr, idle_timeout: Duration) -> Stick {
    if held.host == host && held.idle < idle_timeout && held.open && held.origin.ip() == routed.ip()
    {
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

    fn held<'a>(host: &'a str, origin: &str, idle_ms: u64, open: bool) -> HeldView<'a> {
        HeldView {
            host,
            origin: origin.parse().unwrap(),
            idle: Duration::from_millis(idle_ms),
            open,
        }
    }

    fn rule(h: &HeldView<'_>, host: &str, routed: &str) -> Stick {
        stick(h, host, routed.parse().unwrap(), Duration::from_secs(5))
    }

    #[test]
    fn a_busy_connection_stays_while_routing_agrees() {
        assert_eq!(rule(&held("shop", A, 10, true), "shop", A), Stick::Stay);
    }

    #[test]
    fn routing_elsewhere_moves_the_connection() {
        let h = held("shop", A, 10, true);
        assert_eq!(rule(&h, "shop", B), Stick::Leave { moved: true });
        assert_eq!(rule(&h, "other", B), Stick::Leave { moved: false });
    }

    #[test]
    fn idle_or_another_host_is_a_fresh_decision_that_may_reuse() {
        assert_eq!(rule(&held("shop", A, 5000, true), "shop", A), Stick::Reuse);
        assert_eq!(rule(&held("shop", A, 10, true), "other", A), Stick::Reuse);
    }

    #[test]
    fn a_closed_connection_is_left() {
        assert_eq!(
            rule(&held("shop", A, 10, false), "shop", A),
            Stick::Leave { moved: true }
        );
    }
}
