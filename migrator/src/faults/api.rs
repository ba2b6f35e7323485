//! `api-429:N`, `api-5xx:N`, `api-timeout`: the switch's API misbehaves
//! while the migrator changes the record. Injected through the local edge's
//! admin API (`/admin/faults`), so they reach the real `cloudflare` crate
//! and the migrator's retries exactly as Cloudflare's own would.

use std::time::Duration;

use super::spec::ApiFault;
use super::Fired;

/// The local edge's admin API: its base URL and admin token (never printed).
#[derive(Clone)]
pub struct EdgeAdmin {
    pub base: url::Url,
    token: String,
}

impl std::fmt::Debug for EdgeAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeAdmin")
            .field("base", &self.base.as_str())
            .field("token", &"<redacted>")
            .finish()
    }
}

impl EdgeAdmin {
    pub fn new(base: url::Url, token: String) -> EdgeAdmin {
        EdgeAdmin { base, token }
    }

    /// `POST`s `body` to `path` under the admin API.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> Result<(), String> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// `DELETE`s `path` under the admin API.
    pub async fn delete(&self, path: &str) -> Result<(), String> {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(), String> {
        let url = self.base.join(path).map_err(|e| format!("{path}: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let mut req = http.request(method, url.clone()).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{url}: {}", crate::sources::error_chain(&e)))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            Err(format!(
                "{url} answered HTTP {status}: {}",
                text.chars().take(200).collect::<String>()
            ))
        }
    }
}

/// The variable holding the local edge's admin token, for `migrator run`.
pub const ADMIN_TOKEN_ENV: &str = "HANDOVER_EDGE_ADMIN_TOKEN";

/// The edge's admin API for a plan whose switch is the local edge: the
/// origin of its `api_base`, the token from [`ADMIN_TOKEN_ENV`].
pub fn from_env(plan: &crate::plan::Plan) -> Option<EdgeAdmin> {
    let crate::plan::SwitchPlan::Cloudflare(cf) = &plan.switch else {
        return None;
    };
    let token = std::env::var(ADMIN_TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())?;
    let base = cf.api_base.join("/").ok()?;
    Some(EdgeAdmin::new(base, token.trim().to_string()))
}

/// Arms `fault` on the edge's API for the record changes (PATCH and PUT
/// are how a switch writes; reads still answer, so where traffic went can
/// be told afterwards).
pub async fn arm(admin: Option<&EdgeAdmin>, fault: &ApiFault) -> Result<Fired, String> {
    let admin = admin.ok_or(
        "API faults need the local edge as the switch (its admin API and HANDOVER_EDGE_ADMIN_TOKEN)",
    )?;
    match fault {
        ApiFault::Status { status, count } => {
            admin
                .post(
                    "admin/faults",
                    serde_json::json!({ "status": status, "count": count, "method": "PATCH" }),
                )
                .await?;
            Ok(Fired::now(format!(
                "the next {count} record change(s) answer HTTP {status}"
            )))
        }
        ApiFault::Timeout => {
            admin
                .post(
                    "admin/faults",
                    serde_json::json!({ "hang": true, "count": 1000, "method": "PATCH" }),
                )
                .await?;
            Ok(Fired::now(
                "record changes hang (never answered, never applied)",
            ))
        }
    }
}
