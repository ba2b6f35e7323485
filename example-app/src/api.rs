//! The HTTP API: routes, handlers that map requests to use cases (placing an
//! order is [`crate::orders`]), JSON errors, and the layer that stamps
//! `X-Instance` on every reply and counts application requests.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{SecondsFormat, Utc};
use handover_contract::{ErrorBody, ErrorDetail, Health, HealthChecks, NewOrder, Order};

use crate::admin;
use crate::body;
use crate::faults::{Faults, HEALTH_FAULT_REASON};
use crate::metrics::{self, Metrics};
use crate::orders::{Orders, PlaceError, Placed};
use crate::projection::{ListFormat, Projection};
use crate::store::EventStore;

/// Tunables of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// `/health` turns 503 when `head - applied` exceeds this.
    pub max_lag: u64,
    /// How long a `POST /orders` waits for its own event to be applied.
    pub apply_timeout: Duration,
    /// Largest accepted request body.
    pub body_limit: usize,
    /// Honour `X-Handover-Test-Delay-Ms` (tests of graceful shutdown only).
    pub test_hooks: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_lag: 1000,
            apply_timeout: Duration::from_secs(10),
            body_limit: 64 * 1024,
            test_hooks: false,
        }
    }
}

/// The request header the test hook reads (only with `ApiConfig::test_hooks`).
pub const TEST_DELAY_HEADER: &str = "x-handover-test-delay-ms";

/// Everything a handler needs.
pub struct App {
    pub instance: String,
    instance_header: HeaderValue,
    pub store: Arc<dyn EventStore>,
    pub projection: Arc<Projection>,
    pub config: ApiConfig,
    metrics: Metrics,
    draining: AtomicBool,
    in_flight: AtomicU64,
    requests_total: AtomicU64,
    /// Unix ms of the last application request; 0 before the first.
    last_request_ms: AtomicI64,
    /// Injected faults, only with `--fault-injection`.
    faults: Option<Arc<Faults>>,
}

impl App {
    /// Fails only when the instance id cannot be a header value.
    pub fn new(
        instance: String,
        store: Arc<dyn EventStore>,
        projection: Arc<Projection>,
        config: ApiConfig,
    ) -> Result<Self, String> {
        let instance_header = HeaderValue::from_str(&instance)
            .map_err(|_| format!("instance id {instance:?} is not a valid header value"))?;
        Ok(App {
            instance,
            instance_header,
            store,
            projection,
            config,
            metrics: Metrics::default(),
            draining: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            requests_total: AtomicU64::new(0),
            last_request_ms: AtomicI64::new(0),
            faults: None,
        })
    }

    /// Adds the faults `/admin/faults` arms (a process started with
    /// `--fault-injection`); without them the admin routes do not exist.
    pub fn with_faults(mut self, faults: Arc<Faults>) -> Self {
        self.faults = Some(faults);
        self
    }

    pub fn faults(&self) -> Option<&Faults> {
        self.faults.as_deref()
    }

    /// Why `/health` must fail although everything works, if a fault says so.
    fn health_fault(&self) -> Option<&'static str> {
        self.faults()
            .is_some_and(Faults::health_failing)
            .then_some(HEALTH_FAULT_REASON)
    }

    /// Marks the start of shutdown: `/health` reports draining (503).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// The place-order use case on this instance's store and projection.
    pub fn orders(&self) -> Orders<'_> {
        Orders {
            store: &*self.store,
            projection: &self.projection,
            instance: &self.instance,
            apply_timeout: self.config.apply_timeout,
        }
    }

    pub fn health(&self) -> Health {
        let applied = self.projection.applied();
        let head = (*self.store.watch_head().borrow()).max(applied);
        let lag = head - applied;
        let draining = self.draining.load(Ordering::SeqCst);
        let store = self.store.status();
        let last_ms = self.last_request_ms.load(Ordering::Relaxed);
        Health {
            healthy: store.is_ok()
                && lag <= self.config.max_lag
                && !draining
                && self.health_fault().is_none(),
            instance: self.instance.clone(),
            applied,
            head,
            lag,
            draining,
            in_flight: self.in_flight.load(Ordering::SeqCst),
            requests_total: self.requests_total.load(Ordering::SeqCst),
            last_request_at: (last_ms > 0)
                .then(|| chrono::DateTime::<Utc>::from_timestamp_millis(last_ms))
                .flatten()
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            checks: HealthChecks {
                store: match store {
                    Ok(()) => "ok".into(),
                    Err(e) => e,
                },
                fault: self.health_fault().map(str::to_string),
            },
        }
    }
}

