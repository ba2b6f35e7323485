//! The real `cloudflare` crate against the edge, plus the one endpoint it
//! lacks (PATCH of a record).

use super::{EdgeProc, HOST, TOKEN, ZONE_ID};
use cloudflare::endpoints::dns::dns::{
    DnsContent, DnsRecord, ListDnsRecords, ListDnsRecordsParams,
};
use cloudflare::framework::auth::Credentials;
use cloudflare::framework::client::async_api::Client;
use cloudflare::framework::client::ClientConfig;
use cloudflare::framework::endpoint::spec::EndpointSpec;
use cloudflare::framework::endpoint::{Method, RequestBody};
use cloudflare::framework::response::{ApiFailure, ApiSuccess};
use cloudflare::framework::Environment;
use serde::Serialize;

pub fn cf(edge: &EdgeProc, token: &str) -> Client {
    Client::new(
        Credentials::UserAuthToken {
            token: token.into(),
        },
        ClientConfig::default(),
        Environment::Custom(edge.base()),
    )
    .expect("cloudflare client")
}

/// PATCH a record: the crate has no endpoint for it, so we write one the way
/// `dns.rs` writes `UpdateDnsRecord`.
pub struct PatchDnsRecord<'a> {
    pub zone_identifier: &'a str,
    pub identifier: &'a str,
    pub params: PatchDnsRecordParams,
}

#[derive(Serialize, Default)]
pub struct PatchDnsRecordParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxied: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

impl EndpointSpec for PatchDnsRecord<'_> {
    type JsonResponse = DnsRecord;
    type ResponseType = ApiSuccess<DnsRecord>;
    fn method(&self) -> Method {
        Method::PATCH
    }
    fn path(&self) -> String {
        format!(
            "zones/{}/dns_records/{}",
            self.zone_identifier, self.identifier
        )
    }
    fn body(&self) -> Option<RequestBody<'_>> {
        Some(RequestBody::Json(
            serde_json::to_string(&self.params).expect("serialize patch"),
        ))
    }
}

pub async fn record_by_name(client: &Client, zone: &str, name: &str) -> DnsRecord {
    let mut list = client
        .request(&ListDnsRecords {
            zone_identifier: zone,
            params: ListDnsRecordsParams {
                name: Some(name.into()),
                ..Default::default()
            },
        })
        .await
        .expect("list records by name")
        .result;
    assert_eq!(list.len(), 1, "one record named {name}");
    list.remove(0)
}

/// Points the test host at `content` (PATCH, as the migrator does).
pub async fn patch(edge: &EdgeProc, content: &str) {
    let client = cf(edge, TOKEN);
    let rec = record_by_name(&client, ZONE_ID, HOST).await;
    let out = client
        .request(&PatchDnsRecord {
            zone_identifier: ZONE_ID,
            identifier: &rec.id,
            params: PatchDnsRecordParams {
                content: Some(content.into()),
                ..Default::default()
            },
        })
        .await
        .expect("patch record");
    assert!(matches!(out.result.content, DnsContent::A { content: c } if c.to_string() == content));
}

/// The HTTP status and Cloudflare error codes of a failed call.
pub fn api_error(e: ApiFailure) -> (u16, Vec<u16>) {
    match e {
        ApiFailure::Error(status, errs) => (
            status.as_u16(),
            errs.errors.iter().map(|e| e.code).collect(),
        ),
        ApiFailure::Invalid(e) => panic!("expected an API error, got {e}"),
    }
}
