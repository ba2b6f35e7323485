//! The v4 API listener: `/client/v4/…` (zones, DNS records, token verify),
//! plus `/metrics` and the admin endpoints (`/admin/…`, see [`crate::admin`]).
//!
//! Handlers take raw query strings and bodies and parse them here, so every
//! bad input gets Cloudflare's envelope instead of a framework's plain text.

use crate::auth::Tokens;
use crate::envelope::{self, ok, ok_list, paginate, ApiError, ApiPath};
use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::origin_faults::OriginFaults;
use crate::record::{Record, RecordInput, WriteMode};
use crate::secret::Secret;
use crate::store::Store;
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Everything the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<Store>,
    pub tokens: Arc<Tokens>,
    pub admin_token: Option<Secret>,
    pub faults: Arc<Faults>,
    /// Proxy-side faults per origin, shared with the proxy.
    pub origin_faults: Arc<OriginFaults>,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: ApiState) -> Router {
    let v4 = Router::new()
        .route("/zones", get(list_zones))
        .route("/zones/{zone}", get(zone_details))
        .route(
            "/zones/{zone}/dns_records",
            get(list_records).post(create_record),
        )
        .route(
            "/zones/{zone}/dns_records/{record}",
            get(get_record)
                .put(put_record)
                .patch(patch_record)
                .delete(delete_record),
        )
        .route("/user/tokens/verify", get(verify_token))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), v4_gate))
        .with_state(state.clone());
    Router::new()
        .nest("/client/v4", v4)
        .route("/metrics", get(metrics))
        .merge(crate::admin::routes())
        .layer(middleware::from_fn(ray_header))
        .with_state(state)
}

/// Every reply gets a `CF-Ray` id.
async fn ray_header(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(crate::ray::next().as_str()) {
        resp.headers_mut().insert(crate::ray::HEADER, v);
    }
    resp
}

/// Authentication, then injected faults (a hold, then an error or the
/// handler), then the handler; counts every reply.
async fn v4_gate(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let verify = req.uri().path().ends_with("/user/tokens/verify");
    let resp = match s.tokens.authorize(req.headers(), &method, verify) {
        Err(e) => e.into_response(),
        Ok(_) => match s.faults.take(&method) {
            Some(injection) => {
                tracing::info!(status = ?injection.error.as_ref().map(|e| e.status.as_u16()), hold = ?injection.hold, %method, path = req.uri().path(), "injected API fault");
                match s.faults.hold(injection).await {
                    Some(error) => error.into_response(),
                    None => next.run(req).await,
                }
            }
            None => next.run(req).await,
        },
    };
    s.metrics.api_reply(method.as_str(), resp.status().as_u16());
    resp
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, 7000, "No route for that URI")
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        7001,
        format!("Method {method} not available for that URI."),
    )
}

