//! `origin-latency:MS`, `origin-reset`, `origin-blackhole`: the proxy in
//! front of one origin misbehaves (added latency, connections reset, a
//! connect that never completes: a real 522), injected on the local edge's
//! admin API like Toxiproxy's toxics.

use super::api::EdgeAdmin;
use super::spec::{OriginFault, Side};
use super::Fired;
use crate::plan::Plan;

/// Arms `fault` on the edge for the origin on `side` (its switch address).
pub async fn arm(
    admin: Option<&EdgeAdmin>,
    plan: &Plan,
    side: Side,
    fault: &OriginFault,
) -> Result<Fired, String> {
    let admin = admin.ok_or(
        "origin faults need the local edge as the switch (its admin API and HANDOVER_EDGE_ADMIN_TOKEN)",
    )?;
    let address = match side {
        Side::A => &plan.a.address,
        Side::B => &plan.b.address,
    };
    let (body, what) = match fault {
        OriginFault::Latency { ms } => (
            serde_json::json!({ "latency_ms": ms }),
            format!("{ms} ms added to every request"),
        ),
        OriginFault::Reset => (
            serde_json::json!({ "reset": true }),
            "connections reset".to_string(),
        ),
        OriginFault::Blackhole => (
            serde_json::json!({ "blackhole": true }),
            "connects never complete (522)".to_string(),
        ),
    };
    admin
        .post(&format!("admin/origins/{address}/faults"), body)
        .await?;
    Ok(Fired::now(format!(
        "edge → {} ({address}): {what}",
        side.name().to_uppercase()
    )))
}