/// A JSON error reply.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: bool,
    /// Reply with `Connection: close` (the request's body was not read).
    close: bool,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: false,
            close: false,
        }
    }

    /// The same error, closing the connection after the reply.
    pub(crate) fn closing(self) -> Self {
        ApiError {
            close: true,
            ..self
        }
    }

    fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            retry_after: true,
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }
}

/// Each reason an order was not placed, as its status and error code.
impl From<PlaceError> for ApiError {
    fn from(e: PlaceError) -> Self {
        let message = e.to_string();
        match e {
            PlaceError::Invalid(invalid) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, invalid.code(), message)
            }
            PlaceError::Conflict { .. } => Self::new(StatusCode::CONFLICT, "conflict", message),
            PlaceError::Store(_) => Self::unavailable("store_unavailable", message),
            PlaceError::NotApplied { .. } => Self::unavailable("not_applied", message),
            PlaceError::ProjectionMismatch { .. } => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "projection_mismatch",
                message,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.close {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

pub fn router(app: Arc<App>) -> Router {
    let routes = if app.faults().is_some() {
        admin::routes()
    } else {
        Router::new()
    };
    routes
        .route("/orders", get(list_orders).post(place_order))
        .route("/orders/{id}", get(get_order))
        .route("/users", get(list_users))
        .route("/companies", get(list_companies))
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), track))
        .with_state(app)
}

/// Decrements `in_flight` however the request ends (also when the client
/// goes away and the handler is dropped).
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn track(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().clone();
    // Probes and admin calls are not traffic: a drain must not wait on them.
    let counted = !matches!(route.as_str(), "/health" | "/metrics" | admin::FAULTS_PATH);
    let guard = counted.then(|| {
        app.in_flight.fetch_add(1, Ordering::SeqCst);
        app.requests_total.fetch_add(1, Ordering::SeqCst);
        app.last_request_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        InFlight(&app.in_flight)
    });
    let start = Instant::now();
    let mut resp = next.run(req).await;
    drop(guard);
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = resp.headers().get(header::ALLOW).cloned();
        resp = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {route}"),
        )
        .into_response();
        if let Some(allow) = allow {
            resp.headers_mut().insert(header::ALLOW, allow);
        }
    }
    app.metrics.observe(
        method.as_str(),
        &route,
        resp.status().as_u16(),
        start.elapsed(),
    );
    resp.headers_mut().insert(
        handover_contract::INSTANCE_HEADER,
        app.instance_header.clone(),
    );
    resp
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn place_order(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Response, ApiError> {
    if app.config.test_hooks {
        if let Some(ms) = headers
            .get(TEST_DELAY_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            tokio::time::sleep(Duration::from_millis(ms.min(30_000))).await;
        }
    }
    if !body::is_json(&headers) {
        let e = ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json",
        );
        return Err(body::refuse(&headers, request_body, e).await);
    }
    let bytes = body::read(&headers, request_body, app.config.body_limit).await?;
    let new: NewOrder = serde_json::from_slice(&bytes).map_err(|e| {
        if e.is_data() {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_order",
                format!("order does not match the schema: {e}"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("body is not valid JSON: {e}"),
            )
        }
    })?;
    match app.orders().place(&new).await? {
        Placed::Created { payload } => {
            let json = HeaderValue::from_static("application/json");
            Ok((StatusCode::CREATED, [(header::CONTENT_TYPE, json)], payload).into_response())
        }
        Placed::Existing(order) => Ok((StatusCode::OK, axum::Json(order)).into_response()),
    }
}

