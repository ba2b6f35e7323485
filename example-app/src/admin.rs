//! `/admin/faults`: arming the instance's own faults over HTTP, routed only
//! when the process was started with `--fault-injection` (otherwise the
//! path is an unknown route, 404). Admin requests are not application
//! requests: they leave `requests_total` and `in_flight` alone, so arming a
//! fault never looks like traffic to a drain.
//!
//! - `GET` shows what is armed: `{"health": "ok", "apply": "resume"}`.
//! - `POST` with `{"health": "fail" | "ok"}` and/or `{"apply": "pause" | "resume"}`
//!   changes what it names and answers what is armed.
//! - `DELETE` disarms everything.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::api::{ApiError, App};
use crate::body;
use crate::faults::{Armed, FaultChange, Faults};

/// The route path, also how request accounting recognises it.
pub const FAULTS_PATH: &str = "/admin/faults";

/// Largest accepted fault request body.
const BODY_LIMIT: usize = 4096;

/// The admin routes, for a router whose app has faults.
pub fn routes() -> Router<Arc<App>> {
    Router::new().route(FAULTS_PATH, get(show).post(change).delete(clear))
}

/// The app's faults; a 404 like any unknown route when it has none (the
/// routes are only added when it does).
fn faults(app: &App) -> Result<&Faults, ApiError> {
    app.faults()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route"))
}

async fn show(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    Ok(reply(faults(&app)?.armed()))
}

async fn change(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Response, ApiError> {
    let faults = faults(&app)?;
    let bytes = body::read(&headers, request_body, BODY_LIMIT).await?;
    let change = FaultChange::parse(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_fault", e.to_string()))?;
    Ok(reply(faults.change(change)))
}

async fn clear(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    Ok(reply(faults(&app)?.clear()))
}

fn reply(armed: Armed) -> Response {
    (StatusCode::OK, axum::Json(armed)).into_response()
}
