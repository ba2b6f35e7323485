//! kv-service over HTTP: `PUT /kv/{key}`, `GET /kv` (paged), `GET /metrics`
//! (Prometheus text), `GET /healthz` (plain `ok`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::replica::{Put, Replica, Writer, SHARDS};
use crate::fault::LoseEvery;
use crate::name;
use crate::serving::error_reply;

/// `GET /kv` page size when `limit` is not given, and the most it may be.
pub const DEFAULT_LIMIT: usize = 1000;
pub const MAX_LIMIT: usize = 10_000;

/// Largest request body: a key's value is meant to be small.
const MAX_BODY: usize = 64 * 1024;

/// One instance as the handlers see it.
#[derive(Debug)]
pub struct Service {
    pub replica: Arc<Replica>,
    pub writer: Writer,
    pub instance: String,
    pub lose: LoseEvery,
    /// Set once the log has been applied up to its head at start-up;
    /// until then only `/metrics` and `/healthz` answer.
    pub caught_up: AtomicBool,
    /// The last error of the follower, cleared by its next success.
    pub follow_error: Mutex<Option<String>>,
    /// `kv_requests_total` by (route, status).
    requests: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Service {
    pub fn new(
        replica: Arc<Replica>,
        writer: Writer,
        instance: String,
        lose: LoseEvery,
    ) -> Service {
        Service {
            replica,
            writer,
            instance,
            lose,
            caught_up: AtomicBool::new(false),
            follow_error: Mutex::new(None),
            requests: Mutex::default(),
        }
    }

    /// Why this instance should not answer reads and writes (nor be
    /// routed to): still catching up with the log, or unable to follow it.
    fn unready(&self) -> Option<String> {
        let error = self.follow_error.lock().unwrap_or_else(|p| p.into_inner());
        match &*error {
            Some(e) => Some(format!("cannot follow the log: {e}")),
            None if !self.caught_up.load(Ordering::Acquire) => {
                Some("catching up with the log".into())
            }
            None => None,
        }
    }
}

pub fn router(svc: Arc<Service>) -> Router {
    let app = Router::new()
        .route("/kv", get(list))
        .route("/kv/{key}", put(put_key))
        .route_layer(middleware::from_fn_with_state(svc.clone(), count));
    Router::new()
        .merge(app)
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(svc)
}

/// Counts application requests by route and status for `kv_requests_total`.
async fn count(State(svc): State<Arc<Service>>, req: Request, next: Next) -> Response {
    // Only matched routes get here; "other" keeps the label set bounded anyway.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("other".to_string(), |m| m.as_str().to_string());
    let resp = next.run(req).await;
    let mut requests = svc.requests.lock().unwrap_or_else(|p| p.into_inner());
    *requests.entry((route, resp.status().as_u16())).or_default() += 1;
    resp
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    value: Value,
}

async fn put_key(
    State(svc): State<Arc<Service>>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(problem) = name::problem("key", &key) {
        return error_reply(StatusCode::BAD_REQUEST, problem);
    }
    let value = match serde_json::from_slice::<PutBody>(&body) {
        Ok(b) => b.value,
        Err(e) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                format!(r#"the body must be {{"value": …}}: {e}"#),
            )
        }
    };
    if let Some(reason) = svc.unready() {
        return error_reply(StatusCode::SERVICE_UNAVAILABLE, reason);
    }
    let stored = |status: StatusCode, key: String, value: Value| {
        (
            status,
            Json(json!({"key": key, "value": value, "instance": svc.instance})),
        )
            .into_response()
    };
    if svc.lose.lose_this_one() {
        tracing::warn!(
            key,
            "--lose-every: acknowledging a write that is not stored"
        );
        return stored(StatusCode::CREATED, key, value);
    }
    match svc.writer.put(key.clone(), value.clone()).await {
        Ok(Put::Created) => stored(StatusCode::CREATED, key, value),
        Ok(Put::Same) => stored(StatusCode::OK, key, value),
        Ok(Put::Conflict(old)) => {
            let body = json!({"error": format!("key {key} holds another value"), "key": key, "value": old});
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
        Err(e) => error_reply(StatusCode::SERVICE_UNAVAILABLE, format!("not stored: {e}")),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
    after: Option<String>,
    limit: Option<usize>,
}

/// A page of keys in key order, only those starting with `prefix` if
/// given (one run's ids); `next` is the path of the following page, null
/// on the last one.
async fn list(
    State(svc): State<Arc<Service>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return error_reply(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return error_reply(
            StatusCode::BAD_REQUEST,
            format!("limit must be 1 to {MAX_LIMIT}"),
        );
    }
    if let Some(problem) = q.after.as_deref().and_then(|a| name::problem("after", a)) {
        return error_reply(StatusCode::BAD_REQUEST, problem);
    }
    if let Some(problem) = Some(&q.prefix)
        .filter(|p| !p.is_empty())
        .and_then(|p| name::problem("prefix", p))
    {
        return error_reply(StatusCode::BAD_REQUEST, problem);
    }
    if let Some(reason) = svc.unready() {
        return error_reply(StatusCode::SERVICE_UNAVAILABLE, reason);
    }
    let (items, more) = svc.replica.page(&q.prefix, q.after.as_deref(), limit);
    let next = match items.last() {
        // Keys need no escaping: `name` allows only URL-safe characters.
        Some((last, _)) if more => {
            let prefix = Some(&q.prefix).filter(|p| !p.is_empty());
            let prefix = prefix.map_or(String::new(), |p| format!("prefix={p}&"));
            Value::String(format!("/kv?{prefix}after={last}&limit={limit}"))
        }
        _ => Value::Null,
    };
    let items: Vec<Value> = items
        .into_iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    Json(json!({"items": items, "next": next})).into_response()
}

async fn healthz(State(svc): State<Arc<Service>>) -> Response {
    match svc.unready() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn metrics(State(svc): State<Arc<Service>>) -> Response {
    let replica = svc.replica.clone();
    let head = match tokio::task::spawn_blocking(move || replica.head_by_shard()).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) => return error_reply(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => return error_reply(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let requests = svc
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let text = render(&head, svc.replica.applied(), &requests);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The Prometheus text exposition of the three metrics.
fn render(head: &[u64; SHARDS], applied: u64, requests: &BTreeMap<(String, u16), u64>) -> String {
    let mut out = String::new();
    out.push_str("# HELP kv_log_head Records in the shared log file, by shard of their key; the sum over shards is the log's head.\n");
    out.push_str("# TYPE kv_log_head gauge\n");
    for (shard, n) in head.iter().enumerate() {
        let _ = writeln!(out, "kv_log_head{{shard=\"{shard}\"}} {n}");
    }
    out.push_str(
        "# HELP kv_applied_records Records of the log this instance has applied to its map.\n",
    );
    out.push_str("# TYPE kv_applied_records counter\n");
    let _ = writeln!(out, "kv_applied_records {applied}");
    out.push_str("# HELP kv_requests_total Application requests (PUT /kv/{key}, GET /kv) answered, by route and status.\n");
    out.push_str("# TYPE kv_requests_total counter\n");
    for ((route, status), n) in requests {
        let _ = writeln!(
            out,
            "kv_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_has_every_shard_and_request_series() {
        let requests = BTreeMap::from([
            (("/kv/{key}".to_string(), 201), 5),
            (("/kv".to_string(), 200), 2),
        ]);
        let text = render(&[1, 0, 3, 2], 4, &requests);
        for line in [
            "kv_log_head{shard=\"0\"} 1",
            "kv_log_head{shard=\"1\"} 0",
            "kv_log_head{shard=\"3\"} 2",
            "kv_applied_records 4",
            "kv_requests_total{route=\"/kv/{key}\",status=\"201\"} 5",
            "kv_requests_total{route=\"/kv\",status=\"200\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
