//! `b-unhealthy`, `b-lag`: the example app hurts itself on request — its
//! health fails while it otherwise serves, or it stops applying events so
//! its `applied` stands while the head grows. B must have been started with
//! `--fault-injection` (the demo does so when faults are planned).

use std::time::Duration;

use super::spec::AppFault;
use super::Fired;
use crate::plan::Plan;

/// Arms `fault` on B through `POST {b.url}admin/faults`.
pub async fn inject(plan: &Plan, fault: &AppFault) -> Result<Fired, String> {
    let body = match fault {
        AppFault::Unhealthy => serde_json::json!({ "health": "fail" }),
        AppFault::Lag => serde_json::json!({ "apply": "pause" }),
    };
    let url = plan
        .b
        .url
        .join("admin/faults")
        .map_err(|e| format!("B's admin URL: {e}"))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = http
        .post(url.clone())
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", crate::sources::error_chain(&e)))?;
    let status = resp.status();
    if status.is_success() {
        Ok(Fired::now(format!("B: {body}")))
    } else if status.as_u16() == 404 {
        Err(format!(
            "{url} answered 404: B needs --fault-injection (the example app's test-only faults)"
        ))
    } else {
        Err(format!("{url} answered HTTP {status}"))
    }
}