async fn get_order(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<axum::Json<Order>, ApiError> {
    app.projection.order(&id).map(axum::Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no order {id:?}"),
        )
    })
}

/// Orders serialized per chunk under a short read lock.
const LIST_CHUNK: usize = 2048;

async fn list_orders(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    let format = if ndjson {
        ListFormat::Ndjson
    } else {
        ListFormat::Json
    };
    // The snapshot is the count now; orders are append-only, so the prefix is stable.
    let end = app.projection.order_count();
    let projection = app.projection.clone();
    let state = (0usize, false);
    let stream = futures::stream::unfold(state, move |(next, done)| {
        let projection = projection.clone();
        async move {
            if done {
                return None;
            }
            let mut buf = Vec::with_capacity(LIST_CHUNK * 128);
            if format == ListFormat::Json && next == 0 {
                buf.push(b'[');
            }
            let after = projection.write_orders(next, end, LIST_CHUNK, format, &mut buf);
            let finished = after >= end;
            if finished && format == ListFormat::Json {
                buf.push(b']');
            }
            Some((Ok::<_, Infallible>(Bytes::from(buf)), (after, finished)))
        }
    });
    let content_type = if ndjson {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn list_users(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.projection.users()).into_response()
}

async fn list_companies(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.projection.companies()).into_response()
}

/// The health document; while a fault fails it, `checks.fault` says so.
async fn health(State(app): State<Arc<App>>) -> Response {
    let h = app.health();
    let status = if h.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(h)).into_response()
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    let mut out = String::with_capacity(4096);
    app.metrics.render(&mut out);
    let h = app.health();
    let s = app.store.stats();
    metrics::single(
        &mut out,
        "handover_applied_position",
        "gauge",
        "Highest store position applied to this instance.",
        h.applied,
    );
    metrics::single(
        &mut out,
        "handover_store_head_position",
        "gauge",
        "Highest committed store position seen.",
        h.head,
    );
    metrics::single(
        &mut out,
        "handover_lag_events",
        "gauge",
        "Store head minus applied position.",
        h.lag,
    );
    metrics::single(
        &mut out,
        "handover_in_flight_requests",
        "gauge",
        "Application requests being served.",
        h.in_flight,
    );
    metrics::single(
        &mut out,
        "handover_draining",
        "gauge",
        "1 once shutdown has begun.",
        u64::from(h.draining),
    );
    metrics::single(
        &mut out,
        "handover_store_up",
        "gauge",
        "1 while every store task (writer, poller or listener, follower) last succeeded.",
        u64::from(h.checks.store == "ok"),
    );
    metrics::single(
        &mut out,
        "handover_orders",
        "gauge",
        "Orders in this instance's projection.",
        app.projection.order_count() as u64,
    );
    metrics::single(
        &mut out,
        "handover_projection_skipped_events_total",
        "counter",
        "Events that could not be decoded.",
        app.projection.skipped(),
    );
    metrics::single(
        &mut out,
        "handover_store_commits_total",
        "counter",
        "Write transactions committed by this instance.",
        s.commits,
    );
    metrics::single(
        &mut out,
        "handover_store_appends_total",
        "counter",
        "Appends completed by those transactions.",
        s.appends,
    );
    metrics::single(
        &mut out,
        "handover_store_batch_max",
        "gauge",
        "Most appends carried by one transaction (group commit).",
        s.max_batch,
    );
    metrics::single(
        &mut out,
        "handover_store_commit_max_seconds",
        "gauge",
        "The longest write transaction (lock wait, writes, durable flush).",
        s.commit_max_us as f64 / 1e6,
    );
    metrics::single(
        &mut out,
        "handover_store_slow_commits_total",
        "counter",
        "Write transactions of 10 ms or more (each is logged).",
        s.slow_commits,
    );
    metrics::single(
        &mut out,
        "handover_store_handed_over_total",
        "counter",
        "Own commits applied from memory instead of read back from the store.",
        s.handed_over,
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
