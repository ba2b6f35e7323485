//! The Cloudflare switch: a proxied DNS record whose content is the origin.
//!
//! Requests are the `cloudflare` crate's endpoint types (plus one PATCH
//! endpoint of our own), sent by a small executor over the same reqwest
//! (rustls) the crate uses. The crate's own client discards response headers,
//! and the flip must honor `Retry-After` on 429s, so the executor keeps the
//! status and that header while decoding the crate's `ApiSuccess`/`ApiErrors`.

use std::fmt;
use std::time::{Duration, Instant};

use cloudflare::endpoints::account::user::GetUserTokenStatus;
use cloudflare::endpoints::dns::dns::{
    DnsContent, DnsRecord, ListDnsRecords, ListDnsRecordsParams,
};
use cloudflare::endpoints::zones::zone::{ListZones, ListZonesParams};
use cloudflare::framework::endpoint::spec::EndpointSpec;
use cloudflare::framework::endpoint::{Method, RequestBody};
use cloudflare::framework::response::{ApiErrors, ApiSuccess};
use cloudflare::framework::Environment;
use futures::future::BoxFuture;
use futures::FutureExt;
use reqwest::StatusCode;
use url::Url;

use super::{FlipReport, SwitchError, SwitchState, TrafficSwitch};
use crate::plan::CloudflarePlan;

/// The environment variable the token is read from (and the only place).
pub const TOKEN_ENV: &str = "CLOUDFLARE_API_TOKEN";

/// An API token. Never printed: `Debug` and `Display` are redacted.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(secret: String) -> Self {
        Token(secret)
    }

    /// Reads [`TOKEN_ENV`]; a missing or empty token is a configuration error.
    pub fn from_env() -> Result<Token, SwitchError> {
        match std::env::var(TOKEN_ENV) {
            Ok(t) if !t.trim().is_empty() => Ok(Token(t.trim().to_string())),
            _ => Err(SwitchError::Config(format!(
                "{TOKEN_ENV} is not set: the Cloudflare switch needs an API token with DNS edit rights"
            ))),
        }
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// `PATCH zones/{zone}/dns_records/{id}` with only `content`: the flip changes
/// nothing else (type, proxied, ttl stay as they are).
#[derive(Debug)]
struct PatchRecordContent<'a> {
    zone_identifier: &'a str,
    identifier: &'a str,
    content: &'a str,
}

impl EndpointSpec for PatchRecordContent<'_> {
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
            serde_json::json!({ "content": self.content }).to_string(),
        ))
    }
}

/// One failed call, with what the retry loop needs to know.
#[derive(Debug)]
struct CallError {
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
    message: String,
}

impl CallError {
    fn retryable(&self) -> bool {
        match self.status {
            Some(s) => s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error(),
            // No response at all (connect refused, reset, timeout).
            None => true,
        }
    }

    fn short(&self) -> String {
        match self.status {
            Some(s) => s.as_u16().to_string(),
            None => "no response".into(),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "HTTP {}: {}", s.as_u16(), self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// The wait before retry number `attempt` (1-based): exponential from 250 ms,
/// capped at 8 s, or the server's `Retry-After` when it asks for longer.
pub fn retry_wait(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = Duration::from_millis(250)
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(5))
        .min(Duration::from_secs(8));
    match retry_after {
        Some(ra) => ra.max(exp.min(Duration::from_millis(250))),
        None => exp,
    }
}

/// The Cloudflare v4 API switch.
pub struct CloudflareSwitch {
    plan: CloudflarePlan,
    token: Token,
    env: Environment,
    http: reqwest::Client,
    /// Total time for one operation including its retries.
    budget: Duration,
}

/// The record the flip works on.
struct Located {
    zone_id: String,
    record: DnsRecord,
}

fn content_of(c: &DnsContent) -> String {
    match c {
        DnsContent::A { content } => content.to_string(),
        DnsContent::AAAA { content } => content.to_string(),
        DnsContent::CNAME { content }
        | DnsContent::NS { content }
        | DnsContent::MX { content, .. }
        | DnsContent::TXT { content }
        | DnsContent::SRV { content } => content.clone(),
    }
}

fn is_zone_id(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit())
}

impl CloudflareSwitch {
    pub fn new(plan: &CloudflarePlan, token: Token, budget: Duration) -> Result<Self, SwitchError> {
        let mut base = plan.api_base.clone();
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| SwitchError::Config(format!("cannot build the HTTP client: {e}")))?;
        let env = if base.as_str() == crate::plan::CLOUDFLARE_API {
            Environment::Production
        } else {
            Environment::Custom(base.to_string())
        };
        Ok(CloudflareSwitch {
            plan: CloudflarePlan {
                api_base: base,
                ..plan.clone()
            },
            token,
            env,
            http,
            budget,
        })
    }

    pub fn api_base(&self) -> &Url {
        &self.plan.api_base
    }