/// Query parameters; a repeated key keeps its last value.
fn query_map(raw: Option<String>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// `page` (1-based) and `per_page` (clamped to Cloudflare's bounds).
fn page_params(
    q: &HashMap<String, String>,
    default_per_page: usize,
    max_per_page: usize,
) -> Result<(usize, usize), ApiError> {
    let num = |key: &str, default: usize| -> Result<usize, ApiError> {
        match q.get(key) {
            None => Ok(default),
            Some(v) => v.trim().parse::<usize>().map_err(|_| {
                ApiError::bad_request(
                    1001,
                    format!("Invalid value for {key}: {v:?} is not a positive integer"),
                )
            }),
        }
    };
    let page = num("page", 1)?.max(1);
    let per_page = num("per_page", default_per_page)?.clamp(5, max_per_page);
    Ok((page, per_page))
}

async fn list_zones(
    State(s): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = query_map(raw);
    let (page, per_page) = page_params(&q, 20, 50)?;
    let name = q
        .get("name")
        .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
    let status_ok = q.get("status").is_none_or(|st| st == "active");
    let zones: Vec<Value> = s
        .store
        .zones()
        .iter()
        .filter(|z| status_ok && name.as_ref().is_none_or(|n| &z.name == n))
        .map(|z| z.view())
        .collect();
    let (page_items, info) = paginate(zones, page, per_page);
    Ok(ok_list(page_items, info))
}

async fn zone_details(
    State(s): State<ApiState>,
    ApiPath(zone): ApiPath<String>,
) -> Result<Response, ApiError> {
    let z = s
        .store
        .zone(&zone)
        .ok_or_else(|| ApiError::zone_not_found(&format!("/zones/{zone}")))?;
    Ok(ok(z.view()))
}

async fn list_records(
    State(s): State<ApiState>,
    ApiPath(zone): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let z = s
        .store
        .zone(&zone)
        .ok_or_else(|| ApiError::zone_not_found(&format!("/zones/{zone}/dns_records")))?;
    let q = query_map(raw);
    let (page, per_page) = page_params(&q, 100, 5000)?;
    let filter = RecordFilter::from_query(&q, &z.name)?;
    let mut records: Vec<&Record> = z.records.iter().filter(|r| filter.matches(r)).collect();
    sort_records(&mut records, &q)?;
    let views: Vec<Value> = records.iter().map(|r| r.view(&z.id, &z.name)).collect();
    let (page_items, info) = paginate(views, page, per_page);
    Ok(ok_list(page_items, info))
}

/// The list filters: `name`, `type`, `content`, `proxied`; `match=any` ORs them.
struct RecordFilter {
    name: Option<String>,
    kind: Option<String>,
    content: Option<String>,
    proxied: Option<bool>,
    any: bool,
}

impl RecordFilter {
    fn from_query(q: &HashMap<String, String>, zone_name: &str) -> Result<Self, ApiError> {
        let get = |a: &str, b: &str| q.get(a).or_else(|| q.get(b)).cloned();
        let name = get("name", "name.exact").map(|n| {
            crate::record::normalize_name(&n, zone_name).unwrap_or(n.to_ascii_lowercase())
        });
        let proxied = two_way(q, "proxied", "false", "true")?;
        let any = two_way(q, "match", "all", "any")?.unwrap_or(false);
        Ok(RecordFilter {
            name,
            kind: q.get("type").map(|t| t.to_ascii_uppercase()),
            content: get("content", "content.exact"),
            proxied,
            any,
        })
    }

    fn matches(&self, r: &Record) -> bool {
        let checks = [
            self.name.as_ref().map(|n| &r.name == n),
            self.kind.as_ref().map(|k| r.kind.as_str() == k),
            self.content
                .as_ref()
                .map(|c| r.content.eq_ignore_ascii_case(c)),
            self.proxied.map(|p| r.proxied == p),
        ];
        let mut given = checks.iter().flatten().peekable();
        if given.peek().is_none() {
            return true;
        }
        if self.any {
            given.any(|ok| *ok)
        } else {
            given.all(|ok| *ok)
        }
    }
}

fn sort_records(records: &mut [&Record], q: &HashMap<String, String>) -> Result<(), ApiError> {
    let desc = two_way(q, "direction", "asc", "desc")?.unwrap_or(false);
    match q.get("order").map(String::as_str) {
        None => {}
        Some("type") => records.sort_by(|a, b| a.kind.as_str().cmp(b.kind.as_str())),
        Some("name") => records.sort_by(|a, b| a.name.cmp(&b.name)),
        Some("content") => records.sort_by(|a, b| a.content.cmp(&b.content)),
        Some("ttl") => records.sort_by_key(|r| r.ttl),
        Some("proxied") => records.sort_by_key(|r| r.proxied),
        Some(v) => return Err(invalid("order", v)),
    }
    if desc {
        records.reverse();
    }
    Ok(())
}

/// A query parameter that takes one of two words: `off` is false, `on` is
/// true; absent is `None`.
fn two_way(
    q: &HashMap<String, String>,
    key: &str,
    off: &str,
    on: &str,
) -> Result<Option<bool>, ApiError> {
    match q.get(key).map(String::as_str) {
        None => Ok(None),
        Some(v) if v == off => Ok(Some(false)),
        Some(v) if v == on => Ok(Some(true)),
        Some(v) => Err(invalid(key, v)),
    }
}

/// Cloudflare's 1001 for a query parameter it does not accept.
fn invalid(key: &str, value: &str) -> ApiError {
    ApiError::bad_request(1001, format!("Invalid value for {key}: {value:?}"))
}

fn existing_zone(s: &ApiState, zone: &str, path: &str) -> Result<(), ApiError> {
    s.store
        .zone(zone)
        .map(|_| ())
        .ok_or_else(|| ApiError::zone_not_found(path))
}

async fn create_record(
    State(s): State<ApiState>,
    ApiPath(zone): ApiPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    existing_zone(&s, &zone, &format!("/zones/{zone}/dns_records"))?;
    let input = RecordInput::from_body(&body)?;
    let (rec, zone_name) = s.store.create(&zone, input)?;
    tracing::info!(zone = %zone_name, name = %rec.name, content = %rec.content, proxied = rec.proxied, "record created");
    Ok(ok(rec.view(&zone, &zone_name)))
}

async fn get_record(
    State(s): State<ApiState>,
    ApiPath((zone, record)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let z = s
        .store
        .zone(&zone)
        .ok_or_else(|| ApiError::zone_not_found(&format!("/zones/{zone}/dns_records/{record}")))?;
    let rec = z
        .records
        .iter()
        .find(|r| r.id == record)
        .ok_or_else(ApiError::record_not_found)?;
    Ok(ok(rec.view(&z.id, &z.name)))
}

async fn put_record(
    State(s): State<ApiState>,
    ApiPath((zone, record)): ApiPath<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    write_record(&s, &zone, &record, &body, WriteMode::Replace)
}

async fn patch_record(
    State(s): State<ApiState>,
    ApiPath((zone, record)): ApiPath<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    write_record(&s, &zone, &record, &body, WriteMode::Patch)
}

fn write_record(
    s: &ApiState,
    zone: &str,
    record: &str,
    body: &[u8],
    mode: WriteMode,
) -> Result<Response, ApiError> {
    existing_zone(s, zone, &format!("/zones/{zone}/dns_records/{record}"))?;
    let input = RecordInput::from_body(body)?;
    let (rec, zone_name) = s.store.update(zone, record, input, mode)?;
    tracing::info!(zone = %zone_name, name = %rec.name, content = %rec.content, proxied = rec.proxied, ?mode, "record updated");
    Ok(ok(rec.view(zone, &zone_name)))
}

async fn delete_record(
    State(s): State<ApiState>,
    ApiPath((zone, record)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    existing_zone(&s, &zone, &format!("/zones/{zone}/dns_records/{record}"))?;
    let id = s.store.delete(&zone, &record)?;
    tracing::info!(%zone, record = %id, "record deleted");
    Ok(ok(json!({ "id": id })))
}

async fn verify_token(State(s): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let id = s.tokens.check(&headers, true)?;
    Ok(envelope::ok_with(
        StatusCode::OK,
        json!({ "id": id, "status": "active" }),
        None,
        vec![json!({"code": 10000, "message": "This API Token is valid and active", "type": null})],
    ))
}

async fn metrics(State(s): State<ApiState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(s.faults.status().injected_total),
    )
        .into_response()
}
