//! `pg-orders`: an HTTP API in front of PostgreSQL, the most common kind of
//! service people migrate. Instances share one database; an order is stored
//! once its INSERT has committed.
//!
//! What handover reads from it during a migration (the worked example in
//! docs/any-service.md): health from `GET /status` (a plain 2xx, not the
//! handover health document), the answering instance from the
//! `X-Served-By` header, the stored ids straight from the table with SQL
//! (`SELECT id, body->>'item' FROM orders WHERE id LIKE '{run}-%'`).
//! There is nothing to converge: every instance reads the same database.
//!
//! The database URL comes from `PG_ORDERS_DATABASE_URL`, never from a flag
//! (a flag shows in `ps`); it may hold a password, which is never printed.

use handover_cli::shutdown::Shutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, NoTls, Statement};

use crate::fault::LoseEvery;
use crate::serving::{self, error_reply, RunError};

/// Where the database URL comes from.
pub const DATABASE_URL_ENV: &str = "PG_ORDERS_DATABASE_URL";

/// The reply header that names the instance.
pub const SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");

/// How long one statement, or the connection at start-up, may take.
const DB_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP API for orders, stored in PostgreSQL.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pg-orders",
    version,
    after_help = "The database URL is read from PG_ORDERS_DATABASE_URL \
                  (postgres://USER:PASSWORD@HOST:PORT/DB); it is never printed."
)]
pub struct Opts {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the listening line on stdout names it).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// This instance's name, sent as `X-Served-By` on every reply.
    #[arg(long, value_name = "NAME")]
    pub instance: String,

    /// TEST-ONLY FAULT: answer every Nth well-formed order with 201 and never insert it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub lose_every: Option<u64>,
}

/// The table, created by the first instance that finds it missing (the
/// advisory lock keeps two instances starting together from racing).
const SCHEMA: &str = "BEGIN;
SELECT pg_advisory_xact_lock(72077201);
CREATE TABLE IF NOT EXISTS orders (
    id text PRIMARY KEY,
    body jsonb NOT NULL,
    instance text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMIT;";

/// An order as posted, and as stored in `body`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    id: String,
    item: String,
    qty: u32,
}

struct Db {
    client: Client,
    insert: Statement,
    same_body: Statement,
}

struct Service {
    db: Db,
    instance: HeaderValue,
    lose: LoseEvery,
}

/// Runs one instance until `shutdown` resolves.
pub async fn run(opts: Opts, shutdown: Shutdown) -> Result<(), RunError> {
    let instance = match crate::name::problem("--instance", &opts.instance) {
        None => HeaderValue::from_str(&opts.instance)
            .map_err(|e| RunError::Usage(format!("--instance: {e}")))?,
        Some(problem) => return Err(RunError::Usage(problem)),
    };
    let url = std::env::var(DATABASE_URL_ENV).map_err(|_| {
        RunError::Usage(format!(
            "{DATABASE_URL_ENV} is not set (postgres://USER:PASSWORD@HOST:PORT/DB)"
        ))
    })?;
    let db = connect(&url).await.map_err(|e| e.redacted(&url))?;
    let listener = serving::bind(opts.listen).await?;
    let svc = Arc::new(Service {
        db,
        instance,
        lose: LoseEvery::new(opts.lose_every),
    });
    serving::announce(&listener, &opts.instance)?;
    serving::serve(listener, router(svc), shutdown).await
}

async fn connect(url: &str) -> Result<Db, RunError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        RunError::Usage(format!(
            "{DATABASE_URL_ENV} is not a PostgreSQL URL: {}",
            with_causes(&e)
        ))
    })?;
    config.connect_timeout(DB_TIMEOUT);
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        RunError::Failed(format!(
            "cannot connect to the database in {DATABASE_URL_ENV}: {}",
            with_causes(&e)
        ))
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::error!(error = %e, "database connection lost");
        }
    });
    let failed = |e: tokio_postgres::Error| {
        RunError::Failed(format!(
            "cannot set up the orders table: {}",
            with_causes(&e)
        ))
    };
    client.batch_execute(SCHEMA).await.map_err(failed)?;
    let insert = client
        .prepare(
            "INSERT INTO orders (id, body, instance) VALUES ($1, $2::text::jsonb, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .await
        .map_err(failed)?;
    let same_body = client
        .prepare("SELECT body = $2::text::jsonb FROM orders WHERE id = $1")
        .await
        .map_err(failed)?;
    tracing::info!("database ready");
    Ok(Db {
        client,
        insert,
        same_body,
    })
}

impl RunError {
    /// The same error with the URL's password, wherever it appears, masked.
    fn redacted(self, url: &str) -> RunError {
        let Some(password) = password_in(url) else {
            return self;
        };
        let mask = |text: String| text.replace(password, "***");
        match self {
            RunError::Usage(t) => RunError::Usage(mask(t)),
            RunError::Failed(t) => RunError::Failed(mask(t)),
        }
    }
}

