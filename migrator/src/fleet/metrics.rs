//! `--metrics ADDR`: the fleet's progress as Prometheus text on
//! `GET /metrics`, rendered from the same snapshot a live view would draw.
//!
//! The names: `handover_fleet_hosts{state}` (done, in_progress, failed,
//! waiting, skipped), `handover_fleet_batch`, `handover_fleet_host_step{host,
//! step}` (1 for the host's current step), `handover_fleet_host_attempts`,
//! `handover_fleet_orders_lost` and `handover_fleet_orders_failed` (so far,
//! fleet-wide and per host).

use std::fmt::Write;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::host::Phase;
use super::progress::{Progress, Snapshot};

/// The exposition text of `s`.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, lines: Vec<(String, u64)>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in lines {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let n = |x: usize| x as u64;
    gauge(
        "handover_fleet_hosts",
        "Hosts by state.",
        vec![
            (r#"{state="done"}"#.into(), n(s.count(|p| p == Phase::Done))),
            (
                r#"{state="in_progress"}"#.into(),
                n(s.count(Phase::in_progress)),
            ),
            (r#"{state="failed"}"#.into(), n(s.count(Phase::failed))),
            (
                r#"{state="waiting"}"#.into(),
                n(s.count(|p| p == Phase::Waiting)),
            ),
            (
                r#"{state="skipped"}"#.into(),
                n(s.count(|p| p == Phase::Skipped)),
            ),
        ],
    );
    gauge(
        "handover_fleet_batch",
        "The batch running now (0 before the first).",
        vec![(String::new(), n(s.batch))],
    );
    gauge(
        "handover_fleet_stopped",
        "1 once the fleet stopped early.",
        vec![(String::new(), u64::from(s.stopped.is_some()))],
    );
    let per_host = |f: &dyn Fn(&super::progress::HostView) -> (String, u64)| {
        s.hosts.iter().map(f).collect::<Vec<_>>()
    };
    gauge(
        "handover_fleet_host_step",
        "1 for each host's current step.",
        per_host(&|h| {
            (
                format!(
                    r#"{{host="{}",step="{}"}}"#,
                    label(&h.name),
                    h.phase.as_str()
                ),
                1,
            )
        }),
    );
    gauge(
        "handover_fleet_host_attempts",
        "Verify attempts made per host.",
        per_host(&|h| {
            (
                format!(r#"{{host="{}"}}"#, label(&h.name)),
                u64::from(h.attempts),
            )
        }),
    );
    gauge(
        "handover_fleet_host_orders_lost",
        "Acknowledged orders lost per host, so far.",
        per_host(&|h| (format!(r#"{{host="{}"}}"#, label(&h.name)), h.lost)),
    );
    gauge(
        "handover_fleet_host_orders_failed",
        "Orders the clients saw fail per host, so far.",
        per_host(&|h| (format!(r#"{{host="{}"}}"#, label(&h.name)), h.failed)),
    );
    gauge(
        "handover_fleet_orders_lost",
        "Acknowledged orders lost, so far.",
        vec![(String::new(), s.hosts.iter().map(|h| h.lost).sum())],
    );
    gauge(
        "handover_fleet_orders_failed",
        "Orders the clients saw fail, so far.",
        vec![(String::new(), s.hosts.iter().map(|h| h.failed).sum())],
    );
    out
}

/// A label value escaped as the exposition format wants.
fn label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Serves `/metrics` on `listener` until `stop`.
pub async fn serve(listener: TcpListener, progress: Progress, stop: CancellationToken) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(progress);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::warn!(error = %e, "the metrics endpoint stopped");
    }
}

async fn metrics(State(progress): State<Progress>) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4")],
        render(&progress.snapshot()),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fleet::progress::HostView;

    #[test]
    fn every_host_and_count_is_exposed() {
        let host = |name: &str, phase, lost| HostView {
            name: name.into(),
            address: "10.0.0.1".into(),
            holdover: None,
            phase,
            attempts: 2,
            lost,
            failed: 1,
        };
        let s = Snapshot {
            batch: 2,
            seed: 1,
            stopped: None,
            hosts: vec![
                host("h1", Phase::Done, 0),
                host("h\"2", Phase::Verify, 3),
                host("h3", Phase::OnHoldover, 0),
            ],
        };
        let text = render(&s);
        for line in [
            r#"handover_fleet_hosts{state="done"} 1"#,
            r#"handover_fleet_hosts{state="in_progress"} 1"#,
            r#"handover_fleet_hosts{state="failed"} 1"#,
            "handover_fleet_batch 2",
            r#"handover_fleet_host_step{host="h\"2",step="verify"} 1"#,
            r#"handover_fleet_host_step{host="h3",step="on_holdover"} 1"#,
            "handover_fleet_orders_lost 3",
            "handover_fleet_orders_failed 3",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
