//! `b-unhealthy`, `b-lag`: the example app hurts itself on request — its
//! health fails while it otherwise serves, or it stops applying events so
//! its `applied` stands while the head grows. B must have been started with
//! `--fault-injection` (the demo does so when faults are planned).

use std::time::Duration;

use futures::FutureExt;

use super::spec::AppFault;
use super::Fired;
use crate::plan::Plan;

/// How long a fault fired before B answers (as `start_b` starts) waits for it.
const WAIT_FOR_B: Duration = Duration::from_secs(30);

/// Arms `fault` on B through `POST {b.url}admin/faults`. If B does not
/// answer yet (the fault fired as B starts), it is armed in the background
/// as soon as B listens.
pub async fn inject(plan: &Plan, fault: &AppFault) -> Result<Fired, String> {
    match arm(plan, fault).await {
        Err(Arm::NotListening(why)) => {
            let (plan, fault) = (plan.clone(), *fault);
            Ok(Fired {
                detail: format!("B is not listening yet ({why}): armed as soon as it is"),
                later: Some(
                    async move {
                        let deadline = tokio::time::Instant::now() + WAIT_FOR_B;
                        loop {
                            match arm(&plan, &fault).await {
                                Ok(f) => return f.detail,
                                Err(Arm::Refused(why)) => return format!("not injected: {why}"),
                                Err(Arm::NotListening(why)) => {
                                    if tokio::time::Instant::now() >= deadline {
                                        return format!("not injected: B never listened ({why})");
                                    }
                                }
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    .boxed(),
                ),
            })
        }
        Err(Arm::Refused(why)) => Err(why),
        Ok(f) => Ok(f),
    }
}

/// Why B's fault could not be armed.
enum Arm {
    /// No connection: B is not (yet) there.
    NotListening(String),
    /// B answered, but not with yes.
    Refused(String),
}

async fn arm(plan: &Plan, fault: &AppFault) -> Result<Fired, Arm> {
    let body = match fault {
        AppFault::Unhealthy => serde_json::json!({ "health": "fail" }),
        AppFault::Lag => serde_json::json!({ "apply": "pause" }),
    };
    let url = plan
        .b
        .url
        .join("admin/faults")
        .map_err(|e| Arm::Refused(format!("B's admin URL: {e}")))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| Arm::Refused(e.to_string()))?;
    let resp = http
        .post(url.clone())
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            let why = format!("{url}: {}", crate::sources::error_chain(&e));
            if e.is_connect() {
                Arm::NotListening(why)
            } else {
                Arm::Refused(why)
            }
        })?;
    let status = resp.status();
    if status.is_success() {
        Ok(Fired::now(format!("B: {body}")))
    } else if status.as_u16() == 404 {
        Err(Arm::Refused(format!(
            "{url} answered 404: B needs --fault-injection (the example app's test-only faults)"
        )))
    } else {
        Err(Arm::Refused(format!("{url} answered HTTP {status}")))
    }
}
