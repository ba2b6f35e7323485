//! The admin endpoints, for tests and the migrator's nemesis; every one
//! needs `admin_token` from edge.toml (`Authorization: Bearer …`) and is off
//! without it. Replies use the v4 envelope; a bad body or path is a 400
//! whose message starts with the field at fault.
//!
//! API faults ([`crate::faults`]): the next calls fail, answer late or hang.
//!
//! - `GET /admin/faults`: what is armed, `remaining`, `injected_total`,
//!   `waiting` (calls held now).
//! - `POST /admin/faults` `{"status": 429, "count": 2, "retry_after": 1,
//!   "method": "PATCH", "delay_ms": 500 | "hang": true}`: replaces what is
//!   armed (and releases held calls). `status` and the hold are each
//!   optional, not both.
//! - `DELETE /admin/faults`: disarms and releases held calls.
//!
//! Proxy faults per origin IP ([`crate::origin_faults`]), like Toxiproxy's
//! toxics:
//!
//! - `POST /admin/origins/{ip}/faults` `{"latency_ms": 200, "jitter_ms": 20,
//!   "reset": true, "blackhole": true, "for_ms": 3000}` (any subset, at
//!   least one fault): arms what the body names, leaves the rest; replies
//!   with the origin's faults.
//! - `GET /admin/origins/{ip}/faults`: one origin's faults (any IP).
//! - `DELETE /admin/origins/{ip}/faults`: disarms that origin.
//! - `GET /admin/origins`: every origin with a fault armed now.
//! - `DELETE /admin/origins`: disarms every origin.
//!
//! An origin's faults read `{"origin": "127.0.0.2", "latency": {"latency_ms":
//! 200, "jitter_ms": 20, "remaining_ms": null} | null, "reset":
//! {"remaining_ms": 2400} | null, "blackhole": … | null, "injected":
//! {"latency": 12, "reset": 0, "blackhole": 1}}` (`remaining_ms` null: until
//! cleared).

use crate::api::ApiState;
use crate::envelope::{ok, ApiError, ApiPath};
use crate::faults::FaultSpec;
use crate::origin_faults::spec::{origin_ip, OriginFaultSpec};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::{header, HeaderMap, StatusCode};
use serde_json::json;
use std::net::IpAddr;

/// The admin routes, merged into the API listener's router.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/admin/faults",
            get(faults_status).post(faults_arm).delete(faults_clear),
        )
        .route("/admin/origins", get(origins_list).delete(origins_clear))
        .route(
            "/admin/origins/{ip}/faults",
            get(origin_status).post(origin_arm).delete(origin_clear),
        )
}

fn admin_check(s: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(admin) = &s.admin_token else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            10000,
            "Admin endpoint disabled: no admin_token configured",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(t) if admin.matches(t) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            10000,
            "Authentication error",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            10000,
            "Authentication error",
        )),
    }
}

async fn faults_status(
    State(s): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin_check(&s, &headers)?;
    Ok(ok(json!(s.faults.status())))
}

async fn faults_arm(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin_check(&s, &headers)?;
    let spec = FaultSpec::from_body(&body)?;
    tracing::info!(status = ?spec.status, count = spec.count, delay_ms = ?spec.delay_ms, hang = spec.hang, "API faults armed");
    s.faults.arm(spec);
    Ok(ok(json!(s.faults.status())))
}

async fn faults_clear(State(s): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    admin_check(&s, &headers)?;
    s.faults.clear();
    Ok(ok(json!(s.faults.status())))
}

async fn origins_list(State(s): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    admin_check(&s, &headers)?;
    Ok(ok(json!(s.origin_faults.list())))
}

async fn origins_clear(
    State(s): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin_check(&s, &headers)?;
    s.origin_faults.clear_all();
    tracing::info!("proxy faults cleared for every origin");
    Ok(ok(json!(s.origin_faults.list())))
}

/// The admin check, then the origin IP of the path.
fn admin_origin(s: &ApiState, headers: &HeaderMap, raw_ip: &str) -> Result<IpAddr, ApiError> {
    admin_check(s, headers)?;
    origin_ip(raw_ip)
}

async fn origin_status(
    State(s): State<ApiState>,
    ApiPath(ip): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ip = admin_origin(&s, &headers, &ip)?;
    Ok(ok(json!(s.origin_faults.view(ip))))
}

async fn origin_arm(
    State(s): State<ApiState>,
    ApiPath(ip): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let ip = admin_origin(&s, &headers, &ip)?;
    let spec = OriginFaultSpec::from_body(&body)?;
    let view = s.origin_faults.arm(ip, &spec);
    tracing::info!(origin = %ip, latency = ?spec.latency, reset = ?spec.reset, blackhole = ?spec.blackhole, for_ms = ?spec.for_ms, "proxy faults armed");
    Ok(ok(json!(view)))
}

async fn origin_clear(
    State(s): State<ApiState>,
    ApiPath(ip): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ip = admin_origin(&s, &headers, &ip)?;
    tracing::info!(origin = %ip, "proxy faults cleared");
    Ok(ok(json!(s.origin_faults.clear(ip))))
}