    /// One request, decoded with the crate's envelope types.
    async fn call<E>(&self, ep: &E) -> Result<E::JsonResponse, CallError>
    where
        E: EndpointSpec,
    {
        let url = ep.url(&self.env);
        let mut req = self
            .http
            .request(ep.method(), url)
            .bearer_auth(self.token.expose());
        if let Some(RequestBody::Json(body)) = ep.body() {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let resp = req.send().await.map_err(|e| CallError {
            status: None,
            retry_after: None,
            message: format!("cannot reach {}: {}", self.plan.api_base, without_url(&e)),
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(|e| CallError {
            status: Some(status),
            retry_after,
            message: format!("reading the response: {}", without_url(&e)),
        })?;
        if status.is_success() {
            serde_json::from_slice::<ApiSuccess<E::JsonResponse>>(&bytes)
                .map(|s| s.result)
                .map_err(|e| CallError {
                    status: Some(status),
                    retry_after: None,
                    message: format!("unexpected response shape: {e}"),
                })
        } else {
            let errors: ApiErrors = serde_json::from_slice(&bytes).unwrap_or_default();
            let message = if errors.errors.is_empty() {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                errors
                    .errors
                    .iter()
                    .map(|e| format!("{} {}", e.code, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            Err(CallError {
                status: Some(status),
                retry_after,
                message,
            })
        }
    }

    /// Proves the token may edit the record, not only read it: writes the
    /// record's own content back (Cloudflare has no dry run and token
    /// verification does not list permissions). A token with Zone:Read but
    /// no DNS:Edit would otherwise pass preflight and fail at the flip, with
    /// B already started.
    async fn prove_edit(
        &self,
        zone_id: &str,
        record: &DnsRecord,
        report: &mut FlipReport,
    ) -> Result<(), SwitchError> {
        let current = content_of(&record.content);
        let same = PatchRecordContent {
            zone_identifier: zone_id,
            identifier: &record.id,
            content: &current,
        };
        match self.call_retrying("prove DNS:Edit", &same, report).await {
            Ok(_) => Ok(()),
            Err(SwitchError::Auth(e)) => Err(SwitchError::Auth(format!(
                "the token may read record {} but not edit it ({e}): it needs Zone:Read and DNS:Edit on zone {}",
                record.name, self.plan.zone
            ))),
            Err(e) => Err(e),
        }
    }

    /// [`Self::call`] with retries on 429, 5xx and no response, within the budget.
    async fn call_retrying<E>(
        &self,
        what: &str,
        ep: &E,
        report: &mut FlipReport,
    ) -> Result<E::JsonResponse, SwitchError>
    where
        E: EndpointSpec,
    {
        let deadline = Instant::now() + self.budget;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            report.attempts += 1;
            match self.call(ep).await {
                Ok(v) => return Ok(v),
                Err(e)
                    if e.status == Some(StatusCode::UNAUTHORIZED)
                        || e.status == Some(StatusCode::FORBIDDEN) =>
                {
                    return Err(SwitchError::Auth(e.to_string()))
                }
                Err(e) if e.retryable() => {
                    let wait = retry_wait(attempt, e.retry_after);
                    if Instant::now() + wait > deadline {
                        return Err(SwitchError::Api(format!(
                            "{what}: {e} (gave up after {attempt} attempts)"
                        )));
                    }
                    tracing::warn!(%what, error = %e, wait_ms = wait.as_millis() as u64, "retrying");
                    report.retries.push(format!(
                        "{what}: {}, waited {}",
                        e.short(),
                        handover_cli::secs(wait)
                    ));
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(SwitchError::Api(format!("{what}: {e}"))),
            }
        }
    }

    async fn zone_id(&self, report: &mut FlipReport) -> Result<String, SwitchError> {
        if is_zone_id(&self.plan.zone) {
            return Ok(self.plan.zone.clone());
        }
        let ep = ListZones {
            params: ListZonesParams {
                name: Some(self.plan.zone.clone()),
                ..Default::default()
            },
        };
        let zones = self.call_retrying("list zones", &ep, report).await?;
        let mut matching = zones.into_iter().filter(|z| z.name == self.plan.zone);
        match (matching.next(), matching.next()) {
            (Some(z), None) => Ok(z.id),
            (None, _) => Err(SwitchError::Config(format!(
                "zone {} not found (is the token scoped to it?)",
                self.plan.zone
            ))),
            (Some(_), Some(_)) => Err(SwitchError::Config(format!(
                "zone name {} is ambiguous; give its id instead",
                self.plan.zone
            ))),
        }
    }

    async fn locate(&self, report: &mut FlipReport) -> Result<Located, SwitchError> {
        let zone_id = self.zone_id(report).await?;
        let ep = ListDnsRecords {
            zone_identifier: &zone_id,
            params: ListDnsRecordsParams {
                name: Some(self.plan.record.clone()),
                ..Default::default()
            },
        };
        let records = self.call_retrying("list records", &ep, report).await?;
        let mut matching = records.into_iter().filter(|r| {
            r.name.eq_ignore_ascii_case(&self.plan.record)
                && matches!(
                    r.content,
                    DnsContent::A { .. } | DnsContent::AAAA { .. } | DnsContent::CNAME { .. }
                )
        });
        match (matching.next(), matching.next()) {
            (Some(record), None) => Ok(Located { zone_id, record }),
            (None, _) => Err(SwitchError::Config(format!(
                "no A/AAAA/CNAME record {} in zone {}",
                self.plan.record, self.plan.zone
            ))),
            (Some(_), Some(_)) => Err(SwitchError::Config(format!(
                "record {} has several A/AAAA/CNAME entries (round robin); the flip needs exactly one",
                self.plan.record
            ))),
        }
    }
}

/// A short reason without the URL (which may carry query strings).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "bad response body"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(src) => format!("{kind}: {src}"),
        None => kind.to_string(),
    }
}

impl TrafficSwitch for CloudflareSwitch {
    fn describe(&self) -> String {
        format!(
            "cloudflare: record {} in zone {} via {}",
            self.plan.record, self.plan.zone, self.plan.api_base
        )
    }

    fn check(&self) -> BoxFuture<'_, Result<SwitchState, SwitchError>> {
        async move {
            let mut report = FlipReport::default();
            let status = self
                .call_retrying("verify token", &GetUserTokenStatus {}, &mut report)
                .await?;
            if status.status != "active" {
                return Err(SwitchError::Auth(format!("token status is {:?}", status.status)));
            }
            let Located { zone_id, record } = self.locate(&mut report).await?;
            if !record.proxied {
                return Err(SwitchError::Config(format!(
                    "record {} is not proxied: clients would cache the old address for its ttl ({}s); \
                     turn the proxy on before migrating",
                    record.name, record.ttl
                )));
            }
            self.prove_edit(&zone_id, &record, &mut report).await?;
            let ttl = if record.ttl == 1 {
                "auto".to_string()
            } else {
                format!("{}s", record.ttl)
            };
            Ok(SwitchState {
                current: content_of(&record.content),
                detail: format!(
                    "record {} → {} (proxied, ttl {ttl}) in zone {}",
                    record.name,
                    content_of(&record.content),
                    self.plan.zone
                ),
            })
        }
        .boxed()
    }

    fn current(&self) -> BoxFuture<'_, Result<String, SwitchError>> {
        async move {
            let mut report = FlipReport::default();
            let located = self.locate(&mut report).await?;
            Ok(content_of(&located.record.content))
        }
        .boxed()
    }

    fn flip<'a>(
        &'a self,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<FlipReport, SwitchError>> {
        async move {
            let mut report = FlipReport::default();
            let Located { zone_id, record } = self.locate(&mut report).await?;
            let found = content_of(&record.content);
            if found != from {
                return Err(SwitchError::Refused {
                    expected: from.to_string(),
                    found,
                });
            }
            let patch = PatchRecordContent {
                zone_identifier: &zone_id,
                identifier: &record.id,
                content: to,
            };
            let updated = self
                .call_retrying("update record", &patch, &mut report)
                .await?;
            let after = self.locate(&mut report).await?.record;
            let now = content_of(&after.content);
            if now != to || content_of(&updated.content) != to {
                return Err(SwitchError::NotApplied {
                    expected: to.to_string(),
                    found: now,
                });
            }
            if after.proxied != record.proxied || after.ttl != record.ttl {
                return Err(SwitchError::Api(format!(
                    "the update changed more than the content: proxied {} → {}, ttl {} → {}",
                    record.proxied, after.proxied, record.ttl, after.ttl
                )));
            }
            Ok(report)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_redacted() {
        let t = Token::new("sekrit-123".into());
        let shown = format!("{t:?}");
        assert!(!shown.contains("sekrit"), "{shown}");
    }

    #[test]
    fn backoff_grows_caps_and_honors_retry_after() {
        assert_eq!(retry_wait(1, None), Duration::from_millis(250));
        assert_eq!(retry_wait(2, None), Duration::from_millis(500));
        assert_eq!(retry_wait(3, None), Duration::from_secs(1));
        assert_eq!(retry_wait(20, None), Duration::from_secs(8));
        assert_eq!(
            retry_wait(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        // Retry-After: 0 still waits a little instead of hammering.
        assert_eq!(
            retry_wait(1, Some(Duration::ZERO)),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn zone_ids_are_recognized() {
        assert!(is_zone_id("023e105f4ecef8ad9ca31a8372d0c353"));
        assert!(!is_zone_id("example.com"));
    }

    #[test]
    fn patch_sends_only_the_content() {
        let p = PatchRecordContent {
            zone_identifier: "z",
            identifier: "r",
            content: "10.0.0.2",
        };
        assert_eq!(p.method(), Method::PATCH);
        assert_eq!(p.path(), "zones/z/dns_records/r");
        match p.body() {
            Some(RequestBody::Json(b)) => assert_eq!(b, r#"{"content":"10.0.0.2"}"#),
            _ => panic!("json body expected"),
        }
    }
}