/// `error: cause: cause`, because tokio-postgres keeps the useful part
/// ("Connection refused", which option is invalid) in the source.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The password of `postgres://user:PASSWORD@host/db`, if any.
fn password_in(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.rsplit_once('@')?.0;
    userinfo
        .split_once(':')
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty())
}

fn router(svc: Arc<Service>) -> Router {
    Router::new()
        .route("/api/orders", post(create))
        .route("/status", get(status))
        .layer(middleware::from_fn_with_state(svc.clone(), served_by))
        .with_state(svc)
}

/// Every reply, errors included, names the instance.
async fn served_by(State(svc): State<Arc<Service>>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(SERVED_BY, svc.instance.clone());
    resp
}

async fn status(State(svc): State<Arc<Service>>) -> Response {
    match tokio::time::timeout(DB_TIMEOUT, svc.db.client.simple_query("SELECT 1")).await {
        Ok(Ok(_)) => Json(serde_json::json!({"ok": true})).into_response(),
        Ok(Err(e)) => unavailable(&with_causes(&e)),
        Err(_) => unavailable("the database did not answer in time"),
    }
}

fn unavailable(reason: &str) -> Response {
    let body = serde_json::json!({"ok": false, "error": reason});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn create(State(svc): State<Arc<Service>>, body: Bytes) -> Response {
    let order = match serde_json::from_slice::<Order>(&body) {
        Ok(o) => o,
        Err(e) => {
            let shape = r#"{"id": "...", "item": "...", "qty": N}"#;
            return error_reply(
                StatusCode::BAD_REQUEST,
                format!("the body must be {shape}: {e}"),
            );
        }
    };
    if let Some(problem) = order_problem(&order) {
        return error_reply(StatusCode::BAD_REQUEST, problem);
    }
    if svc.lose.lose_this_one() {
        tracing::warn!(
            id = order.id,
            "--lose-every: acknowledging an order that is not stored"
        );
        return (StatusCode::CREATED, Json(order)).into_response();
    }
    match tokio::time::timeout(DB_TIMEOUT, store(&svc, &order)).await {
        Ok(Ok(Stored::Created)) => (StatusCode::CREATED, Json(order)).into_response(),
        Ok(Ok(Stored::Same)) => (StatusCode::OK, Json(order)).into_response(),
        Ok(Ok(Stored::Conflict)) => error_reply(
            StatusCode::CONFLICT,
            format!("order {} exists with another body", order.id),
        ),
        Ok(Err(e)) => error_reply(StatusCode::SERVICE_UNAVAILABLE, format!("not stored: {e}")),
        Err(_) => error_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "not stored: the database did not answer in time",
        ),
    }
}

fn order_problem(order: &Order) -> Option<String> {
    if let Some(problem) = crate::name::problem("id", &order.id) {
        return Some(problem);
    }
    if order.item.is_empty() || order.item.len() > crate::name::MAX_LEN {
        return Some(format!(
            "item must be 1 to {} characters",
            crate::name::MAX_LEN
        ));
    }
    (order.qty == 0).then(|| "qty must be at least 1".to_string())
}

enum Stored {
    Created,
    Same,
    Conflict,
}

/// Inserts unless the id exists; an existing id is compared by body
/// (as jsonb, so key order and spacing do not matter).
async fn store(svc: &Service, order: &Order) -> Result<Stored, String> {
    let body = serde_json::to_string(order).map_err(|e| e.to_string())?;
    let instance = svc.instance.to_str().unwrap_or_default();
    let db = &svc.db;
    let inserted = db
        .client
        .execute(&db.insert, &[&order.id, &body, &instance])
        .await
        .map_err(|e| with_causes(&e))?;
    if inserted == 1 {
        return Ok(Stored::Created);
    }
    let row = db
        .client
        .query_one(&db.same_body, &[&order.id, &body])
        .await
        .map_err(|e| with_causes(&e))?;
    let same: bool = row.try_get(0).map_err(|e| with_causes(&e))?;
    Ok(if same { Stored::Same } else { Stored::Conflict })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_found_and_masked() {
        let url = "postgres://handover:s3cr:et@127.0.0.1:5432/db";
        assert_eq!(password_in(url), Some("s3cr:et"));
        assert_eq!(password_in("postgres://handover@host/db"), None);
        assert_eq!(password_in("postgres://host/db"), None);
        let e = RunError::Failed(format!("cannot reach {url}")).redacted(url);
        assert_eq!(
            e.to_string(),
            "cannot reach postgres://handover:***@127.0.0.1:5432/db"
        );
    }

    #[test]
    fn orders_are_checked_field_by_field() {
        let order = |id: &str, item: &str, qty| Order {
            id: id.into(),
            item: item.into(),
            qty,
        };
        assert_eq!(order_problem(&order("r-1", "widget", 2)), None);
        assert!(order_problem(&order("r 1", "widget", 2)).is_some_and(|p| p.starts_with("id ")));
        assert!(order_problem(&order("r-1", "", 2)).is_some_and(|p| p.starts_with("item ")));
        assert!(order_problem(&order("r-1", "widget", 0)).is_some_and(|p| p.starts_with("qty ")));
    }
}
