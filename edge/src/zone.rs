//! A zone as the API shows it and the store keeps it: its identity and its
//! records. Apart from the store so the proxy's routes can read zones without
//! knowing how they are kept.

use crate::record::{rfc3339, Record};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub created_on: DateTime<Utc>,
    pub modified_on: DateTime<Utc>,
    pub records: Vec<Record>,
}

impl Zone {
    /// Cloudflare's JSON shape for a zone (what `cloudflare::Zone` decodes).
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "status": "active",
            "paused": false,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.edge.invalid", "bob.ns.edge.invalid"],
            "original_name_servers": null,
            "original_registrar": null,
            "original_dnshost": null,
            "created_on": rfc3339(&self.created_on),
            "modified_on": rfc3339(&self.modified_on),
            "activated_on": rfc3339(&self.created_on),
            "meta": {
                "step": 2,
                "custom_certificate_quota": 0,
                "page_rule_quota": 3,
                "phishing_detected": false
            },
            "owner": {"id": null, "type": "user", "email": null},
            "account": {"id": "0000000000000000000000000000edge", "name": "handover edge"},
            "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
            "plan": {
                "id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
                "name": "Free Website",
                "price": 0,
                "currency": "USD",
                "frequency": "",
                "is_subscribed": true,
                "can_subscribe": false,
                "legacy_id": "free",
                "legacy_discount": false,
                "externally_managed": false
            }
        })
    }
}
